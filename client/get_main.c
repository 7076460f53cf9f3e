/* get_main.c -- rhine-get: the command-line client, built only on the public rhine/client.h. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rhine/client.h"

#define PROG "rhine-get"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_QUORUM 3   /* transparency: no checkpoint cosigned by the witness quorum */
#define EXIT_LOG_FORK 4 /* transparency: the log is inconsistent with the stored checkpoint */
#define EXIT_UNLOGGED 5 /* transparency: signed metadata missing from the witnessed log */
#define MAX_TARGET_NAMES 1024
#define PROGRESS_MIN_BYTES (1024u * 1024) /* smaller downloads draw no bar */

static const char usage[] =
    "usage: rhine-get --config FILE [-q] COMMAND\n"
    "  update              refresh the trusted metadata from the mirrors\n"
    "  list                print every target: path, length, uncompressed length\n"
    "  fetch TARGET -o FILE\n"
    "                      download, verify, decompress, verify and install TARGET as FILE\n"
    "                      (TARGET is the TUF path; NAME also finds NAME.zst)\n"
    "  status              trusted versions and expiry (from the state directory, no network)\n"
    "\n"
    "TUF client-test form (generic TUF repositories, targets installed as they are):\n"
    "  rhine-get --metadata-dir DIR init ROOT\n"
    "  rhine-get --metadata-url URL --metadata-dir DIR refresh\n"
    "  rhine-get --metadata-url URL --metadata-dir DIR --target-name T [--target-name T2 ...]\n"
    "            --target-dir DIR --target-base-url URL download\n"
    "\n"
    "Exit status: 0 success, 1 failure (\"rhine-get: <mirror url or file>: <reason>\" on\n"
    "stderr), 2 usage error. With a \"witnesses\" block in the config (transparency):\n"
    "  3  witness quorum not met: no log checkpoint is cosigned by the quorum; the message\n"
    "     lists what each mirror showed (size, root prefix, cosigners): a split view, or\n"
    "     witnesses behind or unreachable\n"
    "  4  log inconsistent: the witnessed log does not extend the checkpoint stored by the\n"
    "     last run (a rewritten or forked log); both are kept in <state>/log.evidence\n"
    "  5  unlogged: signed metadata (\"unlogged: N.targets.json ...\") is not in the log\n";

typedef struct args {
    const char *config, *metadata_dir, *metadata_url, *target_dir, *target_base_url, *output;
    const char *targets[MAX_TARGET_NAMES];
    size_t ntargets;
    bool quiet;
    const char *cmd;
    const char *pos[2];
    size_t npos;
} args;

/* Print "rhine-get: <what><arg>" and the usage; returns the usage exit status. */
static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, PROG ": %s%s\n%s", what, arg, usage);
    return EXIT_USAGE;
}

/* Match "--name VALUE" or "--name=VALUE"; advances *i past a separate value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

static int parse(int argc, char **argv, args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"--config", offsetof(args, config)},
        {"--metadata-dir", offsetof(args, metadata_dir)},
        {"--metadata-url", offsetof(args, metadata_url)},
        {"--target-dir", offsetof(args, target_dir)},
        {"--target-base-url", offsetof(args, target_base_url)},
        {"--output", offsetof(args, output)},
        {"-o", offsetof(args, output)},
    };
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            fputs(usage, stdout);
            return -1;
        }
        if (strcmp(s, "-q") == 0 || strcmp(s, "--quiet") == 0) {
            a->quiet = true;
            continue;
        }
        const char *v = NULL;
        int r = opt_value(argc, argv, &i, "--target-name", &v);
        if (r < 0)
            return usage_error(s, " needs a value");
        if (r > 0) {
            if (a->ntargets == MAX_TARGET_NAMES)
                return usage_error("too many ", "--target-name");
            a->targets[a->ntargets++] = v;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !matched; k++) {
            r = opt_value(argc, argv, &i, opts[k].name, &v);
            if (r < 0)
                return usage_error(s, " needs a value");
            if (r > 0) {
                const char **slot = (const char **)((char *)a + opts[k].off);
                if (*slot)
                    return usage_error(opts[k].name, " given twice");
                *slot = v;
                matched = true;
            }
        }
        if (matched)
            continue;
        if (s[0] == '-' && s[1] != '\0')
            return usage_error("unknown option ", s);
        if (!a->cmd)
            a->cmd = s;
        else if (a->npos < 2)
            a->pos[a->npos++] = s;
        else
            return usage_error("unexpected argument ", s);
    }
    if (!a->cmd)
        return usage_error("no command", "");
    return 0;
}

/* --- progress ---------------------------------------------------------------------------------- */

typedef struct bar {
    bool on;
    int last_pct;
} bar;

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    bar *b = ctx;
    if (!b->on || total < PROGRESS_MIN_BYTES)
        return;
    int pct = (int)(done * 100 / total);
    if (pct == b->last_pct)
        return;
    b->last_pct = pct;
    char cells[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++)
        cells[i] = i < fill ? '#' : ' ';
    cells[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f MiB", cells, pct, (double)done / 1048576.0,
            (double)total / 1048576.0);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* --- commands ---------------------------------------------------------------------------------- */

static int fail(const rhine_client *c, rhine_code code)
{
    const char *m = rhine_client_errmsg(c);
    fprintf(stderr, PROG ": %s\n", m && *m ? m : "failed");
    switch (code) {
    case RHINE_ERR_QUORUM: return EXIT_QUORUM;
    case RHINE_ERR_LOG_FORK: return EXIT_LOG_FORK;
    case RHINE_ERR_UNLOGGED: return EXIT_UNLOGGED;
    default: return EXIT_FAIL;
    }
}

