/* origin_main.c -- rhine-origin: the origin's repository tool (init, publish, refresh, rotate). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manifest/metadata.h"
#include "manifest/rh_error.h"
#include "origin/origin_plan.h"
#include "origin/origin_repo.h"
#include "origin/serve.h"

#define EXIT_USAGE 2
#define PROG "rhine-origin"

static const char usage_main[] =
    "usage: rhine-origin COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  init      create the signing keys and an empty, valid TUF repository\n"
    "  publish   publish a source tree as the next targets version\n"
    "  refresh   re-sign timestamp (and snapshot) before they expire; online keys only\n"
    "  rotate    replace the key(s) of one role through a new root version\n"
    "  serve     serve the repository (HTTP/2, HTTP/1.1), re-sign timestamps, push to mirrors\n"
    "\n"
    "rhine-origin COMMAND --help describes each command.\n"
    "Exit status: 0 success (also \"unchanged\"), 1 failure (\"rhine-origin: <file>: <reason>\"\n"
    "on stderr), 2 usage error.\n";

static const char usage_init[] =
    "usage: rhine-origin init --repo DIR --keys DIR [--root-keys N] [--root-threshold K]\n"
    "                         [--expires-root D] [--expires-targets D]\n"
    "                         [--expires-snapshot D] [--expires-timestamp D]\n"
    "                         [--log-origin NAME]\n"
    "\n"
    "Creates Ed25519 keys and a valid repository with version 1 of every role.\n"
    "  --repo DIR             repository to create (absent or empty): DIR/metadata/1.root.json,\n"
    "                         1.targets.json, 1.snapshot.json, timestamp.json; DIR/targets/;\n"
    "                         DIR/origin.json records the lifetimes (not served)\n"
    "  --keys DIR             key directory to create (absent or empty), mode 0700:\n"
    "                         offline/root-1.pem..root-N.pem, offline/targets.pem (keep offline),\n"
    "                         online/snapshot.pem, online/timestamp.pem (for the serving host);\n"
    "                         PKCS#8 PEM, mode 0600\n"
    "  --root-keys N          number of root keys, 1..16 (default 1)\n"
    "  --root-threshold K     root signatures required, 1..N (default 1)\n"
    "  --log-origin NAME      transparency log name, the checkpoint's first line (default\n"
    "                         " RH_ORIGIN_DEFAULT_LOG "); its key: online/log.pem, the public\n"
    "                         verifier key: KEYS/log.pub. Every signed root, targets and\n"
    "                         snapshot is logged under DIR/log/ before timestamp.json names it\n"
    "  --expires-ROLE D       lifetime of ROLE's metadata, D = N followed by s, m, h or d\n"
    "                         (defaults: root 365d, targets 90d, snapshot 7d, timestamp 1d)\n";

static const char usage_publish[] =
    "usage: rhine-origin publish --repo DIR --keys DIR [--level N]\n"
    "                            [--source-rev REV] [--build-recipe FILE] SOURCE_DIR\n"
    "\n"
    "Every regular file under SOURCE_DIR becomes the target \"<relative path>.zst\", stored as\n"
    "DIR/targets/<dir>/<sha256 of the compressed bytes>.<name>.zst. Files whose length and\n"
    "sha256 equal the current entry are not recompressed; files gone from SOURCE_DIR leave the\n"
    "new version. Then N.targets.json, N.snapshot.json and timestamp.json are written, in that\n"
    "order, each atomically. When nothing changed no version is made and \"unchanged\" printed.\n"
    "Symbolic links and special files are skipped with a warning; an unsafe file name (control\n"
    "characters, backslash, %, ?, #, invalid UTF-8, too long) fails the publish, nothing written.\n"
    "  --level N           zstd level 1..19 (default 9)\n"
    "  --source-rev REV    provenance: source revision, signed in targets \"x-rhine-provenance\"\n"
    "  --build-recipe FILE provenance: name, length and sha256 of the build recipe file\n"
    "Needs keys/offline/targets.pem and keys/online/{snapshot,timestamp}.pem.\n";

static const char usage_refresh[] =
    "usage: rhine-origin refresh --repo DIR --keys DIR [--force]\n"
    "\n"
    "Re-signs timestamp.json (new version) when it expires within half its lifetime, or always\n"
    "with --force; re-signs the snapshot (new version, then the timestamp) when the snapshot\n"
    "expires within half its lifetime. Uses only keys/online/: run it from cron (hourly) or\n"
    "from the serving host. Warns when targets or root need their offline keys soon.\n"
    "  --force    re-sign the timestamp even when it is fresh\n";

static const char usage_rotate[] =
    "usage: rhine-origin rotate --repo DIR --keys DIR --role ROLE\n"
    "\n"
    "Generates a new key for ROLE (root: every root key, same count and threshold) and writes\n"
    "(N+1).root.json signed by the old and the new root keys, so a client with root N follows\n"
    "the chain. For targets, snapshot and timestamp the role's next version is signed by the old\n"
    "and the new key and published first, so the repository verifies under root N and N+1 at\n"
    "every instant. The old key file is kept as <name>.old-<N+1>.pem (delete or archive it when\n"
    "no client can still be on root N); the new key takes the old file name.\n"
    "If interrupted after the new root was written, <name>.new.pem holds the new key: rename it\n"
    "to <name>.pem.\n"
    "  --role ROLE   root, targets, snapshot or timestamp\n";

typedef struct args {
    const char *repo, *keys, *role, *source_rev, *build_recipe, *source;
    const char *level, *root_keys, *root_threshold, *log_origin;
    const char *expires[RH_ROLE_COUNT];
    bool force, help;
} args;

static int usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG " %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see " PROG " %s --help)\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

/* Options "--name VALUE" or "--name=VALUE"; flags --force, --help; one positional. */
static int parse_args(const char *cmd, int argc, char **argv, args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"repo", offsetof(args, repo)},
        {"keys", offsetof(args, keys)},
        {"role", offsetof(args, role)},
        {"source-rev", offsetof(args, source_rev)},
        {"build-recipe", offsetof(args, build_recipe)},
        {"level", offsetof(args, level)},
        {"root-keys", offsetof(args, root_keys)},
        {"root-threshold", offsetof(args, root_threshold)},
        {"log-origin", offsetof(args, log_origin)},
        {"expires-root", offsetof(args, expires) + RH_ROLE_ROOT * sizeof(char *)},
        {"expires-timestamp", offsetof(args, expires) + RH_ROLE_TIMESTAMP * sizeof(char *)},
        {"expires-snapshot", offsetof(args, expires) + RH_ROLE_SNAPSHOT * sizeof(char *)},
        {"expires-targets", offsetof(args, expires) + RH_ROLE_TARGETS * sizeof(char *)},
    };
    memset(a, 0, sizeof *a);
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (only_positional || s[0] != '-' || s[1] == '\0') {
            if (a->source != NULL)
                return usage_err(cmd, "unexpected argument '%s'", s);
            a->source = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (strcmp(s, "--force") == 0) {
            a->force = true;
            continue;
        }
        if (strncmp(s, "--", 2) != 0)
            return usage_err(cmd, "unknown option '%s'", s);
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == nl && strncmp(opts[k].name, name, nl) == 0)
                break;
        if (k == sizeof opts / sizeof opts[0])
            return usage_err(cmd, "unknown option '%s'", s);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (val == NULL)
            return usage_err(cmd, "option '%s' needs a value", s);
        *(const char **)((char *)a + opts[k].off) = val;
    }
    return 0;
}

