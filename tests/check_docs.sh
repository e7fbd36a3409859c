#!/bin/sh
# Documentation checks: both man pages are clean under mandoc's linter and
# man's warnings, every flag in `postie --help` is documented in postie.8,
# and every configuration key of src/conf.c is documented in postie.conf.5
# and present in etc/postie.conf.sample.
set -u
src=${POSTIE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
postie=${POSTIE:-$src/src/postie}
fail=0
pass=0

check() { # name, status
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

for page in "$src/doc/postie.8" "$src/doc/postie.conf.5"; do
    out=$(mandoc -Tlint -W warning "$page" 2>&1)
    [ -z "$out" ]; check "mandoc -Tlint $(basename "$page"): $out" $?
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$out" ]; check "man --warnings $(basename "$page"): $out" $?
done

# Flags: every token of the --help text that looks like an option.
plain8=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$src/doc/postie.8")
flags=$("$postie" --help | grep -oE '(^|[[:space:],])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sed 's/^[[:space:]]*//' | sort -u)
[ -n "$flags" ]; check "postie --help lists flags" $?
for f in $flags; do
    printf '%s\n' "$plain8" | grep -qF -- "$f"; check "postie.8 documents $f" $?
done

# Configuration keys: every option name the libConfuse schema declares.
keys=$(grep -oE 'CFG_[A-Z_]+\("[a-z_]+"' "$src/src/conf.c" | sed 's/.*("//; s/"$//' | sort -u)
[ -n "$keys" ]; check "src/conf.c declares keys" $?
plain5=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$src/doc/postie.conf.5")
for k in $keys; do
    printf '%s\n' "$plain5" | grep -qw -- "$k"; check "postie.conf.5 documents $k" $?
    grep -qw -- "$k" "$src/etc/postie.conf.sample"; check "postie.conf.sample shows $k" $?
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
