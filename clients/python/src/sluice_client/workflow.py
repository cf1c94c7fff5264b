"""The workflow platform's email node: its parameters in, its output shapes out.

Parameters: `to, subject, body, template, from, cc, bcc, attachments, retryAttempts, data`
(`body` is the HTML body). The node never raises for a failed send: it answers
`{"status": "error", "errorCode": "SMTP_SEND_ERROR", ...}`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Awaitable, Dict, Mapping, Union, overload

from .client import AsyncClient, Client
from .errors import SluiceError
from .request import recipients

NodeOutput = Dict[str, Any]

#: The seed's one error code; `code` says which failure it was.
ERROR_CODE = "SMTP_SEND_ERROR"


def iso_utc(unix_seconds: float) -> str:
    """`2026-12-03T13:46:26.123Z`, as JavaScript's `toISOString`."""
    moment = datetime.fromtimestamp(unix_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _send_arguments(params: Mapping[str, Any]) -> Dict[str, Any]:
    retry_attempts = params.get("retryAttempts")
    if retry_attempts is not None and (
        isinstance(retry_attempts, bool) or not isinstance(retry_attempts, int) or retry_attempts < 0
    ):
        raise ValueError("retryAttempts must be a whole number, 0 or more")
    return {
        "to": params.get("to"),
        "subject": params.get("subject"),
        "html": params.get("body"),
        "template": params.get("template"),
        "data": params.get("data"),
        "from_": params.get("from"),
        "cc": params.get("cc"),
        "bcc": params.get("bcc"),
        "attachments": params.get("attachments"),
        "retry_attempts": retry_attempts,
    }


def _success(result_id: int, to: Any, attempts: int, started: float, ended: float) -> NodeOutput:
    return {
        "status": "success",
        "messageId": result_id,
        "to": recipients(to),
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


def _invalid_parameter(message: str) -> SluiceError:
    return SluiceError(message, code="invalid_parameter")


def run_node(params: Mapping[str, Any], client: Client) -> NodeOutput:
    """The node on the blocking client."""
    started = client.clock()
    try:
        result = client.send(**_send_arguments(params))
    except SluiceError as e:
        return _error(e, started, client.clock())
    except (ValueError, TypeError) as e:
        return _error(_invalid_parameter(str(e)), started, client.clock())
    return _success(result.id, params.get("to"), result.attempts, started, client.clock())


async def run_node_async(params: Mapping[str, Any], client: AsyncClient) -> NodeOutput:
    """The node on the asyncio client."""
    started = client.clock()
    try:
        result = await client.send(**_send_arguments(params))
    except SluiceError as e:
        return _error(e, started, client.clock())
    except (ValueError, TypeError) as e:
        return _error(_invalid_parameter(str(e)), started, client.clock())
    return _success(result.id, params.get("to"), result.attempts, started, client.clock())


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



