"""The consumer portal in a real browser, embedded the way an operator embeds it.

A page served on loopback (another origin than Herald's) frames the link that
`POST /api/v1/auth/app-portal-access/{app}` returned. Inside the iframe the portal must sign
in with the link's key, drop the key from the address, show that application's endpoints,
messages and event catalog, and refuse another application's page. The same link opened after
its token was revoked says "expired". Chromium is Debian's (see test_console.py).
"""

from __future__ import annotations

import http.server
import threading
import typing as t

import httpx

from conftest import run_herald, uniq
from test_console import browser  # noqa: F401  (the module's chromium fixture)

PARENT_HTML: t.Dict[str, str] = {"page": ""}


class _Parent(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = PARENT_HTML["page"].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: t.Any) -> None:
        pass


def test_portal_link_in_an_iframe_shows_one_application(
    browser: t.Any, tmp_path: t.Any  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    parent = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Parent)
    threading.Thread(target=parent.serve_forever, daemon=True).start()
    parent_origin = f"http://127.0.0.1:{parent.server_address[1]}"
    overrides = {
        "HERALD_PORTAL_FRAME_ANCESTORS": f"'self' {parent_origin}",
        "HERALD_PORTAL_TITLE": "Acme webhooks",
        "HERALD_PORTAL_ACCENT_COLOR": "#0a7f3c",
    }
    try:
        with run_herald(tmp_path, overrides) as herald, httpx.Client(
            base_url=herald.base_url,
            headers={"Authorization": f"Bearer {herald.admin_token}"},
            timeout=15.0,
        ) as api:
            ids = {}
            for name in ("tenant-a", "tenant-b"):
                app = api.post("/api/v1/app", json={"name": f"{name} shop", "uid": uniq(name)}).json()
                ep = api.post(
                    f"/api/v1/app/{app['id']}/endpoint",
                    json={"url": f"https://{name}.example.com/hook", "description": f"{name} hook"},
                ).json()
                api.post(
                    f"/api/v1/app/{app['id']}/msg",
                    json={"eventType": f"{name}.happened", "payload": {"who": name}},
                ).raise_for_status()
                ids[name] = (app["id"], ep["id"])
            api.post(
                "/api/v1/event-type",
                json={"name": "tenant-a.happened", "description": "Something happened to tenant A"},
            ).raise_for_status()
            access = api.post(f"/api/v1/auth/app-portal-access/{ids['tenant-a'][0]}", json={}).json()
            assert access["url"] == f"{herald.base_url}/portal/#key={access['token']}"
            PARENT_HTML["page"] = (
                "<!doctype html><title>Operator product</title><h1>Your webhooks</h1>"
                f'<iframe src="{access["url"]}" title="Webhooks portal" width="1100" height="750"></iframe>'
            )

            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            csp_errors: t.List[str] = []
            page.on(
                "console",
                lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            try:
                page.goto(f"{parent_origin}/")
                portal = page.frame_locator('iframe[title="Webhooks portal"]')
                expect(portal.get_by_role("heading", level=1)).to_have_text("tenant-a shop")
                expect(portal.get_by_role("link", name="https://tenant-a.example.com/hook")).to_be_visible()
                expect(portal.get_by_role("link", name="tenant-a.happened")).to_be_visible()
                frame = page.frames[1]
                assert "key=" not in frame.url, frame.url
                html = frame.content()
                assert "tenant-b" not in html
                assert access["token"] not in html
                assert "Acme webhooks" in html

                # The event catalog, then the endpoint with its secret revealed.
                portal.get_by_role("link", name="Event types").click()
                expect(portal.get_by_text("Something happened to tenant A")).to_be_visible()
                portal.get_by_role("link", name="Endpoints and messages").click()
                portal.get_by_role("link", name="https://tenant-a.example.com/hook").click()
                portal.get_by_role("button", name="Reveal").click()
                expect(portal.locator("#secret")).to_contain_text("whsec_")

                # Another application's page, inside the same session: refused.
                frame = page.frames[1]
                frame.goto(f"{herald.base_url}/portal/app/{ids['tenant-b'][0]}")
                expect(portal.get_by_role("heading", level=1)).to_have_text("Error 403")
                assert "tenant-b.example.com" not in frame.content()
                assert csp_errors == [], csp_errors

                # Revoked: the same link now says it expired.
                tokens = api.get("/api/v1/token").json()["data"]
                token_id = next(x["id"] for x in tokens if x.get("appId") == ids["tenant-a"][0])
                api.delete(f"/api/v1/token/{token_id}").raise_for_status()
                fresh = context.new_page()
                fresh.goto(access["url"])
                expect(fresh.get_by_role("alert")).to_contain_text("expired")
                assert "key=" not in fresh.url
            finally:
                context.close()
    finally:
        parent.shutdown()
