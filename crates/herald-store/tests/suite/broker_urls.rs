// Broker endpoint URLs carry credentials (destinations.md): sealed at rest with the store's
// key, readable again through the store, rekeyed with the signing secrets. Included by both
// backends' harnesses, like `body.rs`.

#[tokio::test]
async fn broker_url_credentials_are_sealed_at_rest() {
    use herald_core::crypto::SecretBox;
    let (ctx, _plain, a) = setup!();
    let key = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let store = reopen_keyed(&ctx, key.clone()).await;
    let url = "amqp://herald:pa%2Fss-w0rd@broker:5672/%2f?exchange=events&routingKey=inv";
    let mut e = endpoint(&a.id, None);
    e.url = url.into();
    let e = store.create_endpoint(e).await.unwrap();
    assert_eq!(e.url, url, "the caller gets the URL it stored");
    let got = store.get_endpoint(&a.id, e.id.as_str()).await.unwrap().unwrap();
    assert_eq!(got.url, url);
    // Read without the key, the row shows what is at rest: no password.
    let raw = reopen(&ctx).await;
    let at_rest = raw.get_endpoint(&a.id, e.id.as_str()).await.unwrap().unwrap().url;
    assert!(!at_rest.contains("pa%2Fss-w0rd"), "{at_rest}");
    assert!(at_rest.starts_with("amqp://herald:sealed."), "{at_rest}");
    assert!(at_rest.ends_with("@broker:5672/%2f?exchange=events&routingKey=inv"));
    // Updating keeps it sealed; HTTP endpoints are untouched.
    let mut changed = got.clone();
    changed.url = url.replace("inv", "inv2");
    store.update_endpoint(changed).await.unwrap();
    let http = store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    let raw_http = raw.get_endpoint(&a.id, http.id.as_str()).await.unwrap().unwrap();
    assert_eq!(raw_http.url, "http://127.0.0.1:1/");
    // A rekey re-seals the URL under the new key.
    let new = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    store.rekey(new.clone()).await.unwrap();
    let again = reopen_keyed(&ctx, new).await;
    let got = again.get_endpoint(&a.id, e.id.as_str()).await.unwrap().unwrap();
    assert_eq!(got.url, url.replace("inv", "inv2"));
    // The deliveries' loader hands the engine the usable URL.
    let raw_after = reopen(&ctx).await.get_endpoint(&a.id, e.id.as_str()).await.unwrap().unwrap();
    assert_ne!(raw_after.url, at_rest, "sealed under the new key");
    assert!(!raw_after.url.contains("pa%2Fss-w0rd"));
}
