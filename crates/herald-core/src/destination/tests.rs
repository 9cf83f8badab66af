use super::*;

const ALL: &[BrokerKind] = &[BrokerKind::Amqp, BrokerKind::Redis, BrokerKind::Nats];

fn open() -> EgressPolicy {
    EgressPolicy {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..Default::default()
    }
}

#[test]
fn each_scheme_is_refused_until_enabled() {
    for (url, kind) in [
        ("amqp://h/v?exchange=e&routingKey=k", "amqp"),
        ("amqps://h/v?routingKey=q", "amqp"),
        ("redis://h?stream=s", "redis"),
        ("rediss://h?stream=s", "redis"),
        ("nats://h?subject=a.b", "nats"),
    ] {
        assert_eq!(
            validate(&open(), &[], url),
            Err(DestinationError::NotEnabled(kind))
        );
        assert!(validate(&open(), ALL, url).is_ok(), "{url}");
    }
    assert!(validate(&open(), ALL, "http://h/").is_err());
    assert!(validate(&open(), ALL, "kafka://h/").is_err());
}

#[test]
fn targets_carry_the_query_and_connect_without_it() {
    let t = validate(
        &open(),
        ALL,
        "amqp://u:p@127.0.0.1:5672/%2f?exchange=events&routingKey=invoice",
    )
    .unwrap();
    assert_eq!(t.exchange, "events");
    assert_eq!(t.routing_key, "invoice");
    assert_eq!(t.connect_url, "amqp://u:p@127.0.0.1:5672/%2f");
    let t = validate(&open(), ALL, "redis://:pw@h:6379/3?stream=ev&maxLen=100").unwrap();
    assert_eq!((t.stream.as_str(), t.max_len), ("ev", Some(100)));
    let t = validate(&open(), ALL, "nats://h:4222?subject=events.invoice").unwrap();
    assert_eq!(t.subject, "events.invoice");
}

#[test]
fn malformed_broker_urls_are_refused() {
    for bad in [
        "redis://",
        "redis://?stream=s",
        "redis://h:notaport?stream=s",
        "redis://h",
        "redis://h/abc?stream=s",
        "redis://h?stream=s&maxLen=0",
        "redis://h?stream=s&maxLen=-3",
        "redis://h?stream=s&stream=t",
        "redis://h?stream=s&maxlen=3",
        "redis://h?stream=s#frag",
        "amqp://h/v",
        "amqp://h/v?exchange=e&bogus=1",
        "nats://h",
        "nats://h?subject=a.*",
        "nats://h?subject=a..b",
        "nats://h?subject=a%20b",
        "nats://h?subject=>",
        "nats://h/path?subject=a",
        "redis://10.0.0.1?stream=s",
        "nats://[::1]?subject=a",
        "redis://167772161?stream=s",
        "nats://0xa.1?subject=a",
        "amqp://[::ffff:10.0.0.1]/?routingKey=q",
    ] {
        assert!(validate(&open(), ALL, bad).is_err(), "{bad} was accepted");
    }
    let long = format!("redis://h?stream={}", "s".repeat(MAX_URL_LEN));
    assert!(validate(&open(), ALL, &long).is_err());
    let ctrl = "redis://h?stream=a%0Ab";
    assert!(validate(&open(), ALL, ctrl).is_err());
}

#[test]
fn redaction_hides_passwords_and_bare_tokens() {
    assert_eq!(
        redact("amqp://user:pa%40ss@h:5672/v?exchange=e"),
        "amqp://user:***@h:5672/v?exchange=e"
    );
    assert_eq!(
        redact("redis://:pw@h/0?stream=s"),
        "redis://:***@h/0?stream=s"
    );
    assert_eq!(redact("nats://tok3n@h?subject=a"), "nats://***@h?subject=a");
    assert_eq!(redact("nats://h?subject=a@b"), "nats://h?subject=a@b");
    assert_eq!(redact("https://h/x"), "https://h/x");
    // A password holding `@` before the host (unencoded) is redacted as a whole.
    assert_eq!(
        redact("redis://u:a@b@h?stream=s"),
        "redis://u:***@h?stream=s"
    );
    assert!(is_redacted("amqp://u:***@h?routingKey=q"));
    assert_eq!(
        with_secret("amqp://u:***@h?routingKey=q", "real"),
        "amqp://u:real@h?routingKey=q"
    );
}

#[test]
fn sealing_round_trips_and_hides_the_secret() {
    let raw = "amqp://user:s3cr%2Ft@h/v?routingKey=q";
    let sealed = seal_secret(raw, |s| {
        format!("enc:{}", s.chars().rev().collect::<String>())
    });
    assert!(!sealed.contains("s3cr"), "{sealed}");
    assert!(sealed.starts_with("amqp://user:sealed."));
    assert_eq!(seal_secret(&sealed, |_| unreachable!()), sealed);
    let opened = unseal_secret(
        &sealed,
        |s| Ok::<_, ()>(s.trim_start_matches("enc:").chars().rev().collect()),
        (),
    );
    assert_eq!(opened.as_deref(), Ok(raw));
    assert_eq!(
        unseal_secret("redis://h?stream=s", |_| Err(()), ()).as_deref(),
        Ok("redis://h?stream=s")
    );
    assert_eq!(
        unseal_secret("redis://:sealed.zz@h?stream=s", |_| Ok(String::new()), 7),
        Err(7)
    );
    assert_eq!(redact(&sealed), "amqp://user:***@h/v?routingKey=q");
}
