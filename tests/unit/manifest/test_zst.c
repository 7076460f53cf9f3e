/* test_zst.c -- zstd roundtrips, the output cap (zstd bombs), window limit, truncation,
 * corruption, garbage and concatenated frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zstd.h>

#include "manifest/buf.h"
#include "manifest/limits.h"
#include "manifest/zst.h"

#define BIG (64u * 1024 * 1024)

static rh_err buf_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rh_buf_append(ctx, p, n);
}

/* Counts bytes and remembers the largest chunk, keeps nothing. */
typedef struct count_sink {
    uint64_t total;
    size_t max_chunk;
    int nonzero;
} count_sink;

static rh_err count_fn(void *ctx, const uint8_t *p, size_t n)
{
    count_sink *c = ctx;
    c->total += n;
    if (n > c->max_chunk)
        c->max_chunk = n;
    for (size_t i = 0; i < n; i++)
        c->nonzero |= p[i] != 0;
    return RH_OK;
}

static rh_err failing_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return RH_EIO;
}

/* xorshift: deterministic pseudo-random bytes. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* Text-like, compressible data. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char *const words[] = {"rhine ", "mirror ", "origin ", "snapshot ",
                                        "timestamp ", "targets\n", "root ", "zstd "};
    size_t i = 0, w = 0;
    while (i < n) {
        const char *s = words[(w * 7 + w / 3) % 8];
        for (size_t k = 0; s[k] != '\0' && i < n; k++)
            p[i++] = (uint8_t)s[k];
        w++;
    }
}

/* Compress data in uneven chunks (sizes cycle through a prime-ish pattern) into out. */
static void compress_chunks(const rh_zst_opts *o, const uint8_t *data, size_t n, rh_buf *out)
{
    rh_zcomp *z = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_zcomp_new(o, buf_sink, out, &z), RH_OK);
    static const size_t steps[] = {1, 7, 4093, 65536, 13, 131071, 0, 999};
    size_t off = 0, k = 0;
    while (off < n) {
        size_t c = steps[k++ % 8];
        if (c > n - off)
            c = n - off;
        assert_int_equal(rh_zcomp_update(z, data + off, c, &e), RH_OK);
        off += c;
    }
    assert_int_equal(rh_zcomp_finish(z, &e), RH_OK);
    assert_int_equal(e.code, RH_OK);
    rh_zcomp_free(z);
}

/* Decompress in uneven chunks; returns the code of the first failing call. */
static rh_err decompress_chunks(const uint8_t *p, size_t n, uint64_t max_out, rh_buf *out,
                                uint64_t *total, rh_error *e)
{
    rh_zdec *z = NULL;
    assert_int_equal(rh_zdec_new(max_out, "t.zst", buf_sink, out, &z), RH_OK);
    static const size_t steps[] = {3, 1, 5000, 17, 70000, 2};
    size_t off = 0, k = 0;
    rh_err rc = RH_OK;
    while (off < n && rc == RH_OK) {
        size_t c = steps[k++ % 6];
        if (c > n - off)
            c = n - off;
        rc = rh_zdec_update(z, p + off, c, e);
        off += c;
    }
    if (rc == RH_OK)
        rc = rh_zdec_finish(z, total, e);
    rh_zdec_free(z);
    return rc;
}

static void roundtrip(const rh_zst_opts *o, const uint8_t *data, size_t n)
{
    rh_buf c, d;
    rh_buf_init(&c, SIZE_MAX);
    rh_buf_init(&d, SIZE_MAX);
    compress_chunks(o, data, n, &c);
    /* Checksum flag is on: the frame descriptor has bit 2 set. */
    assert_true(c.len > 5);
    assert_true(c.data[4] & 0x04);
    rh_error e;
    rh_error_clear(&e);
    uint64_t total = 0;
    assert_int_equal(decompress_chunks(c.data, c.len, n, &d, &total, &e), RH_OK);
    assert_int_equal(total, n);
    assert_int_equal(d.len, n);
    if (n > 0)
        assert_memory_equal(d.data, data, n);
    rh_buf_cleanup(&c);
    rh_buf_cleanup(&d);
}

