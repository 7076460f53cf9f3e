/* keys.c -- TUF key objects, key IDs, signature verification and Ed25519 signing keys (EVP). */
#include "manifest/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/afile.h"
#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/limits.h"

#define RH_ED25519_PUB_LEN 32
#define RH_ED25519_SIG_LEN 64
#define RH_MAX_PEM_PUBKEY_BYTES (16u * 1024) /* a PEM public key in key metadata */
#define RH_MAX_KEYFILE_BYTES (64u * 1024)    /* a private key file on disk */
#define RH_RSA_MIN_BITS 2048                 /* smaller RSA keys are refused */

struct rh_privkey {
    EVP_PKEY *pkey; /* Ed25519 */
};

typedef enum key_kind { KIND_UNKNOWN, KIND_ED25519, KIND_ECDSA_P256, KIND_RSA_PSS } key_kind;

static key_kind kind_of(const char *keytype, const char *scheme)
{
    if (strcmp(keytype, "ed25519") == 0 && strcmp(scheme, "ed25519") == 0)
        return KIND_ED25519;
    if ((strcmp(keytype, "ecdsa") == 0 || strcmp(keytype, "ecdsa-sha2-nistp256") == 0) &&
        strcmp(scheme, "ecdsa-sha2-nistp256") == 0)
        return KIND_ECDSA_P256;
    if (strcmp(keytype, "rsa") == 0 && strcmp(scheme, "rsassa-pss-sha256") == 0)
        return KIND_RSA_PSS;
    return KIND_UNKNOWN;
}

/* TUF 4.2 (key objects): KEYID = hex(sha256(canonical JSON of the key object)). */
static rh_err keyid_of(const json_t *keyobj, const char *src, char out[RH_KEYID_HEX_LEN + 1],
                       rh_error *e)
{
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    uint8_t dig[RH_SHA256_LEN];
    rh_err rc = rh_cjson_encode(keyobj, &b, e);
    if (rc != RH_OK) {
        rh_error_prefix(e, "%s: key object", src);
        goto out;
    }
    rc = rh_hash_once(RH_SHA256, b.data, b.len, dig);
    if (rc != RH_OK) {
        rh_fail(e, rc, "%s: hashing the key object failed", src);
        goto out;
    }
    rh_hex_encode(dig, sizeof dig, out);
out:
    rh_buf_cleanup(&b);
    return rc;
}

static EVP_PKEY *pem_pubkey(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
    if (bio == NULL)
        return NULL;
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return pk;
}

/* Builds the EVP key of a supported kind from keyval.public; RH_EPARSE with a message otherwise. */
static rh_err load_public(key_kind kind, const char *pub, const char *src, const char *keyid,
                          EVP_PKEY **out, rh_error *e)
{
    EVP_PKEY *pk = NULL;
    rh_err rc = RH_OK;
    if (kind == KIND_ED25519) {
        uint8_t raw[RH_ED25519_PUB_LEN];
        if (rh_hex_decode(pub, raw, sizeof raw) != RH_OK)
            return rh_fail(e, RH_EPARSE,
                           "%s: key %.16s: ed25519 keyval.public must be %d hex digits", src, keyid,
                           2 * RH_ED25519_PUB_LEN);
        pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw);
        if (pk == NULL) {
            rc = rh_fail(e, RH_ECRYPTO, "%s: key %.16s: OpenSSL refused the ed25519 key", src,
                         keyid);
            goto out;
        }
        *out = pk;
        return RH_OK;
    }
    if (strlen(pub) > RH_MAX_PEM_PUBKEY_BYTES)
        return rh_fail(e, RH_EPARSE, "%s: key %.16s: keyval.public longer than %u bytes", src,
                       keyid, RH_MAX_PEM_PUBKEY_BYTES);
    pk = pem_pubkey(pub);
    if (pk == NULL) {
        rc = rh_fail(e, RH_EPARSE, "%s: key %.16s: keyval.public is not a PEM public key", src,
                     keyid);
        goto out;
    }
    if (kind == KIND_ECDSA_P256) {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_is_a(pk, "EC") ||
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            rc = rh_fail(e, RH_EPARSE, "%s: key %.16s: ecdsa-sha2-nistp256 key is not on P-256",
                         src, keyid);
            goto out;
        }
    } else if (kind == KIND_RSA_PSS) {
        if (!EVP_PKEY_is_a(pk, "RSA")) {
            rc = rh_fail(e, RH_EPARSE, "%s: key %.16s: rsa keyval.public is not an RSA key", src,
                         keyid);
            goto out;
        }
        if (EVP_PKEY_get_bits(pk) < RH_RSA_MIN_BITS) {
            rc = rh_fail(e, RH_EPARSE, "%s: key %.16s: RSA key of %d bits, fewer than %d", src,
                         keyid, EVP_PKEY_get_bits(pk), RH_RSA_MIN_BITS);
            goto out;
        }
    }
    *out = pk;
    pk = NULL;
