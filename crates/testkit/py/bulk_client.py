"""Many large messages at once through Python's smtplib (the spool's memory and crash tests).

  bulk_client.py --port P --mode starttls|implicit|plain [--user U --password PW]
                 --count N --size BYTES --concurrency C [--label L] [--stall-at BYTES]

Each of C threads keeps a session of its own (EHLO, STARTTLS and AUTH as a real client
does them) and sends messages one after another until N have been started. A message is
made as it is sent, a block at a time, so this process stays small whatever the size.

One JSON line per event on stdout:
  {"event": "sent", "seq": 7, "code": 250, "message": "2.0.0 Ok: queued as 12",
   "sha256": "...", "size": 10485812, "dot_sent": true}
      code 0 is an I/O error; dot_sent tells whether the end of data went out before it.
  {"event": "stalled", "seq": 9}
      --stall-at: this much of the body is sent, and the thread waits for stdin.
  {"event": "done"}
A line on stdin (or its end) lets stalled threads go on; the end of stdin also stops new
messages from starting. sha256 and size are those of the message as meant (before
dot-stuffing): what an upstream must get after the Received header Sluice adds.
"""
import argparse
import base64
import hashlib
import json
import random
import smtplib
import ssl
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--mode", default="starttls")
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--from", dest="sender", default="app@example.com")
parser.add_argument("--to", default="r@dest.test")
parser.add_argument("--count", type=int, required=True)
parser.add_argument("--size", type=int, required=True)
parser.add_argument("--concurrency", type=int, default=1)
parser.add_argument("--label", default="bulk")
parser.add_argument("--first-seq", type=int, default=1)
parser.add_argument("--stall-at", type=int, default=0)
args = parser.parse_args()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

out_lock = threading.Lock()
seq_lock = threading.Lock()
next_seq = [args.first_seq]
last_seq = args.first_seq + args.count - 1
stop = threading.Event()
go_on = threading.Event()


def out(**kw):
    line = json.dumps(kw)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def take_seq():
    with seq_lock:
        if stop.is_set() or next_seq[0] > last_seq:
            return None
        seq = next_seq[0]
        next_seq[0] += 1
        return seq


def blocks(seq):
    """The message in pieces that each end a line; none but the header starts with a dot."""
    yield (
        "From: <%s>\r\nTo: <%s>\r\nSubject: spool %s %d\r\n"
        "Message-ID: <%s-%d@example.com>\r\nX-Spool-Seq: %s %d\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        % (args.sender, args.to, args.label, seq, args.label, seq, args.label, seq)
    ).encode()
    # 48 KiB of base64 that differs per message, in lines of 768 (RFC 5322 allows 998: the
    # Python upstream's cost is per line); every block adds its number, so no two blocks of
    # one message are the same bytes either.
    noise = base64.b64encode(random.Random("%s/%d" % (args.label, seq)).randbytes(36 * 1024))
    lines = b"".join(noise[i : i + 768] + b"\r\n" for i in range(0, len(noise), 768))
    index = 0
    while True:
        yield b"block %d of %s %d\r\n.a line that starts with a dot\r\n" % (
            index,
            args.label.encode(),
            seq,
        ) + lines
        index += 1


def connect():
    if args.mode == "implicit":
        client = smtplib.SMTP_SSL("127.0.0.1", args.port, timeout=60, context=ctx)
    else:
        client = smtplib.SMTP("127.0.0.1", args.port, timeout=60)
    client.ehlo("client.test")
    if args.mode == "starttls":
        client.starttls(context=ctx)
        client.ehlo("client.test")
    if args.user:
        client.login(args.user, args.password)
    return client


def send_one(client, seq):
    """Sends message seq; returns its event (raises nothing)."""
    digest = hashlib.sha256()
    size = 0
    dot_sent = False
    stalled = False
    try:
        code, msg = client.mail(args.sender)
        if code != 250:
            return dict(code=code, message=msg.decode(errors="replace"))
        code, msg = client.rcpt(args.to)
        if code not in (250, 251):
            return dict(code=code, message=msg.decode(errors="replace"))
        code, msg = client.docmd("DATA")
        if code != 354:
            return dict(code=code, message=msg.decode(errors="replace"))
        for block in blocks(seq):
            if size:
                # Body blocks until the size is reached; the last one cut at a line end.
                room = args.size - size
                if room <= 0:
                    break
                if len(block) > room:
                    cut = block.rfind(b"\r\n", 0, room)
                    if cut < 0:
                        break
                    block = block[: cut + 2]
            digest.update(block)
            size += len(block)
            client.send(block.replace(b"\r\n.", b"\r\n.."))
            if args.stall_at and not stalled and size >= args.stall_at:
                stalled = True
                out(event="stalled", seq=seq)
                go_on.wait()
        client.send(b".\r\n")
        dot_sent = True
        code, msg = client.getreply()
        return dict(code=code, message=msg.decode(errors="replace"), dot_sent=True,
                    sha256=digest.hexdigest(), size=size)
    except (smtplib.SMTPException, OSError) as e:
        return dict(code=0, message=str(e), dot_sent=dot_sent,
                    sha256=digest.hexdigest(), size=size)


def worker():
    client = None
    while True:
        if client is None:
            if stop.is_set():
                return
            try:
                client = connect()
            except (smtplib.SMTPException, OSError):
                time.sleep(0.2)
                continue
        seq = take_seq()
        if seq is None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
            return
        result = send_one(client, seq)
        out(event="sent", seq=seq, **result)
        if result["code"] != 250:
            try:
                client.close()
            except OSError:
                pass
            client = None


def read_stdin():
    for _ in sys.stdin:
        go_on.set()
    stop.set()
    go_on.set()


threading.Thread(target=read_stdin, daemon=True).start()
threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
out(event="done")
