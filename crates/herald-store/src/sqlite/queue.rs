//! [`crate::QueueStore`] on SQLite: the delivery queue: claims, attempt outcomes, releases and the
//! queue summary. Row mapping is `crate::backend::rows`' and decisions both backends share in
//! `crate::common`; this file only holds the SQLite statements of its role.

use super::*;

impl SqliteStore {
    /// Hands back or ends a claimed delivery without an attempt: `sql` (`?1` the delivery, `?2`
    /// `at`, returning its endpoint), then the endpoint's queue position from `due`.
    async fn settle(&self, delivery_id: i64, sql: String, at: Millis, due: Millis) -> Result<()> {
        self.write_relaxed(move |c| {
            let ep: Option<String> = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![delivery_id, at], |r| r.get(0))
                        .optional()
                })
                .map_err(map_sql)?;
            if let Some(ep) = ep {
                sched::refresh_due(c, &ep, due)?;
            }
            Ok(())
        })
        .await
    }
}

/// The rows of `select` (ending in `IN`) for every one of `ids`, 500 IDs a statement (SQLite
/// limits how many parameters one statement takes).
fn rows_in<T>(
    c: &Connection,
    select: &str,
    ids: &[String],
    mut f: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!("{select} ({})", vec!["?"; chunk.len()].join(","));
        let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(chunk), &mut f)
            .map_err(map_sql)?;
        for r in rows {
            out.push(r.map_err(map_sql)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn claim_due(&self, claim: Claim) -> Result<ClaimBatch> {
        self.write_relaxed(move |c| sched::claim(c, &claim)).await
    }

    async fn load_for_delivery(&self, claimed: &[Claimed]) -> Result<ForDelivery> {
        let (msgs, eps) = common::referenced_ids(claimed);
        let (msgs, eps) = self
            .read(move |c| {
                let sql = format!("SELECT {MSG_COLS} FROM messages m WHERE m.id IN");
                let msgs = rows_in(c, &sql, &msgs, |r| cells(r, msg_row))?;
                let sql = format!("SELECT {EP_READ} FROM endpoints WHERE id IN");
                Ok((msgs, rows_in(c, &sql, &eps, |r| cells(r, ep_row))?))
            })
            .await?;
        let msgs = msgs.into_iter().map(|m| (m.id.clone(), m)).collect();
        let eps = eps
            .into_iter()
            .map(|e| self.unseal(e).map(|e| (e.id.clone(), e)));
        Ok((msgs, eps.collect::<Result<_>>()?))
    }

    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>> {
        self.write_relaxed(move |c| {
            let change = apply_attempt(c, &rec)?;
            let a = &rec.attempt;
            sched::refresh_due_after_attempt(c, &a.endpoint_id.0, a.created_at)?;
            Ok(change)
        })
        .await
    }

    async fn record_attempts(&self, recs: Vec<AttemptRecord>) -> Result<Vec<Option<BreakerState>>> {
        // One job: one transaction, and each endpoint's queue position recomputed once.
        self.write_relaxed(move |c| {
            let changes = recs
                .iter()
                .map(|r| apply_attempt(c, r))
                .collect::<Result<Vec<_>>>()?;
            let mut last: Vec<(&str, Millis)> = Vec::new();
            for r in &recs {
                let (ep, at) = (r.attempt.endpoint_id.0.as_str(), r.attempt.created_at);
                match last.iter_mut().find(|(e, _)| *e == ep) {
                    Some(l) => l.1 = l.1.max(at),
                    None => last.push((ep, at)),
                }
            }
            for (ep, at) in last {
                sched::refresh_due_after_attempt(c, ep, at)?;
            }
            Ok(changes)
        })
        .await
    }

    async fn release(&self, delivery_id: i64, at: Millis) -> Result<()> {
        let sql = format!("UPDATE deliveries SET status = {PENDING}, next_at = ?2, lease_owner = NULL WHERE id = ?1 AND status = {SENDING} RETURNING endpoint_id");
        self.settle(delivery_id, sql, at, at.min(now_millis()))
            .await
    }

    async fn abandon(&self, delivery_id: i64, now: Millis) -> Result<()> {
        let sql = format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1 RETURNING endpoint_id");
        self.settle(delivery_id, sql, now, now).await
    }

    async fn release_leases(&self, owner: Option<&str>, now: Millis) -> Result<u64> {
        let owner = owner.map(str::to_string);
        self.write_relaxed(move |c| {
            // Their endpoints become due now (the leases go back to the queue).
            let touch = match &owner {
                Some(_) => format!("UPDATE endpoints SET due_at = ?1 WHERE id IN (SELECT endpoint_id FROM deliveries WHERE status = {SENDING} AND status IN ({PENDING}, {SENDING}) AND lease_owner = ?2) AND (due_at IS NULL OR due_at > ?1)"),
                None => format!("UPDATE endpoints SET due_at = ?1 WHERE id IN (SELECT endpoint_id FROM deliveries WHERE status = {SENDING} AND status IN ({PENDING}, {SENDING})) AND (due_at IS NULL OR due_at > ?1)"),
            };
            match &owner {
                Some(o) => c.execute(&touch, params![now, o]),
                None => c.execute(&touch, params![now]),
            }
            .map_err(map_sql)?;
            let n = match owner {
                Some(o) => c.execute(
                    &format!("UPDATE deliveries SET status = {PENDING}, next_at = ?1, lease_owner = NULL WHERE status = {SENDING} AND status IN ({PENDING}, {SENDING}) AND lease_owner = ?2"),
                    params![now, o],
                ),
                None => c.execute(
                    &format!("UPDATE deliveries SET status = {PENDING}, next_at = ?1, lease_owner = NULL WHERE status = {SENDING} AND status IN ({PENDING}, {SENDING})"),
                    params![now],
                ),
            }
            .map_err(map_sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        self.read(|c| {
            c.query_row("SELECT MIN(due_at) FROM endpoints", [], |r| r.get(0))
                .map_err(map_sql)
        })
        .await
    }

    async fn queue_summary(&self, now: Millis) -> Result<(u64, u64, Option<Millis>)> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT COUNT(*) FILTER (WHERE next_at <= ?1), COUNT(*) FILTER (WHERE next_at > ?1), \
                 MIN(next_at) FILTER (WHERE next_at <= ?1 AND status = {PENDING}) \
                 FROM deliveries WHERE status IN ({PENDING}, {SENDING})"),
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(map_sql)
        })
        .await
    }
}

/// Stores the attempt row `a` (nothing else: its consequences are the caller's).
pub(super) fn insert_attempt(c: &Connection, a: &Attempt) -> Result<()> {
    exec(
        c,
        &format!(
            "INSERT INTO attempts ({ATT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"
        ),
        params![
            a.id.0,
            a.msg_id.0,
            a.endpoint_id.0,
            a.app_id.0,
            a.delivery_id,
            a.url,
            a.response,
            a.response_status_code,
            a.response_duration_ms,
            a.status as i64,
            a.trigger_type as i64,
            a.error,
            a.created_at
        ],
    )?;
    Ok(())
}

/// Stores one attempt and applies its consequence to its delivery and endpoint (breaker, pause,
/// disable), leaving the endpoint's queue position to the caller.
fn apply_attempt(c: &Connection, rec: &AttemptRecord) -> Result<Option<BreakerState>> {
    let a = &rec.attempt;
    insert_attempt(c, a)?;
    let now = a.created_at;
    let id = a.delivery_id;
    let upd = |sql: &str, p: &[&dyn rusqlite::ToSql]| exec(c, sql, p);
    match &rec.next {
        NextState::Succeeded => {
            upd("UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
                &[&a.endpoint_id.0])?;
            upd(&format!("UPDATE deliveries SET status = {SUCCESS}, attempts = attempts + 1, manual = 0, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1"),
                &[&id, &now])?;
        }
        NextState::RetryAt { at, failures } => {
            upd(
                "UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                &[&a.endpoint_id.0, &now],
            )?;
            upd(&format!("UPDATE deliveries SET status = {PENDING}, attempts = attempts + 1, failures = ?3, manual = 0, next_at = ?4, lease_owner = NULL, updated_at = ?2 WHERE id = ?1"),
                &[&id, &now, failures, at])?;
        }
        NextState::Failed { disable_endpoint } => {
            upd(
                "UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                &[&a.endpoint_id.0, &now],
            )?;
            upd(&format!("UPDATE deliveries SET status = {FAIL}, attempts = attempts + 1, manual = 0, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1"),
                &[&id, &now])?;
            if *disable_endpoint {
                upd(
                    "UPDATE endpoints SET disabled = 1, updated_at = ?2 WHERE id = ?1",
                    &[&a.endpoint_id.0, &now],
                )?;
                // Nothing is dropped: the endpoint's waiting deliveries end `failed`,
                // where `recover` can bring them back once the endpoint is re-enabled.
                upd(&format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE endpoint_id = ?1 AND status = {PENDING} AND status IN ({PENDING}, {SENDING})"),
                    &[&a.endpoint_id.0, &now])?;
            }
        }
        NextState::EndpointPaused { until } => {
            upd(&format!("UPDATE deliveries SET status = {PENDING}, attempts = attempts + 1, manual = 0, next_at = ?3, lease_owner = NULL, updated_at = ?2 WHERE id = ?1"),
                &[&id, &now, until])?;
            upd(
                "UPDATE endpoints SET paused_until = ?2 WHERE id = ?1",
                &[&a.endpoint_id.0, until],
            )?;
            upd(&format!("UPDATE deliveries SET next_at = ?2 WHERE endpoint_id = ?1 AND status = {PENDING} AND status IN ({PENDING}, {SENDING}) AND next_at < ?2"),
                &[&a.endpoint_id.0, until])?;
        }
    }
    // A pause is the receiver asking to wait, not a failure: the breaker ignores it.
    let change = match &rec.next {
        NextState::EndpointPaused { .. } => None,
        next if rec.breaker.counts => sched::record_result(
            c,
            &a.endpoint_id.0,
            now,
            *next == NextState::Succeeded,
            &rec.breaker.policy,
        )?,
        _ => None,
    };
    Ok(change)
}
