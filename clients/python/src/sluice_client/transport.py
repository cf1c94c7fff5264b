"""One HTTP POST, sync (http.client) and async (asyncio streams), with network failures
turned into `NetworkError`. Both use a new connection per try and close it after."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from . import errors
from .request import HttpAnswer

#: The most of an answer's body the client reads (the send API's answers are small).
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def send_endpoint(base_url: str) -> Endpoint:
    """`http(s)://host[:port][/prefix]` → the endpoint of `POST /api/v1/send` under it (a
    base that already ends in `/api/v1` is taken as is)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query or fragment")
    prefix = parts.path.rstrip("/")
    if not prefix.endswith("/api/v1"):
        prefix += "/api/v1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Endpoint(parts.scheme, parts.hostname, port, prefix + "/send")


def _network_error(error: BaseException) -> errors.NetworkError:
    if isinstance(error, (socket.timeout, asyncio.TimeoutError, TimeoutError)):
        return errors.NetworkError(
            "timed out waiting for the server", code="timeout", retryable=True
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        # A certificate that does not verify will not verify on the next try either.
        return errors.NetworkError(
            f"TLS certificate verification failed: {error.verify_message}",
            code="network_error",
            retryable=False,
        )
    if isinstance(error, ConnectionRefusedError):
        what = "connection refused"
    elif isinstance(error, (http.client.RemoteDisconnected, asyncio.IncompleteReadError)):
        what = "the connection closed before a complete answer"
    elif isinstance(error, http.client.IncompleteRead):
        what = "the connection closed before a complete answer"
    elif isinstance(error, ConnectionResetError):
        what = "connection reset"
    elif isinstance(error, socket.gaierror):
        what = f"name resolution failed: {error}"
    else:
        what = f"{type(error).__name__}: {error}"
    return errors.NetworkError(what, code="network_error", retryable=True)


def _bad_answer(what: str) -> errors.InvalidResponseError:
    return errors.InvalidResponseError(f"not an HTTP answer: {what}", code="invalid_response")


def post_sync(
    endpoint: Endpoint,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
    ssl_context: Optional[ssl.SSLContext],
) -> HttpAnswer:
    """Raises `NetworkError` or `InvalidResponseError`."""
    connection: http.client.HTTPConnection
    if endpoint.scheme == "https":
        connection = http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=timeout, context=ssl_context
        )
    else:
        connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    try:
        connection.request("POST", endpoint.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = response.read(MAX_BODY)
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        return HttpAnswer(response.status, answer_headers, data)
    except (http.client.RemoteDisconnected, http.client.IncompleteRead) as e:
        raise _network_error(e) from None
    except http.client.HTTPException as e:
        raise _bad_answer(f"{type(e).__name__}: {e}") from None
    except OSError as e:
        raise _network_error(e) from None
    finally:
        connection.close()


async def _read_answer(reader: asyncio.StreamReader) -> HttpAnswer:
    status_line = await reader.readline()
    if not status_line:
        raise asyncio.IncompleteReadError(b"", None)
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _bad_answer(repr(status_line[:80]))
    status = int(parts[1])
    headers: Dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _bad_answer(f"header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if status in (100, 103):
        return await _read_answer(reader)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit() or int(length) > MAX_BODY:
            raise _bad_answer(f"Content-Length {length!r}")
        body = await reader.readexactly(int(length))
    else:
        body = await reader.read(MAX_BODY)
    return HttpAnswer(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        if not size_line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(size_line, None)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _bad_answer(f"chunk size {size_line[:40]!r}") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise _bad_answer("body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _request_head(endpoint: Endpoint, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"POST {endpoint.path} HTTP/1.1", f"Host: {endpoint.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _exchange(
    endpoint: Endpoint,
    headers: Mapping[str, str],
    body: bytes,
    ssl_context: Optional[ssl.SSLContext],
) -> HttpAnswer:
    tls: Tuple[Optional[ssl.SSLContext], Optional[str]] = (None, None)
    if endpoint.scheme == "https":
        tls = (ssl_context or ssl.create_default_context(), endpoint.host)
    reader, writer = await asyncio.open_connection(
        endpoint.host, endpoint.port, ssl=tls[0], server_hostname=tls[1]
    )
    try:
        writer.write(_request_head(endpoint, headers, len(body)) + body)
        await writer.drain()
        return await _read_answer(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def post_async(
    endpoint: Endpoint,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
    ssl_context: Optional[ssl.SSLContext],
) -> HttpAnswer:
    """Raises `NetworkError` or `InvalidResponseError`."""
    try:
        return await asyncio.wait_for(_exchange(endpoint, headers, body, ssl_context), timeout)
    except errors.SluiceError:
        raise
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError) as e:
        raise _network_error(e) from None
