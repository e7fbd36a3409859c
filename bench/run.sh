#!/bin/sh
# bench/run.sh - postie side by side with esmtp and msmtp, same sink, same run.
#
#   bench/run.sh [path/to/postie]      (default: ./src/postie of the build dir)
#
# Needs: esmtp and msmtp from Debian (apt-get install -y esmtp msmtp),
# /usr/bin/time (package "time"), and Postfix's smtp-sink, which this script
# takes from the postfix .deb without installing it (apt-get download postfix
# && dpkg-deb -x) into $BENCH_CACHE (default /tmp/postie-bench-cache).
#
# Measures, against a plaintext smtp-sink on 127.0.0.1:
#   small   a 1 KiB message, RUNS times: median wall and CPU (user+sys) per message
#   large   a 100 MB message, 5 times: best wall and CPU, largest peak RSS (ru_maxrss)
#   rcpts   one message to 300 recipients, 5 times: best wall and CPU
#   flush   FLUSH messages queued with -odq, then one `postie -q`: messages/s,
#           and the sink's session count (one connection expected)
# Environment: RUNS (default 200), LARGE_MB (default 100), NRCPT (default 300),
# FLUSH (default 1000; 0 skips it), BENCH_SETTLE (seconds to let the file
# system settle after writing the messages, default 10).
set -eu

POSTIE=${1:-./src/postie}
RUNS=${RUNS:-200}
LARGE_MB=${LARGE_MB:-100}
NRCPT=${NRCPT:-300}
FLUSH=${FLUSH:-1000}
CACHE=${BENCH_CACHE:-/tmp/postie-bench-cache}

[ -x "$POSTIE" ] || { echo "bench: no postie binary at $POSTIE" >&2; exit 1; }
POSTIE=$(cd "$(dirname "$POSTIE")" && pwd)/$(basename "$POSTIE")
for tool in esmtp msmtp /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "bench: $tool missing (apt-get install -y esmtp msmtp time)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/postie-bench.XXXXXX)
cleanup() {
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/common.sh"

PORT=$(bench_free_port)
bench_start_sink "$PORT"

# ---- client configurations (plaintext, no AUTH: measures the clients, not TLS)
bench_postie_conf "$PORT" 'tls = "none"'
cat >"$WORK/esmtprc" <<EOF
hostname = 127.0.0.1:$PORT
EOF
chmod 600 "$WORK/esmtprc"
bench_msmtprc "$PORT" "tls off"

# ---- messages
bench_messages "$LARGE_MB"

echo "postie bench: smtp-sink on 127.0.0.1:$PORT, $(nproc) CPUs, RUNS=$RUNS LARGE_MB=$LARGE_MB NRCPT=$NRCPT"
echo "$("$POSTIE" --version 2>/dev/null | head -1), $(msmtp --version | head -1), esmtp $(dpkg-query -W -f '${Version}' esmtp 2>/dev/null)"
echo

# Each client runs as a direct child of the measuring script, so wall time,
# CPU (user+sys) and peak RSS come from wait4()'s rusage of that one process.
/usr/bin/python3 "$(dirname "$0")/measure.py" "$WORK" "$RUNS" "$NRCPT" \
    postie "$POSTIE" -C "$WORK/postie.conf" -i -f bench@bench.example -- \; \
    esmtp esmtp -C "$WORK/esmtprc" -f bench@bench.example -- \; \
    msmtp msmtp -C "$WORK/msmtprc" -f bench@bench.example -- \;


if [ "$FLUSH" -gt 0 ]; then
    mkdir -m 700 "$WORK/queue"
    sed "s|queue_dir = \"\"|queue_dir = \"$WORK/queue\"|" "$WORK/postie.conf" >"$WORK/queue.conf"
    chmod 600 "$WORK/queue.conf"
    i=0
    start=$(date +%s.%N)
    while [ $i -lt "$FLUSH" ]; do
        "$POSTIE" -C "$WORK/queue.conf" -odq -i -f bench@bench.example -- sink@example.org \
            <"$WORK/small.eml"
        i=$((i + 1))
    done
    end=$(date +%s.%N)
    before=$(bench_tally)
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/flush.time" "$POSTIE" -C "$WORK/queue.conf" -q
    sleep 0.2
    after=$(bench_tally)
    read -r fw fu fs fm <"$WORK/flush.time"
    echo
    echo "queue: $FLUSH messages queued with -odq in $(echo "$end - $start" | bc) s"
    echo "flush: postie -q took $fw s wall, $(echo "$fu + $fs" | bc) s CPU, peak RSS $fm KiB:" \
        "$(echo "$FLUSH / $fw" | bc) messages/s"
    echo "       sink before: $before"
    echo "       sink after:  $after"
    echo "       left in queue: $("$POSTIE" -C "$WORK/queue.conf" -bp | tail -1)"
fi

kill "$SINK_PID" 2>/dev/null || true
wait "$SINK_PID" 2>/dev/null || true
SINK_PID=
echo
echo "smtp-sink tally (-c): $(bench_tally)"
