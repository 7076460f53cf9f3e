/* test_metadata.c -- TUF metadata: literal and generated parses, a rejection table with exact
 * codes and field paths, threshold counting, delegation matching, hashes, byte round-trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"
#include "tests/unit/manifest/md_fixture.h"

#define SRC "https://m/metadata/2.root.json"

/* RFC 8032 test vectors 1 and 2 (public keys) and their TUF key IDs (sha256 of the canonical
 * key object, computed independently with Python's hashlib + json.dumps(sort_keys)). */
#define PUB1 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define PUB2 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
#define KID1 "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
#define KID2 "eaf1e23f6c823132f437a2eaa299a7950f7386631deff273db195bbd26209e2b"
#define KEY1 "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"" PUB1 "\"}}"
#define KEY2 "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"" PUB2 "\"}}"
#define H16 "0123456789abcdef"
#define H64 H16 H16 H16 H16
#define H128 H64 H64
/* sha256("abc"), sha512("abc") (FIPS 180-2) */
#define ABC256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC512                                                                                     \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define ROLEK1 "{\"keyids\": [\"" KID1 "\"], \"threshold\": 1}"

static const char ROOT_LIT[] =
    "{\n \"signatures\": [{\"keyid\": \"" KID1 "\", \"sig\": \"" H128 "\"}],\n"
    " \"signed\": {\n"
    "  \"_type\": \"root\", \"spec_version\": \"1.0.31\", \"version\": 2,\n"
    "  \"expires\": \"2030-01-01T00:00:00Z\", \"consistent_snapshot\": true,\n"
    "  \"keys\": {\"" KID1 "\": " KEY1 ", \"" KID2 "\": " KEY2 "},\n"
    "  \"roles\": {\n"
    "   \"root\": {\"keyids\": [\"" KID1 "\", \"" KID2 "\"], \"threshold\": 2},\n"
    "   \"timestamp\": " ROLEK1 ",\n"
    "   \"snapshot\": " ROLEK1 ",\n"
    "   \"targets\": {\"keyids\": [\"" KID2 "\"], \"threshold\": 1}\n"
    "  }\n }\n}\n";

static const char TS_LIT[] =
    "{\"signatures\": [], \"signed\": {\"_type\": \"timestamp\", \"spec_version\": \"1.0\","
    " \"version\": 7, \"expires\": \"2000-02-29T12:34:56Z\", \"meta\": {\"snapshot.json\":"
    " {\"version\": 6, \"length\": 512, \"hashes\": {\"sha256\": \"" ABC256 "\"}}}}}";

static const char SNAP_LIT[] =
    "{\"signatures\": [], \"signed\": {\"_type\": \"snapshot\", \"spec_version\": \"1.0.31\","
    " \"version\": 6, \"expires\": \"2030-01-01T00:00:00Z\", \"meta\": {"
    "\"targets.json\": {\"version\": 3},"
    " \"role-a.json\": {\"version\": 4, \"length\": 10, \"hashes\": {\"sha512\": \"" ABC512 "\","
    " \"md5\": \"x\"}}}}}";

static const char TGT_LIT[] =
    "{\"signatures\": [], \"signed\": {\"_type\": \"targets\", \"spec_version\": \"1.0.31\","
    " \"version\": 3, \"expires\": \"2030-01-01T00:00:00Z\", \"targets\": {"
    "\"a/b.txt.zst\": {\"length\": 3, \"hashes\": {\"sha256\": \"" ABC256 "\"},"
    " \"custom\": {\"rhine\": {\"length\": 5, \"sha256\": \"" ABC256 "\"}}}},"
    " \"delegations\": {\"keys\": {\"" KID1 "\": " KEY1 "}, \"roles\": ["
    "{\"name\": \"role-a\", \"keyids\": [\"" KID1 "\"], \"threshold\": 1, \"terminating\": true,"
    " \"paths\": [\"a/*\", \"b/*.zst\"]},"
    " {\"name\": \"role-b\", \"keyids\": [\"" KID1 "\"], \"threshold\": 1,"
    " \"path_hash_prefixes\": [\"55\", \"8f\"]}]}}}";

static rh_err parse_str(const char *s, rh_role role, rh_metadata **m, rh_error *e)
{
    rh_error_clear(e);
    return rh_metadata_parse((const uint8_t *)s, strlen(s), RH_MAX_JSON_BYTES, role, SRC, m, e);
}

/* parse -> to_signed -> canonical must equal the canonical bytes of the parsed "signed". */
static void assert_roundtrip(const rh_metadata *m)
{
    json_t *s = rh_metadata_to_signed(m);
    assert_non_null(s);
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_cjson_encode(s, &b, &e), RH_OK);
    if (b.len != m->canonical_len || memcmp(b.data, m->canonical, b.len) != 0)
        fail_msg("round-trip differs:\n got  %s\n want %.*s", (const char *)b.data,
                 (int)m->canonical_len, (const char *)m->canonical);
    rh_buf_cleanup(&b);
    json_decref(s);
}

/* ---- hand-written literals ----------------------------------------------------------------- */

static void test_literal_root(void **state)
{
    (void)state;
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(ROOT_LIT, RH_ROLE_ROOT, &m, &e), RH_OK);
    assert_int_equal(m->type, RH_ROLE_ROOT);
    assert_string_equal(m->spec_version, "1.0.31");
    assert_int_equal(m->version, 2);
    assert_int_equal(m->expires, 1893456000);
    assert_true(m->u.root.consistent_snapshot);
    assert_int_equal(m->u.root.nkeys, 2);
    assert_non_null(rh_keys_find(m->u.root.keys, m->u.root.nkeys, KID1));
    assert_non_null(rh_keys_find(m->u.root.keys, m->u.root.nkeys, KID2));
    assert_null(rh_keys_find(m->u.root.keys, m->u.root.nkeys, H64));
    assert_string_equal(rh_keys_find(m->u.root.keys, 2, KID2)->public_value, PUB2);
    const rh_rolekeys *r = &m->u.root.roles[RH_ROLE_ROOT];
    assert_int_equal(r->nkeyids, 2);
    assert_string_equal(r->keyids[0], KID1);
    assert_string_equal(r->keyids[1], KID2);
    assert_int_equal(r->threshold, 2);
    assert_string_equal(m->u.root.roles[RH_ROLE_TARGETS].keyids[0], KID2);
    assert_int_equal(m->nsigs, 1);
    assert_string_equal(m->sigs[0].keyid, KID1);
    assert_int_equal(m->sigs[0].len, 64);
    assert_int_equal(m->sigs[0].sig[0], 0x01);
    assert_int_equal(m->sigs[0].sig[63], 0xef);
    /* canonical: sorted keys, no whitespace */
    assert_true(m->canonical_len > 0);
    assert_memory_equal(m->canonical, "{\"_type\":\"root\",\"consistent_snapshot\":true,", 42);
    assert_null(memchr(m->canonical, '\n', m->canonical_len));
    /* the bogus signature does not verify */
    assert_int_equal(rh_root_verify_role(m, RH_ROLE_ROOT, m, &e), RH_ESIG);
    assert_roundtrip(m);
    rh_metadata_free(m);
}

static void test_literal_timestamp_snapshot(void **state)
{
    (void)state;
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(TS_LIT, RH_ROLE_TIMESTAMP, &m, &e), RH_OK);
    assert_string_equal(m->spec_version, "1.0");
    assert_int_equal(m->version, 7);
    assert_int_equal(m->expires, 951827696);
    assert_string_equal(m->u.timestamp.name, "snapshot.json");
    assert_int_equal(m->u.timestamp.version, 6);
    assert_int_equal(m->u.timestamp.length, 512);
    assert_true(m->u.timestamp.has_hashes);
    assert_true(m->u.timestamp.hashes.has_sha256);
    assert_false(m->u.timestamp.hashes.has_sha512);
    assert_int_equal(m->u.timestamp.hashes.sha256[0], 0xba);
    assert_int_equal(m->u.timestamp.hashes.sha256[31], 0xad);
    assert_int_equal(m->nsigs, 0);
    assert_ptr_equal(rh_snapshot_find(m, "snapshot.json"), &m->u.timestamp);
    assert_roundtrip(m);
    rh_metadata_free(m);

    assert_int_equal(parse_str(SNAP_LIT, RH_ROLE_SNAPSHOT, &m, &e), RH_OK);
    assert_int_equal(m->u.snapshot.nmeta, 2);
    const rh_metafile *t = rh_snapshot_find(m, "targets.json");
    assert_non_null(t);
    assert_int_equal(t->version, 3);
    assert_int_equal(t->length, -1);
    assert_false(t->has_hashes);
    const rh_metafile *a = rh_snapshot_find(m, "role-a.json");
    assert_non_null(a);
    assert_int_equal(a->version, 4);
    assert_int_equal(a->length, 10);
    assert_true(a->hashes.has_sha512);
    assert_false(a->hashes.has_sha256);
    assert_int_equal(a->hashes.n_unknown, 1);
    assert_int_equal(a->hashes.sha512[0], 0xdd);
    assert_null(rh_snapshot_find(m, "role-b.json"));
    assert_roundtrip(m);
    rh_metadata_free(m);
}