out:
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

static rh_err dup_str(const char *s, char **out, rh_error *e)
{
    *out = strdup(s);
    return *out == NULL ? rh_fail(e, RH_ENOMEM, "out of memory") : RH_OK;
}

rh_err rh_pubkey_from_json(const json_t *keyobj, const char *src, rh_pubkey *out, rh_error *e)
{
    rh_pubkey k;
    memset(&k, 0, sizeof k);
    rh_err rc;
    EVP_PKEY *pk = NULL;
    if (src == NULL)
        src = "(metadata)";
    if (out == NULL)
        return rh_fail(e, RH_EINVAL, "%s: no key to fill", src);
    if (!json_is_object(keyobj))
        return rh_fail(e, RH_ETYPE, "%s: key is not a JSON object", src);
    rc = keyid_of(keyobj, src, k.keyid, e);
    if (rc != RH_OK)
        return rc;

    const json_t *jt = json_object_get(keyobj, "keytype");
    const json_t *js = json_object_get(keyobj, "scheme");
    const json_t *jv = json_object_get(keyobj, "keyval");
    if (!json_is_string(jt) || !json_is_string(js))
        return rh_fail(e, RH_EPARSE, "%s: key %.16s: keytype and scheme must be strings", src,
                       k.keyid);
    if (!json_is_object(jv))
        return rh_fail(e, RH_EPARSE, "%s: key %.16s: keyval must be an object", src, k.keyid);
    const json_t *jp = json_object_get(jv, "public");
    key_kind kind = kind_of(json_string_value(jt), json_string_value(js));

    if (kind != KIND_UNKNOWN) {
        if (!json_is_string(jp))
            return rh_fail(e, RH_EPARSE, "%s: key %.16s: keyval.public must be a string", src,
                           k.keyid);
        /* jansson strings may hold NUL; a key value never does. */
        if (strlen(json_string_value(jp)) != json_string_length(jp))
            return rh_fail(e, RH_EPARSE, "%s: key %.16s: NUL in keyval.public", src, k.keyid);
        rc = load_public(kind, json_string_value(jp), src, k.keyid, &pk, e);
        if (rc != RH_OK)
            return rc;
    }
    /* TUF 5.3.x: a key of an unsupported type is kept but can never satisfy a threshold. */
    if ((rc = dup_str(json_string_value(jt), &k.keytype, e)) != RH_OK ||
        (rc = dup_str(json_string_value(js), &k.scheme, e)) != RH_OK)
        goto out;
    if (json_is_string(jp) && (rc = dup_str(json_string_value(jp), &k.public_value, e)) != RH_OK)
        goto out;
    k.pkey = pk;
    pk = NULL;
    *out = k;
    memset(&k, 0, sizeof k);
out:
    EVP_PKEY_free(pk);
    rh_pubkey_cleanup(&k);
    return rc;
}

