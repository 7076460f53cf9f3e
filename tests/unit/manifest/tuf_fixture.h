/* tuf_fixture.h -- test helpers: signed TUF repositories built in memory with real Ed25519 keys,
 * served to the engine through an in-memory fetch callback that logs every request. */
#ifndef RH_TUF_FIXTURE_H
#define RH_TUF_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "manifest/tuf.h"

#define TF_NKEYS 12
#define TF_MAXFILES 256
#define TF_MAXLOG 256
#define TF_NOW ((int64_t)1700000000)  /* 2023-11-14 */
#define TF_EXP ((int64_t)1900000000)  /* 2030-03-17 */
#define TF_PAST ((int64_t)1600000000) /* 2020-09-13 */

/* -1 terminated list of key indices. */
#define K(...) ((const int[]){__VA_ARGS__, -1})
#define K_NONE ((const int[]){-1})

typedef struct tf_file {
    char name[RH_TUF_MAX_FILENAME];
    uint8_t *data;
    size_t len;
} tf_file;

typedef struct tf_repo {
    rh_privkey *k[TF_NKEYS];
    char id[TF_NKEYS][RH_KEYID_HEX_LEN + 1];
    tf_file files[TF_MAXFILES];
    size_t nfiles;
    char fetched[TF_MAXLOG][RH_TUF_MAX_FILENAME]; /* every fetch, in order */
    size_t nfetched;
    char persisted[TF_MAXLOG][RH_TUF_MAX_FILENAME]; /* every persist, in order */
    size_t npersisted;
    bool ignore_max;    /* fetch misbehaves: ignores the byte ceiling */
    rh_err persist_err; /* persist returns this when set */
    /* what tf_root_obj and tf_publish use */
    bool consistent;
    int keys[RH_ROLE_COUNT][TF_NKEYS + 1]; /* -1 terminated */
    int thr[RH_ROLE_COUNT];
    int64_t exp_ts, exp_snap, exp_targets;
    bool ts_len, ts_hashes;     /* timestamp lists snapshot length / hashes */
    bool snap_len, snap_hashes; /* snapshot lists targets length / hashes */
    json_t *extra_meta;         /* more snapshot meta entries (delegated roles) */
    json_t *extra_targets;      /* more entries of top-level targets.targets */
    json_t *delegations;        /* top-level targets.delegations, or NULL */
    int signers[RH_ROLE_COUNT][TF_NKEYS + 1]; /* tf_publish signs with these when set */
    bool use_signers[RH_ROLE_COUNT];
} tf_repo;

static inline void tf_keylist(int *dst, const int *src)
{
    size_t n = 0;
    for (; *src >= 0 && n < TF_NKEYS; src++)
        dst[n++] = *src;
    dst[n] = -1;
}

static inline void tf_set_role(tf_repo *r, rh_role role, const int *keys, int thr)
{
    tf_keylist(r->keys[role], keys);
    r->thr[role] = thr;
}

/* Make tf_publish sign role with keys other than the role's (NULL: back to the role's). */
static inline void tf_set_signers(tf_repo *r, rh_role role, const int *keys)
{
    r->use_signers[role] = keys != NULL;
    if (keys != NULL)
        tf_keylist(r->signers[role], keys);
}

static inline const int *tf_signers(const tf_repo *r, rh_role role)
{
    return r->use_signers[role] ? r->signers[role] : r->keys[role];
}

/* Keys 0..11; root {0}, timestamp {1}, snapshot {2}, targets {3}, thresholds 1, consistent. */
static inline tf_repo *tf_new(void)
{
    tf_repo *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    for (int i = 0; i < TF_NKEYS; i++) {
        rh_error e;
        rh_error_clear(&e);
        if (rh_privkey_generate(&r->k[i], &e) != RH_OK || rh_privkey_keyid(r->k[i], r->id[i]))
            return NULL;
    }
    r->consistent = true;
    for (int i = 0; i < RH_ROLE_COUNT; i++)
        tf_set_role(r, (rh_role)i, K(i), 1);
    r->exp_ts = r->exp_snap = r->exp_targets = TF_EXP;
    r->ts_len = r->ts_hashes = true;
    r->extra_meta = json_object();
    r->extra_targets = json_object();
    return r;
}

static inline void tf_free(tf_repo *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < TF_NKEYS; i++)
        rh_privkey_free(r->k[i]);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i].data);
    json_decref(r->extra_meta);
    json_decref(r->extra_targets);
    json_decref(r->delegations);
    free(r);
}