static void test_literal_targets(void **state)
{
    (void)state;
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(TGT_LIT, RH_ROLE_TARGETS, &m, &e), RH_OK);
    const rh_targets_md *t = &m->u.targets;
    assert_int_equal(t->ntargets, 1);
    const rh_target *tg = rh_targets_find(m, "a/b.txt.zst");
    assert_non_null(tg);
    assert_int_equal(tg->length, 3);
    assert_true(tg->hashes.has_sha256);
    assert_non_null(tg->custom);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(tg->custom, "rhine"),
                                                        "length")),
                     5);
    assert_null(rh_targets_find(m, "a/b.txt"));
    assert_true(t->has_delegations);
    assert_int_equal(t->nkeys, 1);
    assert_string_equal(t->keys[0].keyid, KID1);
    assert_int_equal(t->nroles, 2);
    assert_string_equal(t->roles[0].name, "role-a");
    assert_true(t->roles[0].terminating);
    assert_int_equal(t->roles[0].npaths, 2);
    assert_string_equal(t->roles[0].paths[1], "b/*.zst");
    assert_null(t->roles[0].path_hash_prefixes);
    assert_int_equal(t->roles[0].keys.threshold, 1);
    assert_string_equal(t->roles[1].name, "role-b");
    assert_false(t->roles[1].terminating);
    assert_int_equal(t->roles[1].nprefixes, 2);
    assert_null(t->roles[1].paths);
    assert_int_equal(t->roles[1].npaths, 0);
    /* lookups on the wrong role type find nothing */
    assert_null(rh_snapshot_find(m, "targets.json"));
    assert_roundtrip(m);
    rh_metadata_free(m);
}

/* ---- rejection table ----------------------------------------------------------------------- */

/* Navigate doc by a '>'-separated path; set the last component to the JSON text val, or
 * delete it when val is NULL. Numeric components index arrays. */
static void mutate(json_t *doc, const char *path, const char *val)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *node = doc;
    char *comp = buf;
    for (;;) {
        char *gt = strchr(comp, '>');
        if (gt != NULL)
            *gt = '\0';
        if (gt == NULL) {
            json_t *v = NULL;
            if (val != NULL) {
                json_error_t je;
                v = json_loads(val, JSON_DECODE_ANY, &je);
                if (v == NULL)
                    fail_msg("bad table value %s", val);
            }
            if (json_is_array(node)) {
                size_t i = strtoul(comp, NULL, 10);
                if (v != NULL)
                    assert_int_equal(json_array_set_new(node, i, v), 0);
                else
                    assert_int_equal(json_array_remove(node, i), 0);
            } else if (v != NULL) {
                assert_int_equal(json_object_set_new(node, comp, v), 0);
            } else {
                assert_int_equal(json_object_del(node, comp), 0);
            }
            return;
        }
        node = json_is_array(node) ? json_array_get(node, strtoul(comp, NULL, 10))
                                   : json_object_get(node, comp);
        if (node == NULL)
            fail_msg("table path %s not found at %s", path, comp);
        comp = gt + 1;
    }
}

#define DEL NULL
#define T_A "signed>targets>a/b.txt.zst"
#define D_R "signed>delegations>roles"

