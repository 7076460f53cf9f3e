/* test_note.c -- C2SP signed-note, tlog-checkpoint and tlog-cosignature: published known
 * answers (golang.org/x/mod sumdb/note example, a real transparency.dev checkpoint with a
 * witness cosignature), sign/verify round trips, and rejection tables. */
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

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "manifest/hash.h"
#include "manifest/keys.h"
#include "manifest/note.h"

/* ---- published vectors ------------------------------------------------------------------ */

/* golang.org/x/mod/sumdb/note (note_test.go / package doc): the PeterNeumann example. The
 * signer key is "PRIVATE+KEY+PeterNeumann+c74f20a3+" base64(0x01 || 32-byte seed). */
#define PETER_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define PETER_SEED_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define PETER_TEXT                                                                             \
    "If you think cryptography is the answer to your problem,\n"                               \
    "then you don't know what your problem is.\n"
#define PETER_SIGLINE                                                                          \
    "\xe2\x80\x94 PeterNeumann "                                                               \
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

/* The signed-note spec's example key (key ID 0x530d903a). */
#define EXAMPLE_VKEY "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

/* A real checkpoint of the arche2025h1 staging CT log (tlog-tiles), with the log's Ed25519
 * signature (key ID ba2f06c0), an RFC 6962 signature (type 0x05, ignored), and witness
 * cosignatures; remora.n621.de is a tlog-cosignature/v1 (type 0x04) witness. */
#define ARCHE_VKEY                                                                             \
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
#define REMORA_VKEY "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
#define D "\xe2\x80\x94 "
#define ARCHE_BODY                                                                             \
    "arche2025h1.staging.ct.transparency.dev\n1432088532\n"                                    \
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
static const char arche_note[] =
    ARCHE_BODY
    "\n" D "arche2025h1.staging.ct.transparency.dev "
    "zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXF"
    "bon5Ch9MNL5zRNZ55lvGt0=\n" D "arche2025h1.staging.ct.transparency.dev "
    "ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    D "transparency.dev/DEV:witness-little-garden "
    "2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJ"
    "Y096st5BQ==\n" D "witness1.smartit.nu/witness1 "
    "pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0Xw"
    "zdZsDsUAQ==\n" D "remora.n621.de "
    "2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtq"
    "B0DrAWfBw==\n" D "witness.stagemole.eu "
    "Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFY"
    "e/TmN9DAg==\n";

/* ---- helpers ----------------------------------------------------------------------------- */

static rh_note *parse_ok(const char *s)
{
    rh_note *n = NULL;
    rh_error e;
    rh_error_clear(&e);
    if (rh_note_parse((const uint8_t *)s, strlen(s), "t", &n, &e) != RH_OK)
        fail_msg("parse: %s", e.msg);
    return n;
}

static rh_note_key vkey(const char *s)
{
    rh_note_key k;
    rh_error e;
    rh_error_clear(&e);
    if (rh_note_vkey_parse(s, &k, &e) != RH_OK)
        fail_msg("vkey %s: %s", s, e.msg);
    return k;
}

/* An rh_privkey holding a given Ed25519 seed, through a 0600 PKCS#8 file. */
static rh_privkey *privkey_from_seed(const uint8_t seed[32])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    assert_non_null(pk);
    char path[] = "/tmp/rh-test-note-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(pk);
    assert_int_equal(chmod(path, 0600), 0);
    rh_privkey *k = NULL;
    assert_int_equal(rh_privkey_load(path, &k, NULL), RH_OK);
    unlink(path);
    return k;
}

static rh_privkey *gen_key(void)
{
    rh_privkey *k = NULL;
    assert_int_equal(rh_privkey_generate(&k, NULL), RH_OK);
    return k;
}

