/* origin_plan.c -- change detection and the next signed objects, from data only. */
#include "origin/origin_plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/limits.h"

#define MAX_DURATION_SECONDS (100LL * 366 * 24 * 3600)

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid or overlong. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    if (cp >= 0xd800 && cp <= 0xdfff)
        return 0;
    if (cp >= 0x80 && cp <= 0x9f) /* C1 controls */
        return 0;
    return len;
}

/* src for a message: control, non-ASCII and backslash bytes as \xNN, so the message stays one
 * printable line whatever the file name holds. Truncated to fit out. */
static const char *escape_name(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < outlen; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

rh_err rh_origin_path_check(const char *relpath, const char *src_raw, rh_error *e)
{
    char esc[RH_ERRMSG_MAX];
    const char *src = escape_name(src_raw != NULL ? src_raw : relpath, esc, sizeof esc);
    size_t n = strlen(relpath);
    if (n == 0)
        return rh_fail(e, RH_EPATH, "%s: empty path", src);
    if (n + strlen(RH_ORIGIN_TARGET_SUFFIX) > RH_MAX_TARGET_PATH)
        return rh_fail(e, RH_EPATH, "%s: path longer than %d bytes", src,
                       RH_MAX_TARGET_PATH - (int)strlen(RH_ORIGIN_TARGET_SUFFIX));
    const unsigned char *p = (const unsigned char *)relpath;
    size_t comp_start = 0;
    for (size_t i = 0; i <= n;) {
        if (i == n || p[i] == '/') {
            size_t clen = i - comp_start;
            const char *c = relpath + comp_start;
            if (clen == 0)
                return rh_fail(e, RH_EPATH, "%s: empty path component", src);
            if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.'))
                return rh_fail(e, RH_EPATH, "%s: '.' or '..' path component", src);
            if (clen > RH_ORIGIN_MAX_NAME)
                return rh_fail(e, RH_EPATH, "%s: name longer than %d bytes", src,
                               RH_ORIGIN_MAX_NAME);
            if (i == n)
                break;
            comp_start = ++i;
            continue;
        }
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7f)
            return rh_fail(e, RH_EPATH, "%s: control character 0x%02x in name", src, c);
        if (c == '\\' || c == '%' || c == '?' || c == '#')
            return rh_fail(e, RH_EPATH, "%s: character '%c' not allowed in a target name", src,
                           c);
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0)
            return rh_fail(e, RH_EPATH, "%s: name is not valid UTF-8 (or holds a C1 control)",
                           src);
        i += l;
    }
    return RH_OK;
}

static const char *rhine_custom_sha(const json_t *entry, uint64_t *len)
{
    const json_t *r = json_object_get(json_object_get(json_object_get(entry, "custom"), "rhine"),
                                      "length");
    const json_t *h = json_object_get(json_object_get(json_object_get(entry, "custom"), "rhine"),
                                      "sha256");
    if (!json_is_integer(r) || json_integer_value(r) < 0 || !json_is_string(h))
        return NULL;
    *len = (uint64_t)json_integer_value(r);
    return json_string_value(h);
}

void rh_publish_plan_cleanup(rh_publish_plan *p)
{
    for (size_t i = 0; i < p->nitems; i++) {
        free(p->items[i].target_path);
        json_decref(p->items[i].entry);
    }
    free(p->items);
    for (size_t i = 0; i < p->nremoved; i++)
        free(p->removed[i]);
    free(p->removed);
    memset(p, 0, sizeof *p);
}