static void test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *base;
        rh_role role;
        const char *path, *val;
        rh_err want;
        const char *msg; /* must appear in the message, after "SRC: " */
    } cases[] = {
        /* envelope */
        {ROOT_LIT, RH_ROLE_ROOT, "x-extra", "1", RH_EPARSE, "unexpected top-level field \"x-extra\""},
        {ROOT_LIT, RH_ROLE_ROOT, "signed", DEL, RH_EPARSE, "signed: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures", DEL, RH_EPARSE, "signatures: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures", "{}", RH_ETYPE, "signatures: expected array"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed", "[]", RH_ETYPE, "signed: expected object"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures>0>sig", "\"abc\"", RH_EPARSE, "signatures[0]: sig is not hex"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures>0>sig", "\"zz\"", RH_EPARSE, "signatures[0]: sig is not hex"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures>0>keyid", DEL, RH_EPARSE, "signatures[0].keyid: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures>0>keyid", "7", RH_ETYPE, "signatures[0].keyid: expected string, got integer"},
        {ROOT_LIT, RH_ROLE_ROOT, "signatures>0", "\"sig\"", RH_ETYPE, "signatures[0]: expected object"},
        /* common signed fields */
        {ROOT_LIT, RH_ROLE_ROOT, "signed>_type", "\"timestamp\"", RH_ETYPE, "signed._type: expected \"root\", got \"timestamp\""},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>_type", "\"Root\"", RH_ETYPE, "signed._type"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>_type", DEL, RH_EPARSE, "signed._type: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>version", DEL, RH_EPARSE, "signed.version: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>version", "0", RH_EPARSE, "signed.version: expected integer >= 1, got 0"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>version", "-3", RH_EPARSE, "signed.version: expected integer >= 1"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>version", "\"2\"", RH_ETYPE, "signed.version: expected integer, got string"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>version", "true", RH_ETYPE, "signed.version"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>spec_version", "\"2.0.0\"", RH_ETYPE, "signed.spec_version: major version 2"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>spec_version", "\"1\"", RH_EPARSE, "signed.spec_version"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>spec_version", "\"1.0.x\"", RH_EPARSE, "signed.spec_version"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>spec_version", "\"1.0.0.1\"", RH_EPARSE, "signed.spec_version"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>spec_version", DEL, RH_EPARSE, "signed.spec_version: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-01-01T00:00:00\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-02-30T00:00:00Z\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-13-01T00:00:00Z\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-01-01T24:00:00Z\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-01-01 00:00:00Z\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "\"2030-01-01T00:00:00+00:00\"", RH_EPARSE, "signed.expires"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>expires", "1893456000", RH_ETYPE, "signed.expires: expected string"},
        /* root */
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>timestamp>threshold", "0", RH_EPARSE, "signed.roles.timestamp.threshold: expected integer >= 1"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>timestamp>threshold", DEL, RH_EPARSE, "signed.roles.timestamp.threshold: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>snapshot", DEL, RH_EPARSE, "signed.roles.snapshot: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>mirror", ROLEK1, RH_EPARSE, "signed.roles: unknown role \"mirror\""},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>root>keyids", "[\"" KID1 "\",\"" KID2 "\",\"" KID1 "\"]", RH_EPARSE, "signed.roles.root.keyids: key ID " KID1 " listed twice"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>root>keyids", "[1]", RH_ETYPE, "signed.roles.root.keyids[0]: expected string"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles>root>keyids", DEL, RH_EPARSE, "signed.roles.root.keyids: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>roles", DEL, RH_EPARSE, "signed.roles: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys", DEL, RH_EPARSE, "signed.keys: missing"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys", "[]", RH_ETYPE, "signed.keys: expected object"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys>" KID1 ">keyval>public", "\"" PUB2 "\"", RH_EPARSE, "signed.keys[\"" KID1 "\"]: key ID does not match the key (computed " KID2 ")"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys>" H64, KEY1, RH_EPARSE, "signed.keys[\"" H64 "\"]: key ID does not match"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys>" KID1, "\"k\"", RH_ETYPE, "signed.keys[\"" KID1 "\"]: expected object"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>keys>" KID1 ">keyval>public", "\"abcd\"", RH_EPARSE, "signed.keys[\"" KID1 "\"]"},
        {ROOT_LIT, RH_ROLE_ROOT, "signed>consistent_snapshot", "\"yes\"", RH_ETYPE, "signed.consistent_snapshot: expected boolean"},
        /* timestamp */
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>_type", "\"snapshot\"", RH_ETYPE, "signed._type: expected \"timestamp\""},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json", DEL, RH_EPARSE, "signed.meta: expected exactly one entry, \"snapshot.json\""},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>targets.json", "{\"version\":1}", RH_EPARSE, "signed.meta: expected exactly one entry"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta", DEL, RH_EPARSE, "signed.meta: missing"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>version", DEL, RH_EPARSE, "signed.meta[\"snapshot.json\"].version: missing"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>length", "-1", RH_EPARSE, "signed.meta[\"snapshot.json\"].length: expected integer >= 0"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>hashes", "{}", RH_EPARSE, "signed.meta[\"snapshot.json\"].hashes: no hashes listed"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>hashes>sha256", "\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"", RH_EPARSE, "hashes.sha256: expected 64 lower-case hex digits"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>hashes>sha256", "\"" H16 "\"", RH_EPARSE, "hashes.sha256: expected 64"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>hashes>sha512", "\"" ABC256 "\"", RH_EPARSE, "hashes.sha512: expected 128"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json>hashes>blake2b", "7", RH_ETYPE, "hashes.blake2b: expected string"},
        {TS_LIT, RH_ROLE_TIMESTAMP, "signed>meta>snapshot.json", "[]", RH_ETYPE, "signed.meta[\"snapshot.json\"]: expected object"},
        /* snapshot */
        {SNAP_LIT, RH_ROLE_SNAPSHOT, "signed>meta>targets.json>version", "0", RH_EPARSE, "signed.meta[\"targets.json\"].version: expected integer >= 1"},
        {SNAP_LIT, RH_ROLE_SNAPSHOT, "signed>meta", DEL, RH_EPARSE, "signed.meta: missing"},
        {SNAP_LIT, RH_ROLE_SNAPSHOT, "signed>meta>", "{\"version\":1}", RH_EPARSE, "empty file name"},
        {SNAP_LIT, RH_ROLE_SNAPSHOT, "signed>_type", "\"targets\"", RH_ETYPE, "signed._type"},
        /* targets */
        {TGT_LIT, RH_ROLE_TARGETS, T_A ">hashes", DEL, RH_EPARSE, "signed.targets[\"a/b.txt.zst\"].hashes: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, T_A ">hashes", "{}", RH_EPARSE, "hashes: no hashes listed"},
        {TGT_LIT, RH_ROLE_TARGETS, T_A ">length", DEL, RH_EPARSE, "signed.targets[\"a/b.txt.zst\"].length: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, T_A ">length", "\"3\"", RH_ETYPE, ".length: expected integer"},
        {TGT_LIT, RH_ROLE_TARGETS, "signed>targets>", "{\"length\":1,\"hashes\":{\"sha256\":\"" ABC256 "\"}}", RH_EPARSE, "empty target path"},
        {TGT_LIT, RH_ROLE_TARGETS, "signed>targets", DEL, RH_EPARSE, "signed.targets: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">1>paths", "[\"x/*\"]", RH_EPARSE, "signed.delegations.roles[1]: expected exactly one of \"paths\" and \"path_hash_prefixes\""},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>paths", DEL, RH_EPARSE, "signed.delegations.roles[0]: expected exactly one of"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>paths", "[\"a\", 1]", RH_ETYPE, "signed.delegations.roles[0].paths[1]: expected string"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">1>name", "\"role-a\"", RH_EPARSE, "signed.delegations.roles: role \"role-a\" delegated twice"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>name", "\"\"", RH_EPARSE, "signed.delegations.roles[0].name: empty role name"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>name", "\"snapshot\"", RH_EPARSE, "top-level role name"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>name", DEL, RH_EPARSE, "signed.delegations.roles[0].name: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>threshold", "0", RH_EPARSE, "signed.delegations.roles[0].threshold: expected integer >= 1"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>keyids", "[\"a\",\"a\"]", RH_EPARSE, "signed.delegations.roles[0].keyids: key ID a listed twice"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">0>terminating", "1", RH_ETYPE, "signed.delegations.roles[0].terminating: expected boolean"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R, "{}", RH_ETYPE, "signed.delegations.roles: expected array"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R, DEL, RH_EPARSE, "signed.delegations.roles: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, "signed>delegations>keys", DEL, RH_EPARSE, "signed.delegations.keys: missing"},
        {TGT_LIT, RH_ROLE_TARGETS, "signed>delegations>keys>" KID1 ">scheme", "\"ed25519-x\"", RH_EPARSE, "signed.delegations.keys[\"" KID1 "\"]: key ID does not match"},
        {TGT_LIT, RH_ROLE_TARGETS, D_R ">1", "7", RH_ETYPE, "signed.delegations.roles[1]: expected object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        json_t *doc = json_loads(cases[i].base, 0, &je);
        assert_non_null(doc);
        mutate(doc, cases[i].path, cases[i].val);
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        assert_non_null(text);
        rh_metadata *m = NULL;
        rh_error e;
        rh_err rc = parse_str(text, cases[i].role, &m, &e);
        free(text);
        if (rc != cases[i].want)
            fail_msg("case %zu (%s): got %s (%s), want %s", i, cases[i].path, rh_err_name(rc),
                     e.msg, rh_err_name(cases[i].want));
        assert_null(m);
        assert_int_equal(e.code, cases[i].want);
        if (strncmp(e.msg, SRC ": ", strlen(SRC) + 2) != 0 || strstr(e.msg, cases[i].msg) == NULL)
            fail_msg("case %zu (%s): message \"%s\" lacks \"%s\"", i, cases[i].path, e.msg,
                     cases[i].msg);
    }
}

static void test_rejections_raw(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        rh_role role;
        rh_err want;
    } cases[] = {
        {"", RH_ROLE_ROOT, RH_EPARSE},
        {"{", RH_ROLE_ROOT, RH_EPARSE},
        {"[]", RH_ROLE_ROOT, RH_ETYPE},
        {"\"signed\"", RH_ROLE_ROOT, RH_ETYPE},
        /* duplicate key, first at the top, then inside "signed" */
        {"{\"signatures\":[],\"signatures\":[],\"signed\":{}}", RH_ROLE_ROOT, RH_EPARSE},
        {"{\"signatures\":[],\"signed\":{\"_type\":\"timestamp\",\"_type\":\"timestamp\"}}",
         RH_ROLE_TIMESTAMP, RH_EPARSE},
        /* a real number anywhere */
        {"{\"signatures\":[],\"signed\":{\"_type\":\"timestamp\",\"version\":1.0}}",
         RH_ROLE_TIMESTAMP, RH_EPARSE},
        /* trailing garbage */
        {"{\"signatures\":[],\"signed\":{}} x", RH_ROLE_ROOT, RH_EPARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_metadata *m = NULL;
        rh_error e;
        rh_err rc = parse_str(cases[i].text, cases[i].role, &m, &e);
        if (rc != cases[i].want)
            fail_msg("raw case %zu: got %s (%s)", i, rh_err_name(rc), e.msg);
        assert_null(m);
        assert_non_null(strstr(e.msg, SRC));
    }
    /* the right document for the wrong role */
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(TS_LIT, RH_ROLE_SNAPSHOT, &m, &e), RH_ETYPE);
    assert_int_equal(parse_str(TGT_LIT, RH_ROLE_ROOT, &m, &e), RH_ETYPE);
    assert_null(m);
    /* size limit */
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_parse((const uint8_t *)TS_LIT, strlen(TS_LIT), 100,
                                       RH_ROLE_TIMESTAMP, SRC, &m, &e),
                     RH_ETOOBIG);
    assert_null(m);
    /* a delegated role name longer than RH_MAX_ROLE_NAME, and a target path too long */
    char name[RH_MAX_ROLE_NAME + 2];
    memset(name, 'r', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    json_t *doc = json_loads(TGT_LIT, 0, NULL);
    json_object_set_new(json_array_get(json_object_get(json_object_get(json_object_get(doc,
                                                                                       "signed"),
                                                                       "delegations"),
                                                       "roles"),
                                       0),
                        "name", json_string(name));
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(parse_str(text, RH_ROLE_TARGETS, &m, &e), RH_ETOOBIG);
    assert_non_null(strstr(e.msg, "signed.delegations.roles[0].name: role name longer than 255"));
    free(text);
    json_decref(doc);
    char *path = malloc(RH_MAX_TARGET_PATH + 2);
    memset(path, 'p', RH_MAX_TARGET_PATH + 1);
    path[RH_MAX_TARGET_PATH + 1] = '\0';
    doc = json_loads(TGT_LIT, 0, NULL);
    json_object_set(json_object_get(json_object_get(doc, "signed"), "targets"), path,
                    json_object_get(json_object_get(json_object_get(doc, "signed"), "targets"),
                                    "a/b.txt.zst"));
    text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(parse_str(text, RH_ROLE_TARGETS, &m, &e), RH_ETOOBIG);
    assert_non_null(strstr(e.msg, "target path longer than 4096"));
    free(text);
    free(path);
    json_decref(doc);
    /* bad arguments */
    assert_int_equal(rh_metadata_parse((const uint8_t *)"{}", 2, 100, RH_ROLE_COUNT, SRC, &m, &e),
                     RH_EINVAL);
    assert_int_equal(rh_metadata_parse(NULL, 5, 100, RH_ROLE_ROOT, SRC, &m, &e), RH_EINVAL);
    assert_null(m);
}

/* Optional fields: absent consistent_snapshot reads as false, absent terminating as false,
 * targets without delegations, empty signatures, empty paths list. */
static void test_optional_fields(void **state)
{
    (void)state;
    json_t *doc = json_loads(ROOT_LIT, 0, NULL);
    json_object_del(json_object_get(doc, "signed"), "consistent_snapshot");
    char *text = json_dumps(doc, JSON_COMPACT);
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(text, RH_ROLE_ROOT, &m, &e), RH_OK);
    assert_false(m->u.root.consistent_snapshot);
    assert_roundtrip(m); /* and it stays absent */
    rh_metadata_free(m);
    free(text);
    json_decref(doc);

    doc = json_loads(TGT_LIT, 0, NULL);
    json_t *r0 = json_array_get(
        json_object_get(json_object_get(json_object_get(doc, "signed"), "delegations"), "roles"),
        0);
    json_object_del(r0, "terminating");
    json_object_set_new(r0, "paths", json_array());
    text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(parse_str(text, RH_ROLE_TARGETS, &m, &e), RH_OK);
    assert_false(m->u.targets.roles[0].terminating);
    assert_int_equal(m->u.targets.roles[0].npaths, 0);
    assert_false(rh_delegation_matches(&m->u.targets.roles[0], "a/x"));
    assert_roundtrip(m);
    rh_metadata_free(m);
    free(text);
    json_object_del(json_object_get(doc, "signed"), "delegations");
    text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(parse_str(text, RH_ROLE_TARGETS, &m, &e), RH_OK);
    assert_false(m->u.targets.has_delegations);
    assert_int_equal(m->u.targets.nroles, 0);
    assert_roundtrip(m);
    rh_metadata_free(m);
    free(text);
    json_decref(doc);
}

/* ---- generated, signed metadata and thresholds --------------------------------------------- */

typedef struct world {
    fx_keys f;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL || fx_keys_init(&w->f) != 0) {
        free(w);
        return -1;
    }
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    fx_keys_cleanup(&w->f);
    free(w);
    return 0;
}

static const int K0[] = {0, -1}, K1[] = {1, -1}, K012[] = {0, 1, 2, -1};

/* Root: keys 0,1,2; root role {0} threshold 1; snapshot {0,1,2} threshold 2;
 * timestamp {1}; targets {2}. Signed by key 0. */
static rh_metadata *make_root(const fx_keys *f)
{
    json_t *s = fx_signed_base("root", 1);
    json_object_set_new(s, "consistent_snapshot", json_true());
    json_object_set_new(s, "keys", fx_keys_json(f, K012));
    json_t *roles = json_object();
    json_object_set_new(roles, "root", fx_role_json(f, K0, 1));
    json_object_set_new(roles, "timestamp", fx_role_json(f, K1, 1));
    json_object_set_new(roles, "snapshot", fx_role_json(f, K012, 2));
    static const int K2[] = {2, -1};
    json_object_set_new(roles, "targets", fx_role_json(f, K2, 1));
    json_object_set_new(s, "roles", roles);
    size_t len;
    uint8_t *bytes = fx_sign(f, s, K0, &len);
    json_decref(s);
    if (bytes == NULL)
        return NULL;
    rh_metadata *m = NULL;
    rh_error e;
    rh_error_clear(&e);
    rh_err rc = rh_metadata_parse(bytes, len, RH_MAX_ROOT_BYTES, RH_ROLE_ROOT, SRC, &m, &e);
    free(bytes);
    return rc == RH_OK ? m : NULL;
}

static json_t *snapshot_signed(int version)
{
    json_t *s = fx_signed_base("snapshot", version);
    json_object_set_new(s, "meta", json_pack("{s:{s:i}}", "targets.json", "version", 1));
    return s;
}

static void test_generated_root(void **state)
{
    world *w = *state;
    rh_metadata *root = make_root(&w->f);
    assert_non_null(root);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_root_verify_role(root, RH_ROLE_ROOT, root, &e), RH_OK);
    assert_int_equal(root->u.root.nkeys, 3);
    assert_int_equal(root->nsigs, 1);
    assert_string_equal(root->sigs[0].keyid, w->f.id[0]);
    /* a root signed by its timestamp key only fails its own root role */
    assert_int_equal(rh_root_verify_role(root, RH_ROLE_TIMESTAMP, root, &e), RH_ESIG);
    assert_string_equal(e.msg, "timestamp: 0 of 1 required signatures valid");
    assert_roundtrip(root);
    /* rh_metadata_sign writes canonical JSON: the output is its own canonical form */
    size_t len;
    json_t *s = rh_metadata_to_signed(root);
    uint8_t *bytes = fx_sign(&w->f, s, K0, &len);
    assert_non_null(bytes);
    json_t *v = NULL;
    assert_int_equal(rh_json_parse(bytes, len, len, "sig", &v, &e), RH_OK);
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    assert_int_equal(rh_cjson_encode(v, &b, &e), RH_OK);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, bytes, len);
    /* and carries exactly one signature, 64 bytes in hex */
    json_t *sigs = json_object_get(v, "signatures");
    assert_int_equal(json_array_size(sigs), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(sigs, 0), "sig"))),
                     128);
    rh_buf_cleanup(&b);
    json_decref(v);
    json_decref(s);
    free(bytes);
    rh_metadata_free(root);
}

