"""The configuration file through the real binary: every error exits 78 with
"file:line:", permission rules, the lookup order, password_command failures.

Most runs use -bp with the queue off ("Mail queue is empty"), a mode that
reads the configuration and needs no smarthost.
"""

import os
import re
import subprocess
import unittest

from harness import POSTIE, Smarthost, TempDir, message, run_postie, write_config

EX_OK, EX_USAGE, EX_CONFIG = 0, 64, 78
SECRET = "Pw-7c1e-not-for-eyes"
GOOD_ACCOUNT = 'account "default" {\n  host = "127.0.0.1"\n  tls = "none"\n}\n'

# (text, line of the error, words the message must hold)
ERRORS = [
    ('queue_dir = ""\nbogus = 1\n', 2, ["no such option 'bogus'"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  tls = "ssl"\n}\n', 4, ["tls"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  auth = "cram"\n}\n', 4, ["auth"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  port = 70000\n}\n', 4, ["port"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  port = 0\n}\n', 4, ["port"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  timeout = 0\n}\n', 4, ["timeout"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  timeout = 9999\n}\n', 4,
     ["timeout"]),
    ('queue_dir = ""\nqueue_lifetime = "5 days"\n', 2, ["queue_lifetime"]),
    ('queue_dir = ""\naccount "a" {\n  port = 25\n}\n', 4, ["host is required"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example:587"\n}\n', 3, ["host"]),
    ('queue_dir = ""\naccount "a" {\n  host = "[h.example]"\n}\n', 3, ["IPv6"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  user = "u"\n}\n', 5,
     ["neither password nor password_command"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  user = "u"\n  password = "p"\n'
     '  password_command = "echo p"\n}\n', 7, ["not both"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  tls_key_file = "/k"\n}\n', 5,
     ["tls_key_file"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  auth = "login"\n}\n', 5,
     ["needs a user"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n}\naccount "a" {\n'
     '  host = "i.example"\n}\n', 5, ["duplicate title 'a'"]),
    ('queue_dir = ""\naccount {\n  host = "h.example"\n}\n', 2, ["missing title"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n', 2, ["premature end of file"]),
    ('queue_dir = ""\nsyslog = maybe\n', 2, ["syslog"]),
    ('queue_dir = ""\nhostname = "not a name"\n', 2, ["hostname"]),
    ('queue_dir = ""\naccount "a" {\n  host = "h.example"\n  from = "<a@b>"\n}\n', 4,
     ["from"]),
    ('queue_dir = ""\ninclude("/etc/passwd")\n', 2, ["include"]),
]


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.home = os.path.join(self.tmp.path, "home")
        os.mkdir(self.home)
        self.env = {"HOME": self.home}

    def write(self, text, name="postie.conf", mode=0o600):
        path = os.path.join(self.tmp.path, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def postie(self, args, config=None, **kw):
        kw.setdefault("env", self.env)
        return run_postie(args, config=config, **kw)

    def assertConfigError(self, res, *words):
        self.assertEqual(res.returncode, EX_CONFIG, res)
        lines = res.err.splitlines()
        self.assertEqual(len(lines), 1, res.err)
        for w in words:
            self.assertIn(w, lines[0])
        self.assertNotIn(SECRET, res.err + res.out)


class Errors(Base):
    def test_every_error_names_file_and_line(self):
        for text, line, words in ERRORS:
            with self.subTest(text=text):
                path = self.write(text)
                res = self.postie(["-bp"], config=path)
                self.assertConfigError(res, "%s:%d: " % (path, line), *words)
                self.assertRegex(res.err, r"^postie: %s:%d: " % (re.escape(path), line))

    def test_errors_stop_every_mode(self):
        path = self.write('queue_dir = ""\nbogus = 1\n')
        for args in (["-bp"], ["-bi"], ["-q"], ["-t"], ["a@example.com"], ["-bv", "a@b.c"],
                     ["-bs"]):
            with self.subTest(args=args):
                res = self.postie(args, config=path, stdin=b"To: a@example.com\n\nhi\n")
                self.assertConfigError(res, "%s:2:" % path)
                self.assertEqual(res.stdout, b"")

    def test_values_are_not_echoed(self):
        for text in ('account "a" {\n host = "h"\n password = "x" "%s"\n}\n',
                     'account "a" {\n host = "h"\n user = u\n password = %s %s\n}\n',
                     'account "a" {\n host = "h"\n password = "%s",\n user = u\n}\n',
                     'account "a" {\n host = "h"\n user = u\n password = "%s\n'):
            with self.subTest(text=text):
                path = self.write(text.replace("%s", SECRET))
                res = self.postie(["-bp"], config=path)
                self.assertConfigError(res, path + ":")

    def test_good_file_works(self):
        path = self.write('queue_dir = ""\n' + GOOD_ACCOUNT)
        res = self.postie(["-bp"], config=path)
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("Mail queue is empty", res.out)


class Files(Base):
    def test_missing_C_file(self):
        path = os.path.join(self.tmp.path, "nope.conf")
        res = self.postie(["-bp"], config=path)
        self.assertConfigError(res, "cannot read %s: No such file or directory" % path)

    def test_C_directory(self):
        res = self.postie(["-bp"], config=self.tmp.path)
        self.assertConfigError(res, "not a regular file")

    def test_C_fifo_does_not_hang(self):
        fifo = os.path.join(self.tmp.path, "fifo")
        os.mkfifo(fifo)
        res = self.postie(["-bp"], config=fifo, timeout=20)
        self.assertConfigError(res, "not a regular file")

    def test_password_files_readable_by_others_are_refused(self):
        for key, value in (("password", SECRET), ("password_command", "echo " + SECRET)):
            for mode in (0o644, 0o604, 0o606):
                with self.subTest(key=key, mode=oct(mode)):
                    path = self.write('queue_dir = ""\naccount "a" {\n host = "h.example"\n'
                                      ' user = "u"\n %s = "%s"\n}\n' % (key, value), mode=mode)
                    res = self.postie(["-bp"], config=path)
                    self.assertConfigError(res, path, "other users")
            # control: owner-only and group-readable files are fine
            for mode in (0o600, 0o640):
                with self.subTest(key=key, mode=oct(mode)):
                    path = self.write('queue_dir = ""\naccount "a" {\n host = "h.example"\n'
                                      ' user = "u"\n %s = "%s"\n}\n' % (key, value), mode=mode)
                    res = self.postie(["-bp"], config=path)
                    self.assertEqual(res.returncode, EX_OK, res)

    def test_world_writable_files_are_refused(self):
        path = self.write('queue_dir = ""\n', mode=0o666)
        res = self.postie(["-bp"], config=path)
        self.assertConfigError(res, "writable by other users")
        os.chmod(path, 0o644)
        self.assertEqual(self.postie(["-bp"], config=path).returncode, EX_OK)

    def test_user_file_in_home_is_used(self):
        d = os.path.join(self.home, ".config", "postie")
        os.makedirs(d)
        path = os.path.join(d, "postie.conf")
        with open(path, "w") as f:
            f.write('queue_dir = ""\nbogus_in_home = 1\n')
        os.chmod(path, 0o600)
        res = self.postie(["-bp"])
        self.assertConfigError(res, "%s:2: no such option 'bogus_in_home'" % path)
        # -C wins over it
        good = self.write('queue_dir = ""\n')
        self.assertEqual(self.postie(["-bp"], config=good).returncode, EX_OK)
        with open(path, "w") as f:
            f.write('queue_dir = ""\n')
        res = self.postie(["-bp"])
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("Mail queue is empty", res.out)

    def test_files_owned_by_someone_else(self):
        if os.geteuid() != 0:
            # Without root no file owned by another ordinary user can be made;
            # a root-owned file passes the owner check and fails to parse.
            res = self.postie(["-bp"], config="/etc/hostname")
            self.assertConfigError(res, "/etc/hostname:1: ")
            return
        path = self.write('queue_dir = ""\n', mode=0o644)
        os.chown(path, 12345, 12345)
        os.chmod(self.tmp.path, 0o755)

        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)

        p = subprocess.run([POSTIE, "-C", path, "-bp"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={"HOME": self.home, "PATH": "/usr/bin:/bin"},
                           preexec_fn=as_nobody, timeout=60)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn(b"owned by uid 12345", p.stderr)
        # root may use it
        self.assertEqual(self.postie(["-bp"], config=path).returncode, EX_OK)
        # a user file in ~/.config owned by someone else is refused, even for root
        d = os.path.join(self.home, ".config", "postie")
        os.makedirs(d)
        user = os.path.join(d, "postie.conf")
        with open(user, "w") as f:
            f.write('queue_dir = ""\n')
        os.chown(user, 12345, 12345)
        res = self.postie(["-bp"])
        self.assertConfigError(res, "owned by uid 12345")

    def test_unreadable_C_file_shows_no_content(self):
        if os.geteuid() != 0:
            res = self.postie(["-bp"], config="/etc/shadow")
            self.assertEqual(res.err, "postie: cannot read /etc/shadow: Permission denied\n")
            return
        path = self.write('hostname = "marker-5f2a.example"\nmarker-5f2a = 1\n', mode=0o600)
        os.chmod(self.tmp.path, 0o755)

        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)

        p = subprocess.run([POSTIE, "-C", path, "-bp"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={"HOME": "/", "PATH": "/usr/bin:/bin"},
                           preexec_fn=as_nobody, timeout=60)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertEqual(p.stderr.decode(),
                         "postie: cannot read %s: Permission denied\n" % path)


class PasswordCommand(Base):
    def run_with(self, command, timeout=None):
        with Smarthost(self.tmp.path, auth=["alice:" + SECRET], auth_plaintext=True) as sh:
            account = {"user": "alice", "password_command": command,
                       "allow_plaintext_auth": True}
            if timeout is not None:
                account["timeout"] = timeout
            conf = write_config(self.tmp.path, sh, account=account)
            res = self.postie(["b@example.org"], config=conf,
                              stdin=message({"To": "b@example.org", "Subject": "x"}, "hi\n"))
            return res, sh

    def test_failing_command(self):
        res, sh = self.run_with("echo %s; echo oops >&2; exit 3" % SECRET)
        self.assertEqual(res.returncode, EX_CONFIG, res)
        self.assertIn('account "default": password_command failed with exit status 3', res.err)
        self.assertNotIn(SECRET, res.err + res.out)
        self.assertEqual(sh.messages(), [])

    def test_empty_output(self):
        res, sh = self.run_with("true")
        self.assertEqual(res.returncode, EX_CONFIG, res)
        self.assertIn("printed no password", res.err)
        self.assertEqual(sh.messages(), [])

    def test_timeout(self):
        res, sh = self.run_with("sleep 60", timeout=1)
        self.assertEqual(res.returncode, EX_CONFIG, res)
        self.assertIn("timed out after 1 s", res.err)
        self.assertEqual(sh.messages(), [])

    def test_working_command(self):
        res, sh = self.run_with("printf '%s\\nsecond line\\n'" % SECRET)
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertNotIn(SECRET, res.err + res.out)
        [m] = sh.wait_messages(1)
        self.assertEqual(m["auth_user"], "alice")
        self.assertEqual(m["rcpt_tos"], ["b@example.org"])


class Sample(Base):
    """etc/postie.conf.sample is installed as the configuration: it must parse,
    and so must each account it shows once uncommented."""

    SAMPLE = os.path.join(os.environ.get("POSTIE_SRCDIR") or
                          os.path.dirname(os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__)))), "etc", "postie.conf.sample")

    def blocks(self):
        with open(self.SAMPLE) as f:
            lines = f.read().splitlines()
        out, cur = [], None
        for line in lines:
            if line.startswith("#account "):
                cur = []
            if cur is not None:
                self.assertTrue(line.startswith("#"), line)
                cur.append(line[1:])
                if line == "#}":
                    out.append("\n".join(cur) + "\n")
                    cur = None
        return out

    def test_sample_as_is(self):
        with open(self.SAMPLE) as f:
            text = f.read()
        path = self.write(text.replace('#queue_dir = "/var/spool/postie"', 'queue_dir = ""'))
        res = self.postie(["-bp"], config=path)
        self.assertEqual(res.returncode, EX_OK, res)
        self.assertIn("Mail queue is empty", res.out)

    def test_every_example_account_parses(self):
        blocks = self.blocks()
        self.assertGreaterEqual(len(blocks), 6)
        for block in blocks:
            with self.subTest(block=block.splitlines()[1]):
                path = self.write('queue_dir = ""\n' + block)
                res = self.postie(["-bp"], config=path)
                self.assertEqual(res.returncode, EX_OK, res)


if __name__ == "__main__":
    unittest.main()
