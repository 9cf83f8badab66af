//! The [`crate::MessageStore`] methods SQLite writes its own way ([`MessageHooks`]): publishing
//! (message and fan-out), resends and recoveries (queue positions, FIFO keys). The reads of the
//! role are `crate::backend`'s, once for both backends; row mapping is `crate::backend::rows`'.
//! This file only holds the SQLite statements of its role.

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
             json_extract(options, '$.filter') AS filter FROM endpoints \
             WHERE app_id = ?1 AND disabled = 0",
        )
        .map_err(map_sql)?;
    let targets = stmt
        .query_map([&msg.app_id.0], |r| cells(r, target_row))
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
impl MessageHooks for SqliteStore {
    async fn publish_one(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        self.write(move |c| publish_in(c, msg, only)).await
    }

    async fn resend_one(&self, r: Resend<'_>) -> Result<()> {
        let (app, msg, ep, now) = (r.app.0.clone(), r.msg.0.clone(), r.ep.0.clone(), r.now);
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

    async fn recover_failed(&self, r: Recover<'_>) -> Result<u64> {
        let Recover {
            since, until, now, ..
        } = r;
        let ep = r.ep.0.clone();
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
}
