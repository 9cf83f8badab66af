// The storage suite: behaviour every backend must show. Included by `storage_sqlite.rs` and
// `storage_postgres.rs`, each of which defines `setup!()` (a fresh store with one application)
// and the imports below, `app` (from `records/`) among them. Keep tests backend-neutral: they
// talk only to the `Store` trait.

fn endpoint(app: &AppId, types: Option<Vec<&str>>) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        app_id: app.clone(),
        uid: None,
        url: "http://127.0.0.1:1/".into(),
        description: String::new(),
        disabled: false,
        event_types: types.map(|t| t.into_iter().map(String::from).collect()),
        channels: None,
        throttle_rate: None,
        metadata: Default::default(),
        headers: Default::default(),
        retry_schedule: None,
        permanent_statuses: vec![],
        ordering: Ordering::None,
        max_concurrency: None,
        signature_scheme: SignatureScheme::Standard,
        secrets: vec![],
        paused_until: None,
        breaker: Default::default(),
        options: Default::default(),
        created_at: 0,
        updated_at: 0,
    }
}

fn message(app: &AppId, event_type: &str, event_id: Option<&str>, now: i64) -> Message {
    Message {
        id: MessageId::generate(),
        app_id: app.clone(),
        event_id: event_id.map(String::from),
        event_type: event_type.into(),
        payload: Some(r#"{"k":  1}"#.into()),
        channels: None,
        created_at: now,
        retention_ms: None,
        ordering_key: None,
        headers: None,
    }
}

/// The deliveries one claim leased.
async fn claim(
    store: &Arc<dyn Store>,
    owner: &str,
    now: i64,
    lease_ms: i64,
    limit: usize,
) -> herald_store::Result<Vec<herald_store::Claimed>> {
    store
        .claim_due(herald_store::Claim {
            owner: owner.to_string(),
            now,
            lease_ms,
            limit,
        })
        .await
        .map(|b| b.claimed)
}

/// Publishes `message(app, event_type, None, now)` to its fan-out.
async fn publish_at(
    store: &Arc<dyn Store>,
    app: &AppId,
    event_type: &str,
    now: i64,
) -> herald_store::Published {
    store
        .publish(message(app, event_type, None, now), None)
        .await
        .unwrap()
}

/// Publishes `n` messages of `event_type`, created at `first`, `first + 1`, ….
async fn publish_many(store: &Arc<dyn Store>, app: &AppId, event_type: &str, first: i64, n: i64) {
    for i in 0..n {
        publish_at(store, app, event_type, first + i).await;
    }
}

/// Records `attempt` and moves its delivery to `next`; returns the breaker's transition.
async fn record(
    store: &Arc<dyn Store>,
    attempt: Attempt,
    next: NextState,
) -> Option<herald_core::breaker::BreakerState> {
    store
        .record_attempt(AttemptRecord {
            breaker: Default::default(),
            attempt,
            next,
        })
        .await
        .unwrap()
}

/// The endpoint as stored now.
async fn stored_endpoint(store: &Arc<dyn Store>, app: &AppId, id: &EndpointId) -> Endpoint {
    store.get_endpoint(app, id.as_str()).await.unwrap().unwrap()
}

async fn has_payload(store: &Arc<dyn Store>, app: &AppId, msg: &MessageId) -> bool {
    store
        .get_message(app, msg.as_str())
        .await
        .unwrap()
        .expect("message exists")
        .payload
        .is_some()
}

fn attempt(c: &herald_store::Claimed, now: i64, ok: bool) -> Attempt {
    Attempt {
        id: AttemptId::generate(),
        msg_id: c.msg_id.clone(),
        endpoint_id: c.endpoint_id.clone(),
        app_id: c.app_id.clone(),
        delivery_id: c.delivery_id,
        url: "http://127.0.0.1:1/".into(),
        response: String::new(),
        response_status_code: if ok { 204 } else { 500 },
        response_duration_ms: 1,
        status: if ok {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Fail
        },
        trigger_type: TriggerType::Scheduled,
        error: None,
        created_at: now,
    }
}

#[tokio::test]
async fn publish_fans_out_by_event_type_in_one_commit() {
    let (_d, store, a) = setup!();
    let all = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let only_b = store
        .create_endpoint(endpoint(&a.id, Some(vec!["b"])))
        .await
        .unwrap();
    let p = publish_at(&store, &a.id, "a", 10).await;
    assert_eq!(p.deliveries, 1);
    let ds = store.deliveries_of_message(&p.message.id).await.unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].endpoint_id, all.id);
    let p = publish_at(&store, &a.id, "b", 11).await;
    assert_eq!(p.deliveries, 2);
    // send-example style: only one endpoint, whatever the filter says.
    let p = store
        .publish(message(&a.id, "a", None, 12), Some(only_b.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.deliveries_of_message(&p.message.id).await.unwrap()[0].endpoint_id,
        only_b.id
    );
}

