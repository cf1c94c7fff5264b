"""Checks tests/containers.sh makes from the host against a containerised Sluice, through
the engine's port mappings: real clients (smtplib, urllib), each failing loudly.

  probe.py wait-http URL [SECONDS]            until URL answers 200
  probe.py http URL STATUS [TEXT]             one GET: that status (and TEXT in the body)
  probe.py smtp-plain PORT SENDER             the trusted plain port, no AUTH
  probe.py smtp-submission PORT USER PASSWORD SENDER    STARTTLS + AUTH
  probe.py api-messages URL API_KEY SENDER STATUS [SECONDS]
                                              until the API lists SENDER's message as STATUS
"""

import json
import smtplib
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

HOST = "127.0.0.1"


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def wait_http(url, seconds="60"):
    deadline = time.monotonic() + float(seconds)
    last = None
    while time.monotonic() < deadline:
        try:
            status, _ = get(url)
            if status == 200:
                print(f"ok: {url} answered 200")
                return
            last = f"status {status}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.5)
    sys.exit(f"FAIL: {url} did not answer 200 within {seconds} s (last: {last})")


def http(url, status, text=None):
    got, body = get(url)
    if got != int(status):
        sys.exit(f"FAIL: GET {url} answered {got}, wanted {status}: {body[:300]}")
    if text is not None and text not in body:
        sys.exit(f"FAIL: GET {url}: {text!r} not in the body: {body[:300]}")
    print(f"ok: GET {url} -> {got}")


def message(sender):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "someone@example.net"
    msg["Subject"] = f"probe from {sender}"
    msg.set_content("sent from the host through the container's port mapping\n")
    return msg


def send(client, sender):
    refused = client.send_message(message(sender))
    if refused:
        sys.exit(f"FAIL: recipients refused: {refused}")
    code, reply = client.noop()
    if code != 250:
        sys.exit(f"FAIL: NOOP after the message answered {code} {reply!r}")


def smtp_plain(port, sender):
    with smtplib.SMTP(HOST, int(port), timeout=20) as client:
        client.ehlo("probe.test")
        send(client, sender)
    print(f"ok: plain port {port} accepted mail from {sender}")


def smtp_submission(port, user, password, sender):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the dev certificate is self-signed
    with smtplib.SMTP(HOST, int(port), timeout=20) as client:
        client.ehlo("probe.test")
        client.starttls(context=context)
        client.ehlo("probe.test")
        client.login(user, password)
        send(client, sender)
    print(f"ok: submission port {port} (STARTTLS + AUTH) accepted mail from {sender}")


def api_messages(url, api_key, sender, status, seconds="60"):
    deadline = time.monotonic() + float(seconds)
    query = urllib.parse.urlencode({"from": sender})
    seen = None
    while time.monotonic() < deadline:
        code, body = get(
            f"{url}/api/v1/messages?{query}", {"authorization": f"Bearer {api_key}"}
        )
        if code != 200:
            sys.exit(f"FAIL: GET /api/v1/messages answered {code}: {body[:300]}")
        seen = [m["status"] for m in json.loads(body)["items"]]
        if seen == [status]:
            print(f"ok: the API lists the message from {sender} as {status}")
            return
        time.sleep(0.5)
    sys.exit(f"FAIL: the message from {sender} is not {status} within {seconds} s (saw {seen})")


COMMANDS = {
    "wait-http": wait_http,
    "http": http,
    "smtp-plain": smtp_plain,
    "smtp-submission": smtp_submission,
    "api-messages": api_messages,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
