/* metadata.c -- TUF 1.0 metadata: strict parse into typed structs, threshold verification,
 * serialisation back to the "signed" object (unknown fields kept) and Ed25519 signing. */
#include "manifest/metadata.h"

#include <fnmatch.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/json.h"
#include "manifest/limits.h"

/* Bytes of a JSON field path kept for messages (longer paths are truncated, never overrun). */
#define MD_PATH_MAX 320

static const char *const role_names[RH_ROLE_COUNT] = {"root", "timestamp", "snapshot", "targets"};

const char *rh_role_name(rh_role r)
{
    if ((int)r < 0 || r >= RH_ROLE_COUNT)
        return "unknown";
    return role_names[r];
}

/* ---- parse context and messages ------------------------------------------------------------ */

typedef struct pctx {
    const char *src;
    rh_error *e;
} pctx;

static void fp(char dst[MD_PATH_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fp(char dst[MD_PATH_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, MD_PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0)
        dst[0] = '\0';
}

/* "src: path: reason" */
static rh_err bad(pctx *c, rh_err code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rh_err bad(pctx *c, rh_err code, const char *path, const char *fmt, ...)
{
    char why[RH_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (n < 0)
        why[0] = '\0';
    return rh_fail(c->e, code, "%s: %s: %s", c->src, path, why);
}

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

typedef enum kind { K_OBJ, K_ARR, K_STR, K_INT, K_BOOL } kind;

static bool is_kind(const json_t *v, kind k)
{
    switch (k) {
    case K_OBJ:
        return json_is_object(v);
    case K_ARR:
        return json_is_array(v);
    case K_STR:
        return json_is_string(v);
    case K_INT:
        return json_is_integer(v);
    case K_BOOL:
        return json_is_boolean(v);
    }
    return false;
}

static const char *kind_name(kind k)
{
    static const char *const n[] = {"object", "array", "string", "integer", "boolean"};
    return n[k];
}

/* Check that v (found at path) is of kind k: RH_ETYPE otherwise. */
static rh_err want(pctx *c, const json_t *v, const char *path, kind k)
{
    if (!is_kind(v, k))
        return bad(c, RH_ETYPE, path, "expected %s, got %s", kind_name(k), jtype(v));
    return RH_OK;
}

/* Field key of obj (at path) of kind k. Absent: RH_EPARSE when required, else *out = NULL. */
static rh_err get(pctx *c, const json_t *obj, const char *path, const char *key, kind k,
                  bool required, json_t **out)
{
    char p[MD_PATH_MAX];
    fp(p, "%s.%s", path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            return bad(c, RH_EPARSE, p, "missing");
        *out = NULL;
        return RH_OK;
    }
    rh_err rc = want(c, v, p, k);
    if (rc == RH_OK)
        *out = v;
    return rc;
}

/* Integer field >= min. *present (may be NULL) tells whether an optional field was there. */
static rh_err get_uint(pctx *c, const json_t *obj, const char *path, const char *key,
                       int64_t min, bool required, uint64_t *out, bool *present)
{
    json_t *v;
    rh_err rc = get(c, obj, path, key, K_INT, required, &v);
    if (rc != RH_OK)
        return rc;
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return RH_OK;
    json_int_t x = json_integer_value(v);
    if (x < min) {
        char p[MD_PATH_MAX];
        fp(p, "%s.%s", path, key);
        return bad(c, RH_EPARSE, p, "expected integer >= %lld, got %lld", (long long)min,
                   (long long)x);
    }
    *out = (uint64_t)x;
    return RH_OK;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static rh_err oom(pctx *c)
{
    return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->src);
}

static bool is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* First string that occurs twice in v[0..n), or NULL (*rc = RH_ENOMEM when sorting fails). */
static const char *find_dup(char *const *v, size_t n, rh_err *rc)
{
    *rc = RH_OK;
    if (n < 2)
        return NULL;
    char **s = malloc(n * sizeof *s);
    if (s == NULL) {
        *rc = RH_ENOMEM;
        return NULL;
    }
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_strp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && dup == NULL; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            dup = s[i];
    free(s);
    return dup;
}

/* ---- pieces -------------------------------------------------------------------------------- */

static rh_err parse_hashes(pctx *c, const json_t *h, const char *path, rh_hashes *out)
{
    memset(out, 0, sizeof *out);
    if (json_object_size(h) == 0)
        return bad(c, RH_EPARSE, path, "no hashes listed");
    const char *alg;
    json_t *v;
    json_object_foreach((json_t *)h, alg, v)
    {
        char p[MD_PATH_MAX];
        fp(p, "%s.%s", path, alg);
        rh_err rc = want(c, v, p, K_STR);
        if (rc != RH_OK)
            return rc;
        const char *hex = json_string_value(v);
        if (strcmp(alg, "sha256") == 0) {
            if (!is_lower_hex(hex, 2 * RH_SHA256_LEN) ||
                rh_hex_decode(hex, out->sha256, RH_SHA256_LEN) != RH_OK)
                return bad(c, RH_EPARSE, p, "expected %d lower-case hex digits",
                           2 * RH_SHA256_LEN);
            out->has_sha256 = true;
        } else if (strcmp(alg, "sha512") == 0) {
            if (!is_lower_hex(hex, 2 * RH_SHA512_LEN) ||
                rh_hex_decode(hex, out->sha512, RH_SHA512_LEN) != RH_OK)
                return bad(c, RH_EPARSE, p, "expected %d lower-case hex digits",
                           2 * RH_SHA512_LEN);
            out->has_sha512 = true;
        } else {
            out->n_unknown++;
        }
    }
    return RH_OK;
}

/* {"version": n, "length"?: n, "hashes"?: {...}} stored under name. */
static rh_err parse_metafile(pctx *c, const json_t *v, const char *path, const char *name,
                             rh_metafile *out)
{
    rh_err rc = want(c, v, path, K_OBJ);
    if (rc != RH_OK)
        return rc;
    out->name = xstrdup(name);
    if (out->name == NULL)
        return oom(c);
    out->length = -1;
    rc = get_uint(c, v, path, "version", 1, true, &out->version, NULL);
    uint64_t len = 0;
    bool has_len = false;
    if (rc == RH_OK)
        rc = get_uint(c, v, path, "length", 0, false, &len, &has_len);
    if (rc == RH_OK && has_len)
        out->length = (int64_t)len;
    json_t *h = NULL;
    if (rc == RH_OK)
        rc = get(c, v, path, "hashes", K_OBJ, false, &h);
    if (rc == RH_OK && h != NULL) {
        char p[MD_PATH_MAX];
        fp(p, "%s.hashes", path);
        rc = parse_hashes(c, h, p, &out->hashes);
        out->has_hashes = rc == RH_OK;
    }
    return rc;
}

/* {"keyids": [...], "threshold": n} (other fields of obj are ignored here). */
static rh_err parse_rolekeys(pctx *c, const json_t *obj, const char *path, rh_rolekeys *out)
{
    json_t *ids;
    rh_err rc = get(c, obj, path, "keyids", K_ARR, true, &ids);
    if (rc != RH_OK)
        return rc;
    size_t n = json_array_size(ids);
    if (n > 0) {
        out->keyids = calloc(n, sizeof *out->keyids);
        if (out->keyids == NULL)
            return oom(c);
        out->nkeyids = n;
    }
    for (size_t i = 0; i < n; i++) {
        char p[MD_PATH_MAX];
        fp(p, "%s.keyids[%zu]", path, i);
        json_t *id = json_array_get(ids, i);
        rc = want(c, id, p, K_STR);
        if (rc != RH_OK)
            return rc;
        out->keyids[i] = xstrdup(json_string_value(id));
        if (out->keyids[i] == NULL)
            return oom(c);
    }
    const char *dup = find_dup(out->keyids, out->nkeyids, &rc);
    if (rc != RH_OK)
        return oom(c);
    if (dup != NULL) {
        char p[MD_PATH_MAX];
        fp(p, "%s.keyids", path);
        return bad(c, RH_EPARSE, p, "key ID %.64s listed twice", dup);
    }
    return get_uint(c, obj, path, "threshold", 1, true, &out->threshold, NULL);
}

/* {"<keyid>": {key}, ...}: every key parsed, its computed key ID equal to the dict key. */
static rh_err parse_keys(pctx *c, const json_t *obj, const char *path, rh_pubkey **keys,
                         size_t *nkeys)
{
    size_t n = json_object_size(obj), i = 0;
    if (n == 0)
        return RH_OK;
    *keys = calloc(n, sizeof **keys);
    if (*keys == NULL)
        return oom(c);
    *nkeys = n;
    const char *id;
    json_t *k;
    json_object_foreach((json_t *)obj, id, k)
    {
        char p[MD_PATH_MAX], where[MD_PATH_MAX + 256];
        fp(p, "%s[\"%.80s\"]", path, id);
        rh_err rc = want(c, k, p, K_OBJ);
        if (rc != RH_OK)
            return rc;
        snprintf(where, sizeof where, "%.200s: %s", c->src, p);
        rc = rh_pubkey_from_json(k, where, &(*keys)[i], c->e);
        if (rc != RH_OK)
            return rc;
        /* The TUF spec defines KEYID as sha256 of the canonical key object. python-tuf accepts
         * any dict key; we require the defined one, so a key ID names exactly one key and a
         * threshold cannot be met twice by one key filed under two IDs. */
        if (strcmp((*keys)[i].keyid, id) != 0)
            return bad(c, RH_EPARSE, p, "key ID does not match the key (computed %s)",
                       (*keys)[i].keyid);
        i++;
    }
    return RH_OK;
}

static rh_err parse_strv(pctx *c, const json_t *arr, const char *path, size_t maxlen,
                         char ***out, size_t *nout)
{
    size_t n = json_array_size(arr);
    /* Allocated even when empty: a non-NULL vector records that the field was present. */
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL)
        return oom(c);
    *nout = n;
    for (size_t i = 0; i < n; i++) {
        char p[MD_PATH_MAX];
        fp(p, "%s[%zu]", path, i);
        json_t *s = json_array_get(arr, i);
        rh_err rc = want(c, s, p, K_STR);
        if (rc != RH_OK)
            return rc;
        if (json_string_length(s) > maxlen)
            return bad(c, RH_ETOOBIG, p, "longer than %zu bytes", maxlen);
        (*out)[i] = xstrdup(json_string_value(s));
        if ((*out)[i] == NULL)
            return oom(c);
    }
    return RH_OK;
}

static bool is_top_level_name(const char *s)
{
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        if (strcmp(s, role_names[r]) == 0)
            return true;
    return false;
}

static rh_err parse_delegated_role(pctx *c, const json_t *v, const char *path,
                                   rh_delegated_role *out)
{
    rh_err rc = want(c, v, path, K_OBJ);
    json_t *name = NULL, *term = NULL, *paths = NULL, *prefixes = NULL;
    if (rc == RH_OK)
        rc = get(c, v, path, "name", K_STR, true, &name);
    if (rc != RH_OK)
        return rc;
    char p[MD_PATH_MAX];
    fp(p, "%s.name", path);
    size_t nlen = json_string_length(name);
    if (nlen == 0)
        return bad(c, RH_EPARSE, p, "empty role name");
    if (nlen > RH_MAX_ROLE_NAME)
        return bad(c, RH_ETOOBIG, p, "role name longer than %d bytes", RH_MAX_ROLE_NAME);
    /* As python-tuf: a delegated role may not take a top-level name (its metadata file would
     * be the top-level role's, e.g. N.root.json). */
    if (is_top_level_name(json_string_value(name)))
        return bad(c, RH_EPARSE, p, "delegated role uses the top-level role name \"%s\"",
                   json_string_value(name));
    out->name = xstrdup(json_string_value(name));
    if (out->name == NULL)
        return oom(c);
    rc = parse_rolekeys(c, v, path, &out->keys);
    if (rc == RH_OK)
        rc = get(c, v, path, "terminating", K_BOOL, false, &term);
    if (rc == RH_OK)
        rc = get(c, v, path, "paths", K_ARR, false, &paths);
    if (rc == RH_OK)
        rc = get(c, v, path, "path_hash_prefixes", K_ARR, false, &prefixes);
    if (rc != RH_OK)
        return rc;
    out->terminating = term != NULL && json_is_true(term);
    /* TUF 4.5 (delegations): a role lists "paths" or "path_hash_prefixes", not both. */
    if ((paths == NULL) == (prefixes == NULL))
        return bad(c, RH_EPARSE, path, "expected exactly one of \"paths\" and "
                                       "\"path_hash_prefixes\"");
    if (paths != NULL) {
        fp(p, "%s.paths", path);
        return parse_strv(c, paths, p, RH_MAX_TARGET_PATH, &out->paths, &out->npaths);
    }
    fp(p, "%s.path_hash_prefixes", path);
    return parse_strv(c, prefixes, p, 2 * RH_SHA256_LEN, &out->path_hash_prefixes,
                      &out->nprefixes);
}

static rh_err parse_delegations(pctx *c, const json_t *d, const char *path, rh_targets_md *t)
{
    json_t *keys, *roles;
    rh_err rc = get(c, d, path, "keys", K_OBJ, true, &keys);
    if (rc == RH_OK)
        rc = get(c, d, path, "roles", K_ARR, true, &roles);
    if (rc != RH_OK)
        return rc;
    char p[MD_PATH_MAX];
    fp(p, "%s.keys", path);
    rc = parse_keys(c, keys, p, &t->keys, &t->nkeys);
    if (rc != RH_OK)
        return rc;
    size_t n = json_array_size(roles);
    if (n == 0)
        return RH_OK;
    t->roles = calloc(n, sizeof *t->roles);
    char **names = calloc(n, sizeof *names);
    if (t->roles == NULL || names == NULL) {
        free(names);
        return oom(c);
    }
    t->nroles = n;
    for (size_t i = 0; i < n && rc == RH_OK; i++) {
        fp(p, "%s.roles[%zu]", path, i);
        rc = parse_delegated_role(c, json_array_get(roles, i), p, &t->roles[i]);
        names[i] = t->roles[i].name;
    }
    if (rc == RH_OK) {
        const char *dup = find_dup(names, n, &rc);
        if (rc != RH_OK) {
            rc = oom(c);
        } else if (dup != NULL) {
            fp(p, "%s.roles", path);
            rc = bad(c, RH_EPARSE, p, "role \"%.255s\" delegated twice", dup);
        }
    }
    free(names);
    return rc;
}

/* ---- the four roles ------------------------------------------------------------------------ */

static rh_err parse_root(pctx *c, const json_t *s, rh_root_md *r)
{
    json_t *cs, *keys, *roles;
    /* TUF 4.3 lists consistent_snapshot as required; python-tuf reads absence as false. */
    rh_err rc = get(c, s, "signed", "consistent_snapshot", K_BOOL, false, &cs);
    if (rc == RH_OK)
        rc = get(c, s, "signed", "keys", K_OBJ, true, &keys);
    if (rc == RH_OK)
        rc = get(c, s, "signed", "roles", K_OBJ, true, &roles);
    if (rc != RH_OK)
        return rc;
    r->consistent_snapshot = cs != NULL && json_is_true(cs);
    rc = parse_keys(c, keys, "signed.keys", &r->keys, &r->nkeys);
    if (rc != RH_OK)
        return rc;
    const char *name;
    json_t *v;
    json_object_foreach(roles, name, v)
    {
        if (!is_top_level_name(name))
            return bad(c, RH_EPARSE, "signed.roles", "unknown role \"%.80s\" (only root, "
                                                     "timestamp, snapshot, targets)", name);
    }
    for (int i = 0; i < RH_ROLE_COUNT && rc == RH_OK; i++) {
        char p[MD_PATH_MAX];
        fp(p, "signed.roles.%s", role_names[i]);
        rc = get(c, roles, "signed.roles", role_names[i], K_OBJ, true, &v);
        if (rc == RH_OK)
            rc = parse_rolekeys(c, v, p, &r->roles[i]);
    }
    return rc;
}

static rh_err parse_timestamp(pctx *c, const json_t *s, rh_metafile *f)
{
    json_t *meta;
    rh_err rc = get(c, s, "signed", "meta", K_OBJ, true, &meta);
    if (rc != RH_OK)
        return rc;
    json_t *snap = json_object_get(meta, "snapshot.json");
    /* TUF 4.6: timestamp meta holds the snapshot entry and nothing else. */
    if (json_object_size(meta) != 1 || snap == NULL)
        return bad(c, RH_EPARSE, "signed.meta", "expected exactly one entry, \"snapshot.json\"");
    return parse_metafile(c, snap, "signed.meta[\"snapshot.json\"]", "snapshot.json", f);
}

static rh_err parse_snapshot(pctx *c, const json_t *s, rh_metafile **out, size_t *nout)
{
    json_t *meta;
    rh_err rc = get(c, s, "signed", "meta", K_OBJ, true, &meta);
    if (rc != RH_OK)
        return rc;
    size_t n = json_object_size(meta), i = 0;
    if (n == 0)
        return RH_OK;
    *out = calloc(n, sizeof **out);
    if (*out == NULL)
        return oom(c);
    *nout = n;
    const char *name;
    json_t *v;
    json_object_foreach(meta, name, v)
    {
        char p[MD_PATH_MAX];
        fp(p, "signed.meta[\"%.200s\"]", name);
        if (name[0] == '\0')
            return bad(c, RH_EPARSE, p, "empty file name");
        rc = parse_metafile(c, v, p, name, &(*out)[i++]);
        if (rc != RH_OK)
            return rc;
    }
    return RH_OK;
}

/* One entry of "targets": path and its value v. tg->custom borrows from v. */
static rh_err parse_target(pctx *c, const char *path, const json_t *v, rh_target *tg)
{
    char p[MD_PATH_MAX];
    fp(p, "signed.targets[\"%.200s\"]", path);
    size_t plen = strlen(path);
    if (plen == 0)
        return bad(c, RH_EPARSE, p, "empty target path");
    if (plen > RH_MAX_TARGET_PATH)
        return bad(c, RH_ETOOBIG, p, "target path longer than %d bytes", RH_MAX_TARGET_PATH);
    tg->path = xstrdup(path);
    if (tg->path == NULL)
        return oom(c);
    json_t *h;
    rh_err rc = want(c, v, p, K_OBJ);
    if (rc == RH_OK)
        rc = get_uint(c, v, p, "length", 0, true, &tg->length, NULL);
    if (rc == RH_OK)
        rc = get(c, v, p, "hashes", K_OBJ, true, &h);
    if (rc == RH_OK) {
        char hp[MD_PATH_MAX];
        fp(hp, "%s.hashes", p);
        rc = parse_hashes(c, h, hp, &tg->hashes);
    }
    if (rc == RH_OK)
        tg->custom = json_object_get(v, "custom");
    return rc;
}

static rh_err parse_targets(pctx *c, const json_t *s, rh_targets_md *t)
{
    json_t *targets, *deleg;
    rh_err rc = get(c, s, "signed", "targets", K_OBJ, true, &targets);
    if (rc == RH_OK)
        rc = get(c, s, "signed", "delegations", K_OBJ, false, &deleg);
    if (rc != RH_OK)
        return rc;
    size_t n = json_object_size(targets), i = 0;
    if (n > 0) {
        t->targets = calloc(n, sizeof *t->targets);
        if (t->targets == NULL)
            return oom(c);
        t->ntargets = n;
    }
    const char *path;
    json_t *v;
    json_object_foreach(targets, path, v)
    {
        rc = parse_target(c, path, v, &t->targets[i++]);
        if (rc != RH_OK)
            return rc;
    }
    if (deleg != NULL) {
        t->has_delegations = true;
        rc = parse_delegations(c, deleg, "signed.delegations", t);
    }
    return rc;
}

/* Major version of "1.N" or "1.N.N" (python-tuf's accepted shapes); -1 when malformed. */
static int spec_major(const char *s)
{
    int parts = 0, major = -1;
    const char *p = s;
    for (;;) {
        size_t nd = 0;
        int v = 0;
        while (p[nd] >= '0' && p[nd] <= '9') {
            if (nd >= 9)
                return -1;
            v = v * 10 + (p[nd] - '0');
            nd++;
        }
        if (nd == 0)
            return -1;
        if (parts++ == 0)
            major = v;
        p += nd;
        if (*p == '\0')
            break;
        if (*p != '.')
            return -1;
        p++;
    }
    return parts == 2 || parts == 3 ? major : -1;
}

static rh_err parse_signed(pctx *c, const json_t *s, rh_role expected, rh_metadata *m)
{
    json_t *type, *spec, *exp;
    rh_err rc = get(c, s, "signed", "_type", K_STR, true, &type);
    if (rc != RH_OK)
        return rc;
    /* TUF 5.3-5.6: the _type must be the role's (delegated targets are "targets" too). */
    if (strcmp(json_string_value(type), role_names[expected]) != 0)
        return bad(c, RH_ETYPE, "signed._type", "expected \"%s\", got \"%.40s\"",
                   role_names[expected], json_string_value(type));
    rc = get(c, s, "signed", "spec_version", K_STR, true, &spec);
    if (rc != RH_OK)
        return rc;
    int major = spec_major(json_string_value(spec));
    if (major < 0)
        return bad(c, RH_EPARSE, "signed.spec_version", "\"%.40s\" is not a version like 1.0.31",
                   json_string_value(spec));
    /* TUF 5.3.x: a client only accepts metadata of its own spec major version. */
    if (major != 1)
        return bad(c, RH_ETYPE, "signed.spec_version", "major version %d, this client speaks 1",
                   major);
    m->spec_version = xstrdup(json_string_value(spec));
    if (m->spec_version == NULL)
        return oom(c);
    rc = get_uint(c, s, "signed", "version", 1, true, &m->version, NULL);
    if (rc == RH_OK)
        rc = get(c, s, "signed", "expires", K_STR, true, &exp);
    if (rc != RH_OK)
        return rc;
    if (rh_time_parse(json_string_value(exp), &m->expires) != RH_OK)
        return bad(c, RH_EPARSE, "signed.expires", "\"%.40s\" is not YYYY-MM-DDTHH:MM:SSZ",
                   json_string_value(exp));
    switch (expected) {
    case RH_ROLE_ROOT:
        return parse_root(c, s, &m->u.root);
    case RH_ROLE_TIMESTAMP:
        return parse_timestamp(c, s, &m->u.timestamp);
    case RH_ROLE_SNAPSHOT:
        return parse_snapshot(c, s, &m->u.snapshot.meta, &m->u.snapshot.nmeta);
    case RH_ROLE_TARGETS:
        return parse_targets(c, s, &m->u.targets);
    }
    return RH_OK;
}

static rh_err parse_sigs(pctx *c, const json_t *arr, rh_metadata *m)
{
    size_t n = json_array_size(arr);
    if (n > RH_MAX_SIGNATURES)
        return bad(c, RH_ETOOBIG, "signatures", "%zu signatures, more than %d", n,
                   RH_MAX_SIGNATURES);
    if (n == 0)
        return RH_OK;
    m->sigs = calloc(n, sizeof *m->sigs);
    if (m->sigs == NULL)
        return oom(c);
    m->nsigs = n;
    for (size_t i = 0; i < n; i++) {
        char p[MD_PATH_MAX];
        fp(p, "signatures[%zu]", i);
        json_t *s = json_array_get(arr, i), *kid, *sig;
        rh_err rc = want(c, s, p, K_OBJ);
        if (rc == RH_OK)
            rc = get(c, s, p, "keyid", K_STR, true, &kid);
        if (rc == RH_OK)
            rc = get(c, s, p, "sig", K_STR, true, &sig);
        if (rc != RH_OK)
            return rc;
        rh_sig *o = &m->sigs[i];
        o->keyid = xstrdup(json_string_value(kid));
        size_t hlen = json_string_length(sig);
        o->sig = malloc(hlen / 2 + 1);
        if (o->keyid == NULL || o->sig == NULL)
            return oom(c);
        if (hlen % 2 != 0 || rh_hex_decode(json_string_value(sig), o->sig, hlen / 2) != RH_OK)
            return bad(c, RH_EPARSE, p, "sig is not hex");
        o->len = hlen / 2;
    }
    return RH_OK;
}

rh_err rh_metadata_parse(const uint8_t *data, size_t len, size_t max, rh_role expected,
                         const char *src, rh_metadata **out, rh_error *e)
{
    pctx c = {src != NULL ? src : "(metadata)", e};
    if ((data == NULL && len > 0) || out == NULL || (int)expected < 0 ||
        expected >= RH_ROLE_COUNT)
        return rh_fail(e, RH_EINVAL, "%s: bad arguments to metadata parse", c.src);
    json_t *doc = NULL;
    rh_metadata *m = NULL;
    rh_buf canon;
    rh_buf_init(&canon, max);
    rh_err rc = rh_json_parse(data != NULL ? data : (const uint8_t *)"", len, max, c.src, &doc, e);
    if (rc != RH_OK)
        goto out;
    if (!json_is_object(doc)) {
        rc = rh_fail(e, RH_ETYPE, "%s: expected an object {\"signatures\", \"signed\"}, got %s",
                     c.src, jtype(doc));
        goto out;
    }
    const char *k;
    json_t *v, *sigs = NULL, *sig_obj = NULL;
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "signatures") != 0 && strcmp(k, "signed") != 0) {
            rc = rh_fail(e, RH_EPARSE, "%s: unexpected top-level field \"%.80s\"", c.src, k);
            goto out;
        }
    }
    rc = get(&c, doc, "(envelope)", "signatures", K_ARR, true, &sigs);
    if (rc == RH_OK)
        rc = get(&c, doc, "(envelope)", "signed", K_OBJ, true, &sig_obj);
    if (rc != RH_OK)
        goto out;
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        rc = oom(&c);
        goto out;
    }
    m->type = expected;
    m->signed_obj = json_incref(sig_obj);
    rc = parse_sigs(&c, sigs, m);
    if (rc == RH_OK)
        rc = parse_signed(&c, sig_obj, expected, m);
    if (rc == RH_OK)
        rc = rh_cjson_encode(sig_obj, &canon, e);
    if (rc != RH_OK)
        goto out;
    m->canonical = rh_buf_take(&canon, &m->canonical_len);
    if (m->canonical == NULL) { /* "{}" at the least, so this is never empty */
        rc = oom(&c);
        goto out;
    }
    *out = m;
    m = NULL;
