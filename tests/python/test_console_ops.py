"""The console's operator screens in a real browser (Debian's chromium, Playwright): the event
catalog created, edited, archived and unarchived (a bad JSON Schema explained next to its
field), a quarantined request rejected, messages filtered by delivery status, an application
found by part of its name, the health page's last-hour figures, and sign-in rate limiting.

Controls are found by role and accessible name, as a screen reader would find them.
"""

from __future__ import annotations

import re
import typing as t

import httpx
import pytest

from conftest import HeraldServer, Receiver, run_herald, uniq
from test_console import browser  # noqa: F401  (the module's chromium fixture)


@pytest.fixture()
def page(browser: t.Any) -> t.Iterator[t.Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    p.csp_errors = []  # type: ignore[attr-defined]
    p.on(
        "console",
        lambda m: p.csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    p.on("dialog", lambda d: (p.csp_errors.append("dialog: " + d.message), d.dismiss()))
    try:
        yield p
        assert p.csp_errors == [], f"CSP violations or dialogs: {p.csp_errors}"
    finally:
        context.close()


def sign_in(page: t.Any, herald: HeraldServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{herald.base_url}/console/")
    page.get_by_label("Admin token").fill(herald.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()


def test_event_types_are_created_edited_and_archived(page: t.Any, herald: HeraldServer, raw_http: httpx.Client) -> None:
    from playwright.sync_api import expect

    name = uniq("invoice.paid")
    sign_in(page, herald)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Event types").click()
    page.get_by_role("link", name="New event type").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("<b>Paid</b> invoices")
    page.get_by_label("JSON Schema").fill('{"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}, "$ref": "#"}')
    page.get_by_label("Example payload").fill('{"id": 1}')
    page.get_by_role("button", name="Create event type").click()
    # Refused: the reason in words next to the schema box, the typed values kept.
    expect(page.get_by_role("alert").filter(has_text="JSON Schema:")).to_be_visible()
    expect(page.get_by_label("Description")).to_have_value("<b>Paid</b> invoices")
    assert raw_http.get(f"/api/v1/event-type/{name}").status_code == 404

    page.get_by_label("JSON Schema").fill('{"type": "object", "required": ["id"]}')
    page.get_by_role("button", name="Create event type").click()
    card = page.get_by_role("article", name=f"Event type {name}")
    expect(card).to_contain_text("<b>Paid</b> invoices")
    et = raw_http.get(f"/api/v1/event-type/{name}").json()
    assert et["schemas"]["1"]["examples"] == [{"id": 1}]

    card.get_by_role("link", name=f"Edit {name}").click()
    expect(page.get_by_label("JSON Schema")).to_have_value(re.compile('"required"'))
    page.get_by_label("Description").fill("Invoices that were paid")
    page.get_by_label("Example payload").fill('{"id": 2}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("article", name=f"Event type {name}")).to_contain_text("Invoices that were paid")
    assert raw_http.get(f"/api/v1/event-type/{name}").json()["schemas"]["1"]["examples"] == [{"id": 2}]

    page.get_by_role("button", name=f"Archive {name}").click()
    expect(page.get_by_role("article", name=f"Event type {name}")).to_contain_text("(archived)")
    assert raw_http.get(f"/api/v1/event-type/{name}").json()["archived"] is True
    page.get_by_role("link", name="Hide archived").click()
    expect(page.get_by_role("article", name=f"Event type {name}")).to_have_count(0)
    page.get_by_role("link", name="Show archived").click()
    page.get_by_role("button", name=f"Unarchive {name}").click()
    expect(page.get_by_role("button", name=f"Archive {name}")).to_be_visible()
    assert raw_http.get(f"/api/v1/event-type/{name}").json()["archived"] is False


def test_a_quarantined_request_is_rejected(page: t.Any, herald: HeraldServer, raw_http: httpx.Client, receiver: Receiver) -> None:
    from playwright.sync_api import expect

    app = raw_http.post("/api/v1/app", json={"name": uniq("reject")}).json()
    path = receiver.new_path("reject")
    raw_http.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url(path)})
    src = raw_http.post(
        f"/api/v1/app/{app['id']}/source",
        json={
            "name": "partner",
            "verification": {"scheme": "api-key", "header": "X-Key", "secrets": ["k-123"]},
            "schema": {"type": "object", "required": ["id"]},
        },
    ).json()
    r = httpx.post(f"{herald.base_url}/in/{src['id']}", headers={"X-Key": "k-123"}, json={"no": "id"})
    assert r.status_code == 202, r.text

    sign_in(page, herald)
    page.goto(f"{herald.base_url}/console/app/{app['id']}/source/{src['id']}")
    page.get_by_role("button", name=re.compile("^Reject request")).click()
    log = page.locator("#requests")
    expect(log.get_by_text("rejected", exact=True)).to_be_visible()
    expect(log).to_contain_text("rejected by the admin token at")
    expect(page.get_by_role("button", name=re.compile("^Release request"))).to_have_count(0)
    logged = raw_http.get(f"/api/v1/app/{app['id']}/source/{src['id']}/request").json()["data"][0]
    assert logged["status"] == "rejected"
    released = raw_http.post(f"/api/v1/app/{app['id']}/source/{src['id']}/quarantine/{logged['id']}/release", json={})
    assert released.status_code == 409
    assert receiver.requests(path) == []


def test_messages_are_filtered_by_delivery_status(page: t.Any, herald: HeraldServer, raw_http: httpx.Client, receiver: Receiver) -> None:
    from playwright.sync_api import expect

    app = raw_http.post("/api/v1/app", json={"name": uniq("status")}).json()
    ok_path = receiver.new_path("ok")
    bad_path = receiver.new_path("bad")
    receiver.set_default(bad_path, 500)
    raw_http.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url(ok_path), "filterTypes": ["went.well"]})
    raw_http.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url(bad_path), "filterTypes": ["went.wrong"]})
    for event_type in ["went.well", "went.wrong"]:
        raw_http.post(f"/api/v1/app/{app['id']}/msg", json={"eventType": event_type, "payload": {}})
    receiver.wait_for_requests(ok_path, 1)

    sign_in(page, herald)
    page.goto(f"{herald.base_url}/console/app/{app['id']}")
    messages = page.locator("#messages")
    expect(messages.get_by_role("link", name="went.wrong")).to_be_visible()
    page.get_by_label("Delivery status").select_option(label="succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(messages.get_by_role("link", name="went.well")).to_be_visible()
    expect(messages.get_by_role("link", name="went.wrong")).to_have_count(0)
    # The failing endpoint gives up after its retries ([1,1,1]): then it shows under "failed".
    page.get_by_label("Delivery status").select_option(label="failed")
    page.get_by_role("button", name="Filter").click()
    expect(messages.get_by_role("link", name="went.wrong")).to_be_visible(timeout=15_000)
    expect(messages.get_by_role("link", name="went.well")).to_have_count(0)


def test_an_application_is_found_by_part_of_its_name(page: t.Any, herald: HeraldServer, raw_http: httpx.Client) -> None:
    from playwright.sync_api import expect

    marker = uniq("Zebra_50%")
    app = raw_http.post("/api/v1/app", json={"name": f"The {marker} Shop"}).json()
    raw_http.post("/api/v1/app", json={"name": marker.replace("_", "X")})
    sign_in(page, herald)
    page.get_by_label("Find an application by name, ID or uid").fill(marker.lower())
    page.get_by_role("button", name="Find").click()
    apps = page.locator("#apps")
    expect(apps.get_by_role("link", name=f"The {marker} Shop")).to_be_visible()
    expect(apps.get_by_role("link")).to_have_count(1)
    apps.get_by_role("link", name=f"The {marker} Shop").click()
    expect(page).to_have_url(re.compile(f"/console/app/{app['id']}$"))


def test_health_shows_the_last_hour_and_breakers(page: t.Any, herald: HeraldServer) -> None:
    from playwright.sync_api import expect

    sign_in(page, herald)
    page.get_by_role("link", name="Health").click()
    health = page.locator("#health")
    expect(health).to_contain_text("Deliveries per minute (last hour)")
    expect(health).to_contain_text("Failure rate (last hour)")
    expect(page.get_by_role("heading", name="Open circuit breakers")).to_be_visible()
    figure = health.locator("dt", has_text="Deliveries per minute").locator("xpath=following-sibling::dd[1]")
    assert re.match(r"^\d+\.\d", figure.inner_text()), figure.inner_text()


def test_too_many_wrong_sign_ins_are_refused_with_429(browser: t.Any, tmp_path: t.Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    # A server of its own: the shared one must stay usable for the other browser tests.
    with run_herald(tmp_path, {"HERALD_CONSOLE_SIGN_IN_PER_MINUTE": "3"}) as server:
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{server.base_url}/console/")
            for _ in range(3):
                page.get_by_label("Admin token").fill("wrong-token-wrong-token")
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("alert")).to_contain_text("not valid for the console")
            page.get_by_label("Admin token").fill(server.admin_token)
            with page.expect_response(re.compile("/console/?$")) as answer:
                page.get_by_role("button", name="Sign in").click()
            assert answer.value.status == 429
            expect(page.get_by_role("alert")).to_contain_text("Too many sign-in attempts")
            expect(page.get_by_role("heading", name="Applications")).to_have_count(0)
        finally:
            context.close()
        log = open(server.log_path, encoding="utf-8", errors="replace").read()
        assert "sign-in refused" in log
        assert "wrong-token-wrong-token" not in log and server.admin_token not in log
