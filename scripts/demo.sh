#!/usr/bin/env bash
# demo.sh -- `make demo`: one origin, six regional mirrors and a client per region on loopback;
# two releases pushed worldwide and logged in the transparency log every mirror witnesses, clients
# that accept only witnessed metadata, an auditor replaying the log, then a tampered mirror caught
# and routed around. Under 2 minutes.
#
# Binaries come from $RHINE_BIN (default build/). Everything lives in build/demo/ (wiped first).
# Every process started here is stopped by its PID on exit; on failure the logs are printed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${RHINE_BIN:-build}
BIN=$(cd "$BIN" && pwd)
D=$ROOT/build/demo
CFG=$ROOT/configs
PKI=$D/pki
LOGS=$D/logs
REGIONS=(na eu au jp kr sg)
declare -A TLS_PORT=([na]=8441 [eu]=8442 [au]=8443 [jp]=8444 [kr]=8445 [sg]=8446)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PIDS=()
T0=$(date +%s.%N)

say()  { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
now()  { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

STOP_BAD=0
stop_all() {
    local p st
    for p in "${PIDS[@]:-}"; do
        if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        st=0
        wait "$p" 2>/dev/null || st=$?
        if [ "$st" -ne 0 ]; then
            printf '   pid %s exited with status %s\n' "$p" "$st" >&2
            STOP_BAD=1
        fi
    done
    PIDS=()
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [ "$rc" -ne 0 ]; then
        printf '\nDEMO FAILED (exit %d). Logs:\n' "$rc" >&2
        for f in "$LOGS"/*.log; do
            [ -f "$f" ] || continue
            printf -- '----- %s (last 40 lines)\n' "$f" >&2
            tail -n 40 "$f" >&2
        done
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

wait_file() { # FILE SECONDS
    local _
    for _ in $(seq 1 $(($2 * 20))); do [ -s "$1" ] && return 0; sleep 0.05; done
    die "$1 did not appear within $2 s"
}

# Version of a timestamp.json served at URL (empty when unreachable).
ts_version() {
    curl -sf --max-time 2 --cacert "$PKI/ca.pem" "$1/metadata/timestamp.json" 2>/dev/null |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["signed"]["version"])' 2>/dev/null || true
}
file_version() {
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed"]["version"])' "$1"
}

# Polls all six mirrors until each serves timestamp version >= $1; prints one line per region
# with the time since $2 (epoch seconds). Fails after 60 s.
wait_propagation() {
    local want=$1 start=$2 label=$3 r v left deadline
    declare -A done_at=()
    deadline=$(awk -v s="$start" 'BEGIN { printf "%d", s + 60 }')
    left=6
    while [ "$left" -gt 0 ]; do
        for r in "${REGIONS[@]}"; do
            [ -n "${done_at[$r]:-}" ] && continue
            v=$(ts_version "https://127.0.0.1:${TLS_PORT[$r]}")
            if [ -n "$v" ] && [ "$v" -ge "$want" ]; then
                done_at[$r]=$(secs "$start" "$(now)")
                left=$((left - 1))
                printf '   mirror %-2s (https://127.0.0.1:%s) serves %s (timestamp v%s) after %6s s\n' \
                    "$r" "${TLS_PORT[$r]}" "$label" "$v" "${done_at[$r]}"
            fi
        done
        [ "$left" -eq 0 ] && break
        [ "$(date +%s)" -lt "$deadline" ] || die "$label did not reach every mirror within 60 s"
        sleep 0.05
    done
    info "all six regions received $label"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# The log checkpoint every mirror serves: size, root, and who signed it. All six must serve the
# same tree, each cosigned by the mirror itself. Sets LOGSIZE. Waits up to 10 s per mirror.
show_log() { # LABEL
    local r out size root sizes="" deadline
    for r in "${REGIONS[@]}"; do
        deadline=$(($(date +%s) + 10))
        while :; do
            out=$(curl -sf --max-time 2 --cacert "$PKI/ca.pem" \
                "https://127.0.0.1:${TLS_PORT[$r]}/log/checkpoint" | "$PY" -c '
import sys
text, _, sigs = sys.stdin.read().partition("\n\n")
lines = text.split("\n")
names = [l.split(" ")[1] for l in sigs.splitlines() if l.startswith("\u2014 ")]
print(lines[1], lines[2], names[0], ",".join(names[1:]))' 2>/dev/null || true)
            case ",${out##* }," in *",$r-1,"*) break ;; esac
            [ "$(date +%s)" -lt "$deadline" ] || die "mirror $r serves no checkpoint it cosigned ($out)"
            sleep 0.1
        done
        read -r size root signer cosigners <<<"$out"
        sizes="$sizes $size/$root"
        printf '   mirror %-2s log checkpoint: %3s entries, root %s..., signed by %s, cosigned by %s\n' \
            "$r" "$size" "${root:0:12}" "$signer" "$cosigners"
    done
    [ "$(printf '%s\n' $sizes | sort -u | wc -l)" -eq 1 ] || die "mirrors serve different logs:$sizes"
    LOGSIZE=${sizes%%/*}
    LOGSIZE=${LOGSIZE# }
    info "all six mirrors witnessed the same log ($LOGSIZE entries) after $1"
}

# client-<r>.yaml: that region's mirror first (priority 1), the others after, own state dir.
write_client_cfg() { # REGION FILE [only]
    local r=$1 f=$2 only=${3:-} o p=10
    mkdir -p "$D/client-$r/state"
    {
        printf '# client for region %s (written by scripts/demo.sh)\n' "$r"
        printf 'root: %s\nstate: %s\nca: %s\n' "$D/root.json" "$D/client-$r/state" "$PKI/ca.pem"
        printf 'mirrors:\n'
        printf '  - {url: "https://127.0.0.1:%s", region: %s, priority: 1}\n' "${TLS_PORT[$r]}" "$r"
        if [ -z "$only" ]; then
            for o in "${REGIONS[@]}"; do
                [ "$o" = "$r" ] && continue
                printf '  - {url: "https://127.0.0.1:%s", region: %s, priority: %d}\n' \
                    "${TLS_PORT[$o]}" "$o" "$p"
                p=$((p + 10))
            done
        fi
        printf 'timeout: 1m\nlow_speed_limit: 1KiB\nlow_speed_time: 20s\n'
        if [ -z "$only" ]; then # accept only metadata in a checkpoint 2 mirrors cosigned
            printf 'witnesses:\n  log_key: %s\n  quorum: 2\n  keys:\n' "$LOGKEY"
            for o in "${REGIONS[@]}"; do
                printf '    - {name: %s-1, key: %s}\n' "$o" "$D/witness/$o.key.pub"
            done
        fi
    } >"$f"
}

for b in rhine-origin rhine-mirror rhine-get rhine-audit; do
    [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b is not built (make all)" >&2; exit 1; }
done
for c in openssl curl sha256sum; do
    command -v "$c" >/dev/null || { echo "demo: needs $c" >&2; exit 1; }
done

echo "Rhine demo: one origin (Zurich), six regional mirrors, a client in every region."
echo "Binaries: $BIN    Work tree: build/demo/"

# --- 1. PKI -------------------------------------------------------------------------------------
say "1. Throwaway TLS PKI (EC P-256 CA + server cert for localhost/127.0.0.1)"
rm -rf "$D"
mkdir -p "$PKI" "$LOGS" "$D/origin" "$D/src"
(
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Rhine demo CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.pem
    openssl ecparam -name prime256v1 -genkey -noout -out server.key
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile ext.cnf -out server.pem
) >"$LOGS/pki.log" 2>&1 || die "openssl failed (see $LOGS/pki.log)"
info "CA: build/demo/pki/ca.pem   server: build/demo/pki/server.pem (SAN localhost, 127.0.0.1)"

# --- 2. origin init -----------------------------------------------------------------------------
say "2. rhine-origin init: offline root/targets keys, online snapshot/timestamp keys, 1.root.json"
"$BIN/rhine-origin" init --repo "$D/origin/repo" --keys "$D/origin/keys" >"$LOGS/origin-init.log" 2>&1 ||
    die "rhine-origin init failed"
cp "$D/origin/repo/metadata/1.root.json" "$D/root.json"
info "keys: $(cd "$D/origin/keys" && find . -name '*.pem' | sort | tr '\n' ' ')"
info "pinned root (shipped to mirrors and clients): build/demo/root.json sha256 $(sha "$D/root.json" | cut -c1-16)..."
LOGKEY=$D/origin/keys/log.pub
info "transparency log key (shipped like the root): build/demo/origin/keys/log.pub"
info "  $(cat "$LOGKEY")"
mkdir -p "$D/witness"
for r in "${REGIONS[@]}"; do
    "$BIN/rhine-mirror" witness-keygen --name "$r-1" --out "$D/witness/$r.key" \
        >>"$LOGS/witness-keygen.log" 2>&1 || die "rhine-mirror witness-keygen $r failed"
done
info "six witness keys, one per mirror (build/demo/witness/<region>.key; .pub is public):"
for r in "${REGIONS[@]}"; do info "  $(cat "$D/witness/$r.key.pub")"; done

# --- 3. payloads --------------------------------------------------------------------------------
say "3. Sample payload: a day of antivirus database files"
gen() { # FILE BYTES SEED
    "$PY" - "$1" "$2" "$3" <<'EOF'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(seed)
fams = ["Win.Trojan", "Win.Malware", "Doc.Dropper", "Js.Downloader", "Unix.Miner", "Pdf.Exploit"]
out, n, i = [], 0, 0
while n < size:
    hexsig = "".join(rnd.choice("0123456789abcdef") for _ in range(rnd.randint(24, 96)))
    line = "%s.%s-%07d-%d:%d:*:%s\n" % (seed.split("-")[0], rnd.choice(fams), rnd.randint(0, 9999999),
                                        i, rnd.randint(0, 3), hexsig)
    out.append(line); n += len(line); i += 1
data = "".join(out).encode()[:size]
open(path, "wb").write(data)
EOF
}
mkdir -p "$D/src/db" "$D/src/db/hourly"
gen "$D/src/db/main.cvd" $((4 * 1024 * 1024)) main-1
gen "$D/src/db/daily.cvd" $((2 * 1024 * 1024)) daily-1
gen "$D/src/db/bytecode.cvd" $((512 * 1024)) bytecode-1
for h in 01 02 03 04; do gen "$D/src/db/hourly/daily-$h.cdiff" $((16 * 1024)) "hourly-$h"; done
(cd "$D/src" && find . -type f | sort | while read -r f; do
    printf '   %-28s %8d bytes  sha256 %s\n' "${f#./}" "$(stat -c %s "$f")" "$(sha "$f" | cut -c1-16)..."
done)
DAILY1=$(sha "$D/src/db/daily.cvd")
cp "$D/src/db/daily.cvd" "$D/daily-release1.cvd"

# --- 4. release 1, origin + mirrors -------------------------------------------------------------
say "4. Publish release 1, start the origin and six mirrors"
t=$(now)
printf 'build: ./make-db --all src/ (demo recipe)\n' >"$D/recipe.txt"
"$BIN/rhine-origin" publish --repo "$D/origin/repo" --keys "$D/origin/keys" --source-rev demo-1 \
    --build-recipe "$D/recipe.txt" "$D/src" >"$LOGS/publish-1.log" 2>&1 ||
    die "publish release 1 failed"
info "published release 1 in $(secs "$t" "$(now)") s (zstd + signatures): $(tail -n 1 "$LOGS/publish-1.log")"
(cd "$D/origin/repo/targets" && find . -type f | sort) >"$D/targets-release1.txt"

"$BIN/rhine-origin" serve --config "$CFG/origin.yaml" >"$LOGS/origin.log" 2>&1 &
PIDS+=($!)
info "origin  pid $!  https://127.0.0.1:8440 (h2c :8480)"
wait_file "$D/origin/ports" 15
for r in "${REGIONS[@]}"; do
    "$BIN/rhine-mirror" --config "$CFG/mirror-$r.yaml" >"$LOGS/mirror-$r.log" 2>&1 &
    PIDS+=($!)
    info "mirror $r pid $!  https://127.0.0.1:${TLS_PORT[$r]}"
done
START1=$(now)
for r in "${REGIONS[@]}"; do wait_file "$D/mirror-$r.ports" 20; done
info "all mirrors listening after $(secs "$START1" "$(now)") s; waiting for each to verify and sync release 1"
ORIGIN_V=$(ts_version https://127.0.0.1:8440)
[ -n "$ORIGIN_V" ] || ORIGIN_V=$(file_version "$D/origin/repo/metadata/timestamp.json")
info "origin serves timestamp version $ORIGIN_V"
wait_propagation "$ORIGIN_V" "$START1" "release 1"
show_log "release 1"
LOG1=$LOGSIZE

# --- 5. a client per region ---------------------------------------------------------------------
say "5. A client in every region fetches db/daily.cvd (nearest mirror first) and checks sha256"
for r in "${REGIONS[@]}"; do
    write_client_cfg "$r" "$D/client-$r.yaml"
    t=$(now)
    "$BIN/rhine-get" --config "$D/client-$r.yaml" fetch db/daily.cvd -o "$D/client-$r/daily.cvd" \
        >>"$LOGS/client-$r.log" 2>&1 || die "client $r: fetch failed: $(tail -n 1 "$LOGS/client-$r.log")"
    got=$(sha "$D/client-$r/daily.cvd")
    [ "$got" = "$DAILY1" ] || die "client $r: sha256 $got != source $DAILY1"
    printf '   client %-2s via https://127.0.0.1:%s  daily.cvd sha256 %s... = source  OK  (%s s)\n' \
        "$r" "${TLS_PORT[$r]}" "${got:0:16}" "$(secs "$t" "$(now)")"
    [ -s "$D/client-$r/state/log.checkpoint" ] || die "client $r stored no witnessed checkpoint"
done
info "each client first required the new metadata in a log checkpoint cosigned by 2 of the six"
info "witnesses (and consistent with the last one it kept); build/demo/client-*/state/log.checkpoint:"
sed 's/^/     | /' "$D/client-jp/state/log.checkpoint"

# --- 6. release 2 -------------------------------------------------------------------------------
say "6. Release 2: new daily.cvd signatures, published once, pushed to every mirror"
gen "$D/src/db/daily.cvd" $((2 * 1024 * 1024 + 4096)) daily-2
DAILY2=$(sha "$D/src/db/daily.cvd")
info "new daily.cvd sha256 ${DAILY2:0:16}... (was ${DAILY1:0:16}...)"
START2=$(now)
"$BIN/rhine-origin" publish --repo "$D/origin/repo" --keys "$D/origin/keys" --source-rev demo-2 \
    --build-recipe "$D/recipe.txt" "$D/src" >"$LOGS/publish-2.log" 2>&1 ||
    die "publish release 2 failed"
info "published release 2 in $(secs "$START2" "$(now)") s; origin pushes the new timestamp to the mirrors"
V2=$(file_version "$D/origin/repo/metadata/timestamp.json")
wait_propagation "$V2" "$START2" "release 2"
show_log "release 2"
[ "$LOGSIZE" -gt "$LOG1" ] || die "the log did not grow with release 2 ($LOG1 -> $LOGSIZE entries)"
info "the log grew from $LOG1 to $LOGSIZE entries; each mirror checked the new checkpoint extends the old"
t=$(now)
"$BIN/rhine-get" --config "$D/client-jp.yaml" fetch db/daily.cvd -o "$D/client-jp/daily.cvd" \
    >>"$LOGS/client-jp.log" 2>&1 || die "client jp: fetch of release 2 failed"
got=$(sha "$D/client-jp/daily.cvd")
[ "$got" = "$DAILY2" ] || die "client jp: release 2 sha256 $got != $DAILY2"
printf '   client jp fetched release 2: daily.cvd sha256 %s... = new source  OK  (%s s)\n' \
    "${got:0:16}" "$(secs "$t" "$(now)")"

# --- 7. audit ------------------------------------------------------------------------------------
say "7. An independent auditor replays the whole log from the jp mirror (rhine-audit)"
WIT=()
for r in "${REGIONS[@]}"; do WIT+=(--witness "$D/witness/$r.key.pub"); done
AUDIT=("$BIN/rhine-audit" --ca "$PKI/ca.pem" --log-key "$LOGKEY" "${WIT[@]}" --quorum 1)
set +e
"${AUDIT[@]}" list https://127.0.0.1:8444 >"$D/audit-list.out" 2>&1
rc=$?
set -e
sed 's/^/     | /' "$D/audit-list.out"
[ "$rc" -eq 0 ] || die "rhine-audit list exited $rc"
info "every release listed with its provenance; tiles, checkpoint and the jp witness's cosignature verified"
info "(the log counts targets versions: version 1 is the empty repository init signed, so the"
info " demo's releases 1 and 2 are versions 2 and 3; the jp mirror archived all of them)"
R2=$(find "$D/origin/repo/metadata" -name '*.targets.json' -printf '%f\n' | sort -n | tail -n 1)
R2=${R2%%.*}
mkdir -p "$D/rebuilt"
cp -r "$D/src/." "$D/rebuilt/"
set +e
"${AUDIT[@]}" verify-build --release "$R2" https://127.0.0.1:8444 "$D/rebuilt" >"$D/audit-build.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || { cat "$D/audit-build.out"; die "verify-build of honest rebuilt payloads exited $rc"; }
info "verify-build --release $R2: payloads rebuilt from source match what release $R2 shipped (exit 0)"
printf 'x' | dd of="$D/rebuilt/db/bytecode.cvd" bs=1 seek=100 count=1 conv=notrunc status=none
set +e
"${AUDIT[@]}" verify-build --release "$R2" https://127.0.0.1:8444 "$D/rebuilt" >"$D/audit-bad.out" 2>&1
rc=$?
set -e
sed 's/^/     | /' "$D/audit-bad.out" | grep -v '^     | ok ' || true
[ "$rc" -eq 1 ] || die "verify-build with one changed byte exited $rc (want 1)"
info "one changed byte in a rebuilt payload: verify-build exits 1 and names the file"

# --- 8. tamper ----------------------------------------------------------------------------------
say "8. Attack: someone flips one byte of daily.cvd on the eu mirror's disk"
NEW=$(find "$D/origin/repo/targets" -type f -name '*.daily.cvd.zst' -printf './%P\n' | sort |
    grep -vxF -f "$D/targets-release1.txt" || true)
[ "$(printf '%s\n' "$NEW" | grep -c .)" -eq 1 ] || die "cannot tell release 2's daily.cvd target apart: $NEW"
VICTIM=$D/mirror-eu/public/targets/${NEW#./}
[ -f "$VICTIM" ] || die "$VICTIM not on the eu mirror"
SIZE=$(stat -c %s "$VICTIM")
OFF=$((SIZE / 2))
OLD=$(od -An -tu1 -j "$OFF" -N1 "$VICTIM" | tr -d ' ')
# shellcheck disable=SC2059 # the format is the octal escape of the flipped byte
printf "\\$(printf '%03o' $(((OLD ^ 0xff) & 0xff)))" |
    dd of="$VICTIM" bs=1 seek="$OFF" count=1 conv=notrunc status=none
info "flipped byte $OFF of build/demo/mirror-eu/public/targets/${NEW#./}"
info "($OLD -> $(od -An -tu1 -j "$OFF" -N1 "$VICTIM" | tr -d ' '))"

echo
info "a client that knows ONLY the eu mirror must refuse the bytes:"
write_client_cfg eu "$D/client-eu-only.yaml" only
# Own state dir for this eu-only client, seeded by nothing but the pinned root.
sed -i "s#^state: .*#state: $D/client-eu-only/state#" "$D/client-eu-only.yaml"
mkdir -p "$D/client-eu-only/state"
set +e
"$BIN/rhine-get" --config "$D/client-eu-only.yaml" fetch db/daily.cvd -o "$D/client-eu-only/daily.cvd" \
    >"$D/eu-only.out" 2>&1
rc=$?
set -e
sed 's/^/     | /' "$D/eu-only.out"
[ "$rc" -eq 1 ] || die "eu-only client exited $rc on tampered bytes (want 1)"
grep -q '127.0.0.1:8442' "$D/eu-only.out" || die "refusal does not name the eu mirror"
[ ! -e "$D/client-eu-only/daily.cvd" ] || die "eu-only client installed a file anyway"
info "exit status $rc, nothing installed; tamper DETECTED on eu mirror https://127.0.0.1:8442"

echo
info "the eu client (eu first, five other mirrors after) fails over and installs the right bytes:"
t=$(now)
"$BIN/rhine-get" --config "$D/client-eu.yaml" fetch db/daily.cvd -o "$D/client-eu/daily.cvd" \
    >"$D/eu-failover.out" 2>&1 || { cat "$D/eu-failover.out"; die "eu client failover failed"; }
sed 's/^/     | /' "$D/eu-failover.out"
got=$(sha "$D/client-eu/daily.cvd")
[ "$got" = "$DAILY2" ] || die "eu client installed sha256 $got, want $DAILY2"
printf '   client eu installed daily.cvd sha256 %s... = release 2 source  OK  (failover, %s s)\n' \
    "${got:0:16}" "$(secs "$t" "$(now)")"
"$BIN/rhine-get" --config "$D/client-eu.yaml" status | sed 's/^/     | /'

# --- 9. stop ------------------------------------------------------------------------------------
say "9. Stopping the origin and the six mirrors (SIGTERM by PID)"
info "pids: ${PIDS[*]}"
stop_all
[ "$STOP_BAD" -eq 0 ] || die "a daemon did not exit cleanly on SIGTERM"
info "all stopped, each exited 0"
printf '\nDEMO OK in %s s\n' "$(secs "$T0" "$(now)")"
