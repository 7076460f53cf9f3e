#!/bin/sh
# run.sh -- make bench: install the comparison tools if missing, then run bench/bench.py.
# Loopback only; servers on CPU 0, load generators on CPU 1; results in bench/results/.
# Knobs (see bench/bench.py): BENCH_SCALE, BENCH_ONLY, BENCH_SERVERS, BENCH_REPEAT, BENCH_LEVEL,
# BENCH_BUILD, BENCH_TMPDIR, BENCH_KEEP, BENCH_PROFILE.
set -eu

cd "$(dirname "$0")/.."

# Debian bookworm packages: nginx (Debian's, with the http2 module), nghttpd and h2load, rsync,
# curl, GNU time (peak RSS), util-linux (taskset), openssl, python3; linux-perf for BENCH_PROFILE.
PKGS="nginx nghttp2-server nghttp2-client rsync curl time util-linux openssl python3"
[ "${BENCH_PROFILE:-}" = 1 ] && PKGS="$PKGS linux-perf"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # policy-rc.d-free install: the packaged nginx service may start on port 80; bench.py runs
    # its own nginx with its own prefix and never touches that one.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ "$(nproc)" -lt 2 ]; then
    echo "bench: needs 2 CPUs (server on CPU 0, load generator on CPU 1)" >&2
    exit 1
fi

# Bound the whole run (the budget is 15 minutes on a 2-core machine); bench.py kills what it
# started on SIGTERM.
exec timeout --signal=TERM --kill-after=30 "${BENCH_TIMEOUT:-1500}" \
    /usr/bin/python3 bench/bench.py "$@"
