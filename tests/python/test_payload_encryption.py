"""Payload encryption to the receiver's key (routing.md "Payload encryption"), checked with an
independent JOSE library: `jwcrypto` decrypts what a real receiver got, for EC P-256, X25519
and RSA keys, and must recover the published payload byte for byte. The signature is checked
over the JWE text with the official Standard Webhooks verifier. Malformed and too-small keys
are refused with 422; the official Svix SDK still reads and updates such an endpoint.
"""

from __future__ import annotations

import datetime
import json
import typing as t

import httpx
import pytest
from jwcrypto import jwe, jwk
from standardwebhooks.webhooks import Webhook
from svix.api import EndpointPatch, Svix

from conftest import Receiver, uniq, wait_for

DELIVERY_TIMEOUT = 30.0


def _app(raw_http: httpx.Client) -> str:
    r = raw_http.post("/api/v1/app", json={"name": uniq("enc")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


KEYS = {
    "ec-p256": lambda: jwk.JWK.generate(kty="EC", crv="P-256", kid="receiver-1"),
    "x25519": lambda: jwk.JWK.generate(kty="OKP", crv="X25519"),
    "rsa-2048": lambda: jwk.JWK.generate(kty="RSA", size=2048),
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_receiver_decrypts_the_exact_payload(raw_http: httpx.Client, receiver: Receiver, kind: str) -> None:
    key = KEYS[kind]()
    public = key.export_public(as_dict=True)
    app = _app(raw_http)
    path = receiver.new_path()
    r = raw_http.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url(path), "encryption": {"publicKey": public}},
    )
    assert r.status_code == 201, r.text
    ep = r.json()
    assert ep["encryption"]["publicKey"] == public
    secret = raw_http.get(f"/api/v1/app/{app}/endpoint/{ep['id']}/secret").json()["key"]

    # Unusual spacing and unicode: the receiver must get these exact bytes back.
    payload_text = '{"amount":  100, "note": "caf\\u00e9 \u2603",\n "nested": {"a": [1, 2.50]}}'
    r = raw_http.post(
        f"/api/v1/app/{app}/msg",
        content=('{"eventType": "invoice.paid", "payload": ' + payload_text + "}").encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 202, r.text
    msg_id = r.json()["id"]

    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers.get("content-type") == "application/jose"
    text = req.body.decode("ascii")
    assert text.count(".") == 4, "compact serialisation"

    token = jwe.JWE()
    token.deserialize(text, key=key)
    header = json.loads(token.objects["protected"])
    assert header["enc"] == "A256GCM"
    assert header["alg"] == ("RSA-OAEP-256" if kind.startswith("rsa") else "ECDH-ES+A256KW")
    if "kid" in public:
        assert header["kid"] == public["kid"]
    assert token.payload == payload_text.encode()

    # The signature covers the JWE text as sent (computed with the official library's signer:
    # its verify() insists on parsing the body as JSON).
    ts = datetime.datetime.fromtimestamp(int(req.headers["webhook-timestamp"]), tz=datetime.timezone.utc)
    expected = Webhook(secret).sign(req.headers["webhook-id"], ts, text)
    assert expected in req.headers["webhook-signature"].split(" ")

    # The stored message is what was published.
    r = raw_http.get(f"/api/v1/app/{app}/msg/{msg_id}")
    assert r.status_code == 200, (r.status_code, r.text)
    stored = r.json()
    assert stored["payload"] == json.loads(payload_text)


def _rsa_public(bits: int) -> t.Dict[str, t.Any]:
    return jwk.JWK.generate(kty="RSA", size=bits).export_public(as_dict=True)


@pytest.mark.parametrize(
    "public_key, reason",
    [
        (lambda: _rsa_public(1024), "2048"),
        (lambda: jwk.JWK.generate(kty="EC", crv="P-384").export_public(as_dict=True), "P-256"),
        (lambda: jwk.JWK.generate(kty="OKP", crv="X25519").export(as_dict=True, private_key=True), "private"),
        (lambda: {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "32 bytes"),
        (lambda: {"kty": "oct", "k": "c2VjcmV0"}, "private"),
        (lambda: "not an object", "JWK"),
    ],
)
def test_bad_keys_are_refused(raw_http: httpx.Client, receiver: Receiver, public_key: t.Any, reason: str) -> None:
    app = _app(raw_http)
    r = raw_http.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url(receiver.new_path()), "encryption": {"publicKey": public_key()}},
    )
    assert r.status_code == 422, r.text
    assert "encryption.publicKey" in r.text and reason in r.text, r.text


def test_svix_sdk_round_trips_an_endpoint_with_herald_options(
    svix: Svix, raw_http: httpx.Client, receiver: Receiver
) -> None:
    app = _app(raw_http)
    public = KEYS["x25519"]().export_public(as_dict=True)
    r = raw_http.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url(receiver.new_path()), "encryption": {"publicKey": public}},
    )
    assert r.status_code == 201, r.text
    ep_id = r.json()["id"]
    got = svix.endpoint.get(app, ep_id)
    assert got.id == ep_id
    assert any(e.id == ep_id for e in svix.endpoint.list(app).data)
    new_url = receiver.url(receiver.new_path())
    patched = svix.endpoint.patch(app, ep_id, EndpointPatch(url=new_url, description="patched"))
    assert patched.url == new_url and patched.description == "patched"
    # An SDK update that does not know the option keeps it.
    assert raw_http.get(f"/api/v1/app/{app}/endpoint/{ep_id}").json()["encryption"]["publicKey"] == public
