/* config.c -- schema-driven YAML config loader: libyaml events -> small node tree -> typed
 * structs, each error pointing at FILE:LINE:COL and the key path. */
#include "manifest/config.h"
#include "manifest/note.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "manifest/limits.h"
#include "manifest/tpath.h"

#define NO_OFF ((size_t)-1)
#define SHOWN_MAX 72 /* escaped bytes of a bad value quoted in a message */

/* ---- the node tree --------------------------------------------------------------------- */

typedef enum nkind { N_SCALAR, N_SEQ, N_MAP } nkind;

typedef struct node {
    nkind kind;
    size_t line, col;   /* 1-based */
    char *s;            /* scalar text, NUL-terminated (may hold NULs: see len) */
    size_t len;
    bool null;          /* plain "", "~", "null" */
    struct node **kids; /* sequence items; mapping key, value, key, value, ... */
    size_t nkids, cap;
} node;

typedef struct cfgctx {
    const char *name; /* file name for messages */
    char *dir;        /* directory anchoring relative paths; NULL = leave them */
    rh_error *e;
    char path[256];   /* key path of the value being decoded */
    size_t plen;
    size_t nnodes;
} cfgctx;

static void node_free(node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->s);
    free(n);
}

static rh_err node_attach(node *parent, node *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node **k = realloc(parent->kids, cap * sizeof *k);
        if (k == NULL)
            return RH_ENOMEM;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return RH_OK;
}

/* "NAME:LINE:COL: PATH: reason" (PATH left out when empty). Always RH_ECONFIG. */
static rh_err at(cfgctx *c, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rh_err at(cfgctx *c, size_t line, size_t col, const char *fmt, ...)
{
    char msg[RH_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rh_fail(c->e, RH_ECONFIG, "%s:%zu:%zu: %s%s%s", c->name, line, col, c->path,
                   c->plen > 0 ? ": " : "", msg);
}

static size_t path_push_key(cfgctx *c, const char *k, size_t klen)
{
    size_t old = c->plen;
    char shown[SHOWN_MAX];
    rh_escape_for_msg(k, klen, shown, sizeof shown);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", old > 0 ? "." : "", shown);
    c->plen = strlen(c->path);
    return old;
}

static size_t path_push_idx(cfgctx *c, size_t i)
{
    size_t old = c->plen;
    snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
    c->plen = strlen(c->path);
    return old;
}

static void path_pop(cfgctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* Line and column (1-based) of byte offset off, for reader errors that carry only an offset. */
static void offset_pos(const char *data, size_t len, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, co = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            l++;
            co = 1;
        } else {
            co++;
        }
    }
    *line = l;
    *col = co;
}

static rh_err syntax_error(cfgctx *c, const yaml_parser_t *p, const char *data, size_t len)
{
    const char *problem = p->problem != NULL ? p->problem : "YAML error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
    case YAML_READER_ERROR: {
        size_t line, col;
        offset_pos(data, len, p->problem_offset, &line, &col);
        return at(c, line, col, "%s", problem);
    }
    default:
        if (p->context != NULL)
            return at(c, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s (%s at %zu:%zu)",
                      problem, p->context, p->context_mark.line + 1, p->context_mark.column + 1);
        return at(c, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s", problem);
    }
}

/* Turn the event stream of one document into a tree. Aliases and a second document are
 * rejected; depth and node count are bounded. */
static rh_err build_tree(cfgctx *c, const char *data, size_t len, node **out)
{
    yaml_parser_t p;
    yaml_event_t ev;
    node *stack[RH_CONFIG_MAX_DEPTH];
    size_t depth = 0;
    node *root = NULL;
    int ndocs = 0;
    rh_err rc = RH_OK;
    if (!yaml_parser_initialize(&p))
        return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(c, &p, data, len);
            goto out;
        }
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        node *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1)
                rc = at(c, line, col, "only one YAML document allowed");
            break;
        case YAML_ALIAS_EVENT:
            rc = at(c, line, col, "aliases are not supported");
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++c->nnodes > RH_CONFIG_MAX_NODES) {
                rc = at(c, line, col, "more than %d YAML nodes", RH_CONFIG_MAX_NODES);
                break;
            }
            n = calloc(1, sizeof *n);
            if (n == NULL) {
                rc = rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
                break;
            }
            n->line = line;
            n->col = col;
            if (depth == 0) {
                root = n;
            } else if (node_attach(stack[depth - 1], n) != RH_OK) {
                node_free(n);
                rc = rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
                break;
            }
            if (ev.type == YAML_SCALAR_EVENT) {
                n->kind = N_SCALAR;
                n->len = ev.data.scalar.length;
                n->s = malloc(n->len + 1);
                if (n->s == NULL) {
                    rc = rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
                    break;
                }
                memcpy(n->s, ev.data.scalar.value, n->len);
                n->s[n->len] = '\0';
                n->null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                          (n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
                           strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0);
            } else {
                n->kind = ev.type == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ;
                if (depth == RH_CONFIG_MAX_DEPTH) {
                    rc = at(c, line, col, "nested deeper than %d levels", RH_CONFIG_MAX_DEPTH);
                    break;
                }
                stack[depth++] = n;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc != RH_OK)
            goto out;
    }
    if (root == NULL) {
        rc = at(c, 1, 1, "empty config, expected a mapping");
        goto out;
    }
    *out = root;
    root = NULL;
