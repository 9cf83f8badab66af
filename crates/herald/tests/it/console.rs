//! The operator console (`/console/`) over real HTTP: signing in and out, the session cookie's
//! attributes and lifetime, the security headers, CSRF refusals (which must change nothing),
//! hostile names rendered as text, and cookies that are garbage. The browser-level checks
//! (script, live refresh, navigation by role) are in tests/python/test_console.py.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::common::*;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const XSS: &str = "<img src=x onerror=alert(1)>";
/// What a page must show of [`XSS`]: the characters, with `<` escaped (askama writes `&#60;`).
const XSS_ESCAPED: &str = "&#60;img src=x onerror=alert(1)&#62;";

/// A browser-like client of the console: no redirects followed, the session cookie kept by
/// hand so each test can see and tamper with it.
pub(crate) struct Console {
    http: reqwest::Client,
    base: String,
    /// The session cookie's name (`herald_console`, or `herald_portal` for the portal).
    name: &'static str,
    pub(crate) cookie: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Page {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub(crate) fn is_sign_in(&self) -> bool {
        self.status == 200 && self.text.contains("data-sign-in")
    }
}

impl Console {
    pub(crate) fn new(srv: &TestServer) -> Self {
        Self::named(srv, "herald_console")
    }

    /// The underlying HTTP client (for requests the helpers do not build).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client keeping the cookie called `name`.
    #[allow(clippy::disallowed_methods)] // talks to Herald itself on loopback
    pub(crate) fn named(srv: &TestServer, name: &'static str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: format!("http://{}", srv.addr),
            name,
            cookie: None,
        }
    }

    pub(crate) fn origin(&self) -> String {
        self.base.clone()
    }

    pub(crate) async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let rb = match &self.cookie {
            Some(c) => rb.header("cookie", format!("{}={c}", self.name)),
            None => rb,
        };
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        assert_ne!(status, 500, "console answered 500: {text}");
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let value = set
                .strip_prefix(self.name)
                .and_then(|r| r.strip_prefix('='))
                .and_then(|r| r.split(';').next())
                .expect("the console's cookie");
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
        Page {
            status,
            headers,
            text,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb).await
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        origin: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Page {
        let headers: Vec<_> = origin.map(|o| ("origin", o)).into_iter().collect();
        self.post_with(path, &headers, fields).await
    }