static void test_roundtrip_levels(void **state)
{
    (void)state;
    size_t n = 1536 * 1024 + 77;
    uint8_t *rnd = malloc(n), *txt = malloc(n);
    assert_non_null(rnd);
    assert_non_null(txt);
    fill_random(rnd, n, 42);
    fill_text(txt, n);
    static const int levels[] = {1, 3, 19, 0};
    for (size_t i = 0; i < 4; i++) {
        rh_zst_opts o = {.level = levels[i]};
        /* Level 19 is slow: a smaller slice is enough to cover it. */
        size_t m = levels[i] == 19 ? 200 * 1024 : n;
        roundtrip(&o, rnd, m);
        roundtrip(&o, txt, m);
    }
    roundtrip(&(rh_zst_opts){.level = 3}, txt, 0); /* empty payload still makes a frame */
    free(rnd);
    free(txt);
}

static void test_compressible_shrinks(void **state)
{
    (void)state;
    size_t n = 1024 * 1024;
    uint8_t *txt = malloc(n);
    assert_non_null(txt);
    fill_text(txt, n);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    compress_chunks(&(rh_zst_opts){.level = 3}, txt, n, &c);
    assert_true(c.len < n / 50);
    rh_buf_cleanup(&c);
    free(txt);
}

static void test_roundtrip_long_and_workers(void **state)
{
    (void)state;
    size_t n = 3 * 1024 * 1024;
    uint8_t *d = malloc(n);
    assert_non_null(d);
    /* A random block repeated far apart: what long mode is for. */
    fill_random(d, n, 7);
    memcpy(d + 2 * 1024 * 1024, d, 1024 * 1024);
    roundtrip(&(rh_zst_opts){.level = 3, .long_mode = 1}, d, n);
    roundtrip(&(rh_zst_opts){.level = 3, .workers = 2}, d, n);
    roundtrip(&(rh_zst_opts){.level = 1, .long_mode = 1, .workers = 2}, d, n);
    free(d);
}

static void test_bad_options(void **state)
{
    (void)state;
    rh_zcomp *z = (rh_zcomp *)&z;
    rh_buf b;
    rh_buf_init(&b, 16);
    assert_int_equal(rh_zcomp_new(&(rh_zst_opts){.level = 20}, buf_sink, &b, &z), RH_EINVAL);
    assert_int_equal(rh_zcomp_new(&(rh_zst_opts){.level = -1}, buf_sink, &b, &z), RH_EINVAL);
    assert_int_equal(rh_zcomp_new(&(rh_zst_opts){.workers = -1}, buf_sink, &b, &z), RH_EINVAL);
    assert_int_equal(rh_zcomp_new(NULL, NULL, &b, &z), RH_EINVAL);
    assert_ptr_equal(z, (rh_zcomp *)&z); /* out untouched on failure */
    rh_zcomp_free(NULL);
    rh_zdec_free(NULL);
    rh_buf_cleanup(&b);
}

/* The whole input in one rh_zcomp_end: zstd knows its size (the frame header says it), and it
 * decompresses to the input; after an update the size is unknown. */
