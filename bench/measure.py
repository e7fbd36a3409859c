#!/usr/bin/python3
"""bench/measure.py - runs each client and reports wall time, CPU time
(user+sys) and peak RSS.  Called by bench/run.sh; not a test (benchmarks
never run in make check).  Clients are interleaved (one run of each in turn)
so that background load hits them alike; the small-message figures are
medians, and the first client is also compared with each other one run by
run (the median of the per-round differences)."""

import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time

# Runs of the large message and of the many-recipient one, per client.
LARGE_RUNS = 5


# One environment for every client, converted once: os.environ would be
# converted again for each spawn, inside the timed interval.
ENV = dict(os.environ)


def run_direct(argv, stdin_path):
    """Runs argv with stdin from a file, as a direct child.  Returns (exit
    status, wall s, cpu s): CPU from wait4() (microsecond resolution).  No
    peak RSS: the child's ru_maxrss would include this script's own pages
    (posix_spawn shares them until the exec)."""
    with open(stdin_path, "rb") as inp, open(os.devnull, "wb") as null:
        start = time.monotonic()
        pid = os.posix_spawn(argv[0], argv, ENV,
                             file_actions=[(os.POSIX_SPAWN_DUP2, inp.fileno(), 0),
                                           (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, null.fileno(), 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = time.monotonic() - start
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime


def run(argv, stdin_path):
    """Runs argv under /usr/bin/time with stdin from a file.  Returns
    (exit status, wall s, cpu s, peak RSS KiB): CPU from wait4() (microsecond
    resolution; /usr/bin/time's own share is a fraction of a millisecond),
    peak RSS from /usr/bin/time's %M (the client's own ru_maxrss)."""
    with tempfile.NamedTemporaryFile("r") as out:
        rc, wall, cpu = run_direct(["/usr/bin/time", "-f", "%M", "-o", out.name] + argv,
                                   stdin_path)
        rss = out.read().split()[-1]
    return rc, wall, cpu, int(rss)


def main():
    work, runs, nrcpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    clients, cur = [], []
    for a in sys.argv[4:]:
        if a == ";":
            # the program's path looked up once, not in each timed run
            clients.append((cur[0], [shutil.which(cur[1]) or cur[1]] + cur[2:]))
            cur = []
        else:
            cur.append(a)
    small, large = os.path.join(work, "small.eml"), os.path.join(work, "large.eml")
    rcpts = ["user%03d@example.org" % i for i in range(nrcpt)]
    size_mb = os.path.getsize(large) / 1e6

    res = {name: {"sw": [], "sc": [], "srss": [], "bad": 0} for name, _ in clients}

    # Run i takes the clients in the order of permutation i (cycling through
    # all of them), so that every client follows every other equally often:
    # msmtp's slow exit weighs on whoever runs next, and a plain rotation of
    # three clients puts the same client after msmtp in two runs of three.
    orders = list(itertools.permutations(clients))

    def rotation(i):
        return orders[i % len(orders)]

    # The small message runs as a direct child: under /usr/bin/time its own
    # start (1.5 ms here) would be in every figure.  Its peak RSS comes from
    # LARGE_RUNS runs under /usr/bin/time below.
    for i in range(runs):
        for name, argv in rotation(i):
            rc, w, c = run_direct(argv + ["sink@example.org"], small)
            r = res[name]
            r["bad"] += rc != 0
            r["sw"].append(w)
            r["sc"].append(c)
    for i in range(LARGE_RUNS):
        for name, argv in rotation(i):
            rc, w, c, rss = run(argv + ["sink@example.org"], large)
            r = res[name]
            r["bad"] += rc != 0
            r.setdefault("lw", []).append(w)
            r.setdefault("lc", []).append(c)
            r.setdefault("lrss", []).append(rss)
            rc, w, c = run_direct(argv + rcpts, small)
            r["bad"] += rc != 0
            r.setdefault("rw", []).append(w)
            r.setdefault("rc", []).append(c)
            rc, w, c, rss = run(argv + ["sink@example.org"], small)
            r["bad"] += rc != 0
            r["srss"].append(rss)

    print("%-7s | %-28s | %-30s | %-19s |" % ("", "small message, median of %d" % runs,
                                               "%.0f MB message, best of %d" % (size_mb, LARGE_RUNS),
                                               "%d rcpts, best of %d" % (nrcpt, LARGE_RUNS)))
    print("%-7s | %8s %8s %10s | %8s %8s %12s | %8s %8s | %s" % (
        "client", "wall ms", "cpu ms", "RSS KiB", "wall s", "cpu s", "peak RSS KiB",
        "wall ms", "cpu ms", "failures"))
    for name, _ in clients:
        r = res[name]
        print("%-7s | %8.2f %8.2f %10d | %8.3f %8.3f %12d | %8.2f %8.2f | %d" % (
            name, statistics.median(r["sw"]) * 1000, statistics.median(r["sc"]) * 1000,
            max(r["srss"]), min(r["lw"]), min(r["lc"]), max(r["lrss"]),
            min(r["rw"]) * 1000, min(r["rc"]) * 1000, r["bad"]))
    first = clients[0][0]
    for name, _ in clients[1:]:
        a, b = res[first], res[name]
        dw = statistics.median(x - y for x, y in zip(a["sw"], b["sw"])) * 1e6
        dc = statistics.median(x - y for x, y in zip(a["sc"], b["sc"])) * 1e6
        print("small message, %s minus %s, median of the %d per-round differences: "
              "wall %+.0f us, cpu %+.0f us" % (first, name, runs, dw, dc))


if __name__ == "__main__":
    main()
