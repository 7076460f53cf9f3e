/* witness.c -- the mirror as a witness of the transparency log: judge checkpoints, check that
 * metadata is logged, keep evidence, cosign, and read the upstream's log into staging. */
#include "mirror/witness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "manifest/afile.h"
#include "manifest/config.h"
#include "manifest/hash.h"
#include "manifest/metadata.h"
#include "mirror/mfs.h"

/* ---- pure decisions ------------------------------------------------------------------------ */

rh_err rh_witness_check_logged(const rh_log_view *log, const char *role, uint64_t version,
                               const char *filename, const uint8_t *p, size_t n, rh_error *e)
{
    uint8_t h[32];
    if (rh_hash_once(RH_SHA256, p, n, h) != RH_OK)
        return rh_fail(e, RH_ECRYPTO, "metadata/%s: cannot hash", filename);
    return rh_witness_check_logged_sha256(log, role, version, filename, n, h, e);
}

rh_err rh_witness_check_logged_sha256(const rh_log_view *log, const char *role, uint64_t version,
                                      const char *filename, size_t n, const uint8_t h[32],
                                      rh_error *e)
{
    uint64_t idx = 0;
    const rh_log_ventry *en = rh_log_view_find(log, role, version, &idx);
    if (en == NULL)
        return rh_fail(e, RH_ELOG, "metadata/%s: not in the transparency log (%s version %" PRIu64
                       " has no entry among the %" PRIu64 " of checkpoint %s)", filename, role,
                       version, log->size, log->cp.origin);
    if (en->length != (uint64_t)n || !rh_ct_equal(h, en->sha256, 32)) {
        char a[65], b[65];
        rh_hex_encode(h, 32, a);
        rh_hex_encode(en->sha256, 32, b);
        return rh_fail(e, RH_ELOG, "metadata/%s: differs from the transparency log: verified %zu "
                       "bytes sha256 %s, log entry %" PRIu64 " says %" PRIu64 " bytes sha256 %s",
                       filename, n, a, idx, en->length, b);
    }
    return RH_OK;
}

rh_err rh_witness_judge(const rh_log_src *src, const rh_note_key *logkey, const uint8_t *old,
                        size_t oldlen, const uint8_t *cur, size_t curlen,
                        rh_witness_verdict *verdict, rh_error *why, rh_error *e)
{
    rh_log_keys keys;
    memset(&keys, 0, sizeof keys);
    keys.log = *logkey;
    rh_checkpoint cc, oc;
    memset(&cc, 0, sizeof cc);
    memset(&oc, 0, sizeof oc);
    rh_witness_verdict d = RH_WITNESS_FIRST;
    rh_error ce;
    rh_error_clear(&ce);
    rh_err rc = rh_log_checkpoint_verify(cur, curlen, "log/checkpoint", &keys, &cc, NULL, e);
    if (rc != RH_OK)
        goto out;
    if (old == NULL)
        goto done;
    if ((rc = rh_log_checkpoint_verify(old, oldlen, "accepted checkpoint", &keys, &oc, NULL, e)) !=
        RH_OK)
        goto out;
    if (strcmp(oc.origin, cc.origin) == 0 && oc.size == cc.size &&
        rh_ct_equal(oc.root, cc.root, 32)) {
        d = RH_WITNESS_SAME;
        goto done;
    }
    /* RFC 9162 2.1.4: the accepted tree must be a prefix of the new one. RH_ELOG only when
     * proven (signed checkpoints, or the new tree read whole and verified); tiles that are
     * not the log's own are the upstream's fault (RH_EHASH): an error, never evidence. */
    rc = rh_log_consistency_notes(src, &keys, old, oldlen, cur, curlen, &ce);
    if (rc == RH_OK) {
        d = RH_WITNESS_GREW;
        goto done;
    }
    if (rc != RH_ELOG) {
        rc = rh_fail(e, rc, "%s", ce.msg);
        goto out;
    }
    d = RH_WITNESS_INCONSISTENT;
    rh_fail(why, RH_ELOG, "%s", ce.msg);
done:
    *verdict = d;
    rc = RH_OK;
out:
    rh_checkpoint_cleanup(&cc);
    rh_checkpoint_cleanup(&oc);
    return rc;
}

