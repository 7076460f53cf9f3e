#!/bin/sh
# run-unit.sh -- run every cmocka unit test binary given; print one closing tally line.
set -u
pass=0; fail=0; failed=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    # A binary may run several groups (test_tuf runs its group twice): add them all up.
    n_ok=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')
    n_bad=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' |
            awk '{ s += $1 } END { if (NR) print s }')
    pass=$((pass + ${n_ok:-0}))
    if [ $rc -ne 0 ]; then
        fail=$((fail + ${n_bad:-1}))
        failed="$failed $t"
        printf '%s\n' "$out"
    fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failing binaries:$failed"; exit 1; }
