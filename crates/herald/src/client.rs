//! The CLI's client for Herald's own API (`herald send`, `endpoint list`, …): base URL from
//! `HERALD_URL`, bearer token from `HERALD_TOKEN`. It talks only to the Herald server the user
//! names, never to webhook endpoints, so it is not the SSRF-guarded delivery client.

use serde_json::Value;

/// A failed API call, carrying Herald's `{code, detail}` when there was one.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach Herald at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Herald answered {status}: {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
    },
}

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    #[allow(clippy::disallowed_methods)] // talks to Herald's own API, not to webhook endpoints
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("static client configuration"),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// Calls `method path` (relative to `/api/v1`) and returns the JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut rb = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let detail = match &json["detail"] {
            Value::String(s) => s.clone(),
            Value::Null => text,
            other => other.to_string(),
        };
        Err(ClientError::Api {
            status,
            code: json["code"].as_str().unwrap_or("error").to_string(),
            detail,
        })
    }
}

/// `herald recover`: re-queues the endpoint's failed deliveries, then follows them until none
/// is pending or in flight (or `timeout`), with a progress bar on a terminal. Returns a
/// one-line summary.
pub async fn recover_with_progress(
    client: &ApiClient,
    app: &str,
    endpoint: &str,
    body: Value,
    timeout: std::time::Duration,
) -> Result<String, ClientError> {
    let stats_path = format!("/app/{app}/endpoint/{endpoint}/stats");
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let before = client.call(reqwest::Method::GET, &stats_path, None).await?;
    let task = client
        .call(
            reqwest::Method::POST,
            &format!("/app/{app}/endpoint/{endpoint}/recover"),
            Some(body),
        )
        .await?;
    let requeued = task["data"]["messagesSent"].as_u64().unwrap_or(0);
    let waiting = |v: &Value| count(v, "pending") + count(v, "sending");
    let start = client.call(reqwest::Method::GET, &stats_path, None).await?;
    let total = waiting(&start);
    // Hidden automatically when stderr is not a terminal (scripts, CI).
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:40}] {pos}/{len} delivered or settled ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let deadline = std::time::Instant::now() + timeout;
    let mut last = start;
    loop {
        let left = waiting(&last);
        bar.set_position(total.saturating_sub(left));
        if left == 0 || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        last = client.call(reqwest::Method::GET, &stats_path, None).await?;
    }
    bar.finish_and_clear();
    let succeeded = count(&last, "success").saturating_sub(count(&before, "success"));
    let left = waiting(&last);
    let failed_again =
        count(&last, "fail").saturating_sub(count(&before, "fail").saturating_sub(requeued));
    Ok(if left == 0 {
        format!(
            "recovered {requeued} deliveries: {succeeded} succeeded, {failed_again} failed again"
        )
    } else {
        format!(
            "recovered {requeued} deliveries: {succeeded} succeeded so far, {left} still pending after {}s (they go on)",
            timeout.as_secs()
        )
    })
}

/// Renders rows as an aligned text table with the given columns (missing values print `-`).
pub fn table(rows: &[Value], columns: &[&str]) -> String {
    let cell = |r: &Value, c: &str| match &r[c] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(columns.iter().map(|c| c.to_uppercase()).collect())];
    out.extend(
        rows.iter()
            .map(|r| line(columns.iter().map(|c| cell(r, c)).collect())),
    );
    out.join("\n")
}
