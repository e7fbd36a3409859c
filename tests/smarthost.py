#!/usr/bin/python3
"""The test smarthost: an ESMTP server on Debian's python3-aiosmtpd with the
faults and extensions postie's integration tests need.

    /usr/bin/python3 tests/smarthost.py --port-file F --record R.jsonl [options]

It listens on 127.0.0.1 (or --host ::1), port 0 (ephemeral) unless --port is
given, and writes the port number to F (atomically, by rename) once it accepts
connections.  Every message it accepts (2xx to the end of DATA or BDAT LAST)
is appended to R.jsonl as one JSON object, before the reply is sent:

    {"mail_from": "a@x" ("" for <>), "mail_options": [...], "rcpt_tos": [...],
     "rcpt_options": [[...], ...], "data_b64": "...", "auth_user": "alice"|null,
     "tls": bool, "ehlo": "name", "chunked": bool,
     "client_cert": "CN of a verified client certificate" | null}

With --commands C.jsonl every command line it reads is appended to C as
{"conn": N, "tls": bool, "line": "MAIL FROM:<a@x>"} (AUTH continuation lines
included, raw), plus events such as {"conn": N, "event": "connect"},
{"conn": N, "event": "data-reply", "reply": "554 ..."} and
{"conn": N, "event": "dropped"}.  Tests use it to assert what a client did
NOT send (credentials, MAIL FROM after a failed AUTH...).

Options are described in --help and in harness-api documentation: --tls,
--cert/--key, --auth USER:PASS, --auth-plaintext, --chunking, --no-8bitmime,
--dsn, --greeting, --silent, --mail-reply, --rcpt-reply, --data-reply,
--drop-mid-data, --stall-mid-data, --no-starttls.

TLS 1.3 session tickets are left at Python's default (two tickets after each
handshake): that is what real servers do and what breaks libESMTP's own
STARTTLS.
"""

import argparse
import asyncio
import base64
import binascii
import json
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, MISSING, syntax

# Lines of DATA read before --drop-mid-data closes the connection.
DROP_AFTER_LINES = 2


class Recorder:
    """Appends JSON lines to the record and command files, flushed at once."""

    def __init__(self, record_path, commands_path):
        self.record = open(record_path, "a", encoding="utf-8")
        self.commands = open(commands_path, "a", encoding="utf-8") if commands_path else None
        self.next_conn = 0

    def message(self, obj):
        self.record.write(json.dumps(obj) + "\n")
        self.record.flush()

    def command(self, obj):
        if self.commands is not None:
            self.commands.write(json.dumps(obj) + "\n")
            self.commands.flush()


def parse_reply(text):
    """'550 5.1.1 no such user' -> ('550', '5.1.1 no such user'), validated."""
    code, _, rest = text.strip().partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise argparse.ArgumentTypeError("reply must start with a 3-digit code: %r" % text)
    return text.strip()


def parse_rcpt_reply(text):
    addr, sep, reply = text.partition("=")
    if not sep or not addr:
        raise argparse.ArgumentTypeError("--rcpt-reply wants ADDR=CODE text")
    return addr.lower(), parse_reply(reply)


def parse_auth(text):
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("--auth wants USER:PASS")
    return user, password


