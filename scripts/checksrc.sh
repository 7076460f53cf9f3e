#!/bin/sh
# checksrc.sh -- the boring rules, checked by machine: banned calls and the dependency direction.
set -u
cd "$(dirname "$0")/.." || exit 2
rc=0
src=$(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]')

# Unsafe calls (bounded alternatives exist for each).
bad=$(grep -nE '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok|system)\(' $src |
      grep -v 'checksrc: allow')
[ -z "$bad" ] || { echo "checksrc: banned call:"; echo "$bad"; rc=1; }

# Dependency direction: manifest/ depends on nothing in the tree; server/ only on manifest/;
# origin/ and mirror/ on manifest/ and server/; client/ on manifest/ and include/rhine/;
# the mirror never includes origin code (which holds keys); rhine-get uses only the public header.
check() { # dir, forbidden include pattern, reason
    hits=$(grep -nE "#include \"($2)/" $(echo "$src" | grep "^$1/") 2>/dev/null)
    [ -z "$hits" ] || { echo "checksrc: $1/ must not include $2/ ($3):"; echo "$hits"; rc=1; }
}
check manifest 'server|origin|mirror|client|audit' 'manifest depends on nothing'
check server 'origin|mirror|client|audit' 'server is shared by origin and mirror'
check mirror 'origin|client' 'the mirror holds no signing code'
check origin 'mirror|client|audit' 'origin stands alone'
check audit 'server|origin|mirror|client' 'the auditor trusts only manifest and net'
check fleet 'origin|mirror|client|audit' 'the fleet page reads, never signs'
check client 'server|origin|mirror' 'client embeds only manifest and net'
check net 'server|origin|mirror|client|audit' 'net is the shared HTTP client transport'
if [ -f client/rhine_get_main.c ] || [ -f client/get_main.c ]; then
    f=$(ls client/*_main.c)
    hits=$(grep -n '#include "' $f | grep -v 'rhine/client.h')
    [ -z "$hits" ] || { echo "checksrc: rhine-get must use only include/rhine/client.h:"; echo "$hits"; rc=1; }
fi
[ $rc -eq 0 ] && echo "checksrc: ok ($(echo "$src" | wc -l) files)"
exit $rc