out:
    node_free(root);
    yaml_parser_delete(&p);
    return rc;
}

/* Value node of key k in mapping m, or NULL. */
static const node *map_get(const node *m, const char *k)
{
    if (m == NULL || m->kind != N_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < m->nkids; i += 2)
        if (m->kids[i]->kind == N_SCALAR && strcmp(m->kids[i]->s, k) == 0)
            return m->kids[i + 1];
    return NULL;
}

/* ---- durations and sizes --------------------------------------------------------------- */

/* Decimal digits only, at least one, no sign; RH_EPARSE on overflow of UINT64. */
static rh_err parse_digits(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return RH_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RH_EPARSE;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return RH_EPARSE;
        v = v * 10 + d;
    }
    *out = v;
    return RH_OK;
}

static size_t digits_len(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

rh_err rh_parse_duration(const char *s, int64_t *out)
{
    if (s == NULL)
        return RH_EPARSE;
    size_t n = digits_len(s);
    uint64_t v, mul;
    if (parse_digits(s, n, &v) != RH_OK)
        return RH_EPARSE;
    const char *u = s + n;
    if (strcmp(u, "") == 0 || strcmp(u, "s") == 0)
        mul = 1;
    else if (strcmp(u, "m") == 0)
        mul = 60;
    else if (strcmp(u, "h") == 0)
        mul = 3600;
    else if (strcmp(u, "d") == 0)
        mul = 86400;
    else
        return RH_EPARSE;
    if (v > (uint64_t)INT64_MAX / mul)
        return RH_EPARSE;
    *out = (int64_t)(v * mul);
    return RH_OK;
}

rh_err rh_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},          {"B", 1},           {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
        {"GiB", 1ull << 30}, {"TiB", 1ull << 40}, {"KB", 1000},       {"MB", 1000000},
        {"GB", 1000000000}, {"TB", 1000000000000ull},
    };
    if (s == NULL)
        return RH_EPARSE;
    size_t n = digits_len(s);
    uint64_t v;
    if (parse_digits(s, n, &v) != RH_OK)
        return RH_EPARSE;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + n, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return RH_EPARSE;
            *out = v * units[i].mul;
            return RH_OK;
        }
    }
    return RH_EPARSE;
}

/* Optional '-', then digits; int64 range. */
static rh_err parse_int(const char *s, int64_t *out)
{
    bool neg = s[0] == '-';
    const char *d = s + (neg ? 1 : 0);
    uint64_t v;
    if (parse_digits(d, strlen(d), &v) != RH_OK)
        return RH_EPARSE;
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return RH_EPARSE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return RH_OK;
}

/* ---- the schema ------------------------------------------------------------------------ */

typedef enum ftype {
    F_STR,     /* char *, non-empty */
    F_PATH,    /* char *, anchored at the config's directory */
    F_URL,     /* char *, http:// or https:// */
    F_ADDR,    /* char *, host:port */
    F_INT,     /* int64_t in min..max */
    F_BOOL,    /* bool */
    F_DUR,     /* int64_t seconds in min..max */
    F_SIZE,    /* uint64_t bytes in min..max */
    F_LIST,    /* char ** of `item` scalars, count at aux_off, min..max entries */
    F_MAP,     /* embedded struct of `sub`; bool "present" at aux_off unless NO_OFF */
    F_MAPLIST, /* array of `sub` structs, count at aux_off, min..max entries */
} ftype;

typedef struct schema schema;

typedef struct field {
    const char *name;
    ftype type;
    size_t off;
    bool required;
    int64_t min, max; /* range of the value or of the entry count */
    int64_t dflt;     /* default of F_INT/F_BOOL/F_DUR/F_SIZE */
    ftype item;       /* F_LIST */
    const schema *sub;
    size_t aux_off;
} field;

struct schema {
    const field *f;
    size_t n;
    size_t size; /* sizeof the struct (elements of F_MAPLIST) */
};

static void free_fields(const schema *s, void *base)
{
    for (size_t i = 0; i < s->n; i++) {
        const field *f = &s->f[i];
        char *p = (char *)base + f->off;
        switch (f->type) {
        case F_STR:
        case F_PATH:
        case F_URL:
        case F_ADDR:
            free(*(char **)p);
            *(char **)p = NULL;
            break;
        case F_LIST: {
            char **v = *(char ***)p;
            size_t n = *(size_t *)((char *)base + f->aux_off);
            for (size_t k = 0; v != NULL && k < n; k++)
                free(v[k]);
            free(v);
            *(char ***)p = NULL;
            *(size_t *)((char *)base + f->aux_off) = 0;
            break;
        }
        case F_MAPLIST: {
            char *v = *(char **)p;
            size_t n = *(size_t *)((char *)base + f->aux_off);
            for (size_t k = 0; v != NULL && k < n; k++)
                free_fields(f->sub, v + k * f->sub->size);
            free(v);
            *(char **)p = NULL;
            *(size_t *)((char *)base + f->aux_off) = 0;
            break;
        }
        case F_MAP:
            free_fields(f->sub, p);
            break;
        default:
            break;
        }
    }
}

