/* origin_repo.c -- init, publish, refresh and rotate: origin_plan decides, repo_fs does the I/O. */
#include "origin/origin_repo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/keys.h"
#include "manifest/limits.h"
#include "origin/origin_plan.h"
#include "origin/repo_fs.h"
#include "origin/tlog.h"

static bool file_exists(const char *p);

#define DAY (24 * 3600)

void rh_origin_lifetimes_default(rh_origin_lifetimes *l)
{
    l->life[RH_ROLE_ROOT] = 365 * DAY;
    l->life[RH_ROLE_TIMESTAMP] = 1 * DAY;
    l->life[RH_ROLE_SNAPSHOT] = 7 * DAY;
    l->life[RH_ROLE_TARGETS] = 90 * DAY;
}

static rh_err fmt_path(char out[RH_ORIGIN_MAX_PATH], rh_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rh_err fmt_path(char out[RH_ORIGIN_MAX_PATH], rh_error *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, RH_ORIGIN_MAX_PATH, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= RH_ORIGIN_MAX_PATH)
        return rh_fail(e, RH_EINVAL, "%.64s...: path longer than %d bytes", out,
                       RH_ORIGIN_MAX_PATH - 1);
    return RH_OK;
}

rh_err rh_origin_keypaths_init(rh_origin_keypaths *kp, const char *keys_dir, rh_error *e)
{
    rh_err rc = RH_OK;
    for (int i = 0; rc == RH_OK && i < RH_ORIGIN_MAX_ROOT_KEYS; i++)
        rc = fmt_path(kp->root[i], e, "%s/%s/root-%d.pem", keys_dir, RH_ORIGIN_KEYS_OFFLINE,
                      i + 1);
    if (rc == RH_OK)
        rc = fmt_path(kp->targets, e, "%s/%s/targets.pem", keys_dir, RH_ORIGIN_KEYS_OFFLINE);
    if (rc == RH_OK)
        rc = fmt_path(kp->snapshot, e, "%s/%s/snapshot.pem", keys_dir, RH_ORIGIN_KEYS_ONLINE);
    if (rc == RH_OK)
        rc = fmt_path(kp->timestamp, e, "%s/%s/timestamp.pem", keys_dir, RH_ORIGIN_KEYS_ONLINE);
    return rc;
}

/* "<path without .pem><suffix>", e.g. ".new.pem" or ".old-3.pem". */
static rh_err key_sibling(const char *path, const char *suffix, char out[RH_ORIGIN_MAX_PATH],
                          rh_error *e)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".pem") == 0)
        n -= 4;
    int w = snprintf(out, RH_ORIGIN_MAX_PATH, "%.*s%s", (int)n, path, suffix);
    if (w < 0 || w >= RH_ORIGIN_MAX_PATH)
        return rh_fail(e, RH_EINVAL, "%s: path too long", path);
    return RH_OK;
}

/* rename(from, to) of two files in one directory, then fsync that directory. */
static rh_err rename_durable(const char *from, const char *to, rh_error *e)
{
    if (rename(from, to) != 0)
        return rh_fail(e, RH_EIO, "%s: rename to %s failed: %s", from, to, strerror(errno));
    char dir[RH_ORIGIN_MAX_PATH];
    const char *slash = strrchr(to, '/');
    size_t dl = slash ? (size_t)(slash - to) : 0;
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else if (dl == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, to, dl);
        dir[dl] = '\0';
    }
    return rh_file_sync_dir(dir, e);
}

/* ---- repository state ----------------------------------------------------------------------*/

typedef struct repo_state {
    char repo[RH_ORIGIN_MAX_PATH];
    char metadir[RH_ORIGIN_MAX_PATH];
    char targetsdir[RH_ORIGIN_MAX_PATH];
    rh_origin_lifetimes lt;
    rh_metadata *root, *timestamp, *snapshot, *targets;
    uint64_t snapshot_len, targets_len;
    uint8_t snapshot_sha[RH_SHA256_LEN], targets_sha[RH_SHA256_LEN];
    uint64_t disk_root, disk_snapshot, disk_targets;
    int lockfd;
    char log_key[RH_ORIGIN_MAX_PATH]; /* online/log.pem beside the timestamp key, "" = none */
} repo_state;

static void state_cleanup(repo_state *st)
{
    rh_metadata_free(st->root);
    rh_metadata_free(st->timestamp);
    rh_metadata_free(st->snapshot);
    rh_metadata_free(st->targets);
    st->root = st->timestamp = st->snapshot = st->targets = NULL;
    rh_fs_unlock(st->lockfd);
    st->lockfd = -1;
}

/* Read and parse metadir/name as role; check it against meta (length, hashes) when given.
 * lean: rh_metadata_parse_lean (no JSON tree of a targets document's entries). */
