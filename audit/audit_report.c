/* audit_report.c -- releases, metadata cross-checks and rebuilt-payload checks over a log. */
#include "audit/audit_report.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/metadata.h"
#include "manifest/tpath.h"

#define PROVENANCE_FIELD "x-rhine-provenance" /* what rhine-origin signs in targets */
#define READ_CHUNK (128u * 1024)

int rh_audit_exit_code(const rh_audit_findings *f)
{
    if (f->inconsistent)
        return RH_AUDIT_EXIT_INCONSISTENT;
    if (f->unavailable)
        return RH_AUDIT_EXIT_INCOMPLETE;
    if (f->unproven)
        return RH_AUDIT_EXIT_PROVENANCE;
    return RH_AUDIT_EXIT_OK;
}

static void hex(const uint8_t *h, char out[65]) { rh_hex_encode(h, 32, out); }

static rh_role role_type(const char *role)
{
    return strcmp(role, "root") == 0       ? RH_ROLE_ROOT
           : strcmp(role, "snapshot") == 0 ? RH_ROLE_SNAPSHOT
                                           : RH_ROLE_TARGETS;
}

/* Fetches the logged file of entry en into b and checks it. Returns 1 when it matches, 0 after
 * printing a finding. */
static int fetch_logged(const rh_log_src *src, const rh_log_ventry *en, rh_buf *b,
                        char *path, size_t pathcap, FILE *out, rh_audit_findings *f)
{
    char enc[RH_ROLE_FILENAME_MAX];
    if (rh_role_filename(en->role, enc, sizeof enc) != RH_OK) {
        fprintf(out, "INCONSISTENT: log entry names role \"%s\" that has no file name\n",
                en->role);
        f->inconsistent++;
        return 0;
    }
    snprintf(path, pathcap, "metadata/%llu.%s.json", (unsigned long long)en->version, enc);
    if (en->length > RH_MAX_JSON_BYTES) {
        fprintf(out, "INCONSISTENT: %s: logged length %llu is past any metadata limit\n", path,
                (unsigned long long)en->length);
        f->inconsistent++;
        return 0;
    }
    rh_error e;
    rh_error_clear(&e);
    rh_buf_reset(b);
    rh_err rc = src->get(src->ctx, path, (size_t)en->length, b, &e);
    char want[65], got[65];
    hex(en->sha256, want);
    if (rc == RH_ETOOBIG) {
        fprintf(out, "INCONSISTENT: %s: served longer than the %llu bytes logged (sha256 %s)\n",
                path, (unsigned long long)en->length, want);
        f->inconsistent++;
        return 0;
    }
    if (rc != RH_OK) {
        fprintf(out, "UNAVAILABLE: %s: %s\n", path, e.msg);
        f->unavailable++;
        return 0;
    }
    uint8_t sha[32];
    if (rh_hash_once(RH_SHA256, b->data, b->len, sha) != RH_OK) {
        fprintf(out, "UNAVAILABLE: %s: hashing failed\n", path);
        f->unavailable++;
        return 0;
    }
    if (b->len != en->length || !rh_ct_equal(sha, en->sha256, 32)) {
        hex(sha, got);
        fprintf(out, "INCONSISTENT: %s: served %zu bytes sha256 %s, the log says %llu bytes "
                "sha256 %s\n", path, b->len, got, (unsigned long long)en->length, want);
        f->inconsistent++;
        return 0;
    }
    return 1;
}

