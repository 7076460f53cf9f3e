/* note.c -- C2SP signed-note, tlog-checkpoint and tlog-cosignature/v1 (Ed25519 through EVP). */
#include "manifest/note.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/hash.h"

#define EM_DASH "\xe2\x80\x94" /* U+2014 */
#define SIG_PREFIX EM_DASH " "
#define SIG_PREFIX_LEN 4
#define COSIG_HEADER "cosignature/v1\n"
#define RH_INT63_MAX 0x7fffffffffffffffULL /* tlog-cosignature: timestamp <= 2^63 - 1 */

/* ---- base64 ------------------------------------------------------------------------------ */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t rh_base64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void rh_base64_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

rh_err rh_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    if (s == NULL || outlen == NULL || (out == NULL && cap > 0))
        return RH_EINVAL;
    if (len % 4 != 0)
        return RH_EPARSE;
    size_t pad = 0;
    if (len > 0 && s[len - 1] == '=')
        pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    if (n > cap)
        return RH_ETOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (int j = 0; j < 4; j++) {
            bool is_pad = last && (size_t)j >= 4 - pad;
            v[j] = is_pad ? 0 : b64val(s[i + (size_t)j]);
            if (v[j] < 0)
                return RH_EPARSE; /* includes '=' anywhere but at the end */
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if (last && pad == 2 && (w & 0xffff) != 0)
            return RH_EPARSE; /* spare bits set: not the canonical spelling */
        if (last && pad == 1 && (w & 0xff) != 0)
            return RH_EPARSE;
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        size_t take = last ? 3 - pad : 3;
        memcpy(out + o, b, take);
        o += take;
    }
    *outlen = o;
    return RH_OK;
}

/* ---- UTF-8 and names --------------------------------------------------------------------- */

/* Decodes one UTF-8 code point strictly (no overlongs, surrogates, > U+10FFFF); returns its
 * length in bytes, 0 when invalid. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Unicode White_Space code points (Go unicode.IsSpace). */
static bool is_unicode_space(uint32_t cp)
{
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* signed-note: key names are non-empty, with no Unicode spaces and no '+'. */
static bool name_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > RH_NOTE_MAX_NAME)
        return false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == '+' || is_unicode_space(cp))
            return false;
        i += l;
    }
    return true;
}

/* ---- keys -------------------------------------------------------------------------------- */

rh_err rh_note_key_id(const char *name, uint8_t type, const uint8_t *pub, size_t publen,
                      uint32_t *out)
{
    if (name == NULL || pub == NULL || out == NULL)
        return RH_EINVAL;
    rh_hash *h = rh_hash_new(RH_SHA256);
    if (h == NULL)
        return RH_ENOMEM;
    uint8_t d[RH_SHA256_LEN];
    static const uint8_t nl = 0x0a;
    rh_err rc;
    if ((rc = rh_hash_update(h, name, strlen(name))) == RH_OK &&
        (rc = rh_hash_update(h, &nl, 1)) == RH_OK && (rc = rh_hash_update(h, &type, 1)) == RH_OK &&
        (rc = rh_hash_update(h, pub, publen)) == RH_OK && (rc = rh_hash_final(h, d)) == RH_OK)
        *out = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    rh_hash_free(h);
    return rc;
}

rh_err rh_note_key_init(rh_note_key *k, const char *name, uint8_t type,
                        const uint8_t pub[RH_NOTE_ED25519_PUB_LEN], rh_error *e)
{
    if (k == NULL || name == NULL || pub == NULL)
        return rh_fail(e, RH_EINVAL, "note key: missing argument");
    if (!name_ok((const uint8_t *)name, strlen(name)))
        return rh_fail(e, RH_EPARSE,
                       "note key \"%.64s\": a key name is 1..%d bytes of UTF-8 without spaces "
                       "or '+'",
                       name, RH_NOTE_MAX_NAME);
    if (type != RH_NOTE_TYPE_ED25519 && type != RH_NOTE_TYPE_COSIG_V1)
        return rh_fail(e, RH_EINVAL, "note key %s: signature type 0x%02x not supported", name,
                       type);
    rh_note_key tmp;
    memset(&tmp, 0, sizeof tmp);
    memcpy(tmp.name, name, strlen(name) + 1);
    tmp.type = type;
    memcpy(tmp.pub, pub, RH_NOTE_ED25519_PUB_LEN);
    rh_err rc = rh_note_key_id(name, type, pub, RH_NOTE_ED25519_PUB_LEN, &tmp.id);
    if (rc != RH_OK)
        return rh_fail(e, rc, "note key %s: hashing failed", name);
    *k = tmp;
    return RH_OK;
}