/* Unsigned decimal in lo..hi. */
static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int fail(const rh_error *e)
{
    fprintf(stderr, PROG ": %s\n", e->msg[0] ? e->msg : rh_err_name(e->code));
    return EXIT_FAILURE;
}

/* Options no command takes besides its own: a stray one is a usage error, not ignored. */
static int reject_others(const char *cmd, const args *a, bool source, bool role, bool force,
                         bool publish_opts, bool init_opts)
{
    if (!source && a->source)
        return usage_err(cmd, "unexpected argument '%s'", a->source);
    if (!role && a->role)
        return usage_err(cmd, "%s", "--role is for rotate");
    if (!force && a->force)
        return usage_err(cmd, "%s", "--force is for refresh");
    if (!publish_opts && (a->level || a->source_rev || a->build_recipe))
        return usage_err(cmd, "%s", "--level/--source-rev/--build-recipe are for publish");
    if (!init_opts && (a->root_keys || a->root_threshold || a->log_origin || a->expires[0] ||
                       a->expires[1] || a->expires[2] || a->expires[3]))
        return usage_err(cmd, "%s",
                         "--root-keys/--root-threshold/--log-origin/--expires-* are for init");
    if (a->repo == NULL)
        return usage_err(cmd, "%s", "--repo DIR is required");
    if (a->keys == NULL)
        return usage_err(cmd, "%s", "--keys DIR is required");
    return 0;
}

