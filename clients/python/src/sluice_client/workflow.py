"""The workflow platform's email node: its parameters in, its output shapes out.

Parameters: `to, subject, body, template, from, cc, bcc, attachments, retryAttempts, data`
(`body` is the HTML body). The node never raises for a failed send: it answers
`{"status": "error", "errorCode": "SMTP_SEND_ERROR", ...}`.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Awaitable, Dict, List, Mapping, Optional, Union, overload

from .client import AsyncClient, Client
from .errors import MissingParameterError, SluiceError

NodeOutput = Dict[str, Any]

#: The seed's one error code; `code` says which failure it was.
ERROR_CODE = "SMTP_SEND_ERROR"


def iso_utc(unix_seconds: float) -> str:
    """`2026-12-03T13:46:26.123Z`, as JavaScript's `toISOString`."""
    moment = datetime.fromtimestamp(unix_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def address_list(value: Any) -> List[str]:
    """Addresses from a list or a comma-separated string (a comma inside quotes or angle
    brackets does not split), as the workflow platform passes them."""
    if value is None:
        return []
    if isinstance(value, str):
        parts, current, quoted, angle = [], "", False, False
        for char in value:
            if char == '"':
                quoted = not quoted
            elif char == "<" and not quoted:
                angle = True
            elif char == ">" and not quoted:
                angle = False
            if char == "," and not quoted and not angle:
                parts.append(current)
                current = ""
            else:
                current += char
        parts.append(current)
        items = parts
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        raise _missing(f"missing parameter: an address or a list of addresses, not {value!r}")
    return [item.strip() for item in items if item.strip()]


def _missing(message: str) -> MissingParameterError:
    return MissingParameterError(message, code="missing_parameter")


def _retry_attempts(value: Any) -> Optional[int]:
    if value is None or value == "":
        return None
    count = value
    if isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _missing(f"retryAttempts must be a whole number from 0, not {value!r}")
    return count


def _attachment(index: int, item: Any) -> Dict[str, Any]:
    """The platform's attachment (`filename`, `content`: text, or base64 with `encoding:
    "base64"`, or bytes; `contentType`) as the client's."""
    if not isinstance(item, Mapping) or not item.get("filename") or item.get("content") is None:
        raise _missing(f"missing parameter: attachments[{index}] needs filename and content")
    content = item["content"]
    if isinstance(content, str):
        if item.get("encoding") == "base64":
            content = base64.b64decode(content, validate=False)
        else:
            content = content.encode("utf-8")
    return {
        "filename": item["filename"],
        "content_type": item.get("contentType") or item.get("content_type")
        or "application/octet-stream",
        "content": content,
    }


def _send_arguments(params: Mapping[str, Any], to: List[str]) -> Dict[str, Any]:
    """The node's parameters as `send` arguments; missing ones fail before any call."""
    if not to:
        raise _missing("missing parameter: to")
    if not params.get("subject") and not params.get("template"):
        raise _missing("missing parameter: subject (or template)")
    if not params.get("body") and not params.get("template"):
        raise _missing("missing parameter: body (or template)")
    arguments: Dict[str, Any] = {
        "to": to,
        "subject": params.get("subject") or None,
        "from_": params.get("from") or None,
        "cc": address_list(params.get("cc")) or None,
        "bcc": address_list(params.get("bcc")) or None,
        "attachments": [_attachment(i, a) for i, a in enumerate(params.get("attachments") or [])]
        or None,
        "retry_attempts": _retry_attempts(params.get("retryAttempts")),
    }
    if params.get("template"):
        arguments["template"] = params["template"]
        arguments["data"] = params.get("data")
    else:
        arguments["html"] = params["body"]
    return arguments


def _success(result_id: int, to: List[str], attempts: int, started: float, ended: float) -> NodeOutput:
    return {
        "status": "success",
        "messageId": result_id,
        "to": to,
        "attempts": attempts,
        "timestamp": iso_utc(ended),
        "duration": max(0, round((ended - started) * 1000)),
    }


def _error(error: SluiceError, started: float, ended: float) -> NodeOutput:
    return {
        "status": "error",
        "error": error.message,
        "errorCode": ERROR_CODE,
        "code": error.code,
        "retryable": error.retryable,
        "attempts": error.attempts,
        "timestamp": iso_utc(ended),
        "duration": max(0, round((ended - started) * 1000)),
    }


def _as_sluice_error(error: Exception) -> SluiceError:
    if isinstance(error, SluiceError):
        return error
    return SluiceError(f"{type(error).__name__}: {error}", code="internal_error")


def run_node(params: Mapping[str, Any], client: Client) -> NodeOutput:
    """The node on the blocking client."""
    started = client.clock()
    try:
        to = address_list(params.get("to"))
        result = client.send(**_send_arguments(params, to))
    except Exception as e:  # the node answers every failure in its error shape
        return _error(_as_sluice_error(e), started, client.clock())
    return _success(result.id, to, result.attempts, started, client.clock())


async def run_node_async(params: Mapping[str, Any], client: AsyncClient) -> NodeOutput:
    """The node on the asyncio client."""
    started = client.clock()
    try:
        to = address_list(params.get("to"))
        result = await client.send(**_send_arguments(params, to))
    except Exception as e:  # the node answers every failure in its error shape
        return _error(_as_sluice_error(e), started, client.clock())
    return _success(result.id, to, result.attempts, started, client.clock())


@overload
def execute_email_node(params: Mapping[str, Any], client: Client) -> NodeOutput: ...
@overload
def execute_email_node(
    params: Mapping[str, Any], client: AsyncClient
) -> Awaitable[NodeOutput]: ...
def execute_email_node(
    params: Mapping[str, Any], client: Union[Client, AsyncClient]
) -> Union[NodeOutput, Awaitable[NodeOutput]]:
    """Runs the email node with `params` through `client`: the output dict with a `Client`,
    a coroutine giving it with an `AsyncClient` (`await execute_email_node(p, client=ac)`)."""
    if isinstance(client, AsyncClient):
        return run_node_async(params, client)
    if isinstance(client, Client):
        return run_node(params, client)
    raise TypeError("client must be a sluice_client.Client or AsyncClient")


async def execute_email_node_async(
    params: Mapping[str, Any], client: AsyncClient
) -> NodeOutput:
    """The same as awaiting `execute_email_node` with an `AsyncClient`."""
    return await run_node_async(params, client)



