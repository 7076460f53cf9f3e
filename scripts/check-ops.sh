#!/bin/sh
# check-ops.sh -- check the operations files with the tools that read them: systemd-analyze verify
# (units, against the built binaries) and the hardening each unit must keep, systemd-sysusers
# (users file), docker-compose config (compose file), promtool check/test rules (alerts).
# Installs nothing; exits 1 when any check fails, 2 when a tool is missing.
#   BUILD=build scripts/check-ops.sh
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=$(cd "${BUILD:-build}" 2>/dev/null && pwd) || { echo "check-ops: ${BUILD:-build}: not built" >&2; exit 1; }
rc=0
fail() { echo "check-ops: $*" >&2; rc=1; }

for tool in systemd-analyze systemd-sysusers docker-compose promtool; do
    command -v "$tool" >/dev/null 2>&1 || { echo "check-ops: $tool not found" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- systemd units -------------------------------------------------------------------------
# Units name /usr/local/bin/ (the default PREFIX); verify copies that point at the built binaries
# so that `verify` also checks the executables exist.
mkdir -p "$tmp/units"
for u in configs/systemd/*.service; do
    n=$(basename "$u")
    sed "s|/usr/local/bin/|$BUILD/|g" "$u" >"$tmp/units/$n"
    # The hardening the operations guide promises, one directive each.
    want() { grep -qxE "$1" "$u" || fail "$u: needs a line matching '$1'"; }
    want 'User=rhine-[a-z]+'
    want 'ProtectSystem=strict'
    want 'NoNewPrivileges=yes'
    want 'Restart=on-failure'
    want 'ExecReload=/bin/kill -HUP \$MAINPID'
    want 'CapabilityBoundingSet=(CAP_NET_BIND_SERVICE)?'
    want 'ReadWritePaths=/var/lib/rhine/[a-z]+'
    [ "$(grep -c '^ReadWritePaths=' "$u")" -eq 1 ] || fail "$u: exactly one ReadWritePaths= line"
    ! grep -qE '^(User=root|PrivilegeEscalation|AmbientCapabilities=.*CAP_(SYS|DAC|CHOWN|SETUID))' "$u" ||
        fail "$u: runs with privileges"
done
if out=$(systemd-analyze verify --man=no "$tmp"/units/*.service 2>&1); then
    echo "check-ops: systemd-analyze verify: ok ($(ls "$tmp/units" | tr '\n' ' '))"
else
    fail "systemd-analyze verify failed:"; echo "$out" >&2
fi
# Exposure score (0 = locked down .. 10 = unprotected): keep every unit at 2.0 or below.
for u in "$tmp"/units/*.service; do
    systemd-analyze security --offline=yes --threshold=20 "$u" >/dev/null 2>&1 ||
        fail "$(basename "$u"): systemd-analyze security exposure above 2.0"
done
# sysusers: create the users in a scratch root to prove the file parses.
mkdir -p "$tmp/root/etc" "$tmp/root/usr/lib/sysusers.d"
cp configs/systemd/rhine.sysusers.conf "$tmp/root/usr/lib/sysusers.d/rhine.conf"
if out=$(systemd-sysusers --root="$tmp/root" 2>&1) &&
   grep -q '^rhine-origin:' "$tmp/root/etc/passwd" && grep -q '^rhine-mirror:' "$tmp/root/etc/passwd"; then
    echo "check-ops: systemd-sysusers: ok (rhine-origin, rhine-mirror)"
else
    fail "systemd-sysusers configs/systemd/rhine.sysusers.conf failed:"; echo "$out" >&2
fi

# --- docker compose ------------------------------------------------------------------------
if out=$(docker-compose -f docker/compose.yaml config 2>&1); then
    n=$(printf '%s\n' "$out" | grep -cE '^  [a-z-]+:$')
    echo "check-ops: docker-compose config: ok ($n services)"
else
    fail "docker-compose config failed:"; echo "$out" >&2
fi

# --- Prometheus alerting rules -------------------------------------------------------------
rules=$(ls configs/prometheus/*.rules.yml 2>/dev/null)
tests=$(ls configs/prometheus/*.test.yml 2>/dev/null)
if [ -z "$rules" ]; then
    fail "no configs/prometheus/*.rules.yml"
elif out=$(promtool check rules $rules 2>&1); then
    echo "check-ops: promtool check rules: ok"
else
    fail "promtool check rules failed:"; echo "$out" >&2
fi
if [ -n "$tests" ]; then
    if out=$(cd configs/prometheus && promtool test rules $(basename -a $tests) 2>&1); then
        echo "check-ops: promtool test rules: ok"
    else
        fail "promtool test rules failed:"; echo "$out" >&2
    fi
fi

[ $rc -eq 0 ] && echo "check-ops: all ok"
exit $rc
