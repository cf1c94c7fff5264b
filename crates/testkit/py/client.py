"""Python's smtplib as a real SMTP client for the tests. Prints one JSON line with the outcome.

  client.py --port P --mode starttls|implicit|plain [--user U --password PW]
            --from F --to T [--to T ...] --file message.eml [--pause]

--pause sends the message up to its last line, prints PAUSED, waits for a line on stdin,
then finishes DATA (for shutdown tests).
"""
import argparse
import json
import smtplib
import ssl
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--mode", default="starttls")
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--from", dest="sender", required=True)
parser.add_argument("--to", action="append", required=True)
parser.add_argument("--file", required=True)
parser.add_argument("--pause", action="store_true")
args = parser.parse_args()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
message = open(args.file, "rb").read()


def out(**kw):
    print(json.dumps(kw), flush=True)


try:
    if args.mode == "implicit":
        client = smtplib.SMTP_SSL("127.0.0.1", args.port, timeout=20, context=ctx)
    else:
        client = smtplib.SMTP("127.0.0.1", args.port, timeout=20)
    client.ehlo("client.test")
    if args.mode == "starttls":
        client.starttls(context=ctx)
        client.ehlo("client.test")
    if args.user:
        client.login(args.user, args.password)
    if args.pause:
        code, msg = client.mail(args.sender)
        assert code == 250, (code, msg)
        for rcpt in args.to:
            code, msg = client.rcpt(rcpt)
            assert code == 250, (code, msg)
        code, msg = client.docmd("DATA")
        assert code == 354, (code, msg)
        head, last = message[:-20], message[-20:]
        client.send(head.replace(b"\r\n.", b"\r\n.."))
        out(paused=True)
        sys.stdin.readline()
        client.send(last + b".\r\n")
        code, msg = client.getreply()
        out(ok=code == 250, code=code, message=msg.decode())
        client.quit()
        sys.exit(0)
    options = [] if message.isascii() else ["BODY=8BITMIME"]
    code, msg = client.mail(args.sender, options)
    if code != 250:
        out(ok=False, code=code, message=msg.decode(errors="replace"))
        sys.exit(0)
    refused = {}
    for rcpt in args.to:
        code, msg = client.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = [code, msg.decode(errors="replace")]
    if len(refused) == len(args.to):
        first = list(refused.values())[0]
        out(ok=False, code=first[0], message=first[1], refused=refused)
        sys.exit(0)
    code, msg = client.data(message)
    out(ok=code == 250, code=code, message=msg.decode(errors="replace"), refused=refused)
    client.quit()
except smtplib.SMTPResponseException as e:
    out(ok=False, code=e.smtp_code, message=e.smtp_error.decode(errors="replace"))
except smtplib.SMTPRecipientsRefused as e:
    out(ok=False, code=list(e.recipients.values())[0][0],
        message=list(e.recipients.values())[0][1].decode(errors="replace"))
except (smtplib.SMTPException, OSError) as e:
    out(ok=False, code=0, message=str(e))
