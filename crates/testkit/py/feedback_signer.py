"""Signs feedback webhooks the way SendGrid, Mailgun and Amazon SNS do, with test keys made
at start, and serves what SNS serves: the signing certificate and the SubscribeURL.

  GET  /sendgrid-key            {"key": the ECDSA P-256 public key, base64 DER, as SendGrid shows it}
  POST /sign/sendgrid           body: the events JSON -> {"timestamp", "signature", "body"}
  POST /sign/mailgun?key=K      body: event-data JSON -> the whole signed webhook payload
  POST /sign/sns                body: SNS message without signature -> signed message
  GET  /cert.pem                the SNS signing certificate
  GET  /confirm?...             a SubscribeURL; GET /confirmations lists the calls

Prints "READY <port>" once listening.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

ec_key = ec.generate_private_key(ec.SECP256R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test-region.amazonaws.com")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(rsa_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(rsa_key, hashes.SHA256()))
cert_pem = cert.public_bytes(serialization.Encoding.PEM)
lock = threading.Lock()
confirmations = []

SNS_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


def sign_sns(message):
    text = ""
    for field in SNS_FIELDS[message["Type"]]:
        if field in message:
            text += "%s\n%s\n" % (field, message[field])
    version = message.get("SignatureVersion", "1")
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = rsa_key.sign(text.encode(), padding.PKCS1v15(), digest)
    signed = dict(message)
    signed.setdefault("SigningCertURL", "http://127.0.0.1:%d/cert.pem" % args.port)
    signed["SignatureVersion"] = version
    signed["Signature"] = base64.b64encode(signature).decode()
    return signed


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body, content_type="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/sendgrid-key":
            der = ec_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return self.answer(200, {"key": base64.b64encode(der).decode()})
        if path == "/cert.pem":
            return self.answer(200, cert_pem, "application/x-pem-file")
        if path == "/confirm":
            with lock:
                confirmations.append(self.path)
            return self.answer(200, b"<ConfirmSubscriptionResponse/>", "text/xml")
        if path == "/confirmations":
            with lock:
                return self.answer(200, list(confirmations))
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        if url.path == "/sign/sendgrid":
            timestamp = str(int(time.time()))
            signature = ec_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            return self.answer(200, {"timestamp": timestamp,
                                     "signature": base64.b64encode(signature).decode()})
        if url.path == "/sign/mailgun":
            key = parse_qs(url.query)["key"][0]
            timestamp = str(int(time.time()))
            token = uuid.uuid4().hex
            signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
            return self.answer(200, {"signature": {"timestamp": timestamp, "token": token,
                                                   "signature": signature},
                                     "event-data": json.loads(body)})
        if url.path == "/sign/sns":
            return self.answer(200, sign_sns(json.loads(body)))
        self.answer(404, {"error": "not found"})


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print("READY %d" % args.port, flush=True)
server.serve_forever()
