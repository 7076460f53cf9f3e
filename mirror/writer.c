/* writer.c -- see writer.h. */
#define _GNU_SOURCE /* O_DIRECT, sync_file_range(2) */
#include "mirror/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OP_WRITE, OP_CLOSE, OP_MARK };

typedef struct op {
    int kind;
    int fd;
    uint8_t *buf; /* OP_WRITE */
    size_t len;
    uint64_t off;
    const char *name;
    bool *reached; /* OP_MARK: set (under the lane's lock) when the lane gets to it */
    bool writeback; /* OP_CLOSE: start the writeback first */
    bool copied;    /* OP_WRITE: buf is the writer's own copy, freed after */
} op;

typedef struct lane {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t work; /* an op queued, or stop */
    pthread_cond_t room; /* an op taken off the queue, or a mark reached */
    op *q;               /* ring of depth ops */
    size_t head, n;
    bool stop;
    rh_writer_stats st;  /* this lane's bytes (its thread only) */
    struct rh_writer *w;
} lane;

struct rh_writer {
    lane *lanes;
    size_t nlanes; /* lanes whose thread runs; 0: every op inline */
    size_t depth;
    rh_writer_release_fn release;
    void *ctx;
    rh_writer_stats inline_st;
    atomic_bool failed;
    pthread_mutex_t mu; /* msg */
    char msg[512];
};

/* Write p[0..n) at off. Direct while the descriptor has O_DIRECT and the piece is aligned; the
 * rest, and anything the file system will not take direct (EINVAL), through the page cache.
 * Returns 0 or an errno value. */
static int write_at(int fd, const uint8_t *p, size_t n, uint64_t off, rh_writer_stats *st)
{
    int fl = fcntl(fd, F_GETFL);
    bool direct = fl >= 0 && (fl & O_DIRECT) != 0;
    while (n > 0) {
        size_t k = n;
        if (direct) {
            bool aligned = off % RH_WRITER_ALIGN == 0 && (uintptr_t)p % RH_WRITER_ALIGN == 0;
            k = aligned ? n - n % RH_WRITER_ALIGN : 0;
        }
        ssize_t r = k > 0 ? pwrite(fd, p, k, (off_t)off) : -1;
        if (r < 0 && k > 0 && errno == EINTR)
            continue;
        if (r < 0 && (k == 0 || (direct && errno == EINVAL))) {
            /* An unaligned tail, or no direct I/O on this file system: the rest goes through
             * the page cache. */
            if (fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0)
                return errno;
            direct = false;
            continue;
        }
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO;
        if (direct)
            st->direct += (uint64_t)r;
        else
            st->buffered += (uint64_t)r;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static void fail(rh_writer *w, const char *name, int err)
{
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->failed)) {
        snprintf(w->msg, sizeof w->msg, "staging file %.300s: write: %s",
                 name != NULL ? name : "(unnamed)", strerror(err));
        atomic_store(&w->failed, true);
    }
    pthread_mutex_unlock(&w->mu);
}

