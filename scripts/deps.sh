#!/bin/sh
# deps.sh -- install what building, testing and the demo need (Debian bookworm, as root or via sudo).
# Installs only what is missing; safe to run again.
set -eu

PKGS="build-essential pkg-config clang libssl-dev libcurl4-openssl-dev libnghttp2-dev \
libevent-dev libyaml-dev libzstd-dev libjansson-dev libcmocka-dev libhttp-parser-dev python3 python3-pytest python3-cryptography \
faketime curl nghttp2-client zstd openssl ca-certificates docker-compose python3-yaml prometheus \
chromium systemd"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Node.js and npm drive tuf-js, the independent TUF client in the integration tests.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "deps: installing nodejs npm"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