/* Sign a snapshot with the listed keys, optionally swapping in a different "signed" afterwards,
 * parse it and verify it against root's snapshot role. */
static rh_err verify_with(world *w, const rh_metadata *root, const int *signers, bool tamper,
                          rh_error *e)
{
    json_t *s = snapshot_signed(5);
    size_t len;
    uint8_t *bytes = fx_sign(&w->f, s, signers, &len);
    json_decref(s);
    assert_non_null(bytes);
    if (tamper) {
        json_t *env = json_loadb((const char *)bytes, len, 0, NULL);
        json_object_set_new(json_object_get(env, "signed"), "version", json_integer(6));
        free(bytes);
        bytes = (uint8_t *)json_dumps(env, JSON_COMPACT);
        len = strlen((const char *)bytes);
        json_decref(env);
    }
    rh_metadata *m = NULL;
    rh_error_clear(e);
    assert_int_equal(rh_metadata_parse(bytes, len, RH_MAX_SNAPSHOT_BYTES, RH_ROLE_SNAPSHOT,
                                       "5.snapshot.json", &m, e),
                     RH_OK);
    free(bytes);
    rh_err rc = rh_root_verify_role(root, RH_ROLE_SNAPSHOT, m, e);
    rh_metadata_free(m);
    return rc;
}

