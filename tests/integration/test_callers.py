"""Real callers of /usr/sbin/sendmail, run unmodified against postie.

Each caller is pointed at a small wrapper script that records the exact argv
it was given and then runs postie with the test configuration.  Every test
asserts what the smarthost received: the envelope, no Bcc header on the
wire, the body intact.  A caller that is not installed makes its test FAIL
(tests/install-deps.sh installs them: php-cli, php-symfony-mailer, git-email,
bsd-mailx, nodejs, and nodemailer from npm into tests/callers/node_modules).
"""

import os
import pwd
import re
import shlex
import shutil
import subprocess
import unittest
import urllib.parse

from harness import POSTIE, SRCDIR, BUILDDIR, Smarthost, TempDir, write_config

TIMEOUT = 120
SYMFONY_AUTOLOAD = "/usr/share/php/Symfony/Component/Mailer/autoload.php"


def need(program, install):
    path = shutil.which(program)
    if path is None:
        raise AssertionError("%s is not installed (CI installs it: %s)" % (program, install))
    return path


def header_names(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n")
            if line and line[0] not in " \t"]


def header_value(data, name):
    """The unfolded value of the first header called name, or None."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"(?im)^%s:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name), head)
    return re.sub(r"\r\n[ \t]+", " ", m.group(1)) if m else None


def body_of(data):
    return data.split(b"\r\n\r\n", 1)[1]


class CallersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.path

    def start(self, **smarthost_options):
        """Starts the smarthost, writes the configuration and the wrapper."""
        self.sh = Smarthost(self.dir, **smarthost_options)
        self.addCleanup(self.sh.stop)
        aliases = os.path.join(self.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("root: admin@example.net\npostmaster: root\n")
        self.queue = os.path.join(self.dir, "queue")
        os.mkdir(self.queue, 0o700)
        self.conf = write_config(self.dir, self.sh, global_={
            "hostname": "box.example", "qualify_domain": "box.example",
            "aliases": aliases, "queue_dir": self.queue})
        self.argv_log = os.path.join(self.dir, "argv.log")
        self.wrapper = os.path.join(self.dir, "sendmail")
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "# records the caller's argv, then runs postie\n"
                    "{ printf 'CALL'; for a in \"$@\"; do printf '\\037%%s' \"$a\"; done; "
                    "printf '\\n'; } >> %s\n"
                    "exec %s -C %s \"$@\"\n"
                    % (shlex.quote(self.argv_log), shlex.quote(POSTIE), shlex.quote(self.conf)))
        os.chmod(self.wrapper, 0o755)

    def calls(self):
        """The argv of every call of the wrapper (without the program name)."""
        try:
            with open(self.argv_log) as f:
                return [line.rstrip("\n").split("\037")[1:] for line in f]
        except FileNotFoundError:
            return []

    def run_caller(self, argv, input=None, env=None, cwd=None):
        e = dict(os.environ)
        e.update({"HOME": self.dir, "LC_ALL": "C.UTF-8"})
        e.update(env or {})
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e, cwd=cwd or self.dir, timeout=TIMEOUT)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        return p

    def assert_no_bcc(self, m, *hidden):
        self.assertNotIn("bcc", header_names(m["data"]), m["data"])
        self.assertNotIn("resent-bcc", header_names(m["data"]))
        for h in hidden:
            self.assertNotIn(h.encode(), m["data"])

    def only_message(self):
        msgs = self.sh.messages()
        self.assertEqual(len(msgs), 1, msgs)
        return msgs[0]

    # ---------------------------------------------------------------- PHP

    PHP_MAIL = (
        '$ok = mail("bob@example.net", "PHP mail() over postie",'
        ' "line one\\n.\\n..two dots\\nlast line",'
        ' "From: Alice <alice@example.org>\\r\\nCc: carol@example.net\\r\\n'
        'Bcc: hidden@example.net,\\r\\n  secret@example.net",'
        ' "-fbounce@example.org");'
        ' exit($ok ? 0 : 3);')

    def php_mail(self):
        php = need("php", "apt-get install php-cli")
        return self.run_caller([php, "-n", "-d", "sendmail_path=%s -t -i"
                                % shlex.quote(self.wrapper), "-r", self.PHP_MAIL])

    def test_php_mail(self):
        self.start()
        p = self.php_mail()
        self.assertEqual(p.returncode, 0, p.out + p.err)
        # php.ini's sendmail_path plus mail()'s additional_params, through the shell
        self.assertEqual(self.calls(), [["-t", "-i", "-fbounce@example.org"]])
        m = self.only_message()
        self.assertEqual(m["mail_from"], "bounce@example.org")
        self.assertEqual(sorted(m["rcpt_tos"]), ["bob@example.net", "carol@example.net",
                                                 "hidden@example.net", "secret@example.net"])
        self.assert_no_bcc(m, "hidden@example.net", "secret@example.net")
        self.assertEqual(header_value(m["data"], "Subject"), "PHP mail() over postie")
        self.assertIn("alice@example.org", header_value(m["data"], "From"))
        self.assertTrue(body_of(m["data"]).startswith(b"line one\r\n.\r\n..two dots\r\nlast line"),
                        m["data"])

    def test_php_mail_counts_only_zero_as_success(self):
        # a permanent refusal: postie exits non-zero and mail() returns false
        self.start(data_reply="554 5.7.1 refused")
        p = self.php_mail()
        self.assertEqual(p.returncode, 3, p.out + p.err)
        self.assertEqual(self.sh.messages(), [])

    def test_php_mail_queued_is_success(self):
        # the smarthost is down but the queue holds the message: exit 0, mail() is true
        self.start()
        self.sh.stop()
        p = self.php_mail()
        self.assertEqual(p.returncode, 0, p.out + p.err)
        listing = subprocess.run([POSTIE, "-C", self.conf, "-bp"], stdout=subprocess.PIPE,
                                 timeout=TIMEOUT)
        self.assertIn(b"bob@example.net", listing.stdout)

    # ----------------------------------------------------------- Symfony

    SYMFONY_SCRIPT = r"""<?php