rh_err rh_plan_publish(const rh_src_file *files, size_t nfiles, const json_t *current_targets,
                       rh_publish_plan *out, rh_error *e)
{
    rh_publish_plan p;
    memset(&p, 0, sizeof p);
    rh_err rc = RH_OK;
    json_t *seen = json_object();
    if (seen == NULL)
        return rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
    if (nfiles > 0 && (p.items = calloc(nfiles, sizeof *p.items)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++) {
        const rh_src_file *f = &files[i];
        if (i > 0 && strcmp(files[i - 1].relpath, f->relpath) >= 0) {
            rc = rh_fail(e, RH_EINVAL, "%s: source files not sorted or duplicated", f->relpath);
            goto out;
        }
        rh_plan_item *it = &p.items[p.nitems];
        size_t n = strlen(f->relpath), sl = strlen(RH_ORIGIN_TARGET_SUFFIX);
        if ((it->target_path = malloc(n + sl + 1)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
            goto out;
        }
        memcpy(it->target_path, f->relpath, n);
        memcpy(it->target_path + n, RH_ORIGIN_TARGET_SUFFIX, sl + 1);
        it->src = f;
        p.nitems++;
        if (json_object_set_new(seen, it->target_path, json_true()) != 0) {
            rc = rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
            goto out;
        }
        const json_t *old = current_targets ? json_object_get(current_targets, it->target_path)
                                            : NULL;
        if (old == NULL) {
            it->action = RH_PLAN_ADD;
            p.nadded++;
            continue;
        }
        uint64_t olen = 0;
        const char *osha = rhine_custom_sha(old, &olen);
        char hex[RH_SHA256_LEN * 2 + 1];
        rh_hex_encode(f->sha256, RH_SHA256_LEN, hex);
        if (osha != NULL && olen == f->length && strcmp(osha, hex) == 0 &&
            rh_target_entry_sha256(old) != NULL) {
            it->action = RH_PLAN_KEEP;
            /* Shared, not copied (entries are never changed in place, only replaced): a copy
             * of every unchanged entry was 1.4 KB each, 28 MB of a 20,000-target release. */
            it->entry = json_incref((json_t *)old);
            p.nkept++;
        } else {
            it->action = RH_PLAN_CHANGE;
            p.nchanged++;
        }
    }
    if (current_targets != NULL && json_object_size(current_targets) > 0) {
        size_t cap = json_object_size(current_targets);
        if ((p.removed = calloc(cap, sizeof *p.removed)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)current_targets, k, v)
        {
            if (json_object_get(seen, k) != NULL)
                continue;
            if ((p.removed[p.nremoved] = strdup(k)) == NULL) {
                rc = rh_fail(e, RH_ENOMEM, "publish plan: out of memory");
                goto out;
            }
            p.nremoved++;
        }
        /* jansson iterates in insertion order; report removals sorted. */
        for (size_t i = 1; i < p.nremoved; i++)
            for (size_t j = i; j > 0 && strcmp(p.removed[j - 1], p.removed[j]) > 0; j--) {
                char *t = p.removed[j];
                p.removed[j] = p.removed[j - 1];
                p.removed[j - 1] = t;
            }
    }
    *out = p;
    memset(&p, 0, sizeof p);
out:
    rh_publish_plan_cleanup(&p);
    json_decref(seen);
    return rc;
}

json_t *rh_plan_targets_object(const rh_publish_plan *p)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < p->nitems; i++) {
        if (p->items[i].entry == NULL ||
            json_object_set(o, p->items[i].target_path, p->items[i].entry) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *sha256_hashes(const uint8_t sha[RH_SHA256_LEN])
{
    char hex[RH_SHA256_LEN * 2 + 1];
    rh_hex_encode(sha, RH_SHA256_LEN, hex);
    return json_pack("{s:s}", "sha256", hex);
}

json_t *rh_target_entry_new(uint64_t zlen, const uint8_t zsha[RH_SHA256_LEN], uint64_t ulen,
                            const uint8_t usha[RH_SHA256_LEN])
{
    if (zlen > INT64_MAX || ulen > INT64_MAX)
        return NULL;
    char uhex[RH_SHA256_LEN * 2 + 1];
    rh_hex_encode(usha, RH_SHA256_LEN, uhex);
    json_t *h = sha256_hashes(zsha);
    if (h == NULL)
        return NULL;
    return json_pack("{s:I,s:o,s:{s:{s:I,s:s}}}", "length", (json_int_t)zlen, "hashes", h,
                     "custom", "rhine", "length", (json_int_t)ulen, "sha256", uhex);
}

const char *rh_target_entry_sha256(const json_t *entry)
{
    const json_t *h = json_object_get(json_object_get(entry, "hashes"), "sha256");
    if (!json_is_string(h) || json_string_length(h) != RH_SHA256_LEN * 2)
        return NULL;
    uint8_t tmp[RH_SHA256_LEN];
    if (rh_hex_decode(json_string_value(h), tmp, sizeof tmp) != RH_OK)
        return NULL;
    return json_string_value(h);
}

char *rh_target_stored_path(const char *target_path, const char *sha256_hex)
{
    const char *slash = strrchr(target_path, '/');
    size_t dlen = slash ? (size_t)(slash - target_path) + 1 : 0;
    const char *name = target_path + dlen;
    size_t hl = strlen(sha256_hex), nl = strlen(name);
    char *s = malloc(dlen + hl + 1 + nl + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, target_path, dlen);
    memcpy(s + dlen, sha256_hex, hl);
    s[dlen + hl] = '.';
    memcpy(s + dlen + hl + 1, name, nl + 1);
    return s;
}

uint64_t rh_next_version(uint64_t current, uint64_t highest_on_disk)
{
    uint64_t m = current > highest_on_disk ? current : highest_on_disk;
    return m + 1;
}

bool rh_needs_resign(int64_t now, int64_t expires, int64_t lifetime)
{
    if (expires <= now)
        return true;
    return 2 * (expires - now) <= lifetime; /* at most half the lifetime left */
}

static json_t *signed_base(const char *type, uint64_t version, int64_t expires)
{
    if (version == 0 || version > INT64_MAX)
        return NULL;
    char t[21];
    rh_time_format(expires, t);
    return json_pack("{s:s,s:s,s:I,s:s}", "_type", type, "spec_version", RH_ORIGIN_SPEC_VERSION,
                     "version", (json_int_t)version, "expires", t);
}

json_t *rh_signed_targets_new(uint64_t version, int64_t expires, const json_t *targets,
                              const json_t *provenance)
{
    json_t *s = signed_base("targets", version, expires);
    if (s == NULL || !json_is_object(targets))
        goto fail;
    /* Shared, not copied: a copy of a large repository's targets is a second tree of it. */
    if (json_object_set(s, "targets", (json_t *)targets) != 0)
        goto fail;
    if (provenance != NULL &&
        json_object_set_new(s, RH_ORIGIN_PROVENANCE_FIELD, json_deep_copy(provenance)) != 0)
        goto fail;
    return s;
fail:
    json_decref(s);
    return NULL;
}

json_t *rh_meta_entry_new(uint64_t version, uint64_t length, const uint8_t sha[RH_SHA256_LEN])
{
    if (version == 0 || version > INT64_MAX || length > INT64_MAX)
        return NULL;
    json_t *h = sha256_hashes(sha);
    if (h == NULL)
        return NULL;
    return json_pack("{s:I,s:I,s:o}", "version", (json_int_t)version, "length",
                     (json_int_t)length, "hashes", h);
}

json_t *rh_signed_snapshot_new(uint64_t version, int64_t expires, const json_t *meta)
{
    json_t *s = signed_base("snapshot", version, expires);
    if (s == NULL || !json_is_object(meta) ||
        json_object_set_new(s, "meta", json_deep_copy(meta)) != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

json_t *rh_signed_timestamp_new(uint64_t version, int64_t expires, uint64_t snapshot_version,
                                uint64_t snapshot_length, const uint8_t sha[RH_SHA256_LEN])
{
    json_t *s = signed_base("timestamp", version, expires);
    json_t *m = rh_meta_entry_new(snapshot_version, snapshot_length, sha);
    if (s == NULL || m == NULL) {
        json_decref(s);
        json_decref(m);
        return NULL;
    }
    if (json_object_set_new(s, "meta", json_pack("{s:o}", "snapshot.json", m)) != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

json_t *rh_signed_root_new(uint64_t version, int64_t expires, bool consistent_snapshot)
{
    json_t *s = signed_base("root", version, expires);
    json_t *roles = json_object();
    if (s == NULL || roles == NULL)
        goto fail;
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        if (json_object_set_new(roles, rh_role_name((rh_role)r),
                                json_pack("{s:[],s:i}", "keyids", "threshold", 1)) != 0)
            goto fail;
    if (json_object_set_new(s, "consistent_snapshot", json_boolean(consistent_snapshot)) ||
        json_object_set_new(s, "keys", json_object()) || json_object_set(s, "roles", roles))
        goto fail;
    json_decref(roles);
    return s;
fail:
    json_decref(roles);
    json_decref(s);
    return NULL;
}

/* Remove keys that no role of root lists. */
static rh_err prune_keys(json_t *root)
{
    json_t *keys = json_object_get(root, "keys"), *roles = json_object_get(root, "roles");
    json_t *used = json_object();
    if (used == NULL)
        return RH_ENOMEM;
    const char *rn;
    json_t *rv;
    json_object_foreach(roles, rn, rv)
    {
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(rv, "keyids"), i, id)
        {
            if (json_is_string(id) && json_object_set_new(used, json_string_value(id),
                                                          json_true()) != 0) {
                json_decref(used);
                return RH_ENOMEM;
            }
        }
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(keys, tmp, k, v)
    {
        if (json_object_get(used, k) == NULL)
            json_object_del(keys, k);
    }
    json_decref(used);
    return RH_OK;
}

rh_err rh_root_set_role(json_t *root, rh_role role, json_t *const *keys,
                        const char *const *keyids, size_t n, uint64_t threshold, rh_error *e)
{
    json_t *kd = json_object_get(root, "keys"), *roles = json_object_get(root, "roles");
    if (!json_is_object(kd) || !json_is_object(roles) || (int)role < 0 || role >= RH_ROLE_COUNT)
        return rh_fail(e, RH_EINVAL, "root: not a root object");
    if (n == 0 || threshold == 0 || threshold > n)
        return rh_fail(e, RH_EINVAL, "root: role %s: threshold %llu of %zu keys",
                       rh_role_name(role), (unsigned long long)threshold, n);
    json_t *ids = json_array();
    if (ids == NULL)
        return rh_fail(e, RH_ENOMEM, "root: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(ids, json_string(keyids[i])) != 0 ||
            json_object_set_new(kd, keyids[i], json_deep_copy(keys[i])) != 0) {
            json_decref(ids);
            return rh_fail(e, RH_ENOMEM, "root: out of memory");
        }
    }
    if (json_object_set_new(roles, rh_role_name(role),
                            json_pack("{s:o,s:I}", "keyids", ids, "threshold",
                                      (json_int_t)threshold)) != 0)
        return rh_fail(e, RH_ENOMEM, "root: out of memory");
    if (prune_keys(root) != RH_OK)
        return rh_fail(e, RH_ENOMEM, "root: out of memory");
    return RH_OK;
}

json_t *rh_signed_next(const json_t *signed_obj, uint64_t version, int64_t expires)
{
    if (version == 0 || version > INT64_MAX)
        return NULL;
    json_t *s = json_deep_copy(signed_obj);
    char t[21];
    rh_time_format(expires, t);
    if (s == NULL || json_object_set_new(s, "version", json_integer((json_int_t)version)) ||
        json_object_set_new(s, "expires", json_string(t))) {
        json_decref(s);
        return NULL;
    }
    return s;
}

rh_err rh_duration_parse(const char *s, int64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return RH_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || end[0] == '\0' || end[1] != '\0')
        return RH_EINVAL;
    long long mul;
    switch (end[0]) {
    case 's': mul = 1; break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    default: return RH_EINVAL;
    }
    if (v == 0 || v > (unsigned long long)(MAX_DURATION_SECONDS / mul))
        return RH_EINVAL;
    *out = (int64_t)v * mul;
    return RH_OK;
}