out:
    rh_buf_cleanup(&canon);
    rh_metadata_free(m);
    json_decref(doc);
    return rc;
}

/* ---- lean parse: a targets document without its JSON tree ----------------------------------- */

/* The lean parse walks three levels itself (the envelope, "signed" and "signed.targets") and
 * hands every value below them to jansson, one at a time: one target entry is a tree at a
 * time, where rh_metadata_parse holds the whole document's (about 1.7 KB per target, 100 MB
 * for 60,000 targets). Anything it does not take in its stride sends the bytes to
 * rh_metadata_parse, so errors and their messages are that parse's, always. */
typedef struct scan {
    const uint8_t *p;
    size_t n, i;
} scan;

static void skip_ws(scan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' ||
                           s->p[s->i] == '\r'))
        s->i++;
}

static bool eat(scan *s, char ch)
{
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == (uint8_t)ch) {
        s->i++;
        return true;
    }
    return false;
}

static json_t *next_value(scan *s)
{
    size_t used = 0;
    json_t *v = rh_json_parse_one(s->p + s->i, s->n - s->i, &used);
    if (v != NULL)
        s->i += used;
    return v;
}

/* `"key" :` -> the key, a JSON string; NULL otherwise. */
static json_t *next_key(scan *s)
{
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] != '"')
        return NULL;
    json_t *k = next_value(s);
    if (k != NULL && (!json_is_string(k) || !eat(s, ':'))) {
        json_decref(k);
        return NULL;
    }
    return k;
}