static void test_end_in_one_call_knows_the_size(void **state)
{
    (void)state;
    uint8_t text[3000];
    fill_text(text, sizeof text);
    rh_error e;
    rh_error_clear(&e);
    for (int split = 0; split < 2; split++) {
        rh_buf c, d;
        rh_buf_init(&c, SIZE_MAX);
        rh_buf_init(&d, SIZE_MAX);
        rh_zcomp *z = NULL;
        assert_int_equal(rh_zcomp_new(&(rh_zst_opts){.level = 19}, buf_sink, &c, &z), RH_OK);
        if (split)
            assert_int_equal(rh_zcomp_update(z, text, 1000, &e), RH_OK);
        assert_int_equal(rh_zcomp_end(z, text + 1000 * split, sizeof text - 1000 * split, &e),
                         RH_OK);
        rh_zcomp_free(z);
        unsigned long long fcs = ZSTD_getFrameContentSize(c.data, c.len);
        if (split)
            assert_true(fcs == ZSTD_CONTENTSIZE_UNKNOWN);
        else
            assert_true(fcs == sizeof text);
        uint64_t total = 0;
        assert_int_equal(decompress_chunks(c.data, c.len, 1 << 20, &d, &total, &e), RH_OK);
        assert_int_equal(total, sizeof text);
        assert_memory_equal(d.data, text, sizeof text);
        rh_buf_cleanup(&c);
        rh_buf_cleanup(&d);
    }
    assert_int_equal(rh_zcomp_end(NULL, text, 1, &e), RH_EINVAL);
}

/* 64 MiB of zeros compress to a few KB; with a 1 MiB cap the decoder stops at the cap. */
static void test_zstd_bomb(void **state)
{
    (void)state;
    uint8_t *zeros = calloc(1, 1024 * 1024);
    assert_non_null(zeros);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    rh_zcomp *z = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_zcomp_new(&(rh_zst_opts){.level = 3}, buf_sink, &c, &z), RH_OK);
    for (int i = 0; i < 64; i++)
        assert_int_equal(rh_zcomp_update(z, zeros, 1024 * 1024, &e), RH_OK);
    assert_int_equal(rh_zcomp_finish(z, &e), RH_OK);
    rh_zcomp_free(z);
    assert_true(c.len < 16 * 1024);

    count_sink cs = {0};
    rh_zdec *d = NULL;
    assert_int_equal(rh_zdec_new(1024 * 1024, "bomb.zst", count_fn, &cs, &d), RH_OK);
    rh_err rc = rh_zdec_update(d, c.data, c.len, &e);
    assert_int_equal(rc, RH_ETOOBIG);
    assert_int_equal(e.code, RH_ETOOBIG);
    assert_string_equal(e.msg, "bomb.zst: decompressed size exceeds 1048576 bytes");
    assert_true(cs.total <= 1024 * 1024);
    assert_true(cs.max_chunk <= ZSTD_DStreamOutSize());
    assert_false(cs.nonzero);
    /* Sticky: later calls fail too. */
    rh_error e2;
    rh_error_clear(&e2);
    assert_int_equal(rh_zdec_update(d, c.data, 1, &e2), RH_ETOOBIG);
    assert_int_equal(rh_zdec_finish(d, NULL, &e2), RH_ETOOBIG);
    rh_zdec_free(d);

    /* The exact size passes; one byte less fails. */
    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    rh_err rc0 = decompress_chunks(c.data, c.len, BIG, &out, NULL, &e);
    if (rc0 != RH_OK) print_error("%s\n", e.msg);
    assert_int_equal(rc0, RH_OK);
    assert_int_equal(out.len, BIG);
    rh_buf_cleanup(&out);
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(c.data, c.len, BIG - 1, &out, NULL, &e), RH_ETOOBIG);
    assert_true(out.len <= BIG - 1);
    rh_buf_cleanup(&out);
    /* Cap 0: not a single byte. */
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(c.data, c.len, 0, &out, NULL, &e), RH_ETOOBIG);
    assert_int_equal(out.len, 0);
    rh_buf_cleanup(&out);

    rh_buf_cleanup(&c);
    free(zeros);
}

/* Hand-made frame header declaring window log 31 (Window_Descriptor exponent 21), then an empty
 * last raw block. */
