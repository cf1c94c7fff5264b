"""The client's retries with an injected clock and sleep: nothing waits for real.

Network failures are real (a closed port, a server that never answers); the answers a live
Sluice cannot be made to give on demand come from a scripted HTTP server."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from sluice_client import (
    AsyncClient,
    Client,
    IdempotencyError,
    InvalidResponseError,
    MissingParameterError,
    NetworkError,
    ServerError,
    SluiceError,
)
from support import FakeTime, ScriptedServer, SilentServer, closed_port_url, header_of, json_error

MESSAGE = {"to": "ann@example.net", "subject": "Hi", "text": "Hello"}
QUEUED = (202, {"Content-Type": "application/json"}, b'{"id": 7, "status": "queued"}')


def test_connection_refused_is_retried_on_the_schedule():
    time = FakeTime()
    client = Client(closed_port_url(), "k", clock=time.clock, sleep=time.sleep)
    with pytest.raises(NetworkError) as caught:
        client.send(**MESSAGE, retry_attempts=6)
    error = caught.value
    assert (error.code, error.status, error.retryable, error.attempts) == (
        "network_error", None, True, 7,
    )  # fmt: skip
    assert "refused" in error.message
    assert time.sleeps == [1, 2, 4, 8, 10, 10]


def test_the_default_is_three_retries():
    time = FakeTime()
    client = Client(closed_port_url(), "k", clock=time.clock, sleep=time.sleep)
    with pytest.raises(NetworkError) as caught:
        client.send(**MESSAGE)
    assert caught.value.attempts == 4
    assert time.sleeps == [1, 2, 4]


def test_a_timeout_is_retryable_with_its_own_code():
    silent = SilentServer()
    time = FakeTime()
    client = Client(silent.url, "k", timeout=0.3, clock=time.clock, sleep=time.sleep)
    try:
        with pytest.raises(NetworkError) as caught:
            client.send(**MESSAGE, retry_attempts=1)
    finally:
        silent.close()
    assert (caught.value.code, caught.value.retryable, caught.value.attempts) == ("timeout", True, 2)
    assert time.sleeps == [1]


def test_async_timeout_and_refusal():
    async def run():
        silent = SilentServer()
        time = FakeTime()
        try:
            client = AsyncClient(silent.url, "k", timeout=0.3, clock=time.clock, sleep=time.async_sleep)
            with pytest.raises(NetworkError) as timed_out:
                await client.send(**MESSAGE, retry_attempts=0)
        finally:
            silent.close()
        refused = AsyncClient(closed_port_url(), "k", clock=time.clock, sleep=time.async_sleep)
        with pytest.raises(NetworkError) as refusal:
            await refused.send(**MESSAGE, retry_attempts=2)
        return timed_out.value, refusal.value, time.sleeps

    timed_out, refusal, sleeps = asyncio.run(run())
    assert (timed_out.code, timed_out.attempts) == ("timeout", 1)
    assert (refusal.code, refusal.attempts, refusal.retryable) == ("network_error", 3, True)
    assert sleeps == [1, 2]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_retry_after_and_key_in_use_then_success_with_one_key(flavour):
    server = ScriptedServer(
        [
            json_error(503, "database_unavailable", {"Retry-After": "3"}),
            json_error(409, "idempotency_key_in_use", {"Retry-After": "1"}),
            json_error(500, "internal"),
            QUEUED,
        ]
    )
    time = FakeTime()
    try:
        if flavour == "sync":
            result = Client(server.url, "k", clock=time.clock, sleep=time.sleep).send(**MESSAGE)
        else:
            client = AsyncClient(server.url, "k", clock=time.clock, sleep=time.async_sleep)
            result = asyncio.run(client.send(**MESSAGE))
    finally:
        server.close()
    # 3 s from Retry-After over the scheduled 1 s; then 2 s (Retry-After 1 is smaller); 4 s.
    assert time.sleeps == [3, 2, 4]
    assert (result.id, result.status, result.attempts, result.replayed) == (7, "queued", 4, False)
    keys = {header_of(r, "Idempotency-Key") for r in server.requests}
    assert keys == {result.idempotency_key} and len(server.requests) == 4
    # The same body bytes on every try, as the server's replay check compares them.
    assert len({r.partition(b"\r\n\r\n")[2] for r in server.requests}) == 1
    assert json.loads(server.requests[0].partition(b"\r\n\r\n")[2]) == {
        "to": ["ann@example.net"], "subject": "Hi", "text": "Hello",
    }  # fmt: skip


def test_a_retry_after_date_is_read_against_the_injected_clock():
    time = FakeTime()
    date = format_datetime(datetime.fromtimestamp(time.now + 7, tz=timezone.utc), usegmt=True)
    server = ScriptedServer([json_error(429, "rate_limited", {"Retry-After": date}), QUEUED])
    try:
        Client(server.url, "k", clock=time.clock, sleep=time.sleep).send(**MESSAGE)
    finally:
        server.close()
    assert time.sleeps == [7]


def test_a_proxy_page_instead_of_json_keeps_the_status_meaning():
    html = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    server = ScriptedServer([html, html])
    time = FakeTime()
    try:
        with pytest.raises(ServerError) as caught:
            Client(server.url, "k", clock=time.clock, sleep=time.sleep).send(**MESSAGE, retry_attempts=1)
    finally:
        server.close()
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "invalid_response", True)
    assert caught.value.attempts == 2


def test_a_2xx_that_is_not_the_send_api_fails_at_once():
    server = ScriptedServer([(200, {"Content-Type": "text/html"}, b"<html>hello</html>")])
    time = FakeTime()
    try:
        with pytest.raises(InvalidResponseError) as caught:
            Client(server.url, "k", clock=time.clock, sleep=time.sleep).send(**MESSAGE)
    finally:
        server.close()
    assert (caught.value.code, caught.value.retryable, caught.value.attempts) == ("invalid_response", False, 1)
    assert time.sleeps == []


def test_missing_parameters_fail_before_any_call():
    server = ScriptedServer([QUEUED])
    client = Client(server.url, "k")
    try:
        for fields, what in [
            ({"subject": "s", "text": "t"}, "to"),
            ({"to": [], "subject": "s", "text": "t"}, "to"),
            ({"to": "a@b.test", "text": "t"}, "subject"),
            ({"to": "a@b.test", "subject": "s"}, "text or html"),
        ]:
            with pytest.raises(MissingParameterError) as caught:
                client.send(**{"to": None, **fields})
            error = caught.value
            assert (error.code, error.retryable, error.attempts, error.status) == (
                "missing_parameter", False, 0, None,
            )  # fmt: skip
            assert what in error.message
        with pytest.raises(IdempotencyError) as bad_key:
            client.send(**MESSAGE, idempotency_key="two words")
        assert bad_key.value.code == "invalid_idempotency_key"
    finally:
        server.close()
    assert server.requests == []


def test_every_error_is_a_sluice_error():
    for cls in (NetworkError, ServerError, MissingParameterError, IdempotencyError):
        assert issubclass(cls, SluiceError)


def test_the_key_is_not_in_the_repr():
    assert "secret-key" not in repr(Client("http://127.0.0.1:1", "secret-key"))
    assert "secret-key" not in repr(AsyncClient("http://127.0.0.1:1", "secret-key"))


def test_async_sends_wait_together_on_one_thread():
    """20 sends to a server that never answers, with a 0.5 s timeout, all time out within
    about one timeout, and no thread is started meanwhile: the waiting is asyncio's."""
    import threading
    import time as wall

    silent = SilentServer()

    async def run():
        client = AsyncClient(silent.url, "k", timeout=0.5, retry_attempts=0)
        threads_before = threading.active_count()

        async def count_threads_midway():
            await asyncio.sleep(0.25)
            return threading.active_count()

        started = wall.monotonic()
        outcomes = await asyncio.gather(
            count_threads_midway(),
            *(client.send(**MESSAGE) for _ in range(20)),
            return_exceptions=True,
        )
        return threads_before, outcomes[0], outcomes[1:], wall.monotonic() - started

    try:
        before, midway, errors, elapsed = asyncio.run(run())
    finally:
        silent.close()
    assert midway == before
    assert all(isinstance(e, NetworkError) and e.code == "timeout" for e in errors)
    assert elapsed < 2.5, f"20 timeouts of 0.5 s took {elapsed:.1f} s: not concurrent"


def test_the_replay_header_and_a_reused_key_as_the_contract_words_them():
    """The client's reading of the server's idempotency answers (the live tests check the
    server's side: test_live.py)."""
    replay = (202, {"Content-Type": "application/json", "Idempotent-Replayed": "true"},
              b'{"id": 9, "status": "queued"}')  # fmt: skip
    server = ScriptedServer([replay, json_error(422, "idempotency_key_reused")])
    client = Client(server.url, "k", sleep=lambda s: pytest.fail("not retryable"))
    try:
        result = client.send(**MESSAGE, idempotency_key="order-9")
        with pytest.raises(IdempotencyError) as caught:
            client.send(**MESSAGE, idempotency_key="order-9")
    finally:
        server.close()
    assert (result.id, result.replayed, result.idempotency_key) == (9, True, "order-9")
    error = caught.value
    assert (error.status, error.code, error.retryable, error.idempotency_key) == (
        422, "idempotency_key_reused", False, "order-9",
    )  # fmt: skip
    assert [header_of(r, "Idempotency-Key") for r in server.requests] == ["order-9", "order-9"]
