/* zst.c -- streaming zstd compression and bounded decompression; zstd's size_t error codes are
 * converted to rh_err here and go no further. */
#include "manifest/zst.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "manifest/limits.h"

struct rh_zcomp {
    ZSTD_CCtx *cctx;
    rh_sink_fn sink;
    void *ctx;
    uint8_t *out;
    size_t outcap;
    rh_err failed; /* sticky: once a call failed, every later call fails */
};

struct rh_zdec {
    ZSTD_DCtx *dctx;
    rh_sink_fn sink;
    void *ctx;
    uint8_t *out;
    size_t outcap;
    uint64_t max_out;
    uint64_t total_out;
    uint64_t total_in;
    size_t last_ret; /* last ZSTD_decompressStream result: 0 = at a frame boundary */
    int at_boundary; /* the next input byte starts a frame: its header is checked first */
    uint8_t hdr[18]; /* the frame header being collected (it may span update calls): at most
                      * ZSTD_FRAMEHEADERSIZE_MAX bytes, 8 for a skippable frame */
    size_t nhdr;
    const char *src;
    rh_err failed;
};

/* Map a zstd error to our enum: an oversized window is a limit, allocation is OOM, the rest is
 * malformed input. */
static rh_err zstd_code(size_t r)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_frameParameter_windowTooLarge:
        return RH_ETOOBIG;
    case ZSTD_error_memory_allocation:
        return RH_ENOMEM;
    default:
        return RH_EPARSE;
    }
}

rh_err rh_zcomp_new(const rh_zst_opts *o, rh_sink_fn sink, void *ctx, rh_zcomp **out)
{
    if (sink == NULL || out == NULL)
        return RH_EINVAL;
    int level = (o != NULL && o->level != 0) ? o->level : 3;
    int workers = o != NULL ? o->workers : 0;
    int long_mode = o != NULL ? o->long_mode : 0;
    if (level < 1 || level > 19 || workers < 0)
        return RH_EINVAL;
    rh_err rc = RH_ENOMEM;
    rh_zcomp *z = calloc(1, sizeof *z);
    if (z == NULL)
        goto out;
    z->sink = sink;
    z->ctx = ctx;
    z->outcap = ZSTD_CStreamOutSize();
    z->out = malloc(z->outcap);
    z->cctx = ZSTD_createCCtx();
    if (z->out == NULL || z->cctx == NULL)
        goto out;
    rc = RH_EINVAL;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_enableLongDistanceMatching,
                                            long_mode ? 1 : 0)))
        goto out;
    if (workers > 0 &&
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, workers)))
        goto out; /* libzstd built without threads */
    *out = z;
    z = NULL;
    rc = RH_OK;
out:
    rh_zcomp_free(z);
    return rc;
}

/* Run the compressor over in with directive d, handing every produced chunk to the sink.
 * For ZSTD_e_end, loops until the frame is fully flushed. */
static rh_err zcomp_run(rh_zcomp *z, ZSTD_inBuffer *in, ZSTD_EndDirective d, rh_error *e)
{
    if (z->failed != RH_OK)
        return rh_fail(e, z->failed, "zstd: compressor already failed");
    for (;;) {
        ZSTD_outBuffer ob = {z->out, z->outcap, 0};
        size_t r = ZSTD_compressStream2(z->cctx, &ob, in, d);
        if (ZSTD_isError(r)) {
            z->failed = zstd_code(r) == RH_ENOMEM ? RH_ENOMEM : RH_EINVAL;
            return rh_fail(e, z->failed, "zstd: compression failed: %s", ZSTD_getErrorName(r));
        }
        if (ob.pos > 0) {
            rh_err rc = z->sink(z->ctx, z->out, ob.pos);
            if (rc != RH_OK) {
                z->failed = rc;
                return rh_fail(e, rc, "zstd: compressed output sink failed");
            }
        }
        if (d == ZSTD_e_end ? r == 0 : in->pos == in->size)
            return RH_OK;
    }
}

rh_err rh_zcomp_update(rh_zcomp *z, const uint8_t *p, size_t n, rh_error *e)
{
    if (z == NULL || (p == NULL && n > 0))
        return rh_fail(e, RH_EINVAL, "zstd: bad argument");
    ZSTD_inBuffer in = {p, n, 0};
    return zcomp_run(z, &in, ZSTD_e_continue, e);
}

