/* outpool.c -- reusable output chunks handed to libevent by reference (no copy, no page faults). */
#include "server/outpool.h"

#include <stdbool.h>
#include <stdlib.h>

#include <event2/buffer.h>

typedef struct chunk {
    rh_outpool *pool;
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

rh_err rh_outpool_hand(struct evbuffer *out, uint8_t *data, size_t len)
{
    if (evbuffer_add_reference(out, data, len, on_written, data) != 0) {
        rh_outpool_put(data);
        return RH_ENOMEM;
    }
    return RH_OK;
}
