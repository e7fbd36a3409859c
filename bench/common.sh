# bench/common.sh - sourced by run.sh and tls.sh: the sink, free ports, the
# test messages.  The caller sets CACHE (where the postfix .deb is unpacked)
# and WORK (a scratch directory it removes), and kills $SINK_PID at the end.

# Postfix's smtp-sink from the postfix package, unpacked, never installed.
SINK=$CACHE/root/usr/sbin/smtp-sink
if [ ! -x "$SINK" ]; then
    mkdir -p "$CACHE"
    (cd "$CACHE" && apt-get download postfix >/dev/null 2>&1 && dpkg-deb -x postfix_*.deb root)
fi
SINK_PID=

# A port nobody listens on: the kernel picks one.
bench_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:$1 ($2 names it).
bench_wait_port() {
    i=0
    until /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1).close()" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "bench: $2 did not start" >&2; exit 1; }
        sleep 0.05
    done
}

# Starts smtp-sink on 127.0.0.1:$1; -c keeps a running tally of sessions and
# messages in $WORK/sink.out.  Only the sink gets Postfix's library path.
bench_start_sink() {
    sink_user=
    [ "$(id -u)" = 0 ] && sink_user="-u nobody"
    LD_LIBRARY_PATH=$CACHE/root/usr/lib/postfix "$SINK" $sink_user -c 127.0.0.1:"$1" 128 \
        >"$WORK/sink.out" 2>"$WORK/sink.err" &
    SINK_PID=$!
    bench_wait_port "$1" smtp-sink
}

# $WORK/postie.conf for a smarthost on 127.0.0.1:$1; the rest of the
# arguments are extra account lines (the TLS mode and what it needs).
bench_postie_conf() {
    port=$1
    shift
    {
        printf 'hostname = "bench.example"\nqueue_dir = ""\naliases = ""\nsyslog = false\n'
        printf 'account "default" {\n    host = "127.0.0.1"\n    port = %s\n' "$port"
        for line in "$@"; do
            printf '    %s\n' "$line"
        done
        printf '    from = "bench@bench.example"\n    timeout = 60\n}\n'
    } >"$WORK/postie.conf"
    chmod 600 "$WORK/postie.conf"
}

# $WORK/msmtprc, the same for msmtp.
bench_msmtprc() {
    port=$1
    shift
    {
        printf 'account default\nhost 127.0.0.1\nport %s\nauth off\n' "$port"
        for line in "$@"; do
            printf '%s\n' "$line"
        done
        printf 'from bench@bench.example\ndomain bench.example\nsyslog off\n'
    } >"$WORK/msmtprc"
    chmod 600 "$WORK/msmtprc"
}

# The sink's last tally line ("sess=... quit=... mesg=...").
bench_tally() {
    tr '\r' '\n' <"$WORK/sink.out" | grep -v '^$' | tail -1
}

# $WORK/small.eml (1.2 KB) and $WORK/large.eml ($1 MiB of 80-octet lines).
bench_messages() {
    /usr/bin/python3 - "$WORK" "$1" <<'EOF'
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
    # Written back now, not by the kernel's flusher in the middle of a timed
    # run; then some seconds for the file system to finish with it (journal
    # commits, discards of the previous run's files): right after writing and
    # syncing 100 MB, the next 100 MB written to this file system (postie's
    # spool; esmtp and msmtp write nothing) took 0.05 s more wall and 0.1 s
    # more CPU on the development VM.
    sync
    sleep "${BENCH_SETTLE:-10}"
}