static void apply_defaults(const schema *s, void *base)
{
    for (size_t i = 0; i < s->n; i++) {
        const field *f = &s->f[i];
        char *p = (char *)base + f->off;
        switch (f->type) {
        case F_INT:
        case F_DUR:
            *(int64_t *)p = f->dflt;
            break;
        case F_SIZE:
            *(uint64_t *)p = (uint64_t)f->dflt;
            break;
        case F_BOOL:
            *(bool *)p = f->dflt != 0;
            break;
        case F_MAP:
            apply_defaults(f->sub, p);
            break;
        default:
            break;
        }
    }
}

/* Bytes as the largest binary unit that divides them exactly ("4GiB", "1000"). */
static const char *fmt_size(uint64_t v, char *buf, size_t cap)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t mul = 1ull << (10 * (4 - i));
        if (v != 0 && v % mul == 0) {
            snprintf(buf, cap, "%llu%s", (unsigned long long)(v / mul), units[i]);
            return buf;
        }
    }
    snprintf(buf, cap, "%llu", (unsigned long long)v);
    return buf;
}

/* What a field expects, for "expected X, got Y". */
static void expectation(const field *f, ftype t, char *buf, size_t cap)
{
    switch (t) {
    case F_STR:
        snprintf(buf, cap, "a non-empty string");
        break;
    case F_PATH:
        snprintf(buf, cap, "a non-empty path");
        break;
    case F_URL:
        snprintf(buf, cap, "an http:// or https:// URL");
        break;
    case F_ADDR:
        snprintf(buf, cap, "host:port with port 0..65535");
        break;
    case F_INT:
        snprintf(buf, cap, "an integer in %lld..%lld", (long long)f->min, (long long)f->max);
        break;
    case F_BOOL:
        snprintf(buf, cap, "true or false");
        break;
    case F_DUR:
        snprintf(buf, cap, "%lld..%lld seconds", (long long)f->min, (long long)f->max);
        break;
    case F_SIZE: {
        char lo[24], hi[24];
        snprintf(buf, cap, "a size in %s..%s", fmt_size((uint64_t)f->min, lo, sizeof lo),
                 fmt_size((uint64_t)f->max, hi, sizeof hi));
        break;
    }
    case F_LIST:
        snprintf(buf, cap, "a list");
        break;
    case F_MAP:
    case F_MAPLIST:
        snprintf(buf, cap, t == F_MAP ? "a mapping" : "a list of mappings");
        break;
    }
}

static rh_err type_err(cfgctx *c, const node *n, const field *f, ftype t)
{
    char want[96], got[SHOWN_MAX + 2];
    expectation(f, t, want, sizeof want);
    if (n->kind == N_MAP) {
        snprintf(got, sizeof got, "a mapping");
    } else if (n->kind == N_SEQ) {
        snprintf(got, sizeof got, "a list");
    } else if (n->null) {
        snprintf(got, sizeof got, "null");
    } else {
        char shown[SHOWN_MAX];
        rh_escape_for_msg(n->s, n->len, shown, sizeof shown);
        snprintf(got, sizeof got, "\"%s\"", shown);
    }
    return at(c, n->line, n->col, "expected %s, got %s", want, got);
}

static bool valid_url(const char *s)
{
    size_t skip;
    if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else
        return false;
    if (s[skip] == '\0' || s[skip] == '/')
        return false; /* no host */
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool valid_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return false;
    if (s[0] == '[') {
        if (colon[-1] != ']' || colon - s < 3)
            return false;
    } else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        return false; /* a bare IPv6 address needs brackets */
    }
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)colon; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '/')
            return false;
    uint64_t port;
    size_t n = strlen(colon + 1);
    return n > 0 && n <= 5 && parse_digits(colon + 1, n, &port) == RH_OK && port <= 65535;
}

/* Join a relative path to the config's directory. */
static char *anchor_path(cfgctx *c, const char *s)
{
    if (c->dir == NULL || s[0] == '/')
        return strdup(s);
    size_t dl = strlen(c->dir), sl = strlen(s);
    char *p = malloc(dl + 1 + sl + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, c->dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, s, sl + 1);
    return p;
}

