"""Against a live Sluice: sends, each error class, a retry after a dropped answer that does
not send twice, replays and a reused key (the server's Idempotency-Key support)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid

import pytest

from sluice_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from support import DroppingProxy, FakeTime, header_of


BLOB = bytes(range(256))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}@example.net"


def test_a_send_with_everything_is_captured(sluice):
    to, cc = unique("ann"), unique("cc")
    client = Client(sluice.url, sluice.api_key)
    result = client.send(
        to=[to], cc=cc, bcc=unique("bcc"), from_="Billing <billing@example.com>",
        subject="Invoice 42", text="Attached.", html="<p>Attached.</p>",
        attachments=[{"filename": "a.bin", "content_type": "application/octet-stream", "content": BLOB}],
        headers={"X-Campaign": "march"}, tags=["billing"],
    )  # fmt: skip
    assert (result.status, result.attempts, result.replayed) == ("queued", 1, False)
    [message] = sluice.wait_captured(to)
    assert message["id"] == result.id
    assert message["mail_from"] == "billing@example.com" and cc in message["rcpt_to"]
    raw = sluice.raw(result.id)
    assert "Subject: Invoice 42" in raw and "X-Campaign: march" in raw
    [attachment] = email.message_from_string(raw, policy=email.policy.default).iter_attachments()
    assert attachment.get_filename() == "a.bin"
    assert attachment.get_payload(decode=True) == BLOB


def test_a_template_with_data_through_the_async_client(sluice):
    to = unique("tpl")

    async def run():
        client = AsyncClient(sluice.url + "/api/v1/", sluice.api_key)
        return await client.send(to=to, template="welcome", data={"name": "Ann"}, sender="app@example.com")

    result = asyncio.run(run())
    [message] = sluice.wait_captured(to)
    assert message["id"] == result.id
    assert "Welcome, Ann!" in sluice.raw(result.id)


def test_concurrent_async_sends_each_make_one_message(sluice):
    recipients = [unique("many") for _ in range(10)]

    async def run():
        client = AsyncClient(sluice.url, sluice.api_key)
        return await asyncio.gather(*(client.send(to=r, subject="s", text="t") for r in recipients))

    results = asyncio.run(run())
    assert len({r.id for r in results}) == 10
    for recipient in recipients:
        assert len(sluice.messages_to(recipient)) == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_retry_after_a_dropped_answer_does_not_send_twice(sluice, flavour):
    """The proxy hands the first request to Sluice, which stores the message and answers;
    the proxy closes the client's connection instead of passing that on. The client
    retries with the same Idempotency-Key and gets the first answer replayed."""
    to = unique(f"dropped-{flavour}")
    proxy = DroppingProxy(sluice.url, drop=1)
    time = FakeTime()
    try:
        if flavour == "sync":
            client = Client(proxy.url, sluice.api_key, clock=time.clock, sleep=time.sleep)
            result = client.send(to=to, subject="once", text="only once")
        else:
            aclient = AsyncClient(proxy.url, sluice.api_key, clock=time.clock, sleep=time.async_sleep)
            result = asyncio.run(aclient.send(to=to, subject="once", text="only once"))
    finally:
        proxy.close()
    assert len(proxy.requests) == 2, "one dropped try and one retry"
    assert proxy.answers[0].startswith(b"HTTP/1.1 202"), "Sluice took the first try"
    keys = [header_of(r, "Idempotency-Key") for r in proxy.requests]
    assert keys[0] == keys[1] == result.idempotency_key
    assert time.sleeps == [1]
    messages = sluice.wait_captured(to)
    assert [m["id"] for m in messages] == [result.id], "exactly one message"
    assert (result.attempts, result.replayed) == (2, True)
    assert header_of(proxy.answers[1], "Idempotent-Replayed") == "true"


def test_the_same_key_and_request_again_is_a_replay(sluice):
    to = unique("replay")
    client = Client(sluice.url, sluice.api_key)
    key = f"order-{uuid.uuid4()}"
    first = client.send(to=to, subject="s", text="t", idempotency_key=key)
    again = client.send(to=to, subject="s", text="t", idempotency_key=key)
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert len(sluice.messages_to(to)) == 1


def test_a_reused_key_for_another_request_fails_at_once(sluice):
    client = Client(sluice.url, sluice.api_key, sleep=lambda s: pytest.fail("no retry"))
    key = f"order-{uuid.uuid4()}"
    client.send(to=unique("reuse"), subject="first", text="t", idempotency_key=key)
    with pytest.raises(IdempotencyError) as caught:
        client.send(to=unique("reuse"), subject="second", text="t", idempotency_key=key)
    error = caught.value
    assert (error.status, error.code, error.retryable, error.attempts) == (
        422, "idempotency_key_reused", False, 1,
    )  # fmt: skip


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"a non-retryable error was retried (sleep {seconds})")


def test_a_bad_key_is_401_and_not_retried(sluice):
    client = Client(sluice.url, "sk_not_a_real_key", sleep=never_sleep)
    with pytest.raises(AuthenticationError) as caught:
        client.send(to=unique("x"), subject="s", text="t")
    error = caught.value
    assert (error.status, error.code, error.retryable, error.attempts) == (401, "unauthorized", False, 1)
    assert error.request_id


def test_an_unverified_sender_is_403(sluice):
    client = Client(sluice.url, sluice.api_key, sleep=never_sleep)
    with pytest.raises(PermissionDeniedError) as caught:
        client.send(to=unique("x"), from_="me@not-verified.test", subject="s", text="t")
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        403, "sender_not_verified", False,
    )  # fmt: skip


def test_an_invalid_address_is_422(sluice):
    client = Client(sluice.url, sluice.api_key, sleep=never_sleep)
    with pytest.raises(InvalidRequestError) as caught:
        client.send(to="not an address", subject="s", text="t")
    error = caught.value
    assert (error.status, error.code, error.retryable, error.attempts) == (
        422, "validation_failed", False, 1,
    )  # fmt: skip
    assert "to[0]" in error.message


def test_a_rate_limit_is_429_retried_after_retry_after_capped(sluice):
    """The suite's Sluice allows one send per hour per rate_limit_key (another server its
    `api.send_rate_limit_per_key_per_hour`): then 429 with a Retry-After of up to an hour,
    which the client waits for capped at 10 s."""
    import time as wall

    # The window is the clock's hour: within seconds of its end the Retry-After is shorter
    # than the 10 s cap this test is about, so start in the next hour then.
    left_in_hour = 3600 - wall.time() % 3600
    if left_in_hour < 30:
        wall.sleep(left_in_hour + 1)
    key = f"rl-{uuid.uuid4().hex}"
    client = Client(sluice.url, sluice.api_key)
    for _ in range(100):
        try:
            client.send(to=unique("rl"), subject="s", text="t", rate_limit_key=key, retry_attempts=0)
        except RateLimitError:
            break
    else:
        pytest.fail("no 429 after 100 sends with one rate_limit_key")
    time = FakeTime()
    limited = Client(sluice.url, sluice.api_key, clock=time.clock, sleep=time.sleep)
    with pytest.raises(RateLimitError) as caught:
        limited.send(to=unique("rl"), subject="s", text="t", rate_limit_key=key, retry_attempts=2)
    error = caught.value
    assert (error.status, error.code, error.retryable, error.attempts) == (429, "rate_limited", True, 3)
    assert error.idempotency_key is not None and len(error.idempotency_key) == 36
    assert error.retry_after is not None and error.retry_after > 10
    assert time.sleeps == [10, 10]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_insufficient_storage_is_507_and_retried(full_disk_sluice, flavour):
    time = FakeTime()
    if flavour == "sync":
        client = Client(full_disk_sluice.url, full_disk_sluice.api_key, clock=time.clock, sleep=time.sleep)
        with pytest.raises(ServerError) as caught:
            client.send(to=unique("full"), subject="s", text="t", retry_attempts=2)
    else:
        aclient = AsyncClient(
            full_disk_sluice.url, full_disk_sluice.api_key, clock=time.clock, sleep=time.async_sleep
        )
        with pytest.raises(ServerError) as caught:
            asyncio.run(aclient.send(to=unique("full"), subject="s", text="t", retry_attempts=2))
    error = caught.value
    assert (error.status, error.code, error.retryable, error.attempts) == (
        507, "insufficient_storage", True, 3,
    )  # fmt: skip
    # Retry-After: 30 is over the schedule's 1 s and 2 s: 10 s each (the cap).
    assert error.retry_after == 30 and time.sleeps == [10, 10]