/* ---- base64 ------------------------------------------------------------------------------ */

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const rfc[][2] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        char out[16];
        size_t n = strlen(rfc[i][0]);
        assert_int_equal(rh_base64_len(n), strlen(rfc[i][1]));
        rh_base64_encode((const uint8_t *)rfc[i][0], n, out);
        assert_string_equal(out, rfc[i][1]);
        uint8_t back[16];
        size_t blen = 99;
        assert_int_equal(rh_base64_decode(rfc[i][1], strlen(rfc[i][1]), back, sizeof back, &blen),
                         RH_OK);
        assert_int_equal(blen, n);
        assert_memory_equal(back, rfc[i][0], n);
    }
    uint8_t all[3] = {0xfb, 0xff, 0xbf};
    char out[8];
    rh_base64_encode(all, 3, out);
    assert_string_equal(out, "+/+/");

    /* Only the one canonical spelling decodes. */
    static const char *const bad[] = {
        "Zg",       /* no padding */
        "Zg=",      /* short padding */
        "Zh==",     /* spare bits set */
        "Zm9=",     /* spare bits set */
        "Zm9v\n",   /* newline */
        "Zm 9v",    /* space */
        "Z===",     /* too much padding */
        "====",     /* padding only */
        "=Zg=",     /* padding first */
        "Zg==Zg==", /* padding in the middle */
        "Zm9-",     /* base64url alphabet */
        "Zm9_",     /* base64url alphabet */
        "Zm9v=",    /* length not a multiple of 4 */
        "Zm\xc3\xa9", /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t b[16];
        size_t n = 77;
        if (rh_base64_decode(bad[i], strlen(bad[i]), b, sizeof b, &n) != RH_EPARSE)
            fail_msg("accepted base64 \"%s\"", bad[i]);
        assert_int_equal(n, 77);
    }
    uint8_t small[2];
    size_t n;
    assert_int_equal(rh_base64_decode("Zm9v", 4, small, sizeof small, &n), RH_ETOOBIG);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_key_ids_and_vkeys(void **state)
{
    (void)state;
    static const struct {
        const char *vkey, *name;
        uint8_t type;
        uint32_t id;
    } t[] = {
        {EXAMPLE_VKEY, "example.com/foo", RH_NOTE_TYPE_ED25519, 0x530d903au},
        {PETER_VKEY, "PeterNeumann", RH_NOTE_TYPE_ED25519, 0xc74f20a3u},
        {ARCHE_VKEY, "arche2025h1.staging.ct.transparency.dev", RH_NOTE_TYPE_ED25519, 0xba2f06c0u},
        {REMORA_VKEY, "remora.n621.de", RH_NOTE_TYPE_COSIG_V1, 0xda77ade7u},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rh_note_key k = vkey(t[i].vkey);
        assert_string_equal(k.name, t[i].name);
        assert_int_equal(k.type, t[i].type);
        assert_int_equal(k.id, t[i].id);
        assert_false(k.required);
        /* The ID from the parts equals the published one. */
        uint32_t id;
        assert_int_equal(rh_note_key_id(k.name, k.type, k.pub, 32, &id), RH_OK);
        assert_int_equal(id, t[i].id);
        rh_note_key k2;
        assert_int_equal(rh_note_key_init(&k2, k.name, k.type, k.pub, NULL), RH_OK);
        assert_int_equal(k2.id, t[i].id);
        /* Written back byte for byte. */
        rh_buf b;
        rh_buf_init(&b, 1024);
        assert_int_equal(rh_note_vkey_format(&k, &b), RH_OK);
        assert_string_equal((char *)b.data, t[i].vkey);
        rh_buf_cleanup(&b);
    }
    static const char *const bad[] = {
        "example.com/foo",
        "example.com/foo+530d903a",
        "example.com/foo+530d903a+",
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", /* wrong ID */
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", /* upper case */
        "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a0+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",   /* short */
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k!",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",                  /* no name */
        "exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",          /* space */
        /* type 0x02 (ECDSA) is not supported: same key bytes after another type byte */
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_note_key k;
        memset(&k, 0x5a, sizeof k);
        rh_error e;
        rh_error_clear(&e);
        if (rh_note_vkey_parse(bad[i], &k, &e) != RH_EPARSE)
            fail_msg("accepted vkey \"%s\"", bad[i]);
        assert_int_equal((uint8_t)k.name[0], 0x5a);
    }
    /* Key names: no spaces (any Unicode space), no '+', not empty, not too long. */
    uint8_t pub[32] = {0};
    static const char *const bad_names[] = {"",          "a b",  "a+b",  "a\tb",
                                            "a\xc2\xa0" "b", "a\xe2\x80\x83" "b",
                                            "a\xe3\x80\x80" "b", "a\xff"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        rh_note_key k;
        if (rh_note_key_init(&k, bad_names[i], RH_NOTE_TYPE_ED25519, pub, NULL) != RH_EPARSE)
            fail_msg("accepted key name %zu", i);
    }
    char longname[RH_NOTE_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    rh_note_key k;
    assert_int_equal(rh_note_key_init(&k, longname, RH_NOTE_TYPE_ED25519, pub, NULL), RH_EPARSE);
    longname[RH_NOTE_MAX_NAME] = '\0';
    assert_int_equal(rh_note_key_init(&k, longname, RH_NOTE_TYPE_ED25519, pub, NULL), RH_OK);
    assert_int_equal(rh_note_key_init(&k, "ok.example/x", 0x02, pub, NULL), RH_EINVAL);
}

/* ---- the sumdb/note example ------------------------------------------------------------- */

static void test_peter_neumann(void **state)
{
    (void)state;
    uint8_t raw[33];
    size_t n;
    assert_int_equal(rh_base64_decode(PETER_SEED_B64, strlen(PETER_SEED_B64), raw, sizeof raw, &n),
                     RH_OK);
    assert_int_equal(n, 33);
    assert_int_equal(raw[0], RH_NOTE_TYPE_ED25519);
    rh_privkey *sk = privkey_from_seed(raw + 1);

    /* The key of the seed is the published verifier key. */
    rh_note_key k;
    assert_int_equal(rh_note_key_from_privkey(sk, "PeterNeumann", RH_NOTE_TYPE_ED25519, &k, NULL),
                     RH_OK);
    rh_buf b;
    rh_buf_init(&b, 4096);
    assert_int_equal(rh_note_vkey_format(&k, &b), RH_OK);
    assert_string_equal((char *)b.data, PETER_VKEY);
    rh_buf_reset(&b);

    /* Ed25519 is deterministic: our signature line is the published one, byte for byte. */
    const char *text = PETER_TEXT;
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_note_sign((const uint8_t *)text, strlen(text), "PeterNeumann", sk, &b, &e),
                     RH_OK);
    assert_string_equal((char *)b.data, PETER_SIGLINE);
    rh_buf_cleanup(&b);
    rh_privkey_free(sk);

    /* And the published note verifies. */
    rh_note *note = parse_ok(PETER_TEXT "\n" PETER_SIGLINE);
    assert_int_equal(note->textlen, strlen(PETER_TEXT));
    assert_memory_equal(note->text, PETER_TEXT, note->textlen);
    assert_int_equal(note->nsigs, 1);
    assert_string_equal(note->sigs[0].name, "PeterNeumann");
    assert_int_equal(note->sigs[0].id, 0xc74f20a3u);
    assert_int_equal(note->sigs[0].siglen, 64);
    rh_note_key keys[2] = {vkey(PETER_VKEY), vkey(EXAMPLE_VKEY)};
    rh_note_result res[2];
    assert_int_equal(rh_note_verify(note, keys, 2, res, "t", &e), RH_OK);
    assert_true(res[0].ok);
    assert_false(res[1].ok);
    /* The example key is unknown to this note: alone it verifies nothing. */
    assert_int_equal(rh_note_verify(note, keys + 1, 1, NULL, "t", &e), RH_ESIG);
    assert_non_null(strstr(e.msg, "no signature by a known key"));
    rh_note_free(note);

    /* One changed letter in the text: the known key's signature fails, the note is rejected. */
    rh_note *bad = parse_ok("If you think cryptography is the answer to your problem,\n"
                            "then you don't know what your problem is!\n\n" PETER_SIGLINE);
    rh_error_clear(&e);
    assert_int_equal(rh_note_verify(bad, keys, 1, NULL, "t", &e), RH_ESIG);
    assert_non_null(strstr(e.msg, "PeterNeumann+c74f20a3 does not verify"));
    rh_note_free(bad);
}

