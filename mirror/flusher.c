/* flusher.c -- see flusher.h. */
#define _GNU_SOURCE /* sync_file_range(2) */
#include "mirror/flusher.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define RH_FLUSHER_BATCH 32

struct rh_flusher {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *q; /* ring of descriptors */
    size_t cap, head, n;
    bool stop;
};

static void flush_one(int fd)
{
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    close(fd);
}

static void *run(void *arg)
{
    rh_flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->n == 0 && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->n == 0)
            break; /* stopped and drained */
        int fd = f->q[f->head];
        f->head = (f->head + 1) % f->cap;
        f->n--;
        pthread_mutex_unlock(&f->mu);
        flush_one(fd);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

rh_flusher *rh_flusher_new(size_t cap)
{
    if (cap == 0)
        return NULL;
    rh_flusher *f = calloc(1, sizeof *f);
    if (f == NULL || (f->q = calloc(cap, sizeof *f->q)) == NULL) {
        free(f);
        return NULL;
    }
    f->cap = cap;
    if (pthread_mutex_init(&f->mu, NULL) != 0)
        goto fail_q;
    if (pthread_cond_init(&f->cv, NULL) != 0)
        goto fail_mu;
    if (pthread_create(&f->th, NULL, run, f) != 0)
        goto fail_cv;
    return f;
fail_cv:
    pthread_cond_destroy(&f->cv);
fail_mu:
    pthread_mutex_destroy(&f->mu);
fail_q:
    free(f->q);
    free(f);
    return NULL;
}

void rh_flusher_put(rh_flusher *f, int fd)
{
    if (fd < 0)
        return;
    if (f != NULL) {
        pthread_mutex_lock(&f->mu);
        if (f->n < f->cap) {
            f->q[(f->head + f->n) % f->cap] = fd;
            f->n++;
            /* Woken for a batch, not for every file: each wake-up preempts the caller. */
            if (f->n >= RH_FLUSHER_BATCH || f->n == f->cap)
                pthread_cond_signal(&f->cv);
            pthread_mutex_unlock(&f->mu);
            return;
        }
        pthread_mutex_unlock(&f->mu);
    }
    flush_one(fd);
}

void rh_flusher_free(rh_flusher *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->q);
    free(f);
}
