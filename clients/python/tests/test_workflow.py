"""The workflow node executor's output shapes, against a live Sluice."""

from __future__ import annotations

import asyncio
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
            ({"subject": "s", "body": "b"}, "to"),
            ({"to": "a@example.net", "body": "b"}, "subject"),
            ({"to": "a@example.net", "subject": "s"}, "text or html"),
        ]:
            output = execute_email_node(params, client=client)
            assert set(output) == ERROR_KEYS
            assert (output["code"], output["retryable"], output["attempts"]) == ("missing_parameter", False, 0)
            assert what in output["error"]
        bad = execute_email_node({"to": "a@example.net", "subject": "s", "body": "b", "retryAttempts": "x"}, client=client)
        assert (bad["status"], bad["code"]) == ("error", "invalid_parameter")
    finally:
        server.close()
    assert server.requests == []


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
