"""Security tests of the real binary (doc/SECURITY.md names the threat each one covers).

Argument injection, SMTP smuggling, hostile input (bounded memory, no crash or
hang), secrets, and the setgid privilege model.  Tests that change user or
install a setgid copy of the binary need root: the suite is run as root in CI
(the container's default user); as another user they use the caller's own
groups instead (see SetgidTests.setUpClass).
"""

import base64
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import POSTIE, Smarthost, TempDir, message, run_postie, write_config

IS_ROOT = os.geteuid() == 0
NOBODY_UID = 65534
NOGROUP_GID = 65534
# A group id with no members and no entry: the setgid copy's group.
SGID_GID = 54329

EX_OK, EX_USAGE, EX_DATAERR, EX_CONFIG = 0, 64, 65, 78

PASSWORD = "Pw-7f3c9e1a-secret"
USER = "alice"


def is_canonical_crlf(data):
    """True when every CR is followed by LF and every LF preceded by CR."""
    for i, b in enumerate(data):
        if b == 0x0D and (i + 1 >= len(data) or data[i + 1] != 0x0A):
            return False
        if b == 0x0A and (i == 0 or data[i - 1] != 0x0D):
            return False
    return True


def header_block(data):
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end + 2]


def header_lines(data):
    return header_block(data).split(b"\r\n")


def binary_is_sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


TIME = "/usr/bin/time"


def measured_run(argv, stdin_bytes, timeout=60, env=None, preexec_fn=None):
    """Runs argv with stdin_bytes; returns (returncode, stdout, stderr, maxrss_kb,
    seconds).

    The peak RSS must be the program's own: a child forked from this Python
    process starts with Python's high-water mark (Linux carries it across
    exec), so GNU time (a small process) does the fork when it is there;
    otherwise VmHWM is sampled from /proc while the program runs."""
    tmp = TempDir()
    try:
        inp = os.path.join(tmp.path, "in")
        with open(inp, "wb") as f:
            f.write(stdin_bytes)
        outp, errp = os.path.join(tmp.path, "out"), os.path.join(tmp.path, "err")
        timep = os.path.join(tmp.path, "time")
        use_time = os.access(TIME, os.X_OK)
        cmd = [TIME, "-f", "RSS=%M", "-o", timep] + argv if use_time else argv
        hwm = 0
        with open(inp, "rb") as fi, open(outp, "wb") as fo, open(errp, "wb") as fe:
            start = time.monotonic()
            p = subprocess.Popen(cmd, stdin=fi, stdout=fo, stderr=fe, env=env,
                                 preexec_fn=preexec_fn, start_new_session=True)
            while True:
                try:
                    p.wait(0.005)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - start > timeout:
                    os.killpg(p.pid, signal.SIGKILL)  # time and the program under it
                    p.wait()
                    raise AssertionError("%s: killed after %ss (hang)" % (argv, timeout))
                if not use_time:
                    try:
                        with open("/proc/%d/status" % p.pid) as f:
                            for line in f:
                                if line.startswith("VmHWM:"):
                                    hwm = max(hwm, int(line.split()[1]))
                    except OSError:
                        pass
            elapsed = time.monotonic() - start
        rc = p.returncode
        with open(outp, "rb") as f:
            out = f.read()
        with open(errp, "rb") as f:
            err = f.read()
        if use_time:
            with open(timep) as f:
                report = f.read()
            m = re.search(r"Command terminated by signal (\d+)", report)
            if m:
                rc = -int(m.group(1))
            hwm = int(re.search(r"RSS=(\d+)", report).group(1))
        return rc, out, err, hwm, elapsed
    finally:
        tmp.cleanup()


def as_user(uid, gid, groups=()):
    def drop():
        os.setgroups(list(groups))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return drop


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.sh = Smarthost(self.tmp.path)
        self.addCleanup(self.sh.stop)
        self.conf = write_config(self.tmp.path, self.sh)

    def postie(self, args, stdin=b"", **kw):
        return run_postie(args, stdin=stdin, config=self.conf, **kw)

    def assertNothingSent(self, res=None):
        self.assertEqual(self.sh.messages(), [], res)
        self.assertEqual(self.sh.connections(), 0, "postie connected to the smarthost: %r" % (res,))

    def assertOneSent(self, res):
        self.assertEqual(res.returncode, EX_OK, res.err)
        msgs = self.sh.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertTrue(is_canonical_crlf(msgs[0]["data"]), msgs[0]["data"][:200])
        return msgs[0]


MSG = message({"From": "a@example.com", "To": "b@example.org", "Subject": "t"}, "hello\n")


