"""`Client` (sync) and `AsyncClient` (asyncio): `POST /api/v1/send` with the retry policy of
`policy` and one idempotency key per logical send, reused on each of its retries."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Sequence, Union

from . import errors, transport
from .policy import DEFAULT_RETRY_ATTEMPTS, retry_delay
from .request import (
    PreparedSend,
    Recipients,
    SendResult,
    check_idempotency_key,
    interpret,
    prepare_send,
)

__version__ = "0.1.0"
USER_AGENT = f"sluice-client-python/{__version__}"

Clock = Callable[[], float]


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
        timeout: float = 30.0,
        clock: Optional[Clock] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if not api_key or not all(32 < ord(c) < 127 for c in api_key):
            raise ValueError("api_key is required: visible ASCII characters")
        if retry_attempts < 0:
            raise ValueError("retry_attempts must be 0 or more")
        self.base_url = base_url
        self.retry_attempts = retry_attempts
        self.timeout = timeout
        #: Unix seconds; read for durations, timestamps and Retry-After dates.
        self.clock: Clock = clock or time.time
        self._endpoint = transport.send_endpoint(base_url)
        self._api_key = api_key
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        # Never the key.
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _headers(self, idempotency_key: str) -> Dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key,
        }

    def _plan(
        self, idempotency_key: Optional[str], retry_attempts: Optional[int]
    ) -> "tuple[str, int]":
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        check_idempotency_key(key)
        retries = self.retry_attempts if retry_attempts is None else retry_attempts
        if retries < 0:
            raise ValueError("retry_attempts must be 0 or more")
        return key, retries


def _prepare(**fields: Any) -> PreparedSend:
    sender = fields.pop("from_")
    alias = fields.pop("sender")
    if sender is not None and alias is not None and sender != alias:
        raise ValueError("give from_ or sender, not both")
    return prepare_send(sender=sender if sender is not None else alias, **fields)


def _delay_before_retry(
    error: errors.SluiceError, attempt: int, key: str, retries: int
) -> float:
    """After a failed try: raises `error` (stamped with the tries made and the key) when it
    is final, else the seconds to wait before the next try. Shared by both clients."""
    error.attempts = attempt
    error.idempotency_key = key
    if not error.retryable or attempt > retries:
        raise error
    return retry_delay(attempt, error.retry_after)


class Client(_Base):
    """Sends through Sluice's HTTP API, blocking. `sleep` and `clock` are injectable so
    the retry schedule can be tested without waiting."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
        timeout: float = 30.0,
        clock: Optional[Clock] = None,
        sleep: Optional[Callable[[float], None]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            retry_attempts=retry_attempts,
            timeout=timeout,
            clock=clock,
            ssl_context=ssl_context,
        )
        self.sleep: Callable[[float], None] = sleep or time.sleep

    def send(
        self,
        *,
        to: Recipients,
        subject: Optional[str] = None,
        text: Optional[str] = None,
        html: Optional[str] = None,
        template: Optional[str] = None,
        data: Optional[Mapping[str, Any]] = None,
        from_: Optional[str] = None,
        sender: Optional[str] = None,
        cc: Optional[Recipients] = None,
        bcc: Optional[Recipients] = None,
        reply_to: Optional[str] = None,
        attachments: Optional[Sequence[Mapping[str, Any]]] = None,
        headers: Optional[Mapping[str, str]] = None,
        tags: Optional[Sequence[str]] = None,
        rate_limit_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        retry_attempts: Optional[int] = None,
    ) -> SendResult:
        """Sends one message; retries what is retryable. Raises `SluiceError`."""
        prepared = _prepare(
            to=to, subject=subject, text=text, html=html, template=template, data=data,
            from_=from_, sender=sender, cc=cc, bcc=bcc, reply_to=reply_to,
            attachments=attachments, headers=headers, tags=tags, rate_limit_key=rate_limit_key,
        )  # fmt: skip
        key, retries = self._plan(idempotency_key, retry_attempts)
        headers_out = self._headers(key)
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = transport.post_sync(
                    self._endpoint, headers_out, prepared.body, self.timeout, self._ssl_context
                )
                outcome: Union[SendResult, errors.SluiceError] = interpret(
                    answer, attempts=attempt, idempotency_key=key, now=self.clock()
                )
            except errors.SluiceError as e:
                outcome = e
            if isinstance(outcome, SendResult):
                return outcome
            self.sleep(_delay_before_retry(outcome, attempt, key, retries))


class AsyncClient(_Base):
    """Sends through Sluice's HTTP API on asyncio (its own non-blocking HTTP/1.1 on
    asyncio streams; no threads). `sleep` (a coroutine function) and `clock` are
    injectable."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
        timeout: float = 30.0,
        clock: Optional[Clock] = None,
        sleep: Optional[Callable[[float], Awaitable[None]]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            retry_attempts=retry_attempts,
            timeout=timeout,
            clock=clock,
            ssl_context=ssl_context,
        )
        self.sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep

    async def send(
        self,
        *,
        to: Recipients,
        subject: Optional[str] = None,
        text: Optional[str] = None,
        html: Optional[str] = None,
        template: Optional[str] = None,
        data: Optional[Mapping[str, Any]] = None,
        from_: Optional[str] = None,
        sender: Optional[str] = None,
        cc: Optional[Recipients] = None,
        bcc: Optional[Recipients] = None,
        reply_to: Optional[str] = None,
        attachments: Optional[Sequence[Mapping[str, Any]]] = None,
        headers: Optional[Mapping[str, str]] = None,
        tags: Optional[Sequence[str]] = None,
        rate_limit_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        retry_attempts: Optional[int] = None,
    ) -> SendResult:
        """Sends one message; retries what is retryable. Raises `SluiceError`."""
        prepared = _prepare(
            to=to, subject=subject, text=text, html=html, template=template, data=data,
            from_=from_, sender=sender, cc=cc, bcc=bcc, reply_to=reply_to,
            attachments=attachments, headers=headers, tags=tags, rate_limit_key=rate_limit_key,
        )  # fmt: skip
        key, retries = self._plan(idempotency_key, retry_attempts)
        headers_out = self._headers(key)
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await transport.post_async(
                    self._endpoint, headers_out, prepared.body, self.timeout, self._ssl_context
                )
                outcome: Union[SendResult, errors.SluiceError] = interpret(
                    answer, attempts=attempt, idempotency_key=key, now=self.clock()
                )
            except errors.SluiceError as e:
                outcome = e
            if isinstance(outcome, SendResult):
                return outcome
            await self.sleep(_delay_before_retry(outcome, attempt, key, retries))
