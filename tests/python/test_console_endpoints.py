"""The endpoint screens of the console in a real browser (Debian's chromium via Playwright).

Controls are found by role and label: "Send test event" (an example from the catalog, edited,
sent, and its attempt appearing on the message's page), editing channels, custom headers and
the timeout (persisted, a sensitive header never shown), the delete confirmation, the 24 h
chart's accessible text, and "Recover failed deliveries since" an instant typed in the viewer's
time zone, with its progress polled until done. No dialog, no CSP violation.
"""

from __future__ import annotations

import re
import typing as t

import httpx

from conftest import HeraldServer, Receiver, uniq, wait_for
from test_console import browser  # noqa: F401  (the module's chromium fixture)


def test_console_endpoint_send_edit_delete_chart_and_recover(
    browser: t.Any, herald: HeraldServer, raw_http: httpx.Client, receiver: Receiver  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    event_type = uniq("invoice.paid")
    raw_http.post(
        "/api/v1/event-type",
        json={
            "name": event_type,
            "description": "An invoice was paid",
            "schemas": {"1": {"type": "object", "examples": [{"invoice": "in_example", "amount": 42}]}},
        },
    ).raise_for_status()
    app = raw_http.post("/api/v1/app", json={"name": "endpoints shop", "uid": uniq("eps")}).json()
    path = receiver.new_path("eps")
    ep = raw_http.post(
        f"/api/v1/app/{app['id']}/endpoint",
        json={"url": receiver.url(path), "headers": {"Authorization": "Bearer very-secret-1"}},
    ).json()
    ep_page = f"{herald.base_url}/console/app/{app['id']}/endpoint/{ep['id']}"

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: t.List[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    csp_errors: t.List[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        page.goto(f"{herald.base_url}/console/")
        page.get_by_label("Admin token").fill(herald.admin_token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Applications")).to_be_visible()
        page.goto(ep_page)
        assert "very-secret-1" not in page.content()

        # Send test event: the catalog's example, edited, sent to this endpoint only.
        page.get_by_role("link", name="Send test event").click()
        page.get_by_label("Example of event type").select_option(event_type)
        page.get_by_role("button", name="Load example").click()
        payload = page.get_by_label("Payload (JSON)")
        expect(payload).to_have_value(re.compile("in_example"))
        payload.fill('{"invoice": "in_from_browser", "amount": 7}')
        page.get_by_role("button", name="Send test event").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Message {event_type}")
        got = receiver.wait_for_requests(path, 1)
        assert b"in_from_browser" in got[0].body
        # The attempt appears on the message's page (live refresh, no reload needed).
        expect(page.locator("td").get_by_text("success", exact=True).first).to_be_visible(timeout=6_000)

        # Edit channels, a custom header and the timeout; the secret header stays hidden.
        page.goto(ep_page)
        page.get_by_text("Headers, metadata and delivery options").click()
        page.get_by_label("Channels").fill("eu, vip")
        headers = page.get_by_label("Custom headers")
        expect(headers).to_have_value(re.compile(r"Authorization: ••• \(set\)"))
        headers.fill("Authorization: ••• (set)\nX-Team: billing")
        page.get_by_label("Timeout").fill("abc")
        page.get_by_role("button", name="Save").click()
        # Refused next to the control, in words.
        expect(page.locator("#ep-timeout-error")).to_contain_text("Timeout")
        expect(page.get_by_label("Timeout")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Timeout").fill("2500")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").first).to_contain_text("Settings saved")
        saved = raw_http.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}").json()
        assert saved["channels"] == ["eu", "vip"], saved
        assert saved["timeoutMs"] == 2500, saved
        h = raw_http.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}/headers").json()
        assert h["headers"].get("X-Team") == "billing", h
        assert "Authorization" in h["sensitive"], h
        page.get_by_text("Headers, metadata and delivery options").click()
        expect(page.get_by_label("Channels")).to_have_value("eu, vip")
        expect(page.get_by_label("Timeout")).to_have_value("2500")
        assert "very-secret-1" not in page.content()

        # The chart: an image with a text alternative, and the numbers as a table.
        chart = page.get_by_role("img", name=re.compile("Attempts per hour over the last 24 hours: 1 succeeded"))
        expect(chart).to_be_attached()
        page.get_by_text("Attempts per hour as a table").click()
        expect(page.get_by_role("table", name="Attempts per hour, last 24 hours")).to_be_visible()

        # Recover since an instant in the viewer's zone: a failed delivery comes back.
        receiver.fail_next(path, 500, 4)
        msg = raw_http.post(
            f"/api/v1/app/{app['id']}/msg",
            json={"eventType": event_type, "payload": {"invoice": "in_failing"}, "channels": ["eu"]},
        ).json()

        def failed() -> bool:
            d = raw_http.get(f"/api/v1/app/{app['id']}/msg/{msg['id']}/endpoint").json()["data"]
            return bool(d) and d[0]["status"] == 2

        wait_for(failed, timeout=30, desc="the delivery failing for good")
        page.goto(ep_page)
        ten_minutes_ago = page.evaluate(
            """(() => { const d = new Date(Date.now() - 600000);
                const p = n => String(n).padStart(2, '0');
                return `${d.getFullYear()}-${p(d.getMonth()+1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; })()"""
        )
        page.get_by_label("Recover failed deliveries since").fill(ten_minutes_ago)
        page.get_by_role("button", name="Recover since").click()
        progress = page.locator("#recover-progress")
        expect(progress).to_contain_text("re-queued")
        expect(progress).to_contain_text("Done", timeout=15_000)
        wait_for(lambda: len(receiver.requests(path)) >= 6, timeout=10, desc="the recovered delivery")

        # Readable on a phone: the new screens are no wider than the viewport.
        page.set_viewport_size({"width": 390, "height": 844})
        for url in [ep_page, f"{ep_page}/test", f"{ep_page}/delete"]:
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{url} is {width}px wide at 390px"
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(ep_page)

        # Delete asks first; Cancel keeps the endpoint.
        page.get_by_role("link", name="Delete endpoint").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Delete endpoint?")
        page.get_by_role("link", name="Cancel").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Endpoint")
        assert raw_http.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}").status_code == 200
        page.get_by_role("link", name="Delete endpoint").click()
        page.get_by_role("button", name="Delete endpoint").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("endpoints shop")
        assert raw_http.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}").status_code == 404

        assert dialogs == [], f"a dialog fired: {dialogs}"
        assert csp_errors == [], f"CSP violations: {csp_errors}"
    finally:
        context.close()


