/* failover.c -- mirror ordering by priority, health and latency (pure, no I/O). */
#include "client/failover.h"

/* Is a to be tried before b? Configuration order (the indices) breaks ties. */
static bool before(const rh_mirror_health *a, size_t ia, const rh_mirror_health *b, size_t ib)
{
    if (a->priority != b->priority)
        return a->priority < b->priority;
    if (a->failures != b->failures)
        return a->failures < b->failures;
    bool am = a->latency_s >= 0, bm = b->latency_s >= 0;
    if (am != bm)
        return am;
    if (am && a->latency_s != b->latency_s)
        return a->latency_s < b->latency_s;
    return ia < ib;
}

size_t rh_failover_order(const rh_mirror_health *m, size_t n, size_t *order)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].bad)
            continue;
        /* Insertion sort: n is small (RH_CONFIG_MAX_LIST at most) and it is stable. */
        size_t j = k;
        while (j > 0 && before(&m[i], i, &m[order[j - 1]], order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        k++;
    }
    return k;
}

void rh_failover_ok(rh_mirror_health *h, double latency_s)
{
    h->failures = 0;
    if (latency_s < 0)
        return;
    if (h->latency_s < 0)
        h->latency_s = latency_s;
    else
        h->latency_s = RH_FAILOVER_EWMA_NEW * latency_s + (1 - RH_FAILOVER_EWMA_NEW) * h->latency_s;
}

void rh_failover_failed(rh_mirror_health *h)
{
    if (h->failures < 1000000u)
        h->failures++;
}

void rh_failover_lied(rh_mirror_health *h)
{
    h->bad = true;
    rh_failover_failed(h);
}
