/* audit_main.c -- rhine-audit: the independent reviewer's view of the transparency log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_log.h"
#include "audit/audit_report.h"
#include "manifest/buf.h"
#include "manifest/note.h"

static const char usage[] =
    "usage: rhine-audit --log-key VKEY [--witness VKEY ...] [--quorum K] COMMAND ...\n"
    "\n"
    "  list URL                       replay the whole log served under URL/log/ (any mirror or\n"
    "                                 the origin), check every logged metadata file under\n"
    "                                 URL/metadata/ and list every release\n"
    "  verify-build --release N URL DIR\n"
    "                                 compare payloads rebuilt from source in DIR with what\n"
    "                                 release N (targets version N) shipped\n"
    "  consistency OLD_CHECKPOINT URL prove the current log extends a checkpoint kept earlier\n"
    "\n"
    "  --log-key VKEY   the log's verifier key \"name+id+base64\" (or a file holding it)\n"
    "  --witness VKEY   a witness's cosignature key (tlog-cosignature/v1); repeatable\n"
    "  --quorum K       witness cosignatures the checkpoint needs (default: every --witness)\n"
    "  --ca FILE        PEM CA bundle for https:// URLs (default: the system's)\n"
    "\n"
    "Every finding is printed with its evidence. Exit status: 0 consistent; 1 inconsistent\n"
    "(bad signature, root or tile mismatch, a metadata file that differs from its log entry, a\n"
    "served version missing from the log, a rewritten log, a rebuilt payload that differs);\n"
    "2 usage; 3 something could not be fetched (nothing proven); 4 consistent, but a release\n"
    "lacks its source revision or build-recipe digest.\n";

static int fail_usage(const char *msg)
{
    if (msg != NULL)
        fprintf(stderr, "rhine-audit: %s\n", msg);
    fputs(usage, stderr);
    return RH_AUDIT_EXIT_USAGE;
}

/* A vkey given inline or as a file holding one line. */
static rh_err load_vkey(const char *arg, rh_note_key *k, rh_error *e)
{
    rh_error ign;
    rh_error_clear(&ign);
    if (rh_note_vkey_parse(arg, k, &ign) == RH_OK)
        return RH_OK;
    FILE *f = fopen(arg, "rb");
    if (f == NULL)
        return rh_fail(e, RH_EPARSE, "%s: %s (and no such file)", arg, ign.msg);
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    rh_err rc = rh_note_vkey_parse(line, k, e);
    if (rc != RH_OK)
        rh_error_prefix(e, "%s", arg);
    return rc;
}

static int exit_for(rh_err rc)
{
    switch (rc) {
    case RH_ENET:
    case RH_ENOTFOUND:
    case RH_EIO:
    case RH_ENOMEM:
    case RH_ETOOBIG:
    case RH_EHASH: /* what a source served is not the signed log's: nothing proven either way */
        return RH_AUDIT_EXIT_INCOMPLETE;
    default:
        return RH_AUDIT_EXIT_INCONSISTENT;
    }
}

static int report_err(rh_err rc, const rh_error *e)
{
    int x = exit_for(rc);
    printf("%s: %s\n", x == RH_AUDIT_EXIT_INCOMPLETE ? "UNAVAILABLE" : "INCONSISTENT", e->msg);
    return x;
}