/* ---- a real checkpoint with a witness cosignature ----------------------------------------- */

static void test_real_checkpoint(void **state)
{
    (void)state;
    rh_note *n = parse_ok(arche_note);
    assert_int_equal(n->nsigs, 6);
    assert_int_equal(n->textlen, strlen(ARCHE_BODY));
    rh_note_key keys[2] = {vkey(ARCHE_VKEY), vkey(REMORA_VKEY)};
    keys[0].required = true;
    keys[1].required = true;
    rh_note_result res[2];
    rh_error e;
    rh_error_clear(&e);
    /* The RFC 6962 signature of the same name (other key ID) and the other witnesses are
     * unknown signers: ignored. */
    assert_int_equal(rh_note_verify(n, keys, 2, res, "checkpoint", &e), RH_OK);
    assert_true(res[0].ok);
    assert_int_equal(res[0].timestamp, 0);
    assert_true(res[1].ok);
    assert_int_equal(res[1].timestamp, 1779573024u); /* 0x6a122120 in the cosignature */

    rh_checkpoint cp;
    assert_int_equal(rh_checkpoint_parse(n->text, n->textlen, "checkpoint", &cp, &e), RH_OK);
    assert_string_equal(cp.origin, "arche2025h1.staging.ct.transparency.dev");
    assert_int_equal(cp.size, 1432088532u);
    char root[45];
    rh_base64_encode(cp.root, 32, root);
    assert_string_equal(root, "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=");
    assert_null(cp.extensions);
    rh_buf b;
    rh_buf_init(&b, 4096);
    assert_int_equal(rh_checkpoint_format(&cp, &b), RH_OK);
    assert_int_equal(b.len, n->textlen);
    assert_memory_equal(b.data, n->text, b.len);
    rh_buf_cleanup(&b);
    rh_checkpoint_cleanup(&cp);
    rh_note_free(n);

    /* The same signatures over a different tree size: both known keys fail. */
    char forged[sizeof arche_note];
    memcpy(forged, arche_note, sizeof arche_note);
    char *p = strstr(forged, "1432088532");
    p[9] = '3';
    n = parse_ok(forged);
    rh_error_clear(&e);
    assert_int_equal(rh_note_verify(n, keys, 2, NULL, "checkpoint", &e), RH_ESIG);
    assert_int_equal(rh_note_verify(n, keys + 1, 1, NULL, "checkpoint", NULL), RH_ESIG);
    rh_note_free(n);
}