/* After a member: ',' (*more) or '}' (!*more); false for anything else. */
static bool member_end(scan *s, bool *more)
{
    if (eat(s, ',')) {
        *more = true;
        return true;
    }
    *more = false;
    return eat(s, '}');
}

typedef struct lean_seg {
    const char *path; /* the entry's rh_target.path */
    size_t off, len;  /* its `"path":value` in lean.canon */
} lean_seg;

typedef struct lean {
    pctx *c;
    rh_target *v; /* in document order, as rh_metadata_parse keeps them */
    lean_seg *seg;
    size_t n, cap;
    rh_buf canon; /* {"path":value,...} in the order the entries came */
    bool sorted;  /* ... which was canonical order, each path after the one before */
} lean;

static void lean_cleanup(lean *L)
{
    for (size_t i = 0; i < L->n; i++)
        free(L->v[i].path);
    free(L->v);
    free(L->seg);
    rh_buf_cleanup(&L->canon);
}

static int cmp_seg(const void *a, const void *b)
{
    return strcmp(((const lean_seg *)a)->path, ((const lean_seg *)b)->path);
}

/* "signed.targets": entry by entry into L. */
static bool lean_targets(scan *s, lean *L)
{
    rh_error dummy;
    rh_error_clear(&dummy);
    if (!eat(s, '{') || rh_buf_appendc(&L->canon, '{') != RH_OK)
        return false;
    bool more = !eat(s, '}');
    while (more) {
        json_t *k = next_key(s), *v = k != NULL ? next_value(s) : NULL;
        bool ok = v != NULL;
        if (ok && L->n == L->cap) {
            size_t cap = L->cap ? 2 * L->cap : 256;
            rh_target *nv = realloc(L->v, cap * sizeof *nv);
            lean_seg *ns = nv != NULL ? realloc(L->seg, cap * sizeof *ns) : NULL;
            if (nv != NULL)
                L->v = nv;
            if (ns != NULL) {
                L->seg = ns;
                L->cap = cap;
            }
            ok = ns != NULL;
        }
        if (ok) {
            rh_target *tg = &L->v[L->n];
            lean_seg *sg = &L->seg[L->n];
            memset(tg, 0, sizeof *tg);
            L->n++; /* from here lean_cleanup frees tg->path */
            ok = parse_target(L->c, json_string_value(k), v, tg) == RH_OK;
            tg->custom = NULL; /* v goes: a lean document has no custom fields */
            if (ok && L->n > 1 && strcmp(L->v[L->n - 2].path, tg->path) >= 0)
                L->sorted = false;
            if (ok && L->n > 1)
                ok = rh_buf_appendc(&L->canon, ',') == RH_OK;
            sg->path = tg->path;
            sg->off = L->canon.len;
            ok = ok && rh_cjson_string(json_string_value(k), json_string_length(k), &L->canon) ==
                           RH_OK &&
                 rh_buf_appendc(&L->canon, ':') == RH_OK &&
                 rh_cjson_encode(v, &L->canon, &dummy) == RH_OK;
            sg->len = L->canon.len - sg->off;
        }
        json_decref(k);
        json_decref(v);
        if (!ok || !member_end(s, &more))
            return false;
    }
    return rh_buf_appendc(&L->canon, '}') == RH_OK;
}

