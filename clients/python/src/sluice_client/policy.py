"""The retry policy (pure): which answers are retried, and how long to wait before a retry."""

from __future__ import annotations

import email.utils
from typing import Optional

#: The first delay, in seconds; it doubles for each retry ...
FIRST_DELAY = 1.0
#: ... up to this. A server's Retry-After is honoured up to this too.
MAX_DELAY = 10.0
#: Retries after the first try, unless the caller says otherwise.
DEFAULT_RETRY_ATTEMPTS = 3

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})
#: A 409 is retryable only with this code: the same key's first request is still in flight.
KEY_IN_USE = "idempotency_key_in_use"


def is_retryable_status(status: int, code: Optional[str]) -> bool:
    """Whether an HTTP error answer is worth another try of the same request."""
    if status == 409:
        return code == KEY_IN_USE
    return status in RETRYABLE_STATUSES


def retry_delay(retry: int, retry_after: Optional[float] = None) -> float:
    """Seconds to wait before retry number `retry` (1 for the first retry): 1, 2, 4, 8, 10,
    10, ...; a larger `retry_after` (the server's, in seconds) instead, still at most 10."""
    if retry < 1:
        raise ValueError("retry counts from 1")
    scheduled = min(FIRST_DELAY * float(2 ** min(retry - 1, 16)), MAX_DELAY)
    if retry_after is not None and retry_after > scheduled:
        return min(retry_after, MAX_DELAY)
    return scheduled


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """A Retry-After header as seconds from `now` (unix seconds): delay-seconds or an
    HTTP-date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
