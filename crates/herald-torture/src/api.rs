//! A small client for Herald's own API on loopback (publishing and reading the attempt log).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    // Talking to Herald itself on loopback, never to a webhook endpoint: no SSRF guard needed.
    // Proxies from the environment are ignored so nothing can intercept loopback traffic.
    #[allow(clippy::disallowed_methods)]
    pub fn new(base: String, token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(64)
            .build()
            .context("build API client")?;
        Ok(Self {
            http,
            base,
            token: token.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Status and JSON body (`Null` when not JSON); an error when nothing answered.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// POST that must answer `expect`.
    pub async fn post_ok(&self, path: &str, body: &Value, expect: u16) -> anyhow::Result<Value> {
        let (s, v) = self.post(path, body).await?;
        anyhow::ensure!(s == expect, "POST {path} answered {s}: {v}");
        Ok(v)
    }

    /// Every item of a paged list.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut iterator: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        for _ in 0..100_000 {
            let p = match &iterator {
                Some(it) => format!("{path}{sep}limit=250&iterator={it}"),
                None => format!("{path}{sep}limit=250"),
            };
            let (s, v) = self.get(&p).await?;
            anyhow::ensure!(s == 200, "GET {p} answered {s}: {v}");
            if let Some(items) = v["data"].as_array() {
                out.extend(items.iter().cloned());
            }
            if v["done"].as_bool().unwrap_or(true) {
                return Ok(out);
            }
            iterator = v["iterator"].as_str().map(str::to_string);
            if iterator.is_none() {
                return Ok(out);
            }
        }
        anyhow::bail!("GET {path}: more than 100,000 pages")
    }
}