require $argv[1];
use Symfony\Component\Mailer\Mailer;
use Symfony\Component\Mailer\Transport;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;
$transport = $argv[2] === 'dsn' ? Transport::fromDsn($argv[3]) : new SendmailTransport($argv[3]);
$mailer = new Mailer($transport);
try {
    for ($i = 1; $i <= (int)($argv[4] ?? 1); $i++) {
        $email = (new Email())
            ->from('Alice <alice@example.org>')
            ->to('bob@example.net')
            ->cc('carol@example.net')
            ->bcc('hidden@example.net')
            ->subject($i == 1 ? 'Symfony Mailer over postie' : "message $i")
            ->text("first line\n.\n..two dots\nlast line\n");
        $mailer->send($email);
    }
} catch (\Throwable $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(3);
}
echo "sent\n";
"""

    def symfony(self, how, command, count=1):
        php = need("php", "apt-get install php-cli")
        if not os.path.exists(SYMFONY_AUTOLOAD):
            raise AssertionError("Symfony Mailer is not installed (CI installs it: "
                                 "apt-get install php-symfony-mailer)")
        script = os.path.join(self.dir, "symfony.php")
        with open(script, "w") as f:
            f.write(self.SYMFONY_SCRIPT)
        arg = command
        if how == "dsn":
            arg = "sendmail://default?command=" + urllib.parse.quote(command, safe="")
        return self.run_caller([php, script, SYMFONY_AUTOLOAD, how, arg, str(count)])

    def assert_symfony_message(self, m):
        self.assertEqual(m["mail_from"], "alice@example.org")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["bob@example.net", "carol@example.net", "hidden@example.net"])
        self.assert_no_bcc(m, "hidden@example.net")
        self.assertEqual(header_value(m["data"], "Subject"), "Symfony Mailer over postie")
        self.assertIn(b"\r\n\r\nfirst line\r\n.\r\n..two dots\r\nlast line\r\n", m["data"])

    def test_symfony_mailer_bs_dsn(self):
        # MAILER_DSN=sendmail://default?command=... with -bs (the default mode)
        self.start()
        p = self.symfony("dsn", self.wrapper + " -bs")
        self.assertEqual(p.returncode, 0, p.out + p.err)
        self.assertEqual(self.calls(), [["-bs"]])
        self.assert_symfony_message(self.only_message())

    def test_symfony_mailer_bs_several_messages(self):
        # one transport object keeps one postie -bs running for every message it sends
        self.start()
        p = self.symfony("dsn", self.wrapper + " -bs", count=3)
        self.assertEqual(p.returncode, 0, p.out + p.err)
        self.assertEqual(len(self.calls()), 1, self.calls())
        msgs = self.sh.messages()
        self.assertEqual([header_value(m["data"], "Subject") for m in msgs],
                         ["Symfony Mailer over postie", "message 2", "message 3"])
        for m in msgs:
            self.assertEqual(sorted(m["rcpt_tos"]),
                             ["bob@example.net", "carol@example.net", "hidden@example.net"])
            self.assert_no_bcc(m, "hidden@example.net")

    def test_symfony_mailer_bs_laravel_default(self):
        # Laravel's MAIL_SENDMAIL_PATH default is "/usr/sbin/sendmail -bs -i"
        self.start()
        p = self.symfony("class", self.wrapper + " -bs -i")
        self.assertEqual(p.returncode, 0, p.out + p.err)
        self.assertEqual(self.calls(), [["-bs", "-i"]])
        self.assert_symfony_message(self.only_message())

    def test_symfony_mailer_bs_reports_refusal(self):
        # -bs gives the caller the SMTP reply instead of an exit status
        self.start(data_reply="554 5.7.1 refused by policy")
        p = self.symfony("dsn", self.wrapper + " -bs")
        self.assertEqual(p.returncode, 3, p.out + p.err)
        self.assertIn("TransportException", p.err)
        self.assertIn("554", p.err)
        self.assertEqual(self.sh.messages(), [])

    def test_symfony_mailer_t(self):
        # -t mode: Symfony drops -t, appends -f'<sender>' -- '<rcpt>'... and keeps Bcc: in
        # the message ("the Bcc headers are not removed"): postie strips it
        self.start()
        p = self.symfony("class", self.wrapper + " -t -i")
        self.assertEqual(p.returncode, 0, p.out + p.err)
        self.assertEqual(self.calls(), [["-i", "-falice@example.org", "--", "bob@example.net",
                                         "carol@example.net", "hidden@example.net"]])
        self.assert_symfony_message(self.only_message())

    # ---------------------------------------------------------- Nodemailer

    NODE_SCRIPT = r"""
