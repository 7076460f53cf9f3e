/* state.c -- DATA/state.json: superseded files (grace-period GC) and the last successful sync. */
#include "mirror/state.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/buf.h"
#include "mirror/mfs.h"

void rh_mirror_state_cleanup(rh_mirror_state *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nsuperseded; i++)
        free(s->superseded[i].relpath);
    free(s->superseded);
    free(s->log_checkpoint);
    free(s->log_inconsistent);
    memset(s, 0, sizeof *s);
}

rh_err rh_mirror_state_load(const char *path, rh_mirror_state *out, rh_error *e)
{
    rh_buf b;
    rh_buf_init(&b, RH_MIRROR_MAX_STATE_BYTES);
    rh_mirror_state s;
    memset(&s, 0, sizeof s);
    json_t *root = NULL;
    rh_err rc = rh_mfs_read(path, RH_MIRROR_MAX_STATE_BYTES, &b, e);
    if (rc == RH_ENOTFOUND) {
        rh_error_clear(e);
        rc = RH_OK;
        goto done;
    }
    if (rc != RH_OK)
        goto out;
    json_error_t je;
    root = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &je);
    json_t *sup = root != NULL ? json_object_get(root, "superseded") : NULL;
    json_t *last = root != NULL ? json_object_get(root, "last_success") : NULL;
    if (!json_is_object(root) || !json_is_object(sup) || !json_is_integer(last)) {
        rc = rh_fail(e, RH_EPARSE, "%s: not a mirror state file", path);
        goto out;
    }
    s.last_success = json_integer_value(last);
    json_t *lc = json_object_get(root, "log_checkpoint");
    json_t *li = json_object_get(root, "log_inconsistent");
    if ((lc != NULL && !json_is_string(lc)) || (li != NULL && !json_is_string(li))) {
        rc = rh_fail(e, RH_EPARSE, "%s: log_checkpoint/log_inconsistent: expected text", path);
        goto out;
    }
    if ((lc != NULL && (s.log_checkpoint = strdup(json_string_value(lc))) == NULL) ||
        (li != NULL && (s.log_inconsistent = strdup(json_string_value(li))) == NULL)) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t n = json_object_size(sup);
    s.superseded = calloc(n + 1, sizeof *s.superseded);
    if (s.superseded == NULL) {
        rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(sup, k, v) {
        if (!json_is_integer(v)) {
            rc = rh_fail(e, RH_EPARSE, "%s: superseded.%s: expected a time", path, k);
            goto out;
        }
        if ((s.superseded[s.nsuperseded].relpath = strdup(k)) == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        s.superseded[s.nsuperseded++].since = json_integer_value(v);
    }
done:
    *out = s;
    memset(&s, 0, sizeof s);
out:
    rh_mirror_state_cleanup(&s);
    json_decref(root);
    rh_buf_cleanup(&b);
    return rc;
}

rh_err rh_mirror_state_save(const char *path, const rh_mirror_state *s, rh_error *e)
{
    rh_err rc = RH_ENOMEM;
    char *text = NULL;
    json_t *root = json_object(), *sup = json_object();
    if (root == NULL || sup == NULL)
        goto oom;
    for (size_t i = 0; i < s->nsuperseded; i++)
        if (json_object_set_new(sup, s->superseded[i].relpath,
                                json_integer(s->superseded[i].since)) != 0)
            goto oom;
    if (json_object_set(root, "superseded", sup) != 0 ||
        json_object_set_new(root, "last_success", json_integer(s->last_success)) != 0)
        goto oom;
    if (s->log_checkpoint != NULL &&
        json_object_set_new(root, "log_checkpoint", json_string(s->log_checkpoint)) != 0)
        goto oom;
    if (s->log_inconsistent != NULL &&
        json_object_set_new(root, "log_inconsistent", json_string(s->log_inconsistent)) != 0)
        goto oom;
    text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (text == NULL)
        goto oom;
    rc = rh_mfs_write_atomic(path, text, strlen(text), e);
    goto out;
oom:
    rc = rh_fail(e, RH_ENOMEM, "%s: out of memory", path);
out:
    free(text);
    json_decref(sup);
    json_decref(root);
    return rc;
}
