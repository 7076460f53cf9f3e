/* test_keys.c -- RFC 8032 Ed25519 vectors, TUF key IDs, ECDSA P-256 and RSA-PSS verification,
 * key-object rejection table, private key files (mode 0600, refusal of readable files). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/keys.h"

/* RFC 8032 section 7.1, TEST 1, 2, 3 and TEST SHA(abc) (message = SHA-512("abc")). */
static const struct {
    const char *name, *secret, *public, *msg, *sig;
} rfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

static json_t *ed_keyobj(const char *pubhex)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519",
                          "keyval", "public", pubhex);
    assert_non_null(o);
    return o;
}

static json_t *pem_keyobj(const char *keytype, const char *scheme, const char *pem)
{
    json_t *o =
        json_pack("{s:s, s:s, s:{s:s}}", "keytype", keytype, "scheme", scheme, "keyval", "public",
                  pem);
    assert_non_null(o);
    return o;
}

static void test_rfc8032_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc8032 / sizeof rfc8032[0]; i++) {
        uint8_t sk[32], pk[32], want[64], got[64], msg[64];
        size_t msglen = strlen(rfc8032[i].msg) / 2;
        assert_int_equal(rh_hex_decode(rfc8032[i].secret, sk, 32), RH_OK);
        assert_int_equal(rh_hex_decode(rfc8032[i].public, pk, 32), RH_OK);
        assert_int_equal(rh_hex_decode(rfc8032[i].sig, want, 64), RH_OK);
        assert_int_equal(rh_hex_decode(rfc8032[i].msg, msg, msglen), RH_OK);

        /* The secret gives the RFC's public key and, deterministically, its signature. */
        EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
        assert_non_null(priv);
        uint8_t derived[32];
        size_t dlen = sizeof derived;
        assert_int_equal(EVP_PKEY_get_raw_public_key(priv, derived, &dlen), 1);
        assert_memory_equal(derived, pk, 32);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t siglen = sizeof got;
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, priv), 1);
        assert_int_equal(EVP_DigestSign(ctx, got, &siglen, msg, msglen), 1);
        assert_int_equal(siglen, 64);
        assert_memory_equal(got, want, 64);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(priv);

        /* Through the TUF key object. */
        json_t *o = ed_keyobj(rfc8032[i].public);
        rh_pubkey k;
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, &e), RH_OK);
        assert_string_equal(k.keytype, "ed25519");
        assert_string_equal(k.scheme, "ed25519");
        assert_string_equal(k.public_value, rfc8032[i].public);
        assert_non_null(k.pkey);
        assert_true(rh_pubkey_verify(&k, msg, msglen, want, 64));
        /* Any single flipped bit, in the signature or the message, fails. */
        for (size_t bit = 0; bit < 64 * 8; bit += 37) {
            want[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_false(rh_pubkey_verify(&k, msg, msglen, want, 64));
            want[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        uint8_t longer[65];
        memcpy(longer, msg, msglen);
        longer[msglen] = 0;
        assert_false(rh_pubkey_verify(&k, longer, msglen + 1, want, 64));
        if (msglen > 0) {
            msg[0] ^= 0x80;
            assert_false(rh_pubkey_verify(&k, msg, msglen, want, 64));
            msg[0] ^= 0x80;
        }
        assert_false(rh_pubkey_verify(&k, msg, msglen, want, 63));
        memcpy(longer, want, 64);
        longer[64] = 0;
        assert_false(rh_pubkey_verify(&k, msg, msglen, longer, 65));
        assert_false(rh_pubkey_verify(NULL, msg, msglen, want, 64));
        assert_true(rh_pubkey_verify(&k, msg, msglen, want, 64));
        rh_pubkey_cleanup(&k);
        rh_pubkey_cleanup(&k); /* zeroed: safe twice */
        json_decref(o);
    }
}

/* Key IDs: sha256 of the canonical key object. Expected values computed independently with
 *   printf '%s' '{"keytype":"ed25519","keyval":{"public":"d75a98...511a"},"scheme":"ed25519"}' \
 *     | openssl dgst -sha256
 * and the same with "keyid_hash_algorithms":["sha256","sha512"] as the first key (old
 * securesystemslib key objects carry it and the key ID covers it). */
static void test_keyid_known_answer(void **state)
{
    (void)state;
    static const char *indented =
        "{\n  \"scheme\": \"ed25519\",\n  \"keyval\": {\n    \"public\": "
        "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"\n  },\n"
        "  \"keytype\": \"ed25519\"\n}\n";
    static const char *with_algs =
        "{\"keytype\": \"ed25519\", \"scheme\": \"ed25519\", \"keyid_hash_algorithms\": "
        "[\"sha256\", \"sha512\"], \"keyval\": {\"public\": "
        "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"}}";
    rh_error e;
    json_t *o = NULL;
    rh_pubkey k;

    rh_error_clear(&e);
    assert_int_equal(rh_json_parse((const uint8_t *)indented, strlen(indented), 4096, "t", &o, &e),
                     RH_OK);
    assert_int_equal(rh_pubkey_from_json(o, "t", &k, &e), RH_OK);
    assert_string_equal(k.keyid,
                        "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916");
    rh_pubkey_cleanup(&k);
    json_decref(o);

    assert_int_equal(
        rh_json_parse((const uint8_t *)with_algs, strlen(with_algs), 4096, "t", &o, &e), RH_OK);
    assert_int_equal(rh_pubkey_from_json(o, "t", &k, &e), RH_OK);
    assert_string_equal(k.keyid,
                        "01e8764eedab63b3593451765fc337b2cc6d2c66923845da255f448c19e2afc5");
    rh_pubkey_cleanup(&k);
    json_decref(o);
}

