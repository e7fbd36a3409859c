"""The command line of the real binary: --help, --version, refused and unknown
flags, missing values, invalid values, the mailq/newaliases personalities,
and the flags that are accepted and ignored.

Only modes that need no smarthost are used here (usage paths, -bp with the
queue off, -bi with no aliases file): delivery is tested elsewhere.
"""

import os
import re
import subprocess
import unittest

from harness import POSTIE, TempDir, run_postie, write_config

EX_OK, EX_USAGE, EX_CONFIG = 0, 64, 78

# Every flag postie documents, grouped as in its --help.
IMPLEMENTED = ["-t", "-i", "-oi", "-f", "-r", "-F", "-C", "-v", "-N", "-R", "-V", "-B", "-bm",
               "-bp", "-q", "-qI", "-bv", "-bs", "-bi", "-I", "-odq", "-odd", "-oem", "-oew",
               "-oep", "-oeq", "--due", "--delete", "--help", "--version", "--"]
IGNORED = ["-odi", "-odb", "-om", "-o<x>", "-O", "-L", "-G", "-U", "-h", "-n", "-m", "-A", "-d",
           "-X"]
REFUSED = ["-bd", "-bD", "-bh", "-bH", "-bt", "-bP"]
VALUE_FLAGS = ["-f", "-r", "-F", "-C", "-N", "-R", "-V", "-B", "-b", "-o", "-O", "-L", "-h",
               "-A", "-d", "-X"]


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        # No user configuration from the real home directory.
        cls.env = {"HOME": cls.tmp.path}
        cls.conf = write_config(cls.tmp.path, account={"host": "127.0.0.1", "tls": "none"},
                                global_={"aliases": "", "hostname": "test.example"})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def postie(self, args, config=None, **kw):
        kw.setdefault("env", self.env)
        return run_postie(args, config=config, **kw)

    def assertUsage(self, res, *words):
        """Exit 64, one line on stderr naming what was wrong, nothing on stdout."""
        self.assertEqual(res.returncode, EX_USAGE, res)
        self.assertEqual(res.stdout, b"", res)
        lines = res.err.splitlines()
        self.assertEqual(len(lines), 1, res.err)
        self.assertTrue(re.match(r"^[a-z]+: ", lines[0]), lines[0])
        for w in words:
            self.assertIn(w, lines[0])


class HelpVersion(Base):
    def test_help_lists_every_flag(self):
        res = self.postie(["--help"])
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertEqual(res.stderr, b"")
        for flag in IMPLEMENTED + IGNORED + REFUSED + ["mailq", "newaliases"]:
            self.assertRegex(res.out, r"(^|[\s,(\[])%s($|[\s,<\]])" % re.escape(flag),
                             "--help does not list %s" % flag)
        for section in ("Sending:", "Other modes:", "Accepted and ignored:", "Refused"):
            self.assertIn(section, res.out)
        for line in res.out.splitlines():
            self.assertLessEqual(len(line), 80, line)

    def test_help_wins_over_other_options_and_reads_no_config(self):
        res = self.postie(["-t", "--help"], config="/nonexistent/postie.conf")
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("usage:", res.out)

    def test_version(self):
        res = self.postie(["--version"])
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertRegex(res.out, r"(?m)^postie \d+\.\d+")
        self.assertRegex(res.out, r"(?m)^libESMTP \d+\.\d+")
        self.assertRegex(res.out, r"(?m)^libConfuse \d+\.\d+")
        self.assertRegex(res.out, r"(?m)^OpenSSL \d+\.\d+")

    def test_version_says_how_libconfuse_is_linked(self):
        # "linked statically" exactly when the binary needs no libconfuse.so
        # (readelf: binutils comes with the compiler).
        res = self.postie(["--version"])
        dyn = subprocess.run(["readelf", "-d", POSTIE], stdout=subprocess.PIPE, text=True,
                             check=True).stdout
        self.assertIn("(NEEDED)", dyn)
        shared = re.search(r"\(NEEDED\).*\[libconfuse\.so", dyn) is not None
        static = re.search(r"(?m)^libConfuse \d+\.\d+\S* \(linked statically\)$", res.out)
        self.assertEqual(static is not None, not shared, res.out + dyn)


class Refused(Base):
    def test_refused_modes(self):
        for flag in REFUSED:
            with self.subTest(flag=flag):
                res = self.postie([flag], config=self.conf)
                self.assertUsage(res, flag, "not supported")
        res = self.postie(["-bd"])
        self.assertUsage(res, "-bd (run as a daemon) is not supported: postie is not an MTA")
        # separate form too
        self.assertUsage(self.postie(["-b", "t"]), "-bt", "not supported")

    def test_unknown_options(self):
        for args, flag in ((["-x", "a@example.com"], "-x"), (["-S"], "-S"), (["-tz"], "-z"),
                           (["--frobnicate"], "--frobnicate"), (["-bz"], "-bz"),
                           (["-qRfoo"], "-qRfoo"), (["-p", "x"], "-p")):
            with self.subTest(args=args):
                self.assertUsage(self.postie(args, config=self.conf), "unknown" if flag not in (
                    "-qRfoo",) else "unsupported", flag)

    def test_refused_before_reading_input_or_config(self):
        # the usage error comes first, even with a configuration that is broken
        res = self.postie(["-bt"], config="/nonexistent/postie.conf", stdin=b"x" * 100000)
        self.assertUsage(res, "-bt")