static int cmd_init(const args *a)
{
    int u = reject_others("init", a, false, false, false, false, true);
    if (u != 0)
        return u;
    rh_origin_init_opts o;
    memset(&o, 0, sizeof o);
    o.repo = a->repo;
    o.keys = a->keys;
    unsigned long n = 1, k = 1;
    if (a->root_keys && !parse_uint(a->root_keys, 1, RH_ORIGIN_MAX_ROOT_KEYS, &n))
        return usage_err("init", "--root-keys: expected 1..16, got '%s'", a->root_keys);
    if (a->root_threshold && !parse_uint(a->root_threshold, 1, n, &k))
        return usage_err("init", "--root-threshold: expected 1..root keys, got '%s'",
                         a->root_threshold);
    o.root_keys = (unsigned)n;
    o.root_threshold = (unsigned)k;
    o.log_origin = a->log_origin;
    rh_origin_lifetimes_default(&o.lifetimes);
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        if (a->expires[r] && rh_duration_parse(a->expires[r], &o.lifetimes.life[r]) != RH_OK)
            return usage_err("init", "--expires-*: expected N[smhd] (e.g. 90d), got '%s'",
                             a->expires[r]);
    o.now = (int64_t)time(NULL);
    rh_error e;
    rh_error_clear(&e);
    if (rh_origin_init(&o, &e) != RH_OK)
        return fail(&e);
    printf("initialised %s: root version 1 (%u root key%s, threshold %u), targets, snapshot and "
           "timestamp version 1\nkeys in %s: offline/root-*.pem and offline/targets.pem (keep "
           "offline), online/snapshot.pem and online/timestamp.pem\n",
           a->repo, o.root_keys, o.root_keys > 1 ? "s" : "", o.root_threshold, a->keys);
    return 0;
}

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, PROG ": warning: %s\n", msg);
}

static int cmd_publish(const args *a)
{
    int u = reject_others("publish", a, true, false, false, true, false);
    if (u != 0)
        return u;
    if (a->source == NULL)
        return usage_err("publish", "%s", "SOURCE_DIR is required");
    unsigned long level = RH_ORIGIN_DEFAULT_LEVEL;
    if (a->level && !parse_uint(a->level, 1, 19, &level))
        return usage_err("publish", "--level: expected 1..19, got '%s'", a->level);
    rh_error e;
    rh_error_clear(&e);
    rh_origin_keypaths *kp = calloc(1, sizeof *kp);
    if (kp == NULL) {
        rh_fail(&e, RH_ENOMEM, "out of memory");
        return fail(&e);
    }
    if (rh_origin_keypaths_init(kp, a->keys, &e) != RH_OK) {
        free(kp);
        return fail(&e);
    }
    rh_origin_publish_opts o = {
        .repo = a->repo, .source = a->source, .targets_key = kp->targets,
        .snapshot_key = kp->snapshot, .timestamp_key = kp->timestamp, .level = (int)level,
        .source_rev = a->source_rev, .build_recipe = a->build_recipe,
        .now = (int64_t)time(NULL), .warn = warn_stderr, .warn_ctx = NULL,
    };
    rh_origin_publish_result r;
    rh_err rc = rh_origin_publish(&o, &r, &e);
    free(kp);
    if (rc != RH_OK)
        return fail(&e);
    if (r.unchanged) {
        if (r.nrestored > 0)
            printf("unchanged: targets version %llu (%zu files, %zu stored files restored)\n",
                   (unsigned long long)r.targets_version, r.nfiles, r.nrestored);
        else
            printf("unchanged: targets version %llu (%zu files)\n",
                   (unsigned long long)r.targets_version, r.nfiles);
        return 0;
    }
    printf("published targets version %llu, snapshot version %llu, timestamp version %llu\n"
           "files: %zu added, %zu changed, %zu removed, %zu unchanged (%zu restored); "
           "%llu bytes compressed to %llu\n",
           (unsigned long long)r.targets_version, (unsigned long long)r.snapshot_version,
           (unsigned long long)r.timestamp_version, r.nadded, r.nchanged, r.nremoved, r.nkept,
           r.nrestored, (unsigned long long)r.bytes_read, (unsigned long long)r.bytes_written);
    return 0;
}

