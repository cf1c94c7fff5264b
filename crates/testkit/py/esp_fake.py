"""Local stand-ins for SendGrid, Mailgun, Amazon SES v2 and Microsoft Graph.

Each endpoint checks a request the way its service does (authentication, the SigV4
signature recomputed with botocore, the JSON / multipart / base64 shape) and answers as
the service would: success, or the service's own error. Tests script extra answers per
service (400, 401, 429 with Retry-After, 500, 503, a hang) through POST /_script, and read
every request and the problems found in it from GET /_log. Scripted network faults, applied
to a request the service would accept (after it was checked and logged): "reset" (TCP RST
before any status line), "reset-mid-body" (the success status and headers, part of the
body, then RST), "truncated-json" (the success status with half a JSON body, its length
honest) and "non-json" (the success status with an HTML body).

Prints "READY <port>" once listening.
"""
import argparse
import base64
import binascii
import email
import email.policy
import email.utils
import json
import os
import re
import socket
import struct
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--sendgrid-key", default="SG.test-key")
parser.add_argument("--mailgun-key", default="mg-test-key")
parser.add_argument("--mailgun-domain", default="mg.example.test")
parser.add_argument("--ses-access-key", default="AKIDEXAMPLE")
parser.add_argument("--ses-secret", default="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
parser.add_argument("--ses-region", default="eu-west-1")
parser.add_argument("--graph-tenant", default="tenant-1")
parser.add_argument("--graph-client-id", default="client-1")
parser.add_argument("--graph-client-secret", default="graph-secret")
parser.add_argument("--graph-sender", default="sender@example.test")
parser.add_argument("--graph-token-ttl", type=int, default=3600)
args = parser.parse_args()

lock = threading.Lock()
log = []
scripts = {}  # service -> list of scripted answers
tokens = {}  # graph token -> expiry (unix seconds)
FAULTS = ("reset", "reset-mid-body", "truncated-json", "non-json")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def next_script(service):
    with lock:
        queue = scripts.get(service) or []
        return queue.pop(0) if queue else None


def parse_mime(raw):
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not message.keys():
        return None
    return message


def header_recipients(message):
    """Every address the To, Cc and Bcc fields name."""
    found = []
    for field in ("To", "Cc", "Bcc"):
        for _, address in email.utils.getaddresses([str(v) for v in message.get_all(field, [])]):
            if address:
                found.append(address)
    return found


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reset(self):
        """Ends the connection with a TCP RST (SO_LINGER 0), as a crashing peer does."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True

    def fault(self, fault, status, reply, headers):
        if fault == "reset":
            return self.reset()
        if isinstance(reply, (dict, list)):
            reply = json.dumps(reply).encode()
        if fault == "non-json":
            return self.answer(status, b"<html><body>Service degraded</body></html>", headers,
                               content_type="text/html")
        body = reply or json.dumps({"message": "Queued. Thank you.", "id": "<%s>" % uuid.uuid4().hex}).encode()
        if fault == "truncated-json":
            return self.answer(status, body[: len(body) // 2], headers)
        # reset-mid-body: the status line and headers promise more than is sent.
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + 100))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        time.sleep(0.05)
        self.reset()

    def do_GET(self):
        if self.path == "/_log":
            with lock:
                return self.answer(200, list(log))
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        if path == "/_script":
            order = json.loads(body)
            with lock:
                scripts.setdefault(order["service"], []).extend(order["answers"])
            return self.answer(204)
        routes = [
            (r"^/v3/mail/send$", "sendgrid", self.sendgrid),
            (r"^/v3/([^/]+)/messages\.mime$", "mailgun", self.mailgun),
            (r"^/v2/email/outbound-emails$", "ses", self.ses),
            (r"^/([^/]+)/oauth2/v2\.0/token$", "graph-token", self.graph_token),
            (r"^/v1\.0/users/([^/]+)/sendMail$", "graph", self.graph_send),
        ]
        for pattern, service, handle in routes:
            match = re.match(pattern, path)
            if not match:
                continue
            entry = {"service": service, "path": path, "problems": [], "recipients": []}
            scripted = next_script(service)
            if scripted == "hang":
                time.sleep(30)
                self.close_connection = True
                return
            if scripted == "revoke-tokens":
                with lock:
                    tokens.clear()
                scripted = None
            status, reply, headers = handle(match, body, entry)
            if status < 300 and scripted in FAULTS:
                entry["status"] = status
                entry["fault"] = scripted
                with lock:
                    log.append(entry)
                return self.fault(scripted, status, reply, headers)
            if status < 300 and scripted:
                code, _, retry_after = scripted.partition(":")
                status = int(code)
                reply = {"errors": [{"message": "scripted %s" % code}]}
                headers = {"Retry-After": retry_after} if retry_after else {}
            entry["status"] = status
            with lock:
                log.append(entry)
            return self.answer(status, reply, headers)
        self.answer(404, {"error": "not found"})

    # SendGrid v3 mail send: Bearer key, JSON as documented.
    def sendgrid(self, match, body, entry):
        if self.headers.get("Authorization") != "Bearer " + args.sendgrid_key:
            entry["problems"].append("authorization")
            return 401, {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked", "field": None, "help": None}]}, {}
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            entry["problems"].append("content-type")
            return 415, {"errors": [{"message": "Content-Type should be application/json."}]}, {}
        try:
            payload = json.loads(body)
        except ValueError:
            entry["problems"].append("json")
            return 400, {"errors": [{"message": "Bad Request", "field": None}]}, {}
        entry["json"] = payload
        problems = entry["problems"]
        personalizations = payload.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            problems.append("personalizations")
        # The documented limits, refused with SendGrid's own messages (mail-send errors page).
        if isinstance(personalizations, list) and len(personalizations) > 1000:
            problems.append("personalizations limit")
            return 400, {"errors": [{"message": "The personalization block is limited to 1000 personalizations per API request. You have provided %d personalizations. Please consider splitting this into multiple requests and resending your request." % len(personalizations), "field": "personalizations", "help": None}]}, {}
        total = sum(len(p.get(f) or []) for p in personalizations or [] for f in ("to", "cc", "bcc"))
        if total > 1000:
            problems.append("recipients limit")
            return 400, {"errors": [{"message": "There is a limit of 1000 total recipients (to + cc + bcc) per request.", "field": "personalizations", "help": None}]}, {}
        for p in personalizations or []:
            seen = []
            if not p.get("to"):
                problems.append("personalizations.to")
            for field in ("to", "cc", "bcc"):
                for r in p.get(field, []):
                    address = (r.get("email") or "").lower()
                    if not EMAIL.match(address) or address in seen:
                        problems.append("personalizations.%s" % field)
                    if "name" in r and (not isinstance(r["name"], str) or not r["name"]):
                        problems.append("personalizations.%s.name" % field)
                    seen.append(address)
                    entry["recipients"].append(r.get("email"))
        if not EMAIL.match(str((payload.get("from") or {}).get("email", ""))):
            problems.append("from")
        if not payload.get("subject"):
            problems.append("subject")
        content = payload.get("content") or []
        if not content or any(not c.get("value") or not c.get("type") for c in content):
            problems.append("content")
        types = [c.get("type") for c in content]
        if "text/plain" in types and types.index("text/plain") != 0:
            problems.append("content order")
        for a in payload.get("attachments", []):
            try:
                base64.b64decode(a.get("content", ""), validate=True)
            except binascii.Error:
                problems.append("attachments.content")
            if not a.get("filename"):
                problems.append("attachments.filename")
        reserved = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}
        for name, value in (payload.get("headers") or {}).items():
            if name.lower() in reserved or not isinstance(value, str):
                problems.append("headers.%s" % name)
        if problems:
            return 400, {"errors": [{"message": p, "field": p} for p in problems]}, {}
        entry["message_id"] = uuid.uuid4().hex[:22]
        return 202, b"", {"X-Message-Id": entry["message_id"]}

    # Mailgun messages.mime: basic auth api:key, multipart with to and message.
    def mailgun(self, match, body, entry):
        expected = "Basic " + base64.b64encode(("api:" + args.mailgun_key).encode()).decode()
        if self.headers.get("Authorization") != expected:
            entry["problems"].append("authorization")
            return 401, b"Forbidden", {}
        if match.group(1) != args.mailgun_domain:
            entry["problems"].append("domain")
            return 404, {"message": "Domain not found: %s" % match.group(1)}, {}
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/form-data"):
            entry["problems"].append("content-type")
            return 400, {"message": "Invalid form"}, {}
        form = email.message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP)
        fields = {}
        for part in form.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields.setdefault(name, []).append(part)
        entry["recipients"] = [p.get_content().strip() for p in fields.get("to", [])]
        entry["variables"] = {k: fields[k][0].get_content() for k in fields if k and k.startswith("v:")}
        if len(entry["recipients"]) > 1000:
            # Mailgun's limit of 1000 recipients per message (the text is ours).
            entry["problems"].append("recipients limit")
            return 400, {"message": "Too many recipients: the limit is 1000 per message"}, {}
        if not entry["recipients"] or not all(EMAIL.match(r) for r in entry["recipients"]):
            entry["problems"].append("to")
            return 400, {"message": "'to' parameter is not a valid address. please check documentation"}, {}
        messages = fields.get("message", [])
        if len(messages) != 1 or not messages[0].get_filename():
            entry["problems"].append("message")
            return 400, {"message": "Need at least one message part"}, {}
        part = messages[0]
        raw = part.get_payload()[0].as_bytes() if part.is_multipart() else part.get_payload(decode=True)
        if not raw or parse_mime(raw) is None:
            entry["problems"].append("mime")
            return 400, {"message": "Invalid MIME message"}, {}
        entry["mime"] = raw.decode("utf-8", "replace")
        entry["message_id"] = "%s@%s" % (uuid.uuid4().hex, args.mailgun_domain)
        return 200, {"id": "<%s>" % entry["message_id"], "message": "Queued. Thank you."}, {}

    # SES v2 SendEmail, raw content, SigV4 recomputed with botocore.
    def ses(self, match, body, entry):
        problem = self.sigv4_problem(body)
        if problem:
            entry["problems"].append(problem)
            return 403, {"message": problem}, {"x-amzn-ErrorType": "SignatureDoesNotMatchException"}
        try:
            payload = json.loads(body)
            raw = base64.b64decode(payload["Content"]["Raw"]["Data"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            entry["problems"].append("content")
            return 400, {"message": "Content.Raw.Data is required"}, {"x-amzn-ErrorType": "BadRequestException"}
        entry["json"] = payload
        message = parse_mime(raw)
        if message is None:
            entry["problems"].append("mime")
            return 400, {"message": "Illegal content"}, {"x-amzn-ErrorType": "BadRequestException"}
        # With a Destination, SES sends to it and not to the headers' addresses; without
        # one, to every To, Cc and Bcc of the raw message.
        destination = payload.get("Destination")
        if destination:
            entry["recipients"] = [a for f in ("ToAddresses", "CcAddresses", "BccAddresses")
                                   for a in destination.get(f, [])]
        else:
            entry["recipients"] = header_recipients(message)
        if len(entry["recipients"]) > 50:
            # "The message may not include more than 50 recipients, across the To:, CC: and
            # BCC: fields" (SES quotas); refused as the service does.
            entry["problems"].append("recipients limit")
            return 400, {"message": "Recipient count exceeds 50."}, {"x-amzn-ErrorType": "BadRequestException"}
        entry["mime"] = raw.decode("utf-8", "replace")
        entry["message_id"] = "0102%s-000000" % uuid.uuid4().hex
        return 200, {"MessageId": entry["message_id"]}, {}

    def sigv4_problem(self, body):
        authorization = self.headers.get("Authorization") or ""
        found = re.match(
            r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", authorization)
        if not found:
            return "missing or malformed SigV4 authorization"
        key, day, region, service, signed, signature = found.groups()
        if key != args.ses_access_key:
            return "unknown access key"
        if region != args.ses_region or service != "ses":
            return "credential scope"
        amz_date = self.headers.get("X-Amz-Date") or ""
        try:
            at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return "x-amz-date"
        if abs((datetime.now(timezone.utc) - at).total_seconds()) > 300 or day != amz_date[:8]:
            return "Signature expired"
        names = signed.split(";")
        if "host" not in names:
            return "host not signed"
        headers = {name: self.headers.get(name, "") for name in names}
        request = AWSRequest(method="POST", url="http://%s%s" % (headers["host"], self.path),
                             data=body, headers=headers)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(args.ses_access_key, args.ses_secret), "ses", args.ses_region)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if expected != signature:
            return "The request signature we calculated does not match the signature you provided"
        return None

    # Microsoft identity platform: client-credentials grant.
    def graph_token(self, match, body, entry):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if match.group(1) != args.graph_tenant:
            entry["problems"].append("tenant")
            return 400, {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}, {}
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "https://graph.microsoft.com/.default":
            entry["problems"].append("grant")
            return 400, {"error": "invalid_request"}, {}
        if form.get("client_id") != args.graph_client_id or form.get("client_secret") != args.graph_client_secret:
            entry["problems"].append("client")
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}, {}
        token = "tok-" + uuid.uuid4().hex
        with lock:
            tokens[token] = time.time() + args.graph_token_ttl
        return 200, {"token_type": "Bearer", "expires_in": args.graph_token_ttl, "access_token": token}, {}

    # Graph sendMail with a MIME body: base64 in a text/plain request.
    def graph_send(self, match, body, entry):
        bearer = (self.headers.get("Authorization") or "")[len("Bearer "):]
        with lock:
            valid = tokens.get(bearer, 0) > time.time()
        if not valid:
            entry["problems"].append("token")
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}}, {}
        if match.group(1) != args.graph_sender:
            entry["problems"].append("sender")
            return 404, {"error": {"code": "ErrorInvalidUser"}}, {}
        if not (self.headers.get("Content-Type") or "").startswith("text/plain"):
            entry["problems"].append("content-type")
            return 415, {"error": {"code": "UnsupportedMediaType"}}, {}
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            entry["problems"].append("base64")
            return 400, {"error": {"code": "ErrorMimeContentInvalidBase64String"}}, {}
        message = parse_mime(raw)
        if message is None:
            entry["problems"].append("mime")
            return 400, {"error": {"code": "ErrorMimeContentInvalid"}}, {}
        # Graph sends to whoever the MIME's To, Cc and Bcc name: these are who receive it.
        entry["recipients"] = header_recipients(message)
        entry["visible"] = {f: [a for _, a in email.utils.getaddresses(message.get_all(f, []))]
                            for f in ("To", "Cc")}
        if not entry["recipients"]:
            entry["problems"].append("recipients")
            return 400, {"error": {"code": "ErrorInvalidRecipients"}}, {}
        if len(entry["recipients"]) > 500:
            # Exchange Online's recipient limit (500 per message by default, To + Cc + Bcc).
            entry["problems"].append("recipients limit")
            return 400, {"error": {"code": "ErrorRecipientLimitExceeded", "message": "The message exceeds the maximum number of recipients (500)."}}, {}
        entry["mime"] = raw.decode("utf-8", "replace")
        return 202, b"", {}


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print("READY %d" % args.port, flush=True)
server.serve_forever()