/* "signed": "targets" into L, every other member into rest. */
static bool lean_signed(scan *s, json_t *rest, lean *L, bool *seen_targets)
{
    if (!eat(s, '{'))
        return false;
    bool more = !eat(s, '}');
    while (more) {
        json_t *k = next_key(s);
        if (k == NULL)
            return false;
        const char *name = json_string_value(k);
        bool ok;
        if (strcmp(name, "targets") == 0) {
            ok = !*seen_targets && lean_targets(s, L);
            *seen_targets = true;
        } else {
            json_t *v = next_value(s);
            ok = v != NULL && json_object_get(rest, name) == NULL &&
                 json_object_set_new_nocheck(rest, name, v) == 0;
            if (!ok)
                json_decref(v);
        }
        json_decref(k);
        if (!ok || !member_end(s, &more))
            return false;
    }
    return true;
}

/* L->canon in canonical order (the entries sorted by path), false on a duplicate path. */
static bool lean_sort(lean *L)
{
    if (L->sorted || L->n < 2)
        return true;
    qsort(L->seg, L->n, sizeof *L->seg, cmp_seg);
    rh_buf out;
    rh_buf_init(&out, L->canon.max);
    bool ok = rh_buf_appendc(&out, '{') == RH_OK;
    for (size_t i = 0; ok && i < L->n; i++) {
        if (i > 0 && strcmp(L->seg[i - 1].path, L->seg[i].path) == 0)
            ok = false; /* a duplicate key: rh_metadata_parse says so */
        else
            ok = (i == 0 || rh_buf_appendc(&out, ',') == RH_OK) &&
                 rh_buf_append(&out, L->canon.data + L->seg[i].off, L->seg[i].len) == RH_OK;
    }
    ok = ok && rh_buf_appendc(&out, '}') == RH_OK;
    if (!ok) {
        rh_buf_cleanup(&out);
        return false;
    }
    rh_buf_cleanup(&L->canon);
    L->canon = out;
    return true;
}

