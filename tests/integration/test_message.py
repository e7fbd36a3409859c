"""Message rules end to end: the real binary, the argv shapes of real callers,
and the exact envelope, header and body bytes the test smarthost received.

Inputs live in tests/data/messages/, named for the behaviour they show.
"""

import os
import pwd
import re
import unittest

from harness import Smarthost, TempDir, run_postie, write_config

SRCDIR = os.environ.get("POSTIE_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(SRCDIR, "tests", "data", "messages")
DOMAIN = "box.example"
USER = pwd.getpwuid(os.geteuid()).pw_name

DATE_RE = re.compile(rb"^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 0-9]\d [A-Z][a-z]{2} \d{4} "
                     rb"\d\d:\d\d:\d\d [+-]\d{4}$")
MSGID_RE = re.compile(rb"^Message-ID: <[0-9a-f]{32}@host\.box\.example>$")


def eml(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def split(data):
    """(header lines without CRLF, body bytes) of a received message."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no header/body separator in %r" % data[:200]
    return head.split(b"\r\n"), body


def without_generated(lines, test):
    """Checks the generated Date and Message-ID lines and drops them."""
    rest = []
    for line in lines:
        if line.startswith(b"Date: ") and DATE_RE.match(line):
            test.generated["Date"] = line
            continue
        if line.startswith(b"Message-ID: ") and MSGID_RE.match(line):
            test.generated["Message-ID"] = line
            continue
        rest.append(line)
    return rest


class MessageTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.sh = Smarthost(cls.tmp.path, tls="none")
        cls.aliases = os.path.join(cls.tmp.path, "aliases")
        with open(cls.aliases, "w") as f:
            f.write("# test aliases\npostmaster: root\nops: alice@example.net,\n"
                    "  bob@example.net\n")
        cls.conf = write_config(cls.tmp.path, cls.sh, global_={
            "qualify_domain": DOMAIN, "hostname": "host.box.example",
            "aliases": cls.aliases})

    @classmethod
    def tearDownClass(cls):
        cls.sh.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.generated = {}

    def send(self, args, data, code=0):
        before = len(self.sh.messages())
        res = run_postie(args, stdin=data, config=self.conf)
        self.assertEqual(res.returncode, code, res.err)
        if code != 0:
            self.assertEqual(len(self.sh.messages()), before, "a refused message was sent")
            return res, None
        self.sh.wait_messages(before + 1)
        msgs = self.sh.messages()
        self.assertEqual(len(msgs), before + 1)
        m = msgs[-1]
        self.assertNotIn(b"\r\n\r\n", m["data"].split(b"\r\n\r\n", 1)[0])
        # never a bare CR or LF, never a line over 998 octets
        self.assertNotRegex(m["data"], rb"\r(?!\n)|(?<!\r)\n")
        for line in m["data"].split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
        return res, m

    # ---------------------------------------------------------------- callers

    def test_debian_cron(self):
        _, m = self.send(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                         eml("cron-debian-no-date-no-msgid.eml"))
        self.assertEqual(m["mail_from"], USER + "@" + DOMAIN)
        self.assertEqual(m["rcpt_tos"], ["root@" + DOMAIN])
        head, body = split(m["data"])
        self.assertEqual(without_generated(head, self), [
            b"From: root@box.example (Cron Daemon)",
            b"To: root@box.example",
            b"Subject: Cron <root@box> run-parts /etc/cron.daily",
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=UTF-8",
            b"Content-Transfer-Encoding: 8bit",
            b"X-Cron-Env: <SHELL=/bin/sh>",
            b"X-Cron-Env: <HOME=/root>",
        ])
        self.assertIn("Date", self.generated)
        self.assertIn("Message-ID", self.generated)
        self.assertEqual(body, b"run-parts: /etc/cron.daily/logrotate exited with return code 1\r\n")

    def test_cronie(self):
        _, m = self.send(["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"],
                         eml("cronie-t-bare-names.eml"))
        self.assertEqual(m["mail_from"], "root@" + DOMAIN)
        self.assertEqual(m["rcpt_tos"], ["root@" + DOMAIN])
        head, body = split(m["data"])
        self.assertEqual(without_generated(head, self)[:2], [
            b'From: "(Cron Daemon)" <root@box.example>', b"To: root@box.example"])
        self.assertEqual(len(self.generated), 2)
        self.assertEqual(body, b"backup done\r\n")

    def test_php_mail(self):
        data = eml("php-mail-crlf.eml")
        _, m = self.send(["-t", "-i", "-fwww-data@example.com"], data)
        self.assertEqual(m["mail_from"], "www-data@example.com")
        self.assertEqual(m["rcpt_tos"], ["customer@example.org"])
        head, body = split(m["data"])
        self.assertEqual(without_generated(head, self), [
            b"To: customer@example.org", b"Subject: Your order", b"From: shop@example.com",
            b"Reply-To: support@example.com"])
        self.assertEqual(len(self.generated), 2)
        self.assertEqual(body, b"Thank you for your order.\r\n")

    def test_mutt(self):
        data = eml("mutt-lone-dot-with-oi.eml")
        _, m = self.send(["-oem", "-oi", "--", "you@example.org", "cc@example.org"], data)
        self.assertEqual(m["rcpt_tos"], ["you@example.org", "cc@example.org"])
        # a complete header goes out byte for byte; the lone dot is text
        self.assertEqual(m["data"], data.replace(b"\n", b"\r\n"))

    def test_git_send_email(self):
        data = eml("git-send-email-complete.eml")
        _, m = self.send(["-i", "-f", "dev@example.com", "list@example.org",
                          "maint@example.org"], data)
        self.assertEqual(m["mail_from"], "dev@example.com")
        self.assertEqual(m["rcpt_tos"], ["list@example.org", "maint@example.org"])
        self.assertEqual(m["data"], data.replace(b"\n", b"\r\n"))

    def test_nodemailer_bcc_without_t(self):
        data = eml("nodemailer-bcc-without-t.eml")
        _, m = self.send(["-i", "-f", "app@example.com", "visible@example.org",
                          "hidden@example.org", "other-hidden@example.org"], data)
        self.assertEqual(m["rcpt_tos"], ["visible@example.org", "hidden@example.org",
                                         "other-hidden@example.org"])
        head, body = split(m["data"])
        self.assertFalse([h for h in head if h.lower().startswith(b"bcc")], head)
        self.assertNotIn(b"hidden@example.org", m["data"])
        self.assertEqual(m["data"], data.replace(
            b"Bcc: hidden@example.org,\r\n other-hidden@example.org\r\n", b""))

    # ---------------------------------------------------------------- header rules

    def test_bcc_only_with_t_gets_undisclosed(self):
        _, m = self.send(["-t", "-i"], eml("bcc-only-with-t.eml"))
        self.assertEqual(m["rcpt_tos"], ["a@example.org", "b@example.org"])
        head, body = split(m["data"])
        head = without_generated(head, self)
        self.assertEqual(head, [b"Subject: secret", b"To: undisclosed-recipients:;",
                                b"From: %s@box.example" % USER.encode()])
        self.assertNotIn(b"a@example.org", m["data"])

    def test_empty_to_with_bcc_becomes_undisclosed(self):
        # PHP mail() with an empty To and the real recipient in Bcc
        _, m = self.send(["-t", "-i"], b"To: \r\nSubject: s\r\nBcc: x@example.org\r\n\r\nb\r\n")
        self.assertEqual(m["rcpt_tos"], ["x@example.org"])
        head, _ = split(m["data"])
        self.assertEqual(without_generated(head, self)[:2],
                         [b"Subject: s", b"To: undisclosed-recipients:;"])

    def test_repeated_to_and_cc_merged(self):
        _, m = self.send(["-t"], eml("repeated-to-merged.eml"))
        self.assertEqual(m["rcpt_tos"], ["a@example.org", "b@example.org", "c@example.org",
                                         "d@example.org"])
        head, _ = split(m["data"])
        head = without_generated(head, self)
        self.assertEqual(head, [b"To: a@example.org, b@example.org", b"Subject: two To lines",
                                b"Cc: c@example.org, d@example.org", b"From: x@example.com"])

    def test_resent_recipients_only(self):
        _, m = self.send(["-t"], eml("resent-recipients-only.eml"))
        self.assertEqual(m["rcpt_tos"], ["new@example.org", "newbcc@example.org"])
        self.assertNotIn(b"newbcc", m["data"])
        self.assertIn(b"To: original@example.org\r\n", m["data"])

    def test_resent_block_completed(self):
        # RFC 5322 3.6.6: a resend carries Resent-Date and Resent-From (and
        # postie, like Postfix, a Resent-Message-ID), grouped with the rest of
        # its Resent- block; the original Date, From and Message-ID stay.
        data = (b"From: alice@example.com\nTo: bob@example.org\nSubject: fwd\n"
                b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <orig@example.com>\n"
                b"Resent-To: carol@example.net\nResent-Bcc: dave@example.net\n\nbody\n")
        _, m = self.send(["-t", "-f", "resender@example.com"], data)
        self.assertEqual(m["rcpt_tos"], ["carol@example.net", "dave@example.net"])
        head, _ = split(m["data"])
        self.assertEqual(head[:5], [b"From: alice@example.com", b"To: bob@example.org",
                                    b"Subject: fwd", b"Date: Sat, 28 Nov 2026 10:00:00 +0000",
                                    b"Message-ID: <orig@example.com>"])
        self.assertRegex(head[5], rb"^Resent-Date: \w{3}, \d{1,2} \w{3} \d{4} ")
        self.assertEqual(head[6], b"Resent-From: resender@example.com")
        self.assertRegex(head[7], rb"^Resent-Message-ID: <[0-9a-f]+@host\.box\.example>$")
        self.assertEqual(head[8:], [b"Resent-To: carol@example.net"])
        # a block with its own Resent-From keeps it and gets only what it lacks,
        # still as one group
        _, m = self.send(["-t"], eml("resent-recipients-only.eml"))
        head, _ = split(m["data"])
        names = [h.split(b":")[0] for h in head]
        first = names.index(b"Resent-Date")
        self.assertEqual(names[first:first + 4], [b"Resent-Date", b"Resent-Message-ID",
                                                  b"Resent-From", b"Resent-To"])
        self.assertIn(b"Resent-From: fwd@example.com", head)
        self.assertEqual(sorted(n for n in names if n.startswith(b"Resent-")),
                         [b"Resent-Date", b"Resent-From", b"Resent-Message-ID", b"Resent-To"])

    def test_never_recipients_from_body_subject_or_x_original_to(self):
        _, m = self.send(["-t"], eml("recipients-not-from-body-or-subject.eml"))
        self.assertEqual(m["rcpt_tos"], ["real@example.org"])
        self.assertTrue(m["data"].endswith(b"\r\n\r\nTo: fake3@example.org\r\n"
                                           b"Cc: fake4@example.org\r\n"))

    def test_t_plus_argv_and_aliases(self):
        data = b"To: ops, postmaster@box.example\nCc: Ops Team <ops@example.org>\n\nx\n"
        _, m = self.send(["-t", "extra@example.org", "ops"], data)
        self.assertEqual(m["rcpt_tos"], ["alice@example.net", "bob@example.net",
                                         "root@box.example", "ops@example.org",
                                         "extra@example.org"])
        # headers are qualified, not alias-expanded
        self.assertIn(b"To: ops@box.example, postmaster@box.example\r\n", m["data"])

    def test_from_generated_from_f_and_F(self):
        data = b"To: a@example.org\n\nx\n"
        _, m = self.send(["-F", "Doe, John", "-f", "jd@example.com", "a@example.org"], data)
        self.assertIn(b'\r\nFrom: "Doe, John" <jd@example.com>\r\n', m["data"])
        _, m = self.send(["-F", "J\u00f6rg M\u00fcller", "-f", "j@example.com", "a@example.org"],
                         data)
        self.assertIn(b"\r\nFrom: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <j@example.com>\r\n",
                      m["data"])
        # a -F with a line break can never add a header line: refused outright
        res, _ = self.send(["-F", "X\nBcc: evil@example.org", "-f", "j@example.com",
                            "a@example.org"], data, code=64)

    def test_existing_date_and_message_id_kept_once(self):
        data = (b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <one@example.com>\n"
                b"Date: Sun, 29 Nov 2026 10:00:00 +0000\nTo: a@example.org\n"
                b"From: me@example.com\n\nx\n")
        _, m = self.send(["-t"], data)
        head, _ = split(m["data"])
        self.assertEqual(head, [b"Date: Sat, 28 Nov 2026 10:00:00 +0000",
                                b"Message-ID: <one@example.com>", b"To: a@example.org",
                                b"From: me@example.com"])

    def test_mbox_from_line_dropped(self):
        _, m = self.send(["-t"], eml("mbox-from-line.eml"))
        self.assertTrue(m["data"].startswith(b"To: a@example.org\r\nSubject: mbox\r\n"))

    # ---------------------------------------------------------------- line ends, dots, body

    def test_no_separator(self):
        _, m = self.send(["-t"], eml("no-separator.eml"))
        head, body = split(m["data"])
        self.assertEqual(head[:2], [b"To: a@example.org", b"Subject: no separator"])
        self.assertEqual(body, b"this line starts the body\r\nKey: value\r\n")

    def test_lone_cr_and_bare_lf_become_crlf(self):
        _, m = self.send(["-t"], eml("mixed-line-ends.eml"))
        head, body = split(m["data"])
        self.assertEqual(head[:2], [b"To: a@example.org", b"Subject: cr"])
        self.assertEqual(body, b"one\r\ntwo\r\nthree\r\n")

    def test_lone_dot_ends_input_without_i(self):
        _, m = self.send(["a@example.org"], b"Subject: dot\n\nbefore\n.\nafter\n")
        self.assertTrue(m["data"].endswith(b"\r\n\r\nbefore\r\n"), m["data"])

    def test_lone_dot_is_text_with_i(self):
        _, m = self.send(["-i", "a@example.org"], b"Subject: dot\n\nbefore\n.\n..\nafter\n")
        self.assertTrue(m["data"].endswith(b"\r\n\r\nbefore\r\n.\r\n..\r\nafter\r\n"))
        # libESMTP stuffed the dots on the wire; the server un-stuffed them once

    def test_long_line_quoted_printable(self):
        import quopri
        data = eml("long-line-utf8-qp.eml")
        _, m = self.send(["-t"], data)
        head, body = split(m["data"])
        head = without_generated(head, self)
        self.assertEqual(head, [b"To: a@example.org", b"Subject: long",
                                b"From: %s@box.example" % USER.encode(), b"MIME-Version: 1.0",
                                b"Content-Type: text/plain; charset=utf-8",
                                b"Content-Transfer-Encoding: quoted-printable"])
        self.assertEqual(quopri.decodestring(body),
                         data.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n"))
        for line in body.split(b"\r\n"):
            self.assertLessEqual(len(line), 76)

    def test_long_line_multipart_folded(self):
        _, m = self.send(["-t"], eml("long-line-multipart-folded.eml"))
        _, body = split(m["data"])
        self.assertIn(b"\r\n" + b"y" * 998 + b"\r\n" + b"y" * 998 + b"\r\n" + b"y" * 504 +
                      b"\r\n--b--\r\n", body)

    def test_unlabelled_8bit_gets_mime_headers(self):
        _, m = self.send(["-t"], eml("unlabelled-8bit-utf8.eml"))
        head, body = split(m["data"])
        self.assertEqual(without_generated(head, self)[-3:], [
            b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: 8bit"])
        self.assertEqual(body, "caf\u00e9 \u00fcber alles\r\n".encode())

    def test_nul_in_body_removed_with_warning(self):
        res, m = self.send(["-t"], eml("nul-in-body.eml"))
        self.assertIn("NUL", res.err)
        self.assertTrue(m["data"].endswith(b"\r\n\r\nabcd\r\n"))

    def test_canonical_over_bdat(self):
        # with CHUNKING libESMTP sends the spool raw: it must already be canonical
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        with Smarthost(tmp.path, tls="none", chunking=True) as sh:
            conf = write_config(tmp.path, sh, global_={
                "qualify_domain": DOMAIN, "hostname": "host.box.example", "aliases": ""})
            res = run_postie(["-i", "a@example.org"],
                             stdin=b"Subject: raw\rX: y\n\none\rtwo\n.\nno final newline",
                             config=conf)
            self.assertEqual(res.returncode, 0, res.err)
            sh.wait_messages(1)
            m = sh.messages()[0]
        self.assertTrue(m["chunked"])
        head, body = split(m["data"])
        self.assertEqual(head[:2], [b"Subject: raw", b"X: y"])
        self.assertEqual(body, b"one\r\ntwo\r\n.\r\nno final newline\r\n")
        self.assertNotRegex(m["data"], rb"\r(?!\n)|(?<!\r)\n")

    # ---------------------------------------------------------------- refusals

    def test_no_recipients(self):
        res, _ = self.send(["-t"], b"Subject: nobody\n\nx\n", code=65)
        self.assertIn("no recipients", res.err)
        # without -t and without arguments the command line itself is incomplete
        res, _ = self.send([], b"To: a@example.org\n\nx\n", code=64)
        self.assertIn("no recipients", res.err)
        res, _ = self.send(["-t"], b"To: undisclosed-recipients:;\nCc: (none)\n\nx\n", code=65)
        self.assertIn("no recipients", res.err)

    def test_unparsable_header_address(self):
        res, _ = self.send(["-t"], eml("unparsable-cc.eml"), code=65)
        self.assertIn("Cc", res.err)
        self.assertIn("Broken <broken@example.org", res.err)

    def test_non_ascii_address_refused(self):
        res, _ = self.send(["-t"], "To: j\u00f6rg@example.org\n\nx\n".encode(), code=65)
        self.assertIn("SMTPUTF8", res.err)

    def test_bad_argv_address(self):
        for bad in ["a b@example.org", "Name <a@example.org"]:
            res, _ = self.send([bad], b"Subject: x\n\nx\n", code=64)
            self.assertTrue(res.err.strip(), bad)

    def test_nul_in_header(self):
        res, _ = self.send(["-t"], eml("nul-in-header.eml"), code=65)
        self.assertIn("NUL", res.err)

    def test_huge_header_block(self):
        data = b"To: a@example.org\nSubject: " + b"x " * (1024 * 1024) + b"\n\nbody\n"
        res, _ = self.send(["-t"], data, code=65)
        self.assertIn("header block exceeds", res.err)

    def test_unfoldable_header_line(self):
        data = b"To: a@example.org\nX-Long: " + b"x" * 1500 + b"\n\nbody\n"
        res, _ = self.send(["-t"], data, code=65)
        self.assertIn("X-Long", res.err)

    def test_bv_applies_aliases_and_qualification(self):
        before = len(self.sh.messages())
        res = run_postie(["-bv", "ops", "carol"], config=self.conf)
        self.assertEqual(res.returncode, 0, res.err)
        out = res.stdout.decode()
        for addr in ("alice@example.net", "bob@example.net", "carol@" + DOMAIN):
            self.assertIn(addr + ": deliverable", out)
        rcpts = [l for l in self.sh.command_lines() if l.upper().startswith("RCPT TO:")]
        for addr in ("alice@example.net", "bob@example.net", "carol@" + DOMAIN):
            self.assertIn("RCPT TO:<%s>" % addr, rcpts)
        self.assertEqual(len(self.sh.messages()), before, "-bv delivered a message")

    def test_bv_refuses_a_bad_address(self):
        res = run_postie(["-bv", "a\rb@example.org"], config=self.conf)
        self.assertEqual(res.returncode, 64, res.err)


if __name__ == "__main__":
    unittest.main()