int main(int argc, char **argv)
{
    static rh_log_keys keys;
    bool have_log = false, have_quorum = false;
    const char *ca = NULL;
    int i = 1;
    rh_error e;
    rh_error_clear(&e);
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return fail_usage("option needs a value");
        const char *v = argv[++i];
        if (strcmp(o, "--log-key") == 0) {
            if (load_vkey(v, &keys.log, &e) != RH_OK)
                return fail_usage(e.msg);
            if (keys.log.type != RH_NOTE_TYPE_ED25519)
                return fail_usage("--log-key: not an Ed25519 signed-note key");
            have_log = true;
        } else if (strcmp(o, "--witness") == 0) {
            if (keys.nwitnesses == RH_LOGV_MAX_WITNESSES)
                return fail_usage("too many --witness");
            rh_note_key *w = &keys.witnesses[keys.nwitnesses];
            if (load_vkey(v, w, &e) != RH_OK)
                return fail_usage(e.msg);
            if (w->type != RH_NOTE_TYPE_COSIG_V1)
                return fail_usage("--witness: not a cosignature/v1 key (type 0x04)");
            keys.nwitnesses++;
        } else if (strcmp(o, "--ca") == 0) {
            ca = v;
        } else if (strcmp(o, "--quorum") == 0) {
            char *end;
            errno = 0;
            unsigned long q = strtoul(v, &end, 10);
            if (errno != 0 || *end != '\0' || v[0] < '0' || v[0] > '9' || q > 1000)
                return fail_usage("--quorum: want a number");
            keys.quorum = q;
            have_quorum = true;
        } else {
            return fail_usage("unknown option");
        }
    }
    if (!have_log)
        return fail_usage("--log-key is required");
    if (!have_quorum)
        keys.quorum = keys.nwitnesses;
    if (keys.quorum > keys.nwitnesses)
        return fail_usage("--quorum is larger than the number of --witness keys");
    if (i >= argc)
        return fail_usage("no command");
    const char *cmd = argv[i++];
    uint64_t release = 0;
    bool have_release = false;
    const char *url = NULL, *dir = NULL, *old = NULL;
    if (strcmp(cmd, "list") == 0 && argc - i == 1) {
        url = argv[i];
    } else if (strcmp(cmd, "verify-build") == 0 && argc - i == 4 &&
               strcmp(argv[i], "--release") == 0) {
        char *end;
        errno = 0;
        release = strtoull(argv[i + 1], &end, 10);
        have_release = errno == 0 && *end == '\0' && argv[i + 1][0] >= '1' &&
                       argv[i + 1][0] <= '9';
        if (!have_release)
            return fail_usage("--release: want a targets version >= 1");
        url = argv[i + 2];
        dir = argv[i + 3];
    } else if (strcmp(cmd, "consistency") == 0 && argc - i == 2) {
        old = argv[i];
        url = argv[i + 1];
    } else {
        return fail_usage("unknown command or wrong arguments");
    }

    rh_audit_http http;
    rh_log_src src;
    if (rh_audit_http_init(&http, url, ca, &src, &e) != RH_OK) {
        fprintf(stderr, "rhine-audit: %s\n", e.msg);
        return RH_AUDIT_EXIT_USAGE;
    }
    int code;
    if (old != NULL) {
        rh_buf ob, cur;
        rh_buf_init(&ob, RH_NOTE_MAX_BYTES);
        rh_buf_init(&cur, RH_NOTE_MAX_BYTES);
        FILE *f = fopen(old, "rb");
        if (f == NULL) {
            fprintf(stderr, "rhine-audit: %s: %s\n", old, strerror(errno));
            rh_audit_http_cleanup(&http);
            return RH_AUDIT_EXIT_USAGE;
        }
        char chunk[4096];
        size_t n;
        rh_err rc = RH_OK;
        while (rc == RH_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rc = rh_buf_append(&ob, chunk, n);
        fclose(f);
        if (rc != RH_OK)
            rc = rh_fail(&e, rc, "%s: larger than a checkpoint may be", old);
        else
            rc = rh_log_consistency(&src, &keys, ob.data, ob.len, &cur, &e);
        if (rc == RH_OK) {
            printf("consistent: the current log extends %s\n", old);
            code = RH_AUDIT_EXIT_OK;
        } else {
            code = report_err(rc, &e);
            if (rc == RH_ELOG)
                printf("evidence: old checkpoint (%s):\n%.*s\nevidence: current checkpoint "
                       "(%s/log/checkpoint):\n%.*s", old, (int)ob.len, (char *)ob.data,
                       http.base, (int)cur.len, cur.data ? (char *)cur.data : "");
        }
        rh_buf_cleanup(&ob);
        rh_buf_cleanup(&cur);
    } else {
        rh_log_view *log = NULL;
        rh_err rc = rh_log_read(&src, &keys, &log, &e);
        if (rc != RH_OK) {
            code = report_err(rc, &e);
        } else {
            rh_audit_findings f;
            memset(&f, 0, sizeof f);
            if (dir != NULL)
                rh_audit_verify_build(&src, log, release, dir, stdout, &f);
            else
                rh_audit_list(&src, log, stdout, &f);
            code = rh_audit_exit_code(&f);
            if (dir != NULL && code == RH_AUDIT_EXIT_PROVENANCE)
                code = RH_AUDIT_EXIT_OK;
        }
        rh_log_view_free(log);
    }
    rh_audit_http_cleanup(&http);
    return code;
}