/* Decode scalar node n as type t into dst. */
static rh_err decode_scalar(cfgctx *c, const node *n, const field *f, ftype t, void *dst)
{
    if (n->kind != N_SCALAR || n->null)
        return type_err(c, n, f, t);
    if (memchr(n->s, '\0', n->len) != NULL)
        return at(c, n->line, n->col, "value contains a NUL byte");
    switch (t) {
    case F_STR:
    case F_PATH:
    case F_URL:
    case F_ADDR: {
        if (n->len == 0 || (t == F_URL && !valid_url(n->s)) || (t == F_ADDR && !valid_addr(n->s)))
            return type_err(c, n, f, t);
        char *v = t == F_PATH ? anchor_path(c, n->s) : strdup(n->s);
        if (v == NULL)
            return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
        if (t == F_URL) {
            size_t l = strlen(v);
            while (l > 0 && v[l - 1] == '/')
                v[--l] = '\0';
        }
        memcpy(dst, &v, sizeof v);
        return RH_OK;
    }
    case F_INT:
    case F_DUR: {
        int64_t v;
        rh_err rc = t == F_INT ? parse_int(n->s, &v) : rh_parse_duration(n->s, &v);
        if (rc != RH_OK || v < f->min || v > f->max)
            return type_err(c, n, f, t);
        memcpy(dst, &v, sizeof v);
        return RH_OK;
    }
    case F_SIZE: {
        uint64_t v;
        if (rh_parse_size(n->s, &v) != RH_OK || v < (uint64_t)f->min || v > (uint64_t)f->max)
            return type_err(c, n, f, t);
        memcpy(dst, &v, sizeof v);
        return RH_OK;
    }
    case F_BOOL: {
        bool v;
        if (strcmp(n->s, "true") == 0)
            v = true;
        else if (strcmp(n->s, "false") == 0)
            v = false;
        else
            return type_err(c, n, f, t);
        memcpy(dst, &v, sizeof v);
        return RH_OK;
    }
    default:
        return type_err(c, n, f, t);
    }
}

static rh_err load_map(cfgctx *c, const node *m, const schema *s, void *base);

static rh_err check_count(cfgctx *c, const node *n, const field *f)
{
    if ((int64_t)n->nkids < f->min || (int64_t)n->nkids > f->max)
        return at(c, n->line, n->col, "expected %lld..%lld entries, got %zu", (long long)f->min,
                  (long long)f->max, n->nkids);
    return RH_OK;
}

static rh_err decode_field(cfgctx *c, const node *n, const field *f, void *base)
{
    char *dst = (char *)base + f->off;
    rh_err rc = RH_OK;
    switch (f->type) {
    case F_LIST: {
        if (n->kind != N_SEQ)
            return type_err(c, n, f, F_LIST);
        if ((rc = check_count(c, n, f)) != RH_OK)
            return rc;
        char **v = calloc(n->nkids ? n->nkids : 1, sizeof *v);
        if (v == NULL)
            return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
        *(char ***)dst = v;
        size_t *count = (size_t *)((char *)base + f->aux_off);
        for (size_t i = 0; i < n->nkids && rc == RH_OK; i++) {
            size_t old = path_push_idx(c, i);
            rc = decode_scalar(c, n->kids[i], f, f->item, &v[i]);
            path_pop(c, old);
            if (rc == RH_OK)
                *count = i + 1;
        }
        return rc;
    }
    case F_MAPLIST: {
        if (n->kind != N_SEQ)
            return type_err(c, n, f, F_MAPLIST);
        if ((rc = check_count(c, n, f)) != RH_OK)
            return rc;
        char *v = calloc(n->nkids ? n->nkids : 1, f->sub->size);
        if (v == NULL)
            return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
        *(char **)dst = v;
        size_t *count = (size_t *)((char *)base + f->aux_off);
        *count = n->nkids; /* every element is zeroed, so cleanup is safe at any point */
        for (size_t i = 0; i < n->nkids && rc == RH_OK; i++) {
            size_t old = path_push_idx(c, i);
            if (n->kids[i]->kind != N_MAP)
                rc = type_err(c, n->kids[i], f, F_MAP);
            else
                rc = load_map(c, n->kids[i], f->sub, v + i * f->sub->size);
            path_pop(c, old);
        }
        return rc;
    }
    case F_MAP:
        if (n->kind != N_MAP)
            return type_err(c, n, f, F_MAP);
        if (f->aux_off != NO_OFF)
            *(bool *)((char *)base + f->aux_off) = true;
        return load_map(c, n, f->sub, dst);
    default:
        return decode_scalar(c, n, f, f->type, dst);
    }
}

/* Decode mapping m into base per schema s: unknown and duplicate keys are errors, missing
 * required keys are reported at the mapping, absent optional keys get their defaults. */