rh_err rh_witness_cosign_note(const uint8_t *note, size_t len, const rh_note_key *self,
                              const rh_privkey *sk, uint64_t ts, rh_buf *out, rh_error *e)
{
    rh_note *n = NULL;
    rh_note_key mine;
    rh_buf b;
    rh_buf_init(&b, RH_NOTE_MAX_BYTES);
    size_t nsigs = 1;
    rh_err rc = rh_note_parse(note, len, "log/checkpoint", &n, e);
    if (rc != RH_OK)
        goto out;
    if (self->type != RH_NOTE_TYPE_COSIG_V1 ||
        rh_note_key_from_privkey(sk, self->name, RH_NOTE_TYPE_COSIG_V1, &mine, NULL) != RH_OK ||
        mine.id != self->id || memcmp(mine.pub, self->pub, sizeof mine.pub) != 0) {
        rc = rh_fail(e, RH_EINVAL, "witness %s: not the cosignature/v1 key of the private key",
                     self->name);
        goto out;
    }
    if ((rc = rh_buf_append(&b, n->text, n->textlen)) != RH_OK ||
        (rc = rh_buf_appendc(&b, '\n')) != RH_OK)
        goto toobig;
    for (size_t i = 0; i < n->nsigs; i++) {
        const rh_note_sig *s = &n->sigs[i];
        if (s->id == self->id && strcmp(s->name, self->name) == 0)
            continue; /* our older cosignature: replaced below */
        rh_note_key k;
        memset(&k, 0, sizeof k);
        snprintf(k.name, sizeof k.name, "%s", s->name);
        k.id = s->id;
        if ((rc = rh_note_sigline(&k, s->sig, s->siglen, &b)) != RH_OK)
            goto toobig;
        nsigs++;
    }
    if (nsigs > RH_NOTE_MAX_SIGS) {
        rc = rh_fail(e, RH_ETOOBIG, "log/checkpoint: %zu signature lines with ours, at most %d",
                     nsigs, RH_NOTE_MAX_SIGS);
        goto out;
    }
    /* tlog-cosignature: a timestamped Ed25519 signature over the checkpoint text. */
    if ((rc = rh_note_cosign(n->text, n->textlen, self->name, sk, ts, &b, e)) != RH_OK)
        goto out;
    if ((rc = rh_buf_append(out, b.data, b.len)) != RH_OK)
        goto toobig;
    goto out;
toobig:
    rc = rh_fail(e, rc, "log/checkpoint: the cosigned note would pass %u bytes",
                 RH_NOTE_MAX_BYTES);
out:
    rh_note_free(n);
    rh_buf_cleanup(&b);
    return rc;
}

bool rh_witness_note_has(const uint8_t *note, size_t len, const rh_note_key *self)
{
    rh_note *n = NULL;
    bool has = false;
    if (rh_note_parse(note, len, "log/checkpoint", &n, NULL) != RH_OK)
        return false;
    for (size_t i = 0; i < n->nsigs && !has; i++)
        has = n->sigs[i].id == self->id && strcmp(n->sigs[i].name, self->name) == 0;
    rh_note_free(n);
    return has;
}

/* ---- files --------------------------------------------------------------------------------- */

