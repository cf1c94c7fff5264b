"""The one error type of the client, `SluiceError`, and a subclass per class of failure."""

from __future__ import annotations

from typing import Optional


class SluiceError(Exception):
    """A send that failed.

    `retryable` says whether trying again later may succeed; `status` is the HTTP status
    (None when no answer came); `code` is the server's JSON error code, or one of the
    client's own: `network_error`, `timeout`, `missing_parameter`, `invalid_response`.
    `attempts` is how many requests were made (0 when none was); `retry_after` the
    server's Retry-After in seconds; `request_id` the server's; `idempotency_key` the key
    the tries carried.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: Optional[int] = None,
        retryable: bool = False,
        attempts: int = 0,
        retry_after: Optional[float] = None,
        request_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.attempts = attempts
        self.retry_after = retry_after
        self.request_id = request_id
        #: The key every try of the send carried (None when no call was made).
        self.idempotency_key = idempotency_key

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"retryable={self.retryable!r}, attempts={self.attempts!r}, message={self.message!r})"
        )


class MissingParameterError(SluiceError):
    """A required parameter was not given; no request was made."""


class NetworkError(SluiceError):
    """No answer: connection refused, reset or closed before an answer, or a timeout."""


class AuthenticationError(SluiceError):
    """401: the API key is missing, wrong, revoked, or its account deleted."""


class PermissionDeniedError(SluiceError):
    """403: e.g. `sender_not_verified`, `account_suspended`."""


class InvalidRequestError(SluiceError):
    """400, 404, 413, 422 and other 4xx: the request itself is wrong (an invalid address...)."""


class IdempotencyError(SluiceError):
    """409 `idempotency_key_in_use` (retryable), 422 `idempotency_key_reused` or
    `invalid_idempotency_key` (not)."""


class RateLimitError(SluiceError):
    """429: too many requests, or the account's monthly limit (see `retry_after`)."""


class ServerError(SluiceError):
    """5xx: the server could not take the message now (503, 507, ...)."""


class InvalidResponseError(SluiceError):
    """A 2xx answer that is not the send API's JSON: probably not a Sluice at that URL."""
