// The destinations part of the storage suite (polling endpoints, batching), included after `body.rs` by
// both backends' suites; it uses that file's helpers.

fn poll_endpoint(app: &AppId) -> Endpoint {
    Endpoint {
        url: herald_core::pull::POLL_URL.into(),
        ..endpoint(app, None)
    }
}

fn poll(app: &AppId, ep: &EndpointId, ack_upto: i64, limit: usize) -> herald_store::PollRequest {
    herald_store::PollRequest {
        app_id: app.clone(),
        endpoint_id: ep.clone(),
        ack_upto,
        since: 0,
        limit,
        now: 5_000,
    }
}

#[tokio::test]
async fn poll_endpoints_are_never_claimed_and_page_in_publish_order() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(poll_endpoint(&a.id)).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = store.publish(message(&a.id, "t", None, 1_000 + i), None).await.unwrap();
        ids.push(m.message.id);
    }
    assert!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None, "a poll endpoint is never due");

    let p1 = store.poll_page(poll(&a.id, &ep.id, 0, 2)).await.unwrap();
    let got: Vec<_> = p1.events.iter().map(|e| e.msg_id.clone()).collect();
    assert_eq!(got, ids[..2]);
    assert!(p1.has_more);
    assert_eq!(p1.events[0].payload.as_deref(), Some(r#"{"k":  1}"#));
    // A consumer that crashed before using page 1 reads it again (nothing acknowledged).
    let again = store.poll_page(poll(&a.id, &ep.id, 0, 2)).await.unwrap();
    assert_eq!(again.events, p1.events);

    let pos = p1.events[1].position;
    let p2 = store.poll_page(poll(&a.id, &ep.id, pos, 10)).await.unwrap();
    assert_eq!(p2.acknowledged, 2);
    assert_eq!(p2.events.iter().map(|e| e.msg_id.clone()).collect::<Vec<_>>(), ids[2..]);
    assert!(!p2.has_more);
    let stats = store.endpoint_stats(&ep.id, None, None).await.unwrap();
    assert_eq!((stats.success, stats.pending), (2, 3));
    let atts = store
        .list_attempts(&a.id, &herald_store::AttemptScope::Endpoint(ep.id.clone()), &Default::default(), &ListQuery { limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(atts.items.len(), 2, "one attempt record per acknowledged delivery");
    assert!(atts.items.iter().all(|a| a.status == DeliveryStatus::Success && a.url == "poll:"));

    let last = p2.events.last().unwrap().position;
    let p3 = store.poll_page(poll(&a.id, &ep.id, last, 10)).await.unwrap();
    assert_eq!((p3.events.len(), p3.acknowledged, p3.has_more), (0, 3, false));
    // Acknowledging again changes nothing.
    let p4 = store.poll_page(poll(&a.id, &ep.id, last, 10)).await.unwrap();
    assert_eq!((p4.events.len(), p4.acknowledged), (0, 0));
}

#[tokio::test]
async fn a_poll_acknowledges_only_what_it_handed_out() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(poll_endpoint(&a.id)).await.unwrap();
    let m1 = store.publish(message(&a.id, "t", None, 1_000), None).await.unwrap();
    let p1 = store.poll_page(poll(&a.id, &ep.id, 0, 10)).await.unwrap();
    assert_eq!(p1.events.len(), 1);
    let m2 = store.publish(message(&a.id, "t", None, 1_001), None).await.unwrap();
    // An iterator far ahead (forged, or a delivery that committed late below it) acknowledges
    // only the handed-out delivery: the unseen one is answered next.
    let p2 = store.poll_page(poll(&a.id, &ep.id, i64::MAX, 10)).await.unwrap();
    assert_eq!(p2.acknowledged, 1);
    assert_eq!(p2.events.iter().map(|e| e.msg_id.clone()).collect::<Vec<_>>(), vec![m2.message.id.clone()]);
    // A resend of an acknowledged event holds it for the consumer again.
    store.resend(&a.id, &m1.message.id, &ep.id, 6_000).await.unwrap();
    assert!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().is_empty());
    let p3 = store.poll_page(poll(&a.id, &ep.id, 0, 10)).await.unwrap();
    let got: Vec<_> = p3.events.iter().map(|e| e.msg_id.clone()).collect();
    assert_eq!(got, vec![m1.message.id, m2.message.id]);
}

#[tokio::test]
async fn a_poll_seeks_by_time_and_stays_on_its_endpoint() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(poll_endpoint(&a.id)).await.unwrap();
    let other = store.create_endpoint(poll_endpoint(&a.id)).await.unwrap();
    for t in [1_000, 2_000, 3_000] {
        store.publish(message(&a.id, "t", None, t), None).await.unwrap();
    }
    let mut req = poll(&a.id, &ep.id, 0, 10);
    req.since = 2_000;
    let p = store.poll_page(req).await.unwrap();
    assert_eq!(p.events.iter().map(|e| e.created_at).collect::<Vec<_>>(), vec![2_000, 3_000]);
    // The other endpoint's consumer is untouched by this one's acknowledgement.
    let last = p.events.last().unwrap().position;
    store.poll_page(poll(&a.id, &ep.id, last, 10)).await.unwrap();
    let o = store.poll_page(poll(&a.id, &other.id, last, 10)).await.unwrap();
    assert_eq!((o.events.len(), o.acknowledged), (3, 0));
}

