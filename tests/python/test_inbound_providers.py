"""The inbound gateway (inbound.md) against requests signed by the providers' own libraries —
`stripe`, `slack_sdk`, `twilio`, `standardwebhooks` and `svix` from PyPI, and GitHub's
`@octokit/webhooks-methods` from npm (run with node) — rather than by Herald's code: each is
accepted (202), a repeat is a duplicate (200), and a tampered body, another secret or (where the
scheme has one) a stale timestamp is refused with 401."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import typing as t
import urllib.parse
from datetime import datetime, timezone

import httpx
import pytest
import stripe
from slack_sdk.signature import SignatureVerifier
from svix.webhooks import Webhook as SvixWebhook
from standardwebhooks.webhooks import Webhook as StdWebhook
from twilio.request_validator import RequestValidator

from conftest import HeraldServer, uniq


@pytest.fixture(scope="module")
def app_id(raw_http: httpx.Client) -> str:
    r = raw_http.post("/api/v1/app", json={"name": uniq("inbound")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def make_source(raw_http: httpx.Client, app_id: str, verification: dict, **extra: t.Any) -> dict:
    r = raw_http.post(
        f"/api/v1/app/{app_id}/source",
        json={"name": uniq("src"), "verification": verification, **extra},
    )
    assert r.status_code == 201, r.text
    src = r.json()
    assert "secrets" not in src["verification"], "secrets are write-only"
    return src


def post_in(herald: HeraldServer, src: dict, body: bytes, headers: t.Dict[str, str]) -> httpx.Response:
    # No bearer token: the provider's signature authenticates the request.
    return httpx.post(f"{herald.base_url}/in/{src['id']}", content=body, headers=headers, timeout=15.0)


def test_stripe_library_signature(herald: HeraldServer, raw_http: httpx.Client, app_id: str) -> None:
    secret = "whsec_" + uniq("stripe")
    src = make_source(raw_http, app_id, {"scheme": "stripe", "secrets": [secret]})
    payload = json.dumps({"id": uniq("evt"), "object": "event", "type": "invoice.paid"})
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    headers = {"Stripe-Signature": header, "content-type": "application/json"}
    first = post_in(herald, src, payload.encode(), headers)
    assert first.status_code == 202, first.text
    again = post_in(herald, src, payload.encode(), headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    forged = stripe.WebhookSignature.generate_signature_header(payload, "whsec_other")
    bad = post_in(herald, src, payload.encode(), {"Stripe-Signature": forged})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_signature", bad.text
    # The message took its event type from the payload's `type`.
    msg = raw_http.get(f"/api/v1/app/{app_id}/msg/{first.json()['id']}").json()
    assert msg["eventType"] == "invoice.paid"


def test_slack_sdk_signature(herald: HeraldServer, raw_http: httpx.Client, app_id: str) -> None:
    secret = uniq("slack-signing")
    src = make_source(raw_http, app_id, {"scheme": "slack", "secrets": [secret]})
    body = json.dumps(
        {"type": "event_callback", "event_id": uniq("Ev"), "event": {"type": "app_mention"}}
    )
    ts = str(int(time.time()))
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    headers = {
        "X-Slack-Signature": sig,
        "X-Slack-Request-Timestamp": ts,
        "content-type": "application/json",
    }
    r = post_in(herald, src, body.encode(), headers)
    assert r.status_code == 202, r.text
    # A signature from an old request replayed with a stale timestamp is refused.
    old = str(int(time.time()) - 3600)
    stale = {
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=old, body=body),
        "X-Slack-Request-Timestamp": old,
    }
    r = post_in(herald, src, body.encode(), stale)
    assert r.status_code == 401 and r.json()["code"] == "timestamp_out_of_tolerance", r.text
    # A tampered body, and a body signed with another app's signing secret.
    tampered = body.replace("app_mention", "app_mentioN")
    assert refused(post_in(herald, src, tampered.encode(), headers))
    other = {
        **headers,
        "X-Slack-Signature": SignatureVerifier("another-secret").generate_signature(
            timestamp=ts, body=body
        ),
    }
    assert refused(post_in(herald, src, body.encode(), other))


def test_twilio_library_signature_over_the_public_url(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    token = uniq("twilio-auth-token")
    public = "https://hooks.example.com/twilio/voice"
    src = make_source(
        raw_http, app_id, {"scheme": "twilio", "secrets": [token]}, publicUrl=public
    )
    params = {"CallSid": uniq("CA"), "From": "+14158675309", "To": "+18005551212", "Digits": "42"}
    sig = RequestValidator(token).compute_signature(public, params)
    body = urllib.parse.urlencode(params).encode()
    headers = {
        "X-Twilio-Signature": sig,
        "content-type": "application/x-www-form-urlencoded",
    }
    r = post_in(herald, src, body, headers)
    assert r.status_code == 202, r.text
    wrong = RequestValidator("another-token").compute_signature(public, params)
    r = post_in(herald, src, body, {**headers, "X-Twilio-Signature": wrong})
    assert r.status_code == 401, r.text


def test_standardwebhooks_library_signature(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    src = make_source(raw_http, app_id, {"scheme": "standard-webhooks", "secrets": [secret]})
    payload = json.dumps({"type": "user.created", "data": {"id": 1}})
    msg_id = uniq("msg")
    now = datetime.now(tz=timezone.utc)
    sig = StdWebhook(secret).sign(msg_id, now, payload)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sig,
        "content-type": "application/json",
    }
    first = post_in(herald, src, payload.encode(), headers)
    assert first.status_code == 202, first.text
    # The provider's webhook-id is the default dedup key.
    again = post_in(herald, src, payload.encode(), headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text


def refused(r: httpx.Response, code: str = "invalid_signature") -> bool:
    return r.status_code == 401 and r.json()["code"] == code


def test_stripe_refuses_tampered_and_stale(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    secret = "whsec_" + uniq("stripe")
    src = make_source(raw_http, app_id, {"scheme": "stripe", "secrets": [secret]})
    payload = json.dumps({"id": uniq("evt"), "object": "event", "type": "charge.succeeded"})
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    tampered = payload.replace("charge", "chargf").encode()
    assert refused(post_in(herald, src, tampered, {"Stripe-Signature": header}))
    old = int(time.time()) - 3600
    stale = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=old)
    r = post_in(herald, src, payload.encode(), {"Stripe-Signature": stale})
    assert refused(r, "timestamp_out_of_tolerance"), r.text


def test_twilio_refuses_a_tampered_form(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    token = uniq("twilio-auth-token")
    public = "https://hooks.example.com/twilio/sms"
    src = make_source(raw_http, app_id, {"scheme": "twilio", "secrets": [token]}, publicUrl=public)
    params = {"MessageSid": uniq("SM"), "Body": "hello", "From": "+14158675309"}
    sig = RequestValidator(token).compute_signature(public, params)
    tampered = urllib.parse.urlencode({**params, "Body": "hellp"}).encode()
    headers = {"X-Twilio-Signature": sig, "content-type": "application/x-www-form-urlencoded"}
    assert refused(post_in(herald, src, tampered, headers))


def test_standardwebhooks_refuses_tampered_other_secret_and_stale(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    src = make_source(raw_http, app_id, {"scheme": "standard-webhooks", "secrets": [secret]})
    payload = json.dumps({"type": "user.deleted", "data": {"id": 2}})
    msg_id = uniq("msg")

    def headers(sign_with: str, at: datetime) -> t.Dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": StdWebhook(sign_with).sign(msg_id, at, payload),
        }

    now = datetime.now(tz=timezone.utc)
    good = headers(secret, now)
    assert refused(post_in(herald, src, payload.replace("2", "3").encode(), good))
    other = headers("whsec_" + "QUJD" * 8, now)
    assert refused(post_in(herald, src, payload.encode(), other))
    stale = headers(secret, datetime.fromtimestamp(now.timestamp() - 3600, tz=timezone.utc))
    assert refused(post_in(herald, src, payload.encode(), stale), "timestamp_out_of_tolerance")
    assert post_in(herald, src, payload.encode(), good).status_code == 202


def test_svix_sdk_signature(herald: HeraldServer, raw_http: httpx.Client, app_id: str) -> None:
    """Svix signs with `svix-*` headers; a `standard-webhooks` source accepts both spellings."""
    secret = "whsec_" + "c3ZpeC1zZWNyZXQta2V5LTAxMjM0NTY3"
    src = make_source(raw_http, app_id, {"scheme": "standard-webhooks", "secrets": [secret]})
    payload = json.dumps({"type": "invoice.created", "data": {"n": uniq("n")}})
    msg_id = uniq("msg")
    now = datetime.now(tz=timezone.utc)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": SvixWebhook(secret).sign(msg_id, now, payload),
        "content-type": "application/json",
    }
    first = post_in(herald, src, payload.encode(), headers)
    assert first.status_code == 202, first.text
    again = post_in(herald, src, payload.encode(), headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    assert refused(post_in(herald, src, payload.replace("invoice", "invoicf").encode(), headers))
    wrong = {**headers, "svix-signature": SvixWebhook("whsec_" + "QUJD" * 8).sign(msg_id, now, payload)}
    assert refused(post_in(herald, src, payload.encode(), wrong))
    old = datetime.fromtimestamp(now.timestamp() - 3600, tz=timezone.utc)
    stale = {
        **headers,
        "svix-timestamp": str(int(old.timestamp())),
        "svix-signature": SvixWebhook(secret).sign(msg_id, old, payload),
    }
    assert refused(post_in(herald, src, payload.encode(), stale), "timestamp_out_of_tolerance")


JS_DIR = os.path.join(os.path.dirname(__file__), "..", "js")


def octokit_sign(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` computed by @octokit/webhooks-methods (installed by run.sh)."""
    node = shutil.which("node")
    assert node, "node is required (scripts/test.sh installs it)"
    out = subprocess.run(
        [node, os.path.join(JS_DIR, "sign.mjs"), secret],
        input=body,
        capture_output=True,
        timeout=30,
        check=True,
    )
    sig = out.stdout.decode()
    assert sig.startswith("sha256="), sig
    return sig


def test_octokit_webhooks_methods_signature(
    herald: HeraldServer, raw_http: httpx.Client, app_id: str
) -> None:
    secret = uniq("gh-secret")
    src = make_source(raw_http, app_id, {"scheme": "github", "secrets": [secret]})
    body = json.dumps({"action": "opened", "number": 42, "n": uniq("n")}).encode()
    delivery = uniq("delivery")
    headers = {
        "X-Hub-Signature-256": octokit_sign(secret, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "content-type": "application/json",
    }
    first = post_in(herald, src, body, headers)
    assert first.status_code == 202, first.text
    again = post_in(herald, src, body, headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    msg = raw_http.get(f"/api/v1/app/{app_id}/msg/{first.json()['id']}").json()
    assert msg["eventType"] == "pull_request"
    tampered = body.replace(b"opened", b"closed")
    assert refused(post_in(herald, src, tampered, {**headers, "X-GitHub-Delivery": uniq("d")}))
    wrong = {**headers, "X-GitHub-Delivery": uniq("d"), "X-Hub-Signature-256": octokit_sign("other", body)}
    assert refused(post_in(herald, src, body, wrong))
