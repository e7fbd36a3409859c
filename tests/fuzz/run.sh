#!/bin/sh
# tests/fuzz/run.sh - build and run postie's libFuzzer targets (doc/SECURITY.md).
#
# usage: tests/fuzz/run.sh [-B BUILDDIR] [-j] [SECONDS] [TARGET...]
#
#   BUILDDIR  a configured build directory (its config.h is used); default
#             $POSTIE_BUILDDIR, else the current directory if it holds config.h.
#   SECONDS   how long each target is fuzzed (default 60).  0 only replays the
#             committed seed corpus and every reproducer under crashes/: the
#             regression run, a few seconds in all.
#   TARGET    fuzz_conf, fuzz_opts, ... (default: every tests/fuzz/fuzz_*.c).
#
# FUZZ_KEEP_GOING=1 runs libFuzzer in fork mode (-fork=1 -ignore_crashes=1):
# a crash is saved and fuzzing goes on for the whole time.
#
# Committed reproducers (tests/fuzz/crashes/TARGET/*, except *.md notes) are
# replayed before each target runs; one that still fails makes the exit
# status 1 (fuzzing goes on).
#
# Each target is linked with clang -fsanitize=fuzzer,address,undefined against
# all of src/*.c except main.c.  Targets run one after the other.  New inputs
# go to BUILDDIR/fuzz/corpus/TARGET (the committed seeds are read, never
# written); crash reproducers to BUILDDIR/fuzz/crashes/TARGET/.  Exit status:
# 0 when no target crashed, 1 when one did, 2 on a usage or build error.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=${POSTIE_BUILDDIR:-}
while [ $# -gt 0 ]; do
    case $1 in
    -B) builddir=$2; shift 2 ;;
    -B*) builddir=${1#-B}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
if [ -z "$builddir" ] && [ -f ./config.h ]; then builddir=.; fi
if [ -z "$builddir" ] || [ ! -f "$builddir/config.h" ]; then
    echo "run.sh: no configured build directory (pass -B DIR or set POSTIE_BUILDDIR)" >&2
    exit 2
fi
builddir=$(cd "$builddir" && pwd)

seconds=60
case ${1:-} in
'') ;;
*[!0-9]*) ;;
*) seconds=$1; shift ;;
esac

if [ $# -gt 0 ]; then
    targets=$*
else
    targets=$(cd "$here" && ls fuzz_*.c | sed 's/\.c$//')
fi

CC=${FUZZ_CC:-clang}
out=$builddir/fuzz
mkdir -p "$out/obj"
pkgs="libesmtp-1.0 libconfuse libssl libcrypto"
pkgcflags=$(pkg-config --cflags $pkgs)
pkglibs=$(pkg-config --libs $pkgs)
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-std=c11 -g -O1 $san -I$builddir -I$srcdir/src \
-DSYSCONFDIR=\"/nonexistent/etc\" -DQUEUEDIR=\"/nonexistent/queue\" $pkgcflags"

# The library objects, rebuilt when a source or header is newer.
objs=
for src in "$srcdir"/src/*.c; do
    name=$(basename "$src" .c)
    [ "$name" = main ] && continue
    obj=$out/obj/$name.o
    if [ ! -f "$obj" ] || [ -n "$(find "$src" "$srcdir"/src/*.h "$builddir/config.h" -newer "$obj" 2>/dev/null | head -n1)" ]; then
        # shellcheck disable=SC2086
        $CC $cflags -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || exit 2
    fi
    objs="$objs $obj"
done

status=0
for t in $targets; do
    if [ ! -f "$here/$t.c" ]; then
        echo "run.sh: no target $t" >&2
        exit 2
    fi
    bin=$out/$t
    # shellcheck disable=SC2086
    $CC $cflags -fsanitize=fuzzer "$here/$t.c" $objs $pkglibs -lpthread -o "$bin" || exit 2
    seeds=$here/corpus/$t
    work=$out/corpus/$t
    art=$out/crashes/$t
    mkdir -p "$seeds" "$work" "$art"
    dict=
    [ -f "$here/$t.dict" ] && dict=-dict=$here/$t.dict
    common="-rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 -artifact_prefix=$art/"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

    # Regression first: every committed reproducer and seed must pass.
    repro=$(find "$here/crashes/$t" -type f ! -name '*.md' 2>/dev/null || true)
    if [ -n "$repro" ]; then
        echo "== $t: replaying $(echo "$repro" | wc -l) reproducer(s)"
        # shellcheck disable=SC2086
        if ! "$bin" $common -runs=1 $repro >"$out/$t.replay.log" 2>&1; then
            echo "== $t: a committed reproducer still fails, see $out/$t.replay.log" >&2
            grep -E 'ERROR|SUMMARY|Running:|in (LLVMFuzzerTestOneInput|fuzz_)' \
                "$out/$t.replay.log" | head -n 20 >&2
            status=1
        fi
    fi
    if [ "$seconds" -eq 0 ]; then
        echo "== $t: replaying the corpus"
        # shellcheck disable=SC2086
        if ! "$bin" $common $dict -runs=0 "$seeds" >"$out/$t.replay.log" 2>&1; then
            echo "== $t: FAILED, see $out/$t.replay.log" >&2
            tail -n 30 "$out/$t.replay.log" >&2
            status=1
        fi
        continue
    fi
    echo "== $t: fuzzing for $seconds s (log: $out/$t.log)"
    keep=
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && keep="-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1"
    stamp=$out/$t.start
    : >"$stamp"
    # shellcheck disable=SC2086
    if "$bin" $common $dict $keep -max_len=65536 -max_total_time="$seconds" -print_final_stats=1 \
        -close_fd_mask=3 "$work" "$seeds" >"$out/$t.log" 2>&1 &&
        [ -z "$(find "$art" -type f -newer "$stamp" | head -n1)" ]; then
        grep -E '^stat::number_of_executed_units|DONE|cov:' "$out/$t.log" | tail -n 1
    else
        echo "== $t: CRASHED, reproducer in $art/, log $out/$t.log" >&2
        grep -E 'ERROR|SUMMARY|Test unit written' "$out/$t.log" >&2 || tail -n 30 "$out/$t.log" >&2
        find "$art" -type f -newer "$stamp" >&2
        status=1
    fi
done
exit $status