static void run_op(rh_writer *w, const op *o, rh_writer_stats *st)
{
    switch (o->kind) {
    case OP_WRITE:
        if (!atomic_load(&w->failed)) {
            int err = write_at(o->fd, o->buf, o->len, o->off, st);
            if (err != 0)
                fail(w, o->name, err);
        }
        if (o->copied)
            free(o->buf);
        else if (w->release != NULL)
            w->release(w->ctx, o->buf);
        break;
    case OP_CLOSE:
        /* A hint: its errors are the later syncfs's to report. */
        if (o->writeback)
            (void)sync_file_range(o->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        close(o->fd);
        break;
    default:
        break;
    }
}

static void *lane_main(void *arg)
{
    lane *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->n == 0 && !l->stop)
            pthread_cond_wait(&l->work, &l->mu);
        if (l->n == 0)
            break; /* stopped and drained */
        op o = l->q[l->head];
        l->head = (l->head + 1) % l->w->depth;
        l->n--;
        if (o.kind == OP_MARK) {
            *o.reached = true; /* every op before it is done: they ran in order, one by one */
        } else {
            pthread_mutex_unlock(&l->mu);
            run_op(l->w, &o, &l->st);
            pthread_mutex_lock(&l->mu);
        }
        pthread_cond_broadcast(&l->room);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Queue o on its descriptor's lane, waiting for room; inline without lanes. */
static void put(rh_writer *w, op o)
{
    if (w->nlanes == 0) {
        if (o.kind == OP_MARK)
            *o.reached = true;
        else
            run_op(w, &o, &w->inline_st);
        return;
    }
    lane *l = &w->lanes[(size_t)o.fd % w->nlanes];
    pthread_mutex_lock(&l->mu);
    while (l->n == w->depth)
        pthread_cond_wait(&l->room, &l->mu);
    l->q[(l->head + l->n) % w->depth] = o;
    if (++l->n == 1) /* the thread may be waiting: otherwise it looks again before it waits */
        pthread_cond_signal(&l->work);
    if (o.kind == OP_MARK)
        while (!*o.reached)
            pthread_cond_wait(&l->room, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

static void lane_destroy(lane *l)
{
    pthread_cond_destroy(&l->room);
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->mu);
    free(l->q);
}

rh_writer *rh_writer_new(size_t lanes, size_t depth, rh_writer_release_fn release, void *ctx)
{
    rh_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return NULL;
    }
    atomic_init(&w->failed, false);
    w->release = release;
    w->ctx = ctx;
    w->depth = depth > 0 ? depth : 1;
    if (lanes > 0 && (w->lanes = calloc(lanes, sizeof *w->lanes)) == NULL)
        lanes = 0;
    /* Lanes whose thread will not start are dropped: fewer lanes, or none (inline). */
    for (size_t i = 0; i < lanes; i++) {
        lane *l = &w->lanes[w->nlanes];
        l->w = w;
        if ((l->q = calloc(w->depth, sizeof *l->q)) == NULL)
            break;
        if (pthread_mutex_init(&l->mu, NULL) != 0) {
            free(l->q);
            break;
        }
        if (pthread_cond_init(&l->work, NULL) != 0) {
            pthread_mutex_destroy(&l->mu);
            free(l->q);
            break;
        }
        if (pthread_cond_init(&l->room, NULL) != 0) {
            pthread_cond_destroy(&l->work);
            pthread_mutex_destroy(&l->mu);
            free(l->q);
            break;
        }
        if (pthread_create(&l->th, NULL, lane_main, l) != 0) {
            lane_destroy(l);
            break;
        }
        w->nlanes++;
    }
    return w;
}

void rh_writer_write(rh_writer *w, int fd, uint8_t *buf, size_t len, uint64_t off,
                     const char *name)
{
    put(w, (op){.kind = OP_WRITE, .fd = fd, .buf = buf, .len = len, .off = off, .name = name});
}

bool rh_writer_write_copy(rh_writer *w, int fd, const uint8_t *p, size_t len, uint64_t off,
                          const char *name)
{
    uint8_t *c = malloc(len > 0 ? len : 1);
    if (c == NULL)
        return false;
    memcpy(c, p, len);
    put(w, (op){.kind = OP_WRITE, .fd = fd, .buf = c, .len = len, .off = off, .name = name,
                .copied = true});
    return true;
}

void rh_writer_close(rh_writer *w, int fd, bool writeback)
{
    if (fd >= 0)
        put(w, (op){.kind = OP_CLOSE, .fd = fd, .writeback = writeback});
}

void rh_writer_wait(rh_writer *w, int fd)
{
    bool reached = false;
    if (fd >= 0)
        put(w, (op){.kind = OP_MARK, .fd = fd, .reached = &reached});
}

bool rh_writer_failed(rh_writer *w)
{
    return atomic_load(&w->failed);
}

bool rh_writer_free(rh_writer *w, rh_writer_stats *stats, char *msg, size_t cap)
{
    if (w == NULL)
        return false;
    rh_writer_stats sum = w->inline_st;
    for (size_t i = 0; i < w->nlanes; i++) {
        lane *l = &w->lanes[i];
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->th, NULL);
        sum.direct += l->st.direct;
        sum.buffered += l->st.buffered;
        lane_destroy(l);
    }
    if (stats != NULL) {
        stats->direct += sum.direct;
        stats->buffered += sum.buffered;
    }
    bool failed = atomic_load(&w->failed);
    if (msg != NULL && cap > 0)
        snprintf(msg, cap, "%s", failed ? w->msg : "");
    free(w->lanes);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return failed;
}