rh_err rh_note_vkey_parse(const char *vkey, rh_note_key *out, rh_error *e)
{
    if (vkey == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "vkey: missing argument");
    const char *p1 = strchr(vkey, '+');
    const char *p2 = p1 == NULL ? NULL : strchr(p1 + 1, '+');
    if (p2 == NULL || (size_t)(p1 - vkey) > RH_NOTE_MAX_NAME)
        return rh_fail(e, RH_EPARSE, "vkey \"%.80s\": expected <name>+<key id>+<key>", vkey);
    char name[RH_NOTE_MAX_NAME + 1];
    memcpy(name, vkey, (size_t)(p1 - vkey));
    name[p1 - vkey] = '\0';
    uint8_t idb[4];
    char idhex[9];
    if (p2 - p1 - 1 != 8)
        return rh_fail(e, RH_EPARSE, "vkey %s: key ID is not 8 hex digits", name);
    memcpy(idhex, p1 + 1, 8);
    idhex[8] = '\0';
    for (int i = 0; i < 8; i++)
        if (idhex[i] >= 'A' && idhex[i] <= 'F')
            return rh_fail(e, RH_EPARSE, "vkey %s: key ID must be lower-case hex", name);
    if (rh_hex_decode(idhex, idb, 4) != RH_OK)
        return rh_fail(e, RH_EPARSE, "vkey %s: key ID is not 8 hex digits", name);
    uint8_t raw[1 + RH_NOTE_ED25519_PUB_LEN];
    size_t rawlen = 0;
    const char *b64 = p2 + 1;
    if (rh_base64_decode(b64, strlen(b64), raw, sizeof raw, &rawlen) != RH_OK ||
        rawlen != sizeof raw)
        return rh_fail(e, RH_EPARSE, "vkey %s: key is not base64 of a type byte and 32 bytes",
                       name);
    rh_note_key k;
    rh_err rc = rh_note_key_init(&k, name, raw[0], raw + 1, e);
    if (rc == RH_EINVAL)
        return rh_fail(e, RH_EPARSE, "vkey %s: unsupported type", name);
    if (rc != RH_OK)
        return rc;
    uint32_t id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 | (uint32_t)idb[2] << 8 | idb[3];
    if (id != k.id)
        return rh_fail(e, RH_EPARSE, "vkey %s: key ID %08" PRIx32 " does not match the key (%08" PRIx32 ")",
                       name, id, k.id);
    *out = k;
    return RH_OK;
}

rh_err rh_note_vkey_format(const rh_note_key *k, rh_buf *out)
{
    if (k == NULL || out == NULL)
        return RH_EINVAL;
    uint8_t raw[1 + RH_NOTE_ED25519_PUB_LEN];
    raw[0] = k->type;
    memcpy(raw + 1, k->pub, RH_NOTE_ED25519_PUB_LEN);
    char b64[64];
    rh_base64_encode(raw, sizeof raw, b64);
    return rh_buf_appendf(out, "%s+%08" PRIx32 "+%s", k->name, k->id, b64);
}

rh_err rh_note_key_from_privkey(const rh_privkey *sk, const char *name, uint8_t type,
                                rh_note_key *out, rh_error *e)
{
    json_t *pub = rh_privkey_public_json(sk);
    if (pub == NULL)
        return rh_fail(e, RH_EINVAL, "note key %s: no private key", name != NULL ? name : "");
    const char *hex = json_string_value(json_object_get(json_object_get(pub, "keyval"), "public"));
    uint8_t raw[RH_NOTE_ED25519_PUB_LEN];
    rh_err rc = hex == NULL ? RH_ECRYPTO : rh_hex_decode(hex, raw, sizeof raw);
    json_decref(pub);
    if (rc != RH_OK)
        return rh_fail(e, RH_ECRYPTO, "note key %s: cannot read the public key",
                       name != NULL ? name : "");
    return rh_note_key_init(out, name, type, raw, e);
}

