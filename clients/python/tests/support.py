"""Test support: a real Sluice started from its binary, a proxy that drops answers, a
scripted HTTP server, a closed port, and a fake clock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sluice_bin() -> Path:
    return Path(os.environ.get("SLUICE_BIN") or REPO_ROOT / "target" / "debug" / "sluice")


CONFIG = """data_dir = "{data}"

[smtp]
hostname = "sluice.test"

[[smtp.listeners]]
addr = "127.0.0.1:{smtp}"
tls = "starttls"
auth = "required"

[store]
account_cache_ms = 0

[delivery]
poll_interval_ms = 100

[delivery.default_provider]
type = "capture"

[http]
listen = "127.0.0.1:{http}"

[panel]
listen = "127.0.0.1:{panel}"

[webhook]
listen = "127.0.0.1:{webhook}"

[api]
send_rate_limit_per_key_per_hour = 1

[logging]
format = "text"
level = "warn"

{extra}
"""


@dataclass
class Sluice:
    """A running `sluice serve` with one sandboxed account (`py@example.com`, domain
    example.com) and its API key."""

    url: str
    api_key: str
    process: Optional[subprocess.Popen] = None
    workdir: Optional[tempfile.TemporaryDirectory] = None

    def api(self, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def messages_to(self, recipient: str) -> List[Dict[str, Any]]:
        """Every message of the account with this envelope recipient, whatever its status."""
        query = urllib.parse.urlencode({"to": recipient, "limit": 100})
        return self.api(f"/api/v1/messages?{query}")["items"]

    def wait_captured(self, recipient: str, timeout: float = 15.0) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            items = self.messages_to(recipient)
            if items and all(m["status"] == "captured" for m in items):
                return items
            if time.monotonic() > deadline:
                raise AssertionError(f"not captured within {timeout}s: {items}")
            time.sleep(0.1)

    def raw(self, message_id: int) -> str:
        request = urllib.request.Request(
            f"{self.url}/api/v1/messages/{message_id}/raw",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir is not None:
            self.workdir.cleanup()


def start_sluice(extra_config: str = "", ready_path: str = "/readyz") -> Sluice:
    """Starts the binary of `SLUICE_BIN` (default `<repo>/target/debug/sluice`) on free
    ports with SQLite in a temp dir, the capture provider, and a sandboxed account."""
    binary = sluice_bin()
    if not binary.is_file():
        raise RuntimeError(
            f"no Sluice binary at {binary}: build it (cargo build -p sluice) or set SLUICE_BIN"
        )
    workdir = tempfile.TemporaryDirectory(prefix="sluice-pyclient-")
    root = Path(workdir.name)
    http = free_port()
    config = root / "sluice.toml"
    config.write_text(
        CONFIG.format(
            data=root / "data",
            smtp=free_port(),
            http=http,
            panel=free_port(),
            webhook=free_port(),
            extra=extra_config,
        )
    )
    created = subprocess.run(
        [str(binary), "account", "create", "--config", str(config), "--name", "pyclient",
         "--email", "py@example.com", "--password", "py-secret", "--domain", "example.com",
         "--sandbox"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if created.returncode != 0:
        workdir.cleanup()
        raise RuntimeError(f"sluice account create failed: {created.stderr}")
    api_key = next(
        line.split(":", 1)[1].strip()
        for line in created.stdout.splitlines()
        if line.startswith("api key:")
    )
    log = open(root / "serve.log", "wb")
    process = subprocess.Popen(
        [str(binary), "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    sluice = Sluice(f"http://127.0.0.1:{http}", api_key, process, workdir)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            output = (root / "serve.log").read_text(errors="replace")[-3000:]
            sluice.stop()
            raise RuntimeError(f"sluice serve exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(sluice.url + ready_path, timeout=2) as response:
                if response.status == 200:
                    return sluice
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            sluice.stop()
            raise RuntimeError(f"sluice did not answer {ready_path} within 60 s")
        time.sleep(0.1)


def _read_http_message(conn: socket.socket) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (or none), read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def header_of(message: bytes, name: str) -> Optional[str]:
    head = message.partition(b"\r\n\r\n")[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class DroppingProxy:
    """Forwards each request to Sluice and reads its whole answer; for the first `drop`
    connections it then closes the client's connection without passing the answer on (the
    message is stored, the client never hears so). Later connections get the answer."""

    def __init__(self, upstream: str, drop: int) -> None:
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.drop = drop
        self.requests: List[bytes] = []
        self.answers: List[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client:
                request = _read_http_message(client)
                self.requests.append(request)
                with socket.create_connection(self.upstream, timeout=10) as upstream:
                    upstream.sendall(request)
                    answer = _read_http_message(upstream)
                self.answers.append(answer)
                if len(self.requests) > self.drop:
                    client.sendall(answer)

    def close(self) -> None:
        self._server.close()


class ScriptedServer:
    """An HTTP server that answers each request with the next scripted (status, headers,
    body) and records the requests: for answers a live Sluice cannot be made to give on
    demand (409 in flight, 500, 503, a proxy's HTML page)."""

    def __init__(self, script: List[Tuple[int, Dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.requests: List[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client:
                self.requests.append(_read_http_message(client))
                status, headers, body = self.script.pop(0)
                lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
                lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
                client.sendall("\r\n".join(lines).encode("latin-1") + body)

    def close(self) -> None:
        self._server.close()


class SilentServer:
    """Accepts connections and never answers: every request times out."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._held: List[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()


def closed_port_url() -> str:
    """A URL where nothing listens: connection refused."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class FakeTime:
    """An injected clock and sleep: sleeping records the delay and moves the clock."""

    now: float = 1_796_000_000.0
    sleeps: List[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def json_error(status: int, code: str, headers: Optional[Dict[str, str]] = None):
    body = json.dumps({"error": {"code": code, "message": f"{code} (scripted)", "request_id": "r1"}})
    return (status, {"Content-Type": "application/json", **(headers or {})}, body.encode())