class ArgvInjectionTests(Base):
    """CVE-2016-10033 class: web-form text passed to sendmail as argv."""

    BAD_ADDRESSES = [
        "a@example.com\r\nRCPT TO:<evil@example.net>",
        "a@example.com\nRCPT TO:<evil@example.net>",
        "a@example.com\rDATA",
        "<a@example.com>",
        "a@example.com>",
        "<a@example.com",
        "a@example.com> SIZE=1 <x@y",
        '"unbalanced@example.com',
        'a"b@example.com',
    ]

    def test_bad_sender_is_usage_error_and_nothing_sent(self):
        for bad in self.BAD_ADDRESSES:
            for args in (["-f", bad, "b@example.org"], ["-f" + bad, "b@example.org"],
                         ["-r", bad, "b@example.org"]):
                with self.subTest(args=args):
                    res = self.postie(args, stdin=MSG)
                    self.assertEqual(res.returncode, EX_USAGE, res)
                    self.assertEqual(res.err.count("\n"), 1, res.err)
        self.assertNothingSent()

    def test_bad_recipient_is_usage_error_and_nothing_sent(self):
        for bad in self.BAD_ADDRESSES:
            for args in ([bad], ["ok@example.org", bad], ["-t", bad], ["--", bad]):
                with self.subTest(args=args):
                    res = self.postie(args, stdin=MSG)
                    self.assertEqual(res.returncode, EX_USAGE, res)
        self.assertNothingSent()

    def test_sender_is_exactly_one_address_not_an_option(self):
        # PHP's fifth parameter "-f$from" with a from of "-oQ/tmp" or two words
        for bad in ("-oQ/tmp", "-X/tmp/x", "a@example.com c@example.com", "a@example.com,c@x",
                    "a@example.com\tx", "@route:a@example.com"):
            with self.subTest(sender=bad):
                res = self.postie(["-f", bad, "b@example.org"], stdin=MSG)
                self.assertEqual(res.returncode, EX_USAGE, res)
        self.assertNothingSent()

    def test_error_message_cannot_forge_a_second_line(self):
        res = self.postie(["-f", "x\nFAKE: injected line", "b@example.org"], stdin=MSG)
        self.assertEqual(res.returncode, EX_USAGE)
        for line in res.err.splitlines():
            self.assertFalse(line.startswith("FAKE"), res.err)

    def test_X_never_creates_the_file(self):
        target = os.path.join(self.tmp.path, "webshell.php")
        for args in (["-X", target], ["-X" + target], ["-f", "www@example.com", "-X", target],
                     ["-oQ" + self.tmp.path + "/q", "-X" + target],
                     ["-OQueueDirectory=" + self.tmp.path + "/q2", "-X", target]):
            with self.subTest(args=args):
                res = self.postie(args + ["b@example.org"], stdin=MSG)
                self.assertEqual(res.returncode, EX_OK, res.err)
                self.assertFalse(os.path.exists(target), "postie created the -X file")
        self.assertFalse(os.path.exists(self.tmp.path + "/q"))
        self.assertFalse(os.path.exists(self.tmp.path + "/q2"))
        msgs = self.sh.wait_messages(5)
        for m in msgs:
            self.assertEqual(m["rcpt_tos"], ["b@example.org"])

    def test_php_mail_fifth_parameter(self):
        # PHPMailer's exploit: -f'"attacker\" -oQ/tmp/ -X/var/www/cache/phpcode.php some"@email.com'
        # after escapeshellcmd and word splitting arrives as these arguments.
        target = os.path.join(self.tmp.path, "phpcode.php")
        args = ['-f"attacker\\"', "-oQ/tmp/", "-X" + target, 'some"@email.com', "b@example.org"]
        res = self.postie(args, stdin=MSG)
        self.assertIn(res.returncode, (EX_USAGE, EX_OK), res)
        self.assertFalse(os.path.exists(target))
        if res.returncode == EX_OK:
            for m in self.sh.wait_messages(1):
                for a in [m["mail_from"]] + m["rcpt_tos"]:
                    self.assertNotIn("\r", a)
                    self.assertNotIn("\n", a)
        else:
            self.assertNothingSent(res)

    def test_arguments_after_dashdash_are_never_options(self):
        for flag in ("-bv", "-bp", "-bs", "-q", "-C/etc/shadow", "-X/tmp/never", "--help",
                     "--version"):
            with self.subTest(flag=flag):
                before = len(self.sh.messages())
                res = self.postie(["--", flag], stdin=MSG)
                # Either refused as an address, or sent to it as an address; never a mode.
                self.assertIn(res.returncode, (EX_USAGE, EX_DATAERR, EX_OK), res)
                self.assertNotIn(b"Mail queue", res.stdout)
                self.assertNotIn(b"postie ", res.stdout)  # --version / --help output
                self.assertFalse(os.path.exists("/tmp/never"))
                if res.returncode == EX_OK:
                    msgs = self.sh.wait_messages(before + 1)
                    self.assertEqual(len(msgs), before + 1)
                    self.assertTrue(msgs[-1]["rcpt_tos"][0].startswith(flag), msgs[-1])
                else:
                    self.assertEqual(len(self.sh.messages()), before)

    def test_fullname_cannot_add_a_header(self):
        for fullname in ("x\r\nBcc: evil@example.net", "x\nBcc: evil@example.net",
                         "x\rBcc: evil@example.net", "x\r\n\r\nbody injection"):
            with self.subTest(fullname=fullname):
                before = len(self.sh.messages())
                msg = message({"To": "b@example.org", "Subject": "no From"}, "hi\n")
                res = self.postie(["-F", fullname, "-t"], stdin=msg)
                self.assertIn(res.returncode, (EX_OK, EX_USAGE), res)
                if res.returncode != EX_OK:
                    self.assertEqual(len(self.sh.messages()), before)
                    continue
                m = self.sh.wait_messages(before + 1)[-1]
                self.assertTrue(is_canonical_crlf(m["data"]))
                self.assertEqual(m["rcpt_tos"], ["b@example.org"])
                for line in header_lines(m["data"]):
                    self.assertFalse(line.lower().startswith(b"bcc"), m["data"])
                    self.assertFalse(line.startswith(b"body injection"), m["data"])
                self.assertIn(b"Subject: no From", header_block(m["data"]), m["data"])