/* ---- notes ------------------------------------------------------------------------------- */

void rh_note_free(rh_note *n)
{
    if (n == NULL)
        return;
    free(n->mem);
    free(n);
}

rh_err rh_note_parse(const uint8_t *data, size_t len, const char *src, rh_note **out, rh_error *e)
{
    if (src == NULL)
        src = "(note)";
    if (data == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "%s: no note", src);
    if (len > RH_NOTE_MAX_BYTES)
        return rh_fail(e, RH_ETOOBIG, "%s: note of %zu bytes, more than %u", src, len,
                       RH_NOTE_MAX_BYTES);
    /* signed-note "Format": valid UTF-8, no control characters other than newline. */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_next(data + i, len - i, &cp);
        if (l == 0)
            return rh_fail(e, RH_EPARSE, "%s: byte %zu: invalid UTF-8", src, i);
        if (cp < 0x20 && cp != '\n')
            return rh_fail(e, RH_EPARSE, "%s: byte %zu: control character 0x%02x", src, i,
                           (unsigned)cp);
        i += l;
    }
    if (len == 0 || data[len - 1] != '\n')
        return rh_fail(e, RH_EPARSE, "%s: a note ends with a newline", src);
    /* The text ends at the last blank line ("\n\n"). */
    size_t split = 0;
    bool found = false;
    for (size_t i = len - 1; i-- > 0;)
        if (data[i] == '\n' && data[i + 1] == '\n') {
            split = i;
            found = true;
            break;
        }
    if (!found)
        return rh_fail(e, RH_EPARSE, "%s: no blank line before the signatures", src);

    rh_note *n = calloc(1, sizeof *n);
    if (n == NULL)
        return rh_fail(e, RH_ENOMEM, "out of memory");
    rh_err rc = RH_OK;
    n->mem = malloc(len + 1);
    if (n->mem == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "out of memory");
        goto out;
    }
    /* mem: text || NUL, then names (NUL-terminated) and decoded signatures in the space of the
     * signature lines, which always shrink when decoded. */
    size_t textlen = split + 1;
    memcpy(n->mem, data, textlen);
    n->mem[textlen] = '\0';
    n->text = n->mem;
    n->textlen = textlen;
    size_t w = textlen + 1;
    const uint8_t *p = data + split + 2, *end = data + len;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t linelen = (size_t)(nl - p);
        if (n->nsigs == RH_NOTE_MAX_SIGS) {
            rc = rh_fail(e, RH_ETOOBIG, "%s: more than %d signatures", src, RH_NOTE_MAX_SIGS);
            goto out;
        }
        if (linelen < SIG_PREFIX_LEN || memcmp(p, SIG_PREFIX, SIG_PREFIX_LEN) != 0) {
            rc = rh_fail(e, RH_EPARSE, "%s: signature line %zu does not start with \"— \"", src,
                         n->nsigs + 1);
            goto out;
        }
        const uint8_t *name = p + SIG_PREFIX_LEN;
        const uint8_t *sp = memchr(name, ' ', (size_t)(nl - name));
        if (sp == NULL || !name_ok(name, (size_t)(sp - name))) {
            rc = rh_fail(e, RH_EPARSE, "%s: signature line %zu: bad key name", src, n->nsigs + 1);
            goto out;
        }
        size_t namelen = (size_t)(sp - name);
        const char *b64 = (const char *)sp + 1;
        size_t b64len = (size_t)(nl - (const uint8_t *)b64);
        /* Decoded bytes need at most 3/4 of b64len; name + NUL + sig fits in the line. */
        char *nm = (char *)n->mem + w;
        memcpy(nm, name, namelen);
        nm[namelen] = '\0';
        w += namelen + 1;
        size_t dlen = 0;
        if (rh_base64_decode(b64, b64len, n->mem + w, len + 1 - w, &dlen) != RH_OK ||
            dlen < 5) {
            rc = rh_fail(e, RH_EPARSE, "%s: signature line %zu (%s): bad base64 signature", src,
                         n->nsigs + 1, nm);
            goto out;
        }
        rh_note_sig *s = &n->sigs[n->nsigs++];
        s->name = nm;
        const uint8_t *d = n->mem + w;
        s->id = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        s->sig = d + 4;
        s->siglen = dlen - 4;
        w += dlen;
        p = nl + 1;
    }
    if (n->nsigs == 0) {
        rc = rh_fail(e, RH_EPARSE, "%s: no signature lines", src);
        goto out;
    }
    *out = n;
    n = NULL;
