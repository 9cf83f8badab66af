"""Takes the screenshots shown in docs/console.md and the README: the console's and the portal's
main screens at desktop (1280x800) and phone (390x844) width, in Debian's chromium.

It starts its own `herald serve` (the binary in $HERALD_BIN, else the debug build) on a free
loopback port with a fresh data directory, fills it with a small demo (two applications, endpoints
on a local receiver, messages with their attempts, a failing endpoint, an inbound source with a
quarantined request), signs in the way a person does and writes PNGs to docs/screenshots/.
Everything stays on loopback. Run it with the test venv:

    $HOME/.cache/herald-pyvenv/bin/python scripts/screenshots.py

Re-run it when a screen changes; the images are committed.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))

from conftest import Receiver, run_herald  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
CHROMIUM = "/usr/bin/chromium"


def demo(api: httpx.Client, rx: Receiver, base: str) -> dict:
    """A small, realistic data set; returns the IDs the screens need."""
    shop = api.post("/api/v1/app", json={"name": "Acme Shop", "uid": "acme-shop"}).json()
    api.post("/api/v1/app", json={"name": "Globex Billing", "uid": "globex-billing"}).json()
    for name, desc, example in [
        ("order.created", "An order was placed.", {"orderId": "ord_1042", "total": 129.9, "currency": "EUR"}),
        ("order.shipped", "An order left the warehouse.", {"orderId": "ord_1042", "carrier": "DHL"}),
        ("invoice.paid", "An invoice was paid in full.", {"invoiceId": "inv_77", "amount": 129.9}),
    ]:
        api.post(
            "/api/v1/event-type",
            json={
                "name": name,
                "description": desc,
                "schemas": {"1": {"type": "object", "examples": [example]}},
            },
        )
    ok_path, bad_path = "/hooks/orders", "/hooks/crm-sync"
    rx.set_default(bad_path, 500)
    ok = api.post(
        f"/api/v1/app/{shop['id']}/endpoint",
        json={"url": rx.url(ok_path), "description": "Order service", "filterTypes": ["order.created", "order.shipped"]},
    ).json()
    api.post(
        f"/api/v1/app/{shop['id']}/endpoint",
        json={"url": rx.url(bad_path), "description": "CRM sync (answers 500)"},
    ).json()
    msg = None
    for i in range(12):
        kind = ["order.created", "order.shipped", "invoice.paid"][i % 3]
        msg = api.post(
            f"/api/v1/app/{shop['id']}/msg",
            json={"eventType": kind, "payload": {"orderId": f"ord_{1040 + i}", "total": 20 + i * 7.5, "currency": "EUR"}},
        ).json()
    src = api.post(
        f"/api/v1/app/{shop['id']}/source",
        json={
            "name": "Partner orders",
            "verification": {"scheme": "api-key", "header": "X-Partner-Key", "secrets": ["partner-key-123"]},
            "schema": {"type": "object", "required": ["id"]},
        },
    ).json()
    for body in (b'{"id": "po_1", "qty": 3}', b'{"qty": 1}'):
        httpx.post(f"{base}/in/{src['id']}", content=body, headers={"X-Partner-Key": "partner-key-123", "Content-Type": "application/json"})
    time.sleep(3)  # first attempts (and the CRM endpoint's first retries) happen
    return {"app": shop["id"], "ep": ok["id"], "msg": msg["id"], "src": src["id"]}


def shoot(page, name: str) -> None:
    for size, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / f"{name}-{size}.png"), full_page=False)
        print(f"wrote docs/screenshots/{name}-{size}.png")


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    rx = Receiver().start()
    work = tempfile.mkdtemp(prefix="herald-shots-")
    try:
        with run_herald(work) as herald, httpx.Client(
            base_url=herald.base_url, headers={"Authorization": f"Bearer {herald.admin_token}"}, timeout=10
        ) as api:
            ids = demo(api, rx, herald.base_url)
            exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
                ctx = b.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin", locale="en-GB")
                page = ctx.new_page()
                c = herald.base_url + "/console"
                page.goto(c + "/")
                page.get_by_label("Admin token").fill(herald.admin_token)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_load_state("networkidle")
                shoot(page, "console-applications")
                for name, path in [
                    ("console-application", f"/app/{ids['app']}"),
                    ("console-endpoint", f"/app/{ids['app']}/endpoint/{ids['ep']}"),
                    ("console-message", f"/app/{ids['app']}/msg/{ids['msg']}"),
                    ("console-source", f"/app/{ids['app']}/source/{ids['src']}"),
                    ("console-event-types", "/event-types"),
                    ("console-health", "/health"),
                ]:
                    page.goto(c + path)
                    page.wait_for_load_state("networkidle")
                    shoot(page, name)
                access = api.post(f"/api/v1/auth/app-portal-access/{ids['app']}", json={}).json()
                portal = b.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin", locale="en-GB").new_page()
                portal.goto(access["url"])
                portal.wait_for_load_state("networkidle")
                shoot(portal, "portal-application")
                b.close()
    finally:
        rx.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