class SmugglingTests(Base):
    """SMTP smuggling (CVE-2023-51764 class): nothing in the message can end DATA early."""

    SMUGGLE = (b"MAIL FROM:<smuggled@evil.example>\r\nRCPT TO:<victim@example.net>\r\n"
               b"DATA\r\nFrom: ceo@example.com\r\n\r\nsmuggled\r\n")

    def _payloads(self):
        for name, seq in (("lf-dot-lf", b"\n.\n"), ("cr-dot-cr", b"\r.\r"),
                          ("lf-dot-crlf", b"\n.\r\n"), ("crlf-dot-lf", b"\r\n.\n"),
                          ("cr-dot-crlf", b"\r.\r\n"), ("crlf-dot-cr", b"\r\n.\r"),
                          ("nul-dot", b"\r\n.\x00\r\n")):
            body = b"first line" + seq + self.SMUGGLE + b"last line\r\n"
            yield name, b"To: b@example.org\r\nSubject: smuggle\r\n\r\n" + body

    def test_with_i_the_dot_sequences_are_text(self):
        for name, msg in self._payloads():
            with self.subTest(name=name):
                before = len(self.sh.messages())
                res = self.postie(["-i", "-t"], stdin=msg)
                self.assertIn(res.returncode, (EX_OK, EX_DATAERR), res)
                if res.returncode != EX_OK:
                    self.assertEqual(len(self.sh.messages()), before)
                    continue
                msgs = self.sh.wait_messages(before + 1)
                self.assertEqual(len(msgs), before + 1, "a second message was smuggled")
                m = msgs[-1]
                self.assertEqual(m["rcpt_tos"], ["b@example.org"])
                self.assertTrue(is_canonical_crlf(m["data"]), m["data"])
                self.assertIn(b"last line", m["data"], "DATA ended early")
                self.assertIn(b"smuggled@evil.example", m["data"])
        lines = self.sh.command_lines()
        self.assertFalse(any("smuggled@evil" in l for l in lines), lines)
        self.assertFalse(any("victim@" in l for l in lines), lines)

    def test_without_i_a_dot_line_ends_input_and_nothing_is_smuggled(self):
        for name, msg in self._payloads():
            with self.subTest(name=name):
                before = len(self.sh.messages())
                res = self.postie(["-t"], stdin=msg)
                self.assertIn(res.returncode, (EX_OK, EX_DATAERR), res)
                if res.returncode == EX_OK:
                    msgs = self.sh.wait_messages(before + 1)
                    self.assertEqual(len(msgs), before + 1)
                    self.assertEqual(msgs[-1]["rcpt_tos"], ["b@example.org"])
                    self.assertTrue(is_canonical_crlf(msgs[-1]["data"]))
        lines = self.sh.command_lines()
        self.assertFalse(any("smuggled@evil" in l for l in lines), lines)
        self.assertFalse(any("victim@" in l for l in lines), lines)

    def test_bare_cr_and_lf_never_reach_the_wire(self):
        msg = (b"To: b@example.org\rSubject: mixed\n\r\nline1\rline2\nline3\r\n"
               b"x\r\r\nx\n\r\n\r\r\n\n\nend")
        res = self.postie(["-i", "-t"], stdin=msg)
        m = self.assertOneSent(res)
        self.assertTrue(m["data"].endswith(b"end\r\n"), m["data"])