rh_err rh_zcomp_end(rh_zcomp *z, const uint8_t *p, size_t n, rh_error *e)
{
    if (z == NULL || (p == NULL && n > 0))
        return rh_fail(e, RH_EINVAL, "zstd: bad argument");
    ZSTD_inBuffer in = {p, n, 0};
    return zcomp_run(z, &in, ZSTD_e_end, e);
}

rh_err rh_zcomp_finish(rh_zcomp *z, rh_error *e)
{
    return rh_zcomp_end(z, NULL, 0, e);
}

void rh_zcomp_free(rh_zcomp *z)
{
    if (z == NULL)
        return;
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    free(z);
}

rh_err rh_zdec_new(uint64_t max_out, const char *src, rh_sink_fn sink, void *ctx, rh_zdec **out)
{
    if (sink == NULL || out == NULL)
        return RH_EINVAL;
    rh_err rc = RH_ENOMEM;
    rh_zdec *z = calloc(1, sizeof *z);
    if (z == NULL)
        goto out;
    z->sink = sink;
    z->ctx = ctx;
    z->max_out = max_out;
    z->src = src != NULL ? src : "zstd";
    z->at_boundary = 1;
    z->outcap = ZSTD_DStreamOutSize();
    z->out = malloc(z->outcap);
    z->dctx = ZSTD_createDCtx();
    if (z->out == NULL || z->dctx == NULL)
        goto out;
    rc = RH_EINVAL;
    if (ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, RH_ZSTD_WINDOW_LOG_MAX)))
        goto out;
    *out = z;
    z = NULL;
    rc = RH_OK;
out:
    rh_zdec_free(z);
    return rc;
}

/* One ZSTD_decompressStream call; hands what it produced to the sink. *full is set when the
 * output buffer was filled mid-frame (the decoder may hold more). Offers at most one byte more than the
 * cap allows: producing it proves the bomb without handing it (or anything past the cap) on. */
static rh_err zdec_step(rh_zdec *z, ZSTD_inBuffer *in, int *full, rh_error *e)
{
    uint64_t room = z->max_out - z->total_out;
    size_t cap = room < (uint64_t)z->outcap ? (size_t)room + 1 : z->outcap;
    ZSTD_outBuffer ob = {z->out, cap, 0};
    size_t before = in->pos;
    size_t r = ZSTD_decompressStream(z->dctx, &ob, in);
    z->total_in += in->pos - before;
    if (ZSTD_isError(r)) {
        z->failed = zstd_code(r);
        if (z->failed == RH_ETOOBIG)
            return rh_fail(e, RH_ETOOBIG, "%s: zstd window larger than 2^%d bytes", z->src,
                           RH_ZSTD_WINDOW_LOG_MAX);
        return rh_fail(e, z->failed, "%s: bad zstd data: %s", z->src, ZSTD_getErrorName(r));
    }
    z->last_ret = r;
    z->at_boundary = r == 0;
    if ((uint64_t)ob.pos > room) {
        z->failed = RH_ETOOBIG;
        return rh_fail(e, RH_ETOOBIG, "%s: decompressed size exceeds %llu bytes", z->src,
                       (unsigned long long)z->max_out);
    }
    if (ob.pos > 0) {
        z->total_out += ob.pos;
        rh_err rc = z->sink(z->ctx, z->out, ob.pos);
        if (rc != RH_OK) {
            z->failed = rc;
            return rh_fail(e, rc, "%s: decompressed output sink failed", z->src);
        }
    }
    /* r == 0: the frame is complete and fully flushed. Calling again with no input would start
     * the next frame and report a header-size hint, so only a full buffer mid-frame loops. */
    *full = ob.pos == ob.size && r != 0;
    return RH_OK;
}

/* Feed in to the decoder until it is consumed and nothing more is pending, stopping at a frame
 * end so that the next frame's magic number can be checked. */
static rh_err zdec_feed(rh_zdec *z, ZSTD_inBuffer *in, rh_error *e)
{
    for (;;) {
        int full = 0;
        rh_err rc = zdec_step(z, in, &full, e);
        if (rc != RH_OK)
            return rc;
        if (z->at_boundary || (in->pos == in->size && !full))
            return RH_OK;
    }
}