    pub(crate) async fn post_with(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Page {
        let mut rb = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.send(rb).await
    }

    pub(crate) async fn sign_in(&mut self, token: &str) -> Page {
        let origin = self.origin();
        self.post("/console/", Some(&origin), &[("token", token)])
            .await
    }

    /// The session's CSRF token, read from a page's sign-out form.
    pub(crate) async fn csrf(&mut self) -> String {
        self.csrf_of("/console/").await
    }

    /// The session's CSRF token, read from the sign-out form of the page at `path`.
    pub(crate) async fn csrf_of(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        let at = page
            .text
            .find("name=\"csrf\" value=\"")
            .expect("a signed-in page carries the CSRF token");
        let rest = &page.text[at + 19..];
        rest[..rest.find('"').expect("closing quote")].to_string()
    }
}

fn assert_security_headers(p: &Page) {
    assert_eq!(p.header("content-security-policy"), CSP);
    assert_eq!(p.header("x-content-type-options"), "nosniff");
    assert_eq!(p.header("referrer-policy"), "no-referrer");
    assert_eq!(p.header("cache-control"), "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_the_admin_token_starts_a_session_and_a_wrong_one_does_not() {
    let srv = TestServer::start(|_| {}).await;
    let mut c = Console::new(&srv);
    let form = c.get("/console/").await;
    assert!(form.is_sign_in(), "{}", form.text);
    assert!(form.text.contains(">Admin token</label>"));
    assert!(form.text.contains("type=\"password\""));
    assert!(form.text.contains(">Sign in</button>"));
    assert_security_headers(&form);

    let wrong = c.sign_in("not-the-token-at-all").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.text.contains("not valid for the console"),
        "{}",
        wrong.text
    );
    assert!(wrong.text.contains("data-sign-in"));
    assert!(wrong.headers.get("set-cookie").is_none());
    assert!(c.cookie.is_none());

    let ok = c.sign_in(ADMIN_TOKEN).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), "/console");
    let set = ok.header("set-cookie").to_string();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(
        !set.contains("Secure"),
        "http public_url: no Secure ({set})"
    );
    assert!(
        !set.contains(ADMIN_TOKEN),
        "the cookie carries the token: {set}"
    );

    let home = c.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains("<h1>Applications</h1>"), "{}", home.text);
    assert!(home.text.contains(">Sign out</button>"));
    assert!(!home.text.contains(ADMIN_TOKEN), "a page shows the token");
    assert_security_headers(&home);
    let health = c.get("/console/health").await;
    assert_eq!(health.status, 200);
    assert!(health.text.contains("Deliveries due now"));

    // Sign out: the cookie is removed.
    let csrf = c.csrf().await;
    let origin = c.origin();
    let out = c
        .post("/console/sign-out", Some(&origin), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert!(c.cookie.is_none());
    assert!(c.get("/console/").await.is_sign_in());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_when_public_url_is_https() {
    let srv = TestServer::start(|c| c.public_url = Some("https://herald.example.com".into())).await;
    let mut c = Console::new(&srv);
    let ok = c
        .post(
            "/console",
            Some("https://herald.example.com"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    assert!(
        ok.header("set-cookie").contains("; Secure"),
        "{}",
        ok.header("set-cookie")
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_scoped_tokens_cannot_open_the_console_and_revoked_tokens_end_sessions() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    let scoped = admin
        .post("/token", json!({"name": "portal", "appId": app}), 201)
        .await;
    let mut c = Console::new(&srv);
    let refused = c.sign_in(scoped["token"].as_str().unwrap()).await;
    assert_eq!(refused.status, 401);
    assert!(c.cookie.is_none());

    let ops = admin.post("/token", json!({"name": "ops"}), 201).await;
    let token = ops["token"].as_str().unwrap().to_string();
    assert_eq!(c.sign_in(&token).await.status, 303);
    let page = c.get(&format!("/console/app/{app}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains(&token));

    admin.delete(&format!("/token/{}", id_of(&ops)), 204).await;
    let after = c.get("/console/").await;
    assert!(
        after.is_sign_in(),
        "a revoked token's session goes on: {}",
        after.text
    );
    assert!(
        after.header("set-cookie").contains("Max-Age=0"),
        "the dead cookie is cleared"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_after_the_idle_time() {
    let srv = TestServer::start(|c| c.console_session_idle_secs = 1).await;
    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    assert_eq!(c.get("/console/").await.status, 200);
    let stale = c.cookie.clone();
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(c.get("/console/").await.is_sign_in());
    c.cookie = stale;
    let page = c.get("/console/health").await;
    assert_eq!(page.status, 303, "an expired session is sent to sign in");
    assert_eq!(page.header("location"), "/console");
    srv.stop().await;
}

/// The idle expiry slides with use (pages opened), but the pages' own polling does not keep a
/// session alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_slides_the_idle_expiry_and_polling_does_not() {
    let srv = TestServer::start(|c| c.console_session_idle_secs = 2).await;
    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    // Opened every 0.8 s for 4 s (twice the idle time): still signed in.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let p = c.get("/console/health").await;
        assert_eq!(p.status, 200, "the session ended while in use");
    }
    // Polling only, for longer than the idle time: the session ends.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let rb = c
            .http
            .get(format!("{}/console/health", c.base))
            .header("x-console-poll", "1");
        let p = c.send(rb).await;
        if p.status != 200 {
            assert_eq!(p.status, 303);
            assert!(c.get("/console/").await.is_sign_in());
            srv.stop().await;
            return;
        }
        assert!(
            p.headers.get("set-cookie").is_none(),
            "a poll re-issued the cookie"
        );
    }
    panic!("polling kept the session alive past its idle time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let recv = Receiver::start().await;
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    let ep = admin.endpoint_for(&app, &recv.url()).await;
    let msg = admin
        .publish(&app, json!({"eventType": "t", "payload": {"a": 1}}))
        .await;
    recv.wait_for(1).await;

    let mut c = Console::new(&srv);
    // Signing in from another site is refused too.
    let evil_sign_in = c
        .post(
            "/console",
            Some("https://evil.example"),
            &[("token", ADMIN_TOKEN)],
        )
        .await;
    assert_eq!(evil_sign_in.status, 403);
    assert!(c.cookie.is_none());
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let csrf = c.csrf().await;
    let origin = c.origin();
    let resend = format!("/console/app/{app}/msg/{msg}/resend");
    let fields_ok = [("csrf", csrf.as_str()), ("endpoint", ep.as_str())];
    let no_token = [("endpoint", ep.as_str())];
    let wrong_token = [("csrf", "AAAA"), ("endpoint", ep.as_str())];
    for (origin, fields, what) in [
        (None, &fields_ok[..], "no Origin"),
        (
            Some("https://evil.example"),
            &fields_ok[..],
            "a foreign Origin",
        ),
        (Some("null"), &fields_ok[..], "Origin null"),
        (Some(origin.as_str()), &no_token[..], "no CSRF token"),
        (
            Some(origin.as_str()),
            &wrong_token[..],
            "a wrong CSRF token",
        ),
    ] {
        let p = c.post(&resend, origin, fields).await;
        assert_eq!(p.status, 403, "{what}: {}", p.text);
        assert_security_headers(&p);
    }
    // The reveal is a POST for the same reason: no secret without the checks.
    let secret = admin.secret(&app, &ep).await;
    let reveal = format!("/console/app/{app}/endpoint/{ep}/reveal");
    let p = c
        .post(&reveal, Some("https://evil.example"), &fields_ok)
        .await;
    assert_eq!(p.status, 403);
    assert!(!p.text.contains(&secret));
    let shown = c.get(&format!("/console/app/{app}/endpoint/{ep}")).await;
    assert!(
        !shown.text.contains(&secret),
        "the secret shows before Reveal"
    );
    // A browser sends `Origin: null` from a no-referrer page; its Sec-Fetch-Site decides.
    let cross = [("origin", "null"), ("sec-fetch-site", "cross-site")];
    let p = c.post_with(&reveal, &cross, &fields_ok).await;
    assert_eq!(p.status, 403);
    let p = c.post_with(&resend, &cross, &fields_ok).await;
    assert_eq!(p.status, 403);
    let same = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    let p = c.post_with(&reveal, &same, &fields_ok).await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains(&secret));
    let p = c.post(&reveal, Some(&origin), &fields_ok).await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains(&secret));
    // A cross-site sign-out does not end the session.
    let p = c
        .post(
            "/console/sign-out",
            Some("https://evil.example"),
            &fields_ok,
        )
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(c.get("/console/").await.status, 200);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recv.count(), 1, "a refused resend was delivered");
    assert_eq!(admin.attempts_of_msg(&app, &msg).await.len(), 1);

    // The same form from the console itself resends.
    let p = c.post(&resend, Some(&origin), &fields_ok).await;
    assert_eq!(p.status, 303);
    assert_eq!(
        p.header("location"),
        format!("/console/app/{app}/msg/{msg}")
    );
    recv.wait_for(2).await;
    srv.stop().await;
}

/// A receiver that answers every delivery 500 with a hostile body.
async fn hostile_receiver() -> String {
    let router = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, XSS) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_payloads_and_response_bodies_are_shown_as_text() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app(XSS).await;
    let url = hostile_receiver().await;
    let ep = admin
        .create_endpoint(&app, json!({"url": url, "description": XSS}))
        .await;
    let ep = id_of(&ep);
    let msg = admin
        .publish(&app, json!({"eventType": "x.y", "payload": {"html": XSS}}))
        .await;
    admin.wait_attempts(&app, &msg, 1).await;

    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    for path in [
        "/console/".to_string(),
        format!("/console/app/{app}"),
        format!("/console/app/{app}/endpoint/{ep}"),
        format!("/console/app/{app}/msg/{msg}"),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(
            !p.text.contains("<img"),
            "{path} renders markup from data:\n{}",
            p.text
        );
        assert!(
            p.text.contains(XSS_ESCAPED),
            "{path} does not show the name as text:\n{}",
            p.text
        );
    }
    let msg_page = c.get(&format!("/console/app/{app}/msg/{msg}")).await;
    assert!(msg_page.text.contains("500"), "the attempt's status shows");
    assert!(
        msg_page.text.matches(XSS_ESCAPED).count() >= 2,
        "the payload and the receiver's response body both show as text"
    );
    // Search with hostile input is echoed as text as well.
    let p = c
        .get("/console/?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        .await;
    assert_eq!(p.status, 200);
    assert!(!p.text.contains("<img"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_cookies_lead_to_the_sign_in_page_never_an_error() {
    use base64::Engine as _;
    let srv = TestServer::start(|_| {}).await;
    let mut c = Console::new(&srv);
    let b64 = base64::engine::general_purpose::STANDARD;
    // A session written in plaintext must not open: only sealed values are read.
    let plaintext = r#"{"v":"console-session-1","h":"x","c":"y","t":0}"#.to_string();
    let values = [
        "x".to_string(),
        "enc:v1:".to_string(),
        "enc:v1:!!!not-base64!!!".to_string(),
        format!("enc:v1:{}", b64.encode([7u8; 10])),
        format!("enc:v1:{}", b64.encode([7u8; 200])),
        plaintext,
        "A".repeat(16 * 1024),
        "%00%ff%c3%28".to_string(),
    ];
    for v in values {
        c.cookie = Some(v.clone());
        let home = c.get("/console/").await;
        assert!(home.is_sign_in(), "cookie {:.40}: {}", v, home.status);
        c.cookie = Some(v.clone());
        let deep = c.get("/console/app/app_x").await;
        assert_eq!(deep.status, 303, "cookie {v:.40}");
    }
    // Bytes that are not UTF-8 in the Cookie header.
    let raw = c
        .http
        .get(format!("{}/console/", c.base))
        .header(
            "cookie",
            HeaderValue::from_bytes(b"herald_console=\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    // A POST with a garbage session is refused, not served.
    c.cookie = Some("enc:v1:AAAA".into());
    let origin = c.origin();
    let p = c
        .post("/console/sign-out", Some(&origin), &[("csrf", "x")])
        .await;
    assert_eq!(p.status, 403);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_answer_html_pages_with_empty_states() {
    let srv = TestServer::start(|_| {}).await;
    let app = srv.client.create_app("empty").await;
    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let p = c.get("/console/app/app_doesnotexist").await;
    assert_eq!(p.status, 404);
    assert!(p.header("content-type").starts_with("text/html"));
    assert_security_headers(&p);
    let p = c.get("/console/no/such/page").await;
    assert_eq!(p.status, 404);
    assert!(p.header("content-type").starts_with("text/html"));
    assert_security_headers(&p);
    let p = c.get(&format!("/console/app/{app}")).await;
    assert!(p.text.contains("No endpoints yet"), "{}", p.text);
    assert!(p.text.contains("No messages yet"));
    // Search finds by uid or ID and goes straight to the application.
    let p = c.get(&format!("/console/?q={app}")).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.header("location"), format!("/console/app/{app}"));
    let p = c.get("/console/?q=nope").await;
    assert!(p.text.contains("No application has the ID or uid"));
    // Assets are served from the binary with the same headers (no inline script needed).
    let js = c.get("/console/assets/console.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert_eq!(js.header("content-security-policy"), CSP);
    assert_eq!(c.get("/console/assets/../Cargo.toml").await.status, 404);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_request_is_shown_as_text_and_released_from_the_source_page() {
    let recv = Receiver::start().await;
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("inbound").await;
    admin.endpoint_for(&app, &recv.url()).await;
    let src = admin
        .post(
            &format!("/app/{app}/source"),
            json!({
                "name": XSS,
                "verification": {"scheme": "api-key", "header": "X-Partner-Key", "secrets": ["partner-key-123"]},
                "schema": {"type": "object", "required": ["id"]},
            }),
            201,
        )
        .await;
    let src = id_of(&src);
    let body = format!(r#"{{"html": "{}"}}"#, XSS.replace('"', "\\\""));
    let mut c = Console::new(&srv);
    let ingested = c
        .http
        .post(format!("{}/in/{src}", c.base))
        .header("x-partner-key", "partner-key-123")
        .header("content-type", "application/json")
        .header("x-hostile", XSS)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ingested.status(), 202);
    let request_id = ingested.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let app_page = c.get(&format!("/console/app/{app}")).await;
    assert!(app_page
        .text
        .contains(&format!("/console/app/{app}/source/{src}")));
    let page_path = format!("/console/app/{app}/source/{src}");
    let p = c.get(&page_path).await;
    assert_eq!(p.status, 200);
    assert!(
        !p.text.contains("<img"),
        "markup from a sender:\n{}",
        p.text
    );
    assert!(
        p.text.matches(XSS_ESCAPED).count() >= 3,
        "name, header and body as text"
    );
    assert!(p.text.contains("quarantined"));
    assert!(
        !p.text.contains("partner-key-123"),
        "the verification key is shown"
    );
    let filtered = c.get(&format!("{page_path}?status=accepted")).await;
    assert!(filtered.text.contains("No requests in status"));
    assert_eq!(
        c.get(&format!("{page_path}?status=bogus")).await.status,
        422
    );

    let release = format!("{page_path}/release");
    let csrf = c.csrf().await;
    let fields = [("csrf", csrf.as_str()), ("request", request_id.as_str())];
    let p = c
        .post(&release, Some("https://evil.example"), &fields)
        .await;
    assert_eq!(p.status, 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recv.count(), 0, "a refused release was forwarded");
    let origin = c.origin();
    let p = c.post(&release, Some(&origin), &fields).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let got = recv.wait_for(1).await;
    assert_eq!(got[0].body.as_ref(), body.as_bytes());
    // Released once only.
    let again = c.post(&release, Some(&origin), &fields).await;
    assert_eq!(again.status, 404);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_page_counts_the_last_day_and_recovers_failed_deliveries() {
    let recv = Receiver::start().await;
    recv.set_default(Reply::Status(500));
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    let ep = admin.endpoint_for(&app, &recv.url()).await;
    let msg = admin
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    admin.wait_delivery(&app, &msg, &ep, 2).await;

    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let page_path = format!("/console/app/{app}/endpoint/{ep}");
    let p = c.get(&page_path).await;
    assert!(p.text.contains("failed <strong>1</strong>"), "{}", p.text);
    assert!(p.text.contains("success rate <strong>0.0 %</strong>"));

    let recover = format!("{page_path}/recover");
    let csrf = c.csrf().await;
    let fields = [("csrf", csrf.as_str()), ("since_hours", "24")];
    let p = c
        .post(&recover, Some("https://evil.example"), &fields)
        .await;
    assert_eq!(p.status, 403);
    let origin = c.origin();
    let bad = [("csrf", csrf.as_str()), ("since_hours", "5")];
    assert_eq!(c.post(&recover, Some(&origin), &bad).await.status, 422);
    let before = recv.count();
    recv.set_default(Reply::Status(204));
    let p = c.post(&recover, Some(&origin), &fields).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.header("location"), format!("{page_path}?recovered=1"));
    recv.wait_for(before + 1).await;
    admin.wait_delivery(&app, &msg, &ep, 0).await;
    let p = c.get(&format!("{page_path}?recovered=1")).await;
    assert!(p.text.contains("1 failed deliveries re-queued"));
    assert!(
        p.text.contains("Delivered <strong>1</strong>"),
        "{}",
        p.text
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_page_filters_messages_by_event_type_and_age() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    for t in ["order.created", "invoice.paid", "order.created"] {
        admin
            .publish(&app, json!({"eventType": t, "payload": {}}))
            .await;
    }
    let mut c = Console::new(&srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let all = c.get(&format!("/console/app/{app}")).await;
    assert_eq!(all.text.matches(">order.created</a>").count(), 2);
    assert_eq!(all.text.matches(">invoice.paid</a>").count(), 1);
    let only = c
        .get(&format!(
            "/console/app/{app}?event_type=invoice.paid&within=1"
        ))
        .await;
    assert_eq!(only.text.matches(">order.created</a>").count(), 0);
    assert_eq!(only.text.matches(">invoice.paid</a>").count(), 1);
    assert!(
        only.text.contains("value=\"invoice.paid\""),
        "the filter is shown back"
    );
    let none = c
        .get(&format!(
            "/console/app/{app}?event_type=%3Cimg%20src%3Dx%3E"
        ))
        .await;
    assert_eq!(none.status, 200);
    assert!(none.text.contains("No messages match this filter"));
    assert!(
        !none.text.contains("<img"),
        "the filter is echoed as markup"
    );
    srv.stop().await;
}
