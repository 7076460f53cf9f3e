/* test_hash.c -- SHA-256/512 known answers (FIPS 180-2 examples), streaming, strict hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/hash.h"

/* FIPS 180-2 appendix examples ("abc", the 448-bit message) and the empty string; the expected
 * values were also checked with `printf '<msg>' | openssl dgst -sha256|-sha512`. */
#define MSG448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

static const struct {
    rh_hash_alg alg;
    const char *msg;
    const char *hex;
} kat[] = {
    {RH_SHA256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {RH_SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {RH_SHA256, MSG448, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {RH_SHA512, "abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    {RH_SHA512, "",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
    {RH_SHA512, MSG448,
     "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
     "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445"},
};

static void test_known_answers(void **state)
{
    (void)state;
    assert_int_equal(rh_hash_len(RH_SHA256), 32);
    assert_int_equal(rh_hash_len(RH_SHA512), 64);
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint8_t out[RH_SHA512_LEN];
        char hex[2 * RH_SHA512_LEN + 1];
        size_t n = rh_hash_len(kat[i].alg);
        /* one-shot */
        assert_int_equal(rh_hash_once(kat[i].alg, kat[i].msg, strlen(kat[i].msg), out), RH_OK);
        rh_hex_encode(out, n, hex);
        assert_string_equal(hex, kat[i].hex);
        /* streaming, byte by byte */
        rh_hash *h = rh_hash_new(kat[i].alg);
        assert_non_null(h);
        for (size_t j = 0; j < strlen(kat[i].msg); j++)
            assert_int_equal(rh_hash_update(h, kat[i].msg + j, 1), RH_OK);
        memset(out, 0, sizeof out);
        assert_int_equal(rh_hash_final(h, out), RH_OK);
        rh_hex_encode(out, n, hex);
        assert_string_equal(hex, kat[i].hex);
        /* reset and reuse */
        assert_int_equal(rh_hash_reset(h), RH_OK);
        assert_int_equal(rh_hash_update(h, kat[i].msg, strlen(kat[i].msg)), RH_OK);
        assert_int_equal(rh_hash_final(h, out), RH_OK);
        rh_hex_encode(out, n, hex);
        assert_string_equal(hex, kat[i].hex);
        rh_hash_free(h);
    }
    /* NULL with length 0 is the empty message. */
    uint8_t out[RH_SHA256_LEN];
    char hex[2 * RH_SHA256_LEN + 1];
    assert_int_equal(rh_hash_once(RH_SHA256, NULL, 0, out), RH_OK);
    rh_hex_encode(out, sizeof out, hex);
    assert_string_equal(hex, kat[1].hex);
    assert_int_equal(rh_hash_once(RH_SHA256, NULL, 3, out), RH_EINVAL);
    assert_null(rh_hash_new((rh_hash_alg)7));
    rh_hash_free(NULL);
}

/* Uneven chunks across block boundaries hash like one call (1 MiB + 13 bytes of pattern). */
static void test_streaming_chunks(void **state)
{
    (void)state;
    const size_t len = 1024 * 1024 + 13;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) { /* xorshift32 */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (uint8_t)x;
    }
    static const size_t chunks[] = {1, 63, 64, 65, 127, 128, 129, 1000, 4096, 65537, 3};
    for (int a = 0; a < 2; a++) {
        rh_hash_alg alg = a == 0 ? RH_SHA256 : RH_SHA512;
        uint8_t once[RH_SHA512_LEN], streamed[RH_SHA512_LEN];
        assert_int_equal(rh_hash_once(alg, data, len, once), RH_OK);
        rh_hash *h = rh_hash_new(alg);
        assert_non_null(h);
        size_t off = 0, c = 0;
        while (off < len) {
            size_t n = chunks[c++ % (sizeof chunks / sizeof chunks[0])];
            if (n > len - off)
                n = len - off;
            assert_int_equal(rh_hash_update(h, data + off, n), RH_OK);
            assert_int_equal(rh_hash_update(h, data + off, 0), RH_OK); /* no-op */
            off += n;
        }
        assert_int_equal(rh_hash_final(h, streamed), RH_OK);
        assert_memory_equal(once, streamed, rh_hash_len(alg));
        assert_true(rh_ct_equal(once, streamed, rh_hash_len(alg)));
        streamed[rh_hash_len(alg) - 1] ^= 1;
        assert_false(rh_ct_equal(once, streamed, rh_hash_len(alg)));
        rh_hash_free(h);
    }
    free(data);
}

static void test_hex_encode(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof b + 1];
    rh_hex_encode(b, sizeof b, out);
    assert_string_equal(out, "00017f80abff");
    rh_hex_encode(b, 0, out);
    assert_string_equal(out, "");
}

/* Strict decoding: exactly 2*outlen hex digits, either case; anything else RH_EPARSE and the
 * output untouched. */
static void test_hex_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t outlen;
        rh_err want;
        const char *bytes;
    } t[] = {
        {"00017f80abff", 6, RH_OK, "\x00\x01\x7f\x80\xab\xff"},
        {"00017F80ABFF", 6, RH_OK, "\x00\x01\x7f\x80\xab\xff"},
        {"aBcD", 2, RH_OK, "\xab\xcd"},
        {"", 0, RH_OK, ""},
        {"00", 0, RH_EPARSE, NULL},        /* too long for outlen 0 */
        {"abc", 2, RH_EPARSE, NULL},       /* odd length, too short */
        {"abcde", 2, RH_EPARSE, NULL},     /* one digit too many */
        {"abcdef", 2, RH_EPARSE, NULL},    /* two digits too many */
        {"ab", 2, RH_EPARSE, NULL},        /* too short */
        {"", 1, RH_EPARSE, NULL},          /* empty */
        {"abcg", 2, RH_EPARSE, NULL},      /* non-hex digit */
        {"ab c", 2, RH_EPARSE, NULL},      /* space inside */
        {" abc", 2, RH_EPARSE, NULL},      /* leading space */
        {"abcd ", 2, RH_EPARSE, NULL},     /* trailing space */
        {"abcd\n", 2, RH_EPARSE, NULL},    /* trailing newline */
        {"0xab", 2, RH_EPARSE, NULL},      /* 0x prefix */
        {"+a-b", 2, RH_EPARSE, NULL},      /* signs */
        {"ab\xc3\xa9", 2, RH_EPARSE, NULL}, /* UTF-8 */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t out[8];
        memset(out, 0xee, sizeof out);
        rh_err rc = rh_hex_decode(t[i].in, out, t[i].outlen);
        if (rc != t[i].want)
            fail_msg("case %zu \"%s\": got %d want %d", i, t[i].in, rc, t[i].want);
        if (rc == RH_OK) {
            assert_memory_equal(out, t[i].bytes, t[i].outlen);
        } else {
            for (size_t j = 0; j < sizeof out; j++)
                assert_int_equal(out[j], 0xee); /* untouched on failure */
        }
    }
    /* A 64-digit sha256 hex decodes; a 63-digit one does not. */
    uint8_t d[32];
    assert_int_equal(rh_hex_decode(kat[0].hex, d, 32), RH_OK);
    char h[65];
    rh_hex_encode(d, 32, h);
    assert_string_equal(h, kat[0].hex);
    memcpy(h, kat[0].hex, 63);
    h[63] = '\0';
    assert_int_equal(rh_hex_decode(h, d, 32), RH_EPARSE);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(rh_ct_equal("abc", "abc", 3));
    assert_false(rh_ct_equal("abc", "abd", 3));
    assert_false(rh_ct_equal("xbc", "abc", 3));
    assert_true(rh_ct_equal("x", "y", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),     cmocka_unit_test(test_streaming_chunks),
        cmocka_unit_test(test_hex_encode),        cmocka_unit_test(test_hex_decode_table),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
