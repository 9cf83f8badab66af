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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_added_edited_rotated_and_deleted_within_the_own_application_only() {
    let srv = TestServer::start(|_| {}).await;
    let t = tenants(&srv).await;
    let admin = &srv.client;
    admin
        .post("/event-type", json!({"name": "invoice.paid"}), 201)
        .await;
    let (_, key) = link(&srv, &t.a).await;
    let mut c = portal(&srv);
    assert_eq!(sign_in(&mut c, &key).await.status, 200);
    let home = format!("/portal/app/{}", t.a);
    let page = c.get(&home).await;
    assert!(
        page.text.contains("value=\"invoice.paid\""),
        "the catalog is offered"
    );
    let csrf = c.csrf_of(&home).await;
    let origin = c.origin();

    // Add.
    let added = c
        .post(
            &format!("{home}/endpoints"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("url", "https://new.example.com/hook"),
                ("description", "<i>new</i>"),
                ("event_type", "invoice.paid"),
                ("more_event_types", "order.created, ,"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.text);
    let at = added.header("location").to_string();
    assert!(at.starts_with(&format!("{home}/endpoint/ep_")), "{at}");
    let ep = at.rsplit('/').next().unwrap().to_string();
    let api_ep = admin.get(&format!("/app/{}/endpoint/{ep}", t.a), 200).await;
    assert_eq!(api_ep["description"], "<i>new</i>");
    assert_eq!(
        api_ep["filterTypes"],
        json!(["invoice.paid", "order.created"])
    );
    let shown = c.get(&at).await;
    assert!(shown.text.contains("&#60;i&#62;new&#60;/i&#62;"));

    // The API's validation applies: a URL it refuses creates nothing.
    let before = admin.get(&format!("/app/{}/endpoint", t.a), 200).await["data"]
        .as_array()
        .unwrap()
        .len();
    let bad = c
        .post(
            &format!("{home}/endpoints"),
            Some(&origin),
            &[("csrf", &csrf), ("url", "ftp://nope")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("url"), "{}", bad.text);
    let after = admin.get(&format!("/app/{}/endpoint", t.a), 200).await["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);

    // Edit: disabled, throttled, every event type.
    let saved = c
        .post(
            &format!("{at}/edit"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("url", "https://new.example.com/hook2"),
                ("description", "changed"),
                ("throttle_rate", "5"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let api_ep = admin.get(&format!("/app/{}/endpoint/{ep}", t.a), 200).await;
    assert_eq!(api_ep["url"], "https://new.example.com/hook2");
    assert_eq!(api_ep["disabled"], true);
    assert_eq!(api_ep["throttleRate"], 5);
    assert!(api_ep["filterTypes"].is_null(), "{api_ep}");
    let bad = c
        .post(
            &format!("{at}/edit"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("url", "https://x.example"),
                ("throttle_rate", "lots"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);

    // Rotate: the page shows the new secret, which the API now answers.
    let old = admin.secret(&t.a, &ep).await;
    let rotated = c
        .post(&format!("{at}/rotate"), Some(&origin), &[("csrf", &csrf)])
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = admin.secret(&t.a, &ep).await;
    assert_ne!(old, new);
    assert!(rotated.text.contains(&new));
    assert!(rotated.text.contains("Secret rotated"));

    // Another application's endpoints: nothing changes.
    let b_ep = format!("/app/{}/endpoint/{}", t.b, t.ep_b);
    let b_before = admin.get(&b_ep, 200).await;
    let b_secret = admin.secret(&t.b, &t.ep_b).await;
    for (path, status) in [
        (format!("/portal/app/{}/endpoints", t.b), 403),
        (format!("/portal/app/{}/endpoint/{}/edit", t.b, t.ep_b), 403),
        (
            format!("/portal/app/{}/endpoint/{}/rotate", t.b, t.ep_b),
            403,
        ),
        (
            format!("/portal/app/{}/endpoint/{}/delete", t.b, t.ep_b),
            403,
        ),
        (format!("{home}/endpoint/{}/delete", t.ep_b), 404),
        (format!("{home}/endpoint/{}/rotate", t.ep_b), 404),
    ] {
        let p = c
            .post(
                &path,
                Some(&origin),
                &[("csrf", &csrf), ("url", "https://evil.example/x")],
            )
            .await;
        assert_eq!(p.status, status, "{path}: {}", p.text);
    }
    assert_eq!(admin.get(&b_ep, 200).await, b_before);
    assert_eq!(admin.secret(&t.b, &t.ep_b).await, b_secret);
    assert_eq!(
        admin.get(&format!("/app/{}/endpoint", t.b), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Delete: refused without the CSRF token, then done.
    let p = c.post(&format!("{at}/delete"), Some(&origin), &[]).await;
    assert_eq!(p.status, 403);
    admin.get(&format!("/app/{}/endpoint/{ep}", t.a), 200).await;
    let gone = c
        .post(&format!("{at}/delete"), Some(&origin), &[("csrf", &csrf)])
        .await;
    assert_eq!(gone.status, 303);
    assert_eq!(gone.header("location"), home);
    admin.get(&format!("/app/{}/endpoint/{ep}", t.a), 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_filter_by_an_exact_time_range() {
    let srv = TestServer::start(|_| {}).await;
    let t = tenants(&srv).await;
    let (_, key) = link(&srv, &t.a).await;
    let mut c = portal(&srv);
    assert_eq!(sign_in(&mut c, &key).await.status, 200);
    let at = |secs: i64| {
        chrono::DateTime::from_timestamp(unix_now() + secs, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let home = format!("/portal/app/{}", t.a);
    let (past, future) = (at(-3600), at(3600));
    for (from, to, shown) in [
        (past.as_str(), future.as_str(), true),
        (past.as_str(), "", true),
        (future.as_str(), "", false),
        ("", past.as_str(), false),
    ] {
        let p = c.get(&format!("{home}?from={from}&to={to}")).await;
        assert_eq!(p.status, 200, "{}", p.text);
        assert_eq!(
            p.text.contains("tenant-a.happened"),
            shown,
            "from {from} to {to}"
        );
        if !shown {
            assert!(p.text.contains("No messages match this filter"));
        }
        // The filter is kept across pages and shown back in its controls.
        assert!(p.text.contains(&format!("value=\"{from}\"")));
    }
    let bad = c.get(&format!("{home}?from=yesterday")).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("From: expected a UTC date and time"));
    srv.stop().await;
}
