// Routing options in the storage suite: the options document round-trips, and a publish's
// fan-out applies each endpoint's content filter (recompiled when the filter changes).
// Included after `body.rs`, whose helpers it uses.

fn with_filter(app: &AppId, filter: serde_json::Value) -> Endpoint {
    let mut e = endpoint(app, None);
    e.options.filter = Some(filter);
    e.options.timeout_ms = Some(1500);
    e
}

fn payload(mut m: Message, p: &str) -> Message {
    m.payload = Some(p.into());
    m
}

#[tokio::test]
async fn routing_options_round_trip_and_filters_apply_at_fan_out() {
    let (_d, store, a) = setup!();
    let f = serde_json::json!({"data.amount": {"$gte": 100}});
    let filtered = store.create_endpoint(with_filter(&a.id, f.clone())).await.unwrap();
    let got = store
        .get_endpoint(&a.id, filtered.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.options.filter, Some(f));
    assert_eq!(got.options.timeout_ms, Some(1500));
    let all = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();

    let low = payload(message(&a.id, "t", None, 10), r#"{"data": {"amount": 5}}"#);
    let p = store.publish(low, None).await.unwrap();
    assert_eq!(p.deliveries, 1, "only the unfiltered endpoint");
    let high = payload(message(&a.id, "t", None, 11), r#"{"data": {"amount": 500}}"#);
    assert_eq!(store.publish(high, None).await.unwrap().deliveries, 2);

    // A changed filter applies to the next publish.
    let mut changed = got.clone();
    changed.options.filter = Some(serde_json::json!({"data.amount": {"$lt": 10}}));
    changed.updated_at = 20;
    store.update_endpoint(changed).await.unwrap();
    let low = payload(message(&a.id, "t", None, 21), r#"{"data": {"amount": 5}}"#);
    assert_eq!(store.publish(low, None).await.unwrap().deliveries, 2);
    let stats = store.endpoint_stats(&filtered.id, None, None).await.unwrap();
    assert_eq!(stats.pending, 2, "the filtered-out message is not counted");

    // A publish naming the endpoint (send-example) is not filtered.
    let named = payload(message(&a.id, "t", None, 30), r#"{"other": 1}"#);
    assert_eq!(store.publish(named, Some(filtered.id.clone())).await.unwrap().deliveries, 1);
    // A payload that is not a JSON object only reaches endpoints without a filter.
    let odd = payload(message(&a.id, "t", None, 31), "not json");
    assert_eq!(store.publish(odd, None).await.unwrap().deliveries, 1);
    let _ = all;
}
