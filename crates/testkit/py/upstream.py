"""A real third-party SMTP server (aiosmtpd) as Sluice's upstream in tests.

Stores every accepted message as <out>/<n>.eml (the bytes as received, dot-unstuffed)
and <out>/<n>.json (the envelope). Prints "READY <port>" once listening.
"""
import argparse
import asyncio
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--fail-first", type=int, default=0, help="answer 451 to the first N DATA")
parser.add_argument("--reject-rcpt", default="", help="550 for recipients containing this")
parser.add_argument("--defer-rcpt", default="", help="451 for recipients containing this")
parser.add_argument("--reject-data", action="store_true", help="554 at the end of every DATA")
parser.add_argument("--discard", action="store_true", help="count messages, store nothing")
parser.add_argument("--discard-body", action="store_true", help="store only the header section")
parser.add_argument(
    "--hash",
    action="store_true",
    help="store only the header section, and in the .json the SHA-256 and size of the"
    " message without the Received header Sluice put first (large-message tests)",
)
parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering DATA")
parser.add_argument(
    "--reset-mid-data",
    type=int,
    default=0,
    help="for the first N DATA commands: answer 354, read part of the content, then reset the"
    " connection (RST, no reply)",
)
parser.add_argument(
    "--close-after-mail",
    type=int,
    default=0,
    help="for the first N MAIL commands: answer 250, then close the connection",
)
parser.add_argument("--no-pipelining", action="store_true", help="do not advertise PIPELINING")
parser.add_argument("--tls-cert", default="")
parser.add_argument("--tls-key", default="")
parser.add_argument(
    "--implicit-tls", action="store_true", help="with --tls-cert: TLS from the first byte, no STARTTLS"
)
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def without_first_received(raw):
    """The message as its client sent it: without the Received header field (and its
    folded lines) that the relay put first."""
    if not raw.startswith(b"Received:"):
        return raw
    pos = 0
    while True:
        pos = raw.index(b"\r\n", pos) + 2
        if raw[pos : pos + 1] not in (b"\t", b" "):
            return raw[pos:]


class Handler:
    def __init__(self):
        self.transactions = 0
        self.stored = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not args.no_pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Commands that came with MAIL in one write are already waiting in the buffer.
        session.pipelined = bool(server._reader._buffer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if args.reject_rcpt and args.reject_rcpt in address:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if args.defer_rcpt and args.defer_rcpt in address:
            return "451 4.2.0 <%s>: mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if args.delay:
            await asyncio.sleep(args.delay)
        self.transactions += 1
        if self.transactions <= args.fail_first:
            return "451 4.3.0 Temporary local problem, try again"
        if args.reject_data:
            return "554 5.6.0 Message content rejected by policy"
        self.stored += 1
        if args.discard:
            return "250 2.0.0 Ok: discarded"
        name = "%06d-%d" % (self.stored, time.time_ns())
        tmp = os.path.join(args.out, "." + name)
        content = envelope.original_content
        hashed = {}
        if args.hash:
            sent = without_first_received(content)
            hashed = {"sha256": hashlib.sha256(sent).hexdigest(), "size": len(sent)}
        if args.discard_body or args.hash:
            content = content.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        with open(tmp + ".eml", "wb") as f:
            f.write(content)
        with open(tmp + ".json", "w") as f:
            json.dump(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "mail_options": envelope.mail_options,
                    # Implicit TLS: the listener speaks nothing else (aiosmtpd sets
                    # session.ssl only after STARTTLS).
                    "tls": session.ssl is not None or args.implicit_tls,
                    "pipelined": getattr(session, "pipelined", False),
                    **hashed,
                },
                f,
            )
        os.rename(tmp + ".json", os.path.join(args.out, name + ".json"))
        os.rename(tmp + ".eml", os.path.join(args.out, name + ".eml"))
        return "250 2.0.0 Ok: stored as %s" % name


def reset(transport):
    """Ends the connection with a TCP RST (SO_LINGER 0), the way a crashing peer does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class FaultySMTP(SMTP):
    """aiosmtpd's server with the faults --reset-mid-data and --close-after-mail."""

    faults = {"data": 0, "mail": 0}

    async def smtp_MAIL(self, arg):
        await super().smtp_MAIL(arg)
        FaultySMTP.faults["mail"] += 1
        if FaultySMTP.faults["mail"] <= args.close_after_mail and self.transport is not None:
            await self._writer.drain()
            self.transport.close()

    async def smtp_DATA(self, arg):
        if self.envelope is None or not self.envelope.rcpt_tos or arg:
            return await super().smtp_DATA(arg)
        FaultySMTP.faults["data"] += 1
        if FaultySMTP.faults["data"] > args.reset_mid_data:
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # Part of the content (a few lines of the header section), then the reset.
        for _ in range(3):
            await self._reader.readuntil(b"\r\n")
        reset(self.transport)
        # Until the lost connection cancels this session (no more commands are read).
        await asyncio.sleep(5)


class FaultyController(Controller):
    def factory(self):
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


tls_context = None
if args.tls_cert:
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(args.tls_cert, args.tls_key)

controller = FaultyController(
    Handler(),
    hostname="127.0.0.1",
    server_hostname="upstream.test",
    port=args.port,
    decode_data=False,
    enable_SMTPUTF8=True,
    tls_context=None if args.implicit_tls else tls_context,
    ssl_context=tls_context if args.implicit_tls else None,
    data_size_limit=64 * 1024 * 1024,
)
controller.start()
print("READY %d" % args.port, flush=True)
try:
    # Runs until the test closes our stdin (or dies).
    sys.stdin.read()
finally:
    controller.stop()