static inline tf_file *tf_get(tf_repo *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].name, name) == 0)
            return &r->files[i];
    return NULL;
}

/* Serve data (taken) under name, replacing what was there. */
static inline void tf_put(tf_repo *r, const char *name, uint8_t *data, size_t len)
{
    tf_file *f = tf_get(r, name);
    if (f == NULL) {
        if (r->nfiles == TF_MAXFILES) {
            free(data);
            return;
        }
        f = &r->files[r->nfiles++];
        snprintf(f->name, sizeof f->name, "%s", name);
    } else {
        free(f->data);
    }
    f->data = data;
    f->len = len;
}

static inline void tf_del(tf_repo *r, const char *name)
{
    tf_file *f = tf_get(r, name);
    if (f == NULL)
        return;
    free(f->data);
    *f = r->files[--r->nfiles];
}

static inline bool tf_fetched(const tf_repo *r, const char *name)
{
    for (size_t i = 0; i < r->nfetched; i++)
        if (strcmp(r->fetched[i], name) == 0)
            return true;
    return false;
}

static inline void tf_clear_logs(tf_repo *r)
{
    r->nfetched = r->npersisted = 0;
}

/* The file name of role at version in r's layout. */
static inline const char *tf_name(const tf_repo *r, const char *role, int version, char *buf)
{
    if (rh_tuf_filename(role, (uint64_t)version, r->consistent, buf, RH_TUF_MAX_FILENAME))
        snprintf(buf, RH_TUF_MAX_FILENAME, "?");
    return buf;
}

static inline json_t *tf_base(const char *type, int version, int64_t expires)
{
    char when[21];
    rh_time_format(expires, when);
    return json_pack("{s:s,s:s,s:i,s:s}", "_type", type, "spec_version", "1.0.31", "version",
                     version, "expires", when);
}

/* Sign obj (taken) with the listed keys; returns malloc'd bytes or NULL. */
static inline uint8_t *tf_sign(tf_repo *r, json_t *obj, const int *signers, size_t *len)
{
    rh_privkey *ks[16];
    size_t n = 0;
    for (; *signers >= 0 && n < 16; signers++)
        ks[n++] = r->k[*signers];
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_error e;
    rh_error_clear(&e);
    uint8_t *out = NULL;
    if (rh_metadata_sign(obj, ks, n, &b, &e) == RH_OK)
        out = rh_buf_take(&b, len);
    else
        fprintf(stderr, "tf_sign: %s\n", e.msg);
    rh_buf_cleanup(&b);
    json_decref(obj);
    return out;
}

static inline void tf_sign_put(tf_repo *r, const char *name, json_t *obj, const int *signers)
{
    size_t len = 0;
    uint8_t *p = tf_sign(r, obj, signers, &len);
    if (p != NULL)
        tf_put(r, name, p, len);
}

static inline json_t *tf_keys_obj(const tf_repo *r, const int *const *lists, size_t nlists)
{
    json_t *keys = json_object();
    for (size_t l = 0; l < nlists; l++)
        for (const int *k = lists[l]; *k >= 0; k++)
            json_object_set_new(keys, r->id[*k], rh_privkey_public_json(r->k[*k]));
    return keys;
}

static inline json_t *tf_rolekeys_obj(const tf_repo *r, const int *keys, int thr)
{
    json_t *ids = json_array();
    for (; *keys >= 0; keys++)
        json_array_append_new(ids, json_string(r->id[*keys]));
    return json_pack("{s:o,s:i}", "keyids", ids, "threshold", thr);
}

/* Root "signed" object from r's current roles. */
static inline json_t *tf_root_obj(const tf_repo *r, int version, int64_t expires)
{
    const int *lists[RH_ROLE_COUNT];
    json_t *roles = json_object();
    for (int i = 0; i < RH_ROLE_COUNT; i++) {
        lists[i] = r->keys[i];
        json_object_set_new(roles, rh_role_name((rh_role)i),
                            tf_rolekeys_obj(r, r->keys[i], r->thr[i]));
    }
    json_t *o = tf_base("root", version, expires);
    json_object_set_new(o, "consistent_snapshot", json_boolean(r->consistent));
    json_object_set_new(o, "keys", tf_keys_obj(r, lists, RH_ROLE_COUNT));
    json_object_set_new(o, "roles", roles);
    return o;
}

