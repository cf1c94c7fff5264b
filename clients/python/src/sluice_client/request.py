"""The send request and its answer, without I/O: the JSON body, the checks made before any
call, and an HTTP answer turned into a `SendResult` or a `SluiceError`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type, Union

from . import errors
from .policy import is_retryable_status, parse_retry_after

Recipients = Union[str, Sequence[str]]

IDEMPOTENCY_CODES = frozenset(
    {"idempotency_key_in_use", "idempotency_key_reused", "invalid_idempotency_key"}
)


@dataclass(frozen=True)
class SendResult:
    """A send the server took: its message `id`, `status` (`queued`), the number of
    requests it took, and whether the answer was a replay of an earlier one with the same
    idempotency key (the message was not sent again)."""

    id: int
    status: str
    attempts: int
    replayed: bool
    idempotency_key: str


@dataclass(frozen=True)
class PreparedSend:
    """The body as it goes on the wire (the same bytes on every retry) and the `to` list."""

    body: bytes
    to: List[str]


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    #: Lower-case names.
    headers: Mapping[str, str]
    body: bytes


def recipients(value: Optional[Recipients]) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value]


def _missing(message: str) -> errors.MissingParameterError:
    return errors.MissingParameterError(message, code="missing_parameter")


def check_idempotency_key(key: str) -> None:
    """1 to 255 visible ASCII characters, as the server requires (and as a header allows)."""
    if not (1 <= len(key) <= 255) or not all(33 <= ord(c) <= 126 for c in key):
        raise errors.IdempotencyError(
            "idempotency_key must be 1 to 255 visible ASCII characters",
            code="invalid_idempotency_key",
        )


def _attachment(index: int, item: Mapping[str, Any]) -> Dict[str, str]:
    try:
        filename = item["filename"]
        content = item["content"]
    except KeyError as e:
        raise _missing(f"attachments[{index}]: {e.args[0]} is required") from None
    if isinstance(content, (bytes, bytearray, memoryview)):
        content = base64.b64encode(bytes(content)).decode("ascii")
    return {
        "filename": str(filename),
        "content_type": str(item.get("content_type") or "application/octet-stream"),
        "content": str(content),
    }


def prepare_send(
    *,
    to: Optional[Recipients],
    subject: Optional[str] = None,
    text: Optional[str] = None,
    html: Optional[str] = None,
    template: Optional[str] = None,
    data: Optional[Mapping[str, Any]] = None,
    sender: Optional[str] = None,
    cc: Optional[Recipients] = None,
    bcc: Optional[Recipients] = None,
    reply_to: Optional[str] = None,
    attachments: Optional[Sequence[Mapping[str, Any]]] = None,
    headers: Optional[Mapping[str, str]] = None,
    tags: Optional[Sequence[str]] = None,
    rate_limit_key: Optional[str] = None,
) -> PreparedSend:
    """Checks the required parameters (`to`; `subject` or `template`; `text`, `html` or
    `template`) and builds the JSON body. Raises `MissingParameterError`."""
    to_list = recipients(to)
    if not to_list:
        raise _missing("to is required")
    if not subject and not template:
        raise _missing("subject (or template) is required")
    if text is None and html is None and not template:
        raise _missing("text or html (or template) is required")
    payload: Dict[str, Any] = {"to": to_list}
    optional: Dict[str, Any] = {
        "from": sender,
        "cc": recipients(cc) or None,
        "bcc": recipients(bcc) or None,
        "reply_to": reply_to,
        "subject": subject,
        "text": text,
        "html": html,
        "template": template,
        "data": dict(data) if data is not None else None,
        "attachments": [_attachment(i, a) for i, a in enumerate(attachments)]
        if attachments
        else None,
        "headers": dict(headers) if headers else None,
        "tags": list(tags) if tags else None,
        "rate_limit_key": rate_limit_key,
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return PreparedSend(body=body, to=to_list)


def _error_class(status: int, code: str) -> Type[errors.SluiceError]:
    if code in IDEMPOTENCY_CODES:
        return errors.IdempotencyError
    if status == 401:
        return errors.AuthenticationError
    if status == 403:
        return errors.PermissionDeniedError
    if status == 429:
        return errors.RateLimitError
    if status >= 500 or status == 408:
        return errors.ServerError
    return errors.InvalidRequestError


def interpret(
    answer: HttpAnswer, *, attempts: int, idempotency_key: str, now: float
) -> Union[SendResult, errors.SluiceError]:
    """The outcome of one try. `now` (unix seconds) reads a Retry-After given as a date."""
    try:
        document = json.loads(answer.body.decode("utf-8")) if answer.body else None
    except (UnicodeDecodeError, ValueError):
        document = None
    if 200 <= answer.status < 300:
        if (
            isinstance(document, dict)
            and isinstance(document.get("id"), int)
            and isinstance(document.get("status"), str)
        ):
            replayed = answer.headers.get("idempotent-replayed", "").strip().lower() == "true"
            return SendResult(
                id=document["id"],
                status=document["status"],
                attempts=attempts,
                replayed=replayed,
                idempotency_key=idempotency_key,
            )
        return errors.InvalidResponseError(
            f"HTTP {answer.status} without the send API's JSON answer: is this a Sluice?",
            code="invalid_response",
            status=answer.status,
            attempts=attempts,
        )
    detail = document.get("error") if isinstance(document, dict) else None
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        code = detail["code"]
        message = str(detail.get("message") or code)
        request_id = detail.get("request_id") if isinstance(detail.get("request_id"), str) else None
    else:
        # Not our JSON (a proxy's page, say): what the status says is all we know.
        code, message, request_id = "invalid_response", f"HTTP {answer.status}", None
    return _error_class(answer.status, code)(
        message,
        code=code,
        status=answer.status,
        retryable=is_retryable_status(answer.status, code),
        attempts=attempts,
        retry_after=parse_retry_after(answer.headers.get("retry-after"), now),
        request_id=request_id or None,
    )