static void test_window_31_rejected(void **state)
{
    (void)state;
    static const uint8_t frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00};
    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(frame, sizeof frame, 1024, &out, NULL, &e), RH_ETOOBIG);
    assert_string_equal(e.msg, "t.zst: zstd window larger than 2^27 bytes");
    rh_buf_cleanup(&out);

    /* The same frame with window log 27 (exponent 17) is fine and empty. */
    static const uint8_t ok27[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x01, 0x00, 0x00};
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    uint64_t total = 99;
    assert_int_equal(decompress_chunks(ok27, sizeof ok27, 1024, &out, &total, &e), RH_OK);
    assert_int_equal(total, 0);
    rh_buf_cleanup(&out);
}

/* A real compressor frame with windowLog 28 and long mode (size unknown, so the header keeps
 * the large window). */
static void test_window_28_from_compressor(void **state)
{
    (void)state;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_non_null(cc);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 28)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_enableLongDistanceMatching, 1)));
    uint8_t src[4096], dst[8192];
    fill_text(src, sizeof src);
    ZSTD_inBuffer in = {src, sizeof src, 0};
    ZSTD_outBuffer ob = {dst, sizeof dst, 0};
    assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_continue)));
    size_t r;
    do {
        r = ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_end);
        assert_false(ZSTD_isError(r));
    } while (r != 0);
    ZSTD_freeCCtx(cc);
    assert_true(ZSTD_getFrameContentSize(dst, ob.pos) == ZSTD_CONTENTSIZE_UNKNOWN);

    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(dst, ob.pos, 1 << 20, &out, NULL, &e), RH_ETOOBIG);
    assert_int_equal(out.len, 0);
    rh_buf_cleanup(&out);
}

static void test_truncated(void **state)
{
    (void)state;
    size_t n = 300 * 1024;
    uint8_t *d = malloc(n);
    assert_non_null(d);
    fill_text(d, n);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    compress_chunks(&(rh_zst_opts){.level = 3}, d, n, &c);
    /* Cut 1, 4 (the checksum), 5, half, and all but the magic number. */
    size_t cuts[] = {1, 4, 5, c.len / 2, c.len - 4};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        rh_buf out;
        rh_buf_init(&out, SIZE_MAX);
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(decompress_chunks(c.data, c.len - cuts[i], n, &out, NULL, &e),
                         RH_EPARSE);
        assert_string_equal(e.msg, "t.zst: truncated zstd frame");
        rh_buf_cleanup(&out);
    }
    rh_buf_cleanup(&c);
    free(d);
}

static void test_bitflip(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    uint8_t *d = malloc(n);
    assert_non_null(d);
    fill_text(d, n);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    compress_chunks(&(rh_zst_opts){.level = 3}, d, n, &c);
    /* Flip one bit at many places past the header: every one must fail (content checksum). */
    int failures = 0, tried = 0;
    for (size_t pos = 6; pos < c.len; pos += c.len / 37 + 1) {
        c.data[pos] ^= 0x10;
        rh_buf out;
        rh_buf_init(&out, SIZE_MAX);
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = decompress_chunks(c.data, c.len, n, &out, NULL, &e);
        tried++;
        if (rc == RH_EPARSE || rc == RH_ETOOBIG)
            failures++;
        assert_int_not_equal(rc, RH_OK);
        c.data[pos] ^= 0x10;
        rh_buf_cleanup(&out);
    }
    assert_int_equal(failures, tried);
    /* Flip in the last checksum byte specifically. */
    c.data[c.len - 1] ^= 1;
    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(c.data, c.len, n, &out, NULL, &e), RH_EPARSE);
    assert_non_null(strstr(e.msg, "t.zst: bad zstd data: "));
    rh_buf_cleanup(&out);
    rh_buf_cleanup(&c);
    free(d);
}