/* The canonical form of signed: rest's members (its "targets" a placeholder) around the
 * entries in L->canon, whose buffer becomes the result. */
static uint8_t *lean_canonical(const json_t *rest, lean *L, size_t *len)
{
    size_t n = json_object_size(rest), i = 0;
    struct lkv {
        const char *k;
        const json_t *v;
    } *kv = calloc(n, sizeof *kv);
    rh_buf pre, suf;
    rh_error dummy;
    rh_error_clear(&dummy);
    rh_buf_init(&pre, L->canon.max);
    rh_buf_init(&suf, L->canon.max);
    uint8_t *res = NULL;
    if (kv == NULL)
        goto out;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rest, k, v)
    {
        kv[i].k = k;
        kv[i].v = v;
        i++;
    }
    qsort(kv, n, sizeof *kv, cmp_strp); /* the key pointer is the first member */
    bool ok = rh_buf_appendc(&pre, '{') == RH_OK, after = false;
    for (i = 0; ok && i < n; i++) {
        int c = strcmp(kv[i].k, "targets");
        rh_buf *b = c <= 0 && !after ? &pre : &suf;
        if (i > 0)
            ok = rh_buf_appendc(b, ',') == RH_OK;
        ok = ok && rh_cjson_string(kv[i].k, strlen(kv[i].k), b) == RH_OK &&
             rh_buf_appendc(b, ':') == RH_OK;
        if (c == 0)
            after = true; /* its value is L->canon, placed between pre and suf */
        else
            ok = ok && rh_cjson_encode(kv[i].v, b, &dummy) == RH_OK;
    }
    ok = ok && rh_buf_appendc(&suf, '}') == RH_OK;
    size_t total = pre.len + L->canon.len + suf.len;
    if (!ok || total > L->canon.max)
        goto out;
    res = realloc(L->canon.data, total + 1);
    if (res == NULL)
        goto out;
    memmove(res + pre.len, res, L->canon.len);
    memcpy(res, pre.data, pre.len);
    memcpy(res + pre.len + L->canon.len, suf.data, suf.len);
    res[total] = '\0';
    L->canon.data = NULL;
    L->canon.len = L->canon.cap = 0;
    *len = total;
out:
    free(kv);
    rh_buf_cleanup(&pre);
    rh_buf_cleanup(&suf);
    return res;
}

rh_err rh_metadata_parse_lean(const uint8_t *data, size_t len, size_t max, rh_role expected,
                              const char *src, rh_metadata **out, rh_error *e)
{
    if (expected != RH_ROLE_TARGETS || data == NULL || out == NULL || len > max ||
        !rh_json_depth_ok(data, len) || memchr(data, 0, len) != NULL)
        return rh_metadata_parse(data, len, max, expected, src, out, e);
    pctx c = {src != NULL ? src : "(metadata)", e};
    scan s = {data, len, 0};
    lean L = {&c, NULL, NULL, 0, 0, {NULL, 0, 0, max}, true};
    json_t *sigs = NULL, *rest = json_object();
    rh_metadata *m = NULL;
    bool seen_signed = false, seen_targets = false, more = true, closed = false, ok;
    /* The canonical form is never longer than the document: its room at once, not by doubling
     * (which would leave up to half of it unused at the peak). */
    ok = rest != NULL && rh_buf_reserve(&L.canon, len) == RH_OK && eat(&s, '{');
    while (ok && more) {
        json_t *k = next_key(&s);
        const char *name = k != NULL ? json_string_value(k) : "";
        if (strcmp(name, "signatures") == 0 && sigs == NULL)
            ok = (sigs = next_value(&s)) != NULL && json_is_array(sigs);
        else if (strcmp(name, "signed") == 0 && !seen_signed)
            ok = seen_signed = lean_signed(&s, rest, &L, &seen_targets);
        else
            ok = false;
        json_decref(k);
        ok = ok && member_end(&s, &more);
        closed = ok && !more;
    }
    skip_ws(&s);
    ok = closed && s.i == s.n && sigs != NULL && seen_signed && seen_targets &&
         json_object_set_new_nocheck(rest, "targets", json_object()) == 0 && lean_sort(&L);
    if (ok && (m = calloc(1, sizeof *m)) != NULL) {
        m->type = RH_ROLE_TARGETS;
        m->lean = true;
        m->signed_obj = rest;
        rest = NULL;
        ok = parse_sigs(&c, sigs, m) == RH_OK &&
             parse_signed(&c, m->signed_obj, RH_ROLE_TARGETS, m) == RH_OK &&
             (m->canonical = lean_canonical(m->signed_obj, &L, &m->canonical_len)) != NULL;
    }
    if (ok && m != NULL) {
        rh_targets_md *t = &m->u.targets; /* parse_signed saw no entries: the placeholder */
        rh_target *v = L.n > 0 ? realloc(L.v, L.n * sizeof *v) : NULL;
        t->targets = v != NULL ? v : L.v;
        t->ntargets = L.n;
        L.v = NULL;
        L.n = 0;
    }
    lean_cleanup(&L);
    json_decref(sigs);
    json_decref(rest);
    if (ok && m != NULL) {
        rh_error_clear(e);
        *out = m;
        return RH_OK;
    }
    rh_metadata_free(m);
    rh_error_clear(e);
    return rh_metadata_parse(data, len, max, expected, src, out, e);
}

