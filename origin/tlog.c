/* tlog.c -- the origin's transparency log writer: entries, C2SP tiles, signed checkpoint. */
#include "origin/tlog.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest/hash.h"
#include "manifest/json.h"
#include "manifest/keys.h"
#include "manifest/metadata.h"
#include "manifest/note.h"
#include "manifest/tpath.h"
#include "origin/origin_plan.h"
#include "origin/origin_repo.h"
#include "origin/repo_fs.h"

#define TIME_MAX_SECS 253402300799LL /* 9999-12-31T23:59:59Z */

/* Record inner's message under another code (a parse failure that means a broken log). */
static rh_err relabel(rh_error *e, rh_err code, const rh_error *inner)
{
    return rh_fail(e, code, "%s", inner->msg);
}

/* ---- entries --------------------------------------------------------------------------------*/

static bool role_ok(const char *role)
{
    char fn[RH_ROLE_FILENAME_MAX];
    if (strcmp(role, "timestamp") == 0 || rh_role_filename(role, fn, sizeof fn) != RH_OK)
        return false;
    for (const unsigned char *p = (const unsigned char *)role; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool is_targets_role(const char *role)
{
    return strcmp(role, "root") != 0 && strcmp(role, "snapshot") != 0 &&
           strcmp(role, "timestamp") != 0;
}

static bool rev_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RH_TLOG_MAX_SOURCE_REV)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static json_t *entry_json(const rh_tlog_entry *en)
{
    char hex[65];
    rh_hex_encode(en->sha256, 32, hex);
    json_t *o = json_pack("{s:s,s:I,s:I,s:s}", "role", en->role, "version",
                          (json_int_t)en->version, "length", (json_int_t)en->length, "sha256", hex);
    if (o == NULL)
        return NULL;
    if (en->has_source_rev || en->has_recipe) {
        json_t *p = json_object();
        if (p == NULL || json_object_set_new(o, "provenance", p) != 0)
            goto bad;
        if (en->has_source_rev &&
            json_object_set_new(p, "source_rev", json_string(en->source_rev)) != 0)
            goto bad;
        if (en->has_recipe) {
            rh_hex_encode(en->build_recipe_sha256, 32, hex);
            if (json_object_set_new(p, "build_recipe_sha256", json_string(hex)) != 0)
                goto bad;
        }
    }
    if (en->has_time) {
        char t[21];
        rh_time_format(en->time, t);
        if (json_object_set_new(o, "time", json_string(t)) != 0)
            goto bad;
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

rh_err rh_tlog_entry_build(const rh_tlog_entry *en, rh_buf *out, rh_error *e)
{
    if (en == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "log entry: no entry");
    if (!role_ok(en->role))
        return rh_fail(e, RH_EINVAL, "log entry: role \"%.64s\" cannot be logged", en->role);
    if (en->version == 0 || en->version > (uint64_t)INT64_MAX || en->length > (uint64_t)INT64_MAX)
        return rh_fail(e, RH_EINVAL, "log entry %s: version or length out of range", en->role);
    if ((en->has_source_rev || en->has_recipe) && !is_targets_role(en->role))
        return rh_fail(e, RH_EINVAL, "log entry %s: provenance belongs to targets roles only",
                       en->role);
    if (en->has_source_rev && !rev_ok(en->source_rev))
        return rh_fail(e, RH_EINVAL, "log entry %s: source revision must be 1..%d bytes of text",
                       en->role, RH_TLOG_MAX_SOURCE_REV);
    if (en->has_time && (en->time < 0 || en->time > TIME_MAX_SECS))
        return rh_fail(e, RH_EINVAL, "log entry %s: time out of range", en->role);
    json_t *o = entry_json(en);
    if (o == NULL) /* jansson refuses invalid UTF-8 */
        return rh_fail(e, RH_EINVAL, "log entry %s: role or source revision is not UTF-8",
                       en->role);
    size_t before = out->len;
    rh_err rc = rh_cjson_encode(o, out, e);
    json_decref(o);
    if (rc == RH_OK && out->len - before > RH_TLOG_MAX_ENTRY) {
        out->len = before;
        rc = rh_fail(e, RH_EINVAL, "log entry %s: more than %d bytes", en->role,
                     RH_TLOG_MAX_ENTRY);
    }
    return rc;
}

static bool get_hex32(const json_t *o, const char *k, uint8_t out[32])
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL && strlen(s) == 64 && rh_hex_decode(s, out, 32) == RH_OK;
}

/* ---- keys -----------------------------------------------------------------------------------*/

rh_err rh_tlog_vkey(const char *key_path, const char *origin, rh_buf *out, rh_error *e)
{
    rh_privkey *k = NULL;
    rh_note_key nk;
    rh_err rc = rh_privkey_load(key_path, &k, e);
    if (rc == RH_OK && (rc = rh_note_key_from_privkey(k, origin, RH_NOTE_TYPE_ED25519, &nk, e)) ==
                           RH_OK &&
        (rc = rh_note_vkey_format(&nk, out)) != RH_OK)
        rh_fail(e, rc, "%s: cannot format the verifier key", key_path);
    rh_privkey_free(k);
    return rc;
}

rh_err rh_tlog_keygen(const char *keys_dir, const char *origin, rh_buf *vkey, rh_error *e)
{
    rh_privkey *k = NULL;
    rh_note_key nk;
    rh_buf v;
    rh_buf_init(&v, 4096);
    char *online = rh_path_join(keys_dir, RH_ORIGIN_KEYS_ONLINE);
    char *path = online ? rh_path_join(online, RH_TLOG_KEY_FILE) : NULL;
    char *pub = rh_path_join(keys_dir, RH_TLOG_PUB_FILE);
    rh_err rc;
    struct stat st;
    if (path == NULL || pub == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", keys_dir);
        goto out;
    }
    if (lstat(path, &st) == 0 || lstat(pub, &st) == 0) {
        rc = rh_fail(e, RH_EIO, "%s: a log key exists already (keys are never replaced)", path);
        goto out;
    }
    if ((rc = rh_privkey_generate(&k, e)) != RH_OK ||
        (rc = rh_note_key_from_privkey(k, origin, RH_NOTE_TYPE_ED25519, &nk, e)) != RH_OK)
        goto out;
    if ((rc = rh_note_vkey_format(&nk, &v)) != RH_OK) {
        rh_fail(e, rc, "%s: cannot format the verifier key", path);
        goto out;
    }
    if ((rc = rh_fs_mkdir(online, 0700, e)) != RH_OK ||
        (rc = rh_privkey_save(k, path, e)) != RH_OK)
        goto out;
    if ((rc = rh_buf_appendc(&v, '\n')) != RH_OK) {
        rh_fail(e, rc, "%s: out of memory", pub);
        goto out;
    }
    if ((rc = rh_file_write_atomic(keys_dir, RH_TLOG_PUB_FILE, v.data, v.len, false, 0644, e)) !=
        RH_OK)
        goto out;
    if (vkey != NULL && (rc = rh_buf_append(vkey, v.data, v.len - 1)) != RH_OK)
        rh_fail(e, rc, "%s: out of memory", pub);
out:
    rh_privkey_free(k);
    rh_buf_cleanup(&v);
    free(online);
    free(path);
    free(pub);
    return rc;
}

/* ---- the log --------------------------------------------------------------------------------*/

typedef struct hashes {
    uint8_t (*h)[32];
    uint64_t n, cap;
} hashes;

typedef struct logged {
    char *role;
    uint64_t version;
    uint8_t sha[32];
} logged;

struct rh_tlog {
    char *logdir;
    char origin[RH_CHECKPOINT_MAX_ORIGIN + 1];
    rh_privkey *key;
    rh_note_key nkey;
    rh_merkle_tree tree;
    uint64_t committed;
    bool have_checkpoint;
    hashes lv[RH_TLOG_TILE_LEVELS]; /* every node at Merkle level 8L: the tiles' contents */
    rh_buf tail;                    /* entries [tail_start, size), each uint16 length + bytes */
    uint64_t tail_start;
    logged *ents; /* in log order */
    size_t nents, capents;
    size_t *slots; /* open addressing over ents: index + 1, 0 = empty */
    size_t nslots;
};

uint64_t rh_tlog_size(const rh_tlog *log) { return log->tree.size; }
uint64_t rh_tlog_committed(const rh_tlog *log) { return log->committed; }

void rh_tlog_close(rh_tlog *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->nents; i++)
        free(log->ents[i].role);
    free(log->ents);
    free(log->slots);
    for (int l = 0; l < RH_TLOG_TILE_LEVELS; l++)
        free(log->lv[l].h);
    rh_buf_cleanup(&log->tail);
    rh_privkey_free(log->key);
    free(log->logdir);
    free(log);
}

static uint64_t logged_hash(const char *role, uint64_t version)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)role; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (h ^ version) * 1099511628211ull;
}

