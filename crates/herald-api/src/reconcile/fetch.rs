//! What one poll run works with ([`Run`]: the state, the client, the source and its plan)
//! and how it GETs a provider's JSON ([`Run::fetch`]), shared by the paging (`pages`) and the
//! items (`item`, which fetches GitHub delivery details).
//!
//! It must not decide anything about pages or items, nor put a header value in an error.

use herald_core::model::Source;
use herald_core::reconcile::{PollPlan, MAX_PAGE_BYTES};
use herald_delivery::DeliveryClient;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::state::AppState;

/// A run of one source's poll.
pub(super) struct Run<'a> {
    pub st: &'a AppState,
    pub client: &'a DeliveryClient,
    pub source: &'a Source,
    pub plan: &'a PollPlan,
    pub now: i64,
}

/// A fetched page: its JSON and its `Link` header.
pub(super) struct Page {
    pub doc: Value,
    pub link: Option<String>,
}

impl Run<'_> {
    /// GETs a JSON document with the poll's headers: a non-2xx answer, a body over the limit
    /// or one that is not JSON is an error.
    pub async fn fetch(&self, url: &str) -> Result<Page, String> {
        let mut headers = HeaderMap::new();
        for (k, v) in &self.plan.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                headers.insert(k, v);
            }
        }
        let got = self.client.get(url, headers, MAX_PAGE_BYTES).await?;
        if !(200..300).contains(&got.status) {
            return Err(format!("the provider answered HTTP {}", got.status));
        }
        let doc = serde_json::from_slice(&got.body)
            .map_err(|e| format!("the provider's answer is not JSON: {e}"))?;
        Ok(Page {
            doc,
            link: got.link,
        })
    }
}
