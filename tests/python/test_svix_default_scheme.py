"""`default_signature_scheme = "svix"` (routing.md "Signatures"): a receiver written for Svix
checks only the `svix-*` headers with the Svix SDK's own verifier, and must keep working after a
move to Herald. Everything here goes through the official Svix SDK: endpoints created without a
scheme carry `svix-id`/`svix-timestamp`/`svix-signature` (no `webhook-*`), the SDK's
`Webhook.verify` accepts them, refuses a tampered body and another secret; an endpoint that asks
for `standard` explicitly still gets the Standard Webhooks headers.
"""

from __future__ import annotations

import base64
import json
import os
import typing as t

import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from conftest import HeraldServer, Receiver, run_herald, uniq

DELIVERY_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def svix_default(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[HeraldServer]:
    overrides = {"HERALD_DEFAULT_SIGNATURE_SCHEME": "svix"}
    with run_herald(tmp_path_factory.mktemp("herald-svix-default"), overrides) as server:
        yield server


def sdk(server: HeraldServer) -> Svix:
    return Svix(server.admin_token, SvixOptions(server_url=server.base_url, timeout=15.0))


def svix_only(headers: t.Mapping[str, str]) -> dict[str, str]:
    """What a receiver written for Svix reads: the `svix-*` headers and nothing else."""
    return {k: v for k, v in headers.items() if k.startswith("svix-")}


def test_a_svix_receiver_verifies_unchanged(svix_default: HeraldServer, receiver: Receiver) -> None:
    client = sdk(svix_default)
    app = client.application.create(ApplicationIn(name="svix default", uid=uniq("svixdef")))
    path = receiver.new_path()
    ep = client.endpoint.create(app.id, EndpointIn(url=receiver.url(path)))
    secret = client.endpoint.get_secret(app.id, ep.id).key
    msg = client.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"amount": 100, "note": "caf\u00e9"}))

    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert "webhook-signature" not in req.headers, "a svix endpoint sends svix-* headers only"
    assert req.headers["svix-id"] == msg.id
    SvixWebhook(secret).verify(req.body, svix_only(req.headers))  # raises on failure
    assert json.loads(req.body) == {"amount": 100, "note": "caf\u00e9"}

    with pytest.raises(WebhookVerificationError):
        SvixWebhook(secret).verify(req.body + b" ", svix_only(req.headers))
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(other).verify(req.body, svix_only(req.headers))


def test_an_explicit_standard_scheme_still_wins(svix_default: HeraldServer, receiver: Receiver) -> None:
    client = sdk(svix_default)
    app = client.application.create(ApplicationIn(name="explicit", uid=uniq("svixstd")))
    path = receiver.new_path()
    # The SDK has no field for Herald's `signatureScheme`: set it through the API.
    with httpx.Client(
        base_url=svix_default.base_url,
        headers={"Authorization": f"Bearer {svix_default.admin_token}"},
        timeout=15.0,
    ) as raw:
        r = raw.post(
            f"/api/v1/app/{app.id}/endpoint",
            json={"url": receiver.url(path), "signatureScheme": "standard"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["signatureScheme"] == "standard"
    client.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"n": 1}))
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert "webhook-signature" in req.headers
    assert "svix-signature" not in req.headers