/* The tlog-cosignature spec's example of the signed message. */
static void test_cosig_message(void **state)
{
    (void)state;
    const char *body = "example.com/behind-the-sofa\n20852163\n"
                       "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    rh_buf b;
    rh_buf_init(&b, 4096);
    assert_int_equal(rh_note_cosig_message((const uint8_t *)body, strlen(body), 1679315147, &b),
                     RH_OK);
    assert_string_equal((char *)b.data, "cosignature/v1\ntime 1679315147\n"
                                        "example.com/behind-the-sofa\n20852163\n"
                                        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
    rh_buf_reset(&b);
    assert_int_equal(rh_note_cosig_message((const uint8_t *)body, strlen(body), 0, &b), RH_OK);
    assert_non_null(strstr((char *)b.data, "\ntime 0\n"));
    rh_buf_cleanup(&b);
}

/* ---- sign, cosign, verify ----------------------------------------------------------------- */

static void test_sign_cosign_verify(void **state)
{
    (void)state;
    rh_privkey *log = gen_key(), *w1 = gen_key(), *w2 = gen_key(), *stranger = gen_key();
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.origin, sizeof cp.origin, "origin.rhine.example/log");
    cp.size = 42;
    for (int i = 0; i < 32; i++)
        cp.root[i] = (uint8_t)i;
    cp.extensions = strdup("rhine-ext one\n");
    assert_non_null(cp.extensions);
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    assert_int_equal(rh_checkpoint_format(&cp, &note), RH_OK);
    size_t textlen = note.len;
    uint8_t *text = malloc(textlen);
    memcpy(text, note.data, textlen);
    rh_error e;
    rh_error_clear(&e);
    assert_int_equal(rh_buf_appendc(&note, '\n'), RH_OK);
    assert_int_equal(rh_note_sign(text, textlen, "origin.rhine.example/log", log, &note, &e), RH_OK);
    /* A stranger's line under a witness's name: unknown key ID, ignored. */
    assert_int_equal(rh_note_cosign(text, textlen, "mirror-eu.example/w", stranger, 1700000000,
                                    &note, &e),
                     RH_OK);
    assert_int_equal(rh_note_cosign(text, textlen, "mirror-eu.example/w", w1, 1700000001, &note,
                                    &e),
                     RH_OK);
    assert_int_equal(rh_note_cosign(text, textlen, "mirror-ap.example/w", w2, 1700000002, &note,
                                    &e),
                     RH_OK);
    assert_int_equal(e.code, RH_OK);

    rh_note *n = NULL;
    assert_int_equal(rh_note_parse(note.data, note.len, "cp", &n, &e), RH_OK);
    assert_int_equal(n->nsigs, 4);
    assert_int_equal(n->sigs[1].siglen, RH_NOTE_COSIG_SIG_LEN);
    rh_note_key keys[3];
    assert_int_equal(rh_note_key_from_privkey(log, "origin.rhine.example/log",
                                              RH_NOTE_TYPE_ED25519, &keys[0], NULL),
                     RH_OK);
    assert_int_equal(rh_note_key_from_privkey(w1, "mirror-eu.example/w", RH_NOTE_TYPE_COSIG_V1,
                                              &keys[1], NULL),
                     RH_OK);
    assert_int_equal(rh_note_key_from_privkey(w2, "mirror-ap.example/w", RH_NOTE_TYPE_COSIG_V1,
                                              &keys[2], NULL),
                     RH_OK);
    keys[0].required = true;
    rh_note_result res[3];
    assert_int_equal(rh_note_verify(n, keys, 3, res, "cp", &e), RH_OK);
    assert_true(res[0].ok && res[1].ok && res[2].ok);
    assert_int_equal(res[1].timestamp, 1700000001);
    assert_int_equal(res[2].timestamp, 1700000002);

    rh_checkpoint back;
    assert_int_equal(rh_checkpoint_parse(n->text, n->textlen, "cp", &back, &e), RH_OK);
    assert_string_equal(back.origin, cp.origin);
    assert_int_equal(back.size, 42);
    assert_memory_equal(back.root, cp.root, 32);
    assert_string_equal(back.extensions, "rhine-ext one\n");
    rh_checkpoint_cleanup(&back);

    /* The same public key under type 0x01 is another key: the cosignature is not its. */
    rh_note_key as_plain;
    assert_int_equal(rh_note_key_from_privkey(w1, "mirror-eu.example/w", RH_NOTE_TYPE_ED25519,
                                              &as_plain, NULL),
                     RH_OK);
    assert_int_not_equal(as_plain.id, keys[1].id);
    assert_int_equal(rh_note_verify(n, &as_plain, 1, NULL, "cp", NULL), RH_ESIG);

    /* A required key that did not sign. */
    rh_note_key req[2];
    req[0] = keys[0];
    assert_int_equal(rh_note_key_from_privkey(stranger, "mirror-us.example/w",
                                              RH_NOTE_TYPE_COSIG_V1, &req[1], NULL),
                     RH_OK);
    req[1].required = true;
    rh_error_clear(&e);
    assert_int_equal(rh_note_verify(n, req, 2, res, "cp", &e), RH_ESIG);
    assert_non_null(strstr(e.msg, "not signed by mirror-us.example/w"));
    rh_note_free(n);

    /* A cosignature whose timestamp was edited no longer verifies (it is signed). */
    rh_buf t2;
    rh_buf_init(&t2, RH_NOTE_MAX_BYTES);
    assert_int_equal(rh_buf_append(&t2, text, textlen), RH_OK);
    assert_int_equal(rh_buf_appendc(&t2, '\n'), RH_OK);
    rh_buf line;
    rh_buf_init(&line, 4096);
    assert_int_equal(rh_note_cosign(text, textlen, "mirror-eu.example/w", w1, 5, &line, &e),
                     RH_OK);
    /* "— name " then base64(id(4) || ts(8) || sig): the ts low byte is raw byte 11, inside
     * base64 characters 12..15. Re-encode with ts = 6. */
    const char *b64 = strchr((char *)line.data + 4, ' ') + 1;
    uint8_t raw[128];
    size_t rawlen;
    assert_int_equal(rh_base64_decode(b64, strlen(b64) - 1, raw, sizeof raw, &rawlen), RH_OK);
    assert_int_equal(rawlen, 4 + RH_NOTE_COSIG_SIG_LEN);
    assert_int_equal(raw[11], 5);
    raw[11] = 6;
    char enc[200];
    rh_base64_encode(raw, rawlen, enc);
    assert_int_equal(rh_buf_appendf(&t2, "\xe2\x80\x94 mirror-eu.example/w %s\n", enc), RH_OK);
    assert_int_equal(rh_note_parse(t2.data, t2.len, "cp", &n, &e), RH_OK);
    assert_int_equal(rh_note_verify(n, &keys[1], 1, NULL, "cp", NULL), RH_ESIG);
    rh_note_free(n);
    /* A timestamp above 2^63 - 1 is refused even before the signature. */
    raw[4] = 0x80;
    rh_base64_encode(raw, rawlen, enc);
    rh_buf_reset(&t2);
    assert_int_equal(rh_buf_append(&t2, text, textlen), RH_OK);
    assert_int_equal(rh_buf_appendf(&t2, "\n\xe2\x80\x94 mirror-eu.example/w %s\n", enc), RH_OK);
    assert_int_equal(rh_note_parse(t2.data, t2.len, "cp", &n, &e), RH_OK);
    assert_int_equal(rh_note_verify(n, &keys[1], 1, NULL, "cp", NULL), RH_ESIG);
    rh_note_free(n);
    assert_int_equal(rh_note_cosign(text, textlen, "w", w1, (uint64_t)1 << 63, &line, NULL),
                     RH_EINVAL);
    /* Signing refuses a text without the final newline. */
    assert_int_equal(rh_note_sign(text, textlen - 1, "x", log, &line, NULL), RH_EINVAL);

    rh_buf_cleanup(&line);
    rh_buf_cleanup(&t2);
    rh_buf_cleanup(&note);
    free(text);
    rh_checkpoint_cleanup(&cp);
    rh_privkey_free(log);
    rh_privkey_free(w1);
    rh_privkey_free(w2);
    rh_privkey_free(stranger);
}

