// The console's store operations (`ConsoleStore`), on every backend: rejecting a quarantined
// request, the name search with wildcards typed as text, messages by delivery status, and the
// health figures. Included by `storage_sqlite.rs` and `storage_postgres.rs`.

#[allow(unused_imports)]
use herald_store::ConsoleStore as _;

#[tokio::test]
async fn a_quarantined_request_is_rejected_once_and_then_never_released() {
    let (_d, store, a) = setup!();
    let s = store.create_source(source(&a.id, 10)).await.unwrap();
    let q = log_quarantined(&store, &s).await;
    let mut accepted = inbound(&s, 21);
    accepted.status = herald_core::model::InboundStatus::Accepted;
    store.log_inbound(accepted.clone()).await.unwrap();
    store
        .reject_inbound(&s.id, &q.id, "rejected by ops at noon".into())
        .await
        .unwrap();
    for id in [&q.id, &accepted.id] {
        assert!(matches!(
            store.reject_inbound(&s.id, id, "again".into()).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store
            .release_inbound(&s.id, &q.id, message(&a.id, "push", None, 30))
            .await,
        Err(StoreError::NotFound)
    ));
    let got = store.get_inbound(&s.id, &q.id).await.unwrap().unwrap();
    assert_eq!(got.status, herald_core::model::InboundStatus::Rejected);
    assert_eq!(got.reason.as_deref(), Some("rejected by ops at noon"));
    assert_eq!(got.body, None);
    let page = ListQuery { limit: 5, ..Default::default() };
    let msgs = store
        .list_messages(&a.id, &Default::default(), &page)
        .await
        .unwrap();
    assert!(msgs.items.is_empty(), "nothing was published");
}

#[tokio::test]
async fn apps_are_searched_by_name_with_wildcards_as_text() {
    let (_d, store, _a) = setup!();
    let mut ids = std::collections::HashMap::new();
    for (i, name) in ["Alpha Shop", "beta_shop", "betaXshop", "50% off", "O'Brien", "a\\b"]
        .into_iter()
        .enumerate()
    {
        let mut x = app(i as i64);
        x.name = name.into();
        x.uid = Some(format!("uid-{i}"));
        ids.insert(name, store.create_app(x).await.unwrap().id);
    }
    let q = ListQuery { limit: 10, ..Default::default() };
    let names = |p: herald_store::Page<Application>| {
        let mut n: Vec<String> = p.items.into_iter().map(|a| a.name).collect();
        n.sort();
        n
    };
    let search = |t: &'static str| {
        let (store, q) = (store.clone(), q.clone());
        async move { names(store.search_apps(t, &q).await.unwrap()) }
    };
    assert_eq!(search("SHOP").await, ["Alpha Shop", "betaXshop", "beta_shop"]);
    assert_eq!(search("a_s").await, ["beta_shop"]);
    assert_eq!(search("%").await, ["50% off"]);
    assert_eq!(search("'b").await, ["O'Brien"]);
    assert_eq!(search("\\").await, ["a\\b"]);
    assert_eq!(search("uid-1").await, ["beta_shop"], "a whole uid matches");
    assert!(search("' OR '1'='1").await.is_empty());
    assert!(search("").await.len() >= 6, "empty text matches every name");
    let long = "x".repeat(100_000);
    assert!(store.search_apps(&long, &q).await.unwrap().items.is_empty());
    // Paged by ID like the list.
    let one = ListQuery { limit: 1, ..Default::default() };
    let first = store.search_apps("shop", &one).await.unwrap();
    assert!(first.has_more);
    let next = ListQuery {
        limit: 5,
        iterator: Some(first.items[0].id.0.clone()),
        ..Default::default()
    };
    assert_eq!(store.search_apps("shop", &next).await.unwrap().items.len(), 2);
    assert!(ids.contains_key("50% off"));
}