class Handler:
    """aiosmtpd handler hooks: EHLO keywords, fault replies, the record."""

    def __init__(self, opts, recorder):
        self.opts = opts
        self.recorder = recorder
        self.rcpt_replies = dict(opts.rcpt_reply or [])

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        o = self.opts
        lines = [r[4:] for r in responses]  # strip "250-" / "250 "
        keep = [lines[0]]
        for kw in lines[1:]:
            word = kw.split(" ", 1)[0].upper()
            if word in ("AUTH", "HELP"):
                continue
            if word == "8BITMIME" and o.no_8bitmime:
                continue
            if word == "STARTTLS" and o.no_starttls:
                continue
            keep.append(kw)
        if not o.no_pipelining:
            keep.append("PIPELINING")
        keep.append("ENHANCEDSTATUSCODES")
        if o.chunking:
            keep.append("CHUNKING")
        if o.dsn:
            keep.append("DSN")
        if o.auth and (server.is_secure() or o.auth_plaintext):
            keep.append("AUTH " + " ".join(o.auth_mechanisms))
        keep.append("HELP")
        return ["250-" + k for k in keep[:-1]] + ["250 " + keep[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.opts.mail_reply and not self.opts.mail_reply.startswith("2"):
            return self.opts.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(server.raw_params)
        return self.opts.mail_reply or "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(list(server.raw_params))
        return reply or "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.opts.data_reply or "250 2.0.0 OK queued"
        if not reply.startswith("2"):
            self.recorder.command({"conn": server.conn_id, "event": "data-reply", "reply": reply,
                                   "tls": server.is_secure()})
            return reply
        login = session.login_data
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        self.recorder.message({
            "mail_from": envelope.mail_from if envelope.mail_from != "<>" else "",
            "mail_options": list(envelope.mail_options),
            "rcpt_tos": list(envelope.rcpt_tos),
            "rcpt_options": [list(x) for x in envelope.rcpt_options],
            "data_b64": base64.b64encode(bytes(envelope.original_content)).decode("ascii"),
            "auth_user": login if session.authenticated else None,
            "tls": server.is_secure(),
            "ehlo": session.host_name,
            "chunked": bool(getattr(envelope, "chunked", False)),
            "client_cert": server.client_cert_cn(),
        })
        return reply


class TestSMTP(SMTP):
    """aiosmtpd's SMTP with BDAT, command logging, fault injection and
    knowledge of implicit TLS (aiosmtpd only knows about STARTTLS)."""

    def __init__(self, handler, opts, recorder, implicit_tls, **kwargs):
        super().__init__(handler, **kwargs)
        self.opts = opts
        self.recorder = recorder
        self.implicit_tls = implicit_tls
        self.raw_params = []
        recorder.next_conn += 1
        self.conn_id = recorder.next_conn
        # Wrap every command so that the raw line lands in the command log.
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = self._logged(name, method)

    def _logged(self, name, method):
        async def wrapper(arg):
            line = name if arg is None else name + " " + arg
            self.recorder.command({"conn": self.conn_id, "tls": self.is_secure(), "line": line})
            self.raw_params = []
            if arg is not None and name in ("MAIL", "RCPT"):
                _, _, rest = arg.partition(">")
                self.raw_params = rest.split()
            return await method(arg)
        return wrapper

    def is_secure(self):
        return self.implicit_tls or self._tls_protocol is not None

    def client_cert_cn(self):
        """The CN of the client's verified certificate (--client-ca), or None."""
        cert = self.transport.get_extra_info("peercert") if self.transport else None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.recorder.command({"conn": self.conn_id, "event": "connect",
                                   "tls": self.is_secure()})

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None and self.opts.dsn:
            for key in ("RET", "ENVID", "NOTIFY", "ORCPT"):
                result.pop(key, None)
        return result

    async def _handle_client(self):
        if self.opts.silent:
            # Accept and never greet; wait for the client to give up.
            while self.transport is not None:
                await asyncio.sleep(3600)
            return
        if self.opts.greeting:
            await self.push(self.opts.greeting)
            self.recorder.command({"conn": self.conn_id, "event": "greeting-closed"})
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_AUTH(self, arg):
        if not self.opts.auth:
            return await self.push("502 5.5.1 AUTH not available")
        if not self.is_secure() and not self.opts.auth_plaintext:
            return await self.push("538 5.7.11 Encryption required for requested "
                                   "authentication mechanism")
        return await super().smtp_AUTH(arg)

    async def challenge_auth(self, challenge, encode_to_b64=True, log_client_response=False):
        challenge = challenge.encode() if isinstance(challenge, str) else challenge
        challenge = b"334 " + (base64.b64encode(challenge) if encode_to_b64 else challenge)
        await self.push(challenge)
        line = await self._reader.readline()
        self.recorder.command({"conn": self.conn_id, "tls": self.is_secure(),
                               "line": line.rstrip(b"\r\n").decode("ascii", "replace"),
                               "auth_continuation": True})
        blob = line.strip()
        if blob == b"*":
            await self.push("501 5.7.0 Auth aborted")
            return MISSING
        try:
            return base64.b64decode(blob, validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def _drop(self, where):
        self.recorder.command({"conn": self.conn_id, "event": "dropped", "where": where})
        self.transport.close()

    async def _stall(self, where):
        self.recorder.command({"conn": self.conn_id, "event": "stalled", "where": where})
        while self.transport is not None:
            await asyncio.sleep(3600)

    async def smtp_DATA(self, arg):
        if not (self.opts.drop_mid_data or self.opts.stall_mid_data):
            return await super().smtp_DATA(arg)
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        for _ in range(DROP_AFTER_LINES):
            line = await self._reader.readline()
            if not line or line == b".\r\n":
                break
        if self.opts.drop_mid_data:
            await self._drop("DATA")
        else:
            await self._stall("DATA")

    @syntax("BDAT <size> [LAST]")
    async def smtp_BDAT(self, arg):
        if not self.opts.chunking:
            return await self.push('500 Error: command "BDAT" not recognized')
        words = (arg or "").split()
        if not words or not words[0].isdigit() or len(words) > 2 or \
                (len(words) == 2 and words[1].upper() != "LAST"):
            # The size is unknown: the chunk cannot be skipped, so hang up.
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            return await self._drop("BDAT syntax")
        size = int(words[0])
        last = len(words) == 2
        if self.opts.drop_mid_data:
            if size > 0:
                await self._reader.read(min(size, 16))
            return await self._drop("BDAT")
        if self.opts.stall_mid_data:
            return await self._stall("BDAT")
        try:
            chunk = await self._reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return await self._drop("BDAT short")
        env = self.envelope
        if not hasattr(env, "bdat_buffer"):
            env.bdat_buffer = bytearray()
            env.bdat_failed = None
        if self.session.host_name is None:
            env.bdat_failed = env.bdat_failed or "503 5.5.1 Error: send EHLO first"
        elif not env.rcpt_tos:
            env.bdat_failed = env.bdat_failed or "503 5.5.1 Error: need RCPT command"
        env.bdat_buffer += chunk
        if self.data_size_limit and len(env.bdat_buffer) > self.data_size_limit:
            env.bdat_failed = "552 5.3.4 Error: too much mail data"
            env.bdat_buffer = bytearray()
        if env.bdat_failed and not last:
            return await self.push(env.bdat_failed)
        if not last:
            return await self.push("250 2.0.0 %d octets received" % size)
        if env.bdat_failed:
            reply = env.bdat_failed
            self._set_post_data_state()
            return await self.push(reply)
        env.original_content = bytes(env.bdat_buffer)
        env.content = env.original_content
        env.chunked = True
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 2.0.0 OK" if status is MISSING else status)


def make_authenticator(users):
    def authenticator(server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if mechanism in ("LOGIN", "PLAIN") and users.get(login) == password:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
    return authenticator


def parse_args(argv):
    p = argparse.ArgumentParser(description="test smarthost for postie")
    p.add_argument("--port-file", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--commands", help="JSON lines log of every command line and event")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", choices=("none", "starttls", "tls"), default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls-max", choices=("1.2", "1.3"), help="cap the server's TLS version")
    p.add_argument("--client-ca", help="require a client certificate signed by this CA")
    p.add_argument("--auth", type=parse_auth, action="append", default=[])
    p.add_argument("--auth-mechanisms", default="LOGIN PLAIN",
                   help="what AUTH advertises, in order (default 'LOGIN PLAIN')")
    p.add_argument("--auth-plaintext", action="store_true")
    p.add_argument("--chunking", action="store_true")
    p.add_argument("--no-8bitmime", action="store_true")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--dsn", action="store_true")
    p.add_argument("--size-limit", type=int, default=64 * 1024 * 1024)
    p.add_argument("--greeting", type=parse_reply)
    p.add_argument("--silent", action="store_true")
    p.add_argument("--mail-reply", type=parse_reply)
    p.add_argument("--rcpt-reply", type=parse_rcpt_reply, action="append")
    p.add_argument("--data-reply", type=parse_reply)
    p.add_argument("--drop-mid-data", action="store_true")
    p.add_argument("--stall-mid-data", action="store_true")
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--line-length-limit", type=int, default=None,
                   help="longest DATA line accepted (default aiosmtpd's 1001)")
    o = p.parse_args(argv)
    if o.tls != "none" and not (o.cert and o.key):
        p.error("--tls %s needs --cert and --key" % o.tls)
    o.auth_mechanisms = o.auth_mechanisms.split()
    return o


def main(argv):
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="smarthost: %(levelname)s %(message)s")
    recorder = Recorder(opts.record, opts.commands)
    handler = Handler(opts, recorder)

    ssl_ctx = None
    if opts.tls != "none":
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(opts.cert, opts.key)
        if opts.tls_max == "1.2":
            ssl_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if opts.client_ca:
            ssl_ctx.load_verify_locations(opts.client_ca)
            ssl_ctx.verify_mode = ssl.CERT_REQUIRED
    if opts.line_length_limit:
        TestSMTP.line_length_limit = opts.line_length_limit

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return TestSMTP(
            handler, opts, recorder, implicit_tls=(opts.tls == "tls"),
            hostname="smarthost.test",
            tls_context=ssl_ctx if opts.tls == "starttls" else None,
            data_size_limit=opts.size_limit,
            auth_require_tls=False,
            auth_required=bool(opts.auth),
            authenticator=make_authenticator(dict(opts.auth)),
            timeout=600,
            loop=loop,
        )

    server = loop.run_until_complete(loop.create_server(
        factory, host=opts.host, port=opts.port,
        ssl=ssl_ctx if opts.tls == "tls" else None, reuse_address=True))
    port = server.sockets[0].getsockname()[1]
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, opts.port_file)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
