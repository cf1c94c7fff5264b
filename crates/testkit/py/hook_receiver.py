"""A tenant's event webhook endpoint: records every POST, checks its Sluice-Signature
(t=<unix>,v1=<hex hmac_sha256(secret, t + "." + body)>) with the secret given, and answers
500 to the first --fail-first posts, 204 after. GET /_log lists what arrived.

Prints "READY <port>" once listening.
"""
import argparse
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--secret", required=True)
parser.add_argument("--fail-first", type=int, default=0)
args = parser.parse_args()
lock = threading.Lock()
log = []


def signature_ok(header, body):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    expected = hmac.new(args.secret.encode(), parts.get("t", "").encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self.reply(200, json.dumps(log).encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            status = 500 if len(log) < args.fail_first else 204
            log.append({
                "status": status,
                "signature_ok": signature_ok(self.headers.get("Sluice-Signature", ""), body),
                "delivery_id": self.headers.get("Sluice-Delivery-Id"),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body),
            })
        self.reply(status)


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print("READY %d" % args.port, flush=True)
server.serve_forever()
