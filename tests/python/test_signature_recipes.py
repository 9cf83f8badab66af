"""The openssl recipes in docs/signature-recipes.md reproduce the signature headers Herald
actually sent: each documented shell block is extracted from the doc as written and run with
bash against a real delivery (standard, svix and github schemes, and an Ed25519 `v1a`
endpoint), and its output must equal the header the receiver got.
"""

from __future__ import annotations

import base64
import os
import pathlib
import re
import subprocess
import tempfile

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import Receiver, uniq

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "signature-recipes.md"
DELIVERY_TIMEOUT = 30.0


def recipes() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = dict(re.findall(r"```sh recipe=(\w+)\n(.*?)```", text, flags=re.S))
    assert set(found) == {"standard", "svix", "github", "ed25519"}, sorted(found)
    return found


def run_recipe(name: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipes()[name]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, f"{name}: {out.stderr}"
    return out.stdout.strip()


def delivered(raw_http: httpx.Client, receiver: Receiver, endpoint: dict) -> tuple[str, object]:
    app = raw_http.post("/api/v1/app", json={"name": uniq("recipes")})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    path = receiver.new_path()
    r = raw_http.post(f"/api/v1/app/{app_id}/endpoint", json={"url": receiver.url(path), **endpoint})
    assert r.status_code == 201, r.text
    ep = r.json()
    # Spacing and non-ASCII text: the recipes must sign the exact bytes.
    body = '{"eventType": "invoice.paid", "payload": {"amount":  100, "note": "caf\\u00e9 \u2603"}}'
    m = raw_http.post(
        f"/api/v1/app/{app_id}/msg",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert m.status_code == 202, m.text
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    secret = raw_http.get(f"/api/v1/app/{app_id}/endpoint/{ep['id']}/secret").json()["key"]
    return secret, req


@pytest.mark.parametrize("scheme", ["standard", "svix", "github"])
def test_hmac_recipes_reproduce_the_header(raw_http: httpx.Client, receiver: Receiver, scheme: str) -> None:
    secret, req = delivered(raw_http, receiver, {"signatureScheme": scheme})
    id_header, ts_header, sig_header = {
        "standard": ("webhook-id", "webhook-timestamp", "webhook-signature"),
        "svix": ("svix-id", "svix-timestamp", "svix-signature"),
        "github": ("x-webhook-id", "x-webhook-timestamp", "x-hub-signature-256"),
    }[scheme]
    with tempfile.NamedTemporaryFile() as f:
        f.write(req.body)
        f.flush()
        line = run_recipe(
            scheme,
            {"ID": req.headers[id_header], "TS": req.headers[ts_header], "BODY_FILE": f.name, "SECRET": secret},
        )
    assert line == f"{sig_header}: {req.headers[sig_header]}"


def test_ed25519_recipe_reproduces_the_v1a_header(raw_http: httpx.Client, receiver: Receiver) -> None:
    seed = "whsk_" + base64.b64encode(os.urandom(32)).decode()
    public, req = delivered(raw_http, receiver, {"secret": seed})
    assert public.startswith("whpk_"), "the private key never leaves Herald"
    assert req.headers["webhook-signature"].startswith("v1a,")
    with tempfile.NamedTemporaryFile() as f:
        f.write(req.body)
        f.flush()
        line = run_recipe(
            "ed25519",
            {
                "ID": req.headers["webhook-id"],
                "TS": req.headers["webhook-timestamp"],
                "BODY_FILE": f.name,
                "SEED": seed,
            },
        )
    assert line == f"webhook-signature: {req.headers['webhook-signature']}"

    # And with a second independent implementation, from the public key Herald answers.
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
    sig = base64.b64decode(req.headers["webhook-signature"].split(",", 1)[1])
    pub.verify(sig, signed)  # raises InvalidSignature on failure
    with pytest.raises(InvalidSignature):
        pub.verify(sig, signed + b" ")


def test_a_wrong_secret_does_not_reproduce_the_header(raw_http: httpx.Client, receiver: Receiver) -> None:
    _, req = delivered(raw_http, receiver, {})
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with tempfile.NamedTemporaryFile() as f:
        f.write(req.body)
        f.flush()
        line = run_recipe(
            "standard",
            {"ID": req.headers["webhook-id"], "TS": req.headers["webhook-timestamp"], "BODY_FILE": f.name, "SECRET": other},
        )
    assert line != f"webhook-signature: {req.headers['webhook-signature']}"
