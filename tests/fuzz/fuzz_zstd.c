/* fuzz_zstd.c -- libFuzzer target: the bounded zstd decoder with a small output cap, fed in one
 * piece and in uneven chunks; the sink must never see more than the cap, and both feeds must
 * agree. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "manifest/zst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_OUT (256u * 1024)

typedef struct seen {
    uint64_t total;
} seen;

static rh_err count_sink(void *ctx, const uint8_t *p, size_t n)
{
    seen *s = ctx;
    (void)p;
    s->total += n;
    if (s->total > FUZZ_MAX_OUT)
        abort(); /* the cap was passed to the sink */
    return RH_OK;
}

/* Decode data in chunks of `step` bytes (0 = one piece); returns the result and the total. */
static rh_err run(const uint8_t *data, size_t size, size_t step, uint64_t *total)
{
    seen s = {0};
    rh_zdec *z = NULL;
    rh_error e;
    rh_error_clear(&e);
    if (rh_zdec_new(FUZZ_MAX_OUT, "fuzz.zst", count_sink, &s, &z) != RH_OK)
        abort();
    rh_err rc = RH_OK;
    size_t off = 0;
    while (off < size && rc == RH_OK) {
        size_t n = step == 0 || step > size - off ? size - off : step;
        rc = rh_zdec_update(z, data + off, n, &e);
        off += n;
    }
    uint64_t out = 0;
    if (rc == RH_OK)
        rc = rh_zdec_finish(z, &out, &e);
    if (rc == RH_OK && out != s.total)
        abort();
    if (rc != RH_OK && (e.code != rc || e.msg[0] == '\0'))
        abort();
    rh_zdec_free(z);
    *total = s.total;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t t1 = 0, t2 = 0;
    rh_err r1 = run(data, size, 0, &t1);
    rh_err r2 = run(data, size, 1 + (size % 7), &t2);
    /* Chunking must not change the verdict, nor what a successful decode produced. One
     * exception: a stream that both decodes past the cap and is corrupt further on fails
     * either way, as too big or as corrupt, depending on which the decoder meets first; with
     * all of the input at once it may decode the corrupt block before it passes the cap. */
    bool big_or_bad = (r1 == RH_ETOOBIG && r2 == RH_EPARSE) ||
                      (r1 == RH_EPARSE && r2 == RH_ETOOBIG);
    if ((r1 != r2 && !big_or_bad) || (r1 == RH_OK && t1 != t2))
        abort();
    return 0;
}
