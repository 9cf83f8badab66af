//! One poll run: reads the provider's list page by page (cursor parameter or `Link` header),
//! within the run's bounds (`maxPages`, items per page, bytes per answer), and hands every item
//! to `item`. It decides where the run stops and what cursor the next run resumes from.
//!
//! It must not ingest by itself (that is `item`'s job, through the webhook pipeline) nor
//! follow a next-page URL to another origin than the poll's `url`.

use herald_core::reconcile::{link_next, Cursor, MAX_ITEMS_PER_PAGE};
use serde_json::Value;
use url::Url;

use super::fetch::{Page, Run};
use super::item::{self, Seen};

/// What a successful run did.
pub(super) struct Done {
    /// Where the next run resumes (pages were left when `maxPages` was reached).
    pub resume: Option<String>,
    pub accepted: u64,
    pub pages: u32,
}

impl Run<'_> {
    /// Pages from `cursor` (or the first page) until the list ends, a page holds only items
    /// older than the dedup window, or `maxPages` pages were read.
    pub async fn go(&self, cursor: Option<String>) -> Result<Done, String> {
        let mut url = self.start_url(cursor.as_deref())?;
        let mut done = Done {
            resume: None,
            accepted: 0,
            pages: 0,
        };
        let since = item::window_start(self.source, self.now);
        while done.pages < self.plan.max_pages {
            let page = self.fetch(url.as_str()).await?;
            done.pages += 1;
            crate::telemetry::source_poll_page();
            let items = self
                .plan
                .items
                .get(&page.doc)
                .and_then(Value::as_array)
                .ok_or("itemsPath does not lead to an array in the answer")?;
            if items.len() > MAX_ITEMS_PER_PAGE {
                return Err(format!("a page holds over {MAX_ITEMS_PER_PAGE} items"));
            }
            let mut recent = 0;
            for it in items {
                let seen = item::take(self, it, since).await?;
                crate::telemetry::source_poll_item(seen.label());
                recent += usize::from(seen != Seen::Old);
                done.accepted += u64::from(seen == Seen::Accepted);
            }
            if items.is_empty() || recent == 0 {
                return Ok(done);
            }
            match self.next(&url, &page)? {
                Some((token, next)) if next != url => {
                    done.resume = Some(token);
                    url = next;
                }
                _ => {
                    done.resume = None;
                    return Ok(done);
                }
            }
        }
        Ok(done)
    }

    /// The first URL of a run: the poll's URL with the preset's query, or where the last run
    /// stopped.
    fn start_url(&self, cursor: Option<&str>) -> Result<Url, String> {
        let mut url = Url::parse(&self.plan.url).map_err(|e| format!("url: {e}"))?;
        for (k, v) in &self.plan.query {
            if !url.query_pairs().any(|(name, _)| name == k.as_str()) {
                url.query_pairs_mut().append_pair(k, v);
            }
        }
        match (cursor, &self.plan.cursor) {
            (Some(c), Some(Cursor::Link)) => self.same_origin(c),
            (Some(c), Some(Cursor::Param { param, .. })) => Ok(with_param(&url, param, c)),
            _ => Ok(url),
        }
    }

    /// The page after `page`: `(cursor to store, its URL)`.
    fn next(&self, url: &Url, page: &Page) -> Result<Option<(String, Url)>, String> {
        if let Some(more) = &self.plan.has_more {
            if more.get(&page.doc) == Some(&Value::Bool(false)) {
                return Ok(None);
            }
        }
        match &self.plan.cursor {
            None => Ok(None),
            Some(Cursor::Param { param, path }) => Ok(path
                .text(&page.doc)
                .map(|c| (c.clone(), with_param(url, param, &c)))),
            Some(Cursor::Link) => match page.link.as_deref().and_then(link_next) {
                Some(next) => Ok(Some((next.clone(), self.same_origin(&next)?))),
                None => Ok(None),
            },
        }
    }

    /// A provider-given URL, only on the poll URL's origin (scheme, host, port).
    fn same_origin(&self, raw: &str) -> Result<Url, String> {
        let base = Url::parse(&self.plan.url).map_err(|e| format!("url: {e}"))?;
        match Url::parse(raw) {
            Ok(u) if u.origin() == base.origin() => Ok(u),
            _ => Err("the next-page link leaves the poll URL's origin".into()),
        }
    }
}

/// `url` with the query parameter `name` set to `value` (replacing it).
fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    out
}
