/* tpath.c -- target-path checks, role-name percent-encoding, strict URL percent-decoding. */
#include "manifest/tpath.h"

#include <stdint.h>
#include <string.h>

#include "manifest/hash.h"

#define MSG_PATH_MAX 160 /* escaped bytes of a path shown in a message */

char *rh_escape_for_msg(const char *path, size_t len, char *out, size_t outcap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (outcap == 0)
        return out;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)path[i];
        char tmp[4];
        size_t n;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            n = 1;
        } else {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[c >> 4];
            tmp[3] = hex[c & 15];
            n = 4;
        }
        /* Keep room for "..." and the NUL. */
        if (o + n + 4 > outcap) {
            if (outcap >= 4) {
                if (o > outcap - 4)
                    o = outcap - 4;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o < outcap ? o : outcap - 1] = '\0';
    return out;
}

/* Length of the valid UTF-8 sequence at p[0..n), or 0 when invalid (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

static rh_err path_fail(rh_error *e, const char *path, size_t len, const char *why)
{
    char shown[MSG_PATH_MAX];
    rh_escape_for_msg(path, len, shown, sizeof shown);
    return rh_fail(e, RH_EPATH, "target path \"%s\": %s", shown, why);
}

rh_err rh_tpath_check(const char *path, size_t len, rh_error *e)
{
    if (path == NULL || len == 0)
        return rh_fail(e, RH_EPATH, "target path \"\": empty");
    if (len > RH_MAX_TARGET_PATH) {
        char shown[MSG_PATH_MAX];
        rh_escape_for_msg(path, len, shown, sizeof shown);
        return rh_fail(e, RH_EPATH, "target path \"%s\": longer than %d bytes", shown,
                       RH_MAX_TARGET_PATH);
    }
    if (path[0] == '/')
        return path_fail(e, path, len, "absolute path");
    const uint8_t *p = (const uint8_t *)path;
    size_t seg = 0; /* start of the current segment */
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            size_t sl = i - seg;
            if (sl == 0)
                return path_fail(e, path, len, "empty segment");
            if ((sl == 1 && p[seg] == '.') || (sl == 2 && p[seg] == '.' && p[seg + 1] == '.'))
                return path_fail(e, path, len, "\".\" or \"..\" segment");
            seg = i + 1;
            continue;
        }
        if (p[i] == 0)
            return path_fail(e, path, len, "NUL byte");
        if (p[i] < 0x20 || p[i] == 0x7f)
            return path_fail(e, path, len, "control character");
        if (p[i] == '\\')
            return path_fail(e, path, len, "backslash");
        if (p[i] >= 0x80) {
            size_t n = utf8_len(p + i, len - i);
            if (n == 0)
                return path_fail(e, path, len, "invalid UTF-8");
            i += n - 1;
        }
    }
    return RH_OK;
}

static int unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

rh_err rh_role_filename(const char *role, char *out, size_t outlen)
{
    if (role == NULL)
        return RH_EINVAL;
    size_t len = strlen(role);
    if (len == 0 || strcmp(role, ".") == 0 || strcmp(role, "..") == 0 ||
        len > RH_MAX_ROLE_NAME)
        return RH_EPATH;
    if (out == NULL)
        return RH_EINVAL;
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 1;
    for (size_t i = 0; i < len; i++)
        need += unreserved((uint8_t)role[i]) ? 1 : 3;
    if (need > outlen)
        return RH_EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)role[i];
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return RH_OK;
}


rh_err rh_url_decode(const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
{
    if (in == NULL && inlen > 0)
        return RH_EPARSE;
    /* Decode into out only after a first pass has proved the input valid and the size. */
    size_t n = 0;
    for (size_t i = 0; i < inlen; i++, n++) {
        if (in[i] == '\0')
            return RH_EPARSE;
        if (in[i] == '%') {
            if (inlen - i < 3)
                return RH_EPARSE;
            int hi = rh_hex_digit(in[i + 1]), lo = rh_hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return RH_EPARSE;
            i += 2;
        }
    }
    if (out == NULL || n + 1 > outcap)
        return RH_ETOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        if (in[i] == '%') {
            out[o++] = (char)(rh_hex_digit(in[i + 1]) << 4 | rh_hex_digit(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return RH_OK;
}
