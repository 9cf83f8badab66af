"""Fixtures for the real-client test suite.

A session starts one `herald serve` (binary from $HERALD_BIN) on a free loopback port with a
fresh data directory, one real HTTP receiver on 127.0.0.1 that records every request, and an
official `svix.Svix` client pointed at the server.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from svix.api import Svix, SvixOptions

DEFAULT_HERALD_BIN = "/root/.cache/herald-target/debug/herald"
HEALTH_WAIT_SECONDS = 30.0
SHUTDOWN_WAIT_SECONDS = 35.0  # spec: in-flight work is finished or released within 30 s


# --------------------------------------------------------------------------------------------
# helpers shared with the tests
# --------------------------------------------------------------------------------------------


def uniq(prefix: str) -> str:
    """A fresh identifier, valid as a uid / event type name (`^[a-zA-Z0-9\\-_.]+$`)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(
    predicate: t.Callable[[], t.Any],
    timeout: float = 20.0,
    interval: float = 0.1,
    desc: str = "condition",
) -> t.Any:
    """Poll `predicate` until it returns a truthy value (which is returned) or `timeout` passes.

    Exceptions raised by the predicate propagate at once: a wrong answer shape is a failure,
    not something to wait out.
    """
    deadline = time.monotonic() + timeout
    last: t.Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {desc}; last value: {last!r}")
        time.sleep(interval)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# receiver
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReceivedRequest:
    method: str
    path: str  # path without the query string
    target: str  # full request target as sent
    headers: t.Dict[str, str]  # lower-cased names (last value wins)
    raw_headers: t.List[t.Tuple[str, str]]  # as sent, in order
    body: bytes
    received_at: float  # time.time()
    answered: int  # status code the receiver answered with


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request.

    Answers 204 by default. `fail_next(path, status, times)` makes it answer `status` for the
    next `times` requests to `path`; `set_default(path, status)` changes the answer for a path
    until reset.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: t.List[ReceivedRequest] = []
        self._scripted: t.Dict[str, t.Deque[int]] = collections.defaultdict(collections.deque)
        self._defaults: t.Dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real receiver

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size_line = self.rfile.readline().strip()
                        size = int(size_line.split(b";")[0], 16)
                        if size == 0:
                            # trailers until empty line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()  # CRLF after chunk
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._read_body()
                path = self.path.split("?", 1)[0]
                status = receiver._next_status(path)
                raw = list(self.headers.items())
                req = ReceivedRequest(
                    method=self.command,
                    path=path,
                    target=self.path,
                    headers={k.lower(): v for k, v in raw},
                    raw_headers=raw,
                    body=body,
                    received_at=time.time(),
                    answered=status,
                )
                receiver._record(req)
                payload = b"" if status in (204, 304) or status < 200 else f"receiver answered {status}".encode()
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

            def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    # lifecycle
    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # configuration
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def new_path(self, prefix: str = "hook") -> str:
        return f"/{prefix}/{uuid.uuid4().hex}"

    def fail_next(self, path: str, status: int, times: int) -> None:
        with self._lock:
            self._scripted[path].extend([status] * times)

    def set_default(self, path: str, status: t.Optional[int]) -> None:
        with self._lock:
            if status is None:
                self._defaults.pop(path, None)
            else:
                self._defaults[path] = status

    def _next_status(self, path: str) -> int:
        with self._lock:
            q = self._scripted.get(path)
            if q:
                return q.popleft()
            return self._defaults.get(path, 204)

    def _record(self, req: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    # inspection
    def requests(self, path: t.Optional[str] = None) -> t.List[ReceivedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for_requests(self, path: str, count: int, timeout: float = 20.0) -> t.List[ReceivedRequest]:
        """Wait until at least `count` requests reached `path`; return them (all of them)."""
        wait_for(
            lambda: len(self.requests(path)) >= count,
            timeout=timeout,
            desc=f"{count} request(s) at receiver path {path} (got {len(self.requests(path))})",
        )
        return self.requests(path)


# --------------------------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class HeraldServer:
    base_url: str
    admin_token: str
    data_dir: str
    log_path: str
    process: subprocess.Popen

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError as e:
            return f"<cannot read server log: {e}>"
        text = data.decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])


_SERVER: t.Optional[HeraldServer] = None