#[tokio::test]
async fn messages_are_listed_by_delivery_status_once_each() {
    let (_d, store, a) = setup!();
    let e1 = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let e2 = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let mut msgs = vec![];
    for i in 0..4 {
        let p = store
            .publish(message(&a.id, if i % 2 == 0 { "even" } else { "odd" }, None, 100 + i), None)
            .await
            .unwrap();
        msgs.push(p.message.id);
    }
    // Every message waits at both endpoints: listed once each, newest first.
    let q = ListQuery { limit: 10, descending: true, ..Default::default() };
    let by = |s: DeliveryStatus, types: Option<Vec<String>>| {
        let (store, a, q) = (store.clone(), a.id.clone(), q.clone());
        async move {
            let f = herald_store::MessageFilter { channel: None, event_types: types };
            store
                .list_messages_by_status(&a, s, &f, &q)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    let mut newest_first = msgs.clone();
    newest_first.reverse();
    assert_eq!(by(DeliveryStatus::Pending, None).await, newest_first);
    assert!(by(DeliveryStatus::Fail, None).await.is_empty());
    // Deliver everything: the first message fails at e1, the rest succeed.
    let claimed = claim(&store, "n", 1_000, 60_000, 100).await.unwrap();
    assert_eq!(claimed.len(), 8);
    for c in &claimed {
        let ok = !(c.msg_id == msgs[0] && c.endpoint_id == e1.id);
        store
            .record_attempt(AttemptRecord {
                breaker: Default::default(),
                attempt: attempt(c, 1_000, ok),
                next: if ok { NextState::Succeeded } else { NextState::Failed { disable_endpoint: false } },
            })
            .await
            .unwrap();
    }
    assert_eq!(by(DeliveryStatus::Fail, None).await, vec![msgs[0].clone()]);
    assert_eq!(by(DeliveryStatus::Success, None).await, newest_first, "e2 succeeded for all");
    assert!(by(DeliveryStatus::Pending, None).await.is_empty());
    assert_eq!(
        by(DeliveryStatus::Success, Some(vec!["odd".into()])).await,
        vec![msgs[3].clone(), msgs[1].clone()]
    );
    // Keyset pages.
    let two = ListQuery { limit: 2, descending: true, ..Default::default() };
    let f = herald_store::MessageFilter::default();
    let p1 = store
        .list_messages_by_status(&a.id, DeliveryStatus::Success, &f, &two)
        .await
        .unwrap();
    assert!(p1.has_more);
    let p2 = store
        .list_messages_by_status(
            &a.id,
            DeliveryStatus::Success,
            &f,
            &ListQuery { iterator: Some(p1.items[1].id.0.clone()), ..two },
        )
        .await
        .unwrap();
    assert_eq!(p2.items.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![msgs[1].clone(), msgs[0].clone()]);
    // Another application sees none of it.
    let other = store.create_app(app(5)).await.unwrap();
    assert!(store
        .list_messages_by_status(&other.id, DeliveryStatus::Success, &f, &q)
        .await
        .unwrap()
        .items
        .is_empty());
    let _ = e2;
}

#[tokio::test]
async fn the_last_hours_attempts_and_open_breakers_are_counted() {
    let (_d, store, a) = setup!();
    assert_eq!(store.attempt_rate(0).await.unwrap().attempts, 0);
    assert!(store.open_breakers(10).await.unwrap().is_empty());
    let mut e = endpoint(&a.id, None);
    e.max_concurrency = Some(1);
    let e = store.create_endpoint(e).await.unwrap();
    for i in 0..6 {
        store.publish(message(&a.id, "a", None, 100 + i), None).await.unwrap();
    }
    let mut now = 1_000;
    for i in 0..5 {
        let c = claim(&store, "n", now, 60_000, 10).await.unwrap().remove(0);
        store
            .record_attempt(AttemptRecord {
                breaker: Default::default(),
                attempt: attempt(&c, now, i == 0),
                next: if i == 0 {
                    NextState::Succeeded
                } else {
                    NextState::RetryAt { at: now + 3_600_000, failures: 1 }
                },
            })
            .await
            .unwrap();
        now += 10;
    }
    let r = store.attempt_rate(500).await.unwrap();
    assert_eq!((r.attempts, r.failed, r.capped), (5, 4, false));
    assert_eq!(r.oldest, Some(1_000));
    assert_eq!(store.attempt_rate(1_025).await.unwrap().attempts, 2);
    // Four failures in a row do not open the breaker yet; a fifth does.
    let c = claim(&store, "n", now, 60_000, 10).await.unwrap().remove(0);
    store
        .record_attempt(AttemptRecord {
            breaker: Default::default(),
            attempt: attempt(&c, now, false),
            next: NextState::RetryAt { at: now + 3_600_000, failures: 1 },
        })
        .await
        .unwrap();
    let open = store.open_breakers(10).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].endpoint_id, e.id);
    assert_eq!(open[0].app_id, a.id);
    assert_eq!(open[0].state, herald_core::breaker::BreakerState::Open);
    assert!(store.open_breakers(0).await.unwrap().is_empty());
}
