#!/bin/sh
# Prints the totals of a `make check` run in BUILDDIR: every cmocka test case
# and every unittest case counted, as one "N passed, N failed" line.
set -eu
dir=${1:-.}
pass=0
fail=0
for log in "$dir"/tests/unit/*.log; do
    [ -f "$log" ] || continue
    p=$(grep -c '^\[       OK \]' "$log" || true)
    f=$(grep -c '^\[  FAILED  \] [^0-9]' "$log" || true)
    pass=$((pass + p)); fail=$((fail + f))
done
for log in "$dir"/tests/integration/*.log "$dir"/tests/*.log; do
    [ -f "$log" ] || continue
    case $log in */test-suite.log) continue ;; esac
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in.*/\1/p' "$log" | tail -n 1)
    bad=$(sed -n 's/^FAILED (\(.*\))$/\1/p' "$log" | tr ',' '\n' | sed -n 's/.*=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
    [ -n "$ran" ] || { p=$(grep -c '^ok ' "$log" || true); f=$(grep -c '^not ok ' "$log" || true); pass=$((pass + p)); fail=$((fail + f)); continue; }
    bad=${bad:-0}
    pass=$((pass + ran - bad)); fail=$((fail + bad))
done
echo "$pass passed, $fail failed"
