//! Keyset pagination shared by both backends: a list query as [`Listing`] (select, conditions,
//! arguments, key columns), the keyset bounds of a [`ListQuery`], and the [`Page`] a result
//! makes. Conditions use `?` for their arguments; each backend turns them into its own
//! placeholders and runs the query. No I/O here, and no table names.

use herald_core::ids::{AppId, EndpointId, SourceId};
use herald_core::model::InboundStatus;

use crate::{AttemptFilter, AttemptScope, ListQuery, MessageFilter, Page};

/// A value bound into a statement, the same on both backends (each binds it as its own type).
pub enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    /// Text or `NULL`.
    OptText(Option<String>),
    /// An integer or `NULL`.
    OptInt(Option<i64>),
}

impl Arg {
    /// A text argument from anything string-like.
    pub(crate) fn text(s: impl Into<String>) -> Self {
        Arg::Text(s.into())
    }
}

/// A list query before paging: `select`, then `WHERE` every condition (each `?` in one takes
/// the next argument), paged by keyset on an ID column and a creation-time column.
pub struct Listing {
    pub(crate) select: String,
    pub(crate) conds: Vec<String>,
    pub(crate) args: Vec<Arg>,
    id_col: &'static str,
    ts_col: &'static str,
}

impl Listing {
    /// All that `select` reads, paged on `id` and `created_at`.
    pub(crate) fn new(select: String) -> Self {
        Self {
            select,
            conds: Vec::new(),
            args: Vec::new(),
            id_col: "id",
            ts_col: "created_at",
        }
    }

    /// The rows `select` reads of the application `app`.
    pub(crate) fn of_app(select: String, app: &AppId) -> Self {
        Self::new(select).filter("app_id = ?", [Arg::Text(app.0.clone())])
    }

    /// Pages on other key columns (qualified names in a join).
    pub(crate) fn keys(self, id_col: &'static str, ts_col: &'static str) -> Self {
        Self {
            id_col,
            ts_col,
            ..self
        }
    }

    /// Keeps the rows where `cond` holds with its `?`s bound to `args`, in order.
    pub(crate) fn filter(
        mut self,
        cond: impl Into<String>,
        args: impl IntoIterator<Item = Arg>,
    ) -> Self {
        self.conds.push(cond.into());
        self.args.extend(args);
        self
    }

    fn bound(&mut self, cond: String, arg: Arg) {
        self.conds.push(cond);
        self.args.push(arg);
    }

    /// Adds the keyset bounds of `q` and returns the `ORDER BY … LIMIT` tail (one row more
    /// than the page, to learn whether there are more).
    pub(crate) fn paged(&mut self, q: &ListQuery) -> String {
        let (id_col, ts_col) = (self.id_col, self.ts_col);
        let desc = q.descending ^ q.backwards;
        if let Some(it) = &q.iterator {
            let cmp = if desc { "<" } else { ">" };
            self.bound(format!("{id_col} {cmp} ?"), Arg::Text(it.clone()));
        }
        if let Some(b) = q.before {
            self.bound(format!("{ts_col} < ?"), Arg::Int(b));
        }
        if let Some(a) = q.after {
            self.bound(format!("{ts_col} > ?"), Arg::Int(a));
        }
        format!(
            " ORDER BY {id_col} {} LIMIT {}",
            if desc { "DESC" } else { "ASC" },
            q.limit + 1
        )
    }
}

/// The page `items` (read with [`Listing::paged`]'s limit) makes for `q`.
pub(crate) fn finish_page<T>(q: &ListQuery, mut items: Vec<T>) -> Page<T> {
    let has_more = items.len() > q.limit;
    items.truncate(q.limit);
    if q.backwards {
        items.reverse();
    }
    Page { items, has_more }
}

/// The messages of `app` that pass `filter`; `channel` is the backend's test that a message
/// has one channel (one `?`).
pub(crate) fn messages(
    select: String,
    app: &AppId,
    filter: &MessageFilter,
    channel: &str,
) -> Listing {
    let mut l = Listing::new(select)
        .keys("m.id", "m.created_at")
        .filter("m.app_id = ?", [Arg::Text(app.0.clone())]);
    if let Some(ch) = &filter.channel {
        l = l.filter(channel, [Arg::Text(ch.clone())]);
    }
    if let Some(types) = filter.event_types.as_ref().filter(|t| !t.is_empty()) {
        let marks = vec!["?"; types.len()].join(",");
        let args = types.iter().cloned().map(Arg::Text);
        l = l.filter(format!("m.event_type IN ({marks})"), args);
    }
    l
}

/// The deliveries of `ep` (with their messages), only those in `status` when given.
pub(crate) fn deliveries(select: String, ep: &EndpointId, status: Option<i64>) -> Listing {
    let l = Listing::new(select)
        .keys("d.msg_id", "m.created_at")
        .filter("d.endpoint_id = ?", [Arg::Text(ep.0.clone())]);
    match status {
        Some(s) => l.filter("d.status = ?", [Arg::Int(s)]),
        None => l,
    }
}

/// The attempts of `app` in `scope` that pass `filter`.
pub(crate) fn attempts(
    select: String,
    app: &AppId,
    scope: &AttemptScope,
    filter: &AttemptFilter,
) -> Listing {
    let l = Listing::new(select).filter("app_id = ?", [Arg::Text(app.0.clone())]);
    let mut l = match scope {
        AttemptScope::Endpoint(e) => l.filter("endpoint_id = ?", [Arg::Text(e.0.clone())]),
        AttemptScope::Message(m) => l.filter("msg_id = ?", [Arg::Text(m.0.clone())]),
    };
    if let Some(s) = filter.status {
        l = l.filter("status = ?", [Arg::Int(s)]);
    }
    if let Some(e) = &filter.endpoint_id {
        l = l.filter("endpoint_id = ?", [Arg::Text(e.0.clone())]);
    }
    l
}

/// The request log of `source`, only requests in `status` when given.
pub(crate) fn inbound(select: String, source: &SourceId, status: Option<InboundStatus>) -> Listing {
    let l = Listing::new(select).filter("source_id = ?", [Arg::Text(source.0.clone())]);
    match status {
        Some(s) => l.filter("status = ?", [Arg::Text(s.as_str().into())]),
        None => l,
    }
}

/// The event types, without the archived ones unless asked; `current` is the backend's test
/// of a type that is not archived.
pub(crate) fn event_types(select: String, include_archived: bool, current: &str) -> Listing {
    let l = Listing::new(select).keys("name", "created_at");
    match include_archived {
        true => l,
        false => l.filter(current, []),
    }
}