static inline void tf_publish_root(tf_repo *r, int version, int64_t expires, const int *signers)
{
    char name[RH_TUF_MAX_FILENAME];
    snprintf(name, sizeof name, "%d.root.json", version);
    tf_sign_put(r, name, tf_root_obj(r, version, expires), signers);
}

static inline void tf_sha256_hex(const uint8_t *p, size_t n, char hex[2 * RH_SHA256_LEN + 1])
{
    uint8_t d[RH_SHA256_LEN];
    rh_hash_once(RH_SHA256, p, n, d);
    rh_hex_encode(d, RH_SHA256_LEN, hex);
}

/* A METAFILES entry {"version":v[,"length":n][,"hashes":{"sha256":...}]} for data. */
static inline json_t *tf_meta(int version, const uint8_t *data, size_t len, bool with_len,
                       bool with_hash)
{
    json_t *m = json_pack("{s:i}", "version", version);
    if (with_len)
        json_object_set_new(m, "length", json_integer((json_int_t)len));
    if (with_hash) {
        char hex[2 * RH_SHA256_LEN + 1];
        tf_sha256_hex(data, len, hex);
        json_object_set_new(m, "hashes", json_pack("{s:s}", "sha256", hex));
    }
    return m;
}

/* Add target path to a targets "signed" object; its length tags it (the tests read it back). */
static inline void tf_target_add(json_t *tobj, const char *path, int length)
{
    char hex[2 * RH_SHA256_LEN + 1];
    tf_sha256_hex((const uint8_t *)path, strlen(path), hex);
    json_object_set_new(json_object_get(tobj, "targets"), path,
                        json_pack("{s:i,s:{s:s}}", "length", length, "hashes", "sha256", hex));
}

static inline json_t *tf_targets_obj(int version, int64_t expires)
{
    json_t *o = tf_base("targets", version, expires);
    json_object_set_new(o, "targets", json_object());
    return o;
}

/* Append a delegation to role name (keys, threshold, terminating, paths or prefixes, each NULL
 * terminated or NULL) to a targets "signed" object. */
static inline void tf_deleg_add(const tf_repo *r, json_t *tobj, const char *name,
                                const int *keys, int thr, bool terminating,
                                const char *const *paths, const char *const *prefixes)
{
    json_t *d = json_object_get(tobj, "delegations");
    if (d == NULL) {
        d = json_pack("{s:o,s:o}", "keys", json_object(), "roles", json_array());
        json_object_set_new(tobj, "delegations", d);
    }
    const int *lists[1] = {keys};
    json_t *ks = tf_keys_obj(r, lists, 1);
    json_object_update(json_object_get(d, "keys"), ks);
    json_decref(ks);
    json_t *role = tf_rolekeys_obj(r, keys, thr);
    json_object_set_new(role, "name", json_string(name));
    json_object_set_new(role, "terminating", json_boolean(terminating));
    json_t *arr = json_array();
    for (const char *const *p = paths ? paths : prefixes; p && *p; p++)
        json_array_append_new(arr, json_string(*p));
    json_object_set_new(role, paths ? "paths" : "path_hash_prefixes", arr);
    json_array_append_new(json_object_get(d, "roles"), role);
}

/* Publish delegated role name at version (obj taken, signed by signers) and list it in
 * r->extra_meta so the next tf_publish puts it into the snapshot. */
static inline void tf_publish_role(tf_repo *r, const char *name, int version, json_t *obj,
                            const int *signers)
{
    char fname[RH_TUF_MAX_FILENAME], metaname[RH_MAX_ROLE_NAME + 8];
    tf_sign_put(r, tf_name(r, name, version, fname), obj, signers);
    snprintf(metaname, sizeof metaname, "%s.json", name);
    json_object_set_new(r->extra_meta, metaname, json_pack("{s:i}", "version", version));
}

/* Publish targets (a.txt of length 1, plus r->extra_targets and r->delegations) at targ_v,
 * a snapshot at snap_v listing it (plus r->extra_meta), and timestamp.json at ts_v. */