/* Key objects that must be refused, with the code. */
static void test_bad_key_objects(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        rh_err want;
    } t[] = {
        {"[]", RH_ETYPE},
        {"\"ed25519\"", RH_ETYPE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":5}}", RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":null}}",
         RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{}}", RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":\"ab\"}", RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\"}", RH_EPARSE},
        {"{\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", RH_EPARSE},
        {"{\"keytype\":7,\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", RH_EPARSE},
        /* 62, 66 hex digits, a non-hex digit, a space, a 0x prefix */
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":"
         "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751\"}}",
         RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":"
         "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a00\"}}",
         RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":"
         "\"g75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"}}",
         RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":"
         "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511 \"}}",
         RH_EPARSE},
        {"{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":"
         "\"0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751\"}}",
         RH_EPARSE},
        /* PEM that is not PEM */
        {"{\"keytype\":\"ecdsa\",\"scheme\":\"ecdsa-sha2-nistp256\",\"keyval\":{\"public\":"
         "\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"}}",
         RH_EPARSE},
        {"{\"keytype\":\"rsa\",\"scheme\":\"rsassa-pss-sha256\",\"keyval\":{\"public\":"
         "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"}}",
         RH_EPARSE},
        {"{\"keytype\":\"rsa\",\"scheme\":\"rsassa-pss-sha256\",\"keyval\":{\"public\":[]}}",
         RH_EPARSE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_error_t je;
        json_t *o = json_loads(t[i].json, JSON_DECODE_ANY, &je);
        if (o == NULL)
            fail_msg("case %zu: test JSON invalid: %s", i, je.text);
        rh_pubkey k;
        memset(&k, 0x5a, sizeof k);
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_pubkey_from_json(o, "1.root.json", &k, &e);
        if (rc != t[i].want)
            fail_msg("case %zu %s: got %d want %d (%s)", i, t[i].json, rc, t[i].want, e.msg);
        assert_int_equal(e.code, t[i].want);
        assert_non_null(strstr(e.msg, "1.root.json")); /* the message names the file */
        assert_int_equal(k.keyid[0], 0x5a);             /* out untouched */
        json_decref(o);
    }
    /* A NUL inside keyval.public is refused. */
    json_t *o = json_pack("{s:s, s:s, s:{s:s%}}", "keytype", "ed25519", "scheme", "ed25519",
                          "keyval", "public",
                          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\0ab",
                          (size_t)67);
    assert_non_null(o);
    rh_pubkey k;
    assert_int_equal(rh_pubkey_from_json(o, "x", &k, NULL), RH_EPARSE);
    json_decref(o);
}

/* TUF: keys of an unknown type or scheme are kept (not a parse error) but never verify. */
static void test_unknown_keytype(void **state)
{
    (void)state;
    static const char *objs[] = {
        "{\"keytype\":\"sphincs\",\"scheme\":\"sphincs-shake-256s\",\"keyval\":{\"public\":\"ab\"}}",
        "{\"keytype\":\"ed25519\",\"scheme\":\"ed448\",\"keyval\":{\"public\":\"zz\"}}",
        "{\"keytype\":\"rsa\",\"scheme\":\"rsa-pkcs1v15-sha256\",\"keyval\":{\"public\":\"x\"}}",
        "{\"keytype\":\"future\",\"scheme\":\"future\",\"keyval\":{\"other\":1}}",
    };
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        json_t *o = json_loads(objs[i], 0, NULL);
        assert_non_null(o);
        rh_pubkey k;
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, &e), RH_OK);
        assert_null(k.pkey);
        assert_int_equal(strlen(k.keyid), 64);
        uint8_t sig[64] = {0};
        assert_false(rh_pubkey_verify(&k, (const uint8_t *)"m", 1, sig, sizeof sig));
        rh_pubkey_cleanup(&k);
        json_decref(o);
    }
}

