//! The consumer portal (`/portal/`) over real HTTP: an `app-portal-access` link's key
//! exchanged for a session, the cookie's attributes, a session that sees exactly one
//! application (another application's pages and the forms behind them answer 403/404), CSRF
//! refusals, the CSP that lets only `portal_frame_ancestors` frame it, branding, and keys that
//! are wrong, revoked, not app-scoped, huge or malformed. The browser-level check (the link
//! opened inside an iframe) is tests/python/test_portal.py.

use serde_json::{json, Value};

use crate::common::*;
use crate::console::{Console, Page};

const PORTAL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

fn portal(srv: &TestServer) -> Console {
    Console::named(srv, "herald_portal")
}

/// `POST /auth/app-portal-access/{app}`: the link and its key.
async fn link(srv: &TestServer, app: &str) -> (String, String) {
    let out = srv
        .client
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await;
    (
        out["url"].as_str().unwrap().to_string(),
        out["token"].as_str().unwrap().to_string(),
    )
}

async fn sign_in(c: &mut Console, key: &str) -> Page {
    let origin = c.origin();
    c.post("/portal/sign-in", Some(&origin), &[("key", key)])
        .await
}

fn json_of(p: &Page) -> Value {
    serde_json::from_str(&p.text).unwrap_or_else(|e| panic!("{e}: {}", p.text))
}

/// Two applications, each with an endpoint and a message.
struct Tenants {
    a: String,
    ep_a: String,
    msg_a: String,
    b: String,
    ep_b: String,
    msg_b: String,
}