/* ---- rejection tables --------------------------------------------------------------------- */

#define SIG "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="

static void test_note_parse_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *note;
        rh_err want;
    } t[] = {
        {"", RH_EPARSE},
        {"text\n", RH_EPARSE},                                  /* no blank line */
        {"text\n\n", RH_EPARSE},                                /* no signature lines */
        {"text\n\n" D "PeterNeumann " SIG, RH_EPARSE},          /* no final newline */
        {"text\n\n- PeterNeumann " SIG "\n", RH_EPARSE},        /* hyphen, not em dash */
        {"text\n\n" "\xe2\x80\x94" "PeterNeumann " SIG "\n", RH_EPARSE}, /* no space */
        {"text\n\n" D " PeterNeumann " SIG "\n", RH_EPARSE},    /* empty name */
        {"text\n\n" D "Peter+Neumann " SIG "\n", RH_EPARSE},    /* '+' in name */
        {"text\n\n" D "PeterNeumann\n", RH_EPARSE},             /* no signature */
        {"text\n\n" D "PeterNeumann " SIG " \n", RH_EPARSE},    /* trailing space */
        {"text\n\n" D "PeterNeumann x08go/Z\n", RH_EPARSE},     /* bad base64 */
        {"text\n\n" D "PeterNeumann AAAAAA==\n", RH_EPARSE},    /* 4 bytes: ID, no signature */
        {"text\n\n" D "PeterNeumann " SIG "\nextra\n", RH_EPARSE},
        {"te\rxt\n\n" D "PeterNeumann " SIG "\n", RH_EPARSE},   /* control character */
        {"te\txt\n\n" D "PeterNeumann " SIG "\n", RH_EPARSE},
        {"te\xffxt\n\n" D "PeterNeumann " SIG "\n", RH_EPARSE}, /* invalid UTF-8 */
        {"te\xc0\xafxt\n\n" D "PeterNeumann " SIG "\n", RH_EPARSE}, /* overlong */
        {"te\xed\xa0\x80xt\n\n" D "PeterNeumann " SIG "\n", RH_EPARSE}, /* surrogate */
        {"text\n\n" D "Peter\xc2\xa0Neumann " SIG "\n", RH_EPARSE}, /* NBSP in name */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rh_note *n = (rh_note *)0x1;
        rh_error e;
        rh_error_clear(&e);
        rh_err rc = rh_note_parse((const uint8_t *)t[i].note, strlen(t[i].note), "cp.txt", &n, &e);
        if (rc != t[i].want)
            fail_msg("case %zu: got %s want %s", i, rh_err_name(rc), rh_err_name(t[i].want));
        assert_ptr_equal(n, (rh_note *)0x1);
        assert_non_null(strstr(e.msg, "cp.txt"));
    }
    /* A text with blank lines inside: it ends at the last blank line. */
    rh_note *n = parse_ok("a\n\nb\n\n" D "PeterNeumann " SIG "\n");
    assert_int_equal(n->textlen, 5);
    assert_memory_equal(n->text, "a\n\nb\n", 5);
    rh_note_free(n);

    /* At most RH_NOTE_MAX_SIGS signature lines; at least 16 accepted (signed-note). */
    rh_buf b;
    rh_buf_init(&b, RH_NOTE_MAX_BYTES * 2);
    assert_int_equal(rh_buf_appendf(&b, "%s", "text\n\n"), RH_OK);
    for (int i = 0; i < RH_NOTE_MAX_SIGS; i++)
        assert_int_equal(rh_buf_appendf(&b, D "w%d " SIG "\n", i), RH_OK);
    n = NULL;
    assert_int_equal(rh_note_parse(b.data, b.len, "t", &n, NULL), RH_OK);
    assert_int_equal(n->nsigs, RH_NOTE_MAX_SIGS);
    assert_string_equal(n->sigs[99].name, "w99");
    rh_note_free(n);
    assert_int_equal(rh_buf_appendf(&b, D "w100 " SIG "\n"), RH_OK);
    n = NULL;
    assert_int_equal(rh_note_parse(b.data, b.len, "t", &n, NULL), RH_ETOOBIG);
    assert_null(n);
    /* The whole note is bounded. */
    rh_buf_reset(&b);
    for (size_t i = 0; i < RH_NOTE_MAX_BYTES; i += 8)
        assert_int_equal(rh_buf_append(&b, "abcdefg\n", 8), RH_OK);
    assert_int_equal(rh_buf_appendf(&b, "\n" D "PeterNeumann " SIG "\n"), RH_OK);
    assert_int_equal(rh_note_parse(b.data, b.len, "t", &n, NULL), RH_ETOOBIG);
    rh_buf_cleanup(&b);

    /* Two lines of the same known key: the first verified, the second is skipped. A first line
     * that fails rejects the note even when a later one would verify. */
    rh_note_key k = vkey(PETER_VKEY);
    n = parse_ok(PETER_TEXT "\n" PETER_SIGLINE PETER_SIGLINE);
    assert_int_equal(rh_note_verify(n, &k, 1, NULL, "t", NULL), RH_OK);
    rh_note_free(n);
    n = parse_ok(PETER_TEXT "\n" D "PeterNeumann "
                            "x08go/ZJkvBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
                            "pRZb6KE6RyyBwJnAM=\n" PETER_SIGLINE);
    assert_int_equal(n->sigs[0].siglen, 64);
    assert_int_equal(rh_note_verify(n, &k, 1, NULL, "t", NULL), RH_ESIG);
    rh_note_free(n);
    /* A known key's line with a signature of the wrong length fails too. */
    n = parse_ok(PETER_TEXT "\n" D "PeterNeumann x08gowAA\n");
    assert_int_equal(rh_note_verify(n, &k, 1, NULL, "t", NULL), RH_ESIG);
    rh_note_free(n);
}