static char *pubkey_pem(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

/* Signs msg with sha256; for RSA with PSS and the given salt length (0: PKCS#1 v1.5). */
static size_t evp_sign(EVP_PKEY *pk, int pss_salt, const uint8_t *msg, size_t n, uint8_t *sig,
                       size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pk), 1);
    if (pss_salt != 0) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt) > 0);
    }
    size_t len = cap;
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, msg, n), 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

static const uint8_t signed_msg[] = "{\"_type\":\"root\",\"version\":1}";

static void test_ecdsa_p256(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pk);
    char *pem = pubkey_pem(pk);
    uint8_t sig[128];
    size_t siglen = evp_sign(pk, 0, signed_msg, sizeof signed_msg - 1, sig, sizeof sig);
    assert_int_equal(sig[0], 0x30); /* DER SEQUENCE */

    static const char *types[] = {"ecdsa", "ecdsa-sha2-nistp256"};
    for (size_t t = 0; t < 2; t++) {
        json_t *o = pem_keyobj(types[t], "ecdsa-sha2-nistp256", pem);
        rh_pubkey k;
        rh_error e;
        rh_error_clear(&e);
        assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, &e), RH_OK);
        assert_non_null(k.pkey);
        assert_true(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen));
        uint8_t tampered[sizeof signed_msg];
        memcpy(tampered, signed_msg, sizeof signed_msg);
        tampered[3] ^= 1;
        assert_false(rh_pubkey_verify(&k, tampered, sizeof signed_msg - 1, sig, siglen));
        sig[siglen - 1] ^= 1;
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen));
        sig[siglen - 1] ^= 1;
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen - 1));
        /* A P1363 (raw r||s) signature is not what the TUF implementations produce. */
        uint8_t raw[64] = {0};
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, raw, sizeof raw));
        rh_pubkey_cleanup(&k);
        json_decref(o);
    }
    /* The same PEM under the wrong keytype: an EC key is not an RSA key. */
    json_t *o = pem_keyobj("rsa", "rsassa-pss-sha256", pem);
    rh_pubkey k;
    assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, NULL), RH_EPARSE);
    json_decref(o);
    free(pem);
    EVP_PKEY_free(pk);

    /* A P-384 key declared as ecdsa-sha2-nistp256 is refused. */
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(pk);
    pem = pubkey_pem(pk);
    o = pem_keyobj("ecdsa", "ecdsa-sha2-nistp256", pem);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, &e), RH_EPARSE);
    assert_non_null(strstr(e.msg, "P-256"));
    json_decref(o);
    free(pem);
    EVP_PKEY_free(pk);
}