rh_err rh_witness_keygen(const char *name, const char *path, rh_buf *vkey, rh_error *e)
{
    rh_privkey *sk = NULL;
    rh_note_key k;
    rh_buf text;
    rh_buf_init(&text, 4096);
    char pub[PATH_MAX];
    bool reserved = false;
    rh_err rc;
    if (snprintf(pub, sizeof pub, "%s.pub", path) >= (int)sizeof pub) {
        rc = rh_fail(e, RH_EIO, "%s: path too long", path);
        goto out;
    }
    if ((rc = rh_privkey_generate(&sk, e)) != RH_OK ||
        (rc = rh_note_key_from_privkey(sk, name, RH_NOTE_TYPE_COSIG_V1, &k, e)) != RH_OK)
        goto out;
    struct stat sb;
    if (lstat(pub, &sb) == 0) {
        rc = rh_fail(e, RH_EIO, "%s: exists; a witness key is never replaced", pub);
        goto out;
    }
    /* Reserve the name (0600, exclusive): an existing key is never overwritten. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = rh_fail(e, RH_EIO, "%s: %s", path, errno == EEXIST
                     ? "exists; a witness key is never replaced" : strerror(errno));
        goto out;
    }
    close(fd);
    reserved = true;
    if ((rc = rh_privkey_save(sk, path, e)) != RH_OK)
        goto out;
    if ((rc = rh_note_vkey_format(&k, &text)) != RH_OK ||
        (rc = rh_buf_appendc(&text, '\n')) != RH_OK) {
        rc = rh_fail(e, rc, "%s: out of memory", pub);
        goto out;
    }
    const char *slash = strrchr(pub, '/');
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == pub ? 1 : (int)(slash - pub), pub);
    if ((rc = rh_file_write_atomic(dir, slash ? slash + 1 : pub, text.data, text.len, false,
                                   0644, e)) != RH_OK)
        goto out;
    reserved = false;
    if (vkey != NULL && (rc = rh_buf_append(vkey, text.data, text.len - 1)) != RH_OK)
        rc = rh_fail(e, rc, "out of memory");
out:
    if (reserved)
        (void)unlink(path);
    rh_privkey_free(sk);
    rh_buf_cleanup(&text);
    return rc;
}

rh_err rh_witness_key_load(const char *path, const char *name, rh_privkey **sk, rh_note_key *self,
                           rh_error *e)
{
    rh_privkey *k = NULL;
    rh_note_key nk;
    rh_err rc = rh_privkey_load(path, &k, e);
    if (rc == RH_OK && (rc = rh_note_key_from_privkey(k, name, RH_NOTE_TYPE_COSIG_V1, &nk, e)) ==
                           RH_OK) {
        *sk = k;
        *self = nk;
        return RH_OK;
    }
    rh_privkey_free(k);
    return rc;
}

static rh_err write_file(const char *dir, const char *name, const void *p, size_t n, rh_error *e)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return rh_fail(e, RH_ETOOBIG, "%s/%s: path too long", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return rh_fail(e, RH_EIO, "%s: %s", path, strerror(errno));
    rh_err rc = rh_file_write_all(fd, p, n);
    if (rc == RH_OK && fsync(fd) != 0)
        rc = RH_EIO;
    if (close(fd) != 0)
        rc = RH_EIO;
    return rc == RH_OK ? rc : rh_fail(e, RH_EIO, "%s: cannot write: %s", path, strerror(errno));
}

/* A new directory DATA/evidence/<stamp><suffix>[-k] into d (base: DATA/evidence): mkdir is
 * the exclusive claim, nothing is ever replaced. */
static rh_err evidence_claim(const char *data, int64_t now, const char *suffix, char *base,
                             char *d, char *stamp, rh_error *e)
{
    if (snprintf(base, PATH_MAX, "%s/%s", data, RH_WITNESS_EVIDENCE_DIR) >= PATH_MAX)
        return rh_fail(e, RH_ETOOBIG, "%s: path too long", data);
    rh_err rc = rh_mfs_mkdirs(base, e);
    if (rc != RH_OK)
        return rc;
    struct tm tm;
    time_t t = (time_t)now;
    gmtime_r(&t, &tm);
    strftime(stamp, 32, "%Y%m%dT%H%M%SZ", &tm);
    for (int k = 0; k < RH_WITNESS_MAX_EVIDENCE; k++) {
        int n = k == 0 ? snprintf(d, PATH_MAX, "%s/%s%s", base, stamp, suffix)
                       : snprintf(d, PATH_MAX, "%s/%s%s-%d", base, stamp, suffix, k);
        if (n >= PATH_MAX)
            return rh_fail(e, RH_ETOOBIG, "%s: path too long", base);
        if (mkdir(d, 0755) == 0)
            return RH_OK;
        if (errno != EEXIST)
            return rh_fail(e, RH_EIO, "%s: %s", d, strerror(errno));
    }
    return rh_fail(e, RH_EIO, "%s: %d evidence directories already", base,
                   RH_WITNESS_MAX_EVIDENCE);
}

rh_err rh_witness_evidence_write(const char *data, const uint8_t *old, size_t oldlen,
                                 const uint8_t *cur, size_t curlen, const char *upstream,
                                 const char *why, int64_t now, char *dir, size_t dirsz,
                                 rh_error *e)
{
    char base[PATH_MAX], d[PATH_MAX], stamp[32];
    rh_err rc = evidence_claim(data, now, "", base, d, stamp, e);
    if (rc != RH_OK)
        return rc;
    rh_buf r;
    rh_buf_init(&r, 16384);
    (void)rh_buf_appendf(&r, "upstream: %s\ntime: %s\nreason: %s\n"
                         "old-checkpoint: the checkpoint this mirror had accepted\n"
                         "new-checkpoint: the upstream's checkpoint, signed by the same log key\n",
                         upstream, stamp, why);
    if ((rc = write_file(d, "old-checkpoint", old, oldlen, e)) == RH_OK &&
        (rc = write_file(d, "new-checkpoint", cur, curlen, e)) == RH_OK &&
        (rc = write_file(d, "reason", r.data, r.len, e)) == RH_OK &&
        (rc = rh_mfs_fsync_dir(d, e)) == RH_OK)
        rc = rh_mfs_fsync_dir(base, e);
    rh_buf_cleanup(&r);
    if (rc == RH_OK && snprintf(dir, dirsz, "%s", d) >= (int)dirsz)
        rc = rh_fail(e, RH_ETOOBIG, "%s: path too long", d);
    return rc;
}

/* ---- status and operator reset ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void rh_witness_status(const char *data, rh_log_status *out)
{
    memset(out, 0, sizeof *out);
    char p[PATH_MAX];
    rh_mirror_state st;
    memset(&st, 0, sizeof st);
    snprintf(p, sizeof p, "%s/state.json", data);
    if (rh_mirror_state_load(p, &st, NULL) == RH_OK) {
        rh_note *n = NULL;
        rh_checkpoint cp;
        if (st.log_checkpoint != NULL &&
            rh_note_parse((const uint8_t *)st.log_checkpoint, strlen(st.log_checkpoint), "state",
                          &n, NULL) == RH_OK &&
            rh_checkpoint_parse(n->text, n->textlen, "state", &cp, NULL) == RH_OK) {
            out->has_checkpoint = true;
            out->size = cp.size;
            memcpy(out->root, cp.root, 32);
            rh_checkpoint_cleanup(&cp);
        }
        rh_note_free(n);
        if (st.log_inconsistent != NULL) {
            out->inconsistent = true;
            size_t ml = strlen(st.log_inconsistent);
            if (ml >= sizeof out->marker)
                ml = sizeof out->marker - 1;
            memcpy(out->marker, st.log_inconsistent, ml);
            out->marker[ml] = '\0';
        }
        rh_mirror_state_cleanup(&st);
    }
    snprintf(p, sizeof p, "%s/%s", data, RH_WITNESS_EVIDENCE_DIR);
    DIR *dir = opendir(p);
    if (dir == NULL)
        return;
    char *names[RH_WITNESS_MAX_EVIDENCE];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && nn < RH_WITNESS_MAX_EVIDENCE)
        if (de->d_name[0] != '.' && (names[nn] = strdup(de->d_name)) != NULL)
            nn++;
    closedir(dir);
    qsort(names, nn, sizeof names[0], cmp_str);
    out->nevidence = nn;
    /* The newest ones. */
    size_t first = nn > RH_WITNESS_MAX_SHOWN ? nn - RH_WITNESS_MAX_SHOWN : 0;
    for (size_t i = first; i < nn; i++)
        if (snprintf(out->evidence[i - first], RH_WITNESS_MAX_PATH, "%s/%s", p, names[i]) >=
            RH_WITNESS_MAX_PATH)
            out->evidence[i - first][0] = '\0'; /* too long to show whole */
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
}