def test_portal_sends_a_test_event_to_its_endpoint(
    browser: t.Any, herald: HeraldServer, raw_http: httpx.Client, receiver: Receiver  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    event_type = uniq("order.shipped")
    raw_http.post(
        "/api/v1/event-type",
        json={"name": event_type, "description": "shipped", "schemas": {"1": {"type": "object", "examples": [{"order": "o_1"}]}}},
    ).raise_for_status()
    app = raw_http.post("/api/v1/app", json={"name": "portal shop", "uid": uniq("portal-eps")}).json()
    path = receiver.new_path("portal-eps")
    raw_http.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": receiver.url(path)}).raise_for_status()
    access = raw_http.post(f"/api/v1/auth/app-portal-access/{app['id']}", json={}).json()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    csp_errors: t.List[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        page.goto(access["url"])
        expect(page.get_by_role("heading", level=1)).to_have_text("portal shop")
        page.get_by_role("link", name=receiver.url(path)).click()
        page.get_by_role("link", name="Send test event").click()
        page.get_by_label("Example of event type").select_option(event_type)
        page.get_by_role("button", name="Load example").click()
        expect(page.get_by_label("Payload (JSON)")).to_have_value(re.compile("o_1"))
        page.get_by_label("Payload (JSON)").fill("{not json")
        page.get_by_role("button", name="Send test event").click()
        expect(page.locator("#test-payload-error")).to_contain_text("not valid JSON")
        page.get_by_label("Payload (JSON)").fill('{"order": "o_portal"}')
        page.get_by_role("button", name="Send test event").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Message {event_type}")
        got = receiver.wait_for_requests(path, 1)
        assert b"o_portal" in got[0].body
        expect(page.locator("td").get_by_text("success", exact=True).first).to_be_visible(timeout=6_000)
        assert csp_errors == [], f"CSP violations: {csp_errors}"
    finally:
        context.close()
