/* push.c -- POST new timestamps to the mirrors from one worker thread (merged, never dropped). */
#include "origin/push.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct target {
    char *name, *url;
} target;

struct rh_pusher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint8_t *pending; /* latest queued timestamp, NULL when none */
    size_t pending_len;
    target *mirrors;
    size_t n;
    char *ca;
};

static size_t discard(char *p, size_t sz, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return sz * n;
}

/* One POST; returns the HTTP status, or 0 with curl's reason in err. */
static long post(const rh_pusher *p, const target *t, const uint8_t *body, size_t n, char *err)
{
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(err, CURL_ERROR_SIZE, "out of memory");
        return 0;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    err[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, RH_PUSH_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, RH_PUSH_TOTAL_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (p->ca != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, p->ca);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else if (err[0] == '\0')
        snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return status;
}

/* Waits up to ms for stop; true when stopping. Called with mu held. */
static bool wait_stop(rh_pusher *p, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!p->stop && p->pending == NULL)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0)
            break;
    return p->stop;
}

static void *run(void *arg)
{
    rh_pusher *p = arg;
    char err[CURL_ERROR_SIZE];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->pending == NULL)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        uint8_t *body = p->pending;
        size_t n = p->pending_len;
        p->pending = NULL;
        bool *done = calloc(p->n ? p->n : 1, sizeof *done);
        for (int attempt = 0; done != NULL && attempt <= RH_PUSH_RETRIES && !p->stop; attempt++) {
            if (attempt > 0 && (wait_stop(p, 1000) || p->pending != NULL))
                break; /* stopping, or newer bytes supersede this round */
            size_t left = 0;
            for (size_t i = 0; i < p->n; i++) {
                if (done[i])
                    continue;
                pthread_mutex_unlock(&p->mu);
                long status = post(p, &p->mirrors[i], body, n, err);
                pthread_mutex_lock(&p->mu);
                if (status >= 200 && status < 300) {
                    done[i] = true;
                    fprintf(stderr, "rhine-origin: pushed timestamp to %s (%s): HTTP %ld\n",
                            p->mirrors[i].name, p->mirrors[i].url, status);
                } else {
                    left++;
                    if (status != 0)
                        snprintf(err, sizeof err, "HTTP %ld", status);
                    fprintf(stderr, "rhine-origin: push to %s (%s) failed: %s\n",
                            p->mirrors[i].name, p->mirrors[i].url, err);
                }
            }
            if (left == 0)
                break;
        }
        free(done);
        free(body);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

rh_err rh_pusher_new(const rh_origin_mirror *mirrors, size_t n, const char *ca, rh_pusher **out,
                     rh_error *e)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rh_fail(e, RH_ENET, "push: libcurl initialisation failed");
    rh_pusher *p = calloc(1, sizeof *p);
    if (p == NULL)
        return rh_fail(e, RH_ENOMEM, "push: out of memory");
    p->mirrors = calloc(n ? n : 1, sizeof *p->mirrors);
    p->n = n;
    if (p->mirrors == NULL || (ca != NULL && (p->ca = strdup(ca)) == NULL))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(mirrors[i].url) + sizeof "/push";
        p->mirrors[i].name = strdup(mirrors[i].name);
        p->mirrors[i].url = malloc(len);
        if (p->mirrors[i].name == NULL || p->mirrors[i].url == NULL)
            goto oom;
        snprintf(p->mirrors[i].url, len, "%s/push", mirrors[i].url);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        p->stop = true; /* no thread to join */
        rh_pusher_free(p);
        return rh_fail(e, RH_EIO, "push: cannot start the push thread");
    }
    *out = p;
    return RH_OK;
oom:
    p->stop = true;
    for (size_t i = 0; p->mirrors != NULL && i < n; i++) {
        free(p->mirrors[i].name);
        free(p->mirrors[i].url);
    }
    free(p->mirrors);
    free(p->ca);
    free(p);
    return rh_fail(e, RH_ENOMEM, "push: out of memory");
}

rh_err rh_pusher_send(rh_pusher *p, const uint8_t *ts, size_t n)
{
    uint8_t *copy = malloc(n + 1);
    if (copy == NULL)
        return RH_ENOMEM;
    memcpy(copy, ts, n);
    copy[n] = 0;
    pthread_mutex_lock(&p->mu);
    free(p->pending);
    p->pending = copy;
    p->pending_len = n;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return RH_OK;
}

void rh_pusher_free(rh_pusher *p)
{
    if (p == NULL)
        return;
    if (!p->stop) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    for (size_t i = 0; i < p->n; i++) {
        free(p->mirrors[i].name);
        free(p->mirrors[i].url);
    }
    free(p->mirrors);
    free(p->pending);
    free(p->ca);
    free(p);
}