const nodemailer = require('nodemailer');
const transport = nodemailer.createTransport({sendmail: true, newline: 'unix',
                                              path: process.argv[2]});
transport.sendMail({
    from: 'Alice <alice@example.org>',
    to: 'bob@example.net',
    cc: 'carol@example.net',
    bcc: 'hidden@example.net',
    subject: 'Nodemailer over postie',
    text: 'first line\n.\n..two dots\nlast line\n',
}, (err, info) => {
    if (err) {
        console.error('error: ' + err.message);
        process.exit(3);
    }
    console.log(JSON.stringify(info.envelope));
});
"""

    def node_path(self):
        dirs = [os.environ.get("POSTIE_NODE_MODULES", ""),
                os.path.join(SRCDIR, "tests", "callers", "node_modules"),
                os.path.join(BUILDDIR, "tests", "callers", "node_modules")]
        npm = shutil.which("npm")
        if npm:
            root = subprocess.run([npm, "root", "-g"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, timeout=TIMEOUT)
            dirs.append(root.stdout.decode().strip())
        for d in dirs:
            if d and os.path.isdir(os.path.join(d, "nodemailer")):
                return d
        raise AssertionError("nodemailer is not installed (tests/install-deps.sh installs it: "
                             "cd tests/callers && npm install)")

    def test_nodemailer_sendmail_transport(self):
        node = need("node", "apt-get install nodejs")
        self.start()
        script = os.path.join(self.dir, "send.js")
        with open(script, "w") as f:
            f.write(self.NODE_SCRIPT)
        p = self.run_caller([node, script, self.wrapper], env={"NODE_PATH": self.node_path()})
        self.assertEqual(p.returncode, 0, p.out + p.err)
        # -i -f <from> <rcpt>..., no -t, no "--"; Nodemailer keeps Bcc: in the message
        self.assertEqual(self.calls(), [["-i", "-f", "alice@example.org", "bob@example.net",
                                         "carol@example.net", "hidden@example.net"]])
        m = self.only_message()
        self.assertEqual(m["mail_from"], "alice@example.org")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["bob@example.net", "carol@example.net", "hidden@example.net"])
        self.assert_no_bcc(m, "hidden@example.net")
        self.assertEqual(header_value(m["data"], "Subject"), "Nodemailer over postie")
        self.assertIn(b"\r\n\r\nfirst line\r\n.\r\n..two dots\r\nlast line\r\n", m["data"])

    # ------------------------------------------------------- git send-email

    def git_patch(self):
        git = need("git", "apt-get install git")
        repo = os.path.join(self.dir, "repo")
        os.mkdir(repo)
        env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
               "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"}
        for args in (["init", "-q"], ["config", "user.name", "Pat Author"],
                     ["config", "user.email", "author@example.org"]):
            p = self.run_caller([git] + args, env=env, cwd=repo)
            self.assertEqual(p.returncode, 0, p.err)
        with open(os.path.join(repo, "hello.c"), "w") as f:
            f.write("int main(void)\n{\n\treturn 0;\n}\n.\n")
        for args in (["add", "hello.c"], ["commit", "-q", "-m", "Add hello.c\n\nA body line."],
                     ["format-patch", "-q", "-1", "-o", self.dir]):
            p = self.run_caller([git] + args, env=env, cwd=repo)
            self.assertEqual(p.returncode, 0, p.err)
        patches = [f for f in os.listdir(self.dir) if f.endswith(".patch")]
        self.assertEqual(len(patches), 1)
        return git, repo, env, os.path.join(self.dir, patches[0])

    def git_send_email(self, how):
        git, repo, env, patch = self.git_patch()
        p = self.run_caller([git, "send-email", "--help"], env=env, cwd=repo)
        if "send-email" not in p.out + p.err or "is not a git command" in p.err:
            raise AssertionError("git send-email is not installed (CI installs it: "
                                 "apt-get install git-email)")
        args = [git, "send-email", "--confirm=never", "--quiet", "--suppress-cc=all",
                "--no-annotate", "--from=Pat Author <author@example.org>",
                "--envelope-sender=author@example.org", "--to=bob@example.net",
                "--cc=carol@example.net", "--bcc=hidden@example.net"]
        if how == "sendmail-cmd":
            args.append("--sendmail-cmd=" + shlex.quote(self.wrapper))
        else:
            args.append("--smtp-server=" + self.wrapper)
        p = self.run_caller(args + [patch], env=env, cwd=repo)
        self.assertEqual(p.returncode, 0, p.out + p.err)
        return patch

    def assert_git_message(self, patch):
        calls = self.calls()
        self.assertEqual(len(calls), 1, calls)
        # [-f <envelope-sender>] -i <rcpt>..., no "--"
        self.assertEqual(calls[0][:3], ["-f", "author@example.org", "-i"])
        self.assertEqual(sorted(calls[0][3:]),
                         ["bob@example.net", "carol@example.net", "hidden@example.net"])
        m = self.only_message()
        self.assertEqual(m["mail_from"], "author@example.org")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["bob@example.net", "carol@example.net", "hidden@example.net"])
        self.assert_no_bcc(m, "hidden@example.net")
        self.assertEqual(header_value(m["data"], "Subject"), "[PATCH] Add hello.c")
        with open(patch, "rb") as f:
            diff = f.read().split(b"\n---\n", 1)[1].replace(b"\n", b"\r\n")
        self.assertIn(diff, m["data"])
        self.assertIn(b"\r\n+.\r\n", m["data"])

    def test_git_send_email_sendmail_cmd(self):
        self.start()
        self.assert_git_message(self.git_send_email("sendmail-cmd"))

    def test_git_send_email_smtp_server_path(self):
        self.start()
        self.assert_git_message(self.git_send_email("smtp-server"))

    # ------------------------------------------------------------ mailx

    def test_bsd_mailx(self):
        """bsd-mailx runs /usr/sbin/sendmail itself: a private mount namespace puts the
        wrapper there, for this process tree only."""
        mailx = need("bsd-mailx", "apt-get install bsd-mailx")
        unshare = need("unshare", "apt-get install util-linux")
        self.start()
        target = "/usr/sbin/sendmail"
        if os.path.lexists(target) and os.path.exists(os.path.realpath(target)):
            mount = "mount --bind %s %s" % (shlex.quote(self.wrapper),
                                            shlex.quote(os.path.realpath(target)))
        else:
            # no sendmail at all: a directory holding only the wrapper over /usr/sbin
            sbin = os.path.join(self.dir, "sbin")
            os.mkdir(sbin)
            shutil.copy(self.wrapper, os.path.join(sbin, "sendmail"))
            mount = "mount --bind %s /usr/sbin" % shlex.quote(sbin)
        script = ("%s && exec %s -s 'mailx over postie' -c carol@example.net "
                  "-b hidden@example.net -r alice@example.org bob@example.net"
                  % (mount, shlex.quote(mailx)))
        p = self.run_caller([unshare, "--mount", "--propagation", "private", "sh", "-c", script],
                            input=b"first line\n..two dots\nlast line\n",
                            env={"MAILRC": "/dev/null"})
        self.assertEqual(p.returncode, 0, p.out + p.err)
        calls = self.calls()
        self.assertEqual(len(calls), 1, calls)
        self.assertIn("-t", calls[0])
        self.assertIn("-i", calls[0])
        m = self.only_message()
        self.assertEqual(m["mail_from"], "alice@example.org")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["bob@example.net", "carol@example.net", "hidden@example.net"])
        self.assert_no_bcc(m, "hidden@example.net")
        self.assertEqual(header_value(m["data"], "Subject"), "mailx over postie")
        self.assertTrue(body_of(m["data"]).startswith(b"first line\r\n..two dots\r\nlast line\r\n"),
                        m["data"])

    # ------------------------------------------------------------- cron

    CRON_MESSAGE = ("From: root (Cron Daemon)\n"
                    "To: root\n"
                    "Subject: Cron <root@buildhost> /usr/local/bin/backup\n"
                    "MIME-Version: 1.0\n"
                    "Content-Type: text/plain; charset=UTF-8\n"
                    "Content-Transfer-Encoding: 8bit\n"
                    "X-Cron-Env: <SHELL=/bin/sh>\n"
                    "X-Cron-Env: <HOME=/root>\n"
                    "X-Cron-Env: <PATH=/usr/bin:/bin>\n"
                    "X-Cron-Env: <LOGNAME=root>\n"
                    "\n"
                    "backup: 3 files, 1.2 MB\n"
                    "backup done \u2713\n").encode("utf-8")

    def cron(self, mailto_args):
        # Debian cron 3.0pl1: cron_popen() splits "sendmail -FCronDaemon -i -B8BITMIME -oem
        # $MAILTO" on white space and execs it without a shell
        argv = [self.wrapper, "-FCronDaemon", "-i", "-B8BITMIME", "-oem"] + mailto_args
        return self.run_caller(argv, input=self.CRON_MESSAGE)

    def test_debian_cron(self):
        self.start()
        p = self.cron(["root"])
        self.assertEqual(p.returncode, 0, p.out + p.err)
        self.assertEqual(self.calls(), [["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]])
        m = self.only_message()
        me = pwd.getpwuid(os.getuid()).pw_name
        self.assertEqual(m["mail_from"], me + "@box.example")
        self.assertEqual(m["rcpt_tos"], ["admin@example.net"])  # through the aliases file
        self.assertIn("BODY=8BITMIME", m["mail_options"])
        names = header_names(m["data"])
        self.assertIn("date", names)  # cron writes neither Date nor Message-ID
        self.assertIn("message-id", names)
        self.assertEqual(names.count("x-cron-env"), 4)
        frm = header_value(m["data"], "From")
        self.assertIn("root@box.example", frm)
        self.assertIn("Cron Daemon", frm)
        self.assertIn("root@box.example", header_value(m["data"], "To"))
        self.assertEqual(body_of(m["data"]),
                         "backup: 3 files, 1.2 MB\r\nbackup done \u2713\r\n".encode("utf-8"))

    def test_cronie(self):
        # cronie: -t and a bare login name as -f; From: "(Cron Daemon)" <login>
        self.start()
        msg = ('From: "(Cron Daemon)" <root>\n'
               "To: root\n"
               "Subject: Cron <root@buildhost> /usr/local/bin/backup\n"
               "MIME-Version: 1.0\n"
               "Content-Type: text/plain; charset=UTF-8\n"
               "Auto-Submitted: auto-generated\n"
               "Precedence: bulk\n"
               "X-Cron-Env: <SHELL=/bin/sh>\n"
               "\n"
               "backup done\n").encode()
        argv = [self.wrapper, "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"]
        p = self.run_caller(argv, input=msg)
        self.assertEqual(p.returncode, 0, p.out + p.err)
        m = self.only_message()
        self.assertEqual(m["mail_from"], "root@box.example")
        self.assertEqual(m["rcpt_tos"], ["admin@example.net"])
        self.assertIn("root@box.example", header_value(m["data"], "From"))
        self.assertEqual(header_value(m["data"], "Auto-Submitted"), "auto-generated")
        self.assertIn("date", header_names(m["data"]))
        self.assertEqual(body_of(m["data"]), b"backup done\r\n")

    def test_debian_cron_mailto_list(self):
        # MAILTO="ops@example.net, root" reaches sendmail as "ops@example.net," and "root"
        self.start()
        p = self.cron(["ops@example.net,", "root"])
        self.assertEqual(p.returncode, 0, p.out + p.err)
        m = self.only_message()
        self.assertEqual(sorted(m["rcpt_tos"]), ["admin@example.net", "ops@example.net"])


if __name__ == "__main__":
    unittest.main()