/* Check the start of a frame as it collects in z->hdr. Returns RH_OK with *done set once the
 * whole frame header is there: it goes to the decoder alone, in one call. Only current zstd
 * frames (without a dictionary) and skippable frames pass: libzstd would also decode legacy
 * (pre-v0.8) formats, and it judges a frame naming a dictionary differently when the frame
 * arrives in one piece or in chunks. We produce neither.
 * Why the whole header, alone: libzstd 1.5's single-pass shortcut (taken when the frame's
 * content size is known and fits the output) decodes from the start of the current input. When
 * the header began in an earlier call, that start is inside the frame, and a frame nested
 * there was decoded instead of the real one (fuzz_zstd: "abc" in one piece, "corrupt" byte by
 * byte). Given the header alone, the shortcut never has the frame to take. */
static rh_err zdec_check_header(rh_zdec *z, int *done, rh_error *e)
{
    *done = 0;
    if (z->nhdr < 4)
        return RH_OK;
    uint32_t m = (uint32_t)z->hdr[0] | (uint32_t)z->hdr[1] << 8 | (uint32_t)z->hdr[2] << 16 |
                 (uint32_t)z->hdr[3] << 24;
    if ((m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START) {
        *done = z->nhdr == 8; /* magic, then the 4-byte size of the content */
        return RH_OK;
    }
    if (m != ZSTD_MAGICNUMBER) {
        z->failed = RH_EPARSE;
        return rh_fail(e, RH_EPARSE, "%s: bad zstd data: not a zstd frame (magic %08x)", z->src,
                       (unsigned)m);
    }
    if (z->nhdr < 5)
        return RH_OK;
    uint8_t fhd = z->hdr[4];
    if ((fhd & 0x03) != 0) { /* RFC 8878 3.1.1.1.1: Dictionary_ID_Flag */
        z->failed = RH_EPARSE;
        return rh_fail(e, RH_EPARSE, "%s: bad zstd data: frame needs a dictionary", z->src);
    }
    /* RFC 8878 3.1.1.1: magic and descriptor, a window descriptor unless Single_Segment, and
     * Frame_Content_Size in 0/1, 2, 4 or 8 bytes by its flag (1 byte when 0 and single). */
    unsigned single = (fhd >> 5) & 1, fcs_flag = fhd >> 6;
    size_t fcs = fcs_flag == 0 ? single : (size_t)1 << fcs_flag;
    *done = z->nhdr == 5 + !single + fcs;
    return RH_OK;
}

rh_err rh_zdec_update(rh_zdec *z, const uint8_t *p, size_t n, rh_error *e)
{
    if (z == NULL || (p == NULL && n > 0))
        return rh_fail(e, RH_EINVAL, "zstd: bad argument");
    if (z->failed != RH_OK)
        return rh_fail(e, z->failed, "%s: zstd decoder already failed", z->src);
    ZSTD_inBuffer in = {p, n, 0};
    while (in.pos < in.size) {
        if (z->at_boundary) {
            int done = 0;
            while (!done && in.pos < in.size) {
                z->hdr[z->nhdr++] = p[in.pos++];
                rh_err rc = zdec_check_header(z, &done, e);
                if (rc != RH_OK)
                    return rc;
            }
            if (!done)
                break; /* the rest of the header comes with the next call */
            ZSTD_inBuffer hb = {z->hdr, z->nhdr, 0};
            z->nhdr = 0;
            rh_err rc = zdec_feed(z, &hb, e);
            if (rc != RH_OK)
                return rc;
            continue; /* a skippable frame's header may already have ended it */
        }
        rh_err rc = zdec_feed(z, &in, e);
        if (rc != RH_OK)
            return rc;
    }
    return RH_OK;
}

rh_err rh_zdec_finish(rh_zdec *z, uint64_t *total_out, rh_error *e)
{
    if (z == NULL)
        return rh_fail(e, RH_EINVAL, "zstd: bad argument");
    if (z->failed != RH_OK)
        return rh_fail(e, z->failed, "%s: zstd decoder already failed", z->src);
    if (z->total_in == 0 && z->nhdr == 0)
        return rh_fail(e, RH_EPARSE, "%s: no zstd frame", z->src);
    if (z->last_ret != 0 || z->nhdr > 0 || !z->at_boundary)
        return rh_fail(e, RH_EPARSE, "%s: truncated zstd frame", z->src);
    if (total_out != NULL)
        *total_out = z->total_out;
    return RH_OK;
}

void rh_zdec_free(rh_zdec *z)
{
    if (z == NULL)
        return;
    ZSTD_freeDCtx(z->dctx);
    free(z->out);
    free(z);
}
