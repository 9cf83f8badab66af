// The reconciliation part of the storage suite (`source_poll`: schedule, lease, cursor,
// outcome), included after `body.rs` by both backends' suites; it uses that file's helpers.

fn poll_claim(owner: &str, now: i64) -> herald_store::PollClaim {
    herald_store::PollClaim {
        owner: owner.into(),
        now,
        lease_ms: 60_000,
        limit: 10,
    }
}

#[tokio::test]
async fn poll_schedule_lease_and_cursor_persist() {
    let (_d, store, a) = setup!();
    let s = store.create_source(source(&a.id, 1_000)).await.unwrap();
    assert!(store.poll_state(&s.id).await.unwrap().is_none());
    store.schedule_poll(&s.id, &a.id, Some(2_000)).await.unwrap();
    assert!(store.claim_polls(poll_claim("n1", 1_500)).await.unwrap().is_empty(), "not due yet");

    let got = store.claim_polls(poll_claim("n1", 2_000)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source_id, s.id);
    assert_eq!(got[0].cursor, None);
    // Leased: another node gets nothing until the lease ends.
    assert!(store.claim_polls(poll_claim("n2", 3_000)).await.unwrap().is_empty());

    store
        .finish_poll(herald_store::PollFinish {
            source_id: s.id.clone(),
            owner: "n1".into(),
            now: 3_000,
            next_at: 4_000,
            claimed_next_at: 2_000,
            result: Ok(Some("evt_9".into())),
        })
        .await
        .unwrap();
    let st = store.poll_state(&s.id).await.unwrap().unwrap();
    assert_eq!(st.cursor.as_deref(), Some("evt_9"));
    assert_eq!(st.last_success_at, Some(3_000));
    assert_eq!(st.next_at, 4_000);

    // A failure keeps the cursor and counts; a finish by a node without the lease is ignored.
    let got = store.claim_polls(poll_claim("n2", 4_000)).await.unwrap();
    assert_eq!(got[0].cursor.as_deref(), Some("evt_9"));
    let fail = |owner: &str| herald_store::PollFinish {
        source_id: s.id.clone(),
        owner: owner.into(),
        now: 5_000,
        next_at: 15_000,
        claimed_next_at: 4_000,
        result: Err("provider answered 500".into()),
    };
    store.finish_poll(fail("n1")).await.unwrap();
    assert_eq!(store.poll_state(&s.id).await.unwrap().unwrap().failures, 0);
    store.finish_poll(fail("n2")).await.unwrap();
    let st = store.poll_state(&s.id).await.unwrap().unwrap();
    assert_eq!((st.failures, st.cursor.as_deref()), (1, Some("evt_9")));
    assert_eq!(st.last_error.as_deref(), Some("provider answered 500"));

    // An expired lease frees the source; a new schedule clears the cursor.
    store.claim_polls(poll_claim("n3", 15_000)).await.unwrap();
    assert_eq!(store.claim_polls(poll_claim("n4", 80_000)).await.unwrap().len(), 1);
    store.schedule_poll(&s.id, &a.id, Some(1)).await.unwrap();
    assert_eq!(store.poll_state(&s.id).await.unwrap().unwrap().cursor, None);

    // "Poll now" during a run is not lost when the run finishes.
    let got = store.claim_polls(poll_claim("n5", 200_000)).await.unwrap();
    assert_eq!(got.len(), 1);
    store.schedule_poll(&s.id, &a.id, Some(200_500)).await.unwrap();
    store
        .finish_poll(herald_store::PollFinish {
            source_id: s.id.clone(),
            owner: "n5".into(),
            now: 201_000,
            next_at: 900_000,
            claimed_next_at: got[0].next_at,
            result: Ok(None),
        })
        .await
        .unwrap();
    assert_eq!(store.poll_state(&s.id).await.unwrap().unwrap().next_at, 200_500);

    // Deleting the source (or unscheduling it) removes its row.
    store.delete_source(&a.id, &s.id).await.unwrap();
    assert!(store.poll_state(&s.id).await.unwrap().is_none());
    store.schedule_poll(&s.id, &a.id, None).await.unwrap();
}

#[tokio::test]
async fn poll_headers_round_trip() {
    let (_d, store, a) = setup!();
    let mut src = source(&a.id, 1_000);
    src.options.poll = Some(
        serde_json::from_value(serde_json::json!({
            "preset": "stripe",
            "headers": {"Authorization": "Bearer sk_test_1"}
        }))
        .unwrap(),
    );
    let s = store.create_source(src).await.unwrap();
    let back = store.get_source(&a.id, &s.id.0).await.unwrap().unwrap();
    let poll = back.options.poll.unwrap();
    assert_eq!(poll.headers["Authorization"], "Bearer sk_test_1");
}