async fn tenants(srv: &TestServer) -> Tenants {
    let admin = &srv.client;
    let mut ids = Vec::new();
    for name in ["tenant-a", "tenant-b"] {
        let app = admin.create_app(name).await;
        let ep = admin
            .create_endpoint(
                &app,
                json!({"url": format!("https://{name}.example.com/hook"), "description": format!("{name} hook")}),
            )
            .await;
        let msg = admin
            .publish(
                &app,
                json!({"eventType": format!("{name}.happened"), "payload": {"who": name}}),
            )
            .await;
        ids.push((app, id_of(&ep), msg));
    }
    let (b, a) = (ids.pop().unwrap(), ids.pop().unwrap());
    Tenants {
        a: a.0,
        ep_a: a.1,
        msg_a: a.2,
        b: b.0,
        ep_b: b.1,
        msg_b: b.2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_link_signs_in_to_one_application_only() {
    let srv = TestServer::start(|_| {}).await;
    let t = tenants(&srv).await;
    let (url, key) = link(&srv, &t.a).await;
    assert_eq!(url, format!("http://{}/portal/#key={key}", srv.addr));

    let mut c = portal(&srv);
    let entry = c.get("/portal/").await;
    assert_eq!(entry.status, 200);
    assert!(entry.text.contains("data-portal-entry"), "{}", entry.text);
    assert!(entry.headers.get("set-cookie").is_none());
    assert_eq!(entry.header("content-security-policy"), PORTAL_CSP);
    assert!(entry.headers.get("x-frame-options").is_none());
    assert_eq!(entry.header("referrer-policy"), "no-referrer");

    let ok = sign_in(&mut c, &key).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(json_of(&ok)["next"], format!("/portal/app/{}", t.a));
    let set = ok.header("set-cookie").to_string();
    for attr in [
        "herald_portal=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/portal",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(
        !set.contains("Secure"),
        "http public_url: no Secure ({set})"
    );
    assert!(!set.contains(&key), "the cookie carries the token: {set}");

    // The application's own screens.
    let home = c.get(&format!("/portal/app/{}", t.a)).await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("https://tenant-a.example.com/hook"));
    assert!(home.text.contains("tenant-a.happened"));
    assert!(home.text.contains(">Sign out</button>"));
    assert!(!home.text.contains("tenant-b"), "another app shows");
    assert!(!home.text.contains("<h2>Sources</h2>"));
    assert!(
        !home.text.contains("/console/"),
        "console links in the portal"
    );
    assert!(!home.text.contains(&key), "a page shows the token");
    assert_eq!(home.header("content-security-policy"), PORTAL_CSP);
    let ep = c
        .get(&format!("/portal/app/{}/endpoint/{}", t.a, t.ep_a))
        .await;
    assert_eq!(ep.status, 200, "{}", ep.text);
    let msg = c.get(&format!("/portal/app/{}/msg/{}", t.a, t.msg_a)).await;
    assert_eq!(msg.status, 200, "{}", msg.text);
    assert!(
        msg.text.contains("&#34;who&#34;: &#34;tenant-a&#34;"),
        "{}",
        msg.text
    );
    // With a session, the entry page leads on to the application.
    let again = c.get("/portal").await;
    assert!(again
        .text
        .contains(&format!("data-next=\"/portal/app/{}\"", t.a)));

    // Another application: refused, pages and the forms behind them.
    for path in [
        format!("/portal/app/{}", t.b),
        format!("/portal/app/{}/endpoint/{}", t.b, t.ep_b),
        format!("/portal/app/{}/msg/{}", t.b, t.msg_b),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, 403, "{path}: {}", p.text);
        assert!(!p.text.contains("tenant-b"), "{path} shows it: {}", p.text);
    }
    for path in [
        format!("/portal/app/{}/endpoint/{}", t.a, t.ep_b),
        format!("/portal/app/{}/msg/{}", t.a, t.msg_b),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, 404, "{path}: {}", p.text);
    }
    let csrf = c.csrf_of(&format!("/portal/app/{}", t.a)).await;
    let origin = c.origin();
    for (path, fields) in [
        (
            format!("/portal/app/{}/endpoint/{}/reveal", t.b, t.ep_b),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("/portal/app/{}/msg/{}/resend", t.b, t.msg_b),
            vec![("csrf", csrf.as_str()), ("endpoint", t.ep_b.as_str())],
        ),
        (
            format!("/portal/app/{}/msg/{}/resend", t.a, t.msg_a),
            vec![("csrf", csrf.as_str()), ("endpoint", t.ep_b.as_str())],
        ),
    ] {
        let p = c.post(&path, Some(&origin), &fields).await;
        assert!(
            p.status == 403 || p.status == 404,
            "{path}: {} {}",
            p.status,
            p.text
        );
        assert!(!p.text.contains("whsec_"), "{path} reveals a secret");
    }
    // The operator's screens are not in the portal.
    for path in [
        "/portal/health".to_string(),
        format!("/portal/app/{}/source/src_x", t.a),
        "/portal/app".to_string(),
    ] {
        assert_eq!(c.get(&path).await.status, 404, "{path}");
    }
    // Its own secret is revealed by the checked POST.
    let reveal = c
        .post(
            &format!("/portal/app/{}/endpoint/{}/reveal", t.a, t.ep_a),
            Some(&origin),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(reveal.status, 200);
    assert!(reveal.text.contains("whsec_"));

    // A portal cookie does not open the console, nor a console cookie the portal.
    let sealed = c.cookie.clone().unwrap();
    let mut other = Console::new(&srv);
    other.cookie = Some(sealed);
    let console = other.get("/console/").await;
    assert!(console.text.contains("data-sign-in"), "{}", console.text);

    // Sign out.
    let out = c
        .post("/portal/sign-out", Some(&origin), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), "/portal");
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let after = c.get(&format!("/portal/app/{}", t.a)).await;
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), "/portal");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_catalog_shows_descriptions_schemas_and_examples_as_text() {
    let srv = TestServer::start(|_| {}).await;
    let app = srv.client.create_app("a").await;
    srv.client
        .post(
            "/event-type",
            json!({
                "name": "invoice.paid",
                "description": "<b>An invoice</b> was paid",
                "schemas": {"1": {"type": "object", "examples": [{"amount": 42}]}}
            }),
            201,
        )
        .await;
    let (_, key) = link(&srv, &app).await;
    let mut c = portal(&srv);
    assert_eq!(sign_in(&mut c, &key).await.status, 200);
    let cat = c.get("/portal/event-types").await;
    assert_eq!(cat.status, 200, "{}", cat.text);
    assert!(cat.text.contains("invoice.paid"));
    assert!(cat
        .text
        .contains("&#60;b&#62;An invoice&#60;/b&#62; was paid"));
    assert!(cat.text.contains("&#34;amount&#34;: 42"), "{}", cat.text);
    assert!(cat.text.contains("&#34;type&#34;: &#34;object&#34;"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_revoked_admin_huge_and_malformed_keys_start_no_session() {
    let srv = TestServer::start(|_| {}).await;
    let t = tenants(&srv).await;
    let mut c = portal(&srv);
    let unscoped = srv.client.post("/token", json!({"name": "ops"}), 201).await;

    for key in [ADMIN_TOKEN, unscoped["token"].as_str().unwrap()] {
        let p = sign_in(&mut c, key).await;
        assert_eq!(p.status, 401, "{}", p.text);
        assert_eq!(json_of(&p)["error"], "not_portal");
        assert!(p.headers.get("set-cookie").is_none());
    }
    let unknown = sign_in(&mut c, "hk_not-a-key-anyone-issued").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(json_of(&unknown)["error"], "expired");
    assert!(json_of(&unknown)["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // Revoking the portal token: the link expires and its open session ends.
    let (_, key) = link(&srv, &t.a).await;
    assert_eq!(sign_in(&mut c, &key).await.status, 200);
    assert_eq!(c.get(&format!("/portal/app/{}", t.a)).await.status, 200);
    let tokens = srv.client.get("/token", 200).await;
    let id = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t2| t2["appId"] == t.a.as_str())
        .map(id_of)
        .expect("the portal token is listed");
    srv.client.delete(&format!("/token/{id}"), 204).await;
    let ended = c.get(&format!("/portal/app/{}", t.a)).await;
    assert_eq!(ended.status, 303);
    assert!(ended.header("set-cookie").contains("Max-Age=0"));
    assert!(c.cookie.is_none());
    let expired = sign_in(&mut c, &key).await;
    assert_eq!(expired.status, 401);
    assert_eq!(json_of(&expired)["error"], "expired");

    // Empty, huge and malformed keys: refused, never an error.
    let huge = "k".repeat(5000);
    let nul = "hk_\u{0}\u{202e}<script>";
    for key in ["", "   ", huge.as_str(), nul] {
        let p = sign_in(&mut c, key).await;
        assert!(
            p.status == 400 || p.status == 401,
            "{} {}",
            p.status,
            p.text
        );
        assert!(p.headers.get("set-cookie").is_none());
        assert!(!p.text.contains("<script>"));
    }
    let origin = c.origin();
    let too_big = "k".repeat(64 * 1024);
    let p = c
        .post("/portal/sign-in", Some(&origin), &[("key", &too_big)])
        .await;
    assert_eq!(p.status, 403, "{}", p.text);
    let rb = c
        .http()
        .post(format!("http://{}/portal/sign-in", srv.addr))
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=%ZZ%&key=%%&&=&key");
    let p = c.send(rb).await;
    assert!(
        p.status == 400 || p.status == 401,
        "{} {}",
        p.status,
        p.text
    );
    let rb = c
        .http()
        .post(format!("http://{}/portal/sign-in", srv.addr))
        .header("origin", &origin)
        .json(&json!({"key": key}));
    assert_eq!(c.send(rb).await.status, 403, "not a form");
    // Garbage cookies lead to the entry page, cleared.
    for junk in ["x", &"A".repeat(5000), "v1.AAAA", "%00%ff"] {
        c.cookie = Some(junk.to_string());
        let p = c.get(&format!("/portal/app/{}", t.a)).await;
        assert_eq!(p.status, 303, "{junk}");
        assert_eq!(p.header("location"), "/portal");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let srv = TestServer::start(|_| {}).await;
    let t = tenants(&srv).await;
    let (_, key) = link(&srv, &t.a).await;
    let mut c = portal(&srv);

    // Sign-in itself: only from a page of this server.
    for headers in [
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
    ] {
        let p = c
            .post_with("/portal/sign-in", &headers, &[("key", &key)])
            .await;
        assert_eq!(p.status, 403, "{headers:?}: {}", p.text);
        assert!(p.headers.get("set-cookie").is_none());
    }
    // The browser's fetch from the portal's own page (Origin: null under no-referrer).
    let p = c
        .post_with(
            "/portal/sign-in",
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
            &[("key", &key)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);

    let resend = format!("/portal/app/{}/msg/{}/resend", t.a, t.msg_a);
    let before = srv.client.attempts_of_msg(&t.a, &t.msg_a).await.len();
    let csrf = c.csrf_of(&format!("/portal/app/{}", t.a)).await;
    let origin = c.origin();
    for (headers, token) in [
        (vec![("origin", "https://evil.example")], csrf.as_str()),
        (vec![], csrf.as_str()),
        (vec![("origin", origin.as_str())], ""),
        (vec![("origin", origin.as_str())], "wrong"),
    ] {
        let p = c
            .post_with(&resend, &headers, &[("csrf", token), ("endpoint", &t.ep_a)])
            .await;
        assert_eq!(p.status, 403, "{headers:?} {token}: {}", p.text);
    }
    assert_eq!(
        srv.client.attempts_of_msg(&t.a, &t.msg_a).await.len(),
        before,
        "a refused resend was sent"
    );
    let ok = c
        .post(
            &resend,
            Some(&origin),
            &[("csrf", &csrf), ("endpoint", &t.ep_a)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    assert_eq!(
        ok.header("location"),
        format!("/portal/app/{}/msg/{}", t.a, t.msg_a)
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_framing_and_https_cookies_follow_configuration() {
    let srv = TestServer::start(|c| {
        c.public_url = Some("https://herald.example.com".into());
        c.portal_title = "Acme <webhooks>".into();
        c.portal_accent_color = Some("#0a7f3c".into());
        c.portal_logo_url = Some("https://cdn.acme.example/logo.png".into());
        c.portal_frame_ancestors = "'self' https://app.acme.example".into();
    })
    .await;
    let app = srv.client.create_app("a").await;
    let (url, key) = link(&srv, &app).await;
    assert_eq!(url, format!("https://herald.example.com/portal/#key={key}"));
    let mut c = portal(&srv);
    let entry = c.get("/portal/").await;
    assert_eq!(
        entry.header("content-security-policy"),
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https://cdn.acme.example; frame-ancestors 'self' https://app.acme.example; base-uri 'none'; form-action 'self'"
    );
    assert!(
        entry.text.contains("Acme &#60;webhooks&#62;"),
        "{}",
        entry.text
    );
    assert!(entry
        .text
        .contains("<img class=\"logo\" src=\"https://cdn.acme.example/logo.png\""));
    assert!(entry.text.contains("/portal/assets/brand.css"));
    let css = c.get("/portal/assets/brand.css").await;
    assert_eq!(css.status, 200);
    assert!(css.text.contains("--accent: #0a7f3c;"));
    assert!(css.header("content-type").starts_with("text/css"));

    let p = c
        .post(
            "/portal/sign-in",
            Some("https://herald.example.com"),
            &[("key", &key)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let set = p.header("set-cookie");
    assert!(set.contains("SameSite=None"), "{set}");
    assert!(set.contains("; Secure"), "{set}");
    assert!(set.contains("Path=/portal"), "{set}");

    // The console is never framed, whatever the portal allows.
    let console = c.get("/console/").await;
    assert!(console
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    assert_eq!(console.header("x-frame-options"), "DENY");
    srv.stop().await;
}