/* ---- free ---------------------------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void keys_free(rh_pubkey *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rh_pubkey_cleanup(&k[i]);
    free(k);
}

void rh_metadata_free(rh_metadata *m)
{
    if (m == NULL)
        return;
    switch (m->type) {
    case RH_ROLE_ROOT:
        keys_free(m->u.root.keys, m->u.root.nkeys);
        for (int i = 0; i < RH_ROLE_COUNT; i++)
            strv_free(m->u.root.roles[i].keyids, m->u.root.roles[i].nkeyids);
        break;
    case RH_ROLE_TIMESTAMP:
        free(m->u.timestamp.name);
        break;
    case RH_ROLE_SNAPSHOT:
        for (size_t i = 0; i < m->u.snapshot.nmeta; i++)
            free(m->u.snapshot.meta[i].name);
        free(m->u.snapshot.meta);
        break;
    case RH_ROLE_TARGETS: {
        rh_targets_md *t = &m->u.targets;
        for (size_t i = 0; i < t->ntargets; i++)
            free(t->targets[i].path);
        free(t->targets);
        keys_free(t->keys, t->nkeys);
        for (size_t i = 0; i < t->nroles; i++) {
            rh_delegated_role *r = &t->roles[i];
            free(r->name);
            strv_free(r->keys.keyids, r->keys.nkeyids);
            strv_free(r->paths, r->npaths);
            strv_free(r->path_hash_prefixes, r->nprefixes);
        }
        free(t->roles);
        break;
    }
    }
    for (size_t i = 0; i < m->nsigs; i++) {
        free(m->sigs[i].keyid);
        free(m->sigs[i].sig);
    }
    free(m->sigs);
    free(m->spec_version);
    json_decref(m->signed_obj);
    free(m->canonical);
    free(m);
}

/* ---- verification -------------------------------------------------------------------------- */

/* Are a and b the same public key? Compared as decoded keys, not as JSON text: one key has
 * many spellings, each with its own key ID (Ed25519 hex in either case, the "ecdsa" and
 * "ecdsa-sha2-nistp256" keytype aliases, PEM with other text around the armour). */
static bool same_key(const rh_pubkey *a, const rh_pubkey *b)
{
    if (a == b)
        return true;
    if (a->pkey != NULL && b->pkey != NULL) {
        bool eq = EVP_PKEY_eq((const EVP_PKEY *)a->pkey, (const EVP_PKEY *)b->pkey) == 1;
        ERR_clear_error(); /* keys of different types leave an error behind */
        return eq;
    }
    return a->keytype != NULL && b->keytype != NULL && a->public_value != NULL &&
           b->public_value != NULL && strcmp(a->keytype, b->keytype) == 0 &&
           strcmp(a->public_value, b->public_value) == 0;
}

rh_err rh_metadata_verify(const rh_metadata *m, const rh_pubkey *keys, size_t nkeys,
                          const rh_rolekeys *role, const char *rolename, rh_error *e)
{
    if (rolename == NULL)
        rolename = "metadata";
    if (m == NULL || role == NULL || m->canonical == NULL)
        return rh_fail(e, RH_EINVAL, "%s: nothing to verify", rolename);
    /* TUF 5.3.x: a threshold of 0 would accept anything; parse rejects it, so must we. */
    if (role->threshold == 0)
        return rh_fail(e, RH_ESIG, "%s: threshold 0 is never met", rolename);
    const rh_pubkey **counted = calloc(role->nkeyids ? role->nkeyids : 1, sizeof *counted);
    if (counted == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", rolename);
    size_t valid = 0;
    for (size_t i = 0; i < role->nkeyids && valid < role->threshold; i++) {
        const rh_pubkey *k = rh_keys_find(keys, nkeys, role->keyids[i]);
        if (k == NULL)
            continue;
        /* TUF 5.4.2: the threshold counts distinct keys. A key ID listed twice, or the same key
         * material under two IDs (go-tuf GHSA-4f8r-qqr9-fq8j), counts once. */
        bool seen = false;
        for (size_t j = 0; j < valid && !seen; j++)
            seen = same_key(counted[j], k);
        if (seen)
            continue;
        for (size_t s = 0; s < m->nsigs; s++) {
            if (strcmp(m->sigs[s].keyid, role->keyids[i]) != 0)
                continue;
            if (rh_pubkey_verify(k, m->canonical, m->canonical_len, m->sigs[s].sig,
                                 m->sigs[s].len)) {
                counted[valid++] = k;
                break;
            }
        }
    }
    free(counted);
    if (valid < role->threshold)
        return rh_fail(e, RH_ESIG, "%s: %zu of %llu required signatures valid", rolename, valid,
                       (unsigned long long)role->threshold);
    return RH_OK;
}

rh_err rh_root_verify_role(const rh_metadata *root, rh_role role, const rh_metadata *m,
                           rh_error *e)
{
    if (root == NULL || root->type != RH_ROLE_ROOT || (int)role < 0 || role >= RH_ROLE_COUNT)
        return rh_fail(e, RH_EINVAL, "%s: no root to verify against", rh_role_name(role));
    return rh_metadata_verify(m, root->u.root.keys, root->u.root.nkeys, &root->u.root.roles[role],
                              role_names[role], e);
}

rh_err rh_hashes_check(const rh_hashes *h, const uint8_t *data, size_t len, const char *src,
                       rh_error *e)
{
    if (src == NULL)
        src = "(data)";
    if (h == NULL || (!h->has_sha256 && !h->has_sha512))
        return rh_fail(e, RH_EHASH, "%s: no sha256 or sha512 listed to check against", src);
    static const struct {
        rh_hash_alg alg;
        const char *name;
    } algs[] = {{RH_SHA256, "sha256"}, {RH_SHA512, "sha512"}};
    for (size_t i = 0; i < 2; i++) {
        bool has = algs[i].alg == RH_SHA256 ? h->has_sha256 : h->has_sha512;
        const uint8_t *want_d = algs[i].alg == RH_SHA256 ? h->sha256 : h->sha512;
        if (!has)
            continue;
        uint8_t got[RH_SHA512_LEN];
        size_t n = rh_hash_len(algs[i].alg);
        rh_err rc = rh_hash_once(algs[i].alg, data != NULL ? data : (const uint8_t *)"", len, got);
        if (rc != RH_OK)
            return rh_fail(e, rc, "%s: %s failed", src, algs[i].name);
        if (!rh_ct_equal(got, want_d, n)) {
            char hex[2 * RH_SHA512_LEN + 1];
            rh_hex_encode(got, n, hex);
            return rh_fail(e, RH_EHASH, "%s: %s mismatch (got %.16s...)", src, algs[i].name,
                           hex);
        }
    }
    return RH_OK;
}

/* ---- lookups ------------------------------------------------------------------------------- */

const rh_metafile *rh_snapshot_find(const rh_metadata *snapshot, const char *name)
{
    if (snapshot == NULL || name == NULL)
        return NULL;
    if (snapshot->type == RH_ROLE_TIMESTAMP)
        return snapshot->u.timestamp.name != NULL && strcmp(snapshot->u.timestamp.name, name) == 0
                   ? &snapshot->u.timestamp
                   : NULL;
    if (snapshot->type != RH_ROLE_SNAPSHOT)
        return NULL;
    for (size_t i = 0; i < snapshot->u.snapshot.nmeta; i++)
        if (strcmp(snapshot->u.snapshot.meta[i].name, name) == 0)
            return &snapshot->u.snapshot.meta[i];
    return NULL;
}

const rh_target *rh_targets_find(const rh_metadata *targets, const char *path)
{
    if (targets == NULL || path == NULL || targets->type != RH_ROLE_TARGETS)
        return NULL;
    for (size_t i = 0; i < targets->u.targets.ntargets; i++)
        if (strcmp(targets->u.targets.targets[i].path, path) == 0)
            return &targets->u.targets.targets[i];
    return NULL;
}

const rh_pubkey *rh_keys_find(const rh_pubkey *keys, size_t nkeys, const char *keyid)
{
    if (keys == NULL || keyid == NULL)
        return NULL;
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].keyid, keyid) == 0)
            return &keys[i];
    return NULL;
}

