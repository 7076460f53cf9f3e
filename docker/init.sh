#!/bin/sh
# init.sh -- one-shot set-up of the compose demo (runs as the image's rhine user, idempotent):
# a throwaway CA and one server certificate for every service name, the origin's keys and
# repository with a first release, and the pinned root that mirrors and clients trust.
# A real deployment brings its own certificates and keeps keys/offline off the serving host.
set -eu
PKI=/etc/rhine/pki
TRUST=/etc/rhine/trust
ORIGIN=/var/lib/rhine
NAMES="origin mirror-na mirror-eu mirror-au mirror-jp mirror-kr mirror-sg fleet localhost"

if [ ! -s "$PKI/server.pem" ]; then
    cd "$PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -keyout ca.key -out ca.pem -subj "/CN=Rhine compose demo CA" 2>/dev/null
    san="IP:127.0.0.1"
    for n in $NAMES; do san="$san,DNS:$n"; done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
        -out server.csr -subj "/CN=rhine" 2>/dev/null
    printf 'subjectAltName=%s\n' "$san" >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 \
        -extfile ext.cnf -out server.pem 2>/dev/null
    rm -f server.csr ext.cnf ca.key ca.srl
    chmod 0640 server.key
    echo "init: test PKI in $PKI"
fi

if [ ! -f "$ORIGIN/repo/metadata/1.root.json" ]; then
    rhine-origin init --repo "$ORIGIN/repo" --keys "$ORIGIN/keys"
    mkdir -p "$ORIGIN/release"
    printf 'Rhine compose demo release\n' >"$ORIGIN/release/README.txt"
    head -c 1048576 /dev/urandom >"$ORIGIN/release/payload.bin"
    rhine-origin publish --repo "$ORIGIN/repo" --keys "$ORIGIN/keys" "$ORIGIN/release"
    echo "init: origin repository in $ORIGIN/repo"
fi
cp "$ORIGIN/repo/metadata/1.root.json" "$TRUST/root.json"
echo "init: pinned root in $TRUST/root.json"