static rh_err load_md(const char *metadir, const char *name, size_t max, rh_role role,
                      const rh_metafile *meta, bool lean, rh_metadata **out, uint64_t *len,
                      uint8_t sha[RH_SHA256_LEN], rh_error *e)
{
    char path[RH_ORIGIN_MAX_PATH];
    rh_err rc = fmt_path(path, e, "%s/%s", metadir, name);
    if (rc != RH_OK)
        return rc;
    rh_buf b;
    rh_buf_init(&b, max);
    rh_metadata *m = NULL;
    if ((rc = rh_file_read(path, max, &b, e)) != RH_OK)
        goto out;
    if ((rc = (lean ? rh_metadata_parse_lean : rh_metadata_parse)(b.data, b.len, max, role, path,
                                                                &m, e)) != RH_OK)
        goto out;
    if (meta != NULL) {
        if (meta->length >= 0 && (uint64_t)meta->length != b.len) {
            rc = rh_fail(e, RH_EHASH, "%s: %zu bytes, but its META entry says %lld", path,
                         b.len, (long long)meta->length);
            goto out;
        }
        if (meta->has_hashes &&
            (rc = rh_hashes_check(&meta->hashes, b.data, b.len, path, e)) != RH_OK)
            goto out;
        if (m->version != meta->version) {
            rc = rh_fail(e, RH_EVERSION, "%s: version %llu, but its META entry says %llu", path,
                         (unsigned long long)m->version, (unsigned long long)meta->version);
            goto out;
        }
    }
    if (sha != NULL && (rc = rh_hash_once(RH_SHA256, b.data, b.len, sha)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: hashing failed", path);
        goto out;
    }
    if (len != NULL)
        *len = b.len;
    *out = m;
    m = NULL;
out:
    rh_metadata_free(m);
    rh_buf_cleanup(&b);
    return rc;
}

static rh_err load_config(repo_state *st, rh_error *e)
{
    rh_origin_lifetimes_default(&st->lt);
    char path[RH_ORIGIN_MAX_PATH];
    rh_err rc = fmt_path(path, e, "%s/%s", st->repo, RH_ORIGIN_CONFIG_FILE);
    if (rc != RH_OK)
        return rc;
    rh_buf b;
    rh_buf_init(&b, RH_MAX_CONFIG_BYTES);
    json_t *cfg = NULL;
    rh_error tmp;
    rh_error_clear(&tmp);
    rc = rh_file_read(path, RH_MAX_CONFIG_BYTES, &b, &tmp);
    if (rc == RH_ENOTFOUND) { /* defaults */
        rc = RH_OK;
        goto out;
    }
    if (rc != RH_OK) {
        rc = rh_fail(e, rc, "%s", tmp.msg);
        goto out;
    }
    if ((rc = rh_json_parse(b.data, b.len, RH_MAX_CONFIG_BYTES, path, &cfg, e)) != RH_OK)
        goto out;
    json_t *ex = json_object_get(cfg, "expires");
    for (int r = 0; r < RH_ROLE_COUNT; r++) {
        json_t *v = json_object_get(ex, rh_role_name((rh_role)r));
        if (v == NULL)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 100LL * 366 * DAY) {
            rc = rh_fail(e, RH_ECONFIG, "%s: expires.%s: expected 1..3162240000 seconds", path,
                         rh_role_name((rh_role)r));
            goto out;
        }
        st->lt.life[r] = (int64_t)json_integer_value(v);
    }
out:
    json_decref(cfg);
    rh_buf_cleanup(&b);
    return rc;
}