bool rh_delegation_matches(const rh_delegated_role *r, const char *target_path)
{
    if (r == NULL || target_path == NULL)
        return false;
    /* TUF 5.6.7.1: shell-style patterns where '*' and '?' never match '/'; like python-tuf's
     * fnmatch, a backslash is an ordinary character. */
    for (size_t i = 0; i < r->npaths; i++)
        if (fnmatch(r->paths[i], target_path, FNM_PATHNAME | FNM_NOESCAPE) == 0)
            return true;
    if (r->nprefixes == 0)
        return false;
    uint8_t d[RH_SHA256_LEN];
    char hex[2 * RH_SHA256_LEN + 1];
    if (rh_hash_once(RH_SHA256, target_path, strlen(target_path), d) != RH_OK)
        return false;
    rh_hex_encode(d, sizeof d, hex);
    for (size_t i = 0; i < r->nprefixes; i++) {
        size_t n = strlen(r->path_hash_prefixes[i]);
        if (n <= 2 * RH_SHA256_LEN && memcmp(hex, r->path_hash_prefixes[i], n) == 0)
            return true;
    }
    return false;
}

/* ---- serialisation ------------------------------------------------------------------------- */

/* Set o[k] = v (stealing v). -1 when v is NULL (a failed build below) or the set fails. */
static int setn(json_t *o, const char *k, json_t *v)
{
    if (v == NULL)
        return -1;
    return json_object_set_new(o, k, v);
}

static const json_t *oget(const json_t *o, const char *k)
{
    return json_is_object(o) ? json_object_get(o, k) : NULL;
}

static bool in_list(const char *k, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(k, *list) == 0)
            return true;
    return false;
}