static void test_garbage_and_empty(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *msg;
    } cases[] = {
        {"", 0, "t.zst: no zstd frame"},
        {"hello world, not zstd", 21, NULL},
        {"\x28\xb5\x2f", 3, "t.zst: truncated zstd frame"},
        {"\x28\xb5\x2f\xfd", 4, "t.zst: truncated zstd frame"},
        {"\xfd\x2f\xb5\x28\x00\x00\x00\x00", 8, NULL}, /* byte-swapped magic */
        {"\x1f\x8b\x08\x00\x00\x00\x00\x00", 8, NULL}, /* gzip header */
        /* zstd v0.5 legacy magic (found by fuzzing: libzstd decoded it in one piece but not in
         * chunks); legacy formats are refused outright. */
        {"\x25\xb5\x2f\xfd\x08\x00\x00\x00", 8,
         "t.zst: bad zstd data: not a zstd frame (magic fd2fb525)"},
        {"\x28\xb5\x2f\xfd\x00\x88\x01\x00\x00\x25\xb5\x2f\xfd\x08\x00\x00\x00", 17,
         "t.zst: bad zstd data: not a zstd frame (magic fd2fb525)"},
        {"\x28\xb5\x2f\xfd\x00\x88\x01\x00\x00\x28\xb5", 11, "t.zst: truncated zstd frame"},
        /* A frame naming dictionary 0xb5 (also found by fuzzing: accepted in one piece,
         * "Dictionary mismatch" in chunks); we use no dictionaries. */
        {"\x28\xb5\x2f\xfd\x25\xb5\x2f\xfd\x08\x00\x00\x00", 12,
         "t.zst: bad zstd data: frame needs a dictionary"},
        /* A frame with a 2-byte content size whose bytes from the window descriptor on are a
         * whole frame of their own, decoding to "abc" (found by fuzzing). Its own first block
         * is corrupt; libzstd's single-pass shortcut decoded the inner frame instead when the
         * header had come in an earlier call, so it was accepted in one piece. */
        {"\x28\xb5\x2f\xfd\x40\x28\xb5\x2f\xfd\x04\x58\x19\x00\x00\x61\x62\x63\x99\x09"
         "\x77\xad",
         21, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_buf out;
        rh_buf_init(&out, SIZE_MAX);
        rh_error e;
        rh_error_clear(&e);
        /* In one piece... */
        rh_zdec *z = NULL;
        /* (A cap above the content size it declares lets libzstd take its shortcut.) */
        assert_int_equal(rh_zdec_new(1 << 20, "t.zst", buf_sink, &out, &z), RH_OK);
        rh_err rc = rh_zdec_update(z, (const uint8_t *)cases[i].in, cases[i].len, &e);
        if (rc == RH_OK)
            rc = rh_zdec_finish(z, NULL, &e);
        rh_zdec_free(z);
        assert_int_equal(rc, RH_EPARSE);
        rh_error_clear(&e);
        /* ...and in uneven chunks: the same verdict. */
        assert_int_equal(decompress_chunks((const uint8_t *)cases[i].in, cases[i].len, 1 << 20,
                                           &out, NULL, &e),
                         RH_EPARSE);
        if (cases[i].msg != NULL)
            assert_string_equal(e.msg, cases[i].msg);
        else
            assert_non_null(strstr(e.msg, "t.zst: bad zstd data: "));
        assert_int_equal(out.len, 0);
        rh_buf_cleanup(&out);
    }
}

static void test_concatenated_frames(void **state)
{
    (void)state;
    uint8_t a[5000], b[70000];
    fill_text(a, sizeof a);
    fill_random(b, sizeof b, 99);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    compress_chunks(&(rh_zst_opts){.level = 1}, a, sizeof a, &c);
    size_t first = c.len;
    compress_chunks(&(rh_zst_opts){.level = 19}, b, sizeof b, &c);
    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error e;
    rh_error_clear(&e);
    uint64_t total = 0;
    assert_int_equal(decompress_chunks(c.data, c.len, sizeof a + sizeof b, &out, &total, &e),
                     RH_OK);
    assert_int_equal(total, sizeof a + sizeof b);
    assert_memory_equal(out.data, a, sizeof a);
    assert_memory_equal(out.data + sizeof a, b, sizeof b);
    rh_buf_cleanup(&out);
    /* The cap counts across frames. */
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(c.data, c.len, sizeof a + sizeof b - 1, &out, NULL, &e),
                     RH_ETOOBIG);
    rh_buf_cleanup(&out);
    /* Second frame truncated: detected although the first is complete. */
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    assert_int_equal(decompress_chunks(c.data, first + 10, 1 << 20, &out, NULL, &e), RH_EPARSE);
    assert_string_equal(e.msg, "t.zst: truncated zstd frame");
    rh_buf_cleanup(&out);
    /* Garbage after a good frame. */
    rh_buf_init(&out, SIZE_MAX);
    rh_error_clear(&e);
    memcpy(c.data + first, "GARBAGE!", 8);
    assert_int_equal(decompress_chunks(c.data, first + 8, 1 << 20, &out, NULL, &e), RH_EPARSE);
    rh_buf_cleanup(&out);
    rh_buf_cleanup(&c);
}

