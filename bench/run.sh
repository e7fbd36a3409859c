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
#   small   a 1 KiB message, RUNS times in a row: wall and CPU (user+sys) per message
#   large   a 100 MB message once: wall, CPU and peak RSS (ru_maxrss)
#   rcpts   one message to 300 recipients: wall, and the sink's transaction count
#   flush   FLUSH messages queued with -odq, then one `postie -q`: messages/s,
#           and the sink's session count (one connection expected)
# Environment: RUNS (default 200), LARGE_MB (default 100), NRCPT (default 300),
# FLUSH (default 1000; 0 skips it).
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

# ---- Postfix's smtp-sink, unpacked, not installed
SINK=$CACHE/root/usr/sbin/smtp-sink
if [ ! -x "$SINK" ]; then
    mkdir -p "$CACHE"
    (cd "$CACHE" && apt-get download postfix >/dev/null 2>&1 && dpkg-deb -x postfix_*.deb root)
fi
export LD_LIBRARY_PATH=$CACHE/root/usr/lib/postfix

WORK=$(mktemp -d /tmp/postie-bench.XXXXXX)
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A free port: let the kernel pick one, then hand it to smtp-sink.
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SINK_USER=
[ "$(id -u)" = 0 ] && SINK_USER="-u nobody"
# -c: a running tally of sessions and transactions on stdout.  Backlog 128.
"$SINK" $SINK_USER -c 127.0.0.1:"$PORT" 128 >"$WORK/sink.out" 2>"$WORK/sink.err" &
SINK_PID=$!
i=0
until /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),1).close()" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "bench: smtp-sink did not start" >&2; cat "$WORK/sink.err" >&2; exit 1; }
    sleep 0.05
done

# ---- client configurations (plaintext, no AUTH: measures the clients, not TLS)
cat >"$WORK/postie.conf" <<EOF
hostname = "bench.example"
queue_dir = ""
aliases = ""
syslog = false
account "default" {
    host = "127.0.0.1"
    port = $PORT
    tls = "none"
    from = "bench@bench.example"
    timeout = 60
}
EOF
chmod 600 "$WORK/postie.conf"
cat >"$WORK/esmtprc" <<EOF
hostname = 127.0.0.1:$PORT
EOF
chmod 600 "$WORK/esmtprc"
cat >"$WORK/msmtprc" <<EOF
account default
host 127.0.0.1
port $PORT
auth off
tls off
from bench@bench.example
domain bench.example
syslog off
EOF
chmod 600 "$WORK/msmtprc"

# ---- messages
/usr/bin/python3 - "$WORK" "$LARGE_MB" <<'EOF'
import sys
work, mb = sys.argv[1], int(sys.argv[2])
hdr = (b"From: Bench <bench@bench.example>\r\nTo: sink@example.org\r\n"
       b"Subject: bench\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
       b"Message-ID: <bench.%d@bench.example>\r\n\r\n")
line = b"The quick brown fox jumps over the lazy dog; 0123456789 abcdefghijklmnopqrst\r\n"
with open(work + "/small.eml", "wb") as f:
    f.write(hdr % 1 + line * 13)
with open(work + "/large.eml", "wb") as f:
    f.write(hdr % 2)
    chunk = line * 8192
    left = mb * 1024 * 1024
    while left > 0:
        f.write(chunk[:left])
        left -= len(chunk)
EOF

echo "postie bench: smtp-sink on 127.0.0.1:$PORT, $(nproc) CPUs, RUNS=$RUNS LARGE_MB=$LARGE_MB NRCPT=$NRCPT"
echo "$("$POSTIE" --version 2>/dev/null | head -1), $(msmtp --version | head -1), esmtp $(dpkg-query -W -f '${Version}' esmtp 2>/dev/null)"
echo

# Each client runs as a direct child of the measuring script, so wall time,
# CPU (user+sys) and peak RSS come from wait4()'s rusage of that one process.
/usr/bin/python3 "$(dirname "$0")/measure.py" "$WORK" "$RUNS" "$NRCPT" \
    postie "$POSTIE" -C "$WORK/postie.conf" -i -f bench@bench.example -- \; \
    esmtp esmtp -C "$WORK/esmtprc" -f bench@bench.example -- \; \
    msmtp msmtp -C "$WORK/msmtprc" -f bench@bench.example -- \;

tally() { tr '\r' '\n' <"$WORK/sink.out" | grep -v '^$' | tail -1; }

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
    before=$(tally)
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/flush.time" "$POSTIE" -C "$WORK/queue.conf" -q
    sleep 0.2
    after=$(tally)
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
echo "smtp-sink tally (-c): $(tally)"