/* Slot of (role, version) in the open-addressing table: its entry or an empty slot. */
static size_t logged_slot(const rh_tlog *log, const char *role, uint64_t version)
{
    size_t mask = log->nslots - 1, i = (size_t)logged_hash(role, version) & mask;
    while (log->slots[i] != 0) {
        const logged *l = &log->ents[log->slots[i] - 1];
        if (l->version == version && strcmp(l->role, role) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Room for one more entry in ents and the table (load at most 1/2). */
static rh_err logged_reserve(rh_tlog *log)
{
    if (log->nents == log->capents) {
        size_t nc = log->capents ? 2 * log->capents : 64;
        logged *p = realloc(log->ents, nc * sizeof *p);
        if (p == NULL)
            return RH_ENOMEM;
        log->ents = p;
        log->capents = nc;
    }
    if (2 * (log->nents + 1) <= log->nslots)
        return RH_OK;
    size_t ns = log->nslots ? 2 * log->nslots : 128;
    size_t *t = calloc(ns, sizeof *t);
    if (t == NULL)
        return RH_ENOMEM;
    free(log->slots);
    log->slots = t;
    log->nslots = ns;
    for (size_t i = 0; i < log->nents; i++) {
        size_t k = logged_slot(log, log->ents[i].role, log->ents[i].version);
        if (log->slots[k] == 0) /* a duplicate keeps the first one's slot */
            log->slots[k] = i + 1;
    }
    return RH_OK;
}

bool rh_tlog_find(const rh_tlog *log, const char *role, uint64_t version, uint8_t sha256[32])
{
    if (log->nslots == 0)
        return false;
    size_t i = logged_slot(log, role, version);
    if (log->slots[i] == 0)
        return false;
    if (sha256 != NULL)
        memcpy(sha256, log->ents[log->slots[i] - 1].sha, 32);
    return true;
}

static rh_err on_node(void *arg, unsigned level, uint64_t index, const uint8_t hash[32])
{
    rh_tlog *log = arg;
    if (level % RH_TILE_HEIGHT != 0 || level / RH_TILE_HEIGHT >= RH_TLOG_TILE_LEVELS)
        return RH_OK;
    hashes *h = &log->lv[level / RH_TILE_HEIGHT];
    if (index != h->n || h->n >= h->cap) /* capacity was reserved before the append */
        return RH_EINVAL;
    memcpy(h->h[h->n++], hash, 32);
    return RH_OK;
}

static rh_err reserve(hashes *h)
{
    if (h->n < h->cap)
        return RH_OK;
    uint64_t nc = h->cap ? 2 * h->cap : 256;
    void *p = realloc(h->h, (size_t)nc * 32);
    if (p == NULL)
        return RH_ENOMEM;
    h->h = p;
    h->cap = nc;
    return RH_OK;
}

rh_err rh_tlog_append(rh_tlog *log, const uint8_t *entry, size_t n, rh_error *e)
{
    rh_tlog_entry en;
    uint8_t leaf[32], sha[32];
    if (log == NULL || entry == NULL)
        return rh_fail(e, RH_EINVAL, "log: no entry");
    rh_error pe;
    rh_error_clear(&pe);
    if (rh_log_entry_parse(entry, n, "log entry", &en, &pe) != RH_OK)
        return relabel(e, RH_EINVAL, &pe);
    if (log->tree.size >= RH_TLOG_MAX_ENTRIES)
        return rh_fail(e, RH_ETOOBIG, "%s: the log is full (%llu entries)", log->logdir,
                       (unsigned long long)log->tree.size);
    rh_err rc = rh_merkle_leaf_hash(entry, n, leaf);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s: hashing failed", log->logdir);
    memcpy(sha, en.sha256, 32);
    /* Reserve everything first so that the tree append cannot half-fail. */
    for (int l = 0; l < RH_TLOG_TILE_LEVELS && rc == RH_OK; l++)
        rc = reserve(&log->lv[l]);
    if (rc == RH_OK)
        rc = logged_reserve(log);
    char *role = rc == RH_OK ? strdup(en.role) : NULL;
    size_t tl = log->tail.len;
    uint8_t pre[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    if (role == NULL || rh_buf_append(&log->tail, pre, 2) != RH_OK ||
        rh_buf_append(&log->tail, entry, n) != RH_OK) {
        free(role);
        log->tail.len = tl;
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", log->logdir);
    }
    if ((rc = rh_merkle_tree_append(&log->tree, leaf, on_node, log)) != RH_OK) {
        free(role);
        log->tail.len = tl;
        return rh_fail(e, rc, "%s: cannot append to the tree", log->logdir);
    }
    size_t at = log->nents++, k = logged_slot(log, en.role, en.version);
    log->ents[at].role = role;
    log->ents[at].version = en.version;
    memcpy(log->ents[at].sha, sha, 32);
    if (log->slots[k] == 0)
        log->slots[k] = at + 1;
    return RH_OK;
}

/* Provenance the targets file signs: "x-rhine-provenance": {"source_rev", "build_recipe":
 * {"sha256"}} (origin/origin_repo.c). Read with the lean parse, which holds no JSON tree of the
 * entries: publish logs the new targets while it still holds the old ones (a 20,000-target
 * release peaked with a third tree of them). A file that is not targets metadata (an orphan a
 * crash left) is read as plain JSON, as before. */
static rh_err provenance_of(const uint8_t *data, size_t len, const char *src, rh_tlog_entry *en,
                            rh_error *e)
{
    rh_metadata *m = NULL;
    json_t *doc = NULL;
    const json_t *sig;
    rh_err rc = RH_OK;
    if (rh_metadata_parse_lean(data, len, RH_MAX_JSON_BYTES, RH_ROLE_TARGETS, src, &m, NULL) ==
        RH_OK) {
        sig = m->signed_obj;
    } else {
        if ((rc = rh_json_parse(data, len, RH_MAX_JSON_BYTES, src, &doc, e)) != RH_OK)
            return rc;
        sig = json_object_get(doc, "signed");
    }
    const json_t *p = json_object_get(sig, RH_ORIGIN_PROVENANCE_FIELD);
    if (p != NULL) {
        const json_t *rev = json_object_get(p, "source_rev");
        const json_t *rec = json_object_get(p, "build_recipe");
        if (!json_is_object(p) || (rev != NULL && !json_is_string(rev)) ||
            (rec != NULL && !get_hex32(rec, "sha256", en->build_recipe_sha256)) ||
            (rev != NULL && json_string_length(rev) > RH_TLOG_MAX_SOURCE_REV)) {
            rc = rh_fail(e, RH_EPARSE, "%s: %s is malformed", src, RH_ORIGIN_PROVENANCE_FIELD);
        } else {
            if (rev != NULL) {
                en->has_source_rev = true;
                memcpy(en->source_rev, json_string_value(rev), json_string_length(rev) + 1);
            }
            en->has_recipe = rec != NULL;
        }
    }
    rh_metadata_free(m);
    json_decref(doc);
    return rc;
}

rh_err rh_tlog_log_metadata(rh_tlog *log, const char *role, uint64_t version,
                            const uint8_t *data, size_t len, int64_t now, bool *added,
                            rh_error *e)
{
    rh_tlog_entry en;
    memset(&en, 0, sizeof en);
    char src[RH_MAX_ROLE_NAME + 48];
    if (role == NULL || strlen(role) > RH_MAX_ROLE_NAME || data == NULL)
        return rh_fail(e, RH_EINVAL, "log: bad metadata file");
    snprintf(src, sizeof src, "%llu.%s.json", (unsigned long long)version, role);
    uint8_t old[32];
    rh_err rc = rh_hash_once(RH_SHA256, data, len, en.sha256);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s: hashing failed", src);
    if (rh_tlog_find(log, role, version, old)) {
        if (!rh_ct_equal(old, en.sha256, 32))
            return rh_fail(e, RH_ELOG, "%s: logged already with another sha256 (one version, "
                           "two files)", src);
        if (added != NULL)
            *added = false;
        return RH_OK;
    }
    memcpy(en.role, role, strlen(role) + 1);
    en.version = version;
    en.length = len;
    en.has_time = true;
    en.time = now;
    if (is_targets_role(role) && (rc = provenance_of(data, len, src, &en, e)) != RH_OK)
        return rc;
    rh_buf b;
    rh_buf_init(&b, RH_TLOG_MAX_ENTRY);
    if ((rc = rh_tlog_entry_build(&en, &b, e)) == RH_OK)
        rc = rh_tlog_append(log, b.data, b.len, e);
    rh_buf_cleanup(&b);
    if (rc == RH_OK && added != NULL)
        *added = true;
    return rc;
}

/* ---- catch-up over a metadata directory -----------------------------------------------------*/

typedef struct mdfile {
    char name[NAME_MAX + 1];
    char role[RH_MAX_ROLE_NAME + 1];
    uint64_t version;
    int cls; /* 0 root, 1 targets roles, 2 snapshot */
} mdfile;

static int mdfile_cmp(const void *a, const void *b)
{
    const mdfile *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->role, y->role);
}

/* "<version>.<role file name>.json" with the one spelling of each part; false otherwise. */
static bool parse_mdname(const char *name, mdfile *f)
{
    size_t n = strlen(name), i = 0;
    uint64_t v = 0;
    if (name[0] < '1' || name[0] > '9' || n > NAME_MAX || n < 7 ||
        strcmp(name + n - 5, ".json") != 0)
        return false;
    for (; name[i] >= '0' && name[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (name[i] != '.' || i + 1 >= n - 5)
        return false;
    size_t rl = n - 5 - (i + 1), dl;
    char dec[NAME_MAX + 1], enc[RH_ROLE_FILENAME_MAX];
    if (rh_url_decode(name + i + 1, rl, dec, sizeof dec, &dl) != RH_OK || dl != strlen(dec) ||
        dl > RH_MAX_ROLE_NAME || rh_role_filename(dec, enc, sizeof enc) != RH_OK ||
        strlen(enc) != rl || memcmp(enc, name + i + 1, rl) != 0 || !role_ok(dec))
        return false;
    memcpy(f->name, name, n + 1);
    memcpy(f->role, dec, dl + 1);
    f->version = v;
    f->cls = strcmp(dec, "root") == 0 ? 0 : strcmp(dec, "snapshot") == 0 ? 2 : 1;
    return true;
}

rh_err rh_tlog_sync_metadata(rh_tlog *log, const char *metadir, int64_t now, size_t *nadded,
                             rh_error *e)
{
    mdfile *fs = NULL;
    size_t nf = 0, cap = 0, added = 0;
    rh_buf b;
    rh_buf_init(&b, RH_MAX_JSON_BYTES);
    char *path = NULL;
    rh_err rc = RH_OK;
    DIR *d = opendir(metadir);
    if (d == NULL)
        return rh_fail(e, RH_EIO, "%s: cannot open directory: %s", metadir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        mdfile f;
        if (!parse_mdname(de->d_name, &f) || rh_tlog_find(log, f.role, f.version, NULL))
            continue;
        if (nf == cap) {
            size_t nc = cap ? 2 * cap : 16;
            mdfile *p = realloc(fs, nc * sizeof *p);
            if (p == NULL) {
                rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", metadir);
                goto out;
            }
            fs = p;
            cap = nc;
        }
        fs[nf++] = f;
    }
    if (nf > 0)
        qsort(fs, nf, sizeof *fs, mdfile_cmp);
    for (size_t i = 0; i < nf; i++) {
        bool a = false;
        free(path);
        if ((path = rh_path_join(metadir, fs[i].name)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", metadir);
            goto out;
        }
        rh_buf_reset(&b);
        if ((rc = rh_file_read(path, RH_MAX_JSON_BYTES, &b, e)) != RH_OK ||
            (rc = rh_tlog_log_metadata(log, fs[i].role, fs[i].version, b.data, b.len, now, &a,
                                       e)) != RH_OK)
            goto out;
        added += a;
    }
    if (nadded != NULL)
        *nadded = added;
out:
    closedir(d);
    free(path);
    free(fs);
    rh_buf_cleanup(&b);
    return rc;
}

/* ---- tiles on disk --------------------------------------------------------------------------*/

/* Does the tile (level, index, width) lie inside the first size leaves? */
static bool tile_covered(int level, uint64_t index, unsigned width, uint64_t size)
{
    unsigned shift = RH_TILE_HEIGHT * (unsigned)(level < 0 ? 0 : level);
    uint64_t have = shift >= 64 ? 0 : size >> shift;
    return index <= have / RH_TILE_WIDTH && index * RH_TILE_WIDTH + width <= have;
}

/* Splits logdir/<rel> into its directory (created) and file name. */
static rh_err tile_dir(const rh_tlog *log, const char *rel, char **dir, const char **name,
                       rh_error *e)
{
    char *full = rh_path_join(log->logdir, rel);
    if (full == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", log->logdir);
    char *slash = strrchr(full, '/');
    *slash = '\0';
    *name = rel + (size_t)(slash - full) - strlen(log->logdir);
    /* mkdir -p below logdir */
    for (char *p = full + strlen(log->logdir) + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            rh_err rc = rh_fs_mkdir(full, 0755, e);
            *p = c;
            if (rc != RH_OK) {
                free(full);
                return rc;
            }
            if (c == '\0')
                break;
        }
    }
    *dir = full;
    return RH_OK;
}

static rh_err write_tile(rh_tlog *log, int level, uint64_t index, unsigned width,
                         const uint8_t *data, size_t len, rh_error *e)
{
    char rel[RH_TILE_PATH_MAX], *dir = NULL, *path = NULL;
    const char *name = NULL;
    rh_buf old;
    rh_buf_init(&old, len + 1);
    rh_err rc = rh_tile_path(level, index, width, rel, sizeof rel);
    if (rc != RH_OK)
        return rh_fail(e, rc, "%s: bad tile (%d, %llu, %u)", log->logdir, level,
                       (unsigned long long)index, width);
    if ((rc = tile_dir(log, rel, &dir, &name, e)) != RH_OK)
        goto out;
    if ((path = rh_path_join(dir, name)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", log->logdir);
        goto out;
    }
    rh_error ign;
    rh_error_clear(&ign);
    rc = rh_file_read(path, len, &old, &ign);
    if (rc == RH_ENOTFOUND) {
        rc = rh_file_write_atomic(dir, name, data, len, false, 0644, e);
    } else if (rc == RH_OK && old.len == len && memcmp(old.data, data, len) == 0) {
        rc = RH_OK; /* written by an interrupted commit, with the same bytes */
    } else if (log->have_checkpoint && tile_covered(level, index, width, log->committed)) {
        rc = rh_fail(e, RH_ELOG, "%s: differs from the log its checkpoint covers", path);
    } else {
        /* An orphan of an interrupted commit that no checkpoint ever covered. */
        rc = rh_file_write_atomic(dir, name, data, len, true, 0644, e);
    }
out:
    rh_buf_cleanup(&old);
    free(path);
    free(dir);
    return rc;
}

/* Offset in the tail of entry first (>= tail_start, <= size). */
static rh_err tail_offset(const rh_tlog *log, uint64_t first, size_t *off)
{
    if (first < log->tail_start || first > log->tree.size)
        return RH_EINVAL;
    size_t o = 0;
    for (uint64_t i = log->tail_start; i < first; i++)
        o += 2 + ((size_t)log->tail.data[o] << 8 | log->tail.data[o + 1]);
    *off = o;
    return RH_OK;
}

/* The bundle of the count entries at tail offset *off; advances *off past them. */
static const uint8_t *bundle_next(const rh_tlog *log, size_t *off, uint64_t count, size_t *len)
{
    size_t end = *off;
    for (uint64_t i = 0; i < count; i++)
        end += 2 + ((size_t)log->tail.data[end] << 8 | log->tail.data[end + 1]);
    const uint8_t *p = log->tail.data + *off;
    *len = end - *off;
    *off = end;
    return p;
}

/* Forget the entries before keep_from (a multiple of RH_TILE_WIDTH, in full bundles on disk). */
static void tail_trim(rh_tlog *log, uint64_t keep_from)
{
    size_t len;
    if (keep_from <= log->tail_start || tail_offset(log, keep_from, &len) != RH_OK)
        return;
    memmove(log->tail.data, log->tail.data + len, log->tail.len - len);
    log->tail.len -= len;
    log->tail_start = keep_from;
}

rh_err rh_tlog_commit(rh_tlog *log, rh_error *e)
{
    uint64_t size = log->tree.size;
    if (log->have_checkpoint && size == log->committed)
        return RH_OK;
    rh_err rc = RH_OK;
    size_t boff = 0;
    /* Entry bundles (level -1), then hash tiles level by level. */
    for (int l = -1; l < RH_TLOG_TILE_LEVELS && rc == RH_OK; l++) {
        unsigned lv = l < 0 ? 0 : (unsigned)l, wo, wn;
        uint64_t fo, fnew;
        rh_tile_count(log->committed, lv, &fo, &wo);
        rh_tile_count(size, lv, &fnew, &wn);
        for (uint64_t t = fo; t <= fnew && rc == RH_OK; t++) {
            unsigned w = t < fnew ? RH_TILE_WIDTH : wn;
            if (w == 0 || (t == fnew && t == fo && wn == wo && log->have_checkpoint))
                continue;
            const uint8_t *p;
            size_t len;
            if (l < 0) {
                if (t == fo && tail_offset(log, fo * RH_TILE_WIDTH, &boff) != RH_OK) {
                    rc = rh_fail(e, RH_EINVAL, "%s: entries gone from memory", log->logdir);
                    break;
                }
                p = bundle_next(log, &boff, w, &len);
            } else {
                p = log->lv[lv].h[t * RH_TILE_WIDTH];
                len = (size_t)w * 32;
            }
            rc = write_tile(log, l, t, w, p, len, e);
        }
    }
    if (rc != RH_OK)
        return rc;
    /* The checkpoint, last. */
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    memcpy(cp.origin, log->origin, sizeof cp.origin);
    cp.size = size;
    rh_buf note;
    rh_buf_init(&note, RH_NOTE_MAX_BYTES);
    if ((rc = rh_merkle_tree_root(&log->tree, cp.root)) != RH_OK ||
        (rc = rh_checkpoint_format(&cp, &note)) != RH_OK) {
        rc = rh_fail(e, rc, "%s: cannot format the checkpoint", log->logdir);
        goto out;
    }
    size_t textlen = note.len;
    if ((rc = rh_buf_appendc(&note, '\n')) != RH_OK) {
        rc = rh_fail(e, rc, "%s: out of memory", log->logdir);
        goto out;
    }
    if ((rc = rh_note_sign(note.data, textlen, log->origin, log->key, &note, e)) != RH_OK ||
        (rc = rh_file_write_atomic(log->logdir, RH_TLOG_CHECKPOINT, note.data, note.len, true, 0644,
                                 e)) != RH_OK)
        goto out;
    log->committed = size;
    log->have_checkpoint = true;
    /* Keep in memory only the entries of the last, partial bundle. */
    tail_trim(log, size / RH_TILE_WIDTH * RH_TILE_WIDTH);
out:
    rh_buf_cleanup(&note);
    return rc;
}

/* ---- open: replay the committed log ---------------------------------------------------------*/

static rh_err read_rel(const rh_tlog *log, const char *rel, size_t max, rh_buf *out, rh_error *e)
{
    char *p = rh_path_join(log->logdir, rel);
    if (p == NULL)
        return rh_fail(e, RH_ENOMEM, "%s: out of memory", log->logdir);
    rh_buf_reset(out);
    rh_err rc = rh_file_read(p, max, out, e);
    free(p);
    return rc;
}

static rh_err replay(rh_tlog *log, const rh_checkpoint *cp, rh_error *e)
{
    rh_buf b;
    rh_buf_init(&b, RH_TLOG_MAX_BUNDLE);
    char rel[RH_TILE_PATH_MAX];
    uint64_t full;
    unsigned part;
    rh_err rc = RH_OK;
    rh_tile_count(cp->size, 0, &full, &part);
    for (uint64_t t = 0; t <= full && rc == RH_OK; t++) {
        unsigned w = t < full ? RH_TILE_WIDTH : part;
        if (w == 0)
            break;
        if ((rc = rh_tile_path(-1, t, w, rel, sizeof rel)) != RH_OK ||
            (rc = read_rel(log, rel, RH_TLOG_MAX_BUNDLE, &b, e)) != RH_OK) {
            rh_fail(e, RH_ELOG, "%s/%s: entry bundle missing", log->logdir, rel);
            rc = RH_ELOG;
            break;
        }
        size_t off = 0;
        for (unsigned i = 0; i < w && rc == RH_OK; i++) {
            if (b.len - off < 2) {
                rc = rh_fail(e, RH_ELOG, "%s/%s: %u entries, want %u", log->logdir, rel, i, w);
                break;
            }
            size_t n = (size_t)b.data[off] << 8 | b.data[off + 1];
            if (n > b.len - off - 2) {
                rc = rh_fail(e, RH_ELOG, "%s/%s: entry %u truncated", log->logdir, rel, i);
                break;
            }
            rh_error ae;
            rh_error_clear(&ae);
            if ((rc = rh_tlog_append(log, b.data + off + 2, n, &ae)) != RH_OK)
                rc = rh_fail(e, rc == RH_ENOMEM ? rc : RH_ELOG, "%s/%s: entry %u: %s",
                             log->logdir, rel, i, ae.msg);
            off += 2 + n;
        }
        if (rc == RH_OK && off != b.len)
            rc = rh_fail(e, RH_ELOG, "%s/%s: bytes after entry %u", log->logdir, rel, w);
    }
    uint8_t root[32];
    if (rc == RH_OK && ((rc = rh_merkle_tree_root(&log->tree, root)) != RH_OK ||
                        !rh_ct_equal(root, cp->root, 32)))
        rc = rh_fail(e, RH_ELOG, "%s/%s: the entries do not give the checkpoint's root hash",
                     log->logdir, RH_TLOG_CHECKPOINT);
    /* The stored hash tiles must be the ones the entries give. */
    for (unsigned l = 0; l < RH_TLOG_TILE_LEVELS && rc == RH_OK; l++) {
        rh_tile_count(cp->size, l, &full, &part);
        for (uint64_t t = 0; t <= full && rc == RH_OK; t++) {
            unsigned w = t < full ? RH_TILE_WIDTH : part;
            if (w == 0)
                break;
            if ((rc = rh_tile_path((int)l, t, w, rel, sizeof rel)) != RH_OK ||
                (rc = read_rel(log, rel, (size_t)w * 32, &b, e)) != RH_OK ||
                b.len != (size_t)w * 32 ||
                memcmp(b.data, log->lv[l].h[t * RH_TILE_WIDTH], b.len) != 0)
                rc = rh_fail(e, RH_ELOG, "%s/%s: missing or not the hashes of the entries",
                             log->logdir, rel);
        }
    }
    rh_buf_cleanup(&b);
    return rc;
}

rh_err rh_tlog_open(const char *repo, const char *origin, const char *key_path, rh_tlog **out,
                    rh_error *e)
{
    if (repo == NULL || origin == NULL || key_path == NULL || out == NULL)
        return rh_fail(e, RH_EINVAL, "log: missing argument");
    if (strlen(origin) == 0 || strlen(origin) > RH_CHECKPOINT_MAX_ORIGIN)
        return rh_fail(e, RH_EINVAL, "log: origin must be 1..%d bytes",
                       RH_CHECKPOINT_MAX_ORIGIN);
    rh_tlog *log = calloc(1, sizeof *log);
    rh_buf b;
    rh_buf_init(&b, RH_NOTE_MAX_BYTES);
    rh_note *note = NULL;
    rh_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    char *src = NULL;
    rh_err rc;
    if (log == NULL || (log->logdir = rh_path_join(repo, RH_TLOG_DIR)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", repo);
        goto out;
    }
    memcpy(log->origin, origin, strlen(origin) + 1);
    rh_merkle_tree_init(&log->tree);
    rh_buf_init(&log->tail, (size_t)-1);
    if ((rc = rh_privkey_load(key_path, &log->key, e)) != RH_OK ||
        (rc = rh_note_key_from_privkey(log->key, origin, RH_NOTE_TYPE_ED25519, &log->nkey, e)) !=
            RH_OK ||
        (rc = rh_fs_mkdir(log->logdir, 0755, e)) != RH_OK)
        goto out;
    log->nkey.required = true;
    rh_error ign;
    rh_error_clear(&ign);
    rc = read_rel(log, RH_TLOG_CHECKPOINT, RH_NOTE_MAX_BYTES, &b, &ign);
    if (rc == RH_ENOTFOUND) {
        rc = RH_OK;
        *out = log;
        log = NULL;
        goto out;
    }
    if (rc != RH_OK) {
        rc = rh_fail(e, rc, "%s", ign.msg);
        goto out;
    }
    if ((src = rh_path_join(log->logdir, RH_TLOG_CHECKPOINT)) == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", repo);
        goto out;
    }
    rh_error_clear(&ign);
    if ((rc = rh_note_parse(b.data, b.len, src, &note, &ign)) != RH_OK ||
        (rc = rh_note_verify(note, &log->nkey, 1, NULL, src, &ign)) != RH_OK ||
        (rc = rh_checkpoint_parse(note->text, note->textlen, src, &cp, &ign)) != RH_OK) {
        rc = relabel(e, rc == RH_ENOMEM ? rc : RH_ELOG, &ign);
        goto out;
    }
    if (strcmp(cp.origin, origin) != 0) {
        rc = rh_fail(e, RH_ELOG, "%s: origin \"%s\", want \"%s\"", src, cp.origin, origin);
        goto out;
    }
    if (cp.size > RH_TLOG_MAX_ENTRIES) {
        rc = rh_fail(e, RH_ELOG, "%s: %llu entries is more than this writer keeps", src,
                     (unsigned long long)cp.size);
        goto out;
    }
    if ((rc = replay(log, &cp, e)) != RH_OK)
        goto out;
    log->committed = cp.size;
    log->have_checkpoint = true;
    tail_trim(log, cp.size / RH_TILE_WIDTH * RH_TILE_WIDTH);
    *out = log;
    log = NULL;
out:
    free(src);
    rh_checkpoint_cleanup(&cp);
    rh_note_free(note);
    rh_buf_cleanup(&b);
    rh_tlog_close(log);
    return rc;
}
