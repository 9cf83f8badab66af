"""Polling endpoints and batching, verified with the official `standardwebhooks` and `svix`
verifiers: a consumer checks a pulled page, and a receiver checks a batch, with the same
libraries as a single webhook (docs/destinations.md)."""

from __future__ import annotations

import typing as t

import httpx
from standardwebhooks.webhooks import Webhook as StdWebhook
from svix.webhooks import Webhook as SvixWebhook

from conftest import HeraldServer, Receiver, uniq, wait_for


def _app(raw_http: httpx.Client) -> str:
    r = raw_http.post("/api/v1/app", json={"name": uniq("dest")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _publish(raw_http: httpx.Client, app: str, n: int) -> t.List[str]:
    ids = []
    for i in range(n):
        r = raw_http.post(f"/api/v1/app/{app}/msg", json={"eventType": "t.happened", "payload": {"n": i}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def test_a_pulled_page_verifies_with_the_official_libraries(herald: HeraldServer, raw_http: httpx.Client) -> None:
    app = _app(raw_http)
    ep = raw_http.post(f"/api/v1/app/{app}/endpoint", json={"url": "poll:"}).json()["id"]
    secret = raw_http.get(f"/api/v1/app/{app}/endpoint/{ep}/secret").json()["key"]
    token = raw_http.post(f"/api/v1/app/{app}/endpoint/{ep}/poll/token").json()["token"]
    sent = _publish(raw_http, app, 3)
    with httpx.Client(base_url=herald.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.get(f"/api/v1/app/{app}/endpoint/{ep}/poll", params={"limit": 2})
        assert r.status_code == 200, r.text
        page = StdWebhook(secret).verify(r.content, dict(r.headers))
        SvixWebhook(secret).verify(r.content, dict(r.headers))
        assert [e["id"] for e in page["data"]] == sent[:2]
        assert page["data"][0]["payload"] == {"n": 0}
        assert page["done"] is False
        r2 = c.get(f"/api/v1/app/{app}/endpoint/{ep}/poll", params={"iterator": page["iterator"]})
        page2 = StdWebhook(secret).verify(r2.content, dict(r2.headers))
        assert [e["id"] for e in page2["data"]] == sent[2:]
        # A tampered page does not verify.
        try:
            StdWebhook(secret).verify(r2.content.replace(b"t.happened", b"t.hacked"), dict(r2.headers))
        except Exception:  # noqa: BLE001 - the library's own error type
            pass
        else:
            raise AssertionError("a tampered page verified")
        # The poll-only token is refused elsewhere.
        assert c.get(f"/api/v1/app/{app}").status_code == 403


def test_a_batch_verifies_with_the_official_libraries(raw_http: httpx.Client, receiver: Receiver) -> None:
    app = _app(raw_http)
    path = receiver.new_path("batch")
    r = raw_http.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url(path), "batch": {"maxEvents": 4, "maxWaitMs": 2000}},
    )
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    secret = raw_http.get(f"/api/v1/app/{app}/endpoint/{ep}/secret").json()["key"]
    sent = _publish(raw_http, app, 4)
    got: t.List[str] = []

    def all_arrived() -> bool:
        got.clear()
        for req in receiver.requests(path):
            events = StdWebhook(secret).verify(req.body, req.headers)
            SvixWebhook(secret).verify(req.body, req.headers)
            assert req.headers["webhook-id"].startswith("batch_")
            got.extend(e["id"] for e in events)
        return sorted(got) == sorted(sent)

    wait_for(all_arrived, desc="the batch")
    assert got == sent, "publish order"