static void test_threshold(void **state)
{
    world *w = *state;
    rh_metadata *root = make_root(&w->f);
    assert_non_null(root);
    static const int S0[] = {0, -1}, S00[] = {0, 0, -1}, S01[] = {0, 1, -1},
                     S03[] = {0, 3, -1}, S013[] = {3, 0, 1, -1}, S000[] = {0, 0, 0, -1},
                     S21[] = {2, 1, -1}, SNONE[] = {-1};
    static const struct {
        const int *signers;
        bool tamper;
        rh_err want;
        const char *msg;
    } cases[] = {
        {S0, false, RH_ESIG, "snapshot: 1 of 2 required signatures valid"},
        {S00, false, RH_ESIG, "snapshot: 1 of 2 required signatures valid"}, /* key twice */
        {S000, false, RH_ESIG, "snapshot: 1 of 2 required signatures valid"},
        {S03, false, RH_ESIG, "snapshot: 1 of 2 required signatures valid"}, /* 3: not in root */
        {SNONE, false, RH_ESIG, "snapshot: 0 of 2 required signatures valid"},
        {S01, false, RH_OK, NULL},
        {S21, false, RH_OK, NULL},
        {S013, false, RH_OK, NULL}, /* the unknown key is ignored */
        {S01, true, RH_ESIG, "snapshot: 0 of 2 required signatures valid"}, /* modified signed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_error e;
        rh_err rc = verify_with(w, root, cases[i].signers, cases[i].tamper, &e);
        if (rc != cases[i].want)
            fail_msg("threshold case %zu: got %s (%s)", i, rh_err_name(rc), e.msg);
        if (cases[i].msg != NULL)
            assert_string_equal(e.msg, cases[i].msg);
    }
    rh_metadata_free(root);
}

/* A valid signature filed under another key ID does not count for that ID, and a key ID listed
 * twice in the signatures (one bad, one good) counts once. */
static void test_threshold_mislabelled(void **state)
{
    world *w = *state;
    rh_metadata *root = make_root(&w->f);
    assert_non_null(root);
    json_t *s = snapshot_signed(5);
    size_t len;
    uint8_t *b1 = fx_sign(&w->f, s, K1, &len); /* a real signature by key 1 */
    uint8_t *b0 = fx_sign(&w->f, s, K0, &len); /* a real signature by key 0 */
    json_t *e1 = json_loads((const char *)b1, 0, NULL), *e0 = json_loads((const char *)b0, 0, NULL);
    json_t *sig1 = json_array_get(json_object_get(e1, "signatures"), 0);
    json_t *sig0 = json_array_get(json_object_get(e0, "signatures"), 0);
    /* relabel key 1's signature as key 0's: [key1-sig as id0, key0-sig as id0] */
    json_object_set_new(sig1, "keyid", json_string(w->f.id[0]));
    json_array_append(json_object_get(e1, "signatures"), sig0);
    char *text = json_dumps(e1, JSON_COMPACT);
    rh_metadata *m = NULL;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(parse_str(text, RH_ROLE_SNAPSHOT, &m, &e), RH_OK);
    assert_int_equal(m->nsigs, 2);
    assert_int_equal(rh_root_verify_role(root, RH_ROLE_SNAPSHOT, m, &e), RH_ESIG);
    assert_string_equal(e.msg, "snapshot: 1 of 2 required signatures valid");
    /* with threshold 1 the good one of the two id0 signatures is found */
    rh_rolekeys one = root->u.root.roles[RH_ROLE_SNAPSHOT];
    one.threshold = 1;
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_verify(m, root->u.root.keys, root->u.root.nkeys, &one, "s", &e),
                     RH_OK);
    /* threshold 0 (never produced by parse) is refused, not trivially met */
    one.threshold = 0;
    assert_int_equal(rh_metadata_verify(m, root->u.root.keys, root->u.root.nkeys, &one, "s", &e),
                     RH_ESIG);
    /* keys not supplied: nothing verifies */
    one.threshold = 1;
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_verify(m, NULL, 0, &one, "s", &e), RH_ESIG);
    assert_string_equal(e.msg, "s: 0 of 1 required signatures valid");
    rh_metadata_free(m);
    free(text);
    json_decref(e0);
    json_decref(e1);
    free(b0);
    free(b1);
    json_decref(s);
    rh_metadata_free(root);
}

/* One key filed under two key IDs (the object differs by an extra field, so the IDs differ)
 * must not meet a threshold of 2 alone. */
static void test_threshold_same_key_two_ids(void **state)
{
    world *w = *state;
    json_t *pub = rh_privkey_public_json(w->f.k[0]);
    json_t *pub_x = json_deep_copy(pub);
    json_object_set_new(pub_x, "x-note", json_string("same key"));
    rh_buf cb;
    rh_buf_init(&cb, 4096);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_cjson_encode(pub_x, &cb, &e), RH_OK);
    uint8_t d[RH_SHA256_LEN];
    char idx[RH_KEYID_HEX_LEN + 1];
    assert_int_equal(rh_hash_once(RH_SHA256, cb.data, cb.len, d), RH_OK);
    rh_hex_encode(d, sizeof d, idx);
    rh_buf_cleanup(&cb);
    assert_string_not_equal(idx, w->f.id[0]);

    json_t *s = fx_signed_base("root", 1);
    json_t *keys = json_object();
    json_object_set_new(keys, w->f.id[0], pub);
    json_object_set_new(keys, idx, pub_x);
    json_object_set_new(s, "keys", keys);
    json_t *both = json_pack("{s:[s,s],s:i}", "keyids", w->f.id[0], idx, "threshold", 2);
    json_t *roles = json_pack("{s:O,s:O,s:O,s:O}", "root", both, "timestamp", both, "snapshot",
                              both, "targets", both);
    json_decref(both);
    json_object_set_new(s, "roles", roles);
    size_t len;
    uint8_t *bytes = fx_sign(&w->f, s, K0, &len);
    /* add the same signature again under the second ID */
    json_t *env = json_loadb((const char *)bytes, len, 0, NULL);
    json_t *sig = json_deep_copy(json_array_get(json_object_get(env, "signatures"), 0));
    json_object_set_new(sig, "keyid", json_string(idx));
    json_array_append_new(json_object_get(env, "signatures"), sig);
    char *text = json_dumps(env, JSON_COMPACT);
    rh_metadata *m = NULL;
    assert_int_equal(parse_str(text, RH_ROLE_ROOT, &m, &e), RH_OK);
    assert_int_equal(m->u.root.nkeys, 2);
    assert_int_equal(rh_root_verify_role(m, RH_ROLE_ROOT, m, &e), RH_ESIG);
    assert_string_equal(e.msg, "root: 1 of 2 required signatures valid");
    assert_roundtrip(m); /* the extra key field survives */
    rh_metadata_free(m);
    free(text);
    json_decref(env);
    free(bytes);
    json_decref(s);
}

/* ---- one key under two encodings ------------------------------------------------------------ */

/* Key ID of a key object: sha256 of its canonical JSON, hex. */
static void keyid_of_obj(const json_t *k, char out[RH_KEYID_HEX_LEN + 1])
{
    rh_buf b;
    rh_buf_init(&b, 1u << 20);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_cjson_encode(k, &b, &e), RH_OK);
    uint8_t d[RH_SHA256_LEN];
    assert_int_equal(rh_hash_once(RH_SHA256, b.data, b.len, d), RH_OK);
    rh_hex_encode(d, sizeof d, out);
    rh_buf_cleanup(&b);
}

/* A root whose every role lists exactly ka and kb (threshold 2), each signature made by sign()
 * over the canonical "signed" bytes and filed once under each key ID. Returns the parsed root. */
typedef size_t (*sign_fn)(void *ctx, const uint8_t *msg, size_t n, uint8_t *sig, size_t cap);

static rh_metadata *two_id_root(json_t *ka, json_t *kb, sign_fn sign, void *ctx)
{
    char ida[RH_KEYID_HEX_LEN + 1], idb[RH_KEYID_HEX_LEN + 1];
    keyid_of_obj(ka, ida);
    keyid_of_obj(kb, idb);
    assert_string_not_equal(ida, idb);
    json_t *s = fx_signed_base("root", 1);
    json_object_set_new(s, "keys", json_pack("{s:o,s:o}", ida, ka, idb, kb));
    json_t *both = json_pack("{s:[s,s],s:i}", "keyids", ida, idb, "threshold", 2);
    json_object_set_new(s, "roles", json_pack("{s:O,s:O,s:O,s:O}", "root", both, "timestamp",
                                              both, "snapshot", both, "targets", both));
    json_decref(both);
    rh_buf cb;
    rh_buf_init(&cb, 1u << 20);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_cjson_encode(s, &cb, &e), RH_OK);
    json_t *sigs = json_array();
    const char *ids[2] = {ida, idb};
    for (int i = 0; i < 2; i++) {
        uint8_t sig[512];
        size_t n = sign(ctx, cb.data, cb.len, sig, sizeof sig);
        assert_true(n > 0);
        char hex[2 * sizeof sig + 1];
        rh_hex_encode(sig, n, hex);
        json_array_append_new(sigs, json_pack("{s:s,s:s}", "keyid", ids[i], "sig", hex));
    }
    rh_buf_cleanup(&cb);
    json_t *env = json_pack("{s:o,s:o}", "signatures", sigs, "signed", s);
    char *text = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    rh_metadata *m = NULL;
    assert_int_equal(parse_str(text, RH_ROLE_ROOT, &m, &e), RH_OK);
    free(text);
    assert_int_equal(m->u.root.nkeys, 2);
    return m;
}

static size_t sign_ed(void *ctx, const uint8_t *msg, size_t n, uint8_t *sig, size_t cap)
{
    rh_error e;
    rh_error_clear(&e);
    assert_true(cap >= 64);
    assert_int_equal(rh_privkey_sign(ctx, msg, n, sig, &e), RH_OK);
    return 64;
}