class Values(Base):
    def test_missing_values(self):
        for flag in VALUE_FLAGS:
            with self.subTest(flag=flag):
                res = self.postie(["-t", flag], config=self.conf)
                self.assertUsage(res, "option %s needs a value" % flag)

    def test_bad_sender(self):
        for bad in ("a@example.com\r\nRCPT TO:<x@y>", "a@example.com\n", "<a@example.com>",
                    '"a@example.com', "-oQ/tmp", "x" * 321 + "@example.com"):
            for args in (["-f", bad], ["-f" + bad], ["-r", bad]):
                with self.subTest(args=args):
                    res = self.postie(args + ["b@example.com"], config=self.conf)
                    self.assertUsage(res, "invalid sender for " + args[0][:2])

    def test_bad_recipient(self):
        for bad in ("b@example.com\r\nDATA", "<b@example.com>", 'b"@example.com', "b@x>",
                    "ok@example.com,<evil@example.com>"):
            with self.subTest(bad=bad):
                self.assertUsage(self.postie([bad], config=self.conf), "invalid recipient")

    def test_bad_values(self):
        for args, flag in ((["-B", "8BIT"], "-B"), (["-B9"], "-B"), (["-N", "always"], "-N"),
                           (["-N", "never,success"], "-N"), (["-R", "body"], "-R"),
                           (["-V", "has space"], "-V"), (["-V", "x" * 101], "-V"),
                           (["-F", "x\nBcc: evil@example.com"], "-F"), (["-C", ""], "-C"),
                           (["-qI"], "-qI")):
            with self.subTest(args=args):
                self.assertUsage(self.postie(args + ["b@example.com"], config=self.conf), flag)

    def test_no_recipients(self):
        self.assertUsage(self.postie([], config=self.conf, stdin=b"To: a@example.com\n\nx\n"),
                         "no recipients")
        self.assertUsage(self.postie(["-i", "-oem"], config=self.conf), "no recipients")

    def test_due_and_delete_need_their_context(self):
        self.assertUsage(self.postie(["--due", "-bp"], config=self.conf), "--due")
        self.assertUsage(self.postie(["--delete"], config=self.conf), "--delete")

    def test_error_message_cannot_forge_lines(self):
        res = self.postie(["-x\nFAKE"], config=self.conf)
        self.assertEqual(res.returncode, EX_USAGE)
        self.assertEqual(len(res.err.splitlines()), 1, res.err)


class Modes(Base):
    def test_bp_with_queue_off(self):
        res = self.postie(["-bp"], config=self.conf)
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("Mail queue is empty", res.out)

    def test_mailq_personality(self):
        for argv0 in ("mailq", "/usr/bin/mailq", "/usr/sbin/mailq"):
            with self.subTest(argv0=argv0):
                res = self.postie([], config=self.conf, argv0=argv0)
                self.assertEqual(res.returncode, EX_OK, res)
                self.assertIn("Mail queue is empty", res.out)

    def test_newaliases_personality(self):
        for argv0 in ("newaliases", "/usr/bin/newaliases"):
            with self.subTest(argv0=argv0):
                res = self.postie([], config=self.conf, argv0=argv0)
                self.assertEqual(res.returncode, EX_OK, res)
                self.assertIn("no aliases file is configured", res.out)
        for flag in ("-bi", "-I"):
            res = self.postie([flag], config=self.conf)
            self.assertEqual(res.returncode, EX_OK, res)
            self.assertIn("no aliases file is configured", res.out)

    def test_sendmail_personality_wants_recipients(self):
        for argv0 in ("sendmail", "/usr/sbin/sendmail", "/usr/lib/sendmail", "postie"):
            with self.subTest(argv0=argv0):
                res = self.postie([], config=self.conf, argv0=argv0)
                self.assertUsage(res, "no recipients")
                self.assertTrue(res.err.startswith(os.path.basename(argv0) + ": "), res.err)

    def test_ignored_flags_are_accepted(self):
        target = os.path.join(self.tmp.path, "traffic.log")
        args = ["-bp", "-odi", "-odb", "-om", "-oQ" + self.tmp.path + "/q", "-oA/nonexistent",
                "-O", "QueueDirectory=/tmp", "-OX=1", "-L", "tag", "-Ltag", "-G", "-U", "-h", "5",
                "-n", "-m", "-Am", "-A", "c", "-d0.1", "-d", "5", "-X", target, "-X" + target,
                "-v"]
        res = self.postie(args, config=self.conf)
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("Mail queue is empty", res.out)
        self.assertFalse(os.path.exists(target), "-X created its file")
        self.assertFalse(os.path.exists(self.tmp.path + "/q"))

    def test_attached_and_separate_forms_reach_the_config(self):
        for args in (["-C", self.conf, "-bp"], ["-C" + self.conf, "-bp"],
                     ["-b", "p", "-C", self.conf], ["-C", self.conf, "-bp", "--", "-C/nonexistent"]):
            with self.subTest(args=args):
                res = self.postie(args)
                self.assertEqual(res.returncode, EX_OK, res)
                self.assertIn("Mail queue is empty", res.out)

    def test_queue_run_with_queue_off_is_a_config_error(self):
        # -q, -q30m and -qIid are all accepted; the queue being off is the
        # configuration's problem, not the command line's.
        for args in (["-q"], ["-q30m"], ["-qIabc"], ["-q", "--due"]):
            with self.subTest(args=args):
                res = self.postie(args, config=self.conf)
                self.assertEqual(res.returncode, EX_CONFIG, res)
                self.assertIn("queue", res.err)


if __name__ == "__main__":
    unittest.main()