out:
    rh_note_free(n);
    return rc;
}

static bool ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len,
                           const uint8_t *sig, size_t siglen)
{
    if (siglen != RH_NOTE_ED25519_SIG_LEN)
        return false;
    bool ok = false;
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    static const uint8_t empty[1] = {0};
    if (pk != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
        ok = EVP_DigestVerify(ctx, sig, siglen, len > 0 ? msg : empty, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return ok;
}

rh_err rh_note_cosig_message(const uint8_t *text, size_t len, uint64_t ts, rh_buf *out)
{
    if (text == NULL || out == NULL)
        return RH_EINVAL;
    rh_err rc = rh_buf_appendf(out, COSIG_HEADER "time %" PRIu64 "\n", ts);
    return rc != RH_OK ? rc : rh_buf_append(out, text, len);
}

/* Checks one signature by key k; returns true when it verifies, and the timestamp. */
static bool check_sig(const rh_note *n, const rh_note_key *k, const rh_note_sig *s, uint64_t *ts,
                      rh_err *fatal)
{
    *ts = 0;
    if (k->type == RH_NOTE_TYPE_ED25519)
        return ed25519_verify(k->pub, n->text, n->textlen, s->sig, s->siglen);
    if (s->siglen != RH_NOTE_COSIG_SIG_LEN)
        return false;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | s->sig[i];
    if (t > RH_INT63_MAX) /* tlog-cosignature: MUST NOT exceed 2^63 - 1 */
        return false;
    rh_buf m;
    rh_buf_init(&m, RH_NOTE_MAX_BYTES + 64);
    rh_err rc = rh_note_cosig_message(n->text, n->textlen, t, &m);
    bool ok = rc == RH_OK && ed25519_verify(k->pub, m.data, m.len, s->sig + 8, s->siglen - 8);
    rh_buf_cleanup(&m);
    if (rc != RH_OK)
        *fatal = rc;
    *ts = t;
    return ok;
}

rh_err rh_note_verify(const rh_note *n, const rh_note_key *keys, size_t nkeys,
                      rh_note_result *results, const char *src, rh_error *e)
{
    if (src == NULL)
        src = "(note)";
    if (n == NULL || (keys == NULL && nkeys > 0))
        return rh_fail(e, RH_EINVAL, "%s: no note or keys", src);
    rh_note_result *res = calloc(nkeys > 0 ? nkeys : 1, sizeof *res);
    if (res == NULL)
        return rh_fail(e, RH_ENOMEM, "out of memory");
    rh_err rc = RH_OK;
    size_t verified = 0;
    for (size_t i = 0; i < n->nsigs; i++) {
        const rh_note_sig *s = &n->sigs[i];
        for (size_t j = 0; j < nkeys; j++) {
            /* signed-note: only a line matching both name and key ID is this key's. */
            if (keys[j].id != s->id || strcmp(keys[j].name, s->name) != 0)
                continue;
            if (res[j].ok)
                break; /* a second line for a key that already verified (Go note: skipped) */
            uint64_t ts;
            rh_err fatal = RH_OK;
            if (!check_sig(n, &keys[j], s, &ts, &fatal)) {
                if (fatal != RH_OK)
                    rc = rh_fail(e, fatal, "%s: cannot build the cosigned message", src);
                else
                    /* signed-note: a failed signature from a known key rejects the note. */
                    rc = rh_fail(e, RH_ESIG, "%s: signature by %s+%08" PRIx32 " does not verify",
                                 src, s->name, s->id);
                goto out;
            }
            res[j].ok = true;
            res[j].timestamp = ts;
            verified++;
            break;
        }
    }
    if (verified == 0) {
        rc = rh_fail(e, RH_ESIG, "%s: no signature by a known key", src);
        goto out;
    }
    for (size_t j = 0; j < nkeys; j++)
        if (keys[j].required && !res[j].ok) {
            rc = rh_fail(e, RH_ESIG, "%s: not signed by %s+%08" PRIx32, src, keys[j].name,
                         keys[j].id);
            goto out;
        }
    if (results != NULL)
        memcpy(results, res, nkeys * sizeof *res);
out:
    free(res);
    return rc;
}

rh_err rh_note_sigline(const rh_note_key *k, const uint8_t *sig, size_t siglen, rh_buf *out)
{
    if (k == NULL || sig == NULL || out == NULL || siglen > RH_NOTE_MAX_BYTES)
        return RH_EINVAL;
    uint8_t *raw = malloc(4 + siglen);
    char *b64 = malloc(rh_base64_len(4 + siglen) + 1);
    rh_err rc = RH_ENOMEM;
    if (raw != NULL && b64 != NULL) {
        raw[0] = (uint8_t)(k->id >> 24);
        raw[1] = (uint8_t)(k->id >> 16);
        raw[2] = (uint8_t)(k->id >> 8);
        raw[3] = (uint8_t)k->id;
        memcpy(raw + 4, sig, siglen);
        rh_base64_encode(raw, 4 + siglen, b64);
        rc = rh_buf_appendf(out, SIG_PREFIX "%s %s\n", k->name, b64);
    }
    free(raw);
    free(b64);
    return rc;
}

static rh_err sign_common(const uint8_t *text, size_t len, const char *name, const rh_privkey *sk,
                          uint8_t type, uint64_t ts, rh_buf *out, rh_error *e)
{
    if (text == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "note sign: missing argument");
    if (len == 0 || text[len - 1] != '\n')
        return rh_fail(e, RH_EINVAL, "note sign: the text must end with a newline");
    if (type == RH_NOTE_TYPE_COSIG_V1 && ts > RH_INT63_MAX)
        return rh_fail(e, RH_EINVAL, "note cosign: timestamp above 2^63 - 1");
    rh_note_key k;
    rh_err rc = rh_note_key_from_privkey(sk, name, type, &k, e);
    if (rc != RH_OK)
        return rc;
    uint8_t sig[RH_NOTE_COSIG_SIG_LEN];
    size_t siglen;
    if (type == RH_NOTE_TYPE_ED25519) {
        rc = rh_privkey_sign(sk, text, len, sig, e);
        siglen = RH_NOTE_ED25519_SIG_LEN;
    } else {
        rh_buf m;
        rh_buf_init(&m, RH_NOTE_MAX_BYTES + 64);
        rc = rh_note_cosig_message(text, len, ts, &m);
        if (rc == RH_OK)
            rc = rh_privkey_sign(sk, m.data, m.len, sig + 8, e);
        else
            rh_fail(e, rc, "note cosign: cannot build the message");
        rh_buf_cleanup(&m);
        for (int i = 0; i < 8; i++)
            sig[i] = (uint8_t)(ts >> (56 - 8 * i));
        siglen = RH_NOTE_COSIG_SIG_LEN;
    }
    if (rc != RH_OK)
        return rc;
    rc = rh_note_sigline(&k, sig, siglen, out);
    if (rc != RH_OK)
        return rh_fail(e, rc, "note sign: cannot append the signature line");
    return RH_OK;
}

rh_err rh_note_sign(const uint8_t *text, size_t len, const char *name, const rh_privkey *sk,
                    rh_buf *out, rh_error *e)
{
    return sign_common(text, len, name, sk, RH_NOTE_TYPE_ED25519, 0, out, e);
}

rh_err rh_note_cosign(const uint8_t *text, size_t len, const char *name, const rh_privkey *sk,
                      uint64_t ts, rh_buf *out, rh_error *e)
{
    return sign_common(text, len, name, sk, RH_NOTE_TYPE_COSIG_V1, ts, out, e);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

void rh_checkpoint_cleanup(rh_checkpoint *c)
{
    if (c == NULL)
        return;
    free(c->extensions);
    memset(c, 0, sizeof *c);
}

rh_err rh_checkpoint_parse(const uint8_t *text, size_t len, const char *src, rh_checkpoint *out,
                           rh_error *e)
{
    if (src == NULL)
        src = "(checkpoint)";
    if (text == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "%s: no checkpoint", src);
    if (len == 0 || text[len - 1] != '\n')
        return rh_fail(e, RH_EPARSE, "%s: checkpoint text must end with a newline", src);
    const uint8_t *line[3];
    size_t linelen[3];
    const uint8_t *p = text, *end = text + len;
    for (int i = 0; i < 3; i++) {
        if (p >= end)
            return rh_fail(e, RH_EPARSE, "%s: checkpoint has %d lines, needs origin, size, root",
                           src, i);
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        line[i] = p;
        linelen[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    rh_checkpoint c;
    memset(&c, 0, sizeof c);
    /* tlog-checkpoint 1: the origin is non-empty. */
    if (linelen[0] == 0 || linelen[0] > RH_CHECKPOINT_MAX_ORIGIN)
        return rh_fail(e, RH_EPARSE, "%s: origin line must be 1..%d bytes", src,
                       RH_CHECKPOINT_MAX_ORIGIN);
    memcpy(c.origin, line[0], linelen[0]);
    /* tlog-checkpoint 2: decimal tree size, no leading zeroes unless "0". */
    if (linelen[1] == 0 || (line[1][0] == '0' && linelen[1] > 1))
        return rh_fail(e, RH_EPARSE, "%s: tree size line \"%.*s\" is not a canonical decimal", src,
                       (int)(linelen[1] > 24 ? 24 : linelen[1]), (const char *)line[1]);
    for (size_t i = 0; i < linelen[1]; i++) {
        uint8_t d = line[1][i];
        if (d < '0' || d > '9' || c.size > (UINT64_MAX - (uint64_t)(d - '0')) / 10)
            return rh_fail(e, RH_EPARSE, "%s: tree size is not a decimal below 2^64", src);
        c.size = c.size * 10 + (uint64_t)(d - '0');
    }
    /* tlog-checkpoint 3: base64 of the 32-byte root hash. */
    size_t rlen = 0;
    if (rh_base64_decode((const char *)line[2], linelen[2], c.root, sizeof c.root, &rlen) !=
            RH_OK ||
        rlen != sizeof c.root)
        return rh_fail(e, RH_EPARSE, "%s: root hash line is not base64 of 32 bytes", src);
    /* tlog-checkpoint 4: extension lines, each non-empty. */
    if (p < end) {
        for (const uint8_t *q = p; q < end;) {
            const uint8_t *nl = memchr(q, '\n', (size_t)(end - q));
            if (nl == q)
                return rh_fail(e, RH_EPARSE, "%s: empty extension line", src);
            q = nl + 1;
        }
        c.extensions = malloc((size_t)(end - p) + 1);
        if (c.extensions == NULL)
            return rh_fail(e, RH_ENOMEM, "out of memory");
        memcpy(c.extensions, p, (size_t)(end - p));
        c.extensions[end - p] = '\0';
    }
    *out = c;
    return RH_OK;
}

rh_err rh_checkpoint_format(const rh_checkpoint *c, rh_buf *out)
{
    if (c == NULL || out == NULL)
        return RH_EINVAL;
    size_t olen = strnlen(c->origin, sizeof c->origin);
    if (olen == 0 || olen > RH_CHECKPOINT_MAX_ORIGIN || memchr(c->origin, '\n', olen) != NULL)
        return RH_EINVAL;
    if (c->extensions != NULL) {
        size_t xl = strlen(c->extensions);
        if (xl == 0 || c->extensions[xl - 1] != '\n' || c->extensions[0] == '\n' ||
            strstr(c->extensions, "\n\n") != NULL)
            return RH_EINVAL;
    }
    char root[45];
    rh_base64_encode(c->root, sizeof c->root, root);
    rh_err rc = rh_buf_appendf(out, "%s\n%" PRIu64 "\n%s\n", c->origin, c->size, root);
    if (rc == RH_OK && c->extensions != NULL)
        rc = rh_buf_append(out, c->extensions, strlen(c->extensions));
    return rc;
}