/* Skippable frames (any of the 16 magics) are allowed before, between and after data frames. */
static void test_skippable_frames(void **state)
{
    (void)state;
    uint8_t a[3000];
    fill_text(a, sizeof a);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    static const uint8_t skip[] = {0x5f, 0x2a, 0x4d, 0x18, 0x03, 0x00, 0x00, 0x00, 'x', 'y', 'z'};
    assert_int_equal(rh_buf_append(&c, skip, sizeof skip), RH_OK);
    compress_chunks(&(rh_zst_opts){.level = 1}, a, sizeof a, &c);
    assert_int_equal(rh_buf_append(&c, skip, sizeof skip), RH_OK);
    compress_chunks(&(rh_zst_opts){.level = 1}, a, sizeof a, &c);
    rh_buf out;
    rh_buf_init(&out, SIZE_MAX);
    rh_error e;
    rh_error_clear(&e);
    uint64_t total = 0;
    assert_int_equal(decompress_chunks(c.data, c.len, 2 * sizeof a, &out, &total, &e), RH_OK);
    assert_int_equal(total, 2 * sizeof a);
    assert_memory_equal(out.data + sizeof a, a, sizeof a);
    rh_buf_cleanup(&out);
    rh_buf_cleanup(&c);
}

static void test_sink_failure(void **state)
{
    (void)state;
    uint8_t a[1000];
    fill_text(a, sizeof a);
    rh_buf c;
    rh_buf_init(&c, SIZE_MAX);
    compress_chunks(&(rh_zst_opts){.level = 1}, a, sizeof a, &c);
    rh_zdec *d = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_zdec_new(1 << 20, "s.zst", failing_sink, NULL, &d), RH_OK);
    assert_int_equal(rh_zdec_update(d, c.data, c.len, &e), RH_EIO);
    assert_string_equal(e.msg, "s.zst: decompressed output sink failed");
    rh_zdec_free(d);

    rh_zcomp *z = NULL;
    rh_error_clear(&e);
    assert_int_equal(rh_zcomp_new(NULL, failing_sink, NULL, &z), RH_OK);
    rh_err rc = rh_zcomp_update(z, a, sizeof a, &e);
    if (rc == RH_OK)
        rc = rh_zcomp_finish(z, &e);
    assert_int_equal(rc, RH_EIO);
    assert_int_equal(rh_zcomp_finish(z, NULL), RH_EIO); /* sticky */
    rh_zcomp_free(z);
    rh_buf_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_levels),
        cmocka_unit_test(test_end_in_one_call_knows_the_size),
        cmocka_unit_test(test_compressible_shrinks),
        cmocka_unit_test(test_roundtrip_long_and_workers),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_zstd_bomb),
        cmocka_unit_test(test_window_31_rejected),
        cmocka_unit_test(test_window_28_from_compressor),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bitflip),
        cmocka_unit_test(test_garbage_and_empty),
        cmocka_unit_test(test_concatenated_frames),
        cmocka_unit_test(test_skippable_frames),
        cmocka_unit_test(test_sink_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
