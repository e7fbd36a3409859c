"""postie's main job, for real: a cron-style message goes through `postie -t`
to a local smarthost (STARTTLS with a throwaway CA, AUTH LOGIN), and what the
smarthost received is printed.

Run from a built tree:  /usr/bin/python3 tests/demo.py [path/to/postie]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if len(sys.argv) > 1:
    os.environ["POSTIE"] = os.path.abspath(sys.argv[1])
os.environ.setdefault("POSTIE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "postie"))

import harness  # noqa: E402

MESSAGE = (
    b"From: root (Cron Daemon)\n"
    b"To: root\n"
    b"Bcc: auditor@example.net\n"
    b"Subject: Cron <root@box> run-parts /etc/cron.daily\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=UTF-8\n"
    b"X-Cron-Env: <SHELL=/bin/sh>\n"
    b"\n"
    b"/etc/cron.daily/logrotate:\n"
    b"error: skipping \"/var/log/app.log\" because parent directory has insecure permissions\n"
)


def main():
    with tempfile.TemporaryDirectory(prefix="postie-demo-") as tmp:
        ca = harness.TestCA(tmp)
        with harness.Smarthost(tmp, tls="starttls", ca=ca, auth=["cron@example.com:s3cret"]) as sh:
            conf = harness.write_config(
                tmp, sh,
                global_={"hostname": "box.example.com", "qualify_domain": "example.com"},
                account={"user": "cron@example.com", "password": "s3cret",
                         "from": "cron@example.com"})
            print("== smarthost: 127.0.0.1:%d, STARTTLS, AUTH LOGIN/PLAIN" % sh.port)
            print("== $ postie -t < cron-message   (as Debian cron's output would arrive)")
            res = harness.run_postie(["-t"], stdin=MESSAGE, config=conf)
            sys.stdout.write(res.stderr.decode(errors="replace"))
            print("== postie exited %d" % res.returncode)
            if res.returncode != 0:
                return 1
            msgs = sh.wait_messages(1, timeout=20)
            m = msgs[0]
            print("== the smarthost received:")
            print("TLS: %s   AUTH user: %s" % (m["tls"], m["auth_user"]))
            print("MAIL FROM:<%s> %s" % (m["mail_from"], " ".join(m["mail_options"])))
            for r in m["rcpt_tos"]:
                print("RCPT TO:<%s>" % r)
            print("DATA:")
            sys.stdout.write(m["data"].decode("utf-8", errors="replace").replace("\r\n", "\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
