/* audit_report.h -- what the auditor concludes from a verified log: every logged metadata file
 * checked against what a mirror serves, the releases with their changes and provenance, and
 * rebuilt payloads compared with a release. Findings are printed as evidence lines. */
#ifndef RH_AUDIT_REPORT_H
#define RH_AUDIT_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "audit/audit_log.h"

/* Exit codes of rhine-audit (documented in its usage). */
#define RH_AUDIT_EXIT_OK           0
#define RH_AUDIT_EXIT_INCONSISTENT 1 /* evidence of a lying origin, mirror or log */
#define RH_AUDIT_EXIT_USAGE        2
#define RH_AUDIT_EXIT_INCOMPLETE   3 /* something could not be fetched: nothing proven */
#define RH_AUDIT_EXIT_PROVENANCE   4 /* consistent, but a release lacks full provenance */

typedef struct rh_audit_findings {
    size_t inconsistent; /* "INCONSISTENT: ..." lines */
    size_t unavailable;  /* "UNAVAILABLE: ..." lines */
    size_t unproven;     /* "NO PROVENANCE: ..." lines */
    size_t releases;
} rh_audit_findings;

/* Exit code for findings (inconsistent > incomplete > provenance > ok). */
int rh_audit_exit_code(const rh_audit_findings *f);

/* For every entry of log, fetches metadata/<version>.<role>.json from src and checks length and
 * sha256; the version inside; one (role, version) never logged with two hashes; every targets
 * version a logged snapshot names is logged; the served timestamp's snapshot is logged; root
 * versions are 1, 2, ... and the next root is not served. Prints a table of releases (targets
 * versions: logged time, files, added/changed/removed paths, provenance cross-checked with the
 * file's signed x-rhine-provenance) to out and each finding as a line. */
void rh_audit_list(const rh_log_src *src, const rh_log_view *log, FILE *out,
                   rh_audit_findings *f);

/* Compares the payloads under dir (rebuilt from source) with targets version release of the
 * log: for each target "<p>.zst", dir/<p> must have the custom.rhine length and sha256 of the
 * uncompressed payload; files under dir that the release lacks are findings too. Prints one line
 * per file. */
void rh_audit_verify_build(const rh_log_src *src, const rh_log_view *log, uint64_t release,
                           const char *dir, FILE *out, rh_audit_findings *f);

#endif
