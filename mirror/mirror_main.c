/* mirror_main.c -- rhine-mirror: the command line (daemon, and one sync round with --once). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/config.h"
#include "manifest/rh_error.h"
#include "mirror/daemon.h"
#include "mirror/sync.h"
#include "mirror/witness.h"
#include "server/httpd.h"
#include "net/fetch.h"

#define RH_MIRROR_MAX_CLI_UPSTREAMS 64

static void usage(FILE *f)
{
    fprintf(f,
        "usage: rhine-mirror [--config mirror.yaml] [overrides]           (daemon)\n"
        "       rhine-mirror sync --once [--config mirror.yaml] [overrides] (one round)\n"
        "       rhine-mirror witness-keygen --name NAME --out PATH   (new witness key)\n"
        "       rhine-mirror log-reset --data DIR | --config mirror.yaml\n"
        "\n"
        "Mirrors a TUF repository (origin or another mirror): verifies the whole repository\n"
        "against the pinned root, downloads new targets over one HTTP/2 connection per upstream,\n"
        "and publishes DATA/public atomically (targets, roles, snapshot, roots, timestamp last).\n"
        "The daemon serves DATA/public (h2 + HTTP/1.1 over TLS on --listen, h2c + HTTP/1.1 on\n"
        "--listen-h2c), GET /metrics, GET /.well-known/rhine/status, and POST /push (a signed\n"
        "timestamp.json from the origin triggers a sync); it polls every sync.poll_interval.\n"
        "Overrides (flags win over the config file; without --config they are the config):\n"
        "  --upstream URL        repository to sync from (repeatable, tried in order)\n"
        "  --root FILE           pinned initial root.json\n"
        "  --data DIR            data directory (public/ served, staging/, state.json)\n"
        "  --listen ADDR:PORT    TLS listener (needs --tls-cert and --tls-key)\n"
        "  --listen-h2c ADDR:PORT  cleartext listener\n"
        "  --tls-cert FILE --tls-key FILE\n"
        "  --ca FILE             CA bundle for https:// upstreams\n"
        "  --port-file FILE      write \"tls PORT\" / \"clear PORT\" lines once listening\n"
        "  --name NAME --region REGION   shown in status (defaults: mirror, none)\n"
        "  --concurrency N --retries N --poll-interval D --grace-period D --timeout D\n"
        "  --low-speed-time D    sync settings (D: 30s, 5m, 24h)\n"
        "  --log-key VKEY|FILE   the origin's transparency-log verifier key (config: log_key):\n"
        "                        mirror /log/ too, publish only metadata the log holds, and\n"
        "                        only checkpoints consistent with the last one accepted\n"
        "  --witness-key FILE    cosign each verified checkpoint (config: witness.key) as\n"
        "  --witness-name NAME   (config: witness.name; default the mirror's --name)\n"
        "Transparency log (DESIGN 8): with a log key every round fetches the upstream's\n"
        "log/checkpoint, checks it extends the checkpoint accepted last (DATA/state.json),\n"
        "verifies every tile and bundle, and refuses a version whose metadata is not logged\n"
        "with the same bytes (\"not in the transparency log\"). An inconsistent checkpoint\n"
        "(log shrunk, rewritten or forked) keeps both signed checkpoints under\n"
        "DATA/evidence/<time>/, shows \"state\": \"inconsistent\" in the status, and the mirror\n"
        "refuses that log, serving its last good version, until an operator who has\n"
        "investigated runs `rhine-mirror log-reset --data DIR`: the accepted checkpoint is\n"
        "forgotten (evidence stays; the log served so far moves to\n"
        "DATA/evidence/<time>-reset/served-log/) and the next round trusts the upstream's\n"
        "log afresh.\n"
        "witness-keygen writes PATH (Ed25519 PKCS#8, 0600) and PATH.pub (the cosignature/v1\n"
        "vkey, type 0x04, for clients' witnesses and rhine-audit --witness); it never\n"
        "overwrites a key, and the key signs nothing but checkpoint cosignatures.\n"
        "Signals: SIGHUP reloads the config and the TLS certificate; SIGTERM stops.\n"
        "Exit status of sync --once: 0 published a new version, 3 nothing to do (already\n"
        "serving the upstream's version), 1 failed (\"rhine-mirror: <source>: <reason>\"),\n"
        "2 usage error, 4 the transparency log is inconsistent (evidence kept) or refused.\n"
        "The daemon exits 0 on SIGTERM, 1 when it cannot start.\n");
}

typedef struct cli {
    const char *config;
    const char *upstreams[RH_MIRROR_MAX_CLI_UPSTREAMS];
    size_t nupstreams;
    const char *root, *data, *listen, *listen_h2c, *tls_cert, *tls_key, *ca, *port_file;
    const char *name, *region;
    const char *concurrency, *retries, *poll, *grace, *timeout, *low_speed_time;
    const char *log_key, *witness_key, *witness_name;
} cli;

static rh_err set_str(char **dst, const char *v, rh_error *e)
{
    if (v == NULL)
        return RH_OK;
    char *s = strdup(v);
    if (s == NULL)
        return rh_fail(e, RH_ENOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return RH_OK;
}

static rh_err set_int(int64_t *dst, const char *v, const char *flag, int64_t lo, int64_t hi,
                      bool duration, rh_error *e)
{
    if (v == NULL)
        return RH_OK;
    int64_t x = 0;
    if (duration) {
        if (rh_parse_duration(v, &x) != RH_OK)
            return rh_fail(e, RH_ECONFIG, "%s: expected a duration (30s, 5m, 24h), got \"%s\"",
                           flag, v);
    } else {
        char *end = NULL;
        long long y = strtoll(v, &end, 10);
        if (end == v || *end != '\0')
            return rh_fail(e, RH_ECONFIG, "%s: expected a number, got \"%s\"", flag, v);
        x = y;
    }
    if (x < lo || x > hi)
        return rh_fail(e, RH_ECONFIG, "%s: expected %lld..%lld, got \"%s\"", flag,
                       (long long)lo, (long long)hi, v);
    *dst = x;
    return RH_OK;
}

/* The configuration: the file (if any), then the flags. */
static rh_err build_config(void *ctx, rh_mirror_config *out, rh_error *e)
{
    const cli *c = ctx;
    rh_mirror_config cfg;
    memset(&cfg, 0, sizeof cfg);
    rh_err rc = RH_OK;
    if (c->config != NULL) {
        if ((rc = rh_config_load_mirror(c->config, &cfg, e)) != RH_OK)
            return rc;
    } else {
        cfg.sync.concurrency = 100;
        cfg.sync.poll_interval = 60;
        cfg.sync.timeout = 300;
        cfg.sync.low_speed_limit = 1024;
        cfg.sync.low_speed_time = 30;
        cfg.sync.retries = 3;
        cfg.sync.grace_period = 24 * 3600;
        cfg.sync.max_target_size = 4ull << 30;
    }
    if (c->nupstreams > 0) {
        char **v = calloc(c->nupstreams, sizeof *v);
        if (v == NULL) {
            rc = rh_fail(e, RH_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < cfg.nupstreams; i++)
            free(cfg.upstreams[i]);
        free(cfg.upstreams);
        cfg.upstreams = v;
        cfg.nupstreams = 0;
        for (size_t i = 0; i < c->nupstreams; i++) {
            size_t n = strlen(c->upstreams[i]);
            while (n > 0 && c->upstreams[i][n - 1] == '/')
                n--;
            if (strncmp(c->upstreams[i], "http://", 7) != 0 &&
                strncmp(c->upstreams[i], "https://", 8) != 0) {
                rc = rh_fail(e, RH_ECONFIG, "--upstream: expected an http:// or https:// URL, "
                             "got \"%s\"", c->upstreams[i]);
                goto out;
            }
            if ((v[i] = strndup(c->upstreams[i], n)) == NULL) {
                rc = rh_fail(e, RH_ENOMEM, "out of memory");
                goto out;
            }
            cfg.nupstreams++;
        }
    }
    if ((rc = set_str(&cfg.root, c->root, e)) != RH_OK ||
        (rc = set_str(&cfg.data, c->data, e)) != RH_OK ||
        (rc = set_str(&cfg.listen, c->listen, e)) != RH_OK ||
        (rc = set_str(&cfg.listen_h2c, c->listen_h2c, e)) != RH_OK ||
        (rc = set_str(&cfg.tls_cert, c->tls_cert, e)) != RH_OK ||
        (rc = set_str(&cfg.tls_key, c->tls_key, e)) != RH_OK ||
        (rc = set_str(&cfg.ca, c->ca, e)) != RH_OK ||
        (rc = set_str(&cfg.port_file, c->port_file, e)) != RH_OK ||
        (rc = set_str(&cfg.name, c->name != NULL ? c->name : (cfg.name ? NULL : "mirror"), e)) !=
            RH_OK ||
        (rc = set_str(&cfg.region, c->region != NULL ? c->region : (cfg.region ? NULL : "none"),
                      e)) != RH_OK ||
        (rc = set_int(&cfg.sync.concurrency, c->concurrency, "--concurrency", 1, 256, false, e)) !=
            RH_OK ||
        (rc = set_int(&cfg.sync.retries, c->retries, "--retries", 0, 10, false, e)) != RH_OK ||
        (rc = set_int(&cfg.sync.poll_interval, c->poll, "--poll-interval", 1, 86400, true, e)) !=
            RH_OK ||
        (rc = set_int(&cfg.sync.grace_period, c->grace, "--grace-period", 0, 30 * 86400, true,
                      e)) != RH_OK ||
        (rc = set_int(&cfg.sync.timeout, c->timeout, "--timeout", 1, 86400, true, e)) != RH_OK ||
        (rc = set_int(&cfg.sync.low_speed_time, c->low_speed_time, "--low-speed-time", 1, 3600,
                      true, e)) != RH_OK ||
        (rc = set_str(&cfg.log_key, c->log_key, e)) != RH_OK ||
        (rc = set_str(&cfg.witness.key, c->witness_key, e)) != RH_OK ||
        (rc = set_str(&cfg.witness.name, c->witness_name, e)) != RH_OK)
        goto out;
    if (c->witness_key != NULL)
        cfg.has_witness = true;
    if (cfg.has_witness && cfg.log_key == NULL) {
        rc = rh_fail(e, RH_ECONFIG, "%s: a witness needs log_key (--log-key): it cosigns only "
                     "checkpoints it verified", c->config != NULL ? c->config : "command line");
        goto out;
    }
    if (cfg.log_key != NULL) {
        /* Checked now (and the witness key loaded once) so a bad key stops start-up. */
        rh_witness_run wr;
        rh_witness_opts wo = {cfg.log_key, cfg.has_witness ? cfg.witness.key : NULL,
                              cfg.witness.name != NULL ? cfg.witness.name : cfg.name};
        rc = rh_witness_run_init(&wr, &wo, e);
        rh_witness_run_cleanup(&wr);
        if (rc != RH_OK) {
            rc = RH_ECONFIG;
            goto out;
        }
    }
    if (cfg.nupstreams == 0 || cfg.root == NULL || cfg.data == NULL) {
        rc = rh_fail(e, RH_ECONFIG, "%s: need upstreams, root and data (--upstream, --root, "
                     "--data)", c->config != NULL ? c->config : "command line");
        goto out;
    }
    if (cfg.listen != NULL && (cfg.tls_cert == NULL || cfg.tls_key == NULL)) {
        rc = rh_fail(e, RH_ECONFIG, "%s: listen needs tls_cert and tls_key",
                     c->config != NULL ? c->config : "command line");
        goto out;
    }
    *out = cfg;
    return RH_OK;
out:
    rh_mirror_config_cleanup(&cfg);
    return rc;
}

static int sync_once(const rh_mirror_config *cfg)
{
    rh_error e;
    rh_error_clear(&e);
    rh_sync_opts o = {(const char *const *)cfg->upstreams, cfg->nupstreams, cfg->root, cfg->data,
                      cfg->ca, cfg->sync, NULL, 0};
    rh_sync_result r;
    rh_log_round lr;
    rh_witness_opts wo = {cfg->log_key, cfg->has_witness ? cfg->witness.key : NULL,
                          cfg->witness.name != NULL ? cfg->witness.name : cfg->name};
    rh_err rc = rh_mirror_sync_round(&o, &wo, &r, &lr, &e);
    if (rc != RH_OK) {
        fprintf(stderr, "rhine-mirror: %s\n", e.msg);
        return lr.inconsistent || lr.refused ? 4 : 1;
    }
    if (cfg->log_key != NULL) {
        rh_log_status ls;
        rh_witness_status(cfg->data, &ls);
        printf("log: %llu entries verified%s\n", (unsigned long long)ls.size,
               lr.cosigned ? ", checkpoint cosigned" : "");
    }
    printf("%s: timestamp %llu, snapshot %llu, targets %llu, root %llu from %s; %zu files "
           "published, %zu collected, %llu objects (%llu bytes) fetched in %.2fs (metadata "
           "%.2fs, targets %.2fs, publish %.2fs)\n",
           r.published ? "published" : "unchanged",
           (unsigned long long)r.served.v[1], (unsigned long long)r.served.v[2],
           (unsigned long long)r.served.v[3], (unsigned long long)r.served.v[0], r.upstream,
           r.published_files, r.collected_files, (unsigned long long)r.objects,
           (unsigned long long)r.bytes, r.seconds, r.metadata_seconds, r.targets_seconds,
           r.publish_seconds);
    return r.published ? 0 : 3;
}

/* rhine-mirror witness-keygen --name NAME --out PATH */
static int witness_keygen(int argc, char **argv)
{
    const char *name = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (name == NULL || out == NULL) {
        fprintf(stderr, "rhine-mirror: witness-keygen needs --name NAME and --out PATH\n");
        return 2;
    }
    rh_error e;
    rh_error_clear(&e);
    rh_buf vkey;
    rh_buf_init(&vkey, 4096);
    rh_err rc = rh_witness_keygen(name, out, &vkey, &e);
    if (rc == RH_OK)
        printf("%.*s\n", (int)vkey.len, (const char *)vkey.data);
    else
        fprintf(stderr, "rhine-mirror: witness-keygen: %s\n", e.msg);
    rh_buf_cleanup(&vkey);
    return rc == RH_OK ? 0 : rc == RH_EINVAL || rc == RH_EPARSE ? 2 : 1;
}

/* rhine-mirror log-reset --data DIR | --config FILE */
static int log_reset(int argc, char **argv)
{
    const char *data = NULL, *config = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    rh_error e;
    rh_error_clear(&e);
    rh_mirror_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (data == NULL && config != NULL) {
        if (rh_config_load_mirror(config, &cfg, &e) != RH_OK) {
            fprintf(stderr, "rhine-mirror: %s\n", e.msg);
            return 1;
        }
        data = cfg.data;
    }
    if (data == NULL) {
        fprintf(stderr, "rhine-mirror: log-reset needs --data DIR or --config FILE\n");
        return 2;
    }
    rh_log_status ls;
    rh_witness_status(data, &ls);
    rh_err rc = rh_witness_log_reset(data, &e);
    if (rc == RH_OK)
        printf("log-reset: %s forgets its accepted checkpoint%s%s; %zu evidence "
               "director%s kept; the next sync trusts the upstream's log afresh\n", data,
               ls.inconsistent ? " and the refusal set by " : "", ls.inconsistent ? ls.marker : "",
               ls.nevidence, ls.nevidence == 1 ? "y" : "ies");
    else
        fprintf(stderr, "rhine-mirror: log-reset: %s\n", e.msg);
    rh_mirror_config_cleanup(&cfg);
    return rc == RH_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    static cli c;
    if (argc > 1 && strcmp(argv[1], "witness-keygen") == 0)
        return witness_keygen(argc, argv);
    if (argc > 1 && strcmp(argv[1], "log-reset") == 0)
        return log_reset(argc, argv);
    bool is_sync = false, once = false;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "sync") == 0) {
        is_sync = true;
        first = 2;
    }
    enum { O_UP = 256, O_ROOT, O_DATA, O_LISTEN, O_H2C, O_CERT, O_KEY, O_CA, O_PORT, O_NAME,
           O_REGION, O_CONC, O_RETRIES, O_POLL, O_GRACE, O_TIMEOUT, O_LST, O_ONCE, O_CONFIG,
           O_LOGKEY, O_WKEY, O_WNAME };
    static const struct option opts[] = {
        {"config", required_argument, NULL, O_CONFIG}, {"upstream", required_argument, NULL, O_UP},
        {"root", required_argument, NULL, O_ROOT},     {"data", required_argument, NULL, O_DATA},
        {"listen", required_argument, NULL, O_LISTEN}, {"listen-h2c", required_argument, NULL, O_H2C},
        {"tls-cert", required_argument, NULL, O_CERT}, {"tls-key", required_argument, NULL, O_KEY},
        {"ca", required_argument, NULL, O_CA},         {"port-file", required_argument, NULL, O_PORT},
        {"name", required_argument, NULL, O_NAME},     {"region", required_argument, NULL, O_REGION},
        {"concurrency", required_argument, NULL, O_CONC},
        {"retries", required_argument, NULL, O_RETRIES},
        {"poll-interval", required_argument, NULL, O_POLL},
        {"grace-period", required_argument, NULL, O_GRACE},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"low-speed-time", required_argument, NULL, O_LST},
        {"log-key", required_argument, NULL, O_LOGKEY},
        {"witness-key", required_argument, NULL, O_WKEY},
        {"witness-name", required_argument, NULL, O_WNAME},
        {"once", no_argument, NULL, O_ONCE},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    optind = first;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_CONFIG: c.config = optarg; break;
        case O_UP:
            if (c.nupstreams == RH_MIRROR_MAX_CLI_UPSTREAMS) {
                fprintf(stderr, "rhine-mirror: more than %d --upstream\n",
                        RH_MIRROR_MAX_CLI_UPSTREAMS);
                return 2;
            }
            c.upstreams[c.nupstreams++] = optarg;
            break;
        case O_ROOT: c.root = optarg; break;
        case O_DATA: c.data = optarg; break;
        case O_LISTEN: c.listen = optarg; break;
        case O_H2C: c.listen_h2c = optarg; break;
        case O_CERT: c.tls_cert = optarg; break;
        case O_KEY: c.tls_key = optarg; break;
        case O_CA: c.ca = optarg; break;
        case O_PORT: c.port_file = optarg; break;
        case O_NAME: c.name = optarg; break;
        case O_REGION: c.region = optarg; break;
        case O_CONC: c.concurrency = optarg; break;
        case O_RETRIES: c.retries = optarg; break;
        case O_POLL: c.poll = optarg; break;
        case O_GRACE: c.grace = optarg; break;
        case O_TIMEOUT: c.timeout = optarg; break;
        case O_LST: c.low_speed_time = optarg; break;
        case O_LOGKEY: c.log_key = optarg; break;
        case O_WKEY: c.witness_key = optarg; break;
        case O_WNAME: c.witness_name = optarg; break;
        case O_ONCE: once = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || (is_sync && !once) || (!is_sync && once)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rh_error e;
    rh_error_clear(&e);
    if (rh_net_global_init(&e) != RH_OK) {
        fprintf(stderr, "rhine-mirror: %s\n", e.msg);
        return 1;
    }
    rh_mirror_config cfg;
    if (build_config(&c, &cfg, &e) != RH_OK) {
        fprintf(stderr, "rhine-mirror: %s\n", e.msg);
        return e.code == RH_ECONFIG && c.config == NULL ? 2 : 1;
    }
    if (is_sync) {
        (void)rh_httpd_raise_nofile(); /* transfers in flight are bounded by half of it */
        int st = sync_once(&cfg);
        rh_mirror_config_cleanup(&cfg);
        return st;
    }
    if (rh_mirror_daemon_run(&cfg, build_config, &c, &e) != RH_OK) {
        fprintf(stderr, "rhine-mirror: %s\n", e.msg);
        return 1;
    }
    return 0;
}