static size_t sign_ec(void *ctx, const uint8_t *msg, size_t n, uint8_t *sig, size_t cap)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, ctx), 1);
    size_t len = cap;
    assert_int_equal(EVP_DigestSign(c, sig, &len, msg, n), 1);
    EVP_MD_CTX_free(c);
    return len;
}

static char *ec_pem(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    assert_true(n > 0);
    char *s = strndup(p, (size_t)n);
    assert_non_null(s);
    BIO_free(b);
    return s;
}

/* TUF 5.4.2 (thresholds count keys): the same public key written two ways gets two key IDs, so
 * the threshold must compare the keys themselves, not their JSON text (go-tuf
 * GHSA-4f8r-qqr9-fq8j): upper-case Ed25519 hex, the "ecdsa" / "ecdsa-sha2-nistp256" keytype
 * aliases, and PEM with text before the armour all decode to one key. */
static void test_threshold_same_key_other_encoding(void **state)
{
    world *w = *state;
    json_t *ka = rh_privkey_public_json(w->f.k[0]);
    char up[2 * 32 + 1];
    snprintf(up, sizeof up, "%s", json_string_value(json_object_get(json_object_get(ka, "keyval"),
                                                                    "public")));
    for (char *p = up; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    json_t *kb = json_pack("{s:s,s:s,s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519",
                           "keyval", "public", up);
    rh_metadata *m = two_id_root(ka, kb, sign_ed, w->f.k[0]);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_root_verify_role(m, RH_ROLE_ROOT, m, &e), RH_ESIG);
    assert_string_equal(e.msg, "root: 1 of 2 required signatures valid");
    rh_metadata_free(m);

    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    char *pem = ec_pem(ec);
    size_t plen = strlen(pem) + 32;
    char *pem2 = malloc(plen);
    assert_non_null(pem2);
    snprintf(pem2, plen, "comment\n%s", pem);
    static const struct {
        const char *type_a, *type_b;
        bool prefixed;
    } ec_cases[] = {
        {"ecdsa", "ecdsa-sha2-nistp256", false}, /* keytype alias */
        {"ecdsa", "ecdsa", true},                 /* other PEM text, same key */
    };
    for (size_t i = 0; i < sizeof ec_cases / sizeof ec_cases[0]; i++) {
        json_t *a = json_pack("{s:s,s:s,s:{s:s}}", "keytype", ec_cases[i].type_a, "scheme",
                              "ecdsa-sha2-nistp256", "keyval", "public", pem);
        json_t *b = json_pack("{s:s,s:s,s:{s:s}}", "keytype", ec_cases[i].type_b, "scheme",
                              "ecdsa-sha2-nistp256", "keyval", "public",
                              ec_cases[i].prefixed ? pem2 : pem);
        m = two_id_root(a, b, sign_ec, ec);
        assert_non_null(m->u.root.keys[0].pkey);
        assert_non_null(m->u.root.keys[1].pkey);
        rh_error_clear(&e);
        rh_err rc = rh_root_verify_role(m, RH_ROLE_ROOT, m, &e);
        if (rc != RH_ESIG)
            fail_msg("ecdsa case %zu: got %s, want RH_ESIG", i, rh_err_name(rc));
        assert_string_equal(e.msg, "root: 1 of 2 required signatures valid");
        rh_metadata_free(m);
    }
    free(pem2);
    free(pem);
    EVP_PKEY_free(ec);
}

/* ---- round-trip with unknown fields everywhere --------------------------------------------- */

static void test_roundtrip_unknown_fields(void **state)
{
    (void)state;
    static const char *const vendor = "{\"x-vendor\": {\"a\": [1, \"\\u00e9\", null, true]}}";
    json_t *xv = json_loads(vendor, 0, NULL);
    assert_non_null(xv);
    json_t *x = json_object_get(xv, "x-vendor");
    struct {
        const char *base;
        rh_role role;
        const char *paths[8];
    } cases[] = {
        {ROOT_LIT, RH_ROLE_ROOT,
         {"signed", "signed>keys>" KID1, "signed>keys>" KID2 ">keyval", "signed>roles>targets",
          "signatures>0", NULL}},
        {TS_LIT, RH_ROLE_TIMESTAMP,
         {"signed", "signed>meta>snapshot.json", "signed>meta>snapshot.json>hashes", NULL}},
        {SNAP_LIT, RH_ROLE_SNAPSHOT,
         {"signed", "signed>meta>targets.json", "signed>meta>role-a.json>hashes", NULL}},
        {TGT_LIT, RH_ROLE_TARGETS,
         {"signed", T_A, T_A ">hashes", "signed>delegations", "signed>delegations>keys>" KID1,
          D_R ">0", D_R ">1", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = json_loads(cases[i].base, 0, NULL);
        for (size_t j = 0; cases[i].paths[j] != NULL; j++) {
            char p[512];
            size_t pl = strlen(cases[i].paths[j]);
            if (pl >= 6 && strcmp(cases[i].paths[j] + pl - 6, "hashes") == 0) {
                /* an unknown hash algorithm: kept, counted, never checked */
                snprintf(p, sizeof p, "%s>blake2b-256", cases[i].paths[j]);
                mutate(doc, p, "\"" H64 "\"");
                continue;
            }
            snprintf(p, sizeof p, "%s>x-vendor", cases[i].paths[j]);
            char *xs = json_dumps(x, JSON_COMPACT);
            mutate(doc, p, xs);
            free(xs);
        }
        /* key objects with extra fields change their key ID: re-file them */
        if (cases[i].role == RH_ROLE_ROOT || cases[i].role == RH_ROLE_TARGETS) {
            json_t *sg = json_object_get(doc, "signed");
            json_t *keys = cases[i].role == RH_ROLE_ROOT
                               ? json_object_get(sg, "keys")
                               : json_object_get(json_object_get(sg, "delegations"), "keys");
            json_t *fixed = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(keys, k, v)
            {
                rh_pubkey pk;
                memset(&pk, 0, sizeof pk);
                rh_error e;
                rh_error_clear(&e);
                assert_int_equal(rh_pubkey_from_json(v, "t", &pk, &e), RH_OK);
                json_object_set(fixed, pk.keyid, v);
                rh_pubkey_cleanup(&pk);
            }
            json_object_update(keys, fixed); /* new IDs in; old ones out below */
            json_object_del(keys, KID1);
            json_object_del(keys, KID2);
            json_decref(fixed);
        }
        char *text = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        rh_metadata *m = NULL;
        rh_error e;
        if (parse_str(text, cases[i].role, &m, &e) != RH_OK)
            fail_msg("roundtrip case %zu: %s", i, e.msg);
        assert_non_null(strstr((const char *)m->canonical, "\"x-vendor\":{\"a\":[1,\"\xc3\xa9\",null,true]}"));
        assert_roundtrip(m);
        /* the unknown field survives in the rebuilt object at top level */
        json_t *s = rh_metadata_to_signed(m);
        assert_true(json_equal(json_object_get(s, "x-vendor"), x));
        json_decref(s);
        rh_metadata_free(m);
        free(text);
    }
    json_decref(xv);
}

/* The origin's flow: parse, change typed fields, rebuild, re-sign, parse again. */
static void test_edit_and_resign(void **state)
{
    world *w = *state;
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(TS_LIT, RH_ROLE_TIMESTAMP, &m, &e), RH_OK);
    m->version = 8;
    m->expires = 1893456000;
    m->u.timestamp.version = 7;
    m->u.timestamp.length = -1;
    m->u.timestamp.has_hashes = false;
    json_t *s = rh_metadata_to_signed(m);
    assert_non_null(s);
    size_t len;
    uint8_t *bytes = fx_sign(&w->f, s, K1, &len);
    assert_non_null(bytes);
    static const char want_prefix[] = "{\"signatures\":[{\"keyid\":\"";
    assert_memory_equal(bytes, want_prefix, sizeof want_prefix - 1);
    const char *signed_part = strstr((const char *)bytes, "\"signed\":");
    assert_non_null(signed_part);
    assert_string_equal(signed_part,
                        "\"signed\":{\"_type\":\"timestamp\",\"expires\":\"2030-01-01T00:00:00Z\","
                        "\"meta\":{\"snapshot.json\":{\"version\":7}},\"spec_version\":\"1.0\","
                        "\"version\":8}}");
    rh_metadata *m2 = NULL;
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_parse(bytes, len, RH_MAX_TIMESTAMP_BYTES, RH_ROLE_TIMESTAMP,
                                       "timestamp.json", &m2, &e),
                     RH_OK);
    assert_int_equal(m2->version, 8);
    assert_int_equal(m2->u.timestamp.version, 7);
    assert_int_equal(m2->u.timestamp.length, -1);
    rh_rolekeys rk = {.keyids = (char *[]){w->f.id[1]}, .nkeyids = 1, .threshold = 1};
    json_t *pubj = rh_privkey_public_json(w->f.k[1]);
    rh_pubkey pk;
    memset(&pk, 0, sizeof pk);
    assert_int_equal(rh_pubkey_from_json(pubj, "t", &pk, &e), RH_OK);
    assert_int_equal(rh_metadata_verify(m2, &pk, 1, &rk, "timestamp", &e), RH_OK);
    rh_pubkey_cleanup(&pk);
    json_decref(pubj);
    rh_metadata_free(m2);
    free(bytes);
    json_decref(s);
    rh_metadata_free(m);

    /* sign refuses a non-object */
    rh_buf b;
    rh_buf_init(&b, 1024);
    rh_buf_append(&b, "keep", 4);
    json_t *arr = json_array();
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_sign(arr, NULL, 0, &b, &e), RH_ETYPE);
    assert_int_equal(b.len, 4); /* out untouched on failure */
    json_t *real = json_pack("{s:f}", "x", 1.5);
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_sign(real, NULL, 0, &b, &e), RH_ETYPE);
    assert_int_equal(b.len, 4);
    json_decref(real);
    json_decref(arr);
    rh_buf_cleanup(&b);
}

