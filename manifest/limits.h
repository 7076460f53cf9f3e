/* limits.h -- every ceiling on what Rhine reads from the network or disk, in one place. */
#ifndef RH_LIMITS_H
#define RH_LIMITS_H

/* JSON / metadata */
#define RH_MAX_JSON_BYTES        (16u * 1024 * 1024) /* any one metadata document */
#define RH_MAX_JSON_DEPTH        64                  /* nesting of arrays and objects */
#define RH_MAX_ROOT_BYTES        (512u * 1024)       /* TUF 5.3: default root download limit */
#define RH_MAX_TIMESTAMP_BYTES   (16u * 1024)        /* TUF 5.4: default timestamp limit */
#define RH_MAX_SNAPSHOT_BYTES    (8u * 1024 * 1024)  /* when timestamp gives no length */
#define RH_MAX_TARGETS_BYTES     (16u * 1024 * 1024) /* when snapshot gives no length */
#define RH_MAX_ROOT_ROTATIONS    1024                /* TUF 5.3.3: bound the chain walk */
#define RH_MAX_DELEGATIONS       32                  /* TUF 5.6.7: roles visited per search */
#define RH_MAX_TARGET_PATH       4096                /* bytes in one target path */
#define RH_MAX_ROLE_NAME         255                 /* bytes in one role name */
/* Signatures in one metadata envelope: bounds the verifications a hostile file can cause. */
#define RH_MAX_SIGNATURES        1024

/* zstd */
#define RH_ZSTD_WINDOW_LOG_MAX   27                  /* 128 MiB decoder window at most */

/* Config files */
#define RH_MAX_CONFIG_BYTES      (1024u * 1024)

#endif
