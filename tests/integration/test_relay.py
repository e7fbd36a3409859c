"""The relay against the test smarthost: faults at every stage (refused
connection, silence, 421, 4xx/5xx at MAIL, RCPT and DATA, a dropped or
stalled DATA), CHUNKING/BDAT, 8BITMIME, DSN, many recipients, -bv.  Each
test asserts the exit status, the message on stderr and what the smarthost
did or did not receive.  The queue is off (queue_dir = ""), so temporary
failures exit 75."""

import os
import queue
import quopri
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import Smarthost, TempDir, message, run_postie, write_config

EX_OK, EX_NOUSER, EX_UNAVAILABLE, EX_TEMPFAIL = 0, 67, 69, 75

# A message that already has every header postie would add, so the bytes on
# the wire must equal the input exactly.
FULL = (b"From: Alice <alice@client.example>\r\n"
        b"To: bob@example.org, carol@example.org\r\n"
        b"Subject: exact bytes\r\n"
        b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
        b"Message-ID: <exact.1@client.example>\r\n"
        b"\r\n"
        b"line one\r\n"
        b".leading dot\r\n"
        b"..two dots\r\n"
        b".\r\n"
        b"\r\n"
        b"last line\r\n")


def big_body(size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-_:;!?\r\n"
    out = bytearray()
    i = 0
    while len(out) < size:
        if i % 97 == 0:
            out += b"." + line  # dot-stuffing must be undone exactly
        else:
            out += line
        i += 1
    return bytes(out)


class RelayCase(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.path

    def smarthost(self, **kw):
        sh = Smarthost(self.dir, **kw)
        self.addCleanup(sh.stop)
        return sh

    def config(self, sh, **account):
        acct = {"timeout": 10}
        acct.update(account)
        return write_config(self.dir, sh, account=acct, global_={"hostname": "client.example"})

    def send(self, conf, args=("-i", "-t"), stdin=FULL, timeout=60):
        start = time.monotonic()
        res = run_postie(list(args), stdin=stdin, config=conf, timeout=timeout)
        res.elapsed = time.monotonic() - start
        return res

    def lines(self, sh, prefix):
        return [l for l in sh.command_lines() if l.upper().startswith(prefix)]


class DeliveryTests(RelayCase):
    def test_exact_bytes_data(self):
        sh = self.smarthost()
        res = self.send(self.config(sh), args=("-i", "-t", "-f", "alice@client.example"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], FULL)
        self.assertFalse(m["chunked"])
        self.assertEqual(sorted(m["rcpt_tos"]), ["bob@example.org", "carol@example.org"])
        self.assertEqual(m["mail_from"], "alice@client.example")  # -f
        self.assertEqual(m["ehlo"], "client.example")
        self.assertEqual(self.lines(sh, "DATA"), ["DATA"])

    def test_chunking_bdat_exact_bytes(self):
        sh = self.smarthost(chunking=True)
        body = big_body(300 * 1024)
        msg = FULL.replace(b"last line\r\n", body)
        res = self.send(self.config(sh), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertTrue(m["chunked"])
        self.assertEqual(len(m["data"]), len(msg))
        self.assertEqual(m["data"], msg)
        bdat = self.lines(sh, "BDAT")
        self.assertGreater(len(bdat), 1)
        self.assertTrue(bdat[-1].upper().endswith("LAST"), bdat)
        self.assertEqual(self.lines(sh, "DATA"), [])

    def test_verbose_with_chunking_reports_replies(self):
        # libESMTP stops its protocol monitor at the first BDAT; -v still
        # lists every reply it recorded.
        sh = self.smarthost(chunking=True, rcpt_reply={"carol@example.org": "550 5.1.1 unknown"})
        res = self.send(self.config(sh), args=("-v", "-i", "-t"))
        self.assertEqual(res.returncode, EX_NOUSER, res.err)
        self.assertIn("-> MAIL FROM:", res.err)
        self.assertIn("RCPT TO:<bob@example.org>: 250 2.1.5", res.err)
        self.assertIn("RCPT TO:<carol@example.org>: 550 5.1.1 unknown", res.err)
        self.assertIn("end of data: 250", res.err)

    def test_large_message_streams_exactly(self):
        # From a file, as `sendmail < file`: sent while it is read, with the
        # SIZE the file announces (exact for CRLF input).
        sh = self.smarthost()
        body = big_body(6 * 1024 * 1024)
        msg = FULL.replace(b"last line\r\n", body)
        path = os.path.join(self.dir, "big.eml")
        with open(path, "wb") as f:
            f.write(msg)
        with open(path, "rb") as f:
            res = self.send(self.config(sh), stdin=f)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], msg)
        self.assertIn("SIZE=%d" % len(msg), m["mail_options"])
        self.assertEqual(sh.connections(), 1)

    def test_eight_bit_body_declared_when_offered(self):
        sh = self.smarthost()
        msg = message({"To": "bob@example.org", "Subject": "8bit",
                       "Content-Type": "text/plain; charset=utf-8",
                       "Content-Transfer-Encoding": "8bit"}, "Grüße aus Köln\n")
        res = self.send(self.config(sh), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertIn("BODY=8BITMIME", m["mail_options"])
        self.assertIn("Grüße aus Köln\r\n".encode(), m["data"])

    def test_eight_bit_body_without_8bitmime(self):
        sh = self.smarthost(no_8bitmime=True)
        msg = message({"To": "bob@example.org", "Subject": "8bit"}, "Grüße\n")
        res = self.send(self.config(sh), args=("-i", "-t", "-B8BITMIME"), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertFalse([o for o in m["mail_options"] if o.upper().startswith("BODY")])

    def test_eight_bit_text_reencoded_for_server_without_8bitmime(self):
        sh = self.smarthost(no_8bitmime=True)
        msg = message({"To": "bob@example.org", "Subject": "8bit"}, "Gr\u00fc\u00dfe aus K\u00f6ln\n")
        res = self.send(self.config(sh), args=("-i", "-t"), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertFalse([o for o in m["mail_options"] if o.upper().startswith("BODY")])
        self.assertFalse([b for b in m["data"] if b >= 0x80], "8-bit octets went to the server")
        head, _, body = m["data"].partition(b"\r\n\r\n")
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable", head)
        self.assertIn(b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln", body)

    def test_eight_bit_body_that_cannot_be_reencoded_goes_as_it_is(self):
        # Not single-part text: no quoted-printable rewrite; postie says so
        # and sends the octets it was given (a small body, held in memory).
        sh = self.smarthost(no_8bitmime=True)
        body = "Gr\u00fc\u00dfe \u00e0 tous\n" * 3
        msg = message({"To": "bob@example.org", "Subject": "8bit",
                       "Content-Type": "application/octet-stream"}, body)
        res = self.send(self.config(sh), args=("-i", "-t"), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertIn("is not single-part text that could be re-encoded; sending it as it is",
                      res.err)
        [m] = sh.messages()
        _, _, sent = m["data"].partition(b"\r\n\r\n")
        self.assertEqual(sent, body.replace("\n", "\r\n").encode())

    def test_eight_bit_text_kept_for_server_with_8bitmime(self):
        sh = self.smarthost()
        msg = message({"To": "bob@example.org", "Subject": "8bit"}, "Gr\u00fc\u00dfe\n")
        res = self.send(self.config(sh), args=("-i", "-t"), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertIn("BODY=8BITMIME", m["mail_options"])
        self.assertIn("Grüße".encode(), m["data"])

    def test_seven_bit_body_not_declared(self):
        sh = self.smarthost()
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertFalse([o for o in m["mail_options"] if o.upper().startswith("BODY")])

    def test_dsn_parameters(self):
        sh = self.smarthost(dsn=True)
        res = self.send(self.config(sh), args=("-i", "-t", "-N", "success,failure", "-R", "hdrs",
                                               "-V", "env+id=1"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertIn("RET=HDRS", m["mail_options"])
        self.assertIn("ENVID=env+2Bid+3D1", m["mail_options"])
        for opts in m["rcpt_options"]:
            self.assertIn("NOTIFY=SUCCESS,FAILURE", opts)

    def test_null_sender(self):
        sh = self.smarthost()
        res = self.send(self.config(sh), args=("-i", "-t", "-f", "<>"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["mail_from"], "")
        self.assertIn("MAIL FROM:<>", " ".join(self.lines(sh, "MAIL")))

    def test_many_recipients_one_transaction(self):
        sh = self.smarthost()
        rcpts = ["user%03d@example.org" % i for i in range(300)]
        msg = message({"To": "undisclosed-recipients:;", "Subject": "many"}, "hi\n")
        res = self.send(self.config(sh), args=["-i"] + rcpts, stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(sorted(m["rcpt_tos"]), rcpts)
        self.assertEqual(len(self.lines(sh, "MAIL")), 1)
        self.assertEqual(sh.connections(), 1)


class StreamingTests(RelayCase):
    """A body past 1 MiB goes out while it is still being read, on the bet
    that it stays 7-bit with short lines; a body that breaks the bet, or an
    input that pauses, gets the transfer given up before its final dot and
    the message sent again once read.  Exactly one copy arrives either way."""

    def data_commands(self, sh):
        return len(self.lines(sh, "DATA"))

    def test_pipe_streams_exactly_without_size(self):
        sh = self.smarthost()
        msg = FULL.replace(b"last line\r\n", big_body(3 * 1024 * 1024))
        res = self.send(self.config(sh), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], msg)
        # a pipe's length is unknown until its end: no SIZE estimate
        self.assertFalse([o for o in m["mail_options"] if o.upper().startswith("SIZE")])
        self.assertEqual((sh.connections(), self.data_commands(sh)), (1, 1))

    def test_lf_file_estimate_close(self):
        sh = self.smarthost()
        msg = FULL.replace(b"last line\r\n", big_body(3 * 1024 * 1024))
        path = os.path.join(self.dir, "lf.eml")
        with open(path, "wb") as f:
            f.write(msg.replace(b"\r\n", b"\n"))
        with open(path, "rb") as f:
            res = self.send(self.config(sh), stdin=f)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], msg)
        [size] = [int(o[5:]) for o in m["mail_options"] if o.upper().startswith("SIZE=")]
        self.assertLess(abs(size - len(msg)), len(msg) // 100)

    def test_late_8bit_octet_sends_again_labelled(self):
        sh = self.smarthost()
        body = big_body(2 * 1024 * 1024) + "Grüße aus Köln\r\n".encode()
        res = self.send(self.config(sh), stdin=FULL.replace(b"last line\r\n", body))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        head, _, got = m["data"].partition(b"\r\n\r\n")
        self.assertEqual(got, b"line one\r\n.leading dot\r\n..two dots\r\n.\r\n\r\n" + body)
        self.assertIn(b"Content-Type: text/plain; charset=utf-8\r\n", head + b"\r\n")
        self.assertIn(b"Content-Transfer-Encoding: 8bit\r\n", head + b"\r\n")
        self.assertIn("BODY=8BITMIME", m["mail_options"])
        # the first transfer was given up before its final dot
        self.assertEqual((sh.connections(), self.data_commands(sh)), (2, 2))

    def test_late_long_line_sends_again_reencoded(self):
        sh = self.smarthost()
        body = big_body(2 * 1024 * 1024) + b"y" * 1500 + b"\r\n"
        res = self.send(self.config(sh), stdin=FULL.replace(b"last line\r\n", body))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        head, _, got = m["data"].partition(b"\r\n\r\n")
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable\r\n", head + b"\r\n")
        self.assertEqual(quopri.decodestring(got),
                         b"line one\r\n.leading dot\r\n..two dots\r\n.\r\n\r\n" + body)
        self.assertEqual((sh.connections(), self.data_commands(sh)), (2, 2))

    def test_paused_input_gives_up_and_sends_again(self):
        sh = self.smarthost()
        msg = FULL.replace(b"last line\r\n", big_body(3 * 1024 * 1024))
        split = 2 * 1024 * 1024
        p = subprocess.Popen([harness.POSTIE, "-C", self.config(sh), "-i", "-t", "-v"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(l) for l in p.stderr], daemon=True)
        reader.start()
        try:
            p.stdin.write(msg[:split])
            p.stdin.flush()
            # The writer now waits (no more input) until postie says it gave
            # up the transfer; then the rest comes.
            deadline = time.monotonic() + 30
            seen = []
            while not any(b"input paused" in l for l in seen):
                self.assertLess(time.monotonic(), deadline, b"".join(seen).decode("utf-8", "replace"))
                try:
                    seen.append(lines.get(timeout=1))
                except queue.Empty:
                    pass
            p.stdin.write(msg[split:])
            p.stdin.close()
            self.assertEqual(p.wait(timeout=60), EX_OK)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        reader.join(timeout=10)
        [m] = sh.messages()
        self.assertEqual(m["data"], msg)
        self.assertEqual((sh.connections(), self.data_commands(sh)), (2, 2))

    def test_lone_dot_ends_a_streamed_body(self):
        # Without -i a line of "." ends the message, also after streaming
        # began: everything before it arrives, nothing after it.
        sh = self.smarthost()
        body = big_body(3 * 1024 * 1024 + 5)
        res = self.send(self.config(sh), args=("-t",),
                        stdin=FULL.replace(b"line one\r\n.leading dot\r\n..two dots\r\n.\r\n",
                                           b"line one\r\n")
                        .replace(b"last line\r\n", body + b".\r\nnot part of it\r\n"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertTrue(m["data"].endswith(b"\r\n\r\nline one\r\n\r\n" + body), m["data"][-200:])
        self.assertEqual((sh.connections(), self.data_commands(sh)), (1, 1))

    def test_last_line_without_line_end_streamed(self):
        sh = self.smarthost()
        body = big_body(3 * 1024 * 1024) + b"no line end"
        res = self.send(self.config(sh), stdin=FULL.replace(b"last line\r\n", body))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], FULL.replace(b"last line\r\n", body + b"\r\n"))

    def test_refused_large_message_is_still_read_whole(self):
        # -t and no recipient: refused (65) after the first MiB, but the
        # input is read to its end, as before, so the writer is not killed
        # by a broken pipe.
        sh = self.smarthost()
        gen = ("import sys\n"
               "sys.stdout.buffer.write(b'Subject: nobody\\r\\n\\r\\n')\n"
               "for i in range(60000): sys.stdout.buffer.write(b'%06d lines of text\\r\\n' % i)\n")
        p = subprocess.run(["bash", "-c", '/usr/bin/python3 -c "$1" | "$2" -C "$3" -i -t; '
                            'echo "${PIPESTATUS[@]}"', "-", gen, harness.POSTIE, self.config(sh)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.stdout.decode().split(), ["0", "65"], p.stderr.decode())
        self.assertIn(b"no recipients", p.stderr)
        self.assertEqual(sh.connections(), 0)

    def test_small_body_is_read_before_connecting(self):
        # Under the 1 MiB threshold nothing changes: read, then one session.
        sh = self.smarthost()
        msg = FULL.replace(b"last line\r\n", big_body(900 * 1024))
        res = self.send(self.config(sh), stdin=msg)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["data"], msg)
        self.assertIn("SIZE=%d" % len(msg), m["mail_options"])

    def test_rejected_at_end_of_data(self):
        sh = self.smarthost(data_reply="554 5.6.0 no thanks")
        msg = FULL.replace(b"last line\r\n", big_body(2 * 1024 * 1024))
        res = self.send(self.config(sh), stdin=msg)
        self.assertEqual(res.returncode, EX_UNAVAILABLE, res.err)
        self.assertIn("554 5.6.0 no thanks", res.err)
        self.assertEqual(sh.messages(), [])
        self.assertEqual((sh.connections(), self.data_commands(sh)), (1, 1))

    def test_refused_connection_still_reads_input(self):
        # The session fails before the body is sent: postie reads the rest
        # anyway (a writer never sees EPIPE) and fails as it would have.
        sh = self.smarthost()
        conf = self.config(sh)
        sh.stop()
        msg = FULL.replace(b"last line\r\n", big_body(3 * 1024 * 1024))
        res = self.send(conf, stdin=msg)
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("Connection refused", res.err)


class InheritedDescriptorTests(RelayCase):
    """Callers pass descriptors of their own.  One open descriptor at each
    position 3-12 moves every descriptor postie opens (spool, smarthost
    socket, libESMTP's socket taken by the handoff in bridge.c), and every
    message must arrive intact."""

    def test_message_arrives_whatever_descriptors_are_open(self):
        import subprocess
        from harness import POSTIE
        sh = self.smarthost()
        conf = self.config(sh)
        for n in range(3, 13):
            with self.subTest(fd=n):
                def hold(n=n):
                    fd = os.open("/dev/null", os.O_RDONLY)
                    if fd != n:
                        os.dup2(fd, n)
                        os.close(fd)
                p = subprocess.run([POSTIE, "-C", conf, "-i", "-t"], input=FULL,
                                   capture_output=True, close_fds=False, preexec_fn=hold,
                                   timeout=60)
                self.assertEqual(p.returncode, EX_OK, p.stderr)
                self.assertEqual(sh.wait_messages(n - 2)[-1]["data"], FULL)


class ConnectionFaultTests(RelayCase):
    def test_connection_refused(self):
        sh = self.smarthost()
        conf = self.config(sh)
        sh.stop()
        res = self.send(conf)
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("Connection refused", res.err)

    def test_connect_timeout(self):
        # A listener whose accept queue is full drops further SYNs: the
        # connect hangs, and postie's own connect timeout must end it.
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        for _ in range(3):
            c = socket.socket()
            self.addCleanup(c.close)
            c.setblocking(False)
            try:
                c.connect(ls.getsockname())
            except BlockingIOError:
                pass

        class Unresponsive:
            host, port, tls, ca = "127.0.0.1", ls.getsockname()[1], "none", None
        res = self.send(self.config(Unresponsive, timeout=2))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("connect: timed out after 2 seconds", res.err)
        self.assertLess(res.elapsed, 15)

    def test_silent_server_times_out(self):
        for tls in ("none", "starttls"):
            with self.subTest(tls=tls):
                sh = self.smarthost(silent=True, tls=tls)
                res = self.send(self.config(sh, timeout=2))
                self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
                self.assertRegex(res.err, "(?i)timed out|within 2 seconds")
                self.assertLess(res.elapsed, 15)
                self.assertEqual(sh.messages(), [])
                sh.stop()

    def test_421_greeting(self):
        for tls in ("none", "starttls", "tls"):
            with self.subTest(tls=tls):
                sh = self.smarthost(greeting="421 4.3.2 service not available", tls=tls)
                res = self.send(self.config(sh))
                self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
                self.assertIn("421", res.err)
                self.assertIn("service not available", res.err)
                self.assertEqual(sh.command_lines(), [])
                sh.stop()

    def test_disconnect_mid_data(self):
        sh = self.smarthost(drop_mid_data=True)
        res = self.send(self.config(sh), stdin=FULL.replace(b"last line\r\n", big_body(200000)))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertRegex(res.err, "closed|lost")
        self.assertEqual(sh.messages(), [])
        self.assertIn("dropped", [c.get("event") for c in sh.commands()])

    def test_disconnect_mid_bdat(self):
        sh = self.smarthost(drop_mid_data=True, chunking=True)
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertEqual(sh.messages(), [])

    def test_stall_mid_data(self):
        sh = self.smarthost(stall_mid_data=True)
        res = self.send(self.config(sh, timeout=2))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertRegex(res.err, "(?i)timed out|within 2 seconds|no reply")
        self.assertLess(res.elapsed, 20)
        self.assertEqual(sh.messages(), [])


class ReplyTests(RelayCase):
    def test_mail_5xx(self):
        sh = self.smarthost(mail_reply="553 5.7.1 sender rejected")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_UNAVAILABLE, res.err)
        self.assertIn("sender rejected", res.err)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(self.lines(sh, "DATA"), [])

    def test_mail_4xx(self):
        sh = self.smarthost(mail_reply="451 4.3.0 try later")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("try later", res.err)
        self.assertEqual(sh.messages(), [])

    def test_rcpt_5xx_for_one(self):
        sh = self.smarthost(rcpt_reply={"carol@example.org": "550 5.1.1 no such user"})
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_NOUSER, res.err)
        self.assertIn("carol@example.org", res.err)
        self.assertIn("no such user", res.err)
        self.assertNotIn("bob@example.org", res.err)
        [m] = sh.messages()
        self.assertEqual(m["rcpt_tos"], ["bob@example.org"])
        self.assertEqual(m["data"], FULL)

    def test_rcpt_5xx_for_all(self):
        sh = self.smarthost(rcpt_reply={"bob@example.org": "550 5.1.1 no such user",
                                        "carol@example.org": "550 5.1.1 no such user"})
        res = self.send(self.config(sh))
        self.assertIn(res.returncode, (EX_NOUSER, EX_UNAVAILABLE), res.err)
        self.assertIn("bob@example.org", res.err)
        self.assertIn("carol@example.org", res.err)
        self.assertEqual(sh.messages(), [])

    def test_rcpt_4xx_for_one(self):
        sh = self.smarthost(rcpt_reply={"carol@example.org": "450 4.2.0 mailbox busy"})
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("mailbox busy", res.err)
        [m] = sh.messages()
        self.assertEqual(m["rcpt_tos"], ["bob@example.org"])

    def test_data_5xx(self):
        sh = self.smarthost(data_reply="554 5.6.0 content rejected")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_UNAVAILABLE, res.err)
        self.assertIn("content rejected", res.err)
        self.assertEqual(sh.messages(), [])
        self.assertIn("data-reply", [c.get("event") for c in sh.commands()])

    def test_data_4xx(self):
        sh = self.smarthost(data_reply="451 4.3.0 local problem")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("local problem", res.err)
        self.assertEqual(sh.messages(), [])

    def test_bdat_5xx(self):
        sh = self.smarthost(chunking=True, data_reply="554 5.6.0 content rejected")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_UNAVAILABLE, res.err)
        self.assertIn("content rejected", res.err)
        self.assertEqual(sh.messages(), [])


class VerifyTests(RelayCase):
    def test_bv_sends_no_message(self):
        sh = self.smarthost(rcpt_reply={"nobody@example.org": "550 5.1.1 no such user"})
        conf = self.config(sh)
        res = run_postie(["-bv", "bob@example.org"], config=conf)
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertIn("bob@example.org", res.out)
        self.assertIn("deliverable", res.out)
        res = run_postie(["-bv", "bob@example.org", "nobody@example.org"], config=conf)
        self.assertEqual(res.returncode, EX_NOUSER, res.err)
        self.assertIn("no such user", res.out)
        self.assertEqual(sh.messages(), [])
        rcpts = self.lines(sh, "RCPT")
        self.assertEqual(len(rcpts), 3)
        self.assertEqual(self.lines(sh, "BDAT"), [])
        self.assertEqual(self.lines(sh, "DATA"), [])

    def test_bv_with_chunking_sends_no_bdat(self):
        sh = self.smarthost(chunking=True)
        res = run_postie(["-bv", "bob@example.org"], config=self.config(sh))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertEqual(sh.messages(), [])
        self.assertEqual(self.lines(sh, "BDAT"), [])
        self.assertEqual(self.lines(sh, "DATA"), [])


if __name__ == "__main__":
    unittest.main()
