"""The operator console in a real browser: Debian's chromium driven by Playwright.

Controls are found by role and accessible name, as a screen reader would find them. The test
signs in, walks application -> endpoint -> message, checks that a hostile application name is
shown as text (no element made of it, no dialog), that a message published meanwhile appears
without a reload, and signs out. Chromium comes from the system (`/usr/bin/chromium`, installed
by scripts/test.sh); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import typing as t

import httpx
import pytest

from conftest import HeraldServer, Receiver, uniq

CHROMIUM = "/usr/bin/chromium"
XSS = "<img src=x onerror=alert(1)>"


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return
    message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> t.Iterator[t.Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            headless=True,
            # Root in a container: chromium's sandbox needs user namespaces it may not have.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


def test_console_sign_in_navigate_live_refresh_and_sign_out(
    browser: t.Any, herald: HeraldServer, raw_http: httpx.Client, receiver: Receiver
) -> None:
    from playwright.sync_api import expect

    app = raw_http.post("/api/v1/app", json={"name": XSS, "uid": uniq("console")}).json()
    path = receiver.new_path("console")
    ep = raw_http.post(
        f"/api/v1/app/{app['id']}/endpoint",
        json={"url": receiver.url(path), "description": XSS},
    ).json()
    secret = raw_http.get(f"/api/v1/app/{app['id']}/endpoint/{ep['id']}/secret").json()["key"]
    first = raw_http.post(
        f"/api/v1/app/{app['id']}/msg",
        json={"eventType": "order.created", "payload": {"note": XSS}},
    ).json()
    receiver.wait_for_requests(path, 1)
    # An inbound source whose schema quarantines a body without "id".
    src = raw_http.post(
        f"/api/v1/app/{app['id']}/source",
        json={
            "name": "partner",
            "verification": {"scheme": "api-key", "header": "X-Partner-Key", "secrets": ["partner-key-123"]},
            "schema": {"type": "object", "required": ["id"]},
        },
    ).json()
    quarantined = httpx.post(
        f"{herald.base_url}/in/{src['id']}",
        headers={"X-Partner-Key": "partner-key-123"},
        json={"note": XSS},
    )
    assert quarantined.status_code == 202, quarantined.text

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
        page.get_by_label("Admin token").fill("wrong-token-wrong-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid for the console")

        page.get_by_label("Admin token").fill(herald.admin_token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Applications")).to_be_visible()
        assert herald.admin_token not in page.content()

        # Application: its name is text, not an element.
        page.get_by_role("link", name=XSS).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
        assert page.locator("img").count() == 0
        # Dates are turned into the viewer's zone; the UTC instant stays on hover.
        created = page.locator("time").first
        assert (created.get_attribute("title") or "").endswith("UTC")

        # Endpoint: secret hidden until "Reveal".
        page.get_by_role("link", name=receiver.url(path)).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Endpoint")
        assert secret not in page.content()
        page.get_by_role("button", name="Reveal").click()
        expect(page.locator("#secret")).to_have_text(secret)

        # Back on the application: a message published now appears without a reload.
        page.get_by_role("link", name=XSS).click()
        expect(page.get_by_role("link", name="order.created")).to_be_visible()
        page.evaluate("window.__stillTheSamePage = true")
        raw_http.post(
            f"/api/v1/app/{app['id']}/msg",
            json={"eventType": "invoice.paid", "payload": {"amount": 5}},
        )
        expect(page.get_by_role("link", name="invoice.paid")).to_be_visible(timeout=5_000)
        assert page.evaluate("window.__stillTheSamePage === true"), "the page was reloaded"

        # Message: payload as text, the attempt, and Resend.
        page.get_by_role("link", name="order.created").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Message order.created")
        expect(page.locator("#payload")).to_contain_text(XSS)
        resend = page.get_by_role("button", name=f"Resend to {receiver.url(path)}")
        expect(resend).to_be_visible()
        resend.click()
        receiver.wait_for_requests(path, 3)
        expect(page.get_by_text("(manual)").first).to_be_visible(timeout=5_000)
        # The refresh does not take the keyboard focus away.
        resend = page.get_by_role("button", name=f"Resend to {receiver.url(path)}")
        resend.focus()
        page.wait_for_timeout(4_500)
        assert resend.evaluate("b => b === document.activeElement"), "the refresh stole the focus"

        # Source: the quarantined request with its body as text, released from the page.
        page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name=XSS).click()
        page.get_by_role("link", name="partner").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Source partner")
        log = page.locator("#requests")
        expect(log.get_by_text("quarantined", exact=True)).to_be_visible()
        assert page.locator("img").count() == 0
        page.get_by_label("Status").select_option("quarantined")
        page.get_by_role("button", name="Filter").click()
        page.get_by_role("button", name=re.compile("^Release request")).click()
        expect(page.locator("#requests").get_by_text("released", exact=True)).to_be_visible()
        receiver.wait_for_requests(path, 4)

        # Readable on a phone: no screen is wider than the viewport.
        page.set_viewport_size({"width": 390, "height": 844})
        base = f"{herald.base_url}/console"
        for url in [
            f"{base}/",
            f"{base}/app/{app['id']}",
            f"{base}/app/{app['id']}/endpoint/{ep['id']}",
            f"{base}/app/{app['id']}/msg/{first['id']}",
            f"{base}/app/{app['id']}/source/{src['id']}",
            f"{base}/health",
        ]:
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            too_wide = page.evaluate(
                """Array.from(document.querySelectorAll('body *'))
                    .filter(e => e.getBoundingClientRect().right > 391)
                    .slice(0, 5)
                    .map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 60))"""
            )
            assert width <= 390, f"{url} is {width}px wide at 390px: {too_wide}"

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.goto(f"{herald.base_url}/console/app/{app['id']}")
        expect(page.get_by_label("Admin token")).to_be_visible()

        assert dialogs == [], f"a dialog fired: {dialogs}"
        assert csp_errors == [], f"CSP violations: {csp_errors}"
    finally:
        context.close()
