"""Verifies a message's DKIM signature with dkimpy, an implementation independent of
Sluice's, answering the DNS query with the record given. Prints {"ok": true|false}."""
import argparse
import json

import dkim

parser = argparse.ArgumentParser()
parser.add_argument("--file", required=True)
parser.add_argument("--name", required=True, help="<selector>._domainkey.<domain>")
parser.add_argument("--record", required=True, help="the TXT value")
args = parser.parse_args()


def dns(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return args.record.encode() if name.rstrip(".") == args.name else None


with open(args.file, "rb") as f:
    message = f.read()
print(json.dumps({"ok": bool(dkim.verify(message, dnsfunc=dns))}))
