/* fetch_example.c -- embedding librhine-client: update, then fetch one target into a file.
 *
 *   cc -std=c11 -Iinclude client/examples/fetch_example.c build/librhine-client.a \
 *      build/libnet.a build/libmanifest.a $(pkg-config --libs libcurl openssl jansson \
 *      yaml-0.1 libzstd) -lpthread -o fetch_example
 *   ./fetch_example client.yaml TARGET DEST
 */
#include <stdint.h>
#include <stdio.h>

#include "rhine/client.h"

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (done == total)
        fprintf(stderr, "received %llu bytes\n", (unsigned long long)total);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFIG TARGET DEST\n", argv[0]);
        return 2;
    }
    char err[1024];
    rhine_client *c = NULL;
    rhine_code rc = rhine_client_new_from_config(argv[1], &c, err, sizeof(err));
    if (rc != RHINE_OK) {
        fprintf(stderr, "config: %s (%s)\n", err, rhine_code_name(rc));
        return 1;
    }
    rc = rhine_client_update(c);
    if (rc == RHINE_OK)
        rc = rhine_client_fetch(c, argv[2], argv[3], on_progress, NULL);
    if (rc != RHINE_OK) {
        /* Act on the class of failure; show the message naming the mirror and the reason. */
        fprintf(stderr, "%s: %s\n", rhine_code_name(rc), rhine_client_errmsg(c));
        rhine_client_free(c);
        return rc == RHINE_ERR_VERIFY || rc == RHINE_ERR_ROLLBACK ? 3 : 1;
    }
    rhine_status s;
    if (rhine_client_status(c, &s) == RHINE_OK)
        printf("installed %s from %s (targets version %llu)\n", argv[2],
               s.last_mirror ? s.last_mirror : "?", (unsigned long long)s.targets.version);
    rhine_client_free(c);
    return 0;
}