/* ---- delegation matching ------------------------------------------------------------------- */

static void test_delegation_paths(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *path;
        bool want;
    } cases[] = {
        {"a/*", "a/b", true},
        {"a/*", "a/b/c", false}, /* '*' never crosses '/' */
        {"a/*", "a/", true},
        {"a/*", "b/a", false},
        {"*", "a", true},
        {"*", "a/b", false},
        {"*", ".hidden", true}, /* no special leading dot */
        {"*/*", "a/b", true},
        {"*/*", "a/b/c", false},
        {"a/*/c", "a/b/c", true},
        {"a/*.zst", "a/x.zst", true},
        {"a/*.zst", "a/x.zst.sig", false},
        {"a/?.txt", "a/1.txt", true},
        {"a/?.txt", "a/12.txt", false},
        {"a?b", "a/b", false}, /* '?' never matches '/' */
        {"a/[ab].txt", "a/b.txt", true},
        {"a/[ab].txt", "a/c.txt", false},
        {"a/[!ab].txt", "a/c.txt", true},
        {"a/[!ab].txt", "a/a.txt", false},
        {"a/[0-9]*", "a/7x", true},
        {"a\\*", "a\\b", true}, /* backslash is literal, as in python's fnmatch */
        {"a\\*", "a*", false},
        {"exact/path.txt", "exact/path.txt", true},
        {"exact/path.txt", "exact/path.txtx", false},
        {"", "", true},
        {"", "a", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = (char *)cases[i].pattern;
        rh_delegated_role r = {.name = "r", .paths = &p, .npaths = 1};
        if (rh_delegation_matches(&r, cases[i].path) != cases[i].want)
            fail_msg("pattern \"%s\" vs \"%s\": want %d", cases[i].pattern, cases[i].path,
                     cases[i].want);
    }
    /* several patterns: any one matching is enough */
    char *multi[] = {"x/*", "y/*"};
    rh_delegated_role r = {.name = "r", .paths = multi, .npaths = 2};
    assert_true(rh_delegation_matches(&r, "y/1"));
    assert_false(rh_delegation_matches(&r, "z/1"));
    assert_false(rh_delegation_matches(NULL, "y/1"));
    assert_false(rh_delegation_matches(&r, NULL));
}