#[tokio::test]
async fn repeated_event_id_conflicts_and_leaves_no_deliveries() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    store
        .publish(message(&a.id, "a", Some("e1"), 10), None)
        .await
        .unwrap();
    let dup = message(&a.id, "a", Some("e1"), 11);
    let dup_id = dup.id.clone();
    assert!(matches!(
        store.publish(dup, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store
        .deliveries_of_message(&dup_id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .get_message(&a.id, dup_id.as_str())
        .await
        .unwrap()
        .is_none());
    // The first is found by its eventId.
    assert!(store.get_message(&a.id, "e1").await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_publishes_group_commit_and_all_persist() {
    let (dir, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (store, app_id) = (store.clone(), a.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .publish(message(&app_id, "a", Some(&format!("e{i}")), i), None)
                .await
                .unwrap()
                .message
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    drop(store);
    // Reopen the file: everything acknowledged is there.
    let store = reopen(&dir).await;
    let q = ListQuery {
        limit: 250,
        ..Default::default()
    };
    let page = store
        .list_messages(&a.id, &Default::default(), &q)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 200);
    for id in ids {
        assert_eq!(store.deliveries_of_message(&id).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn claims_are_leases_another_owner_takes_over_after_expiry() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    publish_at(&store, &a.id, "a", 100).await;
    let c1 = claim(&store, "node-1", 1_000, 5_000, 10).await.unwrap();
    assert_eq!(c1.len(), 1);
    // While the lease holds, nobody else gets it.
    assert!(claim(&store, "node-2", 2_000, 5_000, 10)
        .await
        .unwrap()
        .is_empty());
    // After expiry another node takes it over.
    let c2 = claim(&store, "node-2", 6_001, 5_000, 10).await.unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].delivery_id, c1[0].delivery_id);
}

#[tokio::test]
async fn attempt_outcomes_move_the_delivery() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let m = publish_at(&store, &a.id, "a", 100).await.message;
    let c = claim(&store, "n", 1_000, 60_000, 10)
        .await
        .unwrap()
        .remove(0);
    let next = NextState::RetryAt {
        at: 5_000,
        failures: 1,
    };
    record(&store, attempt(&c, 1_001, false), next).await;
    let d = &store.deliveries_of_message(&m.id).await.unwrap()[0];
    assert_eq!(
        (d.status, d.attempts, d.failures, d.next_attempt_at),
        (DeliveryStatus::Pending, 1, 1, Some(5_000))
    );
    assert!(
        claim(&store, "n", 4_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let c = claim(&store, "n", 5_000, 60_000, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.failures, 1);
    // A pause pushes the endpoint's deliveries back without consuming a retry.
    record(
        &store,
        attempt(&c, 5_001, false),
        NextState::EndpointPaused { until: 9_000 },
    )
    .await;
    let e = stored_endpoint(&store, &a.id, &ep.id).await;
    assert_eq!(e.paused_until, Some(9_000));
    let d = &store.deliveries_of_message(&m.id).await.unwrap()[0];
    assert_eq!(
        (d.attempts, d.failures, d.next_attempt_at),
        (2, 1, Some(9_000))
    );
    let c = claim(&store, "n", 9_000, 60_000, 10)
        .await
        .unwrap()
        .remove(0);
    let next = NextState::Failed {
        disable_endpoint: true,
    };
    record(&store, attempt(&c, 9_001, false), next).await;
    let d = &store.deliveries_of_message(&m.id).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Fail);
    assert!(stored_endpoint(&store, &a.id, &ep.id).await.disabled);
    // Recover re-queues the failed delivery.
    assert_eq!(store.recover(&ep.id, 0, None, 10_000).await.unwrap(), 1);
    let d = &store.deliveries_of_message(&m.id).await.unwrap()[0];
    assert_eq!((d.status, d.failures), (DeliveryStatus::Pending, 0));
    let stats = store.endpoint_stats(&ep.id, None, None).await.unwrap();
    assert_eq!(stats.pending, 1);
}

#[tokio::test]
async fn release_leases_makes_in_flight_work_due_again() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    publish_many(&store, &a.id, "a", 0, 3).await;
    assert_eq!(
        claim(&store, "dead-node", 10, 60_000, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.release_leases(None, 20).await.unwrap(), 3);
    assert_eq!(
        claim(&store, "new-node", 20, 60_000, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn keyset_pagination_walks_forward_and_back() {
    let (_d, store, _a) = setup!();
    for i in 0..4 {
        let mut x = app(i);
        x.uid = Some(format!("u{i}"));
        store.create_app(x).await.unwrap();
    }
    let q = ListQuery {
        limit: 2,
        ..Default::default()
    };
    let p1 = store.list_apps(&q).await.unwrap();
    assert!(p1.has_more);
    let last = p1.items.last().unwrap().id.0.clone();
    let p2 = store
        .list_apps(&ListQuery {
            iterator: Some(last),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 2);
    let p3 = store
        .list_apps(&ListQuery {
            iterator: Some(p2.items.last().unwrap().id.0.clone()),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 1);
    assert!(!p3.has_more);
    let back = store
        .list_apps(&ListQuery {
            iterator: Some(p2.items[0].id.0.clone()),
            backwards: true,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        back.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        p1.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn retention_purges_finished_payloads_and_attempt_bodies_only() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    const DAY: i64 = 86_400_000;
    let now = herald_core::now_millis();
    // Delivered: its payload and its attempt's response body go after the retention period.
    let done = publish_at(&store, &a.id, "a", now).await.message;
    let c = claim(&store, "n", now, 60_000, 10).await.unwrap().remove(0);
    let mut att = attempt(&c, now, true);
    att.response = "receiver said ok".into();
    record(&store, att, NextState::Succeeded).await;
    // Still pending: its payload is kept whatever its age.
    let pending = publish_at(&store, &a.id, "a", now).await.message;
    // Delivered with a short retention of its own (1 hour), and no attempt-log body.
    let mut short = message(&a.id, "b", None, now);
    short.retention_ms = Some(3_600_000);
    let short = store
        .publish(short, Some(EndpointId("ep_none".into())))
        .await
        .unwrap()
        .message;

    // Nothing is due for purging yet.
    assert_eq!(store.purge_expired(now, 30 * DAY, 100).await.unwrap(), 0);
    // Two hours later only the short-retention payload goes.
    assert_eq!(
        store
            .purge_expired(now + 2 * 3_600_000, 30 * DAY, 100)
            .await
            .unwrap(),
        1
    );
    assert!(!has_payload(&store, &a.id, &short.id).await);
    assert!(has_payload(&store, &a.id, &done.id).await);
    // 31 days later: the delivered payload and the attempt body go; the pending one stays.
    let later = now + 31 * DAY;
    assert_eq!(store.purge_expired(later, 30 * DAY, 100).await.unwrap(), 2);
    assert!(!has_payload(&store, &a.id, &done.id).await);
    assert!(has_payload(&store, &a.id, &pending.id).await);
    let q = ListQuery {
        limit: 10,
        ..Default::default()
    };
    let atts = store
        .list_attempts(
            &a.id,
            &herald_store::AttemptScope::Message(done.id.clone()),
            &Default::default(),
            &q,
        )
        .await
        .unwrap();
    assert_eq!(atts.items.len(), 1, "the attempt record itself is kept");
    assert_eq!(atts.items[0].response, "");
    // Idempotent: nothing left to purge.
    assert_eq!(store.purge_expired(later, 30 * DAY, 100).await.unwrap(), 0);
}

#[tokio::test]
async fn endpoints_failing_for_the_whole_window_are_disabled_and_their_work_ends_failed() {
    let (_d, store, a) = setup!();
    let bad = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    const HOUR: i64 = 3_600_000;
    let t0 = 1_000_000;
    let m1 = publish_at(&store, &a.id, "a", t0).await.message;
    let c = claim(&store, "n", t0, 60_000, 10).await.unwrap().remove(0);
    let next = NextState::RetryAt {
        at: t0 + HOUR,
        failures: 1,
    };
    record(&store, attempt(&c, t0, false), next).await;
    // Inside the window nothing happens.
    assert!(store
        .disable_failing_endpoints(t0 + 119 * HOUR, 120 * HOUR)
        .await
        .unwrap()
        .is_empty());
    // A second endpoint that succeeded is never touched.
    let good = store
        .create_endpoint(endpoint(&a.id, Some(vec!["b"])))
        .await
        .unwrap();
    publish_at(&store, &a.id, "b", t0).await;
    let cs = claim(&store, "n", t0 + 2 * HOUR, 60_000, 10).await.unwrap();
    for c in cs {
        let ok = c.endpoint_id == good.id;
        let next = if ok {
            NextState::Succeeded
        } else {
            NextState::RetryAt {
                at: t0 + 3 * HOUR,
                failures: 2,
            }
        };
        record(&store, attempt(&c, t0 + 2 * HOUR, ok), next).await;
    }
    let disabled = store
        .disable_failing_endpoints(t0 + 120 * HOUR, 120 * HOUR)
        .await
        .unwrap();
    assert_eq!(
        disabled
            .iter()
            .map(|d| d.endpoint_id.clone())
            .collect::<Vec<_>>(),
        vec![bad.id.clone()]
    );
    assert!(stored_endpoint(&store, &a.id, &bad.id).await.disabled);
    assert!(!stored_endpoint(&store, &a.id, &good.id).await.disabled);
    assert_eq!(
        store.deliveries_of_message(&m1.id).await.unwrap()[0].status,
        DeliveryStatus::Fail
    );
    // Re-enabling starts a fresh window; recover brings the work back.
    let mut e = stored_endpoint(&store, &a.id, &bad.id).await;
    e.disabled = false;
    store.update_endpoint(e).await.unwrap();
    assert!(store
        .disable_failing_endpoints(t0 + 500 * HOUR, 120 * HOUR)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .recover(&bad.id, 0, None, t0 + 500 * HOUR)
            .await
            .unwrap(),
        2,
        "both of its deliveries (types a and b: it has no filter) come back"
    );
}

/// Records a result for a claimed delivery: success, or a failure retried at `retry_at`.
async fn finish(store: &Arc<dyn Store>, c: &herald_store::Claimed, now: i64, ok: bool) {
    let next = if ok {
        NextState::Succeeded
    } else {
        NextState::RetryAt {
            at: now + 3_600_000,
            failures: c.failures + 1,
        }
    };
    record(store, attempt(c, now, ok), next).await;
}

#[tokio::test]
async fn claims_respect_max_concurrency_counted_from_every_owners_leases() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.max_concurrency = Some(3);
    store.create_endpoint(e).await.unwrap();
    publish_many(&store, &a.id, "a", 100, 10).await;
    let n1 = claim(&store, "node-1", 1_000, 60_000, 100).await.unwrap();
    assert_eq!(n1.len(), 3, "cap 3");
    // Another node sees the same leases: nothing more while three are in flight.
    assert!(claim(&store, "node-2", 1_001, 60_000, 100)
        .await
        .unwrap()
        .is_empty());
    finish(&store, &n1[0], 1_002, true).await;
    assert_eq!(
        claim(&store, "node-2", 1_003, 60_000, 100)
            .await
            .unwrap()
            .len(),
        1,
        "one slot freed"
    );
}

#[tokio::test]
async fn claims_are_fair_across_endpoints() {
    let (_d, store, a) = setup!();
    let mut busy = endpoint(&a.id, Some(vec!["busy"]));
    busy.max_concurrency = Some(1000);
    let busy = store.create_endpoint(busy).await.unwrap();
    let quiet = store
        .create_endpoint(endpoint(&a.id, Some(vec!["quiet"])))
        .await
        .unwrap();
    publish_many(&store, &a.id, "busy", 100, 500).await;
    // Published last, due last.
    publish_at(&store, &a.id, "quiet", 10_000).await;
    let got = claim(&store, "n", 20_000, 60_000, 10).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(
        got.iter().any(|c| c.endpoint_id == quiet.id),
        "the quiet endpoint waited behind the busy endpoint's backlog"
    );
    assert!(got.iter().any(|c| c.endpoint_id == busy.id));
}

#[tokio::test]
async fn throttle_rate_limits_claims_and_keeps_state_in_the_store() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.throttle_rate = Some(10);
    store.create_endpoint(e).await.unwrap();
    publish_many(&store, &a.id, "a", 100, 100).await;
    // Claim every 10 ms for 2 s (simulated), finishing each delivery at once; two owners
    // alternate, as two nodes would.
    let mut sent = 0;
    let t0 = 1_000_000;
    for step in 0..200 {
        let now = t0 + step * 10;
        let owner = if step % 2 == 0 { "node-1" } else { "node-2" };
        for c in claim(&store, owner, now, 60_000, 100).await.unwrap() {
            finish(&store, &c, now, true).await;
            sent += 1;
        }
    }
    // 10/s over 2 s, plus the bucket (capacity 1) and its starting token.
    assert!((18..=22).contains(&sent), "{sent} sent in 2 s at 10/s");
}

#[tokio::test]
async fn attempts_recorded_at_once_are_each_applied_once() {
    // Many attempts finishing together (a backend may write them in one transaction): each
    // delivery moves exactly once, every attempt is kept, and a breaker that opens reports the
    // transition to exactly one caller.
    let (_d, store, a) = setup!();
    let mut eps = Vec::new();
    for _ in 0..3 {
        let mut e = endpoint(&a.id, None);
        e.max_concurrency = Some(100);
        eps.push(store.create_endpoint(e).await.unwrap().id);
    }
    let mut msgs = Vec::new();
    for i in 0..20 {
        let p = publish_at(&store, &a.id, "a", 100 + i).await;
        assert_eq!(p.deliveries, 3);
        msgs.push(p.message.id);
    }
    let mut claimed = Vec::new();
    while claimed.len() < 60 {
        let got = claim(&store, "n", 1_000, 60_000, 100).await.unwrap();
        assert!(!got.is_empty(), "all 60 deliveries are due");
        claimed.extend(got);
    }
    // eps[0] succeeds, eps[1] fails every time, eps[2] alternates.
    let mut tasks = Vec::new();
    for (i, c) in claimed.into_iter().enumerate() {
        let store = store.clone();
        let which = eps.iter().position(|e| *e == c.endpoint_id).unwrap();
        let ok = which == 0 || (which == 2 && i % 2 == 0);
        tasks.push(tokio::spawn(async move {
            let next = if ok {
                NextState::Succeeded
            } else {
                NextState::RetryAt {
                    at: 9_999_999,
                    failures: 1,
                }
            };
            let r = record(&store, attempt(&c, 1_001, ok), next).await;
            (which, ok, r)
        }));
    }
    let mut opened = [0; 3];
    let mut failed = [0; 3];
    for t in tasks {
        let (which, ok, r) = t.await.unwrap();
        if r == Some(herald_core::breaker::BreakerState::Open) {
            opened[which] += 1;
        }
        if !ok {
            failed[which] += 1;
        }
    }
    assert_eq!(failed[1], 20);
    assert_eq!(opened[0], 0, "an endpoint that only succeeded keeps its breaker closed");
    assert_eq!(opened[1], 1, "one transition, reported once");
    for m in &msgs {
        let ds = store.deliveries_of_message(m).await.unwrap();
        assert_eq!(ds.len(), 3);
        for d in ds {
            assert_eq!(d.attempts, 1, "each delivery moved exactly once");
            let which = eps.iter().position(|e| *e == d.endpoint_id).unwrap();
            if which == 0 {
                assert_eq!(d.status, DeliveryStatus::Success);
            }
            if which == 1 {
                assert_eq!(
                    (d.status, d.failures, d.next_attempt_at),
                    (DeliveryStatus::Pending, 1, Some(9_999_999))
                );
            }
        }
        let q = ListQuery {
            limit: 10,
            ..Default::default()
        };
        let atts = store
            .list_attempts(
                &a.id,
                &herald_store::AttemptScope::Message(m.clone()),
                &Default::default(),
                &q,
            )
            .await
            .unwrap();
        assert_eq!(atts.items.len(), 3, "every attempt is kept");
    }
    let e1 = stored_endpoint(&store, &a.id, &eps[1]).await;
    assert_eq!(e1.state(1_002), "open");
}

#[tokio::test]
async fn an_open_breaker_blocks_claims_until_its_probe() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.max_concurrency = Some(1);
    let e = store.create_endpoint(e).await.unwrap();
    publish_many(&store, &a.id, "a", 100, 8).await;
    let mut now = 1_000;
    let mut transitions = vec![];
    for _ in 0..5 {
        let c = claim(&store, "n", now, 60_000, 10).await.unwrap().remove(0);
        let r = record(
            &store,
            attempt(&c, now, false),
            NextState::RetryAt {
                at: now + 3_600_000,
                failures: 1,
            },
        )
        .await;
        transitions.extend(r);
        now += 10;
    }
    assert_eq!(transitions, vec![herald_core::breaker::BreakerState::Open]);
    let got = stored_endpoint(&store, &a.id, &e.id).await;
    assert_eq!(got.state(now), "open");
    // Three deliveries are due, but nothing is claimed during the cool-down.
    assert!(claim(&store, "n", now + 29_000, 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    // After it, exactly one probe, and the breaker is half-open.
    let b = store
        .claim_due(herald_store::Claim {
            owner: "n".into(),
            now: now + 31_000,
            lease_ms: 60_000,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(b.claimed.len(), 1);
    assert_eq!(b.breaker_changes.len(), 1);
    assert!(claim(&store, "n", now + 31_001, 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    let r = record(
        &store,
        attempt(&b.claimed[0], now + 31_002, true),
        NextState::Succeeded,
    )
    .await;
    assert_eq!(r, Some(herald_core::breaker::BreakerState::Closed));
    // Closed: the two still waiting go, one at a time (cap 1); none used up a retry.
    let c = claim(&store, "n", now + 31_003, 60_000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].failures, 0);
}

#[tokio::test]
async fn fifo_sends_one_delivery_per_key_in_publish_order() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.ordering = Ordering::Fifo;
    store.create_endpoint(e).await.unwrap();
    let mut ids = vec![];
    for i in 0..6 {
        let mut m = message(&a.id, "a", None, 100 + i);
        m.ordering_key = Some(format!("k{}", i % 2));
        ids.push(store.publish(m, None).await.unwrap().message.id);
    }
    // One head per key: messages 0 (k0) and 1 (k1).
    let got = claim(&store, "n", 1_000, 60_000, 10).await.unwrap();
    let mut heads: Vec<_> = got.iter().map(|c| c.msg_id.clone()).collect();
    heads.sort();
    assert_eq!(heads, vec![ids[0].clone(), ids[1].clone()]);
    // A failure keeps the key blocked: its retry comes before message 2.
    let k0 = got.iter().find(|c| c.msg_id == ids[0]).unwrap().clone();
    finish(&store, &k0, 1_001, false).await;
    assert!(claim(&store, "n", 1_002, 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    // Once k1's head succeeds, k1's next message (3) goes.
    let k1 = got.iter().find(|c| c.msg_id == ids[1]).unwrap().clone();
    finish(&store, &k1, 1_003, true).await;
    let next = claim(&store, "n", 1_004, 60_000, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.msg_id.clone()).collect::<Vec<_>>(),
        vec![ids[3].clone()]
    );
}

#[tokio::test]
async fn auto_disabled_work_comes_back_with_recover_after_re_enabling() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    publish_many(&store, &a.id, "a", 100, 3).await;
    let c = claim(&store, "n", 1_000, 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    finish(&store, &c, 1_000, false).await;
    let disabled = store
        .disable_failing_endpoints(10_000, 5_000)
        .await
        .unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].failing_since, 1_000);
    let stats = store.endpoint_stats(&ep.id, None, None).await.unwrap();
    assert_eq!((stats.fail, stats.pending), (3, 0));
    let mut e = stored_endpoint(&store, &a.id, &ep.id).await;
    e.disabled = false;
    e.updated_at = 11_000;
    store.update_endpoint(e).await.unwrap();
    assert_eq!(store.recover(&ep.id, 0, None, 12_000).await.unwrap(), 3);
    let back = claim(&store, "n", 12_000, 60_000, 10).await.unwrap();
    assert_eq!(back.len(), 3);
}

fn source(app: &AppId, now: i64) -> herald_core::model::Source {
    herald_core::model::Source {
        id: herald_core::ids::SourceId::generate(),
        app_id: app.clone(),
        uid: Some("gh".into()),
        name: "GitHub".into(),
        verification: serde_json::from_value(serde_json::json!({"scheme": "github"})).unwrap(),
        secrets: vec![herald_core::model::StoredSecret {
            key: "s3cret".into(),
            expires_at: None,
        }],
        options: serde_json::from_value(serde_json::json!({"forwardHeaders": ["X-GitHub-Event"]}))
            .unwrap(),
        created_at: now,
        updated_at: now,
    }
}

fn inbound(s: &herald_core::model::Source, now: i64) -> herald_core::model::InboundRequest {
    herald_core::model::InboundRequest {
        id: herald_core::ids::InboundRequestId::generate(),
        source_id: s.id.clone(),
        app_id: s.app_id.clone(),
        status: herald_core::model::InboundStatus::Accepted,
        reason: None,
        msg_id: None,
        headers: Default::default(),
        body: None,
        event_type: Some("push".into()),
        created_at: now,
    }
}

/// Logs a request to `s` quarantined by its schema (at 20 ms) and returns it.
async fn log_quarantined(
    store: &Arc<dyn Store>,
    s: &herald_core::model::Source,
) -> herald_core::model::InboundRequest {
    let mut q = inbound(s, 20);
    q.status = herald_core::model::InboundStatus::Quarantined;
    q.reason = Some("schema: /x is required".into());
    q.body = Some(r#"{"y": 1}"#.into());
    store.log_inbound(q.clone()).await.unwrap();
    q
}

#[tokio::test]
async fn sources_round_trip_by_id_and_uid() {
    let (_d, store, a) = setup!();
    let s = store.create_source(source(&a.id, 10)).await.unwrap();
    assert_eq!(store.find_source(&s.id).await.unwrap().unwrap(), s);
    assert_eq!(store.get_source(&a.id, "gh").await.unwrap().unwrap(), s);
    assert!(matches!(
        store.create_source(source(&a.id, 11)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = s.clone();
    changed.name = "renamed".into();
    store.update_source(changed.clone()).await.unwrap();
    let page = store
        .list_sources(&a.id, &ListQuery { limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.items, vec![changed]);
    store.delete_source(&a.id, &s.id).await.unwrap();
    assert!(store.find_source(&s.id).await.unwrap().is_none());
}

/// A source whose stored options or verification no longer decode (written by hand here)
/// reads as `CorruptRecord` naming the source, through every read, never as defaults.
#[tokio::test]
async fn a_source_whose_stored_json_does_not_decode_is_a_corrupt_record() {
    let (ctx, store, a) = setup!();
    let cases = [
        ("options", r#"{"onInvalid": "sometimes"}"#, "source options"),
        ("verification", r#"{"scheme": "no-such-scheme"}"#, "source verification"),
        ("options", "not json", "source options"),
    ];
    for (i, (column, stored, what)) in cases.into_iter().enumerate() {
        let mut s = source(&a.id, 10);
        s.uid = Some(format!("corrupt-{i}"));
        let s = store.create_source(s).await.unwrap();
        let sql = format!("UPDATE sources SET {column} = '{stored}' WHERE id = '{}'", s.id);
        raw_sql(&ctx, &sql).await;
        let is_corrupt = |r: Result<_, StoreError>| match r {
            Err(StoreError::CorruptRecord { what: w, id, .. }) => w == what && id == s.id.0,
            _ => false,
        };
        assert!(is_corrupt(store.get_source(&a.id, s.id.as_str()).await.map(|_| ())));
        assert!(is_corrupt(store.find_source(&s.id).await.map(|_| ())));
        let q = ListQuery { limit: 10, ..Default::default() };
        assert!(is_corrupt(store.list_sources(&a.id, &q).await.map(|_| ())));
        store.delete_source(&a.id, &s.id).await.unwrap();
    }
}

#[tokio::test]
async fn ingest_dedups_within_the_window_and_concurrent_duplicates_collapse() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let s = store.create_source(source(&a.id, 10)).await.unwrap();
    let key = [7u8; 32];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, s, app) = (store.clone(), s.clone(), a.id.clone());
        tasks.push(tokio::spawn(async move {
            let mut m = message(&app, "push", None, 1_000 + i);
            m.headers = Some([("X-GitHub-Event".to_string(), "push".to_string())].into());
            store
                .ingest(
                    inbound(&s, 1_000 + i),
                    Some(herald_store::DedupCheck { key, since: 0 }),
                    m,
                    None,
                )
                .await
                .unwrap()
        }));
    }
    let mut accepted = Vec::new();
    let mut duplicates = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            herald_store::IngestOutcome::Accepted(id) => accepted.push(id),
            herald_store::IngestOutcome::Duplicate(id) => duplicates.push(id),
            other => panic!("no ordering, yet {other:?}"),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one message for one key");
    assert!(duplicates.iter().all(|d| *d == accepted[0]));
    let msg = store
        .get_message(&a.id, accepted[0].as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.headers.unwrap()["X-GitHub-Event"], "push");
    assert_eq!(store.deliveries_of_message(&accepted[0]).await.unwrap().len(), 1);
    // Outside the window the same key makes a new message.
    let later = store
        .ingest(
            inbound(&s, 5_000),
            Some(herald_store::DedupCheck { key, since: 4_000 }),
            message(&a.id, "push", None, 5_000),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(later, herald_store::IngestOutcome::Accepted(_)));
    let log = store
        .list_inbound(&s.id, None, &ListQuery { limit: 50, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(log.items.len(), 9);
    assert_eq!(
        log.items
            .iter()
            .filter(|r| r.status == herald_core::model::InboundStatus::Duplicate)
            .count(),
        7
    );
}

#[tokio::test]
async fn a_quarantined_request_is_released_once() {
    let (_d, store, a) = setup!();
    let s = store.create_source(source(&a.id, 10)).await.unwrap();
    let q = log_quarantined(&store, &s).await;
    let p = store
        .release_inbound(&s.id, &q.id, message(&a.id, "push", None, 30))
        .await
        .unwrap();
    assert_eq!(p.message.event_type, "push");
    assert!(matches!(
        store
            .release_inbound(&s.id, &q.id, message(&a.id, "push", None, 31))
            .await,
        Err(StoreError::NotFound)
    ));
    let log = store
        .list_inbound(&s.id, None, &ListQuery { limit: 5, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(log.items[0].status, herald_core::model::InboundStatus::Released);
    assert_eq!(log.items[0].msg_id.as_ref(), Some(&p.message.id));
}

// ---- inbound ordering ----------------------------------------------------------------------

/// A FIFO endpoint and a source, for the ordering tests.
async fn ordered_setup(
    store: &Arc<dyn Store>,
    a: &Application,
) -> herald_core::model::Source {
    let mut e = endpoint(&a.id, None);
    e.ordering = Ordering::Fifo;
    store.create_endpoint(e).await.unwrap();
    store.create_source(source(&a.id, 10)).await.unwrap()
}

/// The first 50 rows of the source's request log.
async fn inbound_log(
    store: &Arc<dyn Store>,
    s: &herald_core::model::Source,
) -> Vec<herald_core::model::InboundRequest> {
    store
        .list_inbound(&s.id, None, &ListQuery { limit: 50, ..Default::default() })
        .await
        .unwrap()
        .items
}

/// Ingests event `seq` of resource `key` (its own dedup key `d<tag>`), as the API would.
async fn ingest_seq(
    store: &Arc<dyn Store>,
    s: &herald_core::model::Source,
    key: &str,
    seq: i64,
    gap_ms: i64,
    now: i64,
    tag: &str,
) -> (herald_store::IngestOutcome, MessageId) {
    let mut m = message(&s.app_id, "push", None, now);
    m.payload = Some(format!(r#"{{"key":"{key}","seq":{seq}}}"#));
    m.ordering_key = Some(format!("{}:{key}", s.id));
    let id = m.id.clone();
    let mut dedup = [0u8; 32];
    for (i, b) in format!("{key}:{tag}").bytes().take(32).enumerate() {
        dedup[i] = b;
    }
    let out = store
        .ingest(
            inbound(s, now),
            Some(herald_store::DedupCheck { key: dedup, since: 0 }),
            m,
            Some(herald_store::OrderCheck {
                key: key.into(),
                seq,
                gap_timeout_ms: gap_ms,
            }),
        )
        .await
        .unwrap();
    (out, id)
}

/// Delivers everything on the FIFO endpoint, one claim after another, and returns the
/// messages in the order they were handed out (per key order is what FIFO guarantees).
async fn drain_in_order(store: &Arc<dyn Store>, now: i64) -> Vec<MessageId> {
    let mut order = Vec::new();
    for round in 0..200 {
        let got = claim(store, "n", now + round, 60_000, 100).await.unwrap();
        if got.is_empty() {
            break;
        }
        for c in &got {
            order.push(c.msg_id.clone());
            finish(store, c, now + round, true).await;
        }
    }
    order
}

fn statuses(log: &[herald_core::model::InboundRequest]) -> Vec<herald_core::model::InboundStatus> {
    // In arrival order (each request of these tests has its own time).
    let mut log = log.to_vec();
    log.sort_by_key(|r| r.created_at);
    log.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn ordering_drops_events_not_above_the_last_accepted_sequence() {
    use herald_core::model::InboundStatus as S;
    use herald_store::IngestOutcome as O;
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    let (o1, m1) = ingest_seq(&store, &s, "r1", 1, 60_000, 100, "a").await;
    let (o2, m2) = ingest_seq(&store, &s, "r1", 2, 60_000, 101, "b").await;
    assert_eq!((o1, o2), (O::Accepted(m1.clone()), O::Accepted(m2.clone())));
    // A re-send of 2 with a new delivery ID, and an old 1: stale, no message.
    let (o, m) = ingest_seq(&store, &s, "r1", 2, 60_000, 102, "c").await;
    assert_eq!(o, O::Stale);
    assert!(store.get_message(&a.id, m.as_str()).await.unwrap().is_none());
    assert_eq!(ingest_seq(&store, &s, "r1", 1, 60_000, 103, "d").await.0, O::Stale);
    // A stale event takes no dedup key: the same delivery again is stale again, not a duplicate.
    assert_eq!(ingest_seq(&store, &s, "r1", 1, 60_000, 104, "d").await.0, O::Stale);
    // Another key has its own sequence.
    assert!(matches!(
        ingest_seq(&store, &s, "r2", 1, 60_000, 105, "e").await.0,
        O::Accepted(_)
    ));
    let log = inbound_log(&store, &s).await;
    assert_eq!(
        statuses(&log),
        vec![S::Accepted, S::Accepted, S::Stale, S::Stale, S::Stale, S::Accepted]
    );
    assert!(log.iter().filter(|r| r.status == S::Stale).all(|r| r.msg_id.is_none()
        && r.reason.as_deref().is_some_and(|x| x.contains("not above"))));
    // The log filtered by status, paged.
    let q = |limit| ListQuery { limit, ..Default::default() };
    let stale = store.list_inbound(&s.id, Some(S::Stale), &q(2)).await.unwrap();
    assert_eq!(statuses(&stale.items), vec![S::Stale, S::Stale]);
    assert!(stale.has_more);
    let next = ListQuery {
        limit: 2,
        iterator: Some(stale.items[1].id.0.clone()),
        ..Default::default()
    };
    let rest = store.list_inbound(&s.id, Some(S::Stale), &next).await.unwrap();
    assert_eq!((statuses(&rest.items), rest.has_more), (vec![S::Stale], false));
    let held = store.list_inbound(&s.id, Some(S::Held), &q(50)).await.unwrap();
    assert!(held.items.is_empty());
    assert_eq!(drain_in_order(&store, 1_000).await.len(), 3);
}

#[tokio::test]
async fn a_gap_holds_later_events_until_it_is_filled_then_all_go_in_sequence_order() {
    use herald_core::model::InboundStatus as S;
    use herald_store::IngestOutcome as O;
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    let (_, m1) = ingest_seq(&store, &s, "r", 1, 60_000, 100, "1").await;
    let (o4, m4) = ingest_seq(&store, &s, "r", 4, 60_000, 101, "4").await;
    let (o3, m3) = ingest_seq(&store, &s, "r", 3, 60_000, 102, "3").await;
    assert_eq!((o4, o3), (O::Held(m4.clone()), O::Held(m3.clone())));
    // Held: no message yet, so nothing can be delivered.
    assert!(store.get_message(&a.id, m4.as_str()).await.unwrap().is_none());
    assert_eq!(drain_in_order(&store, 200).await, vec![m1.clone()]);
    // The same delivery of 4 again is a duplicate of the message it will become; another
    // delivery of 4 is stale (4 is already waiting).
    assert_eq!(
        ingest_seq(&store, &s, "r", 4, 60_000, 103, "4").await.0,
        O::Duplicate(m4.clone())
    );
    assert_eq!(ingest_seq(&store, &s, "r", 4, 60_000, 104, "4bis").await.0, O::Stale);
    // 2 fills the gap: 2, 3 and 4 become messages, in sequence order.
    let (o2, m2) = ingest_seq(&store, &s, "r", 2, 60_000, 105, "2").await;
    assert_eq!(o2, O::Accepted(m2.clone()));
    assert_eq!(drain_in_order(&store, 300).await, vec![m2, m3.clone(), m4.clone()]);
    // `last` is 4 now: 5 goes at once.
    assert!(matches!(
        ingest_seq(&store, &s, "r", 5, 60_000, 106, "5").await.0,
        O::Accepted(_)
    ));
    let log = inbound_log(&store, &s).await;
    assert_eq!(
        statuses(&log),
        vec![
            S::Accepted, // 1
            S::Accepted, // 4: held, went on
            S::Accepted, // 3: held, went on
            S::Duplicate,
            S::Stale,
            S::Accepted, // 2
            S::Accepted, // 5
        ]
    );
    let was_held: Vec<_> = log.iter().filter_map(|r| r.msg_id.clone()).collect();
    assert!(was_held.contains(&m3) && was_held.contains(&m4));
    // A held event becomes a message of its source's channel, like any inbound message.
    let m4 = store.get_message(&a.id, m4.as_str()).await.unwrap().expect("message 4");
    assert_eq!(m4.channels, Some(vec![s.channel()]));
}

#[tokio::test]
async fn the_sweep_lets_held_events_go_after_their_wait_in_sequence_order() {
    use herald_core::model::InboundStatus as S;
    use herald_store::IngestOutcome as O;
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    ingest_seq(&store, &s, "r", 1, 1_000, 1_000, "1").await;
    let (_, m5) = ingest_seq(&store, &s, "r", 5, 1_000, 1_100, "5").await; // waits until 2_100
    let (_, m3) = ingest_seq(&store, &s, "r", 3, 1_000, 1_200, "3").await; // until 2_200
    let (o7, m7) = ingest_seq(&store, &s, "r", 7, 1_000, 1_300, "7").await; // until 2_300
    assert_eq!(o7, O::Held(m7.clone()));
    assert_eq!(store.release_held(2_000, 100).await.unwrap(), 0);
    drain_in_order(&store, 2_000).await;
    // 5's wait is over: the gaps before it are given up; 3 then 5 go, 7 still waits for 6.
    assert_eq!(store.release_held(2_150, 100).await.unwrap(), 2);
    assert_eq!(store.release_held(2_150, 100).await.unwrap(), 0);
    assert_eq!(drain_in_order(&store, 2_160).await, vec![m3, m5]);
    assert!(store.get_message(&a.id, m7.as_str()).await.unwrap().is_none());
    // Its own wait ends too.
    assert_eq!(store.release_held(2_300, 100).await.unwrap(), 1);
    assert_eq!(drain_in_order(&store, 2_310).await, vec![m7]);
    // `last` is 7: 6 is stale now, 8 goes at once.
    assert_eq!(ingest_seq(&store, &s, "r", 6, 1_000, 2_400, "6").await.0, O::Stale);
    assert!(matches!(
        ingest_seq(&store, &s, "r", 8, 1_000, 2_500, "8").await.0,
        O::Accepted(_)
    ));
    let log = inbound_log(&store, &s).await;
    assert!(!log.iter().any(|r| r.status == S::Held));
}

#[tokio::test]
async fn without_a_gap_timeout_only_stale_events_are_dropped() {
    use herald_store::IngestOutcome as O;
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    let (_, t1) = ingest_seq(&store, &s, "r", 1_700_000_000, 0, 100, "a").await;
    let (o, t2) = ingest_seq(&store, &s, "r", 1_700_000_050, 0, 101, "b").await;
    assert_eq!(o, O::Accepted(t2.clone()));
    assert_eq!(ingest_seq(&store, &s, "r", 1_700_000_010, 0, 102, "c").await.0, O::Stale);
    assert_eq!(drain_in_order(&store, 200).await, vec![t1, t2]);
}

#[tokio::test]
async fn concurrent_consecutive_events_are_never_reordered_or_lost() {
    use herald_store::IngestOutcome as O;
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    const KEYS: usize = 12;
    let mut firsts = Vec::new();
    for k in 0..KEYS {
        firsts.push(ingest_seq(&store, &s, &format!("k{k}"), 0, 60_000, 100, "0").await.1);
    }
    assert_eq!(drain_in_order(&store, 150).await.len(), KEYS);
    // Per key, 1 and 2 race (2 first in half of the keys).
    let mut tasks = Vec::new();
    for k in 0..KEYS {
        for seq in if k % 2 == 0 { [1, 2] } else { [2, 1] } {
            let (store, s) = (store.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("k{k}");
                let (o, m) = ingest_seq(&store, &s, &key, seq, 60_000, 200, &seq.to_string()).await;
                (key, seq, o, m)
            }));
        }
    }
    let mut by_msg = std::collections::HashMap::new();
    for t in tasks {
        let (key, seq, o, m) = t.await.unwrap();
        match (seq, &o) {
            (1, O::Accepted(_)) | (2, O::Accepted(_)) | (2, O::Held(_)) => {}
            _ => panic!("{key}: sequence {seq} gave {o:?}"),
        }
        by_msg.insert(m, (key, seq));
    }
    // Every event became a message, and each key's 1 was handed out before its 2.
    let order = drain_in_order(&store, 300).await;
    assert_eq!(order.len(), 2 * KEYS);
    let mut next = std::collections::HashMap::new();
    for m in order {
        let (key, seq) = by_msg[&m].clone();
        let expected = next.entry(key.clone()).or_insert(1);
        assert_eq!(seq, *expected, "{key} out of order");
        *expected += 1;
    }
}

#[tokio::test]
async fn concurrent_sweeps_publish_each_held_event_once() {
    let (_d, store, a) = setup!();
    let s = ordered_setup(&store, &a).await;
    const KEYS: usize = 6;
    let mut held = Vec::new();
    for k in 0..KEYS {
        let key = format!("k{k}");
        ingest_seq(&store, &s, &key, 1, 1_000, 100, "1").await;
        for seq in [3, 4, 6] {
            held.push(ingest_seq(&store, &s, &key, seq, 1_000, 100, &seq.to_string()).await.1);
        }
    }
    drain_in_order(&store, 150).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.release_held(5_000, 100).await.unwrap() }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    // A sweep that found a key locked by another leaves it for the next pass.
    for _ in 0..10 {
        let n = store.release_held(5_000, 100).await.unwrap();
        total += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(total, held.len() as u64);
    for m in &held {
        assert!(store.get_message(&a.id, m.as_str()).await.unwrap().is_some());
        assert_eq!(store.deliveries_of_message(m).await.unwrap().len(), 1);
    }
    let all = store
        .list_messages(&a.id, &Default::default(), &ListQuery { limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(all.items.len(), KEYS + held.len());
    assert_eq!(drain_in_order(&store, 6_000).await.len(), held.len());
}

/// The per-endpoint delivery options (transformation, TLS with its write-only key, payload
/// encryption) come back exactly as stored, through create, update and the delivery load.
#[tokio::test]
async fn endpoint_delivery_options_round_trip() {
    let (_ctx, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.options = serde_json::from_value(serde_json::json!({
        "transformation": {"code": "function handler(w) { return w; }", "enabled": true},
        "tls": {"clientCertificate": "CERT", "clientKey": "KEY", "caCertificates": "CA"},
        "encryption": {"publicKey": {"kty": "OKP", "crv": "X25519", "x": "abc"}},
    }))
    .unwrap();
    let created = store.create_endpoint(e.clone()).await.unwrap();
    assert_eq!(created.options, e.options);
    let got = stored_endpoint(&store, &a.id, &created.id).await;
    assert_eq!(got.options, e.options);
    let mut changed = got.clone();
    changed.options.tls = None;
    changed.options.transformation.as_mut().unwrap().enabled = false;
    store.update_endpoint(changed.clone()).await.unwrap();
    let got = stored_endpoint(&store, &a.id, &created.id).await;
    assert_eq!(got.options, changed.options);
}

#[tokio::test]
async fn endpoint_hours_count_finished_attempts_per_hour_since_an_instant() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let other = store.create_endpoint(endpoint(&a.id, Some(vec!["x"]))).await.unwrap();
    // Attempt IDs carry the real time: the window is bounded by them and by `created_at`.
    let now = herald_core::now_millis();
    let since = now - 1_800_000;
    publish_at(&store, &a.id, "a", now).await;
    let c = claim(&store, "n", now, 60_000, 10).await.unwrap().remove(0);
    assert_eq!(c.endpoint_id, ep.id);
    finish(&store, &c, now, false).await;
    let c = claim(&store, "n", now + 3_600_001, 60_000, 10)
        .await
        .unwrap()
        .remove(0);
    finish(&store, &c, now + 1, true).await;
    let hours = store.endpoint_hours(&ep.id, since).await.unwrap();
    assert_eq!(
        hours,
        vec![herald_store::HourCount {
            start: since,
            success: 1,
            fail: 1
        }]
    );
    // A later window, and another endpoint, see nothing.
    assert!(store.endpoint_hours(&ep.id, now + 2).await.unwrap().is_empty());
    assert!(store.endpoint_hours(&other.id, since).await.unwrap().is_empty());
}
