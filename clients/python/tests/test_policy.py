"""The retry policy as pure functions: the schedule, what is retried, Retry-After."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from sluice_client import is_retryable_status, retry_delay
from sluice_client.policy import parse_retry_after


def test_the_schedule_doubles_from_one_second_and_stops_at_ten():
    assert [retry_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 10, 10, 10, 10]
    assert retry_delay(10_000) == 10


@pytest.mark.parametrize(
    "retry, retry_after, expected",
    [
        (1, 3.0, 3.0),  # larger than scheduled: the server's
        (3, 3.0, 4.0),  # smaller than scheduled: the schedule's
        (1, 3600.0, 10.0),  # still capped at 10 s
        (5, 0.0, 10.0),
        (2, None, 2.0),
    ],
)
def test_a_larger_retry_after_wins_up_to_the_cap(retry, retry_after, expected):
    assert retry_delay(retry, retry_after) == expected


def test_retries_count_from_one():
    with pytest.raises(ValueError):
        retry_delay(0)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 507])
def test_retryable_statuses(status):
    assert is_retryable_status(status, "whatever")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 422, 501])
def test_statuses_that_fail_at_once(status):
    assert not is_retryable_status(status, "whatever")


def test_a_409_is_retried_only_while_the_key_is_in_flight():
    assert is_retryable_status(409, "idempotency_key_in_use")
    assert not is_retryable_status(409, "conflict")


def test_retry_after_as_seconds_or_as_a_date_read_against_the_given_clock():
    now = 1_796_000_000.0
    assert parse_retry_after("30", now) == 30.0
    later = format_datetime(datetime.fromtimestamp(now + 7, tz=timezone.utc), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(7.0)
    earlier = format_datetime(datetime.fromtimestamp(now - 60, tz=timezone.utc), usegmt=True)
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