#[tokio::test]
async fn switching_an_endpoint_to_and_from_poll_holds_and_releases_its_queue() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let mut ep = store.update_endpoint(Endpoint { url: "poll:".into(), ..ep }).await.unwrap();
    store.publish(message(&a.id, "t", None, 1_000), None).await.unwrap();
    assert!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().is_empty());
    ep.url = "http://127.0.0.1:1/".into();
    store.update_endpoint(ep).await.unwrap();
    assert_eq!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn poll_tokens_are_found_by_their_hash_only() {
    let (_d, store, a) = setup!();
    let ep = store.create_endpoint(poll_endpoint(&a.id)).await.unwrap();
    let rec = herald_store::PollToken {
        id: herald_core::ids::TokenId::generate(),
        app_id: a.id.clone(),
        endpoint_id: ep.id.clone(),
        created_at: 1,
    };
    store.create_poll_token(rec.clone(), [7; 32]).await.unwrap();
    assert_eq!(store.find_poll_token([7; 32]).await.unwrap(), Some(rec));
    assert_eq!(store.find_poll_token([8; 32]).await.unwrap(), None);
    // A poll token is not an API token.
    assert_eq!(store.find_token([7; 32]).await.unwrap(), None);
}

#[tokio::test]
async fn a_batching_endpoints_concurrency_cap_counts_requests() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.max_concurrency = Some(2);
    e.options.batch = Some(herald_core::endpoint_options::BatchOptions {
        max_events: 10,
        max_wait_ms: 0,
    });
    store.create_endpoint(e).await.unwrap();
    for i in 0..30 {
        store.publish(message(&a.id, "t", None, 1_000 + i), None).await.unwrap();
    }
    // Two requests of ten: twenty leases at once, not two.
    assert_eq!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().len(), 20);
    assert!(claim(&store, "w", 10_000, 30_000, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_result_that_does_not_count_leaves_the_breaker_alone() {
    let (_d, store, a) = setup!();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    for i in 0..6 {
        store.publish(message(&a.id, "t", None, 1_000 + i), None).await.unwrap();
    }
    let got = claim(&store, "w", 2_000, 30_000, 100).await.unwrap();
    assert_eq!(got.len(), 6);
    // Six failures of one batch: only the first counts, so the breaker stays closed.
    for (i, c) in got.iter().enumerate() {
        let rec = AttemptRecord {
            attempt: attempt(c, 2_100, false),
            next: NextState::RetryAt { at: 3_000, failures: 1 },
            breaker: herald_store::BreakerUse {
                counts: i == 0,
                ..Default::default()
            },
        };
        assert_eq!(store.record_attempt(rec).await.unwrap(), None);
    }
    assert_eq!(claim(&store, "w", 3_000, 30_000, 100).await.unwrap().len(), 6);
}

#[tokio::test]
async fn a_batchs_attempts_recorded_together_move_every_delivery_and_free_the_cap() {
    let (_d, store, a) = setup!();
    let mut e = endpoint(&a.id, None);
    e.max_concurrency = Some(1);
    e.options.batch = Some(herald_core::endpoint_options::BatchOptions {
        max_events: 10,
        max_wait_ms: 0,
    });
    store.create_endpoint(e).await.unwrap();
    for i in 0..25 {
        store.publish(message(&a.id, "t", None, 1_000 + i), None).await.unwrap();
    }
    let first = claim(&store, "w", 2_000, 30_000, 100).await.unwrap();
    assert_eq!(first.len(), 10);
    assert!(claim(&store, "w", 2_000, 30_000, 100).await.unwrap().is_empty());
    let record = |c: &herald_store::Claimed, i: usize, ok: bool| AttemptRecord {
        attempt: attempt(c, 2_100, ok),
        next: if ok {
            NextState::Succeeded
        } else {
            NextState::RetryAt { at: 5_000, failures: 1 }
        },
        breaker: herald_store::BreakerUse {
            counts: i == 0,
            ..Default::default()
        },
    };
    let recs: Vec<_> = first.iter().enumerate().map(|(i, c)| record(c, i, true)).collect();
    assert_eq!(store.record_attempts(recs).await.unwrap(), vec![None; 10]);
    // The cap is free again at once (no lease expiry needed), and no succeeded one comes back.
    let second = claim(&store, "w", 2_200, 30_000, 100).await.unwrap();
    assert_eq!(second.len(), 10);
    assert!(second.iter().all(|c| first.iter().all(|f| f.delivery_id != c.delivery_id)));
    let recs: Vec<_> = second.iter().enumerate().map(|(i, c)| record(c, i, false)).collect();
    assert_eq!(store.record_attempts(recs).await.unwrap().len(), 10);
    // The failed batch waits for its retry time; the last five go first.
    let rest = claim(&store, "w", 3_000, 30_000, 100).await.unwrap();
    assert_eq!(rest.len(), 5);
    let recs: Vec<_> = rest.iter().enumerate().map(|(i, c)| record(c, i, true)).collect();
    store.record_attempts(recs).await.unwrap();
    assert!(claim(&store, "w", 4_999, 30_000, 100).await.unwrap().is_empty());
    let retried = claim(&store, "w", 5_000, 30_000, 100).await.unwrap();
    let mut got: Vec<i64> = retried.iter().map(|c| c.delivery_id).collect();
    let mut want: Vec<i64> = second.iter().map(|c| c.delivery_id).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "every delivery of the failed batch is due again, attempts 1");
    assert!(retried.iter().all(|c| c.attempts == 1 && c.failures == 1));
    // An empty list is no work.
    assert!(store.record_attempts(Vec::new()).await.unwrap().is_empty());
}