static rh_err load_map(cfgctx *c, const node *m, const schema *s, void *base)
{
    const node *seen[32] = {0};
    if (s->n > sizeof seen / sizeof seen[0])
        return rh_fail(c->e, RH_EINVAL, "%s: internal: schema too large", c->name);
    apply_defaults(s, base);
    for (size_t i = 0; i + 1 < m->nkids; i += 2) {
        const node *k = m->kids[i], *v = m->kids[i + 1];
        if (k->kind != N_SCALAR)
            return at(c, k->line, k->col, "keys must be plain strings");
        size_t fi = 0;
        while (fi < s->n && !(strlen(s->f[fi].name) == k->len &&
                              memcmp(s->f[fi].name, k->s, k->len) == 0))
            fi++;
        size_t old = path_push_key(c, k->s, k->len);
        rh_err rc = RH_OK;
        if (fi == s->n)
            rc = at(c, k->line, k->col, "unknown key");
        else if (seen[fi] != NULL)
            rc = at(c, k->line, k->col, "duplicate key (first at %zu:%zu)", seen[fi]->line,
                    seen[fi]->col);
        else
            rc = decode_field(c, v, &s->f[fi], base);
        path_pop(c, old);
        if (rc != RH_OK)
            return rc;
        seen[fi] = k;
    }
    for (size_t fi = 0; fi < s->n; fi++) {
        if (seen[fi] == NULL && s->f[fi].required) {
            size_t old = path_push_key(c, s->f[fi].name, strlen(s->f[fi].name));
            rh_err rc = at(c, m->line, m->col, "required key missing");
            path_pop(c, old);
            return rc;
        }
    }
    return RH_OK;
}

/* ---- the three configs ----------------------------------------------------------------- */