/* New object holding deep copies of orig's fields not named in known (NULL-terminated). */
static json_t *copy_unknown(const json_t *orig, const char *const *known)
{
    json_t *o = json_object();
    if (o == NULL || !json_is_object(orig))
        return o;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)orig, k, v)
    {
        if (!in_list(k, known) && setn(o, k, json_deep_copy(v)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char hex[2 * RH_SHA512_LEN + 1];
    rh_hex_encode(p, n, hex);
    return json_string(hex);
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (v[i] == NULL || json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *hashes_json(const rh_hashes *h, const json_t *orig)
{
    static const char *const known[] = {"sha256", "sha512", NULL};
    json_t *o = copy_unknown(orig, known);
    if (o != NULL && ((h->has_sha256 && setn(o, "sha256", hex_json(h->sha256, RH_SHA256_LEN))) ||
                      (h->has_sha512 && setn(o, "sha512", hex_json(h->sha512, RH_SHA512_LEN))))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *metafile_json(const rh_metafile *f, const json_t *orig)
{
    static const char *const known[] = {"version", "length", "hashes", NULL};
    json_t *o = copy_unknown(orig, known);
    if (o != NULL && (setn(o, "version", json_integer((json_int_t)f->version)) ||
                      (f->length >= 0 && setn(o, "length", json_integer(f->length))) ||
                      (f->has_hashes &&
                       setn(o, "hashes", hashes_json(&f->hashes, oget(orig, "hashes")))))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Adds keyids and threshold to o; -1 on failure. */
static int rolekeys_set(json_t *o, const rh_rolekeys *r)
{
    return setn(o, "keyids", strv_json(r->keyids, r->nkeyids)) ||
           setn(o, "threshold", json_integer((json_int_t)r->threshold));
}

static json_t *key_json(const rh_pubkey *k, const json_t *orig)
{
    static const char *const known[] = {"keytype", "scheme", "keyval", NULL};
    static const char *const kv_known[] = {"public", NULL};
    if (k->keytype == NULL || k->scheme == NULL || k->public_value == NULL)
        return NULL;
    json_t *o = copy_unknown(orig, known);
    json_t *kv = copy_unknown(oget(orig, "keyval"), kv_known);
    if (o == NULL || kv == NULL || setn(kv, "public", json_string(k->public_value)) ||
        setn(o, "keytype", json_string(k->keytype)) || setn(o, "scheme", json_string(k->scheme))) {
        json_decref(o);
        json_decref(kv);
        return NULL;
    }
    return setn(o, "keyval", kv) ? (json_decref(o), NULL) : o;
}

static json_t *keys_json(const rh_pubkey *keys, size_t n, const json_t *orig)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        if (setn(o, keys[i].keyid, key_json(&keys[i], oget(orig, keys[i].keyid)))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int root_set(json_t *s, const rh_root_md *r, const json_t *orig)
{
    static const char *const known[] = {"keyids", "threshold", NULL};
    /* Absent consistent_snapshot read as false stays absent, so the bytes round-trip. */
    if ((r->consistent_snapshot || !json_is_object(orig) ||
         oget(orig, "consistent_snapshot") != NULL) &&
        setn(s, "consistent_snapshot", json_boolean(r->consistent_snapshot)))
        return -1;
    if (setn(s, "keys", keys_json(r->keys, r->nkeys, oget(orig, "keys"))))
        return -1;
    json_t *roles = json_object();
    if (setn(s, "roles", roles))
        return -1;
    for (int i = 0; i < RH_ROLE_COUNT; i++) {
        json_t *o = copy_unknown(oget(oget(orig, "roles"), role_names[i]), known);
        if (setn(roles, role_names[i], o) || rolekeys_set(o, &r->roles[i]))
            return -1;
    }
    return 0;
}

static const json_t *orig_role(const json_t *orig_deleg, const char *name)
{
    const json_t *roles = oget(orig_deleg, "roles");
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        const json_t *n = oget(r, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return r;
    }
    return NULL;
}

static json_t *delegated_json(const rh_delegated_role *r, const json_t *orig)
{
    static const char *const known[] = {"name",      "keyids", "threshold", "terminating",
                                        "paths",     "path_hash_prefixes", NULL};
    if (r->name == NULL)
        return NULL;
    json_t *o = copy_unknown(orig, known);
    if (o == NULL || setn(o, "name", json_string(r->name)) || rolekeys_set(o, &r->keys))
        goto fail;
    /* Absent terminating read as false stays absent. */
    if ((r->terminating || orig == NULL || oget(orig, "terminating") != NULL) &&
        setn(o, "terminating", json_boolean(r->terminating)))
        goto fail;
    if (r->path_hash_prefixes != NULL) {
        if (setn(o, "path_hash_prefixes", strv_json(r->path_hash_prefixes, r->nprefixes)))
            goto fail;
    } else if (setn(o, "paths", strv_json(r->paths, r->npaths))) {
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static int targets_set(json_t *s, const rh_targets_md *t, const json_t *orig)
{
    static const char *const tknown[] = {"length", "hashes", "custom", NULL};
    static const char *const dknown[] = {"keys", "roles", NULL};
    json_t *targets = json_object();
    if (setn(s, "targets", targets))
        return -1;
    const json_t *otargets = oget(orig, "targets");
    for (size_t i = 0; i < t->ntargets; i++) {
        const rh_target *tg = &t->targets[i];
        if (tg->path == NULL)
            return -1;
        const json_t *ot = oget(otargets, tg->path);
        json_t *o = copy_unknown(ot, tknown);
        if (setn(targets, tg->path, o) || setn(o, "length", json_integer((json_int_t)tg->length)) ||
            setn(o, "hashes", hashes_json(&tg->hashes, oget(ot, "hashes"))) ||
            (tg->custom != NULL && setn(o, "custom", json_deep_copy(tg->custom))))
            return -1;
    }
    if (!t->has_delegations)
        return 0;
    const json_t *od = oget(orig, "delegations");
    json_t *d = copy_unknown(od, dknown);
    if (setn(s, "delegations", d) || setn(d, "keys", keys_json(t->keys, t->nkeys, oget(od, "keys"))))
        return -1;
    json_t *roles = json_array();
    if (setn(d, "roles", roles))
        return -1;
    for (size_t i = 0; i < t->nroles; i++) {
        const rh_delegated_role *r = &t->roles[i];
        if (r->name == NULL ||
            json_array_append_new(roles, delegated_json(r, orig_role(od, r->name))) != 0)
            return -1;
    }
    return 0;
}

json_t *rh_metadata_to_signed(const rh_metadata *m)
{
    if (m != NULL && m->lean)
        return NULL; /* its target entries are not kept */
    static const char *const known[RH_ROLE_COUNT][8] = {
        [RH_ROLE_ROOT] = {"_type", "spec_version", "version", "expires", "consistent_snapshot",
                          "keys", "roles", NULL},
        [RH_ROLE_TIMESTAMP] = {"_type", "spec_version", "version", "expires", "meta", NULL},
        [RH_ROLE_SNAPSHOT] = {"_type", "spec_version", "version", "expires", "meta", NULL},
        [RH_ROLE_TARGETS] = {"_type", "spec_version", "version", "expires", "targets",
                             "delegations", NULL},
    };
    if (m == NULL || (int)m->type < 0 || m->type >= RH_ROLE_COUNT || m->spec_version == NULL)
        return NULL;
    const json_t *orig = m->signed_obj;
    json_t *s = copy_unknown(orig, known[m->type]);
    if (s == NULL)
        return NULL;
    char exp[21];
    rh_time_format(m->expires, exp);
    int bad_set = setn(s, "_type", json_string(role_names[m->type])) ||
                  setn(s, "spec_version", json_string(m->spec_version)) ||
                  setn(s, "version", json_integer((json_int_t)m->version)) ||
                  setn(s, "expires", json_string(exp));
    if (!bad_set) {
        switch (m->type) {
        case RH_ROLE_ROOT:
            bad_set = root_set(s, &m->u.root, orig);
            break;
        case RH_ROLE_TIMESTAMP: {
            json_t *meta = m->u.timestamp.name != NULL ? json_object() : NULL;
            bad_set = setn(s, "meta", meta) ||
                      setn(meta, m->u.timestamp.name,
                           metafile_json(&m->u.timestamp,
                                         oget(oget(orig, "meta"), m->u.timestamp.name)));
            break;
        }
        case RH_ROLE_SNAPSHOT: {
            json_t *meta = json_object();
            bad_set = setn(s, "meta", meta);
            for (size_t i = 0; !bad_set && i < m->u.snapshot.nmeta; i++) {
                const rh_metafile *f = &m->u.snapshot.meta[i];
                bad_set = f->name == NULL ||
                          setn(meta, f->name, metafile_json(f, oget(oget(orig, "meta"), f->name)));
            }
            break;
        }
        case RH_ROLE_TARGETS:
            bad_set = targets_set(s, &m->u.targets, orig);
            break;
        }
    }
    if (bad_set) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* ---- signing ------------------------------------------------------------------------------- */

rh_err rh_metadata_sign(const json_t *signed_obj, rh_privkey *const *keys, size_t nkeys,
                        rh_buf *out, rh_error *e)
{
    if (out == NULL || (keys == NULL && nkeys > 0))
        return rh_fail(e, RH_EINVAL, "sign: bad arguments");
    if (!json_is_object(signed_obj))
        return rh_fail(e, RH_ETYPE, "sign: the signed part must be a JSON object");
    size_t oldlen = out->len;
    rh_buf canon;
    rh_buf_init(&canon, RH_MAX_JSON_BYTES);
    json_t *env = NULL, *sigs = NULL;
    rh_err rc = rh_cjson_encode(signed_obj, &canon, e);
    if (rc != RH_OK)
        goto out;
    sigs = json_array();
    env = json_object();
    if (sigs == NULL || env == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "sign: out of memory");
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++) {
        char kid[RH_KEYID_HEX_LEN + 1];
        uint8_t sig[64];
        char hex[2 * sizeof sig + 1];
        if (keys[i] == NULL) {
            rc = rh_fail(e, RH_EINVAL, "sign: key %zu is NULL", i);
            goto out;
        }
        rc = rh_privkey_keyid(keys[i], kid);
        if (rc != RH_OK) {
            rc = rh_fail(e, rc, "sign: cannot compute the key ID of key %zu", i);
            goto out;
        }
        rc = rh_privkey_sign(keys[i], canon.data, canon.len, sig, e);
        if (rc != RH_OK)
            goto out;
        rh_hex_encode(sig, sizeof sig, hex);
        json_t *so = json_pack("{s:s,s:s}", "keyid", kid, "sig", hex);
        if (so == NULL || json_array_append_new(sigs, so) != 0) {
            rc = rh_fail(e, RH_ENOMEM, "sign: out of memory");
            goto out;
        }
    }
    if (json_object_set(env, "signatures", sigs) != 0 ||
        json_object_set(env, "signed", (json_t *)signed_obj) != 0) {
        rc = rh_fail(e, RH_ENOMEM, "sign: out of memory");
        goto out;
    }
    rc = rh_cjson_encode(env, out, e);
out:
    if (rc != RH_OK && out != NULL && out->len > oldlen) {
        out->len = oldlen;
        if (out->data != NULL)
            out->data[oldlen] = '\0';
    }
    json_decref(env);
    json_decref(sigs);
    rh_buf_cleanup(&canon);
    return rc;
}