rh_err rh_witness_log_reset(const char *data, rh_error *e)
{
    char lockp[PATH_MAX], statep[PATH_MAX];
    if (snprintf(lockp, sizeof lockp, "%s/.lock", data) >= (int)sizeof lockp ||
        snprintf(statep, sizeof statep, "%s/state.json", data) >= (int)sizeof statep)
        return rh_fail(e, RH_EIO, "%s: path too long", data);
    int fd = open(lockp, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return rh_fail(e, RH_EIO, "%s: %s (not a mirror data directory?)", lockp,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return rh_fail(e, RH_EIO, "%s: locked by a sync of this data dir; try again", lockp);
    }
    rh_mirror_state st;
    rh_err rc = rh_mirror_state_load(statep, &st, e);
    if (rc == RH_OK) {
        free(st.log_checkpoint);
        free(st.log_inconsistent);
        st.log_checkpoint = st.log_inconsistent = NULL;
        rc = rh_mirror_state_save(statep, &st, e);
        rh_mirror_state_cleanup(&st);
    }
    /* The log served so far goes with the evidence: the next round must not take its full
     * tiles for its own verified copy of a log it now trusts afresh. */
    char pl[PATH_MAX], base[PATH_MAX], d[PATH_MAX], dst[PATH_MAX], stamp[32];
    struct stat sb;
    if (rc == RH_OK && snprintf(pl, sizeof pl, "%s/public/log", data) < (int)sizeof pl &&
        lstat(pl, &sb) == 0 &&
        (rc = evidence_claim(data, (int64_t)time(NULL), "-reset", base, d, stamp, e)) == RH_OK) {
        if (snprintf(dst, sizeof dst, "%s/served-log", d) >= (int)sizeof dst)
            rc = rh_fail(e, RH_ETOOBIG, "%s: path too long", d);
        else if (rename(pl, dst) != 0)
            rc = rh_fail(e, RH_EIO, "%s: cannot move to %s: %s", pl, dst, strerror(errno));
        else if ((rc = rh_mfs_fsync_dir(d, e)) == RH_OK &&
                 (rc = rh_mfs_fsync_dir(base, e)) == RH_OK &&
                 snprintf(pl, sizeof pl, "%s/public", data) < (int)sizeof pl)
            rc = rh_mfs_fsync_dir(pl, e);
    }
    close(fd);
    return rc;
}

/* ---- reading the upstream's log ------------------------------------------------------------ */

typedef struct lsrc {
    rh_http *h;
    const char *upstream;
    const char *data;
    bool reuse;   /* full tiles and bundles from public/log */
    bool stage;   /* files fetched are kept in staging/log */
    rh_log_round *lr;
} lsrc;

static bool is_full(const char *path)
{
    return strncmp(path, "log/tile/", 9) == 0 && strstr(path, ".p/") == NULL;
}

static rh_err lsrc_get(void *ctx, const char *path, size_t max, rh_buf *out, rh_error *e)
{
    lsrc *s = ctx;
    char local[PATH_MAX], url[RH_NET_MAX_URL];
    rh_buf_reset(out);
    if (strncmp(path, "log/", 4) != 0 || strstr(path, "..") != NULL)
        return rh_fail(e, RH_EPATH, "%s: not a log path", path);
    if (s->reuse && is_full(path)) {
        /* Full tiles and bundles are immutable: the verified copy this mirror serves. */
        if (snprintf(local, sizeof local, "%s/public/%s", s->data, path) < (int)sizeof local &&
            rh_mfs_read(local, max, out, NULL) == RH_OK)
            return RH_OK;
        rh_buf_reset(out);
    }
    if (s->stage) {
        if (snprintf(local, sizeof local, "%s/staging/%s", s->data, path) >= (int)sizeof local)
            return rh_fail(e, RH_ETOOBIG, "%s: path too long", path);
        if (rh_mfs_read(local, max, out, NULL) == RH_OK)
            return RH_OK;
        rh_buf_reset(out);
    }
    if (rh_url_join(s->upstream, path, url, sizeof url) != RH_OK)
        return rh_fail(e, RH_ETOOBIG, "%s/%s: URL too long", s->upstream, path);
    rh_err rc = rh_http_get_buf(s->h, url, max, out, NULL, e);
    if (rc != RH_OK)
        return rc;
    if (s->lr != NULL) {
        s->lr->bytes += out->len;
        s->lr->objects++;
    }
    /* Not yet verified: staged, published only once the whole log verified. */
    if (s->stage && strcmp(path, "log/checkpoint") != 0) {
        if ((rc = rh_mfs_mkparent(local, e)) != RH_OK ||
            (rc = rh_mfs_write(local, out->data, out->len, e)) != RH_OK)
            return rc;
    }
    return RH_OK;
}

rh_err rh_witness_run_init(rh_witness_run *r, const rh_witness_opts *w, rh_error *e)
{
    memset(r, 0, sizeof *r);
    rh_buf_init(&r->cur, RH_NOTE_MAX_BYTES);
    rh_err rc = rh_config_vkey(w->log_key, &r->logkey, e);
    if (rc != RH_OK) {
        rh_error_prefix(e, "log_key");
        goto config;
    }
    if (r->logkey.type != RH_NOTE_TYPE_ED25519)
        return rh_fail(e, RH_ECONFIG, "log_key: not an Ed25519 signed-note key (type 0x01)");
    if (w->key != NULL) {
        if (w->name == NULL)
            return rh_fail(e, RH_ECONFIG, "witness: no name");
        if ((rc = rh_witness_key_load(w->key, w->name, &r->sk, &r->self, e)) != RH_OK) {
            rh_error_prefix(e, "witness.key");
            goto config;
        }
        r->cosign = true;
    }
    return RH_OK;
config:
    if (e != NULL)
        e->code = RH_ECONFIG; /* a bad key in the configuration, whatever the reason below */
    return RH_ECONFIG;
}

void rh_witness_run_cleanup(rh_witness_run *r)
{
    if (r == NULL)
        return;
    rh_privkey_free(r->sk);
    rh_log_view_free(r->view);
    rh_buf_cleanup(&r->cur);
    memset(r, 0, sizeof *r);
}

rh_err rh_witness_run_sync(rh_witness_run *r, rh_http *h, const char *upstream, const char *data,
                           rh_mirror_state *st, int64_t now, rh_log_round *lr, rh_error *e)
{
    rh_buf served;
    rh_buf_init(&served, RH_NOTE_MAX_BYTES);
    rh_error why;
    rh_error_clear(&why);
    lsrc up = {h, upstream, data, false, false, lr};
    rh_log_src upsrc = {lsrc_get, &up};
    rh_err rc;
    if (st->log_inconsistent != NULL) {
        lr->refused = true;
        rc = rh_fail(e, RH_ELOG, "transparency log refused: an inconsistent checkpoint was seen "
                     "(evidence in %s); nothing is published until an operator investigates and "
                     "runs `rhine-mirror log-reset --data %s`", st->log_inconsistent, data);
        goto out;
    }
    rh_buf_reset(&r->cur);
    if ((rc = lsrc_get(&up, "log/checkpoint", RH_NOTE_MAX_BYTES, &r->cur, e)) != RH_OK) {
        rh_error_prefix(e, "transparency log");
        goto out;
    }
    const char *old = st->log_checkpoint;
    size_t oldlen = old != NULL ? strlen(old) : 0;
    rh_witness_verdict v;
    if ((rc = rh_witness_judge(&upsrc, &r->logkey, (const uint8_t *)old, oldlen, r->cur.data,
                               r->cur.len, &v, &why, e)) != RH_OK) {
        rh_error_prefix(e, "transparency log from %s", upstream);
        goto out;
    }
    if (v == RH_WITNESS_INCONSISTENT) {
        char dir[PATH_MAX];
        char *mark = NULL;
        if ((rc = rh_witness_evidence_write(data, (const uint8_t *)old, oldlen, r->cur.data,
                                            r->cur.len, upstream, why.msg, now, dir, sizeof dir,
                                            e)) != RH_OK)
            goto out;
        if ((mark = strdup(dir)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "out of memory");
            goto out;
        }
        free(st->log_inconsistent);
        st->log_inconsistent = mark;
        lr->inconsistent = true;
        rc = rh_fail(e, RH_ELOG, "transparency log from %s is INCONSISTENT with the checkpoint "
                     "this mirror accepted: %s; both signed checkpoints kept as evidence in %s; "
                     "still serving the last good version", upstream, why.msg, dir);
        goto out;
    }
    /* The whole log, against the (now trusted to extend ours) checkpoint. */
    lsrc rs = {h, upstream, data, v != RH_WITNESS_FIRST, true, lr};
    rh_log_src rsrc = {lsrc_get, &rs};
    rh_log_keys keys;
    memset(&keys, 0, sizeof keys);
    keys.log = r->logkey;
    rh_log_view_free(r->view);
    r->view = NULL;
    if ((rc = rh_log_read_note(&rsrc, &keys, r->cur.data, r->cur.len, "log/checkpoint", &r->view,
                               e)) != RH_OK) {
        rh_error_prefix(e, "transparency log from %s", upstream);
        goto out;
    }
    lr->checked = true;
    /* Rewrite the served checkpoint when the upstream's changed, or ours is missing/uncosigned. */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/public/log/checkpoint", data);
    r->rewrite_cp = old == NULL || oldlen != r->cur.len || memcmp(old, r->cur.data, oldlen) != 0 ||
                    rh_mfs_read(p, RH_NOTE_MAX_BYTES, &served, NULL) != RH_OK ||
                    (r->cosign && !rh_witness_note_has(served.data, served.len, &r->self));
    rc = RH_OK;
out:
    rh_buf_cleanup(&served);
    return rc;
}

rh_err rh_witness_run_note(rh_witness_run *r, int64_t now, rh_buf *out, rh_error *e)
{
    if (!r->cosign)
        return rh_buf_append(out, r->cur.data, r->cur.len) == RH_OK
                   ? RH_OK : rh_fail(e, RH_ENOMEM, "log/checkpoint: out of memory");
    return rh_witness_cosign_note(r->cur.data, r->cur.len, &r->self, r->sk,
                                  now > 0 ? (uint64_t)now : 0, out, e);
}
