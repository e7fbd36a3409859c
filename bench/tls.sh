#!/bin/sh
# bench/tls.sh - postie over TLS, side by side with msmtp, same sink, same run.
#
#   bench/tls.sh [path/to/postie]      (default: ./src/postie of the build dir)
#
# The sink is Postfix's smtp-sink (taken from the postfix .deb as in run.sh)
# behind stunnel, which terminates implicit TLS (port 465 style) with a
# certificate from a throwaway CA made by tests/mkcerts.sh.  Both clients
# verify that certificate.  esmtp is not in this table: libESMTP has no
# implicit TLS, and stunnel cannot offer STARTTLS.
#
# Needs: msmtp, stunnel4, openssl and /usr/bin/time
# (apt-get install -y msmtp stunnel4 openssl time).
# Environment: RUNS (default 100), LARGE_MB (default 100), NRCPT (default 300).
set -eu

POSTIE=${1:-./src/postie}
RUNS=${RUNS:-100}
LARGE_MB=${LARGE_MB:-100}
NRCPT=${NRCPT:-300}
CACHE=${BENCH_CACHE:-/tmp/postie-bench-cache}
HERE=$(cd "$(dirname "$0")" && pwd)

[ -x "$POSTIE" ] || { echo "bench: no postie binary at $POSTIE" >&2; exit 1; }
POSTIE=$(cd "$(dirname "$POSTIE")" && pwd)/$(basename "$POSTIE")
for tool in msmtp stunnel openssl /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "bench: $tool missing (apt-get install -y msmtp stunnel4 openssl time)" >&2; exit 1; }
done

SINK=$CACHE/root/usr/sbin/smtp-sink
if [ ! -x "$SINK" ]; then
    mkdir -p "$CACHE"
    (cd "$CACHE" && apt-get download postfix >/dev/null 2>&1 && dpkg-deb -x postfix_*.deb root)
fi

WORK=$(mktemp -d /tmp/postie-bench-tls.XXXXXX)
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
    [ -f "$WORK/stunnel.pid" ] && kill "$(cat "$WORK/stunnel.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    i=0
    until /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1).close()" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "bench: nothing listens on port $1" >&2; exit 1; }
        sleep 0.05
    done
}

# ---- smtp-sink on a plaintext port, stunnel in front of it
PLAIN=$(free_port)
SINK_USER=
[ "$(id -u)" = 0 ] && SINK_USER="-u nobody"
LD_LIBRARY_PATH=$CACHE/root/usr/lib/postfix "$SINK" $SINK_USER -c 127.0.0.1:"$PLAIN" 128 \
    >"$WORK/sink.out" 2>"$WORK/sink.err" &
SINK_PID=$!
wait_port "$PLAIN"

sh "$HERE/../tests/mkcerts.sh" ca "$WORK/ca"
sh "$HERE/../tests/mkcerts.sh" issue "$WORK/ca" server DNS:localhost IP:127.0.0.1
TLS=$(free_port)
cat >"$WORK/stunnel.conf" <<EOF
pid = $WORK/stunnel.pid
output = $WORK/stunnel.log
[smtps]
accept = 127.0.0.1:$TLS
connect = 127.0.0.1:$PLAIN
cert = $WORK/ca/server.pem
key = $WORK/ca/server.key
EOF
stunnel "$WORK/stunnel.conf"
wait_port "$TLS"

# ---- client configurations: implicit TLS, the test CA, no AUTH
cat >"$WORK/postie.conf" <<EOF
hostname = "bench.example"
queue_dir = ""
aliases = ""
syslog = false
account "default" {
    host = "127.0.0.1"
    port = $TLS
    tls = "tls"
    tls_ca_file = "$WORK/ca/ca.pem"
    from = "bench@bench.example"
    timeout = 60
}
EOF
cat >"$WORK/msmtprc" <<EOF
account default
host 127.0.0.1
port $TLS
auth off
tls on
tls_starttls off
tls_trust_file $WORK/ca/ca.pem
from bench@bench.example
domain bench.example
syslog off
EOF
chmod 600 "$WORK/postie.conf" "$WORK/msmtprc"

# ---- the same messages as run.sh
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

echo "postie TLS bench: smtp-sink behind stunnel (implicit TLS) on 127.0.0.1:$TLS, $(nproc) CPUs," \
    "RUNS=$RUNS LARGE_MB=$LARGE_MB NRCPT=$NRCPT"
echo "$("$POSTIE" --version 2>/dev/null | head -1), $(msmtp --version | head -1), $(stunnel -version 2>&1 | grep -m1 '^stunnel')"
echo
/usr/bin/python3 "$HERE/measure.py" "$WORK" "$RUNS" "$NRCPT" \
    postie "$POSTIE" -C "$WORK/postie.conf" -i -f bench@bench.example -- \; \
    msmtp msmtp -C "$WORK/msmtprc" -f bench@bench.example -- \;
echo
echo "smtp-sink tally (-c): $(tr '\r' '\n' <"$WORK/sink.out" | grep -v '^$' | tail -1)"