static void test_rsa_pss(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(pk);
    char *pem = pubkey_pem(pk);
    json_t *o = pem_keyobj("rsa", "rsassa-pss-sha256", pem);
    rh_pubkey k;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, &e), RH_OK);
    assert_non_null(k.pkey);

    /* Salt length = digest length (go-tuf, tuf-js defaults) and the maximum (securesystemslib). */
    static const int salts[] = {RSA_PSS_SALTLEN_DIGEST, RSA_PSS_SALTLEN_MAX, 0};
    uint8_t sig[512];
    for (size_t i = 0; i < 2; i++) {
        size_t siglen = evp_sign(pk, salts[i], signed_msg, sizeof signed_msg - 1, sig, sizeof sig);
        assert_int_equal(siglen, 256);
        assert_true(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen));
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 2, sig, siglen));
        sig[100] ^= 4;
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen));
        sig[100] ^= 4;
        assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen - 1));
    }
    /* PKCS#1 v1.5 is a different scheme: refused. */
    size_t siglen = evp_sign(pk, salts[2], signed_msg, sizeof signed_msg - 1, sig, sizeof sig);
    assert_false(rh_pubkey_verify(&k, signed_msg, sizeof signed_msg - 1, sig, siglen));
    rh_pubkey_cleanup(&k);
    json_decref(o);
    free(pem);
    EVP_PKEY_free(pk);

    /* An RSA key below 2048 bits is refused. */
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(pk);
    pem = pubkey_pem(pk);
    o = pem_keyobj("rsa", "rsassa-pss-sha256", pem);
    assert_int_equal(rh_pubkey_from_json(o, "root.json", &k, NULL), RH_EPARSE);
    json_decref(o);
    free(pem);
    EVP_PKEY_free(pk);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *s, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_privkey_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/rh-test-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/targets.pem", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);
    rh_error e;
    rh_error_clear(&e);

    rh_privkey *k = NULL, *k2 = NULL;
    assert_int_equal(rh_privkey_generate(&k, &e), RH_OK);
    assert_int_equal(rh_privkey_save(k, path, &e), RH_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(dir), 1); /* no temp file left */

    /* The file is PKCS#8 PEM. */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[64] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");

    assert_int_equal(rh_privkey_load(path, &k2, &e), RH_OK);
    char id1[RH_KEYID_HEX_LEN + 1], id2[RH_KEYID_HEX_LEN + 1];
    assert_int_equal(rh_privkey_keyid(k, id1), RH_OK);
    assert_int_equal(rh_privkey_keyid(k2, id2), RH_OK);
    assert_string_equal(id1, id2);

    /* Ed25519 is deterministic: both halves sign identically, and the TUF key object of the
     * public half verifies it; its key ID is rh_privkey_keyid. */
    uint8_t s1[64], s2[64];
    assert_int_equal(rh_privkey_sign(k, signed_msg, sizeof signed_msg - 1, s1, &e), RH_OK);
    assert_int_equal(rh_privkey_sign(k2, signed_msg, sizeof signed_msg - 1, s2, &e), RH_OK);
    assert_memory_equal(s1, s2, 64);
    json_t *pub = rh_privkey_public_json(k2);
    assert_non_null(pub);
    assert_string_equal(json_string_value(json_object_get(pub, "keytype")), "ed25519");
    assert_string_equal(json_string_value(json_object_get(pub, "scheme")), "ed25519");
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(pub, "keyval"), "public"))), 64);
    rh_pubkey pk;
    assert_int_equal(rh_pubkey_from_json(pub, "gen", &pk, &e), RH_OK);
    assert_string_equal(pk.keyid, id1);
    assert_true(rh_pubkey_verify(&pk, signed_msg, sizeof signed_msg - 1, s1, 64));
    s1[0] ^= 1;
    assert_false(rh_pubkey_verify(&pk, signed_msg, sizeof signed_msg - 1, s1, 64));
    rh_pubkey_cleanup(&pk);
    json_decref(pub);

    /* Saving again replaces the file atomically, still 0600. */
    assert_int_equal(rh_privkey_save(k2, path, &e), RH_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(dir), 1);
    rh_privkey_free(k2);
    k2 = NULL;
    assert_int_equal(e.code, RH_OK);

    /* A key file readable by others is refused with a message saying what to do. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rh_privkey_load(path, &k2, &e), RH_EIO);
    assert_null(k2);
    assert_non_null(strstr(e.msg, "readable by others (mode 0644); chmod 600"));
    assert_non_null(strstr(e.msg, path));
    rh_error_clear(&e);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(rh_privkey_load(path, &k2, &e), RH_EIO);
    rh_error_clear(&e);

    /* Missing file, garbage, a non-Ed25519 key, a directory. */
    assert_int_equal(rh_privkey_load(other, &k2, &e), RH_EIO);
    assert_non_null(strstr(e.msg, other));
    rh_error_clear(&e);
    write_file(other, "not a key\n", 0600);
    assert_int_equal(rh_privkey_load(other, &k2, &e), RH_EPARSE);
    rh_error_clear(&e);
    write_file(other, "", 0600);
    assert_int_equal(rh_privkey_load(other, &k2, &e), RH_EPARSE);
    rh_error_clear(&e);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *pemtext = strndup(p, (size_t)n);
    write_file(other, pemtext, 0600);
    free(pemtext);
    BIO_free(b);
    EVP_PKEY_free(ec);
    assert_int_equal(rh_privkey_load(other, &k2, &e), RH_EPARSE);
    assert_non_null(strstr(e.msg, "Ed25519"));
    rh_error_clear(&e);
    assert_int_equal(rh_privkey_load(dir, &k2, &e), RH_EIO);
    rh_error_clear(&e);
    assert_null(k2);

    /* Saving into a directory that does not exist fails cleanly. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope/key.pem", dir);
    assert_int_equal(rh_privkey_save(k, missing, &e), RH_EIO);
    rh_error_clear(&e);

    rh_privkey_free(k);
    rh_privkey_free(NULL);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(unlink(other), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vectors), cmocka_unit_test(test_keyid_known_answer),
        cmocka_unit_test(test_bad_key_objects), cmocka_unit_test(test_unknown_keytype),
        cmocka_unit_test(test_ecdsa_p256),      cmocka_unit_test(test_rsa_pss),
        cmocka_unit_test(test_privkey_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