def _listening_inodes():
    """Socket inodes in the LISTEN state (TCP over IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        inodes.add(fields[9])
        except FileNotFoundError:
            pass
    return inodes


def _socket_inodes(pid):
    found = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            found[target[8:-1]] = int(fd)
    return found


class LocalPortTests(unittest.TestCase):
    """T19: libESMTP's connection is never a way in: postie opens no port for it.

    While postie is in the middle of a session (the smarthost stalls in DATA),
    it must hold no listening socket, in plaintext and in TLS mode."""

    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

    def check(self, tls):
        sh = Smarthost(self.tmp.path, tls=tls, stall_mid_data=True)
        self.addCleanup(sh.stop)
        conf = write_config(self.tmp.path, sh, name=tls + ".conf", account={"timeout": 3})
        p = subprocess.Popen([POSTIE, "-C", conf, "b@example.org"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        p.stdin.write(MSG + b"x" * 200000 + b"\r\n")
        p.stdin.close()
        deadline = time.monotonic() + 15
        while "DATA" not in [l.upper() for l in sh.command_lines()]:
            if p.poll() is not None:
                self.fail("postie ended before DATA: %r" % p.stderr.read())
            self.assertLess(time.monotonic(), deadline, "postie never reached DATA")
            time.sleep(0.02)
        mine = _socket_inodes(p.pid)
        self.assertTrue(mine, "postie holds no socket mid-session?")
        self.assertEqual(set(mine) & _listening_inodes(), set(),
                         "postie listens on a port while talking to the smarthost")
        p.wait(timeout=30)
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(sh.messages(), [])

    def test_plaintext_session_listens_on_nothing(self):
        self.check("none")

    def test_tls_session_listens_on_nothing(self):
        self.check("tls")


class HostileInputTests(Base):
    """Bad input is normal input: documented outcome, no crash, no hang, bounded memory."""

    @classmethod
    def setUpClass(cls):
        # allowed on top of the baseline run's peak RSS (ASan's quarantine keeps
        # freed memory mapped, so a sanitizer build gets more)
        cls.RSS_SLACK_KB = (64 if binary_is_sanitized(POSTIE) else 16) * 1024
        cls.env = dict(os.environ)
        if binary_is_sanitized(POSTIE):
            # a small quarantine, so that RSS shows what the program keeps
            opts = cls.env.get("ASAN_OPTIONS", "")
            cls.env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=4"

    def run_measured(self, args, stdin):
        argv = [POSTIE, "-C", self.conf] + args
        rc, out, err, rss, secs = measured_run(argv, stdin, timeout=60, env=self.env)
        self.assertGreaterEqual(rc, 0, "killed by signal %d: %r" % (-rc, err[-2000:]))
        self.assertNotIn(b"AddressSanitizer", err)
        self.assertNotIn(b"runtime error", err)
        return rc, err, rss

    def baseline_rss(self):
        if not hasattr(self, "_baseline"):
            rc, _, rss = self.run_measured(["b@example.org"], MSG)
            self.assertEqual(rc, EX_OK)
            self._baseline = rss
        return self._baseline

    def check(self, name, stdin, expect, args=("-t",)):
        """Runs postie on stdin; rc must be in expect; memory stays bounded.
        Returns (rc, the message received or None)."""
        base = self.baseline_rss()
        before = len(self.sh.messages())
        rc, err, rss = self.run_measured(list(args), stdin)
        self.assertIn(rc, expect, "%s: rc %d, stderr %r" % (name, rc, err[-500:]))
        self.assertLessEqual(rss, base + self.RSS_SLACK_KB,
                             "%s: peak RSS %d kB, baseline %d kB" % (name, rss, base))
        if rc != EX_OK:
            self.assertTrue(err.strip(), "%s: failed without a message" % name)
            self.assertEqual(len(self.sh.messages()), before)
            return rc, None
        m = self.sh.wait_messages(before + 1)[-1]
        self.assertTrue(is_canonical_crlf(m["data"]), "%s: bare CR or LF sent" % name)
        for line in m["data"].split(b"\r\n"):
            self.assertLessEqual(len(line), 998, "%s: line of %d octets sent" % (name, len(line)))
        return rc, m

    def test_nul_bytes(self):
        # in a header field: refused (65); in the body: removed, with a warning, and sent
        msg = b"To: b@example.org\r\nSubject: nul\x00here\r\n\r\nbody\r\n"
        self.check("NUL in a header", msg, (EX_DATAERR,))
        msg = b"To: b@example.org\r\nSubject: nul\r\n\r\nbody\x00with\x00nuls\r\n"
        rc, m = self.check("NUL in the body", msg, (EX_OK,))
        self.assertNotIn(b"\x00", m["data"])
        self.assertIn(b"bodywithnuls\r\n", m["data"])

    def test_long_header_lines(self):
        # under the 1 MB cap: folded at whitespace when it can be, else refused
        msg = b"To: b@example.org\r\nX-Words: " + b"word " * (180 * 1024) + b"\r\n\r\nbody\r\n"
        rc, m = self.check("900 KB header of words", msg, (EX_OK,))
        self.assertIn(b"X-Words: word", m["data"])
        msg = b"To: b@example.org\r\nX-Long: " + b"A" * 5000 + b"\r\n\r\nbody\r\n"
        self.check("5000-octet header line without whitespace", msg, (EX_DATAERR,))

    def test_two_megabyte_header_line(self):
        msg = b"To: b@example.org\r\nX-Huge: " + b"A" * (2 * 1024 * 1024) + b"\r\n\r\nbody\r\n"
        self.check("2 MB header line", msg, (EX_DATAERR,))  # header block over 1 MB

    def test_two_megabyte_to_header(self):
        addrs = b", ".join(b"user%d@example.org" % i for i in range(100000))
        msg = b"To: " + addrs[:2 * 1024 * 1024] + b"\r\n\r\nbody\r\n"
        # sent (in one transaction) or refused as unusable; never a crash
        rc, err, rss = self.run_measured(["-t"], msg)
        self.assertEqual(rc, EX_DATAERR, err[-500:])  # header block over 1 MB

    def test_200000_continuation_lines(self):
        msg = (b"To: b@example.org\r\nX-Folded: start\r\n" + b" folded continuation\r\n" * 200000
               + b"\r\nbody\r\n")
        self.check("200,000 continuation lines", msg, (EX_DATAERR,))  # over 1 MB

    def test_200000_folded_recipient_lines(self):
        msg = (b"To: b@example.org" + b",\r\n b@example.org" * 200000 + b"\r\n\r\nbody\r\n")
        self.check("200,000 folded To lines", msg, (EX_DATAERR,))  # over 1 MB
        msg = (b"To: b@example.org" + b",\r\n b@example.org" * 20000 + b"\r\n\r\nbody\r\n")
        rc, m = self.check("20,000 folded To lines", msg, (EX_OK,))
        self.assertEqual(m["rcpt_tos"], ["b@example.org"])  # de-duplicated

    def test_one_megabyte_of_binary_garbage(self):
        rnd = random.Random(20231129)
        garbage = bytes(rnd.getrandbits(8) for _ in range(1024 * 1024))
        # as the whole message with -t: no header, so no recipients (65)
        self.check("1 MB binary garbage (with -t)", garbage, (EX_DATAERR,))
        # as a body, or with the recipient on the command line: sent, NULs removed,
        # long lines re-encoded
        self.check("1 MB binary garbage (as body)", b"To: b@example.org\r\n\r\n" + garbage,
                   (EX_OK,))
        self.check("1 MB binary garbage (recipient argument)", garbage, (EX_OK,),
                   args=("b@example.org",))

    def test_truncated_input(self):
        for name, msg in (("header without newline", b"To: b@example.org\r\nSubject: trunc"),
                          ("header cut mid-name", b"To: b@example.org\r\nSubj"),
                          ("no body separator", b"To: b@example.org\r\nSubject: x\r\n"),
                          ("body without newline", b"To: b@example.org\r\n\r\nlast"),
                          ("continuation at EOF", b"To: b@example.org\r\nX: a\r\n ")):
            with self.subTest(name=name):
                rc, m = self.check(name, msg, (EX_OK,))
                self.assertEqual(m["rcpt_tos"], ["b@example.org"])
                self.assertTrue(m["data"].endswith(b"\r\n"))

    def test_empty_message(self):
        rc, m = self.check("0-byte message with a recipient", b"", (EX_OK,),
                           args=("b@example.org",))
        self.assertEqual(m["rcpt_tos"], ["b@example.org"])
        names = [l.split(b":", 1)[0].lower() for l in header_lines(m["data"]) if l]
        for h in (b"from", b"date", b"message-id"):
            self.assertEqual(names.count(h), 1, m["data"])
        rc, m = self.check("0-byte message with -t", b"", (EX_DATAERR,))

    def test_invalid_utf8(self):
        msg = (b"To: b@example.org\r\nSubject: \xc3\x28 \xff\xfe \xed\xa0\x80 \xf8\x88\x80\x80\x80\r\n"
               b"From: \xe2\x82 <a@example.com>\r\n\r\n\xc0\xaf \xe0\x80\xaf \xff\r\n")
        rc, m = self.check("invalid UTF-8", msg, (EX_OK,))
        self.assertEqual(m["rcpt_tos"], ["b@example.org"])
        self.assertIn("BODY=8BITMIME", m["mail_options"])

    def test_pathological_address_list(self):
        nested = b"To: " + b"(" * 50000 + b"x" + b")" * 50000 + b" b@example.org\r\n"
        quotes = b"Cc: " + b'"\\' * 50000 + b"@x\r\n"
        groups = b"Cc: " + b"g:" * 20000 + b"c@example.org" + b";" * 20000 + b"\r\n"
        angles = b"Cc: " + b"<" * 50000 + b"d@example.org" + b">" * 50000 + b"\r\n"
        for name, hdr in (("nested comments", nested), ("backslashes", quotes),
                          ("nested groups", groups), ("angle brackets", angles)):
            with self.subTest(name=name):
                self.check(name, hdr + b"\r\nbody\r\n", (EX_DATAERR,))

    def test_many_distinct_recipients_in_linear_time(self):
        """A 1 MB To: of 119,000 short distinct addresses (under the header cap):
        de-duplication must not be quadratic (it once took minutes of CPU).  Peak
        memory grows with the recipients (about 310 octets each), bounded by the
        header cap."""
        qdir = os.path.join(self.tmp.path, "queue")
        os.mkdir(qdir, 0o700)
        conf = write_config(self.tmp.path, self.sh, name="queue.conf",
                            global_={"queue_dir": qdir})
        parts, size, i = [], 4, 0
        while size < 1000000:
            a = b"%x@x" % i
            parts.append(a)
            size += len(a) + 2
            i += 1
        msg = b"To: " + b", ".join(parts) + b"\r\n\r\nbody\r\n"
        rc, out, err, rss, secs = measured_run([POSTIE, "-C", conf, "-t", "-odq"], msg,
                                               timeout=30, env=self.env)
        self.assertIn(rc, (EX_OK, EX_DATAERR), err[-500:])
        self.assertLess(secs, 15, "%d recipients took %.1f s" % (len(parts), secs))
        self.assertLess(rss, 56 * 1024 + self.RSS_SLACK_KB, "peak RSS %d kB" % rss)


class StdFdTests(Base):
    """T16: started with stderr (or stdout) closed, postie must not let a file it
    opens become descriptor 2 and write its messages into it."""

    def run_closed(self, fds, args, stdin):
        def close_them():
            for fd in fds:
                os.close(fd)
        p = subprocess.Popen([POSTIE, "-C", self.qconf] + args, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL if 1 not in fds else None,
                             stderr=subprocess.DEVNULL if 2 not in fds else None,
                             preexec_fn=close_them)
        p.communicate(stdin, timeout=30)
        return p.returncode

    def setUp(self):
        super().setUp()
        self.qdir = os.path.join(self.tmp.path, "queue")
        os.mkdir(self.qdir, 0o700)
        self.qconf = write_config(self.tmp.path, self.sh, name="queue.conf",
                                  global_={"queue_dir": self.qdir})

    def queued_bytes(self):
        data = b""
        for root, _, files in os.walk(self.qdir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data += fh.read()
        return data

    def test_warning_with_stderr_closed_goes_nowhere(self):
        # A NUL in the body makes postie warn on stderr; -odq queues the message.
        msg = MSG.replace(b"hello", b"hel\0lo")
        for fds in ((2,), (1, 2)):
            with self.subTest(closed=fds):
                rc = self.run_closed(fds, ["-odq", "b@example.org"], msg)
                self.assertEqual(rc, EX_OK)
                queued = self.queued_bytes()
                self.assertIn(b"hello", queued)           # the message is there ...
                self.assertNotIn(b"NUL", queued)          # ... and no warning text
                self.assertNotIn(b"postie:", queued)

    def test_error_with_stderr_closed_goes_nowhere(self):
        # A bad recipient is an error message on stderr and exit 64.
        rc = self.run_closed((2,), ["-odq", "bad<address"], MSG)
        self.assertEqual(rc, EX_USAGE)
        self.assertEqual(self.queued_bytes(), b"")


class SecretTests(Base):
    """The smarthost password never leaves postie except inside AUTH."""

    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.sh = Smarthost(self.tmp.path, auth=["%s:%s" % (USER, PASSWORD)],
                            auth_plaintext=True)
        self.addCleanup(self.sh.stop)
        self.conf = write_config(self.tmp.path, self.sh, account={
            "user": USER, "password": PASSWORD, "allow_plaintext_auth": True})

    def forms(self, password=PASSWORD):
        plain = base64.b64encode(("\0%s\0%s" % (USER, password)).encode()).decode()
        login = base64.b64encode(password.encode()).decode()
        return [password, plain, login, plain[:-4], login.rstrip("=")]

    def assertNoSecret(self, text, password=PASSWORD):
        for f in self.forms(password):
            self.assertNotIn(f, text)

    def test_verbose_transcript_has_no_password(self):
        for n, mech in enumerate(("login", "plain", "any")):
            with self.subTest(auth=mech):
                conf = write_config(self.tmp.path, self.sh, name=mech + ".conf", account={
                    "user": USER, "password": PASSWORD, "allow_plaintext_auth": True,
                    "auth": mech})
                res = run_postie(["-v", "b@example.org"], stdin=MSG, config=conf)
                self.assertEqual(res.returncode, EX_OK, res.err)
                self.assertEqual(self.sh.wait_messages(n + 1)[n]["auth_user"], USER)
                if mech != "any":
                    self.assertIn("AUTH " + mech.upper(), res.err)  # the transcript is there ...
                self.assertNoSecret(res.err)                         # ... without the secret
                self.assertNoSecret(res.out)

    def test_rejected_password_is_not_echoed(self):
        wrong = "Wrong-0a1b2c3d-secret"
        conf = write_config(self.tmp.path, self.sh, name="wrong.conf", account={
            "user": USER, "password": wrong, "allow_plaintext_auth": True})
        for args in (["-v", "b@example.org"], ["b@example.org"], ["-v", "-bv", "b@example.org"]):
            with self.subTest(args=args):
                res = run_postie(args, stdin=MSG, config=conf)
                self.assertNotEqual(res.returncode, EX_OK)
                self.assertNoSecret(res.err, wrong)
                self.assertNoSecret(res.out, wrong)
        self.assertEqual(self.sh.messages(), [])

    def test_password_command_output_is_not_echoed(self):
        script = os.path.join(self.tmp.path, "pw.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho '%s'\necho 'second line' >&2\n" % PASSWORD)
        os.chmod(script, 0o700)
        conf = write_config(self.tmp.path, self.sh, name="cmd.conf", account={
            "user": USER, "password_command": script, "allow_plaintext_auth": True})
        res = run_postie(["-v", "b@example.org"], stdin=MSG, config=conf)
        self.assertEqual(res.returncode, EX_OK, res.err)
        self.assertNoSecret(res.err)

    def test_config_error_does_not_echo_the_password(self):
        path = os.path.join(self.tmp.path, "broken.conf")
        for body in ('account "default" {\n host = "h"\n password = "%s" "%s"\n}\n',
                     'account "default" {\n host = "h"\n password = %s %s\n}\n',
                     'account "default" {\n host = "h"\n password = "%s",\n user = %s\n}\n',
                     'account "default" {\n host = "h"\n password = "%s\n passwd = %s\n'):
            with self.subTest(body=body):
                with open(path, "w") as f:
                    f.write(body % (PASSWORD, PASSWORD))
                os.chmod(path, 0o600)
                res = run_postie(["b@example.org"], stdin=MSG, config=path)
                self.assertEqual(res.returncode, EX_CONFIG, res)
                self.assertNotIn(PASSWORD, res.err)

    def test_config_readable_or_writable_by_other_is_refused(self):
        for key in ("password", "password_command"):
            for mode in (0o644, 0o604, 0o602, 0o666):
                with self.subTest(key=key, mode=oct(mode)):
                    conf = write_config(self.tmp.path, self.sh, name="open.conf", mode=mode,
                                        account={"user": USER, key: "/bin/echo " + PASSWORD
                                                 if key == "password_command" else PASSWORD,
                                                 "allow_plaintext_auth": True})
                    res = run_postie(["b@example.org"], stdin=MSG, config=conf)
                    self.assertEqual(res.returncode, EX_CONFIG, res)
                    self.assertNoSecret(res.err)
        self.assertEqual(self.sh.connections(), 0)
        # control: the same file at 0600 and 0640 works
        for mode in (0o600, 0o640):
            conf = write_config(self.tmp.path, self.sh, name="closed.conf", mode=mode,
                                account={"user": USER, "password": PASSWORD,
                                         "allow_plaintext_auth": True})
            res = run_postie(["b@example.org"], stdin=MSG, config=conf)
            self.assertEqual(res.returncode, EX_OK, res.err)

    def test_syslog_has_no_password(self):
        """syslog(3) goes to /dev/log: catch it with a socket of our own."""
        if not IS_ROOT:
            # Without root there is no way to own /dev/log; the transcript tests
            # above cover the same log functions (log.c writes the same text).
            self.assertNoSecret(self.postie(["-v", "b@example.org"], stdin=MSG).err)
            return
        sockpath = os.path.join(self.tmp.path, "log.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sockpath)
        self.addCleanup(s.close)
        s.settimeout(10)
        conf = write_config(self.tmp.path, self.sh, name="syslog.conf",
                            global_={"syslog": True},
                            account={"user": USER, "password": PASSWORD,
                                     "allow_plaintext_auth": True})
        wrong = write_config(self.tmp.path, self.sh, name="syslog-wrong.conf",
                             global_={"syslog": True},
                             account={"user": USER, "password": PASSWORD + "x",
                                      "allow_plaintext_auth": True})
        script = ("mount --bind %s /dev/log && exec \"$@\"" % sockpath)
        if not os.path.exists("/dev/log"):
            open("/dev/log", "w").close()
            self.addCleanup(os.unlink, "/dev/log")
        logs = []
        for c in (conf, wrong):
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                    POSTIE, "-C", c, "-v", "b@example.org"]
            p = subprocess.run(argv, input=MSG, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
            self.assertNotIn(b"mount:", p.stderr)
            s.setblocking(False)
            while True:
                try:
                    logs.append(s.recv(65536).decode("utf-8", "replace"))
                except BlockingIOError:
                    break
        self.assertTrue(logs, "nothing was logged to syslog")
        text = "\n".join(logs)
        self.assertIn("postie", text)
        self.assertNoSecret(text)
        self.assertNoSecret(text, PASSWORD + "x")


class SetgidTests(unittest.TestCase):
    """The setgid install: the group is used for the system configuration and
    the queue only; never for anything the user names."""

    @classmethod
    def setUpClass(cls):
        if not IS_ROOT:
            raise AssertionError("the setgid tests need root (chown to a foreign group, "
                                 "setuid to nobody); run the suite as root")
        cls.tmp = TempDir()
        os.chmod(cls.tmp.path, 0o755)
        cls.plain = os.path.join(cls.tmp.path, "postie-plain")
        cls.sgid = os.path.join(cls.tmp.path, "postie-sgid")
        for p in (cls.plain, cls.sgid):
            shutil.copy(POSTIE, p)
            os.chmod(p, 0o755)
        os.chown(cls.sgid, 0, SGID_GID)
        os.chmod(cls.sgid, 0o2755)
        st = os.stat(cls.sgid)
        assert st.st_mode & stat.S_ISGID and st.st_gid == SGID_GID
        assert not os.statvfs(cls.tmp.path).f_flag & os.ST_NOSUID

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.dir = os.path.join(self.tmp.path, self.id().rsplit(".", 1)[-1])
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.sh = Smarthost(self.dir)
        self.addCleanup(self.sh.stop)

    def spawn(self, binary, args, env=None, stdin=subprocess.PIPE):
        e = {"PATH": "/usr/bin:/bin"}
        e.update(env or {})
        return subprocess.Popen([binary] + args, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=e, cwd=self.dir,
                                preexec_fn=as_user(NOBODY_UID, NOGROUP_GID))

    @staticmethod
    def gids(pid):
        """(real, effective, saved, fs) group ids of a running process."""
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Gid:"):
                    return tuple(int(x) for x in line.split()[1:5])
        return None

    def wait_gids(self, p, want):
        """Polls /proc until the process shows the group ids want (or exits)."""
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                seen = self.gids(p.pid)
            except OSError:
                break
            if seen == want:
                return seen
            time.sleep(0.005)
        return seen

    def finish(self, p, stdin=b""):
        out, err = p.communicate(stdin, timeout=60)
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def test_only_root_deletes_queued_mail_while_setgid(self):
        p = self.spawn(self.sgid, ["--delete", "20261128000000-00001-0000000000"],
                       stdin=subprocess.DEVNULL)
        code, _, err = self.finish(p, None)
        self.assertIn("only root may remove queued messages", err)
        # In a sanitizer build, LeakSanitizer cannot stop the world of a setgid
        # (non-dumpable) process and ends it with status 1 at exit, ignoring
        # ASAN_OPTIONS; the plain build's run checks the status.
        if "LeakSanitizer has encountered a fatal error" not in err:
            self.assertEqual(code, 77, err)

    def test_the_copy_really_runs_with_the_group(self):
        """Control: without -C the process holds the group while it reads stdin."""
        p = self.spawn(self.sgid, ["-t"])
        seen = self.wait_gids(p, (NOGROUP_GID, SGID_GID, SGID_GID, SGID_GID))
        self.finish(p, MSG)
        self.assertEqual(seen, (NOGROUP_GID, SGID_GID, SGID_GID, SGID_GID))

    def test_C_drops_the_group_for_good_before_reading(self):
        conf = write_config(self.dir, self.sh, mode=0o644)
        os.chown(conf, NOBODY_UID, NOGROUP_GID)
        p = self.spawn(self.sgid, ["-C", conf, "-t"])
        want = (NOGROUP_GID,) * 4
        seen = self.wait_gids(p, want)
        rc, out, err = self.finish(p, MSG)
        self.assertEqual(seen, want, "group ids while reading the message")
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(self.sh.wait_messages(1)[0]["rcpt_tos"], ["b@example.org"])

    def test_C_group_readable_file_is_not_read_with_the_group(self):
        secret = os.path.join(self.dir, "group-only.conf")
        marker = "MARKER-6d1f-group-only"
        with open(secret, "w") as f:
            f.write('hostname = "%s"\n%s = 1\naccount "default" {\n host = "127.0.0.1"\n'
                    ' port = %d\n tls = "none"\n}\n' % (marker, marker, self.sh.port))
        os.chown(secret, 0, SGID_GID)
        os.chmod(secret, 0o640)
        p = self.spawn(self.sgid, ["-C", secret, "b@example.org"])
        rc, out, err = self.finish(p, MSG)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertNotIn(marker, err + out)
        self.assertEqual(self.sh.connections(), 0)

    def test_C_etc_shadow_prints_no_line_of_it(self):
        with open("/etc/shadow") as f:
            fields = [l.split(":", 2)[:2] for l in f if l.count(":") >= 2]
        for binary in (self.plain, self.sgid):
            for args in (["-C", "/etc/shadow", "b@example.org"], ["-C/etc/shadow", "-bv", "x@y"],
                         ["-C", "/etc/shadow", "-bp"], ["-C", "/etc/gshadow", "-q"]):
                with self.subTest(binary=os.path.basename(binary), args=args):
                    p = self.spawn(binary, args)
                    rc, out, err = self.finish(p, MSG)
                    self.assertEqual(rc, EX_CONFIG, err)
                    for name, hash_ in fields:
                        self.assertNotIn("%s:%s" % (name, hash_[:8]), err + out)
                        if len(hash_) > 8:
                            self.assertNotIn(hash_, err + out)
                    self.assertLessEqual(err.count("\n"), 1, err)

    def test_user_config_in_home_is_ignored_while_setgid(self):
        home = os.path.join(self.dir, "home")
        os.makedirs(os.path.join(home, ".config", "postie"))
        conf = write_config(os.path.join(home, ".config", "postie"), self.sh, mode=0o644)
        for root, dirs, files in os.walk(home):
            for d in dirs:
                os.chown(os.path.join(root, d), NOBODY_UID, NOGROUP_GID)
            for f in files:
                os.chown(os.path.join(root, f), NOBODY_UID, NOGROUP_GID)
        os.chown(home, NOBODY_UID, NOGROUP_GID)
        env = {"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config")}
        # control: the plain binary as nobody uses it
        rc, out, err = self.finish(self.spawn(self.plain, ["b@example.org"], env=env), MSG)
        self.assertEqual(rc, EX_OK, err)
        self.sh.wait_messages(1)
        # the setgid copy must not
        connections = self.sh.connections()
        rc, out, err = self.finish(self.spawn(self.sgid, ["b@example.org"], env=env), MSG)
        self.assertEqual(self.sh.connections(), connections, (rc, err))
        self.assertEqual(len(self.sh.messages()), 1)

    def test_environment_is_not_trusted_while_setgid(self):
        """TZ (like HOME, TMPDIR, locale and search paths) is dropped while setgid:
        the Date: zone comes from the system, not from the caller's TZ."""
        conf = write_config(self.dir, self.sh, mode=0o644)
        os.chown(conf, NOBODY_UID, NOGROUP_GID)
        system_zone = time.strftime("%z", time.localtime())
        evil = "-0713" if system_zone != "-0713" else "+0529"
        tz = "FAKE%s%s:%s" % ("+" if evil.startswith("-") else "-", evil[1:3], evil[3:])
        msg = message({"To": "b@example.org", "Subject": "tz"}, "hi\n")
        for binary, want in ((self.plain, evil), (self.sgid, None)):
            rc, out, err = self.finish(self.spawn(binary, ["-C", conf, "-t"], env={"TZ": tz}),
                                       msg)
            self.assertEqual(rc, EX_OK, err)
            data = self.sh.messages()[-1]["data"]
            date = [l for l in header_lines(data) if l.lower().startswith(b"date:")]
            self.assertEqual(len(date), 1, data)
            if want is not None:   # control: the plain binary honours TZ
                self.assertTrue(date[0].endswith(want.encode()), date)
            else:
                self.assertFalse(date[0].endswith(evil.encode()), date)

    def test_no_core_dumps_and_no_ptrace_while_holding_secrets(self):
        """After the configuration is read the process is not dumpable (its /proc
        files belong to root, so the same user cannot ptrace it or read its
        memory) and RLIMIT_CORE is 0."""
        conf = write_config(self.dir, self.sh, mode=0o600,
                            account={"user": USER, "password": PASSWORD})
        os.chown(conf, NOBODY_UID, NOGROUP_GID)
        p = self.spawn(self.plain, ["-C", conf, "-t"])
        deadline = time.monotonic() + 20
        owner = None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                owner = os.stat("/proc/%d/mem" % p.pid).st_uid
            except OSError:
                break
            if owner == 0:
                break
            time.sleep(0.005)
        with open("/proc/%d/limits" % p.pid) as f:
            core = [l for l in f if l.startswith("Max core file size")]
        p.kill()
        p.communicate()
        self.assertEqual(owner, 0, "/proc/PID/mem still belongs to the user")
        self.assertEqual(core[0].split()[4:6], ["0", "0"], core)

    def test_password_command_keeps_the_group_for_the_system_configuration(self):
        """T12/T14 counterpart: the system configuration is read with the group,
        and its password_command runs with it too (sh -p), so it may read a
        group-only secret.  The system configuration's path is compiled in
        (SYSCONFDIR), so this runs a copy of the setgid binary whose path
        literal points at a scratch directory of the same length; the real
        SYSCONFDIR is never touched."""
        out = subprocess.run([POSTIE, "--version"], capture_output=True).stdout.decode()
        sysconf = re.search(r"^configuration: (/\S+/postie\.conf)$", out, re.M).group(1)
        dirlen = len(sysconf) - len("/postie.conf")
        if dirlen < len("/tmp/") + 6:
            self.skipTest("SYSCONFDIR %s is too short to stand in for" % sysconf[:dirlen])
        for _ in range(100):
            scratch = "/tmp/" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz")
                                        for _ in range(dirlen - len("/tmp/")))
            try:
                os.mkdir(scratch, 0o755)
                break
            except FileExistsError:
                continue
        self.addCleanup(shutil.rmtree, scratch, True)
        with open(POSTIE, "rb") as f:
            image = f.read()
        self.assertIn(sysconf.encode(), image)
        patched = os.path.join(self.dir, "postie-sgid-sysconf")
        with open(patched, "wb") as f:
            f.write(image.replace(sysconf.encode(), (scratch + "/postie.conf").encode()))
        os.chown(patched, 0, SGID_GID)
        os.chmod(patched, 0o2755)

        secret = os.path.join(scratch, "secret")          # readable only with the group
        with open(secret, "w") as f:
            f.write(PASSWORD + "\n")
        os.chown(secret, 0, SGID_GID)
        os.chmod(secret, 0o640)
        seen = os.path.join(scratch, "egid")               # what the command ran with
        record = "id -g >%s; " % seen
        plain_script = os.path.join(scratch, "plain.sh")   # a shell script: sh drops it
        keeping_script = os.path.join(scratch, "keep.sh")  # #!/bin/sh -p keeps it
        for path, shebang in ((plain_script, "#!/bin/sh"), (keeping_script, "#!/bin/sh -p")):
            with open(path, "w") as f:
                f.write("%s\n%scat %s\n" % (shebang, record, secret))
            os.chmod(path, 0o755)
        cases = (("cat %s" % secret, True),       # a program: runs with the group
                 (keeping_script, True),
                 (plain_script, False))           # /bin/sh resets the effective group
        conf = os.path.join(scratch, "postie.conf")
        for n, (command, works) in enumerate(cases):
            with self.subTest(password_command=os.path.basename(command)):
                with open(seen, "w") as f:
                    pass
                os.chmod(seen, 0o666)
                sh = Smarthost(self.dir, auth=["%s:%s" % (USER, PASSWORD)], auth_plaintext=True)
                self.addCleanup(sh.stop)
                cmd = record + command if command.startswith("cat") else command
                with open(conf, "w") as f:
                    f.write('queue_dir = ""\naliases = ""\nsyslog = false\n'
                            'account "default" {\n host = "127.0.0.1"\n port = %d\n'
                            ' tls = "none"\n allow_plaintext_auth = true\n user = "%s"\n'
                            ' password_command = "%s"\n}\n' % (sh.port, USER, cmd))
                os.chown(conf, 0, SGID_GID)
                os.chmod(conf, 0o640)
                p = self.spawn(patched, ["-t"])
                rc, out, err = self.finish(p, MSG)
                self.assertNotIn(PASSWORD, err + out)
                with open(seen) as f:
                    egid = f.read().strip()
                if works:
                    if "LeakSanitizer has encountered a fatal error" not in err:
                        self.assertEqual(rc, EX_OK, err)
                    self.assertEqual(sh.wait_messages(1)[0]["auth_user"], USER, err)
                    self.assertEqual(egid, str(SGID_GID))
                else:
                    if "LeakSanitizer has encountered a fatal error" not in err:
                        self.assertEqual(rc, EX_CONFIG, err)
                    self.assertIn("password_command failed", err)
                    self.assertEqual(egid, str(NOGROUP_GID))
                    self.assertEqual(sh.messages(), [])

    def test_root_caller_drops_the_group_too(self):
        """root running the setgid copy with -C: the group is dropped (root could
        take it back, so the regain check does not apply) and the send works."""
        conf = write_config(self.dir, self.sh, mode=0o600)
        p = subprocess.Popen([self.sgid, "-C", conf, "-t"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir,
                             env={"PATH": "/usr/bin:/bin"})
        seen = self.wait_gids(p, (0, 0, 0, 0))
        rc, out, err = self.finish(p, MSG)
        self.assertEqual(seen, (0, 0, 0, 0))
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(self.sh.wait_messages(1)[0]["rcpt_tos"], ["b@example.org"])


if __name__ == "__main__":
    unittest.main()