static void test_delegation_prefixes(void **state)
{
    (void)state;
    /* sha256("a/b.txt") = 5550000d3b1cf1ff9d8ad3380f759f84f8abda4b5032ee735bdfef6766d6919f
     * (python hashlib) */
    static const struct {
        const char *prefix;
        bool want;
    } cases[] = {
        {"5", true},
        {"55", true},
        {"5550000d", true},
        {"5550000e", false},
        {"56", false},
        {"5550000D", false}, /* lower-case hex only */
        {"5550000d3b1cf1ff9d8ad3380f759f84f8abda4b5032ee735bdfef6766d6919f", true},
        {"5550000d3b1cf1ff9d8ad3380f759f84f8abda4b5032ee735bdfef6766d6919f0", false},
        {"", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = (char *)cases[i].prefix;
        rh_delegated_role r = {.name = "r", .path_hash_prefixes = &p, .nprefixes = 1};
        if (rh_delegation_matches(&r, "a/b.txt") != cases[i].want)
            fail_msg("prefix \"%s\": want %d", cases[i].prefix, cases[i].want);
    }
    /* the literal's role-b has prefixes 55 and 8f */
    rh_metadata *m = NULL;
    rh_error e;
    assert_int_equal(parse_str(TGT_LIT, RH_ROLE_TARGETS, &m, &e), RH_OK);
    assert_true(rh_delegation_matches(&m->u.targets.roles[1], "a/b.txt"));
    assert_false(rh_delegation_matches(&m->u.targets.roles[1], "a/b.txt.zst"));
    assert_true(rh_delegation_matches(&m->u.targets.roles[0], "a/b.txt.zst"));
    assert_true(rh_delegation_matches(&m->u.targets.roles[0], "b/c.zst"));
    assert_false(rh_delegation_matches(&m->u.targets.roles[0], "b/c.txt"));
    rh_metadata_free(m);
}

/* ---- hashes -------------------------------------------------------------------------------- */

static void test_hashes_check(void **state)
{
    (void)state;
    rh_hashes good256 = {.has_sha256 = true}, good512 = {.has_sha512 = true};
    assert_int_equal(rh_hex_decode(ABC256, good256.sha256, RH_SHA256_LEN), RH_OK);
    assert_int_equal(rh_hex_decode(ABC512, good512.sha512, RH_SHA512_LEN), RH_OK);
    rh_hashes both = good256;
    both.has_sha512 = true;
    memcpy(both.sha512, good512.sha512, RH_SHA512_LEN);
    rh_hashes bad256 = good256;
    bad256.sha256[31] ^= 1;
    rh_hashes bad512_good256 = both;
    bad512_good256.sha512[0] ^= 0x80;
    rh_hashes unknown_only = {.n_unknown = 2};
    const struct {
        const rh_hashes *h;
        const char *data;
        rh_err want;
        const char *msg;
    } cases[] = {
        {&good256, "abc", RH_OK, NULL},
        {&good512, "abc", RH_OK, NULL},
        {&both, "abc", RH_OK, NULL},
        {&good256, "abd", RH_EHASH, "t.bin: sha256 mismatch (got"},
        {&good256, "", RH_EHASH, "t.bin: sha256 mismatch (got e3b0c44298fc1c14...)"},
        {&bad256, "abc", RH_EHASH, "t.bin: sha256 mismatch"},
        {&bad512_good256, "abc", RH_EHASH, "t.bin: sha512 mismatch"},
        {&unknown_only, "abc", RH_EHASH, "t.bin: no sha256 or sha512 listed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_hashes_check(cases[i].h, (const uint8_t *)cases[i].data,
                                    strlen(cases[i].data), "t.bin", &e);
        if (rc != cases[i].want)
            fail_msg("hash case %zu: got %s", i, rh_err_name(rc));
        if (cases[i].msg != NULL && strstr(e.msg, cases[i].msg) == NULL)
            fail_msg("hash case %zu: message %s", i, e.msg);
    }
}

/* ---- time ---------------------------------------------------------------------------------- */

static void test_time(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t t;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2000-02-29T12:34:56Z", 951827696},
        {"2030-01-01T00:00:00Z", 1893456000},
        {"9999-12-31T23:59:59Z", 253402300799LL},
        {"0000-01-01T00:00:00Z", -62167219200LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t t = 42;
        assert_int_equal(rh_time_parse(good[i].s, &t), RH_OK);
        assert_int_equal(t, good[i].t);
        char out[21];
        rh_time_format(t, out);
        assert_string_equal(out, good[i].s);
    }
    static const char *const bad[] = {
        "2001-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-01-01T00:00:60Z",
        "2000-01-01T00:60:00Z", "2000-00-01T00:00:00Z", "2000-01-00T00:00:00Z",
        "2000-04-31T00:00:00Z", "2000-01-01T00:00:00z", "2000-01-01T00:00:00",
        "2000-01-01T00:00:00ZZ", " 2000-01-01T00:00:00Z", "+200-01-01T00:00:00Z",
        "2000-1-01T00:00:00Z", "2000-01-01T00:00:00.5Z", "", "20000-01-01T00:00:00Z",
        "2000-01-01T0-:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 42;
        if (rh_time_parse(bad[i], &t) != RH_EPARSE)
            fail_msg("accepted bad time \"%s\"", bad[i]);
        assert_int_equal(t, 42);
    }
    assert_int_equal(rh_time_parse(NULL, NULL), RH_EINVAL);
    char out[21];
    rh_time_format(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    rh_time_format(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
}

static void test_role_names(void **state)
{
    (void)state;
    assert_string_equal(rh_role_name(RH_ROLE_ROOT), "root");
    assert_string_equal(rh_role_name(RH_ROLE_TIMESTAMP), "timestamp");
    assert_string_equal(rh_role_name(RH_ROLE_SNAPSHOT), "snapshot");
    assert_string_equal(rh_role_name(RH_ROLE_TARGETS), "targets");
    assert_string_equal(rh_role_name((rh_role)RH_ROLE_COUNT), "unknown");
    rh_metadata_free(NULL);
    assert_null(rh_metadata_to_signed(NULL));
}

/* ---- lean parse ------------------------------------------------------------------------- */

/* jansson's bytes in use and their peak, through json_set_alloc_funcs (each block carries its
 * size in front of it). */
static size_t j_now, j_peak;

static void *j_malloc(size_t n)
{
    size_t *p = malloc(n + sizeof(max_align_t));
    if (p == NULL)
        return NULL;
    *p = n;
    j_now += n;
    if (j_now > j_peak)
        j_peak = j_now;
    return (char *)p + sizeof(max_align_t);
}

static void j_free(void *q)
{
    if (q == NULL)
        return;
    size_t *p = (size_t *)(void *)((char *)q - sizeof(max_align_t));
    j_now -= *p;
    free(p);
}

/* A signed targets document of n entries, in a shuffled order, with custom fields, an unknown
 * member sorting before "targets" and one after, and a path that needs escaping. */
static char *big_targets(size_t n)
{
    json_t *tg = json_object();
    for (size_t i = 0; i < n; i++) {
        size_t k = (i * 7919) % n; /* n prime to 7919: a permutation */
        char path[64];
        snprintf(path, sizeof path, k == 3 ? "dir/q\"uote\\%zu.bin" : "dir/f%06zu.bin", k);
        json_object_set_new(tg, path,
                            json_pack("{s:I,s:{s:s},s:{s:{s:I,s:s}}}", "length", (json_int_t)k,
                                      "hashes", "sha256", ABC256, "custom", "rhine", "length",
                                      (json_int_t)(2 * k), "sha256", ABC256));
    }
    json_t *doc = json_pack("{s:[{s:s,s:s}],s:{s:s,s:s,s:s,s:i,s:o,s:{},s:[i]}}", "signatures",
                            "keyid", KID1, "sig", H128, "signed", "_type", "targets",
                            "spec_version", "1.0.31", "expires", "2030-01-01T00:00:00Z",
                            "version", 9, "targets", tg, "aaa", "zzz", 1);
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return text;
}

static void test_lean_targets(void **state)
{
    (void)state;
    enum { N = 4001 };
    char *text = big_targets(N);
    assert_non_null(text);
    size_t len = strlen(text);
    rh_metadata *full = NULL, *lean = NULL;
    rh_error e;
    size_t full_peak, lean_peak;

    json_set_alloc_funcs(j_malloc, j_free);
    j_now = j_peak = 0;
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_parse((const uint8_t *)text, len, RH_MAX_JSON_BYTES,
                                       RH_ROLE_TARGETS, SRC, &full, &e), RH_OK);
    full_peak = j_peak;
    j_now = j_peak = 0;
    assert_int_equal(rh_metadata_parse_lean((const uint8_t *)text, len, RH_MAX_JSON_BYTES,
                                            RH_ROLE_TARGETS, SRC, &lean, &e), RH_OK);
    lean_peak = j_peak;
    /* One entry's tree at a time, not the document's: over a hundred times less. */
    assert_true(lean_peak * 100 < full_peak);

    assert_true(lean->lean);
    assert_false(full->lean);
    assert_int_equal(lean->version, 9);
    assert_int_equal(lean->expires, full->expires);
    assert_int_equal(lean->nsigs, 1);
    assert_string_equal(lean->sigs[0].keyid, KID1);
    assert_int_equal(lean->u.targets.ntargets, N);
    for (size_t i = 0; i < N; i++) { /* document order, as the full parse keeps them */
        const rh_target *a = &lean->u.targets.targets[i], *b = &full->u.targets.targets[i];
        assert_string_equal(a->path, b->path);
        assert_int_equal(a->length, b->length);
        assert_memory_equal(a->hashes.sha256, b->hashes.sha256, RH_SHA256_LEN);
        assert_null(a->custom);
        assert_non_null(b->custom);
    }
    /* The signed bytes: the same canonical form, entries sorted although they came shuffled. */
    assert_int_equal(lean->canonical_len, full->canonical_len);
    assert_memory_equal(lean->canonical, full->canonical, full->canonical_len);
    assert_non_null(strstr((const char *)lean->canonical, "\"dir/q\\\"uote\\\\3.bin\""));
    assert_non_null(rh_targets_find(lean, "dir/f000000.bin"));
    assert_null(rh_metadata_to_signed(lean));
    rh_metadata_free(lean);
    rh_metadata_free(full);
    lean = full = NULL;
    json_set_alloc_funcs(malloc, free);

    /* Not its stride: the full parse's verdict and message, whatever the lean one saw first. */
    static const struct {
        const char *what, *from, *to;
    } bad[] = {
        {"a duplicate path", "\"dir/f000002.bin\"", "\"dir/f000001.bin\""},
        {"no closing brace", "\n}", "\n "},
        {"trailing bytes", "\n}", "\n}]"},
        {"a real number", "\"version\": 9", "\"version\": 9.5"},
        {"a second targets", "\"aaa\"", "\"targets\""},
        {"a wrong type", "\"_type\": \"targets\"", "\"_type\": \"snapshot\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *at = strstr(text, bad[i].from);
        if (strcmp(bad[i].from, "\n}") == 0)
            at = strrchr(text, '}') - 1; /* the envelope's last brace */
        assert_non_null(at);
        size_t fl = strlen(bad[i].from), tl = strlen(bad[i].to);
        char *t = malloc(len - fl + tl + 1);
        assert_non_null(t);
        memcpy(t, text, (size_t)(at - text));
        memcpy(t + (at - text), bad[i].to, tl);
        memcpy(t + (at - text) + tl, at + fl, strlen(at + fl) + 1);
        rh_error fe, le;
        rh_error_clear(&fe);
        rh_error_clear(&le);
        rh_err frc = rh_metadata_parse((const uint8_t *)t, strlen(t), RH_MAX_JSON_BYTES,
                                       RH_ROLE_TARGETS, SRC, &full, &fe);
        rh_err lrc = rh_metadata_parse_lean((const uint8_t *)t, strlen(t), RH_MAX_JSON_BYTES,
                                            RH_ROLE_TARGETS, SRC, &lean, &le);
        if (frc == RH_OK || lrc != frc || strcmp(fe.msg, le.msg) != 0)
            print_message("%s: full %s \"%s\", lean %s \"%s\"\n", bad[i].what,
                          rh_err_name(frc), fe.msg, rh_err_name(lrc), le.msg);
        assert_int_not_equal(frc, RH_OK);
        assert_int_equal(lrc, frc);
        assert_string_equal(le.msg, fe.msg);
        assert_null(lean);
        free(t);
    }
    /* Other roles go to the full parse. */
    rh_error_clear(&e);
    assert_int_equal(rh_metadata_parse_lean((const uint8_t *)TS_LIT, strlen(TS_LIT),
                                            RH_MAX_JSON_BYTES, RH_ROLE_TIMESTAMP, SRC, &lean, &e),
                     RH_OK);
    assert_false(lean->lean);
    rh_metadata_free(lean);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_root),
        cmocka_unit_test(test_literal_timestamp_snapshot),
        cmocka_unit_test(test_literal_targets),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_rejections_raw),
        cmocka_unit_test(test_optional_fields),
        cmocka_unit_test_setup_teardown(test_generated_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_mislabelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_same_key_two_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_same_key_other_encoding, setup, teardown),
        cmocka_unit_test(test_roundtrip_unknown_fields),
        cmocka_unit_test_setup_teardown(test_edit_and_resign, setup, teardown),
        cmocka_unit_test(test_delegation_paths),
        cmocka_unit_test(test_delegation_prefixes),
        cmocka_unit_test(test_hashes_check),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_lean_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
