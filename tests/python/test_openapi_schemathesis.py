"""Schemathesis against a live Herald: the OpenAPI document (`/api/v1/openapi.json`) must describe
what the server really does. Generated requests (valid and invalid) must never get a 5xx, and
every answer must have a documented status, content type, headers and body schema.

The server under test is its own `herald serve`, started for this module only:
- role `api`: no delivery workers, so a generated endpoint URL is never contacted (nothing
  leaves the machine, whatever URL schemathesis invents);
- no `allow_networks`: the SSRF guard refuses loopback and private URLs (422), as in production.
Schemathesis itself only talks to that server on 127.0.0.1.

Before the run a few resources are created (an application, an endpoint, an event type, a
message, a token) and schemathesis draws path parameters from their identifiers most of the time
(`schemathesis.toml`, written per run), so operations reach past 404 to real answers.
`schemathesis_hooks.py` makes every generated `idempotency-key` unique (see there why).

Bounds: `--max-examples` cases per operation and `--max-time` for the whole run (both can be
changed with HERALD_SCHEMATHESIS_MAX_EXAMPLES / HERALD_SCHEMATHESIS_MAX_TIME); the seed is fixed
so a failure reproduces (HERALD_SCHEMATHESIS_SEED picks another).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import typing as t

import httpx
import pytest

from conftest import HeraldServer, run_herald

HERE = pathlib.Path(__file__).resolve().parent

MAX_EXAMPLES = int(os.environ.get("HERALD_SCHEMATHESIS_MAX_EXAMPLES", "20"))
MAX_TIME_SECONDS = int(os.environ.get("HERALD_SCHEMATHESIS_MAX_TIME", "180"))
SEED = int(os.environ.get("HERALD_SCHEMATHESIS_SEED", "5"))

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


@pytest.fixture(scope="module")
def api_only_herald(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[HeraldServer]:
    overrides = {"HERALD_ROLE": "api", "HERALD_ALLOW_NETWORKS": None}
    with run_herald(tmp_path_factory.mktemp("herald-schemathesis"), overrides) as server:
        yield server


def seed(server: HeraldServer) -> t.Dict[str, t.List[str]]:
    """Creates resources to test against; answers the identifiers for each path parameter."""
    with httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=15.0,
    ) as c:

        def ok(r: httpx.Response) -> dict:
            assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
            return r.json()

        app = ok(c.post("/app", json={"name": "Schemathesis", "uid": "st-app"}))
        # A public host: accepted without an allow-list, never contacted (role `api`).
        ep = ok(c.post("/app/st-app/endpoint", json={"url": "https://example.com/hook", "uid": "st-ep"}))
        schema = {"1": {"type": "object", "examples": [{"id": 1}]}}
        ok(c.post("/event-type", json={"name": "st.event", "description": "seed", "schemas": schema}))
        msg = ok(c.post("/app/st-app/msg", json={"eventType": "st.event", "eventId": "st-msg", "payload": {"id": 1}}))
        token = ok(c.post("/token", json={"name": "schemathesis"}))
    return {
        "app_id": ["st-app", app["id"]],
        "endpoint_id": ["st-ep", ep["id"]],
        "msg_id": ["st-msg", msg["id"]],
        "name": ["st.event"],
        "token_id": [token["id"]],
    }


def write_config(directory: pathlib.Path, ids: t.Dict[str, t.List[str]]) -> None:
    lines = []
    for name, values in ids.items():
        quoted = ", ".join(f'"{v}"' for v in values)
        lines += [f"[dictionaries.{name}]", f"values = [{quoted}]", ""]
    lines.append("[parameters]")
    for name in ids:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}')
    (directory / "schemathesis.toml").write_text("\n".join(lines) + "\n")


def schemathesis_command() -> t.List[str]:
    # The venv's own console script (run.sh runs pytest with the venv's python).
    script = pathlib.Path(sys.executable).parent / "schemathesis"
    if script.exists():
        return [str(script)]
    found = shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed (tests/python/requirements.txt)", pytrace=False)
    return [found]


@pytest.mark.timeout(MAX_TIME_SECONDS + 180)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api_only_herald: HeraldServer, tmp_path: pathlib.Path
) -> None:
    server = api_only_herald
    write_config(tmp_path, seed(server))
    cmd = schemathesis_command() + [
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{server.base_url}/api/v1/openapi.json",
        "--url",
        server.base_url,
        "--header",
        f"Authorization: Bearer {server.admin_token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME_SECONDS),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--request-timeout",
        "15",
        "--max-redirects",
        "0",
        "--no-color",
        "--output-truncate",
        "false",
        "--generation-database",
        "none",
        # This server runs role `api`, where `GET /listen` always answers its documented 503
        # `listen_unavailable` (sessions are held where delivery workers run), which the 5xx
        # check would report; the listen route is tested in tests/it/listen.rs instead.
        "--exclude-path",
        "/api/v1/listen",
    ]
    # cwd: where schemathesis.toml is, and out of the source tree.
    proc = subprocess.run(
        cmd,
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=MAX_TIME_SECONDS + 150,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        },
    )
    print(proc.stdout)
    assert proc.returncode == 0, (
        f"schemathesis failed (exit {proc.returncode}):\n{proc.stdout[-20000:]}\n"
        f"--- server log ---\n{server.log_tail(40)}"
    )
