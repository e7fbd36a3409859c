"""Integration test harness: the test smarthost, a throwaway CA, postie runs.

    from harness import Smarthost, TestCA, run_postie, write_config, POSTIE, message

    ca = TestCA(tmpdir)     # ca.ca_file, ca.cert_file, ca.key_file; ca.issue(names=[...])
    with Smarthost(tmpdir, tls="starttls", auth=["alice:secret"]) as sh:
        conf = write_config(tmpdir, sh, account={"user": "alice", "password": "secret"})
        res = run_postie(["-t"], stdin=message({"To": "b@example.org"}, "hi\n"), config=conf)
        assert res.returncode == 0, res.err
        [m] = sh.messages()          # m["data"] is the exact bytes the server received

Smarthost options mirror tests/smarthost.py's flags (underscores for dashes):
tls, cert, key, ca, auth (list of "USER:PASS" or (user, pass)), auth_plaintext,
auth_mechanisms, chunking, no_8bitmime, no_pipelining, dsn, greeting, silent,
mail_reply, rcpt_reply (dict addr -> reply or list of "ADDR=REPLY"), data_reply,
drop_mid_data, stall_mid_data, no_starttls, host ("127.0.0.1" or "::1"),
tls_max ("1.2"), size_limit, line_length_limit, client_ca (require a client
certificate signed by that CA file; messages then record "client_cert", its CN).

Besides messages(), sh.commands() lists every command line the server read
(dicts with "conn", "tls", "line"; AUTH continuation lines carry
"auth_continuation": True) and events ("event": "connect", "dropped",
"data-reply", ...); sh.command_lines() is just the lines.  Use them to assert
what a client did not send.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("POSTIE_SRCDIR") or os.path.dirname(HERE)
BUILDDIR = os.environ.get("POSTIE_BUILDDIR") or SRCDIR
POSTIE = os.environ.get("POSTIE") or os.path.join(BUILDDIR, "src", "postie")
PYTHON = "/usr/bin/python3"
SMARTHOST = os.path.join(HERE, "smarthost.py")
MKCERTS = os.path.join(HERE, "mkcerts.sh")

READY_TIMEOUT = 20.0


def _run_mkcerts(*args):
    subprocess.run(["sh", MKCERTS] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestCA:
    """A throwaway CA made with the openssl command, and a server certificate
    for localhost, 127.0.0.1 and ::1 signed by it."""

    DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")

    def __init__(self, tmpdir, subdir="ca"):
        self.dir = os.path.join(tmpdir, subdir)
        os.makedirs(self.dir, exist_ok=True)
        _run_mkcerts("ca", self.dir)
        self.ca_file = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.cert_file, self.key_file = self.issue(self.DEFAULT_NAMES, name="server")
        self._count = 0

    @staticmethod
    def _sans(names):
        out = []
        for n in names:
            try:
                socket.inet_pton(socket.AF_INET6 if ":" in n else socket.AF_INET, n)
                out.append("IP:" + n)
            except OSError:
                out.append("DNS:" + n)
        return out

    def issue(self, names, name=None):
        """A certificate for names (DNS names or IP literals) signed by this CA.
        Returns (cert_file, key_file)."""
        if name is None:
            self._count += 1
            name = "cert%d" % self._count
        _run_mkcerts("issue", self.dir, name, *self._sans(names))
        return os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")

    def self_signed(self, names, name="selfsigned"):
        """A self-signed certificate for names (not signed by this CA)."""
        _run_mkcerts("self", self.dir, name, *self._sans(names))
        return os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")


class Smarthost:
    """The test smarthost (tests/smarthost.py) as a subprocess."""

    _serial = 0

    def __init__(self, tmpdir, tls="none", ca=None, cert=None, key=None, host="127.0.0.1",
                 **options):
        Smarthost._serial += 1
        self.tmpdir = tmpdir
        self.name = "smarthost%d" % Smarthost._serial
        self.tls = tls
        self.host = host
        self.ca = ca
        if tls != "none" and cert is None:
            if self.ca is None:
                self.ca = TestCA(tmpdir, subdir=self.name + "-ca")
            cert, key = self.ca.cert_file, self.ca.key_file
        self.cert, self.key = cert, key
        self.options = options
        self.record = os.path.join(tmpdir, self.name + ".jsonl")
        self.commands_file = os.path.join(tmpdir, self.name + ".commands.jsonl")
        self.log_file = os.path.join(tmpdir, self.name + ".log")
        self.port_file = os.path.join(tmpdir, self.name + ".port")
        self.port = None
        self.proc = None
        for f in (self.record, self.commands_file):
            open(f, "a").close()
        self.start()

    # ---- process control
    def _argv(self):
        a = [PYTHON, SMARTHOST, "--port-file", self.port_file, "--record", self.record,
             "--commands", self.commands_file, "--host", self.host, "--tls", self.tls]
        if self.port:
            a += ["--port", str(self.port)]
        if self.cert:
            a += ["--cert", self.cert, "--key", self.key]
        for k, v in self.options.items():
            flag = "--" + k.replace("_", "-")
            if v is None or v is False:
                continue
            if v is True:
                a.append(flag)
            elif k == "auth":
                for item in v if isinstance(v, (list, tuple)) else [v]:
                    if isinstance(item, (list, tuple)):
                        item = "%s:%s" % tuple(item)
                    a += [flag, item]
            elif k == "rcpt_reply":
                items = v.items() if isinstance(v, dict) else [tuple(x.split("=", 1)) for x in v]
                for addr, reply in items:
                    a += [flag, "%s=%s" % (addr, reply)]
            elif k == "auth_mechanisms" and isinstance(v, (list, tuple)):
                a += [flag, " ".join(v)]
            else:
                a += [flag, str(v)]
        return a

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        log = open(self.log_file, "a")
        self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("smarthost exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("smarthost not ready after %ss" % READY_TIMEOUT)
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())

    def stop(self):
        """Stops the server; its port then refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, **options):
        """Stops and starts again on the same port (options may be changed)."""
        self.stop()
        self.options.update(options)
        self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- what the server saw
    @staticmethod
    def _read_jsonl(path):
        out = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    def messages(self):
        """Every accepted message, as recorded, plus "data" (the exact bytes)."""
        msgs = self._read_jsonl(self.record)
        for m in msgs:
            m["data"] = base64.b64decode(m["data_b64"])
        return msgs

    def wait_messages(self, n, timeout=10):
        """Waits until at least n messages were recorded; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError("smarthost received %d messages, expected %d"
                                     % (len(msgs), n))
            time.sleep(0.02)

    def commands(self):
        """Every command line read and every event, in order."""
        return self._read_jsonl(self.commands_file)

    def command_lines(self):
        return [c["line"] for c in self.commands() if "line" in c]

    def connections(self):
        return sum(1 for c in self.commands() if c.get("event") == "connect")


def _conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % s


def write_config(tmpdir, sh=None, account=None, global_=None, mode=0o600, name="postie.conf",
                 accounts=None):
    """Writes a postie.conf for smarthost sh (host, port, tls, and tls_ca_file
    for TLS) plus the given keys, and returns its path.  A key given as None
    is left out.  queue_dir defaults to "" (no queue).  accounts, when given,
    is a dict title -> dict of keys for further account sections."""
    g = {"queue_dir": ""}
    g.update(global_ or {})
    acct = {}
    if sh is not None:
        acct.update({"host": sh.host, "port": sh.port, "tls": sh.tls})
        if sh.tls != "none" and sh.ca is not None:
            acct["tls_ca_file"] = sh.ca.ca_file
    acct.update(account or {})
    lines = []
    for k, v in g.items():
        if v is not None:
            lines.append("%s = %s" % (k, _conf_value(v)))
    sections = {"default": acct}
    sections.update(accounts or {})
    for title, keys in sections.items():
        lines.append('account "%s" {' % title)
        for k, v in keys.items():
            if v is not None:
                lines.append("    %s = %s" % (k, _conf_value(v)))
        lines.append("}")
    path = os.path.join(tmpdir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, mode)
    return path


class PostieResult:
    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.err = stderr.decode("utf-8", "replace")
        self.out = stdout.decode("utf-8", "replace")

    def __repr__(self):
        return "PostieResult(rc=%r, stderr=%r)" % (self.returncode, self.err)


def run_postie(args, stdin=b"", config=None, env=None, timeout=60, argv0=None):
    """Runs $POSTIE [-C config] args with stdin (bytes or str through a pipe,
    or an open file); env entries are added to (or, when None, removed from)
    the inherited environment.  Raises subprocess.TimeoutExpired (after
    killing it) if it runs past timeout."""
    argv = [argv0 or POSTIE]
    if config is not None:
        argv += ["-C", config]
    argv += list(args)
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    if isinstance(stdin, str):
        stdin = stdin.encode()
    # bytes go through a pipe; an open file is postie's stdin itself
    feed = {"stdin": stdin} if hasattr(stdin, "fileno") else {"input": stdin}
    p = subprocess.run(argv, executable=POSTIE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout, **feed)
    return PostieResult(argv, p.returncode, p.stdout, p.stderr)


def message(headers, body=""):
    """CRLF message bytes from headers (dict or list of (name, value)) and a
    body (str or bytes; LF or CRLF line ends become CRLF, a final CRLF is
    added when missing)."""
    items = headers.items() if isinstance(headers, dict) else headers
    out = b"".join(("%s: %s\r\n" % (k, v)).encode("utf-8") for k, v in items)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return out + b"\r\n" + body


class TempDir:
    """A temporary directory for a test (removed on cleanup unless
    POSTIE_KEEP_TMP is set)."""

    def __init__(self, prefix="postie-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self):
        if not os.environ.get("POSTIE_KEEP_TMP"):
            shutil.rmtree(self.path, ignore_errors=True)


def smtp_client_check(sh, timeout=5):
    """Minimal readiness probe used by the harness's own self-test."""
    family = socket.AF_INET6 if ":" in sh.host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(timeout)
        s.connect((sh.host, sh.port))
        return s.recv(512)


if __name__ == "__main__":
    print(POSTIE)
    sys.exit(0)