void rh_pubkey_cleanup(rh_pubkey *k)
{
    if (k == NULL)
        return;
    free(k->keytype);
    free(k->scheme);
    free(k->public_value);
    EVP_PKEY_free((EVP_PKEY *)k->pkey);
    memset(k, 0, sizeof *k);
}

bool rh_pubkey_verify(const rh_pubkey *k, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                      size_t siglen)
{
    if (k == NULL || k->pkey == NULL || k->keytype == NULL || k->scheme == NULL || sig == NULL ||
        siglen == 0 || (msg == NULL && msglen > 0))
        return false;
    EVP_PKEY *pk = (EVP_PKEY *)k->pkey;
    key_kind kind = kind_of(k->keytype, k->scheme);
    static const uint8_t empty[1] = {0};
    if (msg == NULL)
        msg = empty;
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (ctx == NULL)
        goto out;
    switch (kind) {
    case KIND_ED25519:
        if (siglen != RH_ED25519_SIG_LEN || !EVP_PKEY_is_a(pk, "ED25519"))
            goto out;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1)
            goto out;
        break;
    case KIND_ECDSA_P256:
        /* securesystemslib and tuf-js: DER-encoded ECDSA over sha256 of the message. */
        if (!EVP_PKEY_is_a(pk, "EC") || siglen > (size_t)EVP_PKEY_get_size(pk))
            goto out;
        if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) != 1)
            goto out;
        break;
    case KIND_RSA_PSS:
        /* securesystemslib/tuf-js sign PSS with MGF1-SHA256 and the longest salt; accept any
         * salt length the signature encodes (RSA_PSS_SALTLEN_AUTO). */
        if (!EVP_PKEY_is_a(pk, "RSA") || siglen != (size_t)EVP_PKEY_get_size(pk))
            goto out;
        if (EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pk) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) <= 0)
            goto out;
        break;
    case KIND_UNKNOWN:
    default:
        goto out;
    }
    ok = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
out:
    EVP_MD_CTX_free(ctx); /* frees pctx too */
    ERR_clear_error();
    return ok;
}

/* ---- private keys ------------------------------------------------------------------------ */

static rh_err priv_wrap(EVP_PKEY *pk, rh_privkey **out, rh_error *e)
{
    rh_privkey *k = calloc(1, sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pk);
        return rh_fail(e, RH_ENOMEM, "out of memory");
    }
    k->pkey = pk;
    *out = k;
    return RH_OK;
}

rh_err rh_privkey_generate(rh_privkey **out, rh_error *e)
{
    if (out == NULL)
        return rh_fail(e, RH_EINVAL, "keygen: no output");
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pk == NULL) {
        ERR_clear_error();
        return rh_fail(e, RH_ECRYPTO, "keygen: OpenSSL could not generate an Ed25519 key");
    }
    return priv_wrap(pk, out, e);
}

void rh_privkey_free(rh_privkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey); /* OpenSSL clears the private key material on free */
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

rh_err rh_privkey_save(const rh_privkey *k, const char *path, rh_error *e)
{
    if (k == NULL || k->pkey == NULL || path == NULL || path[0] == '\0')
        return rh_fail(e, RH_EINVAL, "key save: no key or no path");
    rh_err rc = RH_OK;
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t dl = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    if (dl + 1 > sizeof dir || (slash != NULL && slash[1] == '\0'))
        return rh_fail(e, RH_EINVAL, "%s: not a file path", path);
    memcpy(dir, slash == NULL ? "." : path, dl);
    dir[dl] = '\0';
    BIO *bio = BIO_new(BIO_s_secmem()); /* cleared when freed */
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = rh_fail(e, RH_ECRYPTO, "%s: OpenSSL could not encode the key as PKCS#8 PEM", path);
        goto out;
    }
    char *pem = NULL;
    long pemlen = BIO_get_mem_data(bio, &pem);
    if (pemlen <= 0 || pem == NULL) {
        rc = rh_fail(e, RH_ECRYPTO, "%s: empty PEM encoding", path);
        goto out;
    }
    /* 0600 from the first byte (mkstemp), replaced atomically, the rename made durable. */
    rc = rh_file_write_atomic(dir, slash == NULL ? path : slash + 1, (const uint8_t *)pem,
                              (size_t)pemlen, true, S_IRUSR | S_IWUSR, e);
out:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* Refuses to prompt for a pass phrase: encrypted key files are not supported. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

rh_err rh_privkey_load(const char *path, rh_privkey **out, rh_error *e)
{
    if (path == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "key load: no path or no output");
    rh_err rc = RH_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rh_fail(e, RH_EIO, "%s: cannot open key file: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = rh_fail(e, RH_EIO, "%s: stat failed: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rh_fail(e, RH_EIO, "%s: key file is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = rh_fail(e, RH_EIO, "key file %s is readable by others (mode %04o); chmod 600", path,
                     (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > RH_MAX_KEYFILE_BYTES) {
        rc = rh_fail(e, RH_EPARSE, "%s: key file size %lld not in 1..%u bytes", path,
                     (long long)st.st_size, RH_MAX_KEYFILE_BYTES);
        goto out;
    }
    data = OPENSSL_secure_malloc((size_t)st.st_size);
    if (data == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "out of memory");
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, data + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = rh_fail(e, RH_EIO, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "out of memory");
        goto out;
    }
    pk = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (pk == NULL) {
        rc = rh_fail(e, RH_EPARSE, "%s: not an unencrypted PKCS#8 PEM private key", path);
        goto out;
    }
    if (!EVP_PKEY_is_a(pk, "ED25519")) {
        rc = rh_fail(e, RH_EPARSE, "%s: not an Ed25519 key (only Ed25519 signs)", path);
        goto out;
    }
    rc = priv_wrap(pk, out, e);
    pk = NULL;
out:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    if (data != NULL)
        OPENSSL_secure_clear_free(data, (size_t)st.st_size);
    close(fd);
    ERR_clear_error();
    return rc;
}

json_t *rh_privkey_public_json(const rh_privkey *k)
{
    if (k == NULL || k->pkey == NULL)
        return NULL;
    uint8_t raw[RH_ED25519_PUB_LEN];
    size_t rawlen = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1 || rawlen != sizeof raw) {
        ERR_clear_error();
        return NULL;
    }
    char hex[2 * RH_ED25519_PUB_LEN + 1];
    rh_hex_encode(raw, sizeof raw, hex);
    return json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
                     "public", hex);
}

rh_err rh_privkey_keyid(const rh_privkey *k, char out[RH_KEYID_HEX_LEN + 1])
{
    if (out == NULL)
        return RH_EINVAL;
    json_t *pub = rh_privkey_public_json(k);
    if (pub == NULL)
        return k == NULL ? RH_EINVAL : RH_ENOMEM;
    char id[RH_KEYID_HEX_LEN + 1];
    rh_err rc = keyid_of(pub, "private key", id, NULL);
    json_decref(pub);
    if (rc == RH_OK)
        memcpy(out, id, sizeof id);
    return rc;
}

rh_err rh_privkey_sign(const rh_privkey *k, const uint8_t *msg, size_t msglen, uint8_t sig[64],
                       rh_error *e)
{
    if (k == NULL || k->pkey == NULL || sig == NULL || (msg == NULL && msglen > 0))
        return rh_fail(e, RH_EINVAL, "sign: no key, message or output");
    static const uint8_t empty[1] = {0};
    uint8_t tmp[RH_ED25519_SIG_LEN];
    size_t siglen = sizeof tmp;
    rh_err rc = RH_OK;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, tmp, &siglen, msg != NULL ? msg : empty, msglen) != 1 ||
        siglen != RH_ED25519_SIG_LEN) {
        rc = rh_fail(e, RH_ECRYPTO, "sign: OpenSSL Ed25519 signing failed");
        goto out;
    }
    memcpy(sig, tmp, sizeof tmp);
out:
    OPENSSL_cleanse(tmp, sizeof tmp);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
