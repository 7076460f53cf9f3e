/* fuzz_config.c -- libFuzzer target: the YAML config loader (memory variant) for all three
 * config kinds; every rejection must carry a positioned message, every success must clean up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failure must name the file first ("fuzz.yaml:" or "sub/fuzz.yaml:"). */
static void check_failure(rh_err rc, const rh_error *e, const char *name)
{
    if (rc == RH_OK || e->code != rc || strncmp(e->msg, name, strlen(name)) != 0 ||
        e->msg[strlen(name)] != ':')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char name[] = "sub/fuzz.yaml";
    const char *text = (const char *)data;
    rh_error e;
    rh_err rc;

    rh_origin_config o;
    rh_error_clear(&e);
    rc = rh_config_parse_origin(name, text, size, &o, &e);
    if (rc == RH_OK) {
        if (o.repo == NULL || o.refresh_interval >= o.timestamp_expiry ||
            (o.nmirrors > 0) != (o.mirrors != NULL) || (o.has_log && o.log.key == NULL))
            abort();
        rh_origin_config_cleanup(&o);
    } else {
        check_failure(rc, &e, name);
    }

    rh_mirror_config m;
    rh_error_clear(&e);
    rc = rh_config_parse_mirror(name, text, size, &m, &e);
    if (rc == RH_OK) {
        if (m.nupstreams < 1 || m.upstreams[0] == NULL || m.sync.concurrency < 1 ||
            m.sync.concurrency > 256 || (m.listen == NULL && m.listen_h2c == NULL))
            abort();
        rh_mirror_config_cleanup(&m);
    } else {
        check_failure(rc, &e, name);
    }

    rh_client_config c;
    rh_error_clear(&e);
    rc = rh_config_parse_client(name, text, size, &c, &e);
    if (rc == RH_OK) {
        if (c.nmirrors < 1 || c.mirrors[0].url == NULL ||
            (c.has_witnesses && (c.witnesses.quorum < 1 ||
                                 (size_t)c.witnesses.quorum > c.witnesses.nkeys)))
            abort();
        rh_client_config_cleanup(&c);
    } else {
        check_failure(rc, &e, name);
    }
    return 0;
}
