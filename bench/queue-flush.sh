#!/bin/sh
# bench/queue-flush.sh - queue flush throughput (DESIGN section 9).
#
# Queues N messages (default 1000) with `postie -odq`, then times one
# `postie -q` run that delivers all of them to Postfix's smtp-sink on
# loopback, and checks that it used one connection, that the sink counted
# N messages and that the queue is empty afterwards.  Target: >= 500 msg/s.
#
# Usage: bench/queue-flush.sh [path/to/postie]
# Environment: N (message count), SMTP_SINK (an smtp-sink binary; by default
# it is unpacked from Debian's postfix package with `apt-get download` and
# `dpkg-deb -x` into $BENCH_CACHE, never installed), BENCH_QUEUE_DIR (where
# the queue goes; default: a new directory under $TMPDIR, usually /tmp).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
postie=${1:-${POSTIE:-$here/../src/postie}}
N=${N:-1000}
cache=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/postie-bench}
py=/usr/bin/python3

die() { echo "queue-flush: $*" >&2; exit 1; }
[ -x "$postie" ] || die "no postie binary at $postie (build first, or pass its path)"

# ---- the sink
sink=${SMTP_SINK:-}
sink_libs=
if [ -z "$sink" ]; then
    if command -v smtp-sink >/dev/null 2>&1; then
        sink=$(command -v smtp-sink)
    else
        if [ ! -x "$cache/postfix/usr/sbin/smtp-sink" ]; then
            mkdir -p "$cache"
            (cd "$cache" && apt-get download postfix >/dev/null 2>&1) ||
                die "cannot download the postfix package (set SMTP_SINK)"
            dpkg-deb -x "$(ls -t "$cache"/postfix_*.deb | head -n 1)" "$cache/postfix"
        fi
        sink=$cache/postfix/usr/sbin/smtp-sink
        sink_libs=$cache/postfix/usr/lib/postfix
    fi
fi

work=$(mktemp -d "${BENCH_QUEUE_DIR:-${TMPDIR:-/tmp}}/postie-qbench.XXXXXX")
sink_pid=
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user_opt=
[ "$(id -u)" = 0 ] && user_opt="-u nobody"
# shellcheck disable=SC2086
LD_LIBRARY_PATH=$sink_libs "$sink" $user_opt -c "127.0.0.1:$port" 256 >"$work/sink.out" 2>&1 &
sink_pid=$!
$py - "$port" <<'EOF' || die "smtp-sink did not start: $(cat "$work/sink.out")"
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.02)
EOF
# The readiness probe itself was one session without mail.
probe_sessions=1

mkdir -m 0700 "$work/queue"
cat >"$work/postie.conf" <<EOF
hostname = "bench.example"
queue_dir = "$work/queue"
aliases = ""
syslog = false
account "default" {
    host = "127.0.0.1"
    port = $port
    tls = "none"
    from = "bench@bench.example"
}
EOF
chmod 0600 "$work/postie.conf"

i=0
body=$(printf 'Line %s of a small cron-sized report.\n' 1 2 3 4 5 6 7 8 9 10)
t0=$($py -c 'import time; print(time.time())')
while [ "$i" -lt "$N" ]; do
    printf 'From: bench@bench.example\nTo: sink@bench.example\nSubject: bench %d\n\n%s\n' \
        "$i" "$body" | "$postie" -C "$work/postie.conf" -odq -t ||
        die "queueing message $i failed"
    i=$((i + 1))
done
t1=$($py -c 'import time; print(time.time())')
queued=$(find "$work/queue" -maxdepth 1 -name '*.ctl' | wc -l)
[ "$queued" -eq "$N" ] || die "$queued of $N messages queued"

# ---- the timed flush
${BENCH_WRAP:-} /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$postie" -C "$work/postie.conf" -q ||
    die "postie -q failed"
read -r wall user sys rss <"$work/time"

left=$("$postie" -C "$work/postie.conf" -bp)
[ "$left" = "Mail queue is empty" ] || die "queue not empty after the flush"
# smtp-sink's counters: "sess=S quit=Q mesg=M" (updated in place with CR).
$py - "$work/sink.out" "$N" "$probe_sessions" <<'EOF' || die "the sink disagrees"
import re, sys, time
path, n, probe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 10
while True:
    last = re.findall(r"sess=(\d+) quit=\d+ mesg=(\d+)", open(path, errors="replace").read())
    if last and int(last[-1][1]) >= n and int(last[-1][0]) >= probe + 1:
        break
    if time.monotonic() > deadline:
        break
    time.sleep(0.05)
sess, msgs = (int(x) for x in last[-1]) if last else (0, 0)
print("sink: %d messages in %d session(s)" % (msgs, sess - probe))
sys.exit(0 if msgs == n and sess - probe == 1 else 1)
EOF

# Reference, same sink, same moment: Python's smtplib sending N messages of
# the same size over one connection (no queue, no TLS layer, one thread).
ref=$($py - "$port" "$N" <<'EOF'
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
body = "From: bench@bench.example\r\nTo: sink@bench.example\r\nSubject: ref\r\n\r\n" + \
    "".join("Line %d of a small cron-sized report.\r\n" % i for i in range(1, 11))
s = smtplib.SMTP("127.0.0.1", port)
t = time.monotonic()
for i in range(n):
    s.sendmail("bench@bench.example", ["sink@bench.example"], body)
t = time.monotonic() - t
s.quit()
print("%.2f" % t)
EOF
)

$py - "$N" "$t0" "$t1" "$wall" "$user" "$sys" "$rss" "$ref" <<'EOF'
import sys
n, t0, t1, wall, user, sys_, rss, ref = sys.argv[1:]
n = int(n)
wall = float(wall)
print("queued  %d messages with -odq in %.2f s (%.0f msg/s, one process each)"
      % (n, float(t1) - float(t0), n / (float(t1) - float(t0))))
print("flushed %d messages in %.2f s wall, %.2f s user, %.2f s sys, %d KB peak RSS"
      % (n, wall, float(user), float(sys_), int(rss)))
rate = n / wall if wall > 0 else float("inf")
print("rate    %.0f messages/s over one connection (target >= 500): %s"
      % (rate, "ok" if rate >= 500 else "BELOW TARGET"))
print("ref     python smtplib, same sink, one connection: %.0f messages/s"
      % (n / float(ref) if float(ref) > 0 else float("inf")))
with open("/proc/loadavg") as f:
    print("load    %s (machine load during the run)" % " ".join(f.read().split()[:3]))
EOF