static int print_target(void *ctx, const rhine_target_info *t)
{
    (void)ctx;
    if (t->has_content)
        printf("%s\t%llu\t%llu\t%s\n", t->path, (unsigned long long)t->length,
               (unsigned long long)t->content_length, t->content_sha256);
    else
        printf("%s\t%llu\t-\t%s\n", t->path, (unsigned long long)t->length, t->sha256);
    return 0;
}

static void print_role(const char *name, const rhine_role_status *r)
{
    if (!r->present) {
        printf("%-10s none\n", name);
        return;
    }
    char when[32] = "?";
    time_t t = (time_t)r->expires;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-10s version %llu, expires %s%s\n", name, (unsigned long long)r->version, when,
           r->expired ? " (EXPIRED)" : "");
}

static int cmd_status(rhine_client *c)
{
    rhine_status s;
    rhine_code code = rhine_client_status(c, &s);
    if (code != RHINE_OK)
        return fail(c, code);
    print_role("root", &s.root);
    print_role("timestamp", &s.timestamp);
    print_role("snapshot", &s.snapshot);
    print_role("targets", &s.targets);
    printf("targets    %zu listed\n", s.ntargets);
    return 0;
}

static int run_config_mode(const args *a)
{
    static const char *const cmds[] = {"update", "list", "fetch", "status"};
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(a->cmd, cmds[i]) == 0;
    if (!known)
        return usage_error("unknown command ", a->cmd);
    bool is_fetch = strcmp(a->cmd, "fetch") == 0;
    if (is_fetch && (a->npos != 1 || !a->output))
        return usage_error("fetch needs TARGET and -o FILE", "");
    if (!is_fetch && (a->npos != 0 || a->output))
        return usage_error(a->cmd, " takes no arguments");
    if (a->ntargets || a->target_dir || a->target_base_url || a->metadata_url || a->metadata_dir)
        return usage_error("--config does not mix with the client-test options", "");
    char err[1024];
    rhine_client *c = NULL;
    if (rhine_client_new_from_config(a->config, &c, err, sizeof(err)) != RHINE_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        return EXIT_FAIL;
    }
    int rc = 0;
    rhine_code code;
    if (strcmp(a->cmd, "update") == 0) {
        if ((code = rhine_client_update(c)) != RHINE_OK)
            rc = fail(c, code);
    } else if (strcmp(a->cmd, "list") == 0) {
        if ((code = rhine_client_list(c, print_target, NULL)) != RHINE_OK)
            rc = fail(c, code);
    } else if (is_fetch) {
        bar b = {.on = !a->quiet && isatty(STDERR_FILENO), .last_pct = -1};
        if ((code = rhine_client_fetch(c, a->pos[0], a->output, progress, &b)) != RHINE_OK)
            rc = fail(c, code);
    } else {
        rc = cmd_status(c);
    }
    rhine_client_free(c);
    return rc;
}

static int run_test_mode(const args *a)
{
    if (!a->metadata_dir)
        return usage_error("need --config FILE or --metadata-dir DIR", "");
    char err[1024];
    if (strcmp(a->cmd, "init") == 0) {
        if (a->npos != 1)
            return usage_error("init needs ROOT", "");
        if (rhine_state_init(a->metadata_dir, a->pos[0], err, sizeof(err)) != RHINE_OK) {
            fprintf(stderr, PROG ": %s\n", err);
            return EXIT_FAIL;
        }
        return 0;
    }
    bool is_refresh = strcmp(a->cmd, "refresh") == 0;
    bool is_download = strcmp(a->cmd, "download") == 0;
    if (!is_refresh && !is_download)
        return usage_error("unknown command ", a->cmd);
    if (a->npos != 0 || !a->metadata_url)
        return usage_error(a->cmd, " needs --metadata-url and no arguments");
    if (is_download && (!a->ntargets || !a->target_dir || !a->target_base_url))
        return usage_error("download needs --target-name, --target-dir and --target-base-url",
                           "");
    rhine_mirror m = {.metadata_url = a->metadata_url, .targets_url = a->target_base_url};
    rhine_client_opts o = {
        .state_dir = a->metadata_dir,
        .mirrors = &m,
        .nmirrors = 1,
        .flags = RHINE_FLAG_RAW_TARGETS,
    };
    rhine_client *c = NULL;
    if (rhine_client_new(&o, &c, err, sizeof(err)) != RHINE_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        return EXIT_FAIL;
    }
    int rc = 0;
    rhine_code code = rhine_client_update(c);
    if (code != RHINE_OK) {
        rc = fail(c, code);
        goto out;
    }
    for (size_t i = 0; is_download && i < a->ntargets; i++) {
        char name[3 * 4096 + 1], dest[PATH_MAX];
        if (rhine_target_filename(a->targets[i], name, sizeof(name)) != RHINE_OK ||
            (size_t)snprintf(dest, sizeof(dest), "%s/%s", a->target_dir, name) >= sizeof(dest)) {
            fprintf(stderr, PROG ": %s: not usable as a file name\n", a->targets[i]);
            rc = EXIT_FAIL;
            goto out;
        }
        bar b = {.on = !a->quiet && isatty(STDERR_FILENO), .last_pct = -1};
        if ((code = rhine_client_fetch(c, a->targets[i], dest, progress, &b)) != RHINE_OK) {
            rc = fail(c, code);
            goto out;
        }
    }
out:
    rhine_client_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof(a));
    int r = parse(argc, argv, &a);
    if (r != 0)
        return r < 0 ? 0 : r;
    if (a.config)
        return run_config_mode(&a);
    return run_test_mode(&a);
}
