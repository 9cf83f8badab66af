//! The parts of the schema both backends create alike, written once: each backend's migration
//! list names them (`<<name>>`) and [`render`] spells them in its [`Dialect`] (key, integer and
//! binary column types), so a table cannot gain a column on one backend and not the other. The
//! text a migration runs is the text it always ran: only where it is written changed. DDL text
//! only; no I/O, and nothing one dialect alone understands.

/// How a dialect spells the column types the shared tables use.
pub(crate) struct Dialect {
    /// A text primary key that sorts bytewise (IDs are compared as text).
    key: &'static str,
    int: &'static str,
    blob: &'static str,
}

pub(crate) const SQLITE: Dialect = Dialect {
    key: "TEXT PRIMARY KEY",
    int: "INTEGER",
    blob: "BLOB",
};

pub(crate) const POSTGRES: Dialect = Dialect {
    key: "TEXT COLLATE \"C\" PRIMARY KEY",
    int: "BIGINT",
    blob: "BYTEA",
};

/// The shared parts by name, as templates (`<key>`, `<int>`, `<blob>` for the types).
const SHARED: [(&str, &str); 10] = [
    // Delivery attempts and their two indexes.
    (
        "attempts",
        r#"CREATE TABLE attempts (
    id <key>,
    delivery_id <int> NOT NULL,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    response TEXT NOT NULL,
    status_code <int> NOT NULL,
    duration_ms <int> NOT NULL,
    status <int> NOT NULL,
    trigger_type <int> NOT NULL,
    error TEXT,
    created_at <int> NOT NULL
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);"#,
    ),
    // API tokens (only a hash of the secret) and stored idempotent answers.
    (
        "tokens",
        r#"CREATE TABLE tokens (
    id <key>,
    hash <blob> NOT NULL UNIQUE,
    name TEXT NOT NULL,
    app_id TEXT,
    created_at <int> NOT NULL
);
CREATE TABLE idempotency (
    key <blob> PRIMARY KEY,
    status <int> NOT NULL,
    body <blob> NOT NULL,
    created_at <int> NOT NULL
);"#,
    ),
    // Key–value facts about the database itself (the encryption key check).
    (
        "meta",
        r#"CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);"#,
    ),
    // Inbound sources, their request log and dedup keys; headers a message forwards.
    (
        "inbound",
        r#"ALTER TABLE messages ADD COLUMN headers TEXT;
CREATE TABLE sources (
    id <key>,
    app_id TEXT NOT NULL,
    uid TEXT,
    name TEXT NOT NULL,
    verification TEXT NOT NULL,
    secrets TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at <int> NOT NULL,
    updated_at <int> NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX sources_app ON sources (app_id, id);
CREATE TABLE inbound_requests (
    id <key>,
    source_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    msg_id TEXT,
    headers TEXT NOT NULL,
    body TEXT,
    event_type TEXT,
    created_at <int> NOT NULL
);
CREATE INDEX inbound_requests_source ON inbound_requests (source_id, id);
CREATE TABLE inbound_dedup (
    key <blob> PRIMARY KEY,
    msg_id TEXT NOT NULL,
    created_at <int> NOT NULL
);"#,
    ),
    // Inbound ordering: the last accepted sequence per (source, key), and held events.
    (
        "ordering",
        r#"CREATE TABLE inbound_order (
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    last <int>,
    PRIMARY KEY (source_id, okey)
);
CREATE TABLE inbound_held (
    request_id <key>,
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    seq <int> NOT NULL,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT,
    headers TEXT,
    ordering_key TEXT,
    deadline <int> NOT NULL,
    created_at <int> NOT NULL,
    UNIQUE (source_id, okey, seq)
);
CREATE INDEX inbound_held_deadline ON inbound_held (deadline);"#,
    ),
    // The index of due deliveries by `next_at` alone, which `deliveries_queue` made redundant.
    ("drop_due", r#"DROP INDEX IF EXISTS deliveries_due;"#),
    // Per-endpoint options (routing, transformation, transport, batching): one JSON document.
    (
        "options",
        r#"ALTER TABLE endpoints ADD COLUMN options TEXT NOT NULL DEFAULT '{}';"#,
    ),
    // Polling endpoints: never due, their held deliveries in publish order, poll-only tokens.
    (
        "poll",
        r#"UPDATE endpoints SET due_at = NULL WHERE url = 'poll:';
CREATE INDEX deliveries_pull ON deliveries (endpoint_id, id) WHERE status = 1;
CREATE TABLE poll_tokens (
    hash <blob> PRIMARY KEY,
    id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    created_at <int> NOT NULL
);"#,
    ),
    // An application's deliveries in one status, in message order (the console's filter).
    (
        "app_status",
        r#"CREATE INDEX deliveries_app_status ON deliveries (app_id, status, msg_id);"#,
    ),
    // Reconciliation sources: schedule, resume cursor, last outcome and lease per source.
    (
        "source_poll",
        r#"CREATE TABLE source_poll (
    source_id <key>,
    app_id TEXT NOT NULL,
    cursor TEXT,
    next_at <int> NOT NULL,
    last_success_at <int>,
    last_error TEXT,
    last_error_at <int>,
    failures <int> NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until <int>
);
CREATE INDEX source_poll_due ON source_poll (next_at);"#,
    ),
];

/// A backend's migration list and its dialect, rendered once when first asked for.
pub(crate) struct Migrations {
    list: &'static [&'static str],
    dialect: &'static Dialect,
    rendered: std::sync::OnceLock<Vec<String>>,
}

impl Migrations {
    pub(crate) const fn new(list: &'static [&'static str], dialect: &'static Dialect) -> Self {
        Self {
            list,
            dialect,
            rendered: std::sync::OnceLock::new(),
        }
    }

    /// The migrations as they run, in order.
    pub(crate) fn get(&self) -> &[String] {
        self.rendered
            .get_or_init(|| render(self.list, self.dialect))
    }
}

/// `migrations` with every shared part they name spelled in `d`.
pub(crate) fn render(migrations: &[&str], d: &Dialect) -> Vec<String> {
    let spell = |t: &str| {
        t.replace("<key>", d.key)
            .replace("<int>", d.int)
            .replace("<blob>", d.blob)
    };
    let parts: Vec<(String, String)> = SHARED
        .iter()
        .map(|(name, t)| (format!("<<{name}>>"), spell(t)))
        .collect();
    let one = |m: &&str| {
        let mut m = m.to_string();
        for (mark, text) in &parts {
            m = m.replace(mark.as_str(), text);
        }
        m
    };
    migrations.iter().map(one).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_named_once_and_spelled_in_full() {
        let all = render(&["<<inbound>>", "x <<meta>> y"], &POSTGRES);
        assert!(all[0].contains("CREATE TABLE sources (\n    id TEXT COLLATE \"C\" PRIMARY KEY,"));
        assert!(all[1].starts_with("x CREATE TABLE meta") && all[1].ends_with("); y"));
        let sqlite = render(&["<<tokens>>"], &SQLITE);
        assert!(
            sqlite[0].contains("hash BLOB NOT NULL UNIQUE"),
            "{}",
            sqlite[0]
        );
        assert!(!sqlite[0].contains('<'), "{}", sqlite[0]);
    }
}