def _server_env(data_dir: str, port: int, admin_token: str, overrides: t.Mapping[str, t.Optional[str]]) -> t.Dict[str, str]:
    # Drop inherited HERALD_* variables (HERALD_BIN, HERALD_PY_VENV, a developer's own
    # settings...): every HERALD_<KEY> is configuration for the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        {
            "HERALD_DATA_DIR": data_dir,
            "HERALD_LISTEN": f"127.0.0.1:{port}",
            "HERALD_ADMIN_TOKEN": admin_token,
            "HERALD_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "HERALD_RETRY_SCHEDULE": "[1,1,1]",
            "HERALD_LOG_FORMAT": "json",
        }
    )
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def herald_binary() -> str:
    binary = os.environ.get("HERALD_BIN", DEFAULT_HERALD_BIN)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"herald binary not found or not executable at {binary} (set HERALD_BIN)", pytrace=False)
    return binary


@contextlib.contextmanager
def run_herald(
    workdir: "os.PathLike[str]", overrides: t.Optional[t.Mapping[str, t.Optional[str]]] = None
) -> t.Iterator[HeraldServer]:
    """Starts `herald serve` on a free loopback port with a fresh data directory under `workdir`,
    waits until `/api/v1/health` answers 200, and stops it (SIGTERM) on exit.

    `overrides` changes the test defaults of `_server_env` (a `None` value removes a variable).
    """
    binary = herald_binary()
    workdir = pathlib.Path(workdir)
    data_dir = workdir / "data"
    data_dir.mkdir()
    log_path = workdir / "herald.log"
    port = free_loopback_port()
    admin_token = secrets.token_hex(16)  # 32 characters
    assert len(admin_token) == 32

    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [binary, "serve"],
        cwd=str(workdir),  # so no stray ./herald.toml is picked up
        env=_server_env(str(data_dir), port, admin_token, overrides or {}),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = HeraldServer(
        base_url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        data_dir=str(data_dir),
        log_path=str(log_path),
        process=proc,
    )

    deadline = time.monotonic() + HEALTH_WAIT_SECONDS
    last_err = "no answer yet"
    healthy = False
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                r = client.get(f"{server.base_url}/api/v1/health")
                if r.status_code == 200:
                    healthy = True
                    break
                last_err = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as e:
                last_err = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
    if not healthy:
        _terminate(proc)
        log_file.close()
        reason = (
            f"exited with code {proc.returncode}"
            if proc.returncode is not None
            else f"no 200 from GET /api/v1/health within {HEALTH_WAIT_SECONDS:.0f}s ({last_err})"
        )
        pytest.fail(f"herald serve did not become healthy: {reason}\n--- server log ---\n{server.log_tail()}", pytrace=False)

    try:
        yield server
    finally:
        code = _terminate(proc)
        log_file.close()
        if code != 0:
            import warnings

            warnings.warn(f"herald serve exited with code {code} after SIGTERM (expected 0)")


@pytest.fixture(scope="session")
def herald(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[HeraldServer]:
    global _SERVER
    with run_herald(tmp_path_factory.mktemp("herald")) as server:
        _SERVER = server
        try:
            yield server
        finally:
            _SERVER = None


def _terminate(proc: subprocess.Popen) -> t.Optional[int]:
    """SIGTERM, wait, then SIGKILL. Only ever signals the process we started."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=SHUTDOWN_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None


@pytest.fixture(scope="session")
def receiver() -> t.Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def make_svix(server: HeraldServer, token: str) -> Svix:
    return Svix(token, SvixOptions(server_url=server.base_url, timeout=15.0))


@pytest.fixture(scope="session")
def svix(herald: HeraldServer) -> Svix:
    """The official SDK client with the admin token."""
    return make_svix(herald, herald.admin_token)


@pytest.fixture(scope="session")
def raw_http(herald: HeraldServer) -> t.Iterator[httpx.Client]:
    """Plain HTTP client with the admin token, only for what the SDK cannot express."""
    with httpx.Client(
        base_url=herald.base_url,
        headers={"Authorization": f"Bearer {herald.admin_token}"},
        timeout=15.0,
    ) as c:
        yield c


# --------------------------------------------------------------------------------------------
# reporting: attach the server's log tail to failing tests
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> t.Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER is not None:
        report.sections.append(("herald server log (tail)", _SERVER.log_tail(40)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"herald binary: {os.environ.get('HERALD_BIN', DEFAULT_HERALD_BIN)}"