/* Index of log entries sorted by (role, version). */
static const rh_log_ventry *g_sort_ents;
static int by_role_version(const void *a, const void *b)
{
    const rh_log_ventry *x = &g_sort_ents[*(const size_t *)a];
    const rh_log_ventry *y = &g_sort_ents[*(const size_t *)b];
    int c = strcmp(x->role, y->role);
    if (c != 0)
        return c;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static bool logged(const rh_log_view *log, const size_t *idx, const char *role, uint64_t v)
{
    size_t lo = 0, hi = (size_t)log->size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rh_log_ventry *m = &log->ent[idx[mid]];
        int c = strcmp(m->role, role);
        if (c == 0)
            c = m->version < v ? -1 : m->version > v;
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* "x.json" -> role "x" (snapshot meta names). */
static bool meta_role(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (n <= 5 || strcmp(name + n - 5, ".json") != 0 || n - 5 >= cap)
        return false;
    memcpy(out, name, n - 5);
    out[n - 5] = '\0';
    return true;
}

static void print_release(const rh_log_ventry *en, const rh_metadata *m, json_t *prev,
                          FILE *out, rh_audit_findings *f)
{
    const json_t *tg = json_object_get(m->signed_obj, "targets");
    size_t added = 0, changed = 0, removed = 0;
    const char *k;
    json_t *v;
    char when[21] = "-";
    if (en->has_time)
        rh_time_format(en->time, when);
    char rec[65] = "-";
    if (en->has_recipe)
        hex(en->build_recipe_sha256, rec);
    json_object_foreach((json_t *)tg, k, v) {
        json_t *o = prev ? json_object_get(prev, k) : NULL;
        if (o == NULL)
            added++;
        else if (!json_equal(o, v))
            changed++;
    }
    json_object_foreach(prev, k, v) {
        if (json_object_get(tg, k) == NULL)
            removed++;
    }
    fprintf(out, "release %llu  logged %s  files %zu  added %zu  changed %zu  removed %zu  "
            "source_rev %s  build_recipe_sha256 %s\n",
            (unsigned long long)en->version, when,
            json_object_size(tg), added, changed, removed,
            en->has_source_rev ? en->source_rev : "-", rec);
    json_object_foreach((json_t *)tg, k, v) {
        json_t *o = prev ? json_object_get(prev, k) : NULL;
        if (o == NULL)
            fprintf(out, "  + %s\n", k);
        else if (!json_equal(o, v))
            fprintf(out, "  ~ %s\n", k);
    }
    json_object_foreach(prev, k, v) {
        if (json_object_get(tg, k) == NULL)
            fprintf(out, "  - %s\n", k);
    }
    /* A release that ships nothing (the empty targets of a new repository) has nothing to prove. */
    if ((!en->has_source_rev || !en->has_recipe) && json_object_size(tg) > 0) {
        fprintf(out, "NO PROVENANCE: release %llu has no %s%s%s in the log\n",
                (unsigned long long)en->version, en->has_source_rev ? "" : "source revision",
                !en->has_source_rev && !en->has_recipe ? " and no " : "",
                en->has_recipe ? "" : "build recipe digest");
        f->unproven++;
    }
    /* The log's provenance must be what the release itself signs. */
    const json_t *p = json_object_get(m->signed_obj, PROVENANCE_FIELD);
    const char *srev = json_string_value(json_object_get(p, "source_rev"));
    const char *srec = json_string_value(
        json_object_get(json_object_get(p, "build_recipe"), "sha256"));
    bool rev_ok = en->has_source_rev ? srev != NULL && strcmp(srev, en->source_rev) == 0
                                     : srev == NULL;
    bool rec_ok = en->has_recipe ? srec != NULL && strcmp(srec, rec) == 0 : srec == NULL;
    if (!rev_ok || !rec_ok) {
        fprintf(out, "INCONSISTENT: release %llu: the log's provenance (source_rev %s, recipe %s) "
                "differs from the signed %s (source_rev %s, recipe %s)\n",
                (unsigned long long)en->version, en->has_source_rev ? en->source_rev : "-", rec,
                PROVENANCE_FIELD, srev ? srev : "-", srec ? srec : "-");
        f->inconsistent++;
    }
}

void rh_audit_list(const rh_log_src *src, const rh_log_view *log, FILE *out,
                   rh_audit_findings *f)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    char path[RH_ROLE_FILENAME_MAX + 64];
    size_t *idx = malloc(((size_t)log->size + 1) * sizeof *idx);
    json_t *prev = NULL;
    uint64_t max_root = 0;
    if (idx == NULL) {
        fprintf(out, "UNAVAILABLE: out of memory\n");
        f->unavailable++;
        return;
    }
    for (size_t i = 0; i < log->size; i++)
        idx[i] = i;
    g_sort_ents = log->ent;
    qsort(idx, (size_t)log->size, sizeof *idx, by_role_version);
    /* One (role, version), one file: two hashes are a split view. */
    for (size_t i = 1; i < log->size; i++) {
        const rh_log_ventry *a = &log->ent[idx[i - 1]], *c = &log->ent[idx[i]];
        if (strcmp(a->role, c->role) == 0 && a->version == c->version &&
            (a->length != c->length || !rh_ct_equal(a->sha256, c->sha256, 32))) {
            char x[65], y[65];
            hex(a->sha256, x);
            hex(c->sha256, y);
            fprintf(out, "INCONSISTENT: %llu.%s.json is logged twice with different bytes: entry "
                    "%zu sha256 %s, entry %zu sha256 %s\n", (unsigned long long)a->version,
                    a->role, idx[i - 1], x, idx[i], y);
            f->inconsistent++;
        }
    }
    for (size_t i = 0; i < log->size; i++) {
        const rh_log_ventry *en = &log->ent[i];
        if (strcmp(en->role, "root") == 0) {
            if (en->version > max_root + 1) {
                fprintf(out, "INCONSISTENT: root %llu is logged after root %llu: the chain has a "
                        "gap\n", (unsigned long long)en->version, (unsigned long long)max_root);
                f->inconsistent++;
            }
            if (en->version > max_root)
                max_root = en->version;
        }
        if (!fetch_logged(src, en, &b, path, sizeof path, out, f))
            continue;
        rh_metadata *m = NULL;
        rh_error e;
        rh_error_clear(&e);
        if (rh_metadata_parse(b.data, b.len, RH_MAX_JSON_BYTES, role_type(en->role), path, &m,
                              &e) != RH_OK) {
            fprintf(out, "INCONSISTENT: %s: logged, but not %s metadata: %s\n", path, en->role,
                    e.msg);
            f->inconsistent++;
            continue;
        }
        if (m->version != en->version) {
            fprintf(out, "INCONSISTENT: %s: says version %llu\n", path,
                    (unsigned long long)m->version);
            f->inconsistent++;
        }
        if (m->type == RH_ROLE_SNAPSHOT) {
            for (size_t k = 0; k < m->u.snapshot.nmeta; k++) {
                const rh_metafile *mf = &m->u.snapshot.meta[k];
                char role[RH_MAX_ROLE_NAME + 1];
                if (!meta_role(mf->name, role, sizeof role) ||
                    !logged(log, idx, role, mf->version)) {
                    fprintf(out, "INCONSISTENT: %s names %s version %llu, which is not in the "
                            "log\n", path, mf->name, (unsigned long long)mf->version);
                    f->inconsistent++;
                }
            }
        }
        if (m->type == RH_ROLE_TARGETS && strcmp(en->role, "targets") == 0) {
            f->releases++;
            print_release(en, m, prev, out, f);
            json_decref(prev);
            prev = json_deep_copy(json_object_get(m->signed_obj, "targets"));
        }
        rh_metadata_free(m);
    }
    /* What is served now must be in the log. */
    rh_error e;
    rh_error_clear(&e);
    rh_buf_reset(&b);
    rh_metadata *ts = NULL;
    if (src->get(src->ctx, "metadata/timestamp.json", RH_MAX_TIMESTAMP_BYTES, &b, &e) != RH_OK) {
        fprintf(out, "UNAVAILABLE: metadata/timestamp.json: %s\n", e.msg);
        f->unavailable++;
    } else if (rh_metadata_parse(b.data, b.len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP,
                                 "metadata/timestamp.json", &ts, &e) != RH_OK) {
        fprintf(out, "INCONSISTENT: metadata/timestamp.json: %s\n", e.msg);
        f->inconsistent++;
    } else if (!logged(log, idx, "snapshot", ts->u.timestamp.version)) {
        fprintf(out, "INCONSISTENT: metadata/timestamp.json names snapshot version %llu, which "
                "is not in the log\n", (unsigned long long)ts->u.timestamp.version);
        f->inconsistent++;
    }
    rh_metadata_free(ts);
    snprintf(path, sizeof path, "metadata/%llu.root.json", (unsigned long long)max_root + 1);
    rh_error_clear(&e);
    rh_err rc = src->get(src->ctx, path, RH_MAX_ROOT_BYTES, &b, &e);
    if (rc == RH_OK || rc == RH_ETOOBIG) {
        fprintf(out, "INCONSISTENT: %s is served but not in the log\n", path);
        f->inconsistent++;
    } else if (rc != RH_ENOTFOUND) {
        fprintf(out, "UNAVAILABLE: %s: %s\n", path, e.msg);
        f->unavailable++;
    }
    fprintf(out, "log: %llu entries, %zu releases, %zu cosignatures; %zu inconsistent, %zu "
            "unavailable, %zu without provenance\n", (unsigned long long)log->size, f->releases,
            log->ncosig, f->inconsistent, f->unavailable, f->unproven);
    json_decref(prev);
    free(idx);
    rh_buf_cleanup(&b);
}

/* ---- verify-build ---------------------------------------------------------------------------*/

static rh_err hash_file(const char *path, uint64_t *len, uint8_t sha[32])
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return errno == ENOENT ? RH_ENOTFOUND : RH_EIO;
    rh_hash *h = rh_hash_new(RH_SHA256);
    uint8_t *buf = malloc(READ_CHUNK);
    rh_err rc = h != NULL && buf != NULL ? RH_OK : RH_ENOMEM;
    uint64_t n = 0;
    size_t r;
    while (rc == RH_OK && (r = fread(buf, 1, READ_CHUNK, fp)) > 0) {
        rc = rh_hash_update(h, buf, r);
        n += r;
    }
    if (rc == RH_OK && ferror(fp))
        rc = RH_EIO;
    if (rc == RH_OK)
        rc = rh_hash_final(h, sha);
    if (rc == RH_OK)
        *len = n;
    fclose(fp);
    free(buf);
    rh_hash_free(h);
    return rc;
}