static int cmd_refresh(const args *a)
{
    int u = reject_others("refresh", a, false, false, true, false, false);
    if (u != 0)
        return u;
    rh_error e;
    rh_error_clear(&e);
    rh_origin_keypaths *kp = calloc(1, sizeof *kp);
    if (kp == NULL) {
        rh_fail(&e, RH_ENOMEM, "out of memory");
        return fail(&e);
    }
    rh_origin_refresh_result r;
    rh_err rc = rh_origin_keypaths_init(kp, a->keys, &e);
    if (rc == RH_OK)
        rc = rh_origin_refresh(a->repo, kp->snapshot, kp->timestamp, a->force,
                               (int64_t)time(NULL), &r, &e);
    free(kp);
    if (rc != RH_OK)
        return fail(&e);
    if (r.snapshot_signed)
        printf("signed snapshot version %llu, timestamp version %llu\n",
               (unsigned long long)r.snapshot_version, (unsigned long long)r.timestamp_version);
    else if (r.timestamp_signed)
        printf("signed timestamp version %llu\n", (unsigned long long)r.timestamp_version);
    else
        printf("fresh: timestamp version %llu, snapshot version %llu (nothing to sign)\n",
               (unsigned long long)r.timestamp_version, (unsigned long long)r.snapshot_version);
    if (r.targets_expiring)
        fprintf(stderr, PROG ": warning: %s: targets expires within half its lifetime; run "
                        "publish (offline targets key) soon\n", a->repo);
    if (r.root_expiring)
        fprintf(stderr, PROG ": warning: %s: root expires within half its lifetime; run "
                        "rotate --role root (offline root keys) soon\n", a->repo);
    return 0;
}

static int cmd_rotate(const args *a)
{
    int u = reject_others("rotate", a, false, true, false, false, false);
    if (u != 0)
        return u;
    if (a->role == NULL)
        return usage_err("rotate", "%s", "--role ROLE is required");
    int role = -1;
    for (int r = 0; r < RH_ROLE_COUNT; r++)
        if (strcmp(a->role, rh_role_name((rh_role)r)) == 0)
            role = r;
    if (role < 0)
        return usage_err("rotate", "--role: expected root, targets, snapshot or timestamp, "
                                   "got '%s'", a->role);
    rh_error e;
    rh_error_clear(&e);
    rh_origin_rotate_result r;
    if (rh_origin_rotate(a->repo, a->keys, (rh_role)role, (int64_t)time(NULL), &r, &e) != RH_OK)
        return fail(&e);
    printf("rotated %s: root version %llu, new key ID %s\n", a->role,
           (unsigned long long)r.root_version, r.keyid);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return rh_origin_serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    static const struct {
        const char *name;
        const char *usage;
        int (*run)(const args *);
    } cmds[] = {
        {"init", usage_init, cmd_init},
        {"publish", usage_publish, cmd_publish},
        {"refresh", usage_refresh, cmd_refresh},
        {"rotate", usage_rotate, cmd_rotate},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name) != 0)
            continue;
        args a;
        int u = parse_args(cmd, argc - 2, argv + 2, &a);
        if (u != 0)
            return u;
        if (a.help) {
            fputs(cmds[i].usage, stdout);
            return 0;
        }
        return cmds[i].run(&a);
    }
    fprintf(stderr, PROG ": unknown command '%s'\n\n%s", cmd, usage_main);
    return EXIT_USAGE;
}
