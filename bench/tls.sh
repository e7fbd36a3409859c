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

WORK=$(mktemp -d /tmp/postie-bench-tls.XXXXXX)
cleanup() {
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
    [ -f "$WORK/stunnel.pid" ] && kill "$(cat "$WORK/stunnel.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. "$HERE/common.sh"

# ---- smtp-sink on a plaintext port, stunnel in front of it
PLAIN=$(bench_free_port)
bench_start_sink "$PLAIN"

sh "$HERE/../tests/mkcerts.sh" ca "$WORK/ca"
sh "$HERE/../tests/mkcerts.sh" issue "$WORK/ca" server DNS:localhost IP:127.0.0.1
TLS=$(bench_free_port)
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
bench_wait_port "$TLS" stunnel

# ---- client configurations: implicit TLS, the test CA, no AUTH
bench_postie_conf "$TLS" 'tls = "tls"' "tls_ca_file = \"$WORK/ca/ca.pem\""
bench_msmtprc "$TLS" "tls on" "tls_starttls off" "tls_trust_file $WORK/ca/ca.pem"

bench_messages "$LARGE_MB"

echo "postie TLS bench: smtp-sink behind stunnel (implicit TLS) on 127.0.0.1:$TLS, $(nproc) CPUs," \
    "RUNS=$RUNS LARGE_MB=$LARGE_MB NRCPT=$NRCPT"
echo "$("$POSTIE" --version 2>/dev/null | head -1), $(msmtp --version | head -1), $(stunnel -version 2>&1 | grep -m1 '^stunnel')"
echo
/usr/bin/python3 "$HERE/measure.py" "$WORK" "$RUNS" "$NRCPT" \
    postie "$POSTIE" -C "$WORK/postie.conf" -i -f bench@bench.example -- \; \
    msmtp msmtp -C "$WORK/msmtprc" -f bench@bench.example -- \;
echo
echo "smtp-sink tally (-c): $(bench_tally)"