/* Every regular file under dir/rel not named in tg (as "<path>.zst") is an extra. */
static void find_extras(const char *dir, const char *rel, const json_t *tg, FILE *out,
                        rh_audit_findings *f, int depth)
{
    char p[4096];
    snprintf(p, sizeof p, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(p);
    if (d == NULL || depth > 64) {
        if (d != NULL)
            closedir(d);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char r2[4096], full[8200], name[4200];
        snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        snprintf(full, sizeof full, "%s/%s", dir, r2);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            find_extras(dir, r2, tg, out, f, depth + 1);
        } else {
            snprintf(name, sizeof name, "%s.zst", r2);
            if (json_object_get(tg, name) == NULL) {
                fprintf(out, "EXTRA %s: not in the release\n", r2);
                f->inconsistent++;
            }
        }
    }
    closedir(d);
}

void rh_audit_verify_build(const rh_log_src *src, const rh_log_view *log, uint64_t release,
                           const char *dir, FILE *out, rh_audit_findings *f)
{
    const rh_log_ventry *en = NULL;
    for (size_t i = 0; i < log->size && en == NULL; i++)
        if (strcmp(log->ent[i].role, "targets") == 0 && log->ent[i].version == release)
            en = &log->ent[i];
    if (en == NULL) {
        fprintf(out, "INCONSISTENT: release %llu (targets version) is not in the log\n",
                (unsigned long long)release);
        f->inconsistent++;
        return;
    }
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    char path[RH_ROLE_FILENAME_MAX + 64];
    rh_metadata *m = NULL;
    rh_error e;
    rh_error_clear(&e);
    if (!fetch_logged(src, en, &b, path, sizeof path, out, f))
        goto out;
    if (rh_metadata_parse(b.data, b.len, RH_MAX_JSON_BYTES, RH_ROLE_TARGETS, path, &m, &e) !=
        RH_OK) {
        fprintf(out, "INCONSISTENT: %s: %s\n", path, e.msg);
        f->inconsistent++;
        goto out;
    }
    for (size_t i = 0; i < m->u.targets.ntargets; i++) {
        const rh_target *t = &m->u.targets.targets[i];
        size_t n = strlen(t->path);
        const json_t *r = json_object_get(t->custom, "rhine");
        const json_t *jl = json_object_get(r, "length");
        uint8_t want[32], got[32];
        rh_error pe;
        rh_error_clear(&pe);
        if (n <= 4 || strcmp(t->path + n - 4, ".zst") != 0 ||
            rh_tpath_check(t->path, n, &pe) != RH_OK || !json_is_integer(jl) ||
            json_integer_value(jl) < 0 ||
            json_string_length(json_object_get(r, "sha256")) != 64 ||
            rh_hex_decode(json_string_value(json_object_get(r, "sha256")), want, 32) != RH_OK) {
            fprintf(out, "INCONSISTENT %s: no usable custom.rhine length/sha256 or unsafe path\n",
                    t->path);
            f->inconsistent++;
            continue;
        }
        char local[8200];
        snprintf(local, sizeof local, "%s/%.*s", dir, (int)(n - 4), t->path);
        uint64_t len = 0;
        rh_err rc = hash_file(local, &len, got);
        char wh[65], gh[65];
        hex(want, wh);
        if (rc == RH_ENOTFOUND) {
            fprintf(out, "MISSING %.*s: the release ships %lld bytes sha256 %s\n", (int)(n - 4),
                    t->path, (long long)json_integer_value(jl), wh);
            f->inconsistent++;
        } else if (rc != RH_OK) {
            fprintf(out, "UNAVAILABLE %s: cannot read (%s)\n", local, rh_err_name(rc));
            f->unavailable++;
        } else if (len != (uint64_t)json_integer_value(jl) || !rh_ct_equal(got, want, 32)) {
            hex(got, gh);
            fprintf(out, "DIFFERS %.*s: rebuilt %llu bytes sha256 %s, release %llu ships %lld "
                    "bytes sha256 %s\n", (int)(n - 4), t->path, (unsigned long long)len, gh,
                    (unsigned long long)release, (long long)json_integer_value(jl), wh);
            f->inconsistent++;
        } else {
            fprintf(out, "ok %.*s\n", (int)(n - 4), t->path);
        }
    }
    find_extras(dir, "", json_object_get(m->signed_obj, "targets"), out, f, 0);
    fprintf(out, "release %llu: %zu files, %zu differences\n", (unsigned long long)release,
            m->u.targets.ntargets, f->inconsistent);
out:
    rh_metadata_free(m);
    rh_buf_cleanup(&b);
}
