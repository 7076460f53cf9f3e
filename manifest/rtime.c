/* rtime.c -- the one timestamp format of TUF metadata, "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
#include <string.h>
#include <time.h>

#include "manifest/metadata.h"

/* The range the format can express: 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define RT_MIN (-62167219200LL)
#define RT_MAX 253402300799LL

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : mdays[m - 1];
}

rh_err rh_time_parse(const char *s, int64_t *out)
{
    if (s == NULL || out == NULL)
        return RH_EINVAL;
    /* TUF 4.2 (expires): exactly YYYY-MM-DDTHH:MM:SSZ, as python-tuf's strptime format. */
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return RH_EPARSE;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
        sec > 59)
        return RH_EPARSE;
    if (d > days_in_month(y, mo))
        return RH_EPARSE;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* Every input here is in range; -1 is also the valid 1969-12-31T23:59:59Z. */
    if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31 && h == 23 && mi == 59 && sec == 59))
        return RH_EPARSE;
    *out = (int64_t)t;
    return RH_OK;
}

/* n decimal digits of v (0 <= v < 10^n), zero-padded. */
static void put(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void rh_time_format(int64_t t, char out[21])
{
    if (t < RT_MIN)
        t = RT_MIN;
    if (t > RT_MAX)
        t = RT_MAX;
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL) {
        memcpy(out, "0000-01-01T00:00:00Z", 21);
        return;
    }
    put(out, tm.tm_year + 1900, 4);
    out[4] = '-';
    put(out + 5, tm.tm_mon + 1, 2);
    out[7] = '-';
    put(out + 8, tm.tm_mday, 2);
    out[10] = 'T';
    put(out + 11, tm.tm_hour, 2);
    out[13] = ':';
    put(out + 14, tm.tm_min, 2);
    out[16] = ':';
    put(out + 17, tm.tm_sec, 2);
    out[19] = 'Z';
    out[20] = '\0';
}
