/* md_fixture.h -- test helpers that build and sign TUF metadata with real Ed25519 keys. */
#ifndef RH_MD_FIXTURE_H
#define RH_MD_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest/json.h"
#include "manifest/keys.h"
#include "manifest/limits.h"
#include "manifest/metadata.h"

#define FX_NKEYS 4

typedef struct fx_keys {
    rh_privkey *k[FX_NKEYS];
    char id[FX_NKEYS][RH_KEYID_HEX_LEN + 1];
} fx_keys;

/* Generate FX_NKEYS Ed25519 keys; 0 on success. */
static inline int fx_keys_init(fx_keys *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < FX_NKEYS; i++) {
        rh_error e;
        rh_error_clear(&e);
        if (rh_privkey_generate(&f->k[i], &e) != RH_OK || rh_privkey_keyid(f->k[i], f->id[i]))
            return -1;
    }
    return 0;
}

static inline void fx_keys_cleanup(fx_keys *f)
{
    for (int i = 0; i < FX_NKEYS; i++)
        rh_privkey_free(f->k[i]);
    memset(f, 0, sizeof *f);
}

/* {"<keyid>": key, ...} for the keys whose indices are listed (terminated by -1). */
static inline json_t *fx_keys_json(const fx_keys *f, const int *idx)
{
    json_t *o = json_object();
    for (; *idx >= 0; idx++)
        json_object_set_new(o, f->id[*idx], rh_privkey_public_json(f->k[*idx]));
    return o;
}

/* {"keyids": [ids of idx...], "threshold": t} */
static inline json_t *fx_role_json(const fx_keys *f, const int *idx, int threshold)
{
    json_t *ids = json_array();
    for (; *idx >= 0; idx++)
        json_array_append_new(ids, json_string(f->id[*idx]));
    return json_pack("{s:o,s:i}", "keyids", ids, "threshold", threshold);
}

/* Common fields of a "signed" object. */
static inline json_t *fx_signed_base(const char *type, int version)
{
    return json_pack("{s:s,s:s,s:i,s:s}", "_type", type, "spec_version", "1.0.31", "version",
                     version, "expires", "2030-01-01T00:00:00Z");
}

/* Sign signed_obj with the listed keys (indices, -1 terminated) via rh_metadata_sign.
 * Returns malloc'd bytes (NUL-terminated) and their length, or NULL. */
static inline uint8_t *fx_sign(const fx_keys *f, const json_t *signed_obj, const int *idx,
                               size_t *len)
{
    rh_privkey *ks[16];
    size_t n = 0;
    for (; *idx >= 0 && n < 16; idx++)
        ks[n++] = f->k[*idx];
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    rh_error e;
    rh_error_clear(&e);
    if (rh_metadata_sign(signed_obj, ks, n, &b, &e) != RH_OK) {
        rh_buf_cleanup(&b);
        return NULL;
    }
    return rh_buf_take(&b, len);
}

#endif
