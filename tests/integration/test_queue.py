"""The durable queue, end to end: the real binary, the test smarthost, a real
queue directory.  Asserts what the smarthost received (each message exactly
once) and what is left on disk."""

import email
import email.policy
import os
import re
import signal
import subprocess
import time
import unittest

import harness
from harness import Smarthost, TempDir, message, run_postie, write_config

SENDER = "alice@example.org"


def subject_of(data):
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    return msg.get("Subject")


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class QueueTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.d = self.tmp.path
        self.q = os.path.join(self.d, "queue")
        os.mkdir(self.q, 0o700)
        self.sh = None
        self.mounted = False
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        if self.sh is not None:
            self.sh.stop()
        if self.mounted:
            subprocess.run(["umount", self.q], check=False)
        self.tmp.cleanup()

    # ---- helpers
    def smarthost(self, **options):
        self.sh = Smarthost(self.d, **options)
        return self.sh

    def config(self, **global_):
        g = {"queue_dir": self.q, "hostname": "box.example"}
        g.update(global_)
        self.conf = write_config(self.d, self.sh, account={"from": SENDER}, global_=g)
        return self.conf

    def send(self, subject, rcpts=("bob@example.com",), args=(), body="hello\n"):
        msg = message({"From": SENDER, "To": ", ".join(rcpts), "Subject": subject}, body)
        return run_postie(["-t"] + list(args), stdin=msg, config=self.conf)

    def postie(self, *args, argv0=None):
        return run_postie(list(args), config=self.conf, argv0=argv0)

    def files(self, sub=""):
        d = os.path.join(self.q, sub)
        return sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))

    def queued_ids(self):
        return sorted(f[:-4] for f in self.files() if f.endswith(".ctl"))

    def assert_queue_empty(self):
        res = self.postie(argv0="mailq")
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(res.out, "Mail queue is empty\n")
        self.assertEqual(self.files(), [])
        self.assertEqual(self.files("tmp"), [])

    def subjects(self):
        return sorted(subject_of(m["data"]) for m in self.sh.messages())

    # ---- tests
    def test_down_then_up_delivers_once(self):
        sh = self.smarthost()
        self.config()
        sh.stop()
        res = self.send("outage")
        self.assertEqual(res.returncode, 0, res)
        self.assertIn("queued as", res.err)
        ids = self.queued_ids()
        self.assertEqual(len(ids), 1)
        self.assertIn(ids[0], res.err)

        mq = self.postie(argv0="mailq")
        self.assertEqual(mq.returncode, 0, mq)
        self.assertIn(ids[0], mq.out)
        self.assertIn(SENDER, mq.out)
        self.assertIn("bob@example.com", mq.out)
        self.assertRegex(mq.out, r"\(.*(connect|refused).*\)")
        no_age = lambda out: re.sub(r" +\d+[smhd]  ", " AGE  ", out)
        self.assertEqual(no_age(self.postie("-bp").out), no_age(mq.out))

        # Still down: a queue run keeps it, exit 0.
        res = self.postie("-q")
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(self.queued_ids(), ids)

        sh.start()
        res = self.postie("-q")
        self.assertEqual(res.returncode, 0, res)
        msgs = sh.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["mail_from"], SENDER)
        self.assertEqual(msgs[0]["rcpt_tos"], ["bob@example.com"])
        self.assertEqual(subject_of(msgs[0]["data"]), "outage")
        self.assertTrue(msgs[0]["data"].endswith(b"\r\n\r\nhello\r\n"), msgs[0]["data"])
        self.assert_queue_empty()
        # Once only.
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assertEqual(len(sh.messages()), 1)

    def test_parallel_submitters_and_flushers(self):
        sh = self.smarthost()
        self.config()
        sh.stop()
        n = 40
        procs = []
        for i in range(n):
            msg = message({"From": SENDER, "To": "bob@example.com", "Subject": "p%02d" % i},
                          "body %d\n" % i)
            p = subprocess.Popen([harness.POSTIE, "-C", self.conf, "-t"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.procs.append(p)
            procs.append((p, msg))
        for p, msg in procs:
            out, err = p.communicate(msg, timeout=60)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(len(self.queued_ids()), n)

        sh.start()
        flushers = [subprocess.Popen([harness.POSTIE, "-C", self.conf, "-q"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for _ in range(2)]
        self.procs.extend(flushers)
        for p in flushers:
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        # A message one flusher held was skipped by the other, never repeated.
        self.assertEqual(self.postie("-q").returncode, 0)
        sh.wait_messages(n)
        self.assertEqual(self.subjects(), ["p%02d" % i for i in range(n)])
        self.assertLessEqual(sh.connections(), 3)
        self.assert_queue_empty()

    def test_one_recipient_deferred_only_it_is_retried(self):
        sh = self.smarthost(rcpt_reply={"carol@example.com": "450 4.2.0 mailbox busy"})
        self.config()
        res = self.send("partial", rcpts=("bob@example.com", "carol@example.com"))
        self.assertEqual(res.returncode, 0, res)
        msgs = sh.wait_messages(1)
        self.assertEqual(msgs[0]["rcpt_tos"], ["bob@example.com"])
        ids = self.queued_ids()
        self.assertEqual(len(ids), 1)
        mq = self.postie("-bp").out
        self.assertIn("carol@example.com", mq)
        self.assertNotIn("bob@example.com", mq)
        self.assertIn("450 4.2.0 mailbox busy", mq)

        sh.restart(rcpt_reply=None)
        res = self.postie("-q")
        self.assertEqual(res.returncode, 0, res)
        msgs = sh.wait_messages(2)
        self.assertEqual(len(msgs), 2)
        self.assertEqual(msgs[1]["rcpt_tos"], ["carol@example.com"])
        self.assertEqual(subject_of(msgs[1]["data"]), "partial")
        self.assert_queue_empty()

    def test_4xx_at_data_is_queued(self):
        sh = self.smarthost(data_reply="451 4.3.0 try again later")
        self.config()
        res = self.send("data451", rcpts=("bob@example.com", "carol@example.com"))
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(len(self.queued_ids()), 1)
        self.assertIn("451 4.3.0 try again later", self.postie("-bp").out)

        sh.restart(data_reply=None)
        self.assertEqual(self.postie("-q").returncode, 0)
        msgs = sh.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(sorted(msgs[0]["rcpt_tos"]), ["bob@example.com", "carol@example.com"])
        self.assert_queue_empty()

    def test_streamed_message_deferred_is_queued_whole(self):
        # Past 1 MiB the body goes out while it is read; a 451 at its end
        # must leave all of it in the queue, and the flush send it exactly.
        sh = self.smarthost(data_reply="451 4.3.0 try again later")
        self.config()
        body = "".join("line %06d of a large report, 7-bit and short\n" % i
                       for i in range(40000))
        res = self.send("big451", body=body)
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(len(self.queued_ids()), 1)
        # the transfer reached its final dot, and the 451 came there
        self.assertEqual(len([c for c in sh.commands() if c.get("event") == "data-reply"]), 1)

        sh.restart(data_reply=None)
        self.assertEqual(self.postie("-q").returncode, 0)
        [m] = sh.wait_messages(1)
        self.assertTrue(m["data"].endswith(b"\r\n\r\n" + body.replace("\n", "\r\n").encode()))
        self.assertEqual(subject_of(m["data"]), "big451")
        self.assert_queue_empty()

    def test_odq_queues_without_trying(self):
        sh = self.smarthost()
        self.config()
        res = self.send("deferred", args=["-odq"])
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(sh.connections(), 0)
        ids = self.queued_ids()
        self.assertEqual(len(ids), 1)
        self.assertIn(ids[0], self.postie("-bp").out)
        # Never tried, so due at once: the timer's --due run sends it.
        self.assertEqual(self.postie("-q", "--due").returncode, 0)
        msgs = sh.wait_messages(1)
        self.assertEqual(subject_of(msgs[0]["data"]), "deferred")
        self.assertEqual(sh.connections(), 1)
        self.assert_queue_empty()

    def test_successful_send_flushes_due_mail_in_the_background(self):
        sh = self.smarthost()
        self.config()
        self.assertEqual(self.send("waiting", args=["-odq"]).returncode, 0)
        self.assertEqual(sh.connections(), 0)
        self.assertEqual(self.send("fresh").returncode, 0)
        msgs = sh.wait_messages(2)
        self.assertEqual(sorted(subject_of(m["data"]) for m in msgs), ["fresh", "waiting"])
        wait_until(lambda: not self.queued_ids(), what="the queue to empty")

    def test_smtp_session_flushes_due_mail_afterwards(self):
        sh = self.smarthost()
        self.config()
        self.assertEqual(self.send("waiting", args=["-odq"]).returncode, 0)
        dialogue = ("EHLO client\r\nMAIL FROM:<%s>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                    "Subject: over -bs\r\n\r\nhi\r\n.\r\nQUIT\r\n" % SENDER).encode()
        res = run_postie(["-bs"], stdin=dialogue, config=self.conf)
        self.assertEqual(res.returncode, 0, res.err)
        msgs = sh.wait_messages(2)
        self.assertEqual(sorted(subject_of(m["data"]) for m in msgs), ["over -bs", "waiting"])
        wait_until(lambda: not self.queued_ids(), what="the queue to empty")

    def test_due_skips_recently_tried(self):
        sh = self.smarthost()
        self.config()
        sh.stop()
        self.assertEqual(self.send("later").returncode, 0)
        sh.start()
        self.assertEqual(self.postie("-q", "--due").returncode, 0)
        self.assertEqual(sh.connections(), 0)
        self.assertEqual(len(self.queued_ids()), 1)
        self.assertEqual(self.postie("-q").returncode, 0)
        sh.wait_messages(1)
        self.assert_queue_empty()

    def test_delete(self):
        self.smarthost()
        self.config()
        self.assertEqual(self.send("one", args=["-odq"]).returncode, 0)
        self.assertEqual(self.send("two", args=["-odq"]).returncode, 0)
        ids = self.queued_ids()
        res = self.postie("--delete", ids[0])
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(self.queued_ids(), ids[1:])
        res = self.postie("--delete", ids[0])
        self.assertEqual(res.returncode, 64, res)
        self.assertEqual(self.postie("-q").returncode, 0)
        msgs = self.sh.wait_messages(1)
        self.assertEqual([subject_of(m["data"]) for m in msgs], ["two"])

    def test_flush_filter(self):
        sh = self.smarthost()
        self.config()
        for s in ("a", "b", "c"):
            self.assertEqual(self.send(s, args=["-odq"]).returncode, 0)
        ids = self.queued_ids()
        by_subject = {}
        for i in ids:
            with open(os.path.join(self.q, i + ".ctl")) as f:
                by_subject[re.search(r"^header Subject: (.*)$", f.read(), re.M).group(1)] = i
        self.assertEqual(self.postie("-qI" + by_subject["b"][-10:]).returncode, 0)
        sh.wait_messages(1)
        self.assertEqual(self.subjects(), ["b"])
        self.assertEqual(self.queued_ids(), sorted([by_subject["a"], by_subject["c"]]))
        # Ids sort in arrival order.
        self.assertEqual(ids, [by_subject[s] for s in ("a", "b", "c")])

    def test_kill_during_input_leaves_nothing(self):
        self.smarthost()
        self.config()
        p = subprocess.Popen([harness.POSTIE, "-C", self.conf, "-t", "-odq"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.procs.append(p)
        p.stdin.write(b"From: " + SENDER.encode() + b"\r\nTo: bob@example.com\r\n"
                      b"Subject: killed\r\n\r\n" + b"x" * 300000)
        p.stdin.flush()

        def spooling():
            # The body spool (an unlinked O_TMPFILE) is open in the queue dir:
            # past MESSAGE_SPOOL_MEMORY (128 KiB) it has left its memfd.
            try:
                for fd in os.listdir("/proc/%d/fd" % p.pid):
                    target = os.readlink("/proc/%d/fd/%s" % (p.pid, fd))
                    if target.startswith(self.q + "/"):
                        return True
            except OSError:
                pass
            return False
        wait_until(spooling, what="postie to spool the body")
        p.kill()
        p.communicate()
        self.assertEqual(self.files(), [])
        self.assert_queue_empty()
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assertEqual(self.sh.messages(), [])

    def test_kill_during_flush(self):
        sh = self.smarthost(stall_mid_data=True)
        self.config()
        for s in ("k1", "k2", "k3"):
            self.assertEqual(self.send(s, args=["-odq"]).returncode, 0)
        ids = self.queued_ids()
        p = subprocess.Popen([harness.POSTIE, "-C", self.conf, "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        wait_until(lambda: any(l.upper().startswith("DATA") for l in sh.command_lines()),
                   what="the flush to reach DATA")
        p.kill()
        p.communicate()
        # Old state intact: every control file parses, nothing half-written.
        self.assertEqual(self.queued_ids(), ids)
        mq = self.postie("-bp")
        self.assertEqual(mq.returncode, 0, mq)
        self.assertNotIn("unreadable", mq.out)
        for i in ids:
            self.assertIn(i, mq.out)

        sh.restart(stall_mid_data=None)
        self.assertEqual(self.postie("-q").returncode, 0)
        sh.wait_messages(3)
        self.assertEqual(self.subjects(), ["k1", "k2", "k3"])
        self.assert_queue_empty()
        self.assertEqual(self.files("corrupt"), [])

    def test_kill_while_recording(self):
        """kill -9 right after the session, while the states are written:
        every control file is the old or the new one, nothing is lost, and
        only the at-least-once window can repeat a delivery."""
        sh = self.smarthost(rcpt_reply={"carol@example.com": "450 4.2.0 busy"})
        self.config()
        n = 30
        for i in range(n):
            self.assertEqual(self.send("r%02d" % i, rcpts=("bob@example.com", "carol@example.com"),
                                       args=["-odq"]).returncode, 0)
        p = subprocess.Popen([harness.POSTIE, "-C", self.conf, "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        wait_until(lambda: p.poll() is not None or
                   any(l.upper().startswith("QUIT") for l in sh.command_lines()),
                   what="the end of the session")
        p.kill()
        p.communicate()
        mq = self.postie("-bp")
        self.assertEqual(mq.returncode, 0, mq)
        self.assertNotIn("unreadable", mq.out)
        self.assertEqual(len(self.queued_ids()), n)  # carol is pending in every one
        for i in self.queued_ids():
            with open(os.path.join(self.q, i + ".ctl")) as f:
                text = f.read()
            self.assertTrue(text.endswith("\nend\n"), text)
            self.assertRegex(text, r"rcpt (pending|deferred) carol@example\.com ")
        # A control file being written may be left in tmp/: the next run removes it.

        sh.restart(rcpt_reply=None)
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assert_queue_empty()
        self.assertEqual(self.files("corrupt"), [])
        got = {}
        for m in sh.messages():
            for r in m["rcpt_tos"]:
                got.setdefault(r, []).append(subject_of(m["data"]))
        want = ["r%02d" % i for i in range(n)]
        self.assertEqual(sorted(got["carol@example.com"]), want)
        self.assertEqual(sorted(set(got["bob@example.com"])), want)
        self.assertLessEqual(len(got["bob@example.com"]), 2 * n)

    def test_full_disk(self):
        self.smarthost()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", self.q],
                       check=True)
        self.mounted = True
        self.config()
        self.sh.stop()
        res = self.send("too big", body="y" * 70 + "\n" * 1 + ("z" * 76 + "\n") * 6000)
        self.assertIn(res.returncode, (73, 75), res)
        self.assertRegex(res.err, r"(?i)space|queue|write")
        self.assertEqual(self.files(), [])
        self.assertEqual(self.files("tmp"), [])
        self.assert_queue_empty()
        # Not left full or broken: a small one is still queued.
        res = self.send("small")
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(len(self.queued_ids()), 1)

    def test_full_disk_while_streaming(self):
        """The spool fills up after the transfer began: the transfer is given
        up before its final dot, nothing is delivered, nothing is left."""
        sh = self.smarthost()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", self.q],
                       check=True)
        self.mounted = True
        self.config()
        res = self.send("stream full", body=("z" * 76 + "\n") * 50000)
        self.assertEqual(res.returncode, 73, res)
        self.assertIn("No space left on device", res.err)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(len([l for l in sh.command_lines() if l.upper() == "DATA"]), 1)
        self.assertEqual([c for c in sh.commands() if c.get("event") == "data-reply"], [])
        self.assertEqual(self.files(), [])
        self.assert_queue_empty()

    def test_full_disk_on_the_control_file(self):
        """The body fits but the control file does not: nothing partial."""
        self.smarthost()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", self.q],
                       check=True)
        self.mounted = True
        self.config()
        self.sh.stop()
        # Fill the file system up to a few KB with a file of our own.
        filler = os.path.join(self.q, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"f" * 1024)
        except OSError:
            pass
        finally:
            os.close(fd)
        # Leave two pages: room for the body, not for the control file.
        os.truncate(filler, os.path.getsize(filler) - 8192)
        st = os.statvfs(self.q)
        self.assertLessEqual(st.f_bavail * st.f_frsize, 16384)
        # Headers large enough that the control file cannot be written.
        hdrs = [("From", SENDER), ("To", "bob@example.com"), ("Subject", "ctl")]
        hdrs += [("X-Pad-%d" % i, "p" * 70) for i in range(200)]
        res = run_postie(["-t"], stdin=message(hdrs, "b\n"), config=self.conf)
        self.assertIn(res.returncode, (73, 75), res)
        self.assertIn("control file", res.err)
        self.assertIn("No space left on device", res.err)
        os.unlink(filler)
        self.assertEqual(self.files(), [])
        self.assertEqual(self.files("tmp"), [])

    def test_lifetime_expiry_bounces_to_sender(self):
        sh = self.smarthost()
        self.config(queue_lifetime="2s")
        sh.stop()
        res = self.send("expiring")
        self.assertEqual(res.returncode, 0, res)
        orig = self.queued_ids()
        self.assertEqual(len(orig), 1)
        with open(os.path.join(self.q, orig[0] + ".ctl")) as f:
            created = int(re.search(r"^created (\d+)$", f.read(), re.M).group(1))
        # A deadline wait: the message has to be older than its lifetime.
        wait_until(lambda: time.time() >= created + 3, timeout=15, what="queue_lifetime")
        res = self.postie("-q")
        self.assertEqual(res.returncode, 0, res)
        ids = self.queued_ids()
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids, orig)
        mq = self.postie("-bp").out
        self.assertIn("<>", mq)
        self.assertIn(SENDER, mq)

        sh.start()
        self.assertEqual(self.postie("-q").returncode, 0)
        msgs = sh.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        b = msgs[0]
        self.assertEqual(b["mail_from"], "")
        self.assertEqual(b["rcpt_tos"], [SENDER])
        m = email.message_from_bytes(b["data"], policy=email.policy.compat32)
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON@box.example", m["From"])
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        parts = m.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        ds = b["data"].decode("ascii", "replace")
        self.assertIn("Final-Recipient: rfc822; bob@example.com", ds)
        self.assertIn("Action: failed", ds)
        self.assertRegex(ds, r"Status: 4\.4\.[17]")
        self.assertIn("Reporting-MTA: dns; box.example", ds)
        self.assertIn("Subject: expiring", parts[2].as_string())
        self.assertNotIn(b"hello", b["data"])  # headers only, never the original body
        self.assert_queue_empty()
        # The original never arrives.
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assertEqual(len(sh.messages()), 1)

    def test_permanent_failure_in_flush_bounces(self):
        sh = self.smarthost(rcpt_reply={"carol@example.com": "550 5.1.1 no such user"})
        self.config()
        res = self.send("rejected", rcpts=("bob@example.com", "carol@example.com"),
                        args=["-odq"])
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(self.postie("-q").returncode, 0)
        msgs = sh.wait_messages(1)
        self.assertEqual(msgs[0]["rcpt_tos"], ["bob@example.com"])
        # The bounce is queued (due at once) and leaves with the next run.
        self.assertEqual(len(self.queued_ids()), 1)
        self.assertEqual(self.postie("-q").returncode, 0)
        msgs = sh.wait_messages(2)
        self.assertEqual(len(msgs), 2)
        self.assertEqual(msgs[1]["mail_from"], "")
        self.assertEqual(msgs[1]["rcpt_tos"], [SENDER])
        ds = msgs[1]["data"].decode("ascii", "replace")
        self.assertIn("Final-Recipient: rfc822; carol@example.com", ds)
        self.assertIn("Status: 5.1.1", ds)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 no such user", ds)
        self.assertNotIn("Final-Recipient: rfc822; bob@example.com", ds)
        self.assert_queue_empty()

    def test_undeliverable_bounce_goes_to_failed(self):
        sh = self.smarthost(rcpt_reply={"carol@example.com": "550 5.1.1 no such user",
                                        SENDER: "550 5.1.1 sender gone too"})
        self.config()
        self.assertEqual(self.send("double", rcpts=("carol@example.com",),
                                   args=["-odq"]).returncode, 0)
        self.assertEqual(self.postie("-q").returncode, 0)  # bounces
        self.assertEqual(len(self.queued_ids()), 1)
        res = self.postie("-q")  # the bounce fails: no bounce of a bounce
        self.assertEqual(res.returncode, 0, res)
        self.assertEqual(self.queued_ids(), [])
        self.assertEqual(len([f for f in self.files("failed") if f.endswith(".ctl")]), 1)
        self.assertEqual(sh.messages(), [])
        self.assert_queue_empty()

    def test_null_sender_never_bounced(self):
        sh = self.smarthost(rcpt_reply={"bob@example.com": "550 5.1.1 no such user"})
        self.config()
        res = self.send("from nobody", args=["-odq", "-f", "<>"])
        self.assertEqual(res.returncode, 0, res)
        self.assertIn("<>", self.postie("-bp").out)
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assertEqual(self.postie("-q").returncode, 0)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(len([f for f in self.files("failed") if f.endswith(".ctl")]), 1)
        self.assert_queue_empty()

    def test_corrupt_control_file_is_moved_aside(self):
        sh = self.smarthost()
        self.config()
        self.assertEqual(self.send("good", args=["-odq"]).returncode, 0)
        bad = "20260101000000-abcdefabcdef"
        with open(os.path.join(self.q, bad + ".ctl"), "w") as f:
            f.write("postie-queue 1\nid " + bad + "\ncreated 12\ngarbage\n")
        with open(os.path.join(self.q, bad + ".body"), "w") as f:
            f.write("body")
        mq = self.postie("-bp")
        self.assertEqual(mq.returncode, 0, mq)
        self.assertIn("unreadable control file", mq.out)
        res = self.postie("-q")
        self.assertEqual(res.returncode, 0, res)
        self.assertIn("corrupt", res.err)
        sh.wait_messages(1)
        self.assertEqual(self.subjects(), ["good"])
        self.assertEqual(self.files("corrupt"), [bad + ".body", bad + ".ctl"])
        self.assert_queue_empty()

    def test_queue_dir_read_only(self):
        self.smarthost()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs", self.q],
                       check=True)
        self.mounted = True
        self.config()
        res = self.send("read-only", args=["-odq"])
        self.assertIn(res.returncode, (73, 75), res)
        self.assertIn("not writable", res.err)
        self.assertEqual(self.sh.connections(), 0)

    def test_queue_dir_missing(self):
        self.smarthost()
        self.config(queue_dir=os.path.join(self.d, "nonexistent"))
        res = self.send("nowhere", args=["-odq"])
        self.assertIn(res.returncode, (73, 75), res)
        self.assertIn("does not exist", res.err)


if __name__ == "__main__":
    unittest.main()
