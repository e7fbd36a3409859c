"""TLS and AUTH against the test smarthost: STARTTLS, implicit TLS, AUTH
LOGIN/PLAIN, certificate checks, and what is (not) sent when something is
wrong.  Each test asserts the exit status, the message on stderr and what the
smarthost received."""

import base64
import os
import time
import unittest

from harness import Smarthost, TempDir, TestCA, message, run_postie, write_config

EX_OK, EX_NOUSER, EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM = 0, 67, 69, 75, 77

USER = "alice"
PASSWORD = "Sw0rdfish-9d1e"
MSG = message([("From", "Alice <alice@client.example>"), ("To", "bob@example.org"),
               ("Subject", "tls test")], "Hello over TLS.\n")


def secrets_in(text):
    """Every form in which the password could leak into a transcript."""
    forms = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
             base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode(),
             base64.b64encode(("%s\0%s\0%s" % (USER, USER, PASSWORD)).encode()).decode()]
    return [f for f in forms if f in text]


class TLSCase(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.path

    def smarthost(self, **kw):
        kw.setdefault("auth", ["%s:%s" % (USER, PASSWORD)])
        sh = Smarthost(self.dir, **kw)
        self.addCleanup(sh.stop)
        return sh

    def config(self, sh, **account):
        acct = {"user": USER, "password": PASSWORD, "timeout": 10}
        acct.update(account)
        return write_config(self.dir, sh, account=acct,
                            global_={"hostname": "client.example"})

    def send(self, conf, args=("-t",), stdin=MSG, **kw):
        return run_postie(list(args), stdin=stdin, config=conf, timeout=60, **kw)

    def assertNothingSent(self, sh):
        lines = sh.command_lines()
        self.assertEqual(sh.messages(), [])
        self.assertFalse([l for l in lines if l.upper().startswith(("MAIL", "RCPT", "DATA"))],
                         lines)

    def assertNoCredentials(self, sh):
        lines = sh.command_lines()
        self.assertFalse([l for l in lines if l.upper().startswith("AUTH")], lines)
        self.assertEqual(secrets_in("\n".join(lines)), [])


class DeliveryTests(TLSCase):
    def check_delivered(self, sh, res, mech):
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertTrue(m["tls"])
        self.assertEqual(m["auth_user"], USER)
        self.assertEqual(m["rcpt_tos"], ["bob@example.org"])
        self.assertIn(b"Hello over TLS.\r\n", m["data"])
        cmds = sh.commands()
        auth = [c for c in cmds if c.get("line", "").upper().startswith("AUTH")]
        self.assertTrue(auth[-1]["line"].upper().startswith("AUTH " + mech), auth)
        self.assertTrue(all(c["tls"] for c in auth))
        # libESMTP offers mechanisms in the server's order; one that the
        # configuration does not allow is declined without credentials
        # ("AUTH LOGIN" with no initial response, then "*").
        for c in auth[:-1]:
            self.assertEqual(len(c["line"].split()), 2, auth)
        conts = [c["line"] for c in cmds if c.get("auth_continuation")]
        declined = len(auth) - 1
        self.assertEqual(conts[:declined], ["*"] * declined, conts)
        self.assertEqual(secrets_in("\n".join(c.get("line", "") for c in auth[:-1])), [])

    def test_starttls_auth_login(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, auth="login"))
        self.check_delivered(sh, res, "LOGIN")
        # postie's own EHLO and STARTTLS, then libESMTP's EHLO inside TLS.
        lines = sh.commands()
        ehlos = [c for c in lines if c.get("line", "").startswith("EHLO")]
        self.assertEqual([c["tls"] for c in ehlos], [False, True])
        self.assertEqual(ehlos[0]["line"], "EHLO client.example")

    def test_starttls_auth_plain(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, auth="plain"))
        self.check_delivered(sh, res, "PLAIN")

    def test_implicit_tls_auth_login(self):
        sh = self.smarthost(tls="tls")
        res = self.send(self.config(sh, auth="login"))
        self.check_delivered(sh, res, "LOGIN")
        self.assertTrue(all(c["tls"] for c in sh.commands() if "line" in c))

    def test_implicit_tls_auth_plain(self):
        sh = self.smarthost(tls="tls")
        res = self.send(self.config(sh, auth="plain"))
        self.check_delivered(sh, res, "PLAIN")

    def test_auth_plain_only_when_login_comes_first(self):
        sh = self.smarthost(tls="tls", auth_mechanisms="LOGIN PLAIN")
        res = self.send(self.config(sh, auth="plain"))
        self.check_delivered(sh, res, "PLAIN")
        self.assertEqual(len([l for l in sh.command_lines() if l.startswith("AUTH")]), 2)

    def test_streamed_body_over_tls_and_sent_again(self):
        # A body past 1 MiB goes out through the TLS relay while it is read;
        # a late 8-bit line gives the transfer up inside TLS and the message
        # goes out again, whole and labelled, after a second AUTH.
        sh = self.smarthost(tls="tls")
        line = b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        body = line * (2 * 1024 * 1024 // len(line)) + "Grüße\r\n".encode()
        res = self.send(self.config(sh, auth="login"), stdin=MSG.replace(b"Hello over TLS.\r\n", body))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertTrue(m["tls"])
        self.assertTrue(m["data"].endswith(b"\r\n\r\n" + body))
        self.assertIn(b"Content-Transfer-Encoding: 8bit\r\n", m["data"])
        self.assertEqual(sh.connections(), 2)
        self.assertEqual(len([l for l in sh.command_lines() if l.upper() == "DATA"]), 2)

    def test_auth_any_takes_the_first_offered(self):
        sh = self.smarthost(tls="starttls", auth_mechanisms="PLAIN LOGIN")
        res = self.send(self.config(sh, auth="any"))
        self.check_delivered(sh, res, "PLAIN")

    def test_host_name_with_sni_path(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, host="localhost"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertTrue(sh.messages()[0]["tls"])

    def test_ipv6_literal(self):
        sh = self.smarthost(tls="starttls", host="::1")
        conf = self.config(sh)
        with open(conf) as f:
            self.assertIn('host = "::1"', f.read())
        res = self.send(conf)
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertTrue(m["tls"])
        self.assertEqual(m["auth_user"], USER)

    def test_tls12_server(self):
        sh = self.smarthost(tls="tls", tls_max="1.2")
        res = self.send(self.config(sh), args=("-v", "-t"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertIn("TLSv1.2", res.err)
        self.assertTrue(sh.messages()[0]["tls"])

    def test_client_certificate(self):
        clients = TestCA(self.dir, subdir="clients")
        cert, key = clients.issue(["client.example"], name="client")
        sh = self.smarthost(tls="tls", client_ca=clients.ca_file)
        res = self.send(self.config(sh, tls_cert_file=cert, tls_key_file=key))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertEqual(m["client_cert"], "client")
        # Without one, the server refuses the handshake (with TLS 1.3 the
        # client only learns it when the server hangs up).
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("TLS handshake", res.err)
        self.assertEqual(len(sh.messages()), 1)

    def test_password_command(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, password=None,
                                    password_command="printf '%%s\\n' '%s'" % PASSWORD))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertEqual(sh.messages()[0]["auth_user"], USER)

    def test_no_auth_configured(self):
        sh = self.smarthost(tls="tls", auth=[])
        res = self.send(self.config(sh, user=None, password=None))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertIsNone(m["auth_user"])
        self.assertTrue(m["tls"])

    def test_forty_starttls_sessions_with_tls13_tickets(self):
        # Python's TLS 1.3 server sends two session tickets after every
        # handshake: the pattern that hangs libESMTP's own STARTTLS.
        sh = self.smarthost(tls="starttls")
        conf = self.config(sh, timeout=10)
        start = time.monotonic()
        for i in range(40):
            res = self.send(conf, args=("-v", "-t") if i == 0 else ("-t",),
                            stdin=message({"To": "bob@example.org",
                                           "Subject": "run %d" % i}, "body %d\n" % i))
            self.assertEqual(res.returncode, EX_OK, "run %d: %s" % (i, res.err))
            if i == 0:
                self.assertIn("TLSv1.3", res.err)
        msgs = sh.messages()
        self.assertEqual(len(msgs), 40)
        self.assertTrue(all(m["tls"] and m["auth_user"] == USER for m in msgs))
        # Every session completed promptly, none waited for a timeout.
        self.assertLess(time.monotonic() - start, 40 * 5)


class TranscriptTests(TLSCase):
    def test_verbose_transcript_hides_credentials(self):
        for mech in ("login", "plain"):
            with self.subTest(mech=mech):
                sh = self.smarthost(tls="starttls")
                res = self.send(self.config(sh, auth=mech), args=("-v", "-t"))
                self.assertEqual(res.returncode, EX_OK, res.err)
                self.assertIn("-> STARTTLS", res.err)
                self.assertIn("-> AUTH %s ***" % mech.upper(), res.err)
                self.assertIn("<- 235", res.err)
                self.assertIn("-> MAIL FROM:", res.err)
                self.assertEqual(secrets_in(res.err), [])
                # ... although the credentials did reach the server.
                self.assertEqual(sh.messages()[0]["auth_user"], USER)
                sh.stop()

    def test_quiet_without_v(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertEqual(res.err, "")


class RefusalTests(TLSCase):
    def test_wrong_password(self):
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, password="not-the-password"))
        self.assertEqual(res.returncode, EX_NOPERM, res.err)
        self.assertIn("535", res.err)
        self.assertIn("rejected", res.err)
        self.assertNothingSent(sh)
        # One attempt, no retry with another mechanism.
        auth = [l for l in sh.command_lines() if l.upper().startswith("AUTH")]
        self.assertEqual(len(auth), 1, auth)

    def test_verbose_transcript_is_what_the_server_read(self):
        # After the 535 libESMTP still writes AUTH with the next mechanism;
        # postie cuts the connection before that reaches the server, and -v
        # must show the QUIT that was sent, not the AUTH that was not.
        for tls in ("starttls", "none"):
            with self.subTest(tls=tls):
                sh = self.smarthost(tls=tls, auth_plaintext=tls == "none")
                conf = self.config(sh, password="not-the-password", auth="any",
                                   allow_plaintext_auth=tls == "none")
                res = self.send(conf, args=("-v", "-t"))
                self.assertEqual(res.returncode, EX_NOPERM, res.err)
                # (QUIT is left out: over TLS the server may not get to read
                # it before the connection is torn down.)
                verbs = ("AUTH", "MAIL", "RCPT", "DATA", "RSET")
                sent = [l[3:] for l in res.err.splitlines() if l.startswith("-> ")]
                # Credentials are *** in the transcript: compare the verbs.
                # (postie's own EHLO and STARTTLS before the TLS handshake
                # are not libESMTP's, so EHLO is left out on both sides.)
                self.assertEqual([l.split()[0].upper() for l in sent
                                  if l.split()[0].upper() in verbs],
                                 [l.split()[0].upper() for l in sh.command_lines()
                                  if l.split() and l.split()[0].upper() in verbs])
                self.assertEqual(sent[-1], "QUIT")
                self.assertNothingSent(sh)

    def test_wrong_password_implicit_tls(self):
        sh = self.smarthost(tls="tls")
        res = self.send(self.config(sh, password="not-the-password", auth="plain"))
        self.assertEqual(res.returncode, EX_NOPERM, res.err)
        self.assertNothingSent(sh)

    def test_no_usable_mechanism(self):
        sh = self.smarthost(tls="starttls", auth_mechanisms="PLAIN")
        res = self.send(self.config(sh, auth="login"))
        self.assertEqual(res.returncode, EX_NOPERM, res.err)
        self.assertIn("no usable AUTH mechanism", res.err)
        self.assertNothingSent(sh)
        self.assertNoCredentials(sh)

    def test_server_without_auth_while_user_is_set(self):
        sh = self.smarthost(tls="starttls", auth=[])
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_NOPERM, res.err)
        self.assertIn("AUTH", res.err)
        self.assertNothingSent(sh)

    def test_untrusted_certificate(self):
        other = TestCA(self.dir, subdir="other-ca")
        sh = self.smarthost(tls="starttls")
        res = self.send(self.config(sh, tls_ca_file=other.ca_file))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("certificate verify failed", res.err)
        self.assertIn("127.0.0.1:%d" % sh.port, res.err)
        self.assertNothingSent(sh)
        self.assertNoCredentials(sh)
        # postie stopped right after STARTTLS: no EHLO inside TLS.
        self.assertEqual([l for l in sh.command_lines()], ["EHLO client.example", "STARTTLS"])

    def test_untrusted_certificate_implicit_tls(self):
        other = TestCA(self.dir, subdir="other-ca")
        sh = self.smarthost(tls="tls")
        res = self.send(self.config(sh, tls_ca_file=other.ca_file))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("certificate verify failed", res.err)
        self.assertEqual(sh.command_lines(), [])
        self.assertEqual(sh.messages(), [])

    def test_self_signed_certificate(self):
        ca = TestCA(self.dir, subdir="ss")
        cert, key = ca.self_signed(["localhost", "127.0.0.1"])
        sh = self.smarthost(tls="tls", ca=ca, cert=cert, key=key)
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("certificate verify failed", res.err)
        self.assertEqual(sh.messages(), [])

    def test_certificate_for_another_name(self):
        ca = TestCA(self.dir, subdir="names")
        cert, key = ca.issue(["mail.other.example"])
        sh = self.smarthost(tls="starttls", ca=ca, cert=cert, key=key)
        res = self.send(self.config(sh, host="localhost"))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("certificate verify failed", res.err)
        self.assertIn("mismatch", res.err)
        self.assertNothingSent(sh)
        self.assertNoCredentials(sh)

    def test_certificate_for_another_ip(self):
        # The certificate names localhost but not the IP literal configured.
        ca = TestCA(self.dir, subdir="ip")
        cert, key = ca.issue(["localhost"])
        sh = self.smarthost(tls="tls", ca=ca, cert=cert, key=key)
        res = self.send(self.config(sh, host="127.0.0.1"))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("mismatch", res.err)
        self.assertEqual(sh.messages(), [])
        # ... and the same certificate is fine for the name.
        res = self.send(self.config(sh, host="localhost"))
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertEqual(len(sh.messages()), 1)

    def test_starttls_not_offered(self):
        sh = self.smarthost(tls="starttls", no_starttls=True)
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("does not offer STARTTLS", res.err)
        self.assertNothingSent(sh)
        self.assertNoCredentials(sh)
        self.assertNotIn("STARTTLS", sh.command_lines())

    def test_starttls_against_plaintext_only_server(self):
        sh = self.smarthost(tls="none", auth=[])
        res = self.send(self.config(sh, tls="starttls", user=None, password=None))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("STARTTLS", res.err)
        self.assertNothingSent(sh)

    def test_implicit_tls_against_plaintext_server(self):
        sh = self.smarthost(tls="none", auth=[])
        res = self.send(self.config(sh, tls="tls", user=None, password=None, timeout=3))
        self.assertEqual(res.returncode, EX_TEMPFAIL, res.err)
        self.assertIn("TLS", res.err)
        self.assertNothingSent(sh)

    def test_plaintext_server_with_auth_configured(self):
        # The server would take AUTH in clear; postie refuses to send credentials.
        sh = self.smarthost(tls="none", auth_plaintext=True)
        res = self.send(self.config(sh))
        self.assertEqual(res.returncode, EX_NOPERM, res.err)
        self.assertIn("unencrypted", res.err)
        self.assertNothingSent(sh)
        self.assertNoCredentials(sh)

    def test_plaintext_auth_when_allowed(self):
        sh = self.smarthost(tls="none", auth_plaintext=True)
        res = self.send(self.config(sh, allow_plaintext_auth=True))
        self.assertEqual(res.returncode, EX_OK, res.err)
        [m] = sh.messages()
        self.assertFalse(m["tls"])
        self.assertEqual(m["auth_user"], USER)


if __name__ == "__main__":
    unittest.main()