static void test_checkpoint_parse_table(void **state)
{
    (void)state;
    static const char *const good[] = {
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "example.com/log 42\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next1\next 2\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        rh_checkpoint c;
        rh_error e;
        rh_error_clear(&e);
        if (rh_checkpoint_parse((const uint8_t *)good[i], strlen(good[i]), "cp", &c, &e) != RH_OK)
            fail_msg("good %zu: %s", i, e.msg);
        rh_buf b;
        rh_buf_init(&b, 4096);
        assert_int_equal(rh_checkpoint_format(&c, &b), RH_OK);
        assert_string_equal((char *)b.data, good[i]);
        rh_buf_cleanup(&b);
        rh_checkpoint_cleanup(&c);
    }
    static const char *const bad[] = {
        "",
        "o\n0\n",                                                           /* no root */
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",             /* no final newline */
        "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",            /* empty origin */
        "o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",          /* leading zero */
        "o\n00\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n+1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n1 \n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "o\n\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",             /* empty size */
        "o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", /* 2^64 */
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n",           /* spare bits */
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n",           /* 31 bytes */
        "o\n1\nZG9uJ3QgY2FyZSAy\n",                                       /* 12 bytes */
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",            /* unpadded */
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\next\n",    /* empty extension */
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next",        /* unterminated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_checkpoint c;
        memset(&c, 0x5a, sizeof c);
        rh_error e;
        rh_error_clear(&e);
        if (rh_checkpoint_parse((const uint8_t *)bad[i], strlen(bad[i]), "cp", &c, &e) !=
            RH_EPARSE)
            fail_msg("accepted checkpoint %zu", i);
        assert_int_equal((uint8_t)c.origin[0], 0x5a);
        assert_non_null(strstr(e.msg, "cp"));
    }
    /* Formatting refuses what would not parse back. */
    rh_checkpoint c;
    memset(&c, 0, sizeof c);
    rh_buf b;
    rh_buf_init(&b, 4096);
    assert_int_equal(rh_checkpoint_format(&c, &b), RH_EINVAL); /* empty origin */
    snprintf(c.origin, sizeof c.origin, "a\nb");
    assert_int_equal(rh_checkpoint_format(&c, &b), RH_EINVAL);
    snprintf(c.origin, sizeof c.origin, "o");
    c.extensions = (char *)"x\n\ny\n";
    assert_int_equal(rh_checkpoint_format(&c, &b), RH_EINVAL);
    c.extensions = (char *)"x";
    assert_int_equal(rh_checkpoint_format(&c, &b), RH_EINVAL);
    c.extensions = NULL;
    assert_int_equal(b.len, 0);
    rh_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_key_ids_and_vkeys),
        cmocka_unit_test(test_peter_neumann),
        cmocka_unit_test(test_real_checkpoint),
        cmocka_unit_test(test_cosig_message),
        cmocka_unit_test(test_sign_cosign_verify),
        cmocka_unit_test(test_note_parse_rejects),
        cmocka_unit_test(test_checkpoint_parse_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