static inline void tf_publish(tf_repo *r, int ts_v, int snap_v, int targ_v)
{
    char name[RH_TUF_MAX_FILENAME];
    json_t *t = tf_targets_obj(targ_v, r->exp_targets);
    tf_target_add(t, "a.txt", 1);
    json_object_update(json_object_get(t, "targets"), r->extra_targets);
    if (r->delegations != NULL)
        json_object_set(t, "delegations", r->delegations);
    size_t tlen = 0;
    uint8_t *tb = tf_sign(r, t, tf_signers(r, RH_ROLE_TARGETS), &tlen);
    json_t *meta = json_object();
    json_object_set_new(meta, "targets.json",
                        tf_meta(targ_v, tb, tlen, r->snap_len, r->snap_hashes));
    json_object_update(meta, r->extra_meta);
    tf_put(r, tf_name(r, "targets", targ_v, name), tb, tlen);

    json_t *s = tf_base("snapshot", snap_v, r->exp_snap);
    json_object_set_new(s, "meta", meta);
    size_t slen = 0;
    uint8_t *sb = tf_sign(r, s, tf_signers(r, RH_ROLE_SNAPSHOT), &slen);
    json_t *ts = tf_base("timestamp", ts_v, r->exp_ts);
    json_object_set_new(ts, "meta", json_pack("{s:o}", "snapshot.json",
                                              tf_meta(snap_v, sb, slen, r->ts_len, r->ts_hashes)));
    tf_put(r, tf_name(r, "snapshot", snap_v, name), sb, slen);
    tf_sign_put(r, "timestamp.json", ts, tf_signers(r, RH_ROLE_TIMESTAMP));
}

/* ---- engine side -------------------------------------------------------------------------- */

static inline rh_err tf_fetch_cb(void *ctx, const char *name, size_t max, rh_buf *out, rh_error *e)
{
    tf_repo *r = ctx;
    if (r->nfetched < TF_MAXLOG)
        snprintf(r->fetched[r->nfetched++], RH_TUF_MAX_FILENAME, "%s", name);
    const tf_file *f = tf_get(r, name);
    if (f == NULL)
        return rh_fail(e, RH_ENOTFOUND, "%s: HTTP 404", name);
    if (r->ignore_max)
        out->max = SIZE_MAX;
    /* Stream in chunks, as a transport would. */
    for (size_t off = 0; off < f->len; off += 1000) {
        size_t n = f->len - off < 1000 ? f->len - off : 1000;
        rh_err rc = rh_buf_append(out, f->data + off, n);
        if (rc != RH_OK)
            return rh_fail(e, rc, "%s: body larger than %zu bytes", name, max);
    }
    return RH_OK;
}

static inline rh_err tf_persist_cb(void *ctx, const char *role, uint64_t version,
                                   const char *filename, const uint8_t *p, size_t n,
                                   rh_error *e)
{
    tf_repo *r = ctx;
    (void)role;
    (void)version;
    (void)p;
    (void)n;
    if (r->persist_err != RH_OK)
        return rh_fail(e, r->persist_err, "%s: disk full", filename);
    if (r->npersisted < TF_MAXLOG)
        snprintf(r->persisted[r->npersisted++], RH_TUF_MAX_FILENAME, "%s", filename);
    return RH_OK;
}

/* Engines parse targets metadata the lean way (rh_tuf_io.lean_targets, as the mirror does)
 * while this is set: test_tuf runs its whole group both ways. */
static bool tf_lean;

/* A new engine on r trusting r's root file root_name. NULL on failure. */
static inline rh_tuf *tf_engine_from(tf_repo *r, const char *root_name)
{
    rh_tuf_io io = {r, tf_fetch_cb, tf_persist_cb, tf_lean};
    rh_tuf *t = NULL;
    if (rh_tuf_new(&io, &t) != RH_OK)
        return NULL;
    const tf_file *f = tf_get(r, root_name);
    rh_error e;
    rh_error_clear(&e);
    if (f == NULL || rh_tuf_load_root(t, f->data, f->len, root_name, &e) != RH_OK) {
        fprintf(stderr, "tf_engine: %s\n", e.msg);
        rh_tuf_free(t);
        return NULL;
    }
    return t;
}

static inline rh_tuf *tf_engine(tf_repo *r)
{
    return tf_engine_from(r, "1.root.json");
}

/* A standard repository: root 1, timestamp 1, snapshot 1, targets 1. */
static inline tf_repo *tf_std(void)
{
    tf_repo *r = tf_new();
    if (r == NULL)
        return NULL;
    tf_publish_root(r, 1, TF_EXP, r->keys[RH_ROLE_ROOT]);
    tf_publish(r, 1, 1, 1);
    return r;
}

#endif