#define DAY 86400
#define KEY(st, nm, ty, req) {.name = #nm, .type = ty, .off = offsetof(st, nm), .required = req}
#define NUM(st, nm, ty, lo, hi, def)                                                               \
    {.name = #nm, .type = ty, .off = offsetof(st, nm), .min = lo, .max = hi, .dflt = def}
#define LIST(st, nm, it, cnt, req, lo)                                                             \
    {.name = #nm, .type = F_LIST, .off = offsetof(st, nm), .required = req, .min = lo,            \
     .max = RH_CONFIG_MAX_LIST, .item = it, .aux_off = offsetof(st, cnt)}
#define MAPLIST(st, nm, sc, cnt, req, lo)                                                          \
    {.name = #nm, .type = F_MAPLIST, .off = offsetof(st, nm), .required = req, .min = lo,         \
     .max = RH_CONFIG_MAX_LIST, .sub = &sc, .aux_off = offsetof(st, cnt)}
#define SUBMAP(st, nm, sc, has)                                                                    \
    {.name = #nm, .type = F_MAP, .off = offsetof(st, nm), .sub = &sc, .aux_off = has}
#define SCHEMA(st, arr) {arr, sizeof arr / sizeof arr[0], sizeof(st)}

/* origin */
static const field origin_mirror_f[] = {
    KEY(rh_origin_mirror, name, F_STR, true),
    KEY(rh_origin_mirror, region, F_STR, true),
    KEY(rh_origin_mirror, url, F_URL, true),
};
static const schema origin_mirror_s = SCHEMA(rh_origin_mirror, origin_mirror_f);

typedef struct origin_log {
    char *key;
    char *origin;
} origin_log;
static const field origin_log_f[] = {
    KEY(origin_log, key, F_PATH, true),
    KEY(origin_log, origin, F_STR, true),
};
static const schema origin_log_s = SCHEMA(origin_log, origin_log_f);

static const field origin_f[] = {
    KEY(rh_origin_config, repo, F_PATH, true),
    KEY(rh_origin_config, keys, F_PATH, false),
    KEY(rh_origin_config, listen, F_ADDR, false),
    KEY(rh_origin_config, listen_h2c, F_ADDR, false),
    KEY(rh_origin_config, tls_cert, F_PATH, false),
    KEY(rh_origin_config, tls_key, F_PATH, false),
    KEY(rh_origin_config, port_file, F_PATH, false),
    KEY(rh_origin_config, ca, F_PATH, false),
    NUM(rh_origin_config, timestamp_expiry, F_DUR, 60, 365 * DAY, DAY),
    NUM(rh_origin_config, refresh_interval, F_DUR, 1, 30 * DAY, 3600),
    MAPLIST(rh_origin_config, mirrors, origin_mirror_s, nmirrors, false, 0),
    SUBMAP(rh_origin_config, log, origin_log_s, offsetof(rh_origin_config, has_log)),
};
static const schema origin_s = SCHEMA(rh_origin_config, origin_f);

/* mirror */
static const field mirror_sync_f[] = {
    NUM(rh_mirror_sync, concurrency, F_INT, 1, 256, 100),
    NUM(rh_mirror_sync, poll_interval, F_DUR, 1, DAY, 60),
    NUM(rh_mirror_sync, timeout, F_DUR, 1, DAY, 300),
    NUM(rh_mirror_sync, low_speed_limit, F_SIZE, 1, 1ll << 30, 1024),
    NUM(rh_mirror_sync, low_speed_time, F_DUR, 1, 3600, 30),
    NUM(rh_mirror_sync, retries, F_INT, 0, 10, 3),
    NUM(rh_mirror_sync, grace_period, F_DUR, 0, 30 * DAY, DAY),
    NUM(rh_mirror_sync, max_target_size, F_SIZE, 1, 1ll << 40, 4ll << 30),
};
static const schema mirror_sync_s = SCHEMA(rh_mirror_sync, mirror_sync_f);

typedef struct mirror_witness {
    char *key;
    char *name;
} mirror_witness;
static const field mirror_witness_f[] = {
    KEY(mirror_witness, key, F_PATH, true),
    KEY(mirror_witness, name, F_STR, false),
};
static const schema mirror_witness_s = SCHEMA(mirror_witness, mirror_witness_f);

static const field mirror_f[] = {
    KEY(rh_mirror_config, name, F_STR, true),
    KEY(rh_mirror_config, region, F_STR, true),
    LIST(rh_mirror_config, upstreams, F_URL, nupstreams, true, 1),
    KEY(rh_mirror_config, root, F_PATH, true),
    KEY(rh_mirror_config, data, F_PATH, true),
    KEY(rh_mirror_config, listen, F_ADDR, false),
    KEY(rh_mirror_config, listen_h2c, F_ADDR, false),
    KEY(rh_mirror_config, tls_cert, F_PATH, false),
    KEY(rh_mirror_config, tls_key, F_PATH, false),
    KEY(rh_mirror_config, ca, F_PATH, false),
    KEY(rh_mirror_config, port_file, F_PATH, false),
    KEY(rh_mirror_config, log_key, F_STR, false),
    SUBMAP(rh_mirror_config, sync, mirror_sync_s, NO_OFF),
    SUBMAP(rh_mirror_config, witness, mirror_witness_s, offsetof(rh_mirror_config, has_witness)),
};
static const schema mirror_s = SCHEMA(rh_mirror_config, mirror_f);

/* client */
static const field client_mirror_f[] = {
    KEY(rh_client_mirror, url, F_URL, true),
    KEY(rh_client_mirror, region, F_STR, false),
    NUM(rh_client_mirror, priority, F_INT, 0, 1000000, 100),
};
static const schema client_mirror_s = SCHEMA(rh_client_mirror, client_mirror_f);

static const field client_witness_f[] = {
    KEY(rh_client_witness, name, F_STR, true),
    KEY(rh_client_witness, key, F_STR, true),
};
static const schema client_witness_s = SCHEMA(rh_client_witness, client_witness_f);

typedef struct client_witnesses {
    char *log_key;
    int64_t quorum;
    rh_client_witness *keys;
    size_t nkeys;
} client_witnesses;
static const field client_witnesses_f[] = {
    KEY(client_witnesses, log_key, F_STR, true),
    {.name = "quorum", .type = F_INT, .off = offsetof(client_witnesses, quorum), .required = true,
     .min = 1, .max = RH_CONFIG_MAX_LIST, .dflt = 1},
    MAPLIST(client_witnesses, keys, client_witness_s, nkeys, true, 1),
};
static const schema client_witnesses_s = SCHEMA(client_witnesses, client_witnesses_f);

static const field client_f[] = {
    KEY(rh_client_config, root, F_PATH, true),
    KEY(rh_client_config, state, F_PATH, true),
    KEY(rh_client_config, ca, F_PATH, false),
    MAPLIST(rh_client_config, mirrors, client_mirror_s, nmirrors, true, 1),
    NUM(rh_client_config, timeout, F_DUR, 1, DAY, 300),
    NUM(rh_client_config, low_speed_limit, F_SIZE, 1, 1ll << 30, 1024),
    NUM(rh_client_config, low_speed_time, F_DUR, 1, 3600, 30),
    SUBMAP(rh_client_config, witnesses, client_witnesses_s,
           offsetof(rh_client_config, has_witnesses)),
};
static const schema client_s = SCHEMA(rh_client_config, client_f);

/* The anonymous sub-structs of the public headers must match the schema structs. */
_Static_assert(sizeof(((rh_origin_config *)0)->log) == sizeof(origin_log), "log layout");
_Static_assert(sizeof(((rh_mirror_config *)0)->witness) == sizeof(mirror_witness), "witness");
_Static_assert(sizeof(((rh_client_config *)0)->witnesses) == sizeof(client_witnesses), "wit");
_Static_assert(offsetof(client_witnesses, nkeys) ==
                   offsetof(rh_client_config, witnesses.nkeys) -
                       offsetof(rh_client_config, witnesses),
               "witnesses layout");

/* ---- cross-field checks ---------------------------------------------------------------- */

static rh_err at_node(cfgctx *c, const node *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rh_err at_node(cfgctx *c, const node *n, const char *key, const char *fmt, ...)
{
    char msg[RH_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t old = path_push_key(c, key, strlen(key));
    rh_err rc = at(c, n->line, n->col, "%s", msg);
    path_pop(c, old);
    return rc;
}

/* listen needs a certificate; tls_cert and tls_key come together. */
static rh_err check_tls(cfgctx *c, const node *root, const char *listen, const char *cert,
                        const char *key)
{
    const node *nc = map_get(root, "tls_cert"), *nk = map_get(root, "tls_key");
    if ((cert == NULL) != (key == NULL))
        return cert != NULL ? at_node(c, nc, "tls_cert", "tls_key must be given too")
                            : at_node(c, nk, "tls_key", "tls_cert must be given too");
    if (listen != NULL && cert == NULL)
        return at_node(c, map_get(root, "listen"), "listen",
                       "TLS listener needs tls_cert and tls_key");
    return RH_OK;
}

static rh_err check_origin(cfgctx *c, const node *root, void *p)
{
    const rh_origin_config *o = p;
    rh_err rc = check_tls(c, root, o->listen, o->tls_cert, o->tls_key);
    if (rc != RH_OK)
        return rc;
    if (o->refresh_interval >= o->timestamp_expiry) {
        const node *n = map_get(root, "refresh_interval");
        return at_node(c, n != NULL ? n : map_get(root, "timestamp_expiry"),
                       n != NULL ? "refresh_interval" : "timestamp_expiry",
                       "refresh_interval (%lld s) must be shorter than timestamp_expiry (%lld s)",
                       (long long)o->refresh_interval, (long long)o->timestamp_expiry);
    }
    const node *ml = map_get(root, "mirrors");
    for (size_t i = 0; i < o->nmirrors; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(o->mirrors[i].name, o->mirrors[j].name) == 0) {
                size_t old = path_push_key(c, "mirrors", 7);
                path_push_idx(c, i);
                const node *nn = map_get(ml->kids[i], "name");
                rc = at_node(c, nn, "name", "duplicate mirror name (also mirrors[%zu])", j);
                path_pop(c, old);
                return rc;
            }
        }
    }
    return RH_OK;
}

/* A C2SP verifier key: inline ("name+id+base64", checked now so a typo is a config error), or
 * the path of a file holding one line (anchored at the config's directory, read when the key is
 * used: rh_config_vkey), e.g. the origin's public keys/log.pub or a witness's .pub. */
static rh_err check_vkey(cfgctx *c, const node *n, const char *key, char **slot)
{
    rh_note_key k;
    rh_error ve;
    rh_error_clear(&ve);
    if (strchr(*slot, '+') != NULL) { /* a verifier key always has two '+'; a path, none */
        if (rh_note_vkey_parse(*slot, &k, &ve) != RH_OK)
            return at_node(c, n, key, "not a verifier key \"name+id+base64\": %s", ve.msg);
        return RH_OK;
    }
    char *path = anchor_path(c, *slot);
    if (path == NULL)
        return rh_fail(c->e, RH_ENOMEM, "%s: out of memory", c->name);
    free(*slot);
    *slot = path;
    return RH_OK;
}

rh_err rh_config_vkey(const char *spec, rh_note_key *out, rh_error *e)
{
    if (strchr(spec, '+') != NULL)
        return rh_note_vkey_parse(spec, out, e);
    char line[1024];
    size_t len = 0;
    FILE *f = fopen(spec, "rb");
    if (f == NULL)
        return rh_fail(e, RH_EIO, "%s: cannot read the verifier key: %s", spec, strerror(errno));
    len = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[len] = '\0';
    line[strcspn(line, "\r\n")] = '\0'; /* the first line */
    rh_err rc = rh_note_vkey_parse(line, out, e);
    if (rc != RH_OK)
        rh_error_prefix(e, "%s", spec);
    return rc;
}

static rh_err check_mirror(cfgctx *c, const node *root, void *p)
{
    rh_mirror_config *m = p;
    rh_err rc = check_tls(c, root, m->listen, m->tls_cert, m->tls_key);
    if (rc != RH_OK)
        return rc;
    if (m->listen == NULL && m->listen_h2c == NULL)
        return at(c, root->line, root->col, "a mirror needs listen or listen_h2c");
    if (m->log_key != NULL && (rc = check_vkey(c, map_get(root, "log_key"), "log_key",
                                               &m->log_key)) != RH_OK)
        return rc;
    if (m->has_witness && m->log_key == NULL)
        return at_node(c, map_get(root, "witness"), "witness",
                       "a witness needs log_key: it cosigns only checkpoints it verified");
    return RH_OK;
}

static rh_err check_client(cfgctx *c, const node *root, void *p)
{
    rh_client_config *cl = p;
    if (cl->has_witnesses) {
        const node *w = map_get(root, "witnesses");
        size_t old = path_push_key(c, "witnesses", 9);
        rh_err rc = check_vkey(c, map_get(w, "log_key"), "log_key", &cl->witnesses.log_key);
        const node *kl = map_get(w, "keys");
        for (size_t i = 0; rc == RH_OK && i < cl->witnesses.nkeys; i++) {
            size_t o2 = path_push_key(c, "keys", 4);
            path_push_idx(c, i);
            rh_client_witness *wk = &cl->witnesses.keys[i];
            rh_note_key k;
            rc = check_vkey(c, map_get(kl->kids[i], "key"), "key", &wk->key);
            if (rc == RH_OK && strchr(wk->key, '+') != NULL &&
                rh_note_vkey_parse(wk->key, &k, NULL) == RH_OK &&
                strcmp(k.name, wk->name) != 0)
                rc = at_node(c, map_get(kl->kids[i], "name"), "name",
                             "\"%s\" is not the key's name \"%s\"", wk->name, k.name);
            path_pop(c, o2);
        }
        path_pop(c, old);
        if (rc != RH_OK)
            return rc;
    }
    if (cl->has_witnesses && (size_t)cl->witnesses.quorum > cl->witnesses.nkeys) {
        size_t old = path_push_key(c, "witnesses", 9);
        rh_err rc = at_node(c, map_get(map_get(root, "witnesses"), "quorum"), "quorum",
                            "quorum %lld exceeds the number of keys (%zu)",
                            (long long)cl->witnesses.quorum, cl->witnesses.nkeys);
        path_pop(c, old);
        return rc;
    }
    return RH_OK;
}

/* ---- entry points ---------------------------------------------------------------------- */

typedef rh_err (*check_fn)(cfgctx *c, const node *root, void *cfg);

static rh_err parse_any(const schema *s, check_fn check, const char *name, const char *data,
                        size_t len, void *out, rh_error *e)
{
    if (name == NULL)
        name = "config";
    if (data == NULL && len > 0)
        return rh_fail(e, RH_EINVAL, "%s: no data", name);
    if (len > RH_MAX_CONFIG_BYTES)
        return rh_fail(e, RH_ETOOBIG, "%s: larger than %u bytes", name, RH_MAX_CONFIG_BYTES);
    cfgctx c = {.name = name, .e = e};
    node *root = NULL;
    rh_err rc = RH_ENOMEM;
    void *tmp = calloc(1, s->size);
    if (tmp == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", name);
        goto out;
    }
    const char *slash = strrchr(name, '/');
    if (slash != NULL) {
        size_t dl = slash == name ? 1 : (size_t)(slash - name);
        c.dir = strndup(name, dl);
        if (c.dir == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", name);
            goto out;
        }
        if (strcmp(c.dir, "/") == 0)
            c.dir[0] = '\0'; /* "/x" + "/" + rel */
    }
    if ((rc = build_tree(&c, data != NULL ? data : "", len, &root)) != RH_OK)
        goto out;
    if (root->kind != N_MAP) {
        rc = at(&c, root->line, root->col, "expected a mapping at the top level");
        goto out;
    }
    if ((rc = load_map(&c, root, s, tmp)) != RH_OK)
        goto out;
    if ((rc = check(&c, root, tmp)) != RH_OK)
        goto out;
    memcpy(out, tmp, s->size);
    free(tmp);
    tmp = NULL;
out:
    if (tmp != NULL) {
        free_fields(s, tmp);
        free(tmp);
    }
    node_free(root);
    free(c.dir);
    return rc;
}

static rh_err load_any(const schema *s, check_fn check, const char *path, void *out,
                       rh_error *e)
{
    if (path == NULL)
        return rh_fail(e, RH_EINVAL, "config: no path");
    rh_err rc;
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return rh_fail(e, RH_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* Read one byte past the limit to tell "exactly at" from "over". */
    data = malloc(RH_MAX_CONFIG_BYTES + 1);
    if (data == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t len = fread(data, 1, RH_MAX_CONFIG_BYTES + 1, f);
    if (ferror(f)) {
        rc = rh_fail(e, RH_EIO, "%s: read error", path);
        goto out;
    }
    if (len > RH_MAX_CONFIG_BYTES) {
        rc = rh_fail(e, RH_ETOOBIG, "%s: larger than %u bytes", path, RH_MAX_CONFIG_BYTES);
        goto out;
    }
    rc = parse_any(s, check, path, data, len, out, e);
out:
    free(data);
    fclose(f);
    return rc;
}

rh_err rh_config_parse_origin(const char *name, const char *data, size_t len,
                              rh_origin_config *out, rh_error *e)
{
    return parse_any(&origin_s, check_origin, name, data, len, out, e);
}

rh_err rh_config_parse_mirror(const char *name, const char *data, size_t len,
                              rh_mirror_config *out, rh_error *e)
{
    return parse_any(&mirror_s, check_mirror, name, data, len, out, e);
}

rh_err rh_config_parse_client(const char *name, const char *data, size_t len,
                              rh_client_config *out, rh_error *e)
{
    return parse_any(&client_s, check_client, name, data, len, out, e);
}

rh_err rh_config_load_origin(const char *path, rh_origin_config *out, rh_error *e)
{
    return load_any(&origin_s, check_origin, path, out, e);
}

rh_err rh_config_load_mirror(const char *path, rh_mirror_config *out, rh_error *e)
{
    return load_any(&mirror_s, check_mirror, path, out, e);
}

rh_err rh_config_load_client(const char *path, rh_client_config *out, rh_error *e)
{
    return load_any(&client_s, check_client, path, out, e);
}

void rh_origin_config_cleanup(rh_origin_config *c)
{
    if (c == NULL)
        return;
    free_fields(&origin_s, c);
    memset(c, 0, sizeof *c);
}

void rh_mirror_config_cleanup(rh_mirror_config *c)
{
    if (c == NULL)
        return;
    free_fields(&mirror_s, c);
    memset(c, 0, sizeof *c);
}

void rh_client_config_cleanup(rh_client_config *c)
{
    if (c == NULL)
        return;
    free_fields(&client_s, c);
    memset(c, 0, sizeof *c);
}
