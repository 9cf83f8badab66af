//! [`crate::MessageStore`] on SQLite: publishing, messages, their deliveries and the attempt
//! history. Row mapping stays in `rows.rs` and decisions both backends share in `crate::common`;
//! this file only holds the SQLite statements of its role.

use super::*;

/// Queues the delivery `d` and makes its endpoint due.
pub(super) fn insert_delivery(conn: &Connection, d: NewDelivery<'_>) -> Result<()> {
    exec(conn, "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4, ?6)", params![d.msg, d.ep, d.app, d.due, d.manual, d.ordering_key])?;
    sched::touch_due(conn, d.ep, d.due)
}
/// The publish transaction's work: the message and one delivery per matching endpoint.
pub(super) fn publish_in(
    c: &Connection,
    msg: Message,
    only: Option<EndpointId>,
) -> Result<Published> {
    c.prepare_cached(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, retention_ms, ordering_key, headers) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.id.0, msg.app_id.0, msg.event_id, msg.event_type, msg.payload,
            json_opt(&msg.channels), msg.created_at, msg.retention_ms, msg.ordering_key,
            json_opt(&msg.headers)
        ])
    })
    .map_err(|e| match map_sql(e) {
        StoreError::Conflict(_) => StoreError::Conflict("eventId already used in this application".into()),
        other => other,
    })?;
    let mut stmt = c
        .prepare_cached(
            "SELECT id, event_types, channels, ordering, paused_until, \
             json_extract(options, '$.filter') FROM endpoints \
             WHERE app_id = ?1 AND disabled = 0",
        )
        .map_err(map_sql)?;
    let targets = stmt
        .query_map([&msg.app_id.0], |r| {
            Ok(common::Target {
                id: r.get(0)?,
                event_types: parse_opt(r.get(1)?)?,
                channels: parse_opt(r.get(2)?)?,
                fifo: r.get_ref(3)?.as_str().is_ok_and(|o| o == "fifo"),
                paused_until: r.get(4)?,
                filter: r.get(5)?,
            })
        })
        .map_err(map_sql)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_sql)?;
    let fanned = common::fan_out(&msg, only.as_ref(), &targets);
    for f in &fanned {
        let d = NewDelivery {
            msg: &msg.id.0,
            ep: &f.endpoint_id,
            app: &msg.app_id.0,
            due: f.due,
            manual: false,
            ordering_key: f.ordering_key.as_deref(),
        };
        insert_delivery(c, d)?;
    }
    let deliveries = fanned.len();
    Ok(Published {
        message: msg,
        deliveries,
    })
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        self.write(move |c| publish_in(c, msg, only)).await
    }

    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>> {
        let (app, key) = (app.0.clone(), id_or_event_id.to_string());
        self.read(move |c| {
            row_opt(c, &format!(
                    "SELECT {MSG_COLS} FROM messages m WHERE m.app_id = ?1 AND (m.id = ?2 OR m.event_id = ?2)"
                ), [app, key], |r| msg_row_at(r, 0))
        })
        .await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let channel = "EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)";
        let l = page::messages(
            format!("SELECT {MSG_COLS} FROM messages m"),
            app,
            filter,
            channel,
        );
        let q = q.clone();
        self.read(move |c| query_page(c, l, &q, |r| msg_row_at(r, 0)))
            .await
    }

    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()> {
        let (app, msg) = (app.0.clone(), msg.0.clone());
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE messages SET payload = NULL WHERE app_id = ?1 AND id = ?2",
                [app, msg],
            )?;
            found(n)?;
            Ok(())
        })
        .await
    }

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>> {
        let msg = msg.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {DLV_COLS} FROM deliveries d WHERE d.msg_id = ?1 ORDER BY d.endpoint_id"))
                .map_err(map_sql)?;
            let rows = stmt
                .query_map([msg], dlv_row)
                .map_err(map_sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sql)?;
            Ok(rows)
        })
        .await
    }

    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>> {
        let select = format!("SELECT {DLV_COLS}, {MSG_COLS} FROM {DLV_JOIN}");
        let (l, q) = (page::deliveries(select, ep, status), q.clone());
        self.read(move |c| query_page(c, l, &q, |r| Ok((dlv_row(r)?, msg_row_at(r, 9)?))))
            .await
    }

    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()> {
        let (app, msg, ep) = (app.0.clone(), msg.0.clone(), ep.0.clone());
        self.write(move |c| {
            let n = exec(c, &format!("UPDATE deliveries SET status = {PENDING}, failures = 0, manual = 1, next_at = ?3, lease_owner = NULL, updated_at = ?3 \
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status != {SENDING}"), params![msg, ep, now])?;
            if n == 0 {
                let exists: bool = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE msg_id = ?1 AND endpoint_id = ?2)",
                        [&msg, &ep],
                        |r| r.get(0),
                    )
                    .map_err(map_sql)?;
                // An attempt is in flight already: the resend is satisfied by it.
                if !exists {
                    insert_delivery(c, NewDelivery::resend(&msg, &ep, &app, now))?;
                }
            }
            sched::fix_fifo_keys_if_fifo(c, &ep)?;
            sched::touch_due(c, &ep, now)?;
            Ok(())
        })
        .await
    }

    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64> {
        let ep = ep.0.clone();
        self.write(move |c| {
            let n = exec(
                c,
                &format!("UPDATE deliveries SET status = {PENDING}, failures = 0, next_at = ?4, updated_at = ?4 \
                     WHERE endpoint_id = ?1 AND status = {FAIL} AND msg_id IN \
                     (SELECT id FROM messages WHERE created_at >= ?2 AND created_at < ?3)"),
                params![ep, since, until.unwrap_or(i64::MAX), now],
            )?;
            if n > 0 {
                sched::fix_fifo_keys_if_fifo(c, &ep)?;
                sched::touch_due(c, &ep, now)?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>> {
        let select = format!("SELECT {ATT_COLS} FROM attempts");
        let (l, q) = (page::attempts(select, app, scope, filter), q.clone());
        self.read(move |c| query_page(c, l, &q, att_row)).await
    }

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>> {
        let (app, msg, id) = (app.0.clone(), msg.0.clone(), id.to_string());
        self.read(move |c| {
            row_opt(
                c,
                &format!(
                    "SELECT {ATT_COLS} FROM attempts WHERE app_id = ?1 AND msg_id = ?2 AND id = ?3"
                ),
                [app, msg, id],
                att_row,
            )
        })
        .await
    }
}
