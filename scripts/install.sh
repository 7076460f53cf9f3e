#!/bin/sh
# install.sh -- install the built programs, librhine-client (static + shared), its header and
# pkg-config file, man pages made from the programs' --help, example configs, systemd units and
# alerting rules under DESTDIR/PREFIX. Called by `make install`; needs a finished `make all`.
#
#   BUILD=build PREFIX=/usr/local DESTDIR= VERSION=... [CC=cc LDFLAGS=...] scripts/install.sh
# LDFLAGS is used to link the shared library (an ASan build's objects need -fsanitize=...).
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
VERSION=${VERSION:-$(git describe --tags --abbrev=0 2>/dev/null | sed "s/^v//" || true)}
case "$VERSION" in [0-9]*.[0-9]*) ;; *) VERSION="0.1.0" ;; esac
SOVERSION=0
CC=${CC:-cc}
LDFLAGS=${LDFLAGS:-}

case "$PREFIX" in /*) ;; *) echo "install: PREFIX must be absolute, got '$PREFIX'" >&2; exit 2 ;; esac
[ -d "$BUILD" ] || { echo "install: $BUILD: not built (run make first)" >&2; exit 1; }

D="$DESTDIR$PREFIX"
BIN="$D/bin"
LIB="$D/lib"
INC="$D/include/rhine"
PC="$LIB/pkgconfig"
SHARE="$D/share/rhine"
MAN="$D/share/man/man1"
DOC="$D/share/doc/rhine"
UNITS="$LIB/systemd/system"
SYSUSERS="$LIB/sysusers.d"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$BIN" "$LIB" "$INC" "$PC" "$SHARE/examples" "$SHARE/prometheus" "$MAN" "$DOC" \
         "$UNITS" "$SYSUSERS"

# --- programs: rhine-origin, rhine-mirror and rhine-get are required; the others when built ---
installed=""
for p in rhine-origin rhine-mirror rhine-get rhine-audit rhine-fleet; do
    if [ -x "$BUILD/$p" ]; then
        install -m 0755 "$BUILD/$p" "$BIN/$p"
        installed="$installed $p"
    else
        case "$p" in
        rhine-origin|rhine-mirror|rhine-get)
            echo "install: $BUILD/$p: not built (run make first)" >&2; exit 1 ;;
        esac
    fi
done

# --- man pages: the --help text of each program, so the two never disagree ---
for p in $installed; do
    help="$tmp/$p.help"
    "$BUILD/$p" --help >"$help" 2>&1 || {
        echo "install: $BUILD/$p --help failed" >&2; exit 1; }
    {
        printf '.TH %s 1 "" "rhine %s" "Rhine"\n' "$(echo "$p" | tr a-z A-Z)" "$VERSION"
        printf '.SH NAME\n%s \\- Rhine secure update distribution\n' "$p"
        printf '.SH DESCRIPTION\n.nf\n'
        # roff: protect backslashes and lines starting with a dot or quote
        sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" "$help"
        printf '.fi\n.SH SEE ALSO\n%s/share/doc/rhine/operations.md\n' "$PREFIX"
    } >"$MAN/$p.1"
    chmod 0644 "$MAN/$p.1"
done

# --- librhine-client: one static archive holding client, net and manifest objects ---
for a in librhine-client.a libnet.a libmanifest.a; do
    [ -f "$BUILD/$a" ] || { echo "install: $BUILD/$a: not built" >&2; exit 1; }
done
{
    echo "create $tmp/librhine-client.a"
    echo "addlib $BUILD/librhine-client.a"
    echo "addlib $BUILD/libnet.a"
    echo "addlib $BUILD/libmanifest.a"
    echo "save"
    echo "end"
} | ar -M
ranlib "$tmp/librhine-client.a"
install -m 0644 "$tmp/librhine-client.a" "$LIB/librhine-client.a"

# Shared library: the same objects (built -fPIC), exporting only the public rhine_* API.
printf '{\n  global: rhine_*;\n  local: *;\n};\n' >"$tmp/client.map"
LIBS=$(pkg-config --libs libcurl openssl jansson yaml-0.1 libzstd)
$CC -shared $LDFLAGS -o "$tmp/librhine-client.so.$VERSION" \
    -Wl,-soname,"librhine-client.so.$SOVERSION" -Wl,--version-script="$tmp/client.map" \
    -Wl,--whole-archive "$tmp/librhine-client.a" -Wl,--no-whole-archive $LIBS -lpthread
install -m 0755 "$tmp/librhine-client.so.$VERSION" "$LIB/librhine-client.so.$VERSION"
ln -sf "librhine-client.so.$VERSION" "$LIB/librhine-client.so.$SOVERSION"
ln -sf "librhine-client.so.$SOVERSION" "$LIB/librhine-client.so"

install -m 0644 include/rhine/client.h "$INC/client.h"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" client/rhine-client.pc.in \
    >"$PC/rhine-client.pc"
chmod 0644 "$PC/rhine-client.pc"

# --- example configs, units, alerting rules, docs ---
for f in configs/*.yaml; do install -m 0644 "$f" "$SHARE/examples/"; done
for f in configs/prometheus/*.yml; do
    if [ -f "$f" ]; then install -m 0644 "$f" "$SHARE/prometheus/"; fi
done
# Units name /usr/local/bin as shipped; point them at this PREFIX.
for f in configs/systemd/*.service; do
    sed "s|/usr/local/bin/|$PREFIX/bin/|g" "$f" >"$UNITS/$(basename "$f")"
    chmod 0644 "$UNITS/$(basename "$f")"
done
install -m 0644 configs/systemd/rhine.sysusers.conf "$SYSUSERS/rhine.conf"
if [ -f docs/operations.md ]; then install -m 0644 docs/operations.md "$DOC/operations.md"; fi
install -m 0644 README.md "$DOC/README.md"

echo "install: installed${installed} and librhine-client $VERSION into $DESTDIR$PREFIX"
