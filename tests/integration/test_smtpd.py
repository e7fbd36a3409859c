"""postie -bs: an SMTP conversation on stdin/stdout, through subprocess pipes,
against the test smarthost.  Every test asserts the replies postie gave AND
what the smarthost received (envelope, headers, body bytes)."""

import os
import re
import select
import subprocess
import time
import unittest

from harness import POSTIE, Smarthost, TempDir, run_postie, write_config

DEADLINE = 30.0


class Conversation:
    """postie -bs as a subprocess, spoken to one command at a time."""

    def __init__(self, config, args=()):
        self.proc = subprocess.Popen([POSTIE, "-C", config, "-bs"] + list(args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""
        self.transcript = []

    def reply(self, timeout=DEADLINE):
        """Reads one whole reply; returns (code, [text lines])."""
        lines = []
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\r\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no reply within %ss; so far: %r" % (timeout, lines))
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        raise AssertionError("postie closed stdout; so far: %r %r"
                                             % (lines, self.buf))
                    self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("ascii")
            self.transcript.append("S: " + text)
            lines.append(text[4:])
            if len(text) < 4 or text[3] == " ":
                return int(text[:3]), lines
            assert text[3] == "-", text

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append("C: %r" % data[:200])
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def cmd(self, line):
        """Sends one command line and returns its reply."""
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code):
        got, text = self.cmd(line)
        if got != code:
            raise AssertionError("%s -> %d %s (wanted %d)\n%s"
                                 % (line, got, text, code, "\n".join(self.transcript)))
        return text

    def kill(self):
        """Ends the process if still running and closes the pipes (test cleanup)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def finish(self, timeout=DEADLINE):
        """Closes stdin; returns (exit status, stderr)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rest = self.proc.stdout.read()
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.wait(timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.rest = rest
        return self.proc.returncode, err


def headers_of(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n")
            if line and line[0] not in " \t"]


class SmtpdTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.path

    def smarthost(self, **opts):
        sh = Smarthost(self.dir, **opts)
        self.addCleanup(sh.stop)
        return sh

    def conversation(self, config, args=()):
        c = Conversation(config, args)
        self.addCleanup(c.kill)
        return c

    def config(self, sh, **global_):
        g = {"hostname": "box.example", "qualify_domain": "box.example", "aliases": ""}
        g.update(global_)
        return write_config(self.dir, sh, global_=g)

    def envelope(self, c, sender, rcpts, ehlo="client.example"):
        c.expect("EHLO " + ehlo, 250)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            c.expect("RCPT TO:<%s>" % r, 250)

    # ------------------------------------------------------------------

    def test_interactive_conversation(self):
        sh = self.smarthost()
        c = self.conversation(self.config(sh))
        code, text = c.reply()
        self.assertEqual(code, 220)
        self.assertTrue(text[0].startswith("box.example "), text)
        code, caps = c.cmd("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertEqual(caps[0], "box.example")
        self.assertEqual([x.split()[0] for x in caps[1:]],
                         ["PIPELINING", "SIZE", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"])
        self.assertFalse(any(x.startswith(("AUTH", "STARTTLS")) for x in caps))
        c.expect("NOOP", 250)
        c.expect("VRFY bob", 252)
        c.expect("HELP", 214)
        c.expect("MAIL FROM:<alice@example.org>", 250)
        c.expect("RCPT TO:<bob@example.net>", 250)
        c.expect("RCPT TO:<carol@example.net>", 250)
        c.expect("DATA", 354)
        c.send(b"From: Alice <alice@example.org>\r\n"
               b"To: Bob <bob@example.net>\r\n"
               b"Bcc: carol@example.net,\r\n  dave@example.net\r\n"
               b"Subject: over -bs\r\n"
               b"\r\n"
               b"..a line that starts with a dot\r\n"
               b"last line\r\n")
        code, text = c.cmd(".")
        self.assertEqual(code, 250, text)
        self.assertTrue(text[0].startswith("2.0.0 Ok: "), text)
        c.expect("QUIT", 221)
        rc, err = c.finish()
        self.assertEqual(rc, 0, err)

        [m] = sh.wait_messages(1)
        self.assertEqual(m["mail_from"], "alice@example.org")
        self.assertEqual(m["rcpt_tos"], ["bob@example.net", "carol@example.net"])
        data = m["data"]
        hdrs = headers_of(data)
        self.assertNotIn("bcc", hdrs)
        self.assertNotIn(b"dave@example.net", data)
        self.assertEqual(hdrs.count("from"), 1)
        self.assertEqual(hdrs.count("to"), 1)
        self.assertIn("date", hdrs)
        self.assertIn("message-id", hdrs)
        self.assertIn(b"Subject: over -bs\r\n", data)
        body = data.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(body, b".a line that starts with a dot\r\nlast line\r\n")
        # the reply to the final dot named the message it delivered
        msgid = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", data).group(1).decode()
        self.assertEqual(text[0], "2.0.0 Ok: delivered as " + msgid)

    def test_pipelined_several_messages(self):
        sh = self.smarthost()
        conv = (b"EHLO client.example\r\n"
                b"MAIL FROM:<one@example.org>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n"
                b"Subject: first\r\nTo: a@example.net\r\n\r\nfirst body\r\n.\r\n"
                b"MAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
                b"Subject: second\r\nTo: b@example.net\r\nCc: c@example.net\r\n\r\n"
                b"second body\r\n...\r\n.\r\n"
                b"RSET\r\nMAIL FROM:<three@example.org>\r\nRCPT TO:<d@example.net>\r\nRSET\r\n"
                b"QUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        codes = [line[:3] for line in res.out.split("\r\n") if line[3:4] == " "]
        self.assertEqual(codes, ["220", "250", "250", "250", "354", "250", "250", "250", "250",
                                 "354", "250", "250", "250", "250", "250", "221"], res.out)
        # postie has exited: the third transaction was reset, nothing more arrives
        first, second = sh.messages()
        self.assertEqual(first["mail_from"], "one@example.org")
        self.assertEqual(first["rcpt_tos"], ["a@example.net"])
        self.assertTrue(first["data"].endswith(b"\r\n\r\nfirst body\r\n"), first["data"])
        self.assertEqual(second["mail_from"], "")
        self.assertEqual(second["rcpt_tos"], ["b@example.net", "c@example.net"])
        self.assertTrue(second["data"].endswith(b"\r\n\r\nsecond body\r\n..\r\n"),
                        second["data"])

    def test_envelope_comes_from_smtp_not_headers(self):
        sh = self.smarthost()
        conv = (b"EHLO c\r\nMAIL FROM:<env@example.org>\r\nRCPT TO:<real@example.net>\r\n"
                b"DATA\r\nFrom: header@example.org\r\nTo: decoy@example.net\r\n"
                b"Cc: decoy2@example.net\r\nBcc: hidden@example.net\r\nSubject: s\r\n\r\nb\r\n"
                b".\r\nQUIT\r\n")
        res = run_postie(["-bs", "-t"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        [m] = sh.wait_messages(1)
        self.assertEqual(m["mail_from"], "env@example.org")
        self.assertEqual(m["rcpt_tos"], ["real@example.net"])
        self.assertIn(b"From: header@example.org\r\n", m["data"])
        self.assertNotIn(b"hidden@example.net", m["data"])

    def test_bare_recipient_is_qualified(self):
        sh = self.smarthost()
        conv = (b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<root>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n"
                b".\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        [m] = sh.wait_messages(1)
        self.assertEqual(m["rcpt_tos"], ["root@box.example"])

    def test_8bitmime_body_intact(self):
        sh = self.smarthost()
        body = "Grüße aus Köln — ½ €\r\n".encode("utf-8")
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org> BODY=8BITMIME SIZE=400\r\n"
                b"RCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: 8bit\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b".\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        [m] = sh.wait_messages(1)
        self.assertIn("BODY=8BITMIME", m["mail_options"])
        self.assertTrue(m["data"].endswith(b"\r\n\r\n" + body), m["data"])

    def test_dsn_parameters_reach_the_smarthost(self):
        sh = self.smarthost(dsn=True)
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org> RET=HDRS ENVID=QQ314159\r\n"
                b"RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE\r\nDATA\r\n"
                b"Subject: dsn\r\n\r\nb\r\n.\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        [m] = sh.wait_messages(1)
        opts = [o.upper() for o in m["mail_options"]]
        self.assertIn("RET=HDRS", opts)
        self.assertIn("ENVID=QQ314159", opts)
        notify = [o.upper() for o in m["rcpt_options"][0] if o.upper().startswith("NOTIFY=")]
        self.assertEqual(len(notify), 1, m["rcpt_options"])
        self.assertEqual(sorted(notify[0][7:].split(",")), ["FAILURE", "SUCCESS"])

    def test_long_data_line_is_made_safe(self):
        sh = self.smarthost()
        long_line = b"x" * 5000
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: long\r\n\r\n" + long_line + b"\r\nend\r\n.\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        self.assertIn("\r\n250 2.0.0 Ok", res.out)
        [m] = sh.wait_messages(1)
        for line in m["data"].split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
        self.assertGreater(m["data"].count(b"x"), 4990)

    def test_protocol_errors(self):
        sh = self.smarthost()
        c = self.conversation(self.config(sh))
        self.assertEqual(c.reply()[0], 220)
        c.expect("MAIL FROM:<a@example.org>", 503)
        c.expect("EHLO c", 250)
        c.expect("RCPT TO:<b@example.net>", 503)
        c.expect("DATA", 503)
        c.expect("MAIL FROM:a@example.org", 501)
        c.expect("MAIL FROM:<a@example.org> FROB=1", 555)
        c.expect("MAIL FROM:<a@example.org>", 250)
        c.expect("MAIL FROM:<a@example.org>", 503)
        c.expect("RCPT TO:<b\x01@example.net>", 501)
        c.expect("RCPT TO:<b@example.net", 501)
        c.expect("XYZZY", 500)
        c.expect("EXPN staff", 502)
        c.expect("NOOP " + "x" * 507, 500)  # 513 octets with CRLF
        c.expect("NOOP " + "x" * 505, 250)  # 512 octets
        c.expect("DATA", 554)  # every RCPT was refused
        c.expect("QUIT", 221)
        rc, err = c.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(sh.messages(), [])

    def test_permanent_refusal_is_5xx(self):
        sh = self.smarthost(data_reply="554 5.7.1 message refused by policy")
        c = self.conversation(self.config(sh))
        c.reply()
        self.envelope(c, "a@example.org", ["b@example.net"])
        c.expect("DATA", 354)
        c.send(b"Subject: x\r\n\r\nbody\r\n")
        code, text = c.cmd(".")
        self.assertEqual(code, 554, text)
        self.assertTrue(text[0].startswith("5."), text)
        self.assertIn("rejected", text[0])
        # the conversation goes on
        c.expect("RSET", 250)
        c.expect("QUIT", 221)
        rc, err = c.finish()
        self.assertEqual(rc, 0, err)
        # the smarthost's own words are on stderr (and in the reply when submit gives them)
        self.assertIn("refused by policy", text[0] + err)
        self.assertEqual(sh.messages(), [])

    def test_rejected_recipient_is_not_250(self):
        sh = self.smarthost(rcpt_reply={"bad@example.net": "550 5.1.1 no such user"})
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<good@example.net>\r\n"
                b"RCPT TO:<bad@example.net>\r\nDATA\r\nSubject: x\r\n\r\nb\r\n.\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=self.config(sh))
        final = [line for line in res.out.split("\r\n") if line][-2]
        self.assertTrue(final.startswith("554 5."), res.out)
        self.assertIn("bad@example.net", res.err + res.out)
        [m] = sh.wait_messages(1)
        self.assertEqual(m["rcpt_tos"], ["good@example.net"])

    def test_smarthost_down_without_queue_is_451(self):
        sh = self.smarthost()
        conf = self.config(sh)
        sh.stop()
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: x\r\n\r\nb\r\n.\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=conf)
        final = [line for line in res.out.split("\r\n") if line][-2]
        self.assertTrue(final.startswith("451 4."), res.out)
        self.assertIn("not queued", final)
        self.assertTrue(res.out.endswith("221 2.0.0 Bye\r\n"), res.out)

    def test_smarthost_down_with_queue_is_250_queued(self):
        sh = self.smarthost()
        qdir = os.path.join(self.dir, "queue")
        os.mkdir(qdir, 0o700)
        conf = self.config(sh, queue_dir=qdir)
        sh.stop()
        conv = (b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: queued over -bs\r\n\r\nkept\r\n.\r\nQUIT\r\n")
        res = run_postie(["-bs"], stdin=conv, config=conf)
        self.assertEqual(res.returncode, 0, res.err)
        final = [line for line in res.out.split("\r\n") if line][-2]
        self.assertTrue(final.startswith("250 2.0.0 Ok: queued as "), res.out)
        qid = final.split()[-1]
        listing = run_postie(["-bp"], config=conf)
        self.assertIn(qid, listing.out)
        self.assertIn("b@example.net", listing.out)
        # and it is delivered by a flush once the smarthost is back
        sh.start()
        flush = run_postie(["-q"], config=conf)
        self.assertEqual(flush.returncode, 0, flush.err)
        [m] = sh.wait_messages(1)
        self.assertEqual(m["rcpt_tos"], ["b@example.net"])
        self.assertTrue(m["data"].endswith(b"\r\n\r\nkept\r\n"))

    def test_client_vanishes_mid_data(self):
        sh = self.smarthost()
        qdir = os.path.join(self.dir, "queue")
        os.mkdir(qdir, 0o700)
        conf = self.config(sh, queue_dir=qdir)
        c = self.conversation(conf)
        c.reply()
        self.envelope(c, "a@example.org", ["b@example.net"])
        c.expect("DATA", 354)
        c.send(b"Subject: half\r\n\r\nthe client dies before the dot\r\n")
        rc, err = c.finish()
        self.assertNotEqual(rc, 0)
        self.assertEqual(err, "")
        self.assertEqual(c.rest, b"")
        self.assertEqual(sh.messages(), [])
        self.assertEqual(sh.connections(), 0)
        listing = run_postie(["-bp"], config=conf)
        self.assertIn("empty", listing.out.lower())

    def test_no_transaction_open_eof_is_clean(self):
        sh = self.smarthost()
        res = run_postie(["-bs"], stdin=b"EHLO c\r\nNOOP\r\n", config=self.config(sh))
        self.assertEqual(res.returncode, 0, res.err)
        self.assertEqual(sh.connections(), 0)


if __name__ == "__main__":
    unittest.main()
