/* outpool.c -- reusable output chunks handed to libevent by reference (no copy, no page faults). */
#include "server/outpool.h"

#include <stdbool.h>
#include <stdlib.h>

#include <event2/buffer.h>

struct rh_outacct {
    size_t chunks; /* handed and not yet returned */
    size_t refs;   /* the connection, and each of those chunks */
};

typedef struct chunk {
    rh_outpool *pool;
    rh_outacct *acct;            /* while handed over with one */
    struct chunk *next;          /* free list */
    _Alignas(16) uint8_t data[RH_OUTPOOL_CHUNK];
} chunk;

struct rh_outpool {
    chunk *free_list;
    size_t nfree, keep;
    size_t live;                 /* chunks handed out and not yet returned */
    bool closed;                 /* rh_outpool_free called: the last returned chunk frees us */
};

static chunk *of_data(uint8_t *data)
{
    return (chunk *)(void *)(data - offsetof(chunk, data));
}

rh_outpool *rh_outpool_new(size_t keep)
{
    rh_outpool *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->keep = keep;
    return p;
}

static void drain_free_list(rh_outpool *p)
{
    while (p->free_list != NULL) {
        chunk *c = p->free_list;
        p->free_list = c->next;
        free(c);
    }
    p->nfree = 0;
}

void rh_outpool_free(rh_outpool *p)
{
    if (p == NULL)
        return;
    drain_free_list(p);
    if (p->live == 0)
        free(p);
    else
        p->closed = true;
}

uint8_t *rh_outpool_get(rh_outpool *p)
{
    chunk *c = p->free_list;
    if (c != NULL) {
        p->free_list = c->next;
        p->nfree--;
    } else if ((c = malloc(sizeof(*c))) == NULL) {
        return NULL;
    }
    c->pool = p;
    c->acct = NULL;
    c->next = NULL;
    p->live++;
    return c->data;
}

void rh_outpool_put(uint8_t *data)
{
    chunk *c;
    rh_outpool *p;

    if (data == NULL)
        return;
    c = of_data(data);
    if (c->acct != NULL) {
        c->acct->chunks--;
        rh_outacct_release(c->acct);
        c->acct = NULL;
    }
    p = c->pool;
    p->live--;
    if (p->closed) {
        free(c);
        if (p->live == 0)
            free(p);
        return;
    }
    if (p->nfree >= p->keep) {
        free(c);
        return;
    }
    c->next = p->free_list;
    p->free_list = c;
    p->nfree++;
}

static void on_written(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    rh_outpool_put(extra);
}

size_t rh_outpool_live(const rh_outpool *p)
{
    return p->live;
}

rh_outacct *rh_outacct_new(void)
{
    rh_outacct *a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->refs = 1;
    return a;
}

size_t rh_outacct_chunks(const rh_outacct *a)
{
    return a != NULL ? a->chunks : 0;
}

void rh_outacct_release(rh_outacct *a)
{
    if (a != NULL && --a->refs == 0)
        free(a);
}

rh_err rh_outpool_hand(struct evbuffer *out, uint8_t *data, size_t len, rh_outacct *acct)
{
    if (acct != NULL) { /* counted now; rh_outpool_put uncounts it, also on failure below */
        of_data(data)->acct = acct;
        acct->chunks++;
        acct->refs++;
    }
    if (evbuffer_add_reference(out, data, len, on_written, data) != 0) {
        rh_outpool_put(data);
        return RH_ENOMEM;
    }
    return RH_OK;
}
