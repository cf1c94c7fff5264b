"""The workflow node executor's output shapes, against a live Sluice."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import re
import uuid

from sluice_client import AsyncClient, Client, execute_email_node, execute_email_node_async
from support import FakeTime, ScriptedServer, closed_port_url

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SUCCESS_KEYS = {"status", "messageId", "to", "attempts", "timestamp", "duration"}
ERROR_KEYS = {"status", "error", "errorCode", "code", "retryable", "attempts", "timestamp", "duration"}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}@example.net"


def test_success_shape(sluice):
    to = unique("node")
    params = {
        "to": to, "subject": "From a workflow", "body": "<p>Hello from the node</p>",
        "from": "flows@example.com", "cc": [unique("cc")], "retryAttempts": 2,
    }  # fmt: skip
    output = execute_email_node(params, client=Client(sluice.url, sluice.api_key))
    assert set(output) == SUCCESS_KEYS, output
    assert output["status"] == "success" and output["to"] == [to] and output["attempts"] == 1
    assert ISO_UTC.match(output["timestamp"]) and isinstance(output["duration"], int)
    [message] = sluice.wait_captured(to)
    assert message["id"] == output["messageId"]
    assert "Hello from the node" in sluice.raw(output["messageId"])


def test_template_and_data_through_the_async_node(sluice):
    to = unique("node-tpl")
    params = {"to": [to], "template": "notification", "data": {"title": "Build 7", "message": "green"}}
    client = AsyncClient(sluice.url, sluice.api_key)
    output = asyncio.run(execute_email_node(params, client=client))
    again = asyncio.run(execute_email_node_async({**params, "to": unique("node-tpl")}, client=client))
    assert output["status"] == again["status"] == "success"
    raw = sluice.raw(output["messageId"])
    assert "Subject: Build 7" in raw and "green" in raw


def test_a_server_refusal_is_the_error_shape_not_an_exception(sluice):
    output = execute_email_node(
        {"to": "not an address", "subject": "s", "body": "<p>x</p>"},
        client=Client(sluice.url, sluice.api_key),
    )
    assert set(output) == ERROR_KEYS, output
    assert output["status"] == "error" and output["errorCode"] == "SMTP_SEND_ERROR"
    assert (output["code"], output["retryable"], output["attempts"]) == ("validation_failed", False, 1)
    assert "to[0]" in output["error"] and ISO_UTC.match(output["timestamp"])


def test_a_bad_key_is_the_error_shape(sluice):
    output = execute_email_node(
        {"to": unique("x"), "subject": "s", "body": "b"}, client=Client(sluice.url, "sk_wrong")
    )
    assert (output["status"], output["code"], output["retryable"]) == ("error", "unauthorized", False)


def test_missing_parameters_make_no_call():
    server = ScriptedServer([])
    client = Client(server.url, "k")
    try:
        for params, what in [
            ({"subject": "s", "body": "b"}, "missing parameter: to"),
            ({"to": " , ", "subject": "s", "body": "b"}, "missing parameter: to"),
            ({"to": "a@example.net", "body": "b"}, "missing parameter: subject (or template)"),
            ({"to": "a@example.net", "subject": "s"}, "missing parameter: body (or template)"),
            ({"to": "a@example.net", "subject": "s", "body": "b", "retryAttempts": "x"}, "retryAttempts"),
            ({"to": "a@example.net", "subject": "s", "body": "b", "attachments": [{"filename": "a"}]},
             "attachments[0]"),
        ]:
            output = execute_email_node(params, client=client)
            assert set(output) == ERROR_KEYS
            assert (output["code"], output["retryable"], output["attempts"]) == ("missing_parameter", False, 0)
            assert what in output["error"]
    finally:
        server.close()
    assert server.requests == []


def test_the_platforms_spellings_of_addresses_attachments_and_retry_attempts(sluice):
    """`to` as a comma-separated string (a quoted comma does not split), retryAttempts as a
    numeric string, attachments with contentType and base64 or text content."""
    first, second = unique("a"), unique("b")
    params = {
        "to": f'"Doe, Ann" <{first}>, {second}', "subject": "s", "body": "<p>b</p>",
        "retryAttempts": "2",
        "attachments": [
            {"filename": "a.bin", "content": base64.b64encode(bytes(range(256))).decode(),
             "encoding": "base64", "contentType": "application/octet-stream"},
            {"filename": "note.txt", "content": "plain text", "contentType": "text/plain"},
        ],
    }  # fmt: skip
    output = execute_email_node(params, client=Client(sluice.url, sluice.api_key))
    assert output["status"] == "success", output
    assert output["to"] == [f'"Doe, Ann" <{first}>', second]
    [message] = sluice.wait_captured(second)
    assert sorted(message["rcpt_to"]) == sorted([first, second])
    parsed = email.message_from_string(sluice.raw(output["messageId"]), policy=email.policy.default)
    payloads = {a.get_filename(): a.get_payload(decode=True) for a in parsed.iter_attachments()}
    assert payloads == {"a.bin": bytes(range(256)), "note.txt": b"plain text"}


def test_an_unexpected_failure_is_still_the_error_shape():
    class Broken(Client):
        def send(self, **kwargs):
            raise RuntimeError("boom")

    server = ScriptedServer([])
    try:
        output = execute_email_node({"to": "a@example.net", "subject": "s", "body": "b"}, client=Broken(server.url, "k"))
    finally:
        server.close()
    assert set(output) == ERROR_KEYS
    assert (output["code"], output["error"]) == ("internal_error", "RuntimeError: boom")


def test_retry_attempts_timestamp_and_duration_follow_the_injected_clock():
    time = FakeTime()
    started = time.now
    client = Client(closed_port_url(), "k", clock=time.clock, sleep=time.sleep)
    output = execute_email_node({"to": "a@example.net", "subject": "s", "body": "b", "retryAttempts": 2}, client=client)
    assert (output["code"], output["retryable"], output["attempts"]) == ("network_error", True, 3)
    assert time.sleeps == [1, 2]
    assert output["duration"] == 3000
    assert output["timestamp"] == "2026-11-30T00:53:23.000Z" and time.now == started + 3


def test_retry_attempts_zero_fails_after_one_try_async():
    time = FakeTime()
    client = AsyncClient(closed_port_url(), "k", clock=time.clock, sleep=time.async_sleep)
    output = asyncio.run(
        execute_email_node_async({"to": "a@example.net", "subject": "s", "body": "b", "retryAttempts": 0}, client=client)
    )
    assert (output["status"], output["attempts"], output["duration"]) == ("error", 1, 0)
    assert time.sleeps == []
