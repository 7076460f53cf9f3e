/* fuzz_metadata.c -- libFuzzer target: rh_metadata_parse for every role type, then the lookups,
 * verification and the parse -> serialise -> canonical round trip on whatever parses; for the
 * targets type, rh_metadata_parse_lean against rh_metadata_parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/buf.h"
#include "manifest/json.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "manifest/tpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Does p hold a ".." segment? */
static int has_dotdot(const char *p)
{
    size_t n = strlen(p);
    return strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 || strstr(p, "/../") != NULL ||
           (n >= 3 && strcmp(p + n - 3, "/..") == 0);
}

/* The properties every parsed document must have; a violation is a bug, so crash loudly. */
static void check_parsed(const rh_metadata *m, rh_role role)
{
    if (m->type != role || m->version < 1 || m->canonical == NULL || m->signed_obj == NULL)
        abort();
    /* metadata.h: parse -> serialise -> canonical gives the same bytes. */
    json_t *s = rh_metadata_to_signed(m);
    if (s == NULL)
        abort();
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_error e;
    rh_error_clear(&e);
    if (rh_cjson_encode(s, &b, &e) != RH_OK || b.len != m->canonical_len ||
        memcmp(b.data, m->canonical, b.len) != 0)
        abort();
    rh_buf_cleanup(&b);
    json_decref(s);

    rh_error_clear(&e);
    switch (role) {
    case RH_ROLE_ROOT:
        /* Self-verification: fails on the corpus' fake signatures, must never crash. */
        for (int r = 0; r < RH_ROLE_COUNT; r++) {
            rh_error_clear(&e);
            rh_err rc = rh_root_verify_role(m, (rh_role)r, m, &e);
            if (rc != RH_OK && rc != RH_ESIG)
                abort();
        }
        for (size_t i = 0; i < m->u.root.nkeys; i++)
            if (rh_keys_find(m->u.root.keys, m->u.root.nkeys, m->u.root.keys[i].keyid) == NULL)
                abort();
        break;
    case RH_ROLE_SNAPSHOT:
        for (size_t i = 0; i < m->u.snapshot.nmeta; i++)
            if (rh_snapshot_find(m, m->u.snapshot.meta[i].name) == NULL)
                abort();
        break;
    case RH_ROLE_TARGETS:
        for (size_t i = 0; i < m->u.targets.ntargets; i++) {
            const char *p = m->u.targets.targets[i].path;
            if (rh_targets_find(m, p) == NULL)
                abort();
            /* A path that passes the check can never climb out of a directory. */
            if (rh_tpath_check(p, strlen(p), NULL) == RH_OK &&
                (p[0] == '/' || has_dotdot(p)))
                abort();
            for (size_t k = 0; k < m->u.targets.nroles; k++)
                (void)rh_delegation_matches(&m->u.targets.roles[k], p);
        }
        for (size_t k = 0; k < m->u.targets.nroles; k++) {
            char fn[RH_ROLE_FILENAME_MAX];
            if (rh_role_filename(m->u.targets.roles[k].name, fn, sizeof fn) == RH_OK &&
                (strchr(fn, '/') != NULL || strcmp(fn, "..") == 0 || strcmp(fn, ".") == 0))
                abort();
        }
        break;
    case RH_ROLE_TIMESTAMP:
        if (m->u.timestamp.name == NULL)
            abort();
        break;
    }
}

static int same_hashes(const rh_hashes *a, const rh_hashes *b)
{
    return a->has_sha256 == b->has_sha256 && a->has_sha512 == b->has_sha512 &&
           a->n_unknown == b->n_unknown && memcmp(a->sha256, b->sha256, sizeof a->sha256) == 0 &&
           memcmp(a->sha512, b->sha512, sizeof a->sha512) == 0;
}

/* rh_metadata_parse_lean must agree with rh_metadata_parse on every input: the same verdict
 * and message, and on success the same fields the lean document keeps and the same canonical
 * bytes (what signatures are checked over). */
static void check_lean(const uint8_t *data, size_t size, rh_err full_rc, const rh_metadata *f,
                       const rh_error *fe)
{
    rh_metadata *m = NULL;
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_metadata_parse_lean(data, size, RH_MAX_JSON_BYTES, RH_ROLE_TARGETS,
                                       "fuzz.json", &m, &e);
    if (rc != full_rc || e.code != fe->code || strcmp(e.msg, fe->msg) != 0)
        abort();
    if (rc != RH_OK) {
        if (m != NULL)
            abort();
        return;
    }
    const rh_targets_md *a = &m->u.targets, *b = &f->u.targets;
    if (m->version != f->version || m->expires != f->expires ||
        strcmp(m->spec_version, f->spec_version) != 0 || m->nsigs != f->nsigs ||
        m->canonical_len != f->canonical_len ||
        memcmp(m->canonical, f->canonical, m->canonical_len) != 0 ||
        a->ntargets != b->ntargets || a->nroles != b->nroles || a->nkeys != b->nkeys ||
        a->has_delegations != b->has_delegations)
        abort();
    for (size_t i = 0; i < m->nsigs; i++)
        if (strcmp(m->sigs[i].keyid, f->sigs[i].keyid) != 0 || m->sigs[i].len != f->sigs[i].len ||
            memcmp(m->sigs[i].sig, f->sigs[i].sig, m->sigs[i].len) != 0)
            abort();
    for (size_t i = 0; i < a->ntargets; i++)
        if (strcmp(a->targets[i].path, b->targets[i].path) != 0 ||
            a->targets[i].length != b->targets[i].length ||
            !same_hashes(&a->targets[i].hashes, &b->targets[i].hashes) ||
            a->targets[i].custom != NULL)
            abort();
    for (size_t i = 0; i < a->nroles; i++)
        if (strcmp(a->roles[i].name, b->roles[i].name) != 0)
            abort();
    if (!m->lean || rh_metadata_to_signed(m) != NULL)
        abort();
    rh_metadata_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int r = 0; r < RH_ROLE_COUNT; r++) {
        rh_metadata *m = NULL;
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_metadata_parse(data, size, RH_MAX_JSON_BYTES, (rh_role)r, "fuzz.json", &m,
                                      &e);
        if (rc == RH_OK) {
            if (m == NULL || e.code != RH_OK)
                abort();
            check_parsed(m, (rh_role)r);
        } else if (m != NULL || e.code != rc || e.msg[0] == '\0') {
            abort(); /* out written only on success; every failure says why */
        }
        if (r == RH_ROLE_TARGETS)
            check_lean(data, size, rc, m, &e);
        rh_metadata_free(m);
    }
    return 0;
}