static rh_err write_config(const char *repo, const rh_origin_lifetimes *lt, rh_error *e)
{
    json_t *ex = json_object(), *cfg = NULL;
    char *text = NULL;
    rh_err rc = RH_OK;
    for (int r = 0; ex != NULL && r < RH_ROLE_COUNT; r++)
        if (json_object_set_new(ex, rh_role_name((rh_role)r),
                                json_integer((json_int_t)lt->life[r])) != 0) {
            json_decref(ex);
            ex = NULL;
        }
    if (ex == NULL || (cfg = json_pack("{s:o}", "expires", ex)) == NULL ||
        (text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", repo);
        goto out;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves the NUL; we write n+1 bytes ending in a newline */
    rc = rh_file_write_atomic(repo, RH_ORIGIN_CONFIG_FILE, (const uint8_t *)text, n + 1, false,
                            0644, e);
out:
    json_decref(cfg);
    free(text);
    return rc;
}

/* Lock the repository and load the trusted chain: the highest N.root.json, timestamp.json, the
 * snapshot it names, the targets the snapshot names; each verified against the root and its
 * META entry (the origin refuses to build on a repository it would not serve). lean: the
 * targets without a JSON tree of their entries (st->targets->signed_obj has none), enough to
 * check a repository, not to build on it. */
static rh_err state_load(const char *repo, repo_state *st, bool lock, bool lean, rh_error *e)
{
    memset(st, 0, sizeof *st);
    st->lockfd = -1;
    char name[64];
    rh_err rc;
    if ((rc = fmt_path(st->repo, e, "%s%s", repo, "")) != RH_OK ||
        (rc = fmt_path(st->metadir, e, "%s/%s", repo, "metadata")) != RH_OK ||
        (rc = fmt_path(st->targetsdir, e, "%s/%s", repo, "targets")) != RH_OK)
        return rc;
    if (lock && (rc = rh_fs_lock(repo, &st->lockfd, e)) != RH_OK)
        return rc;
    if ((rc = load_config(st, e)) != RH_OK)
        goto fail;
    if ((rc = rh_fs_highest_version(st->metadir, "root", &st->disk_root, e)) != RH_OK ||
        (rc = rh_fs_highest_version(st->metadir, "snapshot", &st->disk_snapshot, e)) != RH_OK ||
        (rc = rh_fs_highest_version(st->metadir, "targets", &st->disk_targets, e)) != RH_OK)
        goto fail;
    if (st->disk_root == 0) {
        rc = rh_fail(e, RH_ENOTFOUND, "%s: no N.root.json (run rhine-origin init)", st->metadir);
        goto fail;
    }
    snprintf(name, sizeof name, "%llu.root.json", (unsigned long long)st->disk_root);
    if ((rc = load_md(st->metadir, name, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, NULL, false, &st->root,
                      NULL, NULL, e)) != RH_OK)
        goto fail;
    /* TUF 5.3.4: a root must be signed by its own threshold of root keys. */
    if ((rc = rh_root_verify_role(st->root, RH_ROLE_ROOT, st->root, e)) != RH_OK)
        goto fail;
    if ((rc = load_md(st->metadir, "timestamp.json", RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP,
                      NULL, false, &st->timestamp, NULL, NULL, e)) != RH_OK ||
        (rc = rh_root_verify_role(st->root, RH_ROLE_TIMESTAMP, st->timestamp, e)) != RH_OK)
        goto fail;
    snprintf(name, sizeof name, "%llu.snapshot.json",
             (unsigned long long)st->timestamp->u.timestamp.version);
    if ((rc = load_md(st->metadir, name, RH_MAX_SNAPSHOT_BYTES, RH_ROLE_SNAPSHOT,
                      &st->timestamp->u.timestamp, false, &st->snapshot, &st->snapshot_len,
                      st->snapshot_sha, e)) != RH_OK ||
        (rc = rh_root_verify_role(st->root, RH_ROLE_SNAPSHOT, st->snapshot, e)) != RH_OK)
        goto fail;
    const rh_metafile *tm = rh_snapshot_find(st->snapshot, "targets.json");
    if (tm == NULL) {
        rc = rh_fail(e, RH_EPARSE, "%s/%s: no targets.json entry", st->metadir, name);
        goto fail;
    }
    snprintf(name, sizeof name, "%llu.targets.json", (unsigned long long)tm->version);
    if ((rc = load_md(st->metadir, name, RH_MAX_TARGETS_BYTES, RH_ROLE_TARGETS, tm, lean,
                      &st->targets, &st->targets_len, st->targets_sha, e)) != RH_OK ||
        (rc = rh_root_verify_role(st->root, RH_ROLE_TARGETS, st->targets, e)) != RH_OK)
        goto fail;
    return RH_OK;
fail:
    state_cleanup(st);
    return rc;
}

/* Load a private key and check that root authorises it for role. */
static rh_err load_key(const char *path, const rh_metadata *root, rh_role role,
                       rh_privkey **out, rh_error *e)
{
    rh_privkey *k = NULL;
    char id[RH_KEYID_HEX_LEN + 1];
    rh_err rc = rh_privkey_load(path, &k, e);
    if (rc != RH_OK)
        return rc;
    if ((rc = rh_privkey_keyid(k, id)) != RH_OK) {
        rh_privkey_free(k);
        return rh_fail(e, rc, "%s: cannot compute the key ID", path);
    }
    const rh_rolekeys *rk = &root->u.root.roles[role];
    for (size_t i = 0; i < rk->nkeyids; i++)
        if (strcmp(rk->keyids[i], id) == 0) {
            *out = k;
            return RH_OK;
        }
    rh_privkey_free(k);
    return rh_fail(e, RH_ESIG, "%s: key %.16s... is not a %s key of %llu.root.json "
                   "(an interrupted rotation? see rhine-origin rotate --help)",
                   path, id, rh_role_name(role), (unsigned long long)root->version);
}

/* Sign signed_obj with keys and publish it in metadir: "timestamp.json" (replaced) or
 * "<version>.<role>.json" (new, never replaced). Length and sha256 of the bytes out. The bytes
 * are parsed back with the client's parser before they are written (rh_metadata_parse_lean:
 * the full parse for every role but targets). */
static rh_err sign_write(const char *metadir, rh_role role, uint64_t version,
                         const json_t *signed_obj, rh_privkey *const *keys, size_t nkeys,
                         uint64_t *len, uint8_t sha[RH_SHA256_LEN], rh_error *e)
{
    char name[64];
    if (role == RH_ROLE_TIMESTAMP)
        snprintf(name, sizeof name, "timestamp.json");
    else
        snprintf(name, sizeof name, "%llu.%s.json", (unsigned long long)version,
                 rh_role_name(role));
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_metadata *m = NULL;
    rh_err rc;
    if (signed_obj == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s/%s: out of memory", metadir, name);
        goto out;
    }
    if ((rc = rh_metadata_sign(signed_obj, keys, nkeys, &b, e)) != RH_OK) {
        rh_error_prefix(e, "%s/%s", metadir, name);
        goto out;
    }
    /* Targets through the lean parse: it accepts exactly what the full one does (fuzz_metadata
     * compares them), without a third tree of a large repository's targets in memory. */
    if ((rc = rh_metadata_parse_lean(b.data, b.len, RH_MAX_JSON_BYTES, role, name, &m, e)) !=
        RH_OK)
        goto out;
    if ((rc = rh_hash_once(RH_SHA256, b.data, b.len, sha)) != RH_OK) {
        rc = rh_fail(e, rc, "%s/%s: hashing failed", metadir, name);
        goto out;
    }
    if ((rc = rh_file_write_atomic(metadir, name, b.data, b.len, role == RH_ROLE_TIMESTAMP, 0644,
                                 e)) != RH_OK)
        goto out;
    *len = b.len;
out:
    rh_metadata_free(m);
    rh_buf_cleanup(&b);
    return rc;
}

/* The log key sits beside the timestamp key (both online): "<dir>/log.pem", and the log's
 * name (the checkpoint's origin line) in "<dir>/log.origin". */
static void log_key_beside(repo_state *st, const char *timestamp_key)
{
    const char *slash = strrchr(timestamp_key, '/');
    int dl = slash ? (int)(slash - timestamp_key) : 1;
    snprintf(st->log_key, sizeof st->log_key, "%.*s/log.pem", dl, slash ? timestamp_key : ".");
}

/* DESIGN 8: append every signed N.<role>.json not yet in the transparency log and commit a new
 * checkpoint, before timestamp.json can point at any of it. A repository without a log key
 * (made before logging existed, or its operator declined) is left alone. */
static rh_err log_metadata(repo_state *st, int64_t now, rh_error *e)
{
    if (st->log_key[0] == '\0' || !file_exists(st->log_key))
        return RH_OK;
    char opath[RH_ORIGIN_MAX_PATH], origin[256] = "";
    size_t kl = strlen(st->log_key) - strlen("log.pem");
    snprintf(opath, sizeof opath, "%.*slog.origin", (int)kl, st->log_key);
    FILE *f = fopen(opath, "r");
    if (f == NULL || fgets(origin, sizeof origin, f) == NULL) {
        if (f != NULL)
            fclose(f);
        return rh_fail(e, RH_EIO, "%s: cannot read the log's name", opath);
    }
    fclose(f);
    origin[strcspn(origin, "\r\n")] = '\0';
    rh_tlog *log = NULL;
    size_t added = 0;
    rh_err rc = rh_tlog_open(st->repo, origin, st->log_key, &log, e);
    if (rc == RH_OK)
        rc = rh_tlog_sync_metadata(log, st->metadir, now, &added, e);
    if (rc == RH_OK && added > 0)
        rc = rh_tlog_commit(log, e);
    rh_tlog_close(log);
    return rc;
}

/* A new timestamp.json naming snapshot (version, length, sha). */
static rh_err write_timestamp(repo_state *st, int64_t now, uint64_t sv, uint64_t slen,
                              const uint8_t ssha[RH_SHA256_LEN], rh_privkey *const *keys,
                              size_t nkeys, uint64_t *tv_out, rh_error *e)
{
    rh_err lrc = log_metadata(st, now, e);
    if (lrc != RH_OK)
        return lrc;
    uint64_t tv = st->timestamp->version + 1;
    json_t *s = rh_signed_timestamp_new(tv, now + st->lt.life[RH_ROLE_TIMESTAMP], sv, slen, ssha);
    uint64_t len;
    uint8_t sha[RH_SHA256_LEN];
    rh_err rc = sign_write(st->metadir, RH_ROLE_TIMESTAMP, tv, s, keys, nkeys, &len, sha, e);
    json_decref(s);
    if (rc == RH_OK)
        *tv_out = tv;
    return rc;
}

/* A new N.snapshot.json with meta (borrowed), then timestamp.json naming it. */
static rh_err write_snapshot_timestamp(repo_state *st, int64_t now, const json_t *meta,
                                       rh_privkey *const *skeys, size_t nskeys,
                                       rh_privkey *const *tkeys, size_t ntkeys, uint64_t *sv_out,
                                       uint64_t *tv_out, rh_error *e)
{
    uint64_t sv = rh_next_version(st->snapshot->version, st->disk_snapshot);
    json_t *s = rh_signed_snapshot_new(sv, now + st->lt.life[RH_ROLE_SNAPSHOT], meta);
    uint64_t len;
    uint8_t sha[RH_SHA256_LEN];
    rh_err rc = sign_write(st->metadir, RH_ROLE_SNAPSHOT, sv, s, skeys, nskeys, &len, sha, e);
    json_decref(s);
    if (rc == RH_OK)
        rc = write_timestamp(st, now, sv, len, sha, tkeys, ntkeys, tv_out, e);
    if (rc == RH_OK)
        *sv_out = sv;
    return rc;
}

/* The current snapshot "meta" with "targets.json" replaced (delegated roles kept). */
static json_t *snapshot_meta_with_targets(const repo_state *st, uint64_t tv, uint64_t tlen,
                                          const uint8_t tsha[RH_SHA256_LEN])
{
    json_t *meta = json_deep_copy(json_object_get(st->snapshot->signed_obj, "meta"));
    json_t *ent = rh_meta_entry_new(tv, tlen, tsha);
    if (meta == NULL || ent == NULL || json_object_set_new(meta, "targets.json", ent) != 0) {
        if (meta == NULL || ent == NULL)
            json_decref(ent);
        json_decref(meta);
        return NULL;
    }
    return meta;
}

/* A new N.targets.json (signed), then snapshot and timestamp. */
static rh_err write_targets_chain(repo_state *st, int64_t now, const json_t *tsigned,
                                  uint64_t tv, rh_privkey *const *tkeys, size_t ntkeys,
                                  rh_privkey *snapkey, rh_privkey *tskey, uint64_t *sv_out,
                                  uint64_t *tsv_out, rh_error *e)
{
    uint64_t len;
    uint8_t sha[RH_SHA256_LEN];
    rh_err rc = sign_write(st->metadir, RH_ROLE_TARGETS, tv, tsigned, tkeys, ntkeys, &len, sha,
                           e);
    if (rc != RH_OK)
        return rc;
    json_t *meta = snapshot_meta_with_targets(st, tv, len, sha);
    if (meta == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", st->metadir);
    rc = write_snapshot_timestamp(st, now, meta, &snapkey, 1, &tskey, 1, sv_out, tsv_out, e);
    json_decref(meta);
    return rc;
}

/* Reload and verify the whole chain after a change (the origin checks what it published). The
 * caller holds the lock. */
static rh_err recheck(const char *repo, rh_error *e)
{
    repo_state st;
    rh_err rc = state_load(repo, &st, false, true, e);
    if (rc != RH_OK)
        rh_error_prefix(e, "self-check after writing");
    else
        state_cleanup(&st);
    return rc;
}

/* ---- init ----------------------------------------------------------------------------------*/

/* Generate a key and save it to path; its public object and key ID out. */
static rh_err new_key(const char *path, rh_privkey **k, json_t **pub,
                      char id[RH_KEYID_HEX_LEN + 1], rh_error *e)
{
    rh_err rc = rh_privkey_generate(k, e);
    if (rc != RH_OK)
        return rc;
    if ((rc = rh_privkey_save(*k, path, e)) != RH_OK)
        goto fail;
    if ((rc = rh_privkey_keyid(*k, id)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot compute the key ID", path);
        goto fail;
    }
    if ((*pub = rh_privkey_public_json(*k)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    return RH_OK;
fail:
    rh_privkey_free(*k);
    *k = NULL;
    return rc;
}

rh_err rh_origin_init(const rh_origin_init_opts *o, rh_error *e)
{
    rh_err rc = RH_OK;
    bool ok_repo, ok_keys;
    rh_origin_keypaths *kp = calloc(1, sizeof *kp);
    rh_privkey *keys[RH_ORIGIN_MAX_ROOT_KEYS + 3] = {NULL};
    json_t *pubs[RH_ORIGIN_MAX_ROOT_KEYS + 3] = {NULL};
    char ids[RH_ORIGIN_MAX_ROOT_KEYS + 3][RH_KEYID_HEX_LEN + 1];
    const char *idp[RH_ORIGIN_MAX_ROOT_KEYS + 3];
    json_t *root = NULL, *s = NULL, *empty = json_object();
    unsigned nr = o->root_keys;
    size_t nk = 0;
    char dir[RH_ORIGIN_MAX_PATH], metadir[RH_ORIGIN_MAX_PATH];
    if (kp == NULL || empty == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "init: out of memory");
        goto out;
    }
    if (nr < 1 || nr > RH_ORIGIN_MAX_ROOT_KEYS || o->root_threshold < 1 ||
        o->root_threshold > nr) {
        rc = rh_fail(e, RH_EINVAL, "init: need 1 <= root threshold (%u) <= root keys (%u) <= %d",
                     o->root_threshold, nr, RH_ORIGIN_MAX_ROOT_KEYS);
        goto out;
    }
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        if (o->lifetimes.life[r] <= 0) {
            rc = rh_fail(e, RH_EINVAL, "init: expires-%s must be positive",
                         rh_role_name((rh_role)r));
            goto out;
        }
    if ((rc = rh_fs_absent_or_empty(o->repo, &ok_repo, e)) != RH_OK ||
        (rc = rh_fs_absent_or_empty(o->keys, &ok_keys, e)) != RH_OK)
        goto out;
    if (!ok_repo || !ok_keys) {
        rc = rh_fail(e, RH_EIO, "%s: exists and is not empty (refusing to overwrite)",
                     ok_repo ? o->keys : o->repo);
        goto out;
    }
    if ((rc = rh_origin_keypaths_init(kp, o->keys, e)) != RH_OK)
        goto out;
    /* keys: 0700 directories, 0600 files (rh_privkey_save) */
    if ((rc = rh_fs_mkdir(o->keys, 0700, e)) != RH_OK ||
        (rc = fmt_path(dir, e, "%s/%s", o->keys, RH_ORIGIN_KEYS_OFFLINE)) != RH_OK ||
        (rc = rh_fs_mkdir(dir, 0700, e)) != RH_OK ||
        (rc = fmt_path(dir, e, "%s/%s", o->keys, RH_ORIGIN_KEYS_ONLINE)) != RH_OK ||
        (rc = rh_fs_mkdir(dir, 0700, e)) != RH_OK)
        goto out;
    if ((rc = rh_fs_mkdir(o->repo, 0755, e)) != RH_OK ||
        (rc = fmt_path(metadir, e, "%s/%s", o->repo, "metadata")) != RH_OK ||
        (rc = rh_fs_mkdir(metadir, 0755, e)) != RH_OK ||
        (rc = fmt_path(dir, e, "%s/%s", o->repo, "targets")) != RH_OK ||
        (rc = rh_fs_mkdir(dir, 0755, e)) != RH_OK)
        goto out;
    /* keys[0..nr) root, then targets, snapshot, timestamp */
    for (unsigned i = 0; i < nr + 3; i++) {
        const char *path = i < nr          ? kp->root[i]
                           : i == nr       ? kp->targets
                           : i == nr + 1   ? kp->snapshot
                                           : kp->timestamp;
        if ((rc = new_key(path, &keys[i], &pubs[i], ids[i], e)) != RH_OK)
            goto out;
        idp[i] = ids[i];
        nk++;
    }
    int64_t now = o->now;
    if ((root = rh_signed_root_new(1, now + o->lifetimes.life[RH_ROLE_ROOT], true)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "init: out of memory");
        goto out;
    }
    if ((rc = rh_root_set_role(root, RH_ROLE_ROOT, pubs, idp, nr, o->root_threshold, e)) ||
        (rc = rh_root_set_role(root, RH_ROLE_TARGETS, &pubs[nr], &idp[nr], 1, 1, e)) ||
        (rc = rh_root_set_role(root, RH_ROLE_SNAPSHOT, &pubs[nr + 1], &idp[nr + 1], 1, 1, e)) ||
        (rc = rh_root_set_role(root, RH_ROLE_TIMESTAMP, &pubs[nr + 2], &idp[nr + 2], 1, 1, e)))
        goto out;
    uint64_t len, tlen, slen;
    uint8_t sha[RH_SHA256_LEN], tsha[RH_SHA256_LEN], ssha[RH_SHA256_LEN];
    if ((rc = sign_write(metadir, RH_ROLE_ROOT, 1, root, keys, nr, &len, sha, e)) != RH_OK)
        goto out;
    s = rh_signed_targets_new(1, now + o->lifetimes.life[RH_ROLE_TARGETS], empty, NULL);
    if ((rc = sign_write(metadir, RH_ROLE_TARGETS, 1, s, &keys[nr], 1, &tlen, tsha, e)))
        goto out;
    json_decref(s);
    json_t *ent = rh_meta_entry_new(1, tlen, tsha);
    json_t *meta = ent ? json_pack("{s:o}", "targets.json", ent) : NULL;
    s = meta ? rh_signed_snapshot_new(1, now + o->lifetimes.life[RH_ROLE_SNAPSHOT], meta) : NULL;
    json_decref(meta);
    if ((rc = sign_write(metadir, RH_ROLE_SNAPSHOT, 1, s, &keys[nr + 1], 1, &slen, ssha, e)))
        goto out;
    /* The transparency log: its key beside the other online keys, version 1 of every role
     * logged before timestamp.json names it. */
    {
        const char *lname = o->log_origin ? o->log_origin : RH_ORIGIN_DEFAULT_LOG;
        repo_state lst;
        memset(&lst, 0, sizeof lst);
        lst.lockfd = -1;
        char opath[RH_ORIGIN_MAX_PATH];
        if ((rc = rh_tlog_keygen(o->keys, lname, NULL, e)) != RH_OK ||
            (rc = fmt_path(lst.repo, e, "%s%s", o->repo, "")) != RH_OK ||
            (rc = fmt_path(lst.metadir, e, "%s", metadir)) != RH_OK ||
            (rc = fmt_path(opath, e, "%s/%s/log.origin", o->keys, RH_ORIGIN_KEYS_ONLINE)))
            goto out;
        FILE *of = fopen(opath, "w");
        if (of == NULL || fprintf(of, "%s\n", lname) < 0 || fclose(of) != 0) {
            rc = rh_fail(e, RH_EIO, "%s: cannot write the log's name", opath);
            goto out;
        }
        log_key_beside(&lst, kp->timestamp);
        if ((rc = log_metadata(&lst, now, e)) != RH_OK)
            goto out;
    }
    json_decref(s);
    s = rh_signed_timestamp_new(1, now + o->lifetimes.life[RH_ROLE_TIMESTAMP], 1, slen, ssha);
    if ((rc = sign_write(metadir, RH_ROLE_TIMESTAMP, 1, s, &keys[nr + 2], 1, &len, sha, e)))
        goto out;
    if ((rc = write_config(o->repo, &o->lifetimes, e)) != RH_OK)
        goto out;
    rc = recheck(o->repo, e);
out:
    for (size_t i = 0; i < nk; i++) {
        rh_privkey_free(keys[i]);
        json_decref(pubs[i]);
    }
    json_decref(root);
    json_decref(s);
    json_decref(empty);
    free(kp);
    return rc;
}

/* ---- publish -------------------------------------------------------------------------------*/

static json_t *provenance_new(const rh_origin_publish_opts *o, rh_error *e, rh_err *rc)
{
    json_t *p = json_object();
    if (p == NULL) {
        *rc = rh_fail(e, RH_ENOMEM, "provenance: out of memory");
        return NULL;
    }
    if (o->source_rev != NULL &&
        json_object_set_new(p, "source_rev", json_string(o->source_rev)) != 0) {
        *rc = rh_fail(e, RH_EINVAL, "--source-rev: must be UTF-8 text");
        json_decref(p);
        return NULL;
    }
    if (o->build_recipe != NULL) {
        rh_buf b;
        rh_buf_init(&b, RH_MAX_CONFIG_BYTES);
        uint8_t sha[RH_SHA256_LEN];
        char hex[RH_SHA256_LEN * 2 + 1];
        const char *slash = strrchr(o->build_recipe, '/');
        *rc = rh_file_read(o->build_recipe, RH_MAX_CONFIG_BYTES, &b, e);
        if (*rc == RH_OK && (*rc = rh_hash_once(RH_SHA256, b.data, b.len, sha)) != RH_OK)
            rh_fail(e, *rc, "%s: hashing failed", o->build_recipe);
        if (*rc == RH_OK) {
            rh_hex_encode(sha, sizeof sha, hex);
            json_t *r = json_pack("{s:s,s:I,s:s}", "name", slash ? slash + 1 : o->build_recipe,
                                  "length", (json_int_t)b.len, "sha256", hex);
            if (r == NULL || json_object_set_new(p, "build_recipe", r) != 0)
                *rc = rh_fail(e, RH_EINVAL, "%s: recipe name must be UTF-8", o->build_recipe);
        }
        rh_buf_cleanup(&b);
        if (*rc != RH_OK) {
            json_decref(p);
            return NULL;
        }
    }
    *rc = RH_OK;
    return p;
}

rh_err rh_origin_publish(const rh_origin_publish_opts *o, rh_origin_publish_result *res,
                         rh_error *e)
{
    repo_state st;
    rh_origin_publish_result r;
    memset(&r, 0, sizeof r);
    rh_src_list src;
    memset(&src, 0, sizeof src);
    rh_publish_plan plan;
    memset(&plan, 0, sizeof plan);
    rh_privkey *tk = NULL, *sk = NULL, *tsk = NULL;
    json_t *newt = NULL, *prov = NULL, *tsigned = NULL;
    char *srcpath = NULL, *stored = NULL;
    rh_store_batch batch = {.sfd = -1};
    rh_err rc = state_load(o->repo, &st, true, false, e);
    log_key_beside(&st, o->timestamp_key);
    if (rc != RH_OK)
        return rc;
    if ((rc = load_key(o->targets_key, st.root, RH_ROLE_TARGETS, &tk, e)) != RH_OK ||
        (rc = load_key(o->snapshot_key, st.root, RH_ROLE_SNAPSHOT, &sk, e)) != RH_OK ||
        (rc = load_key(o->timestamp_key, st.root, RH_ROLE_TIMESTAMP, &tsk, e)) != RH_OK)
        goto out;
    if ((o->source_rev != NULL || o->build_recipe != NULL) &&
        (prov = provenance_new(o, e, &rc)) == NULL)
        goto out;
    if ((rc = rh_fs_scan_source(o->source, &src, e)) != RH_OK)
        goto out;
    for (size_t i = 0; o->warn != NULL && i < src.nskipped; i++)
        o->warn(o->warn_ctx, src.skipped[i]);
    const json_t *cur = json_object_get(st.targets->signed_obj, "targets");
    size_t stale = 0;
    if ((rc = rh_plan_publish(src.files, src.n, cur, &plan, e)) != RH_OK ||
        (rc = rh_fs_remove_temps(st.targetsdir, &stale, e)) != RH_OK ||
        (rc = rh_store_batch_init(&batch, st.targetsdir, e)) != RH_OK)
        goto out;
    if (stale > 0 && o->warn != NULL) {
        char msg[512];
        snprintf(msg, sizeof msg, "%.400s: removed %zu temp file%s left by an interrupted "
                 "publish", st.targetsdir, stale, stale == 1 ? "" : "s");
        o->warn(o->warn_ctx, msg);
    }
    for (size_t i = 0; i < plan.nitems; i++) {
        rh_plan_item *it = &plan.items[i];
        if (it->action == RH_PLAN_KEEP) {
            json_t *lv = json_object_get(it->entry, "length");
            stored = rh_target_stored_path(it->target_path, rh_target_entry_sha256(it->entry));
            if (stored == NULL) {
                rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", it->target_path);
                goto out;
            }
            bool ok = json_is_integer(lv) && json_integer_value(lv) >= 0 &&
                      rh_fs_stored_ok(st.targetsdir, stored, (uint64_t)json_integer_value(lv));
            free(stored);
            stored = NULL;
            if (ok)
                continue;
            r.nrestored++; /* the stored file went missing: compress it again */
        }
        rh_stored so;
        free(srcpath);
        if ((srcpath = rh_path_join(o->source, it->src->relpath)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", it->src->relpath);
            goto out;
        }
        if ((rc = rh_fs_store_target(&batch, srcpath, it->target_path, o->level, &so, e)) !=
            RH_OK)
            goto out;
        json_decref(it->entry);
        if ((it->entry = rh_target_entry_new(so.zlen, so.zsha, so.ulen, so.usha)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", it->target_path);
            goto out;
        }
        r.bytes_read += so.ulen;
        if (!so.existed)
            r.bytes_written += so.zlen;
    }
    /* Every stored file is durable and in place before any metadata names it. */
    if ((rc = rh_store_batch_commit(&batch, e)) != RH_OK)
        goto out;
    if ((newt = rh_plan_targets_object(&plan)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", o->repo);
        goto out;
    }
    r.nfiles = src.n;
    r.nadded = plan.nadded;
    r.nchanged = plan.nchanged;
    r.nremoved = plan.nremoved;
    r.nkept = plan.nkept;
    if (cur != NULL && json_equal(newt, (json_t *)cur)) {
        r.unchanged = true;
        r.targets_version = st.targets->version;
        r.snapshot_version = st.snapshot->version;
        r.timestamp_version = st.timestamp->version;
        goto done;
    }
    r.targets_version = rh_next_version(st.targets->version, st.disk_targets);
    tsigned = rh_signed_targets_new(r.targets_version,
                                    o->now + st.lt.life[RH_ROLE_TARGETS], newt, prov);
    if ((rc = write_targets_chain(&st, o->now, tsigned, r.targets_version, &tk, 1, sk, tsk,
                                  &r.snapshot_version, &r.timestamp_version, e)) != RH_OK)
        goto out;
    /* What was written is read back below; the trees that built it go first (each about as
     * large as the targets: 20,000 targets peaked at 119 MB of heap with them). The lock
     * stays. */
    json_decref(tsigned);
    json_decref(newt);
    tsigned = newt = NULL;
    rh_publish_plan_cleanup(&plan);
    rh_metadata_free(st.targets);
    st.targets = NULL;
    if ((rc = recheck(o->repo, e)) != RH_OK)
        goto out;
done:
    *res = r;
out:
    rh_store_batch_cleanup(&batch);
    free(srcpath);
    json_decref(tsigned);
    json_decref(newt);
    json_decref(prov);
    rh_publish_plan_cleanup(&plan);
    rh_src_list_cleanup(&src);
    rh_privkey_free(tk);
    rh_privkey_free(sk);
    rh_privkey_free(tsk);
    state_cleanup(&st);
    return rc;
}

/* ---- refresh -------------------------------------------------------------------------------*/

rh_err rh_origin_refresh(const char *repo, const char *snapshot_key, const char *timestamp_key,
                         bool force, int64_t now, rh_origin_refresh_result *res, rh_error *e)
{
    repo_state st;
    rh_origin_refresh_result r;
    memset(&r, 0, sizeof r);
    rh_privkey *sk = NULL, *tsk = NULL;
    rh_err rc = state_load(repo, &st, true, false, e);
    log_key_beside(&st, timestamp_key);
    if (rc != RH_OK)
        return rc;
    const rh_origin_lifetimes *lt = &st.lt;
    bool snap = rh_needs_resign(now, st.snapshot->expires, lt->life[RH_ROLE_SNAPSHOT]);
    bool ts = force || snap ||
              rh_needs_resign(now, st.timestamp->expires, lt->life[RH_ROLE_TIMESTAMP]);
    r.targets_expiring = rh_needs_resign(now, st.targets->expires, lt->life[RH_ROLE_TARGETS]);
    r.root_expiring = rh_needs_resign(now, st.root->expires, lt->life[RH_ROLE_ROOT]);
    r.snapshot_version = st.snapshot->version;
    r.timestamp_version = st.timestamp->version;
    if (snap && (rc = load_key(snapshot_key, st.root, RH_ROLE_SNAPSHOT, &sk, e)) != RH_OK)
        goto out;
    if (ts && (rc = load_key(timestamp_key, st.root, RH_ROLE_TIMESTAMP, &tsk, e)) != RH_OK)
        goto out;
    if (snap) {
        const json_t *meta = json_object_get(st.snapshot->signed_obj, "meta");
        if ((rc = write_snapshot_timestamp(&st, now, meta, &sk, 1, &tsk, 1, &r.snapshot_version,
                                           &r.timestamp_version, e)) != RH_OK)
            goto out;
        r.snapshot_signed = r.timestamp_signed = true;
    } else if (ts) {
        if ((rc = write_timestamp(&st, now, st.snapshot->version, st.snapshot_len,
                                  st.snapshot_sha, &tsk, 1, &r.timestamp_version, e)) != RH_OK)
            goto out;
        r.timestamp_signed = true;
    }
    if ((snap || ts) && (rc = recheck(repo, e)) != RH_OK)
        goto out;
    *res = r;
out:
    rh_privkey_free(sk);
    rh_privkey_free(tsk);
    state_cleanup(&st);
    return rc;
}

/* ---- rotate --------------------------------------------------------------------------------*/

static bool file_exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

rh_err rh_origin_rotate(const char *repo, const char *keys_dir, rh_role role, int64_t now,
                        rh_origin_rotate_result *res, rh_error *e)
{
    repo_state st;
    rh_origin_rotate_result r;
    memset(&r, 0, sizeof r);
    rh_origin_keypaths *kp = calloc(1, sizeof *kp);
    rh_privkey *rootk[RH_ORIGIN_MAX_ROOT_KEYS * 2] = {NULL}; /* old, then new (root rotation) */
    rh_privkey *oldk = NULL, *newk[RH_ORIGIN_MAX_ROOT_KEYS] = {NULL};
    rh_privkey *sk = NULL, *tsk = NULL;
    json_t *pubs[RH_ORIGIN_MAX_ROOT_KEYS] = {NULL};
    char ids[RH_ORIGIN_MAX_ROOT_KEYS][RH_KEYID_HEX_LEN + 1];
    const char *idp[RH_ORIGIN_MAX_ROOT_KEYS];
    char newpath[RH_ORIGIN_MAX_ROOT_KEYS][RH_ORIGIN_MAX_PATH];
    const char *paths[RH_ORIGIN_MAX_ROOT_KEYS];
    size_t nroot = 0, nnew = 0, npaths = 0;
    json_t *nroot_obj = NULL, *s = NULL;
    rh_metadata *check = NULL;
    bool locked = false;
    rh_err rc;
    if (kp == NULL)
        return rh_fail(e, RH_ENOMEM, "rotate: out of memory");
    if ((rc = rh_origin_keypaths_init(kp, keys_dir, e)) != RH_OK ||
        (rc = state_load(repo, &st, true, false, e)) != RH_OK) {
        free(kp);
        return rc;
    }
    log_key_beside(&st, kp->timestamp);
    locked = true;
    const rh_rolekeys *rr = &st.root->u.root.roles[RH_ROLE_ROOT];
    for (int i = 0; i < RH_ORIGIN_MAX_ROOT_KEYS && file_exists(kp->root[i]); i++) {
        if ((rc = load_key(kp->root[i], st.root, RH_ROLE_ROOT, &rootk[nroot], e)) != RH_OK)
            goto out;
        nroot++;
    }
    if (nroot < rr->threshold) {
        rc = rh_fail(e, RH_ESIG, "%s: %zu root keys, but root threshold is %llu", kp->root[0],
                     nroot, (unsigned long long)rr->threshold);
        goto out;
    }
    /* Which key files get a successor. */
    if (role == RH_ROLE_ROOT) {
        for (size_t i = 0; i < nroot; i++)
            paths[npaths++] = kp->root[i];
    } else {
        paths[npaths++] = role == RH_ROLE_TARGETS    ? kp->targets
                          : role == RH_ROLE_SNAPSHOT ? kp->snapshot
                                                     : kp->timestamp;
        if ((rc = load_key(paths[0], st.root, role, &oldk, e)) != RH_OK)
            goto out;
    }
    for (size_t i = 0; i < npaths; i++) {
        if ((rc = key_sibling(paths[i], ".new.pem", newpath[i], e)) != RH_OK)
            goto out;
        if (file_exists(newpath[i])) {
            rc = rh_fail(e, RH_EIO, "%s: exists (an interrupted rotation: if %llu.root.json "
                         "lists its key, rename it to %s, else remove it)", newpath[i],
                         (unsigned long long)st.disk_root, paths[i]);
            goto out;
        }
    }
    for (size_t i = 0; i < npaths; i++) {
        if ((rc = new_key(newpath[i], &newk[i], &pubs[i], ids[i], e)) != RH_OK)
            goto out;
        idp[i] = ids[i];
        nnew++;
    }
    uint64_t rv = st.disk_root + 1, v1, v2, v3;
    /* The rotated role's metadata first, signed by the old and the new key: valid under root N
     * (old key) and root N+1 (new key), so no instant exists where the repository fails. */
    rh_privkey *pair[2] = {oldk, newk[0]};
    if (role == RH_ROLE_TARGETS || role == RH_ROLE_SNAPSHOT) {
        if ((rc = load_key(kp->timestamp, st.root, RH_ROLE_TIMESTAMP, &tsk, e)) != RH_OK)
            goto out;
    }
    if (role == RH_ROLE_TARGETS) {
        if ((rc = load_key(kp->snapshot, st.root, RH_ROLE_SNAPSHOT, &sk, e)) != RH_OK)
            goto out;
        v1 = rh_next_version(st.targets->version, st.disk_targets);
        s = rh_signed_next(st.targets->signed_obj, v1, now + st.lt.life[RH_ROLE_TARGETS]);
        if ((rc = write_targets_chain(&st, now, s, v1, pair, 2, sk, tsk, &v2, &v3, e)))
            goto out;
    } else if (role == RH_ROLE_SNAPSHOT) {
        const json_t *meta = json_object_get(st.snapshot->signed_obj, "meta");
        if ((rc = write_snapshot_timestamp(&st, now, meta, pair, 2, &tsk, 1, &v2, &v3, e)))
            goto out;
    } else if (role == RH_ROLE_TIMESTAMP) {
        if ((rc = write_timestamp(&st, now, st.snapshot->version, st.snapshot_len,
                                  st.snapshot_sha, pair, 2, &v3, e)) != RH_OK)
            goto out;
    }
    /* Root N+1: the role's keys replaced, signed by the old root keys and (root rotation) the
     * new ones. TUF 5.3.4: N+1 must carry a threshold of N's root keys and of its own. */
    nroot_obj = rh_signed_next(st.root->signed_obj, rv, now + st.lt.life[RH_ROLE_ROOT]);
    if (nroot_obj == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "rotate: out of memory");
        goto out;
    }
    uint64_t thr = role == RH_ROLE_ROOT ? rr->threshold : 1;
    if ((rc = rh_root_set_role(nroot_obj, role, pubs, idp, nnew, thr, e)) != RH_OK)
        goto out;
    size_t nsign = nroot;
    if (role == RH_ROLE_ROOT)
        for (size_t i = 0; i < nnew; i++)
            rootk[nsign++] = newk[i];
    uint64_t len;
    uint8_t sha[RH_SHA256_LEN];
    /* Check with the client's verifier before publishing: root N accepts N+1, N+1 itself. */
    {
        rh_buf b;
        rh_buf_init(&b, RH_MAX_ROOT_BYTES);
        char src[64];
        snprintf(src, sizeof src, "%llu.root.json", (unsigned long long)rv);
        rc = rh_metadata_sign(nroot_obj, rootk, nsign, &b, e);
        if (rc == RH_OK)
            rc = rh_metadata_parse(b.data, b.len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, src, &check,
                                   e);
        if (rc == RH_OK)
            rc = rh_root_verify_role(st.root, RH_ROLE_ROOT, check, e);
        if (rc == RH_OK)
            rc = rh_root_verify_role(check, RH_ROLE_ROOT, check, e);
        rh_buf_cleanup(&b);
        if (rc != RH_OK)
            goto out;
    }
    if ((rc = sign_write(st.metadir, RH_ROLE_ROOT, rv, nroot_obj, rootk, nsign, &len, sha, e)))
        goto out;
    /* The new root is written after the last timestamp of this rotation: log it now. */
    if ((rc = log_metadata(&st, now, e)) != RH_OK)
        goto out;
    /* Key files: the old one kept as <name>.old-<rv>.pem, the new one takes its name. */
    for (size_t i = 0; i < npaths; i++) {
        char old[RH_ORIGIN_MAX_PATH], suf[48];
        snprintf(suf, sizeof suf, ".old-%llu.pem", (unsigned long long)rv);
        if ((rc = key_sibling(paths[i], suf, old, e)) != RH_OK ||
            (rc = rename_durable(paths[i], old, e)) != RH_OK ||
            (rc = rename_durable(newpath[i], paths[i], e)) != RH_OK)
            goto out;
    }
    if ((rc = recheck(repo, e)) != RH_OK)
        goto out;
    r.root_version = rv;
    memcpy(r.keyid, ids[0], sizeof r.keyid);
    *res = r;
out:
    rh_metadata_free(check);
    for (size_t i = 0; i < nroot; i++) /* rootk[nroot..] alias newk[] */
        rh_privkey_free(rootk[i]);
    for (size_t i = 0; i < nnew; i++) {
        rh_privkey_free(newk[i]);
        json_decref(pubs[i]);
    }
    rh_privkey_free(oldk);
    rh_privkey_free(sk);
    rh_privkey_free(tsk);
    json_decref(nroot_obj);
    json_decref(s);
    if (locked)
        state_cleanup(&st);
    free(kp);
    return rc;
}
