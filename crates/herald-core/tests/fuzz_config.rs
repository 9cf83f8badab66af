//! Property-based fuzzing of the configuration loader (`herald_core::config`).
//!
//! TOML text is generated from a grammar of the known keys with random values of random types
//! (numbers at the edges of `u64`/`i64`, strings, arrays, tables, booleans, dates), plus unknown
//! keys and garbage lines. `Config::from_figment` must answer `Ok` or `Err` with at least one
//! problem, never panic (debug builds also catch integer overflow); and `Config::load` reading
//! the same text from a file in a temporary directory must agree with it.
//!
//! Run long: `HERALD_FUZZ_SECONDS=600 cargo test --release -p herald-core --test fuzz_config
//! -- --nocapture`.

mod fuzz_support;

use herald_core::config::{figment_from_toml, Config, KNOWN_KEYS};
use proptest::prelude::*;
use proptest::sample::select;

const PERSIST: &str = "proptest-regressions/fuzz_config.txt";

fn toml_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "127.0.0.1:8787",
            "[::1]:0",
            "0.0.0.0:65535",
            "nowhere",
            "http://x",
            "https://hooks.example/a",
            "ftp://x",
            "sqlite://x.db",
            "postgres://u@h/db",
            "mysql://x",
            "api",
            "worker",
            "all",
            "text",
            "json",
            "10.0.0.0/8",
            "::/0",
            "bogus",
            "",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "0123456789abcdef",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,40}",
        ".{0,20}",
    ]
    .prop_map(|s| toml_quote(&s))
}

/// A TOML basic string.
fn toml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_number() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "0",
            "1",
            "-1",
            "60",
            "61",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "4294967296",
            "1e400",
            "-0.0",
            "inf",
            "nan",
            "0x7fffffffffffffff",
            "1_000",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| {
            if f.is_finite() {
                format!("{f:?}")
            } else {
                "1.5".into()
            }
        }),
    ]
}

fn toml_value(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        3 => toml_number(),
        3 => toml_string(),
        1 => select(vec!["true", "false", "1979-05-27T07:32:00Z", "07:32:00"]).prop_map(str::to_string),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        4 => leaf,
        1 => prop::collection::vec(toml_value(depth - 1), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec(("[a-z_]{1,8}", toml_value(depth - 1)), 0..4).prop_map(|kv| {
            let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", body.join(", "))
        }),
    ]
    .boxed()
}

fn toml_line() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (select(KNOWN_KEYS.to_vec()), toml_value(2)).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => ("[a-z_]{1,12}", toml_value(1)).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[a-z_]{1,12}".prop_map(|t| format!("[{t}]")),
        1 => "[ -~]{0,30}",
        1 => Just("# comment".to_string()),
    ]
}

fn toml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(toml_line(), 0..14).prop_map(|l| l.join("\n"))
}

fn check_text(text: &str) -> Result<(), String> {
    match Config::from_figment(&figment_from_toml(text)) {
        Ok(c) => {
            // A valid configuration answers its derived values.
            let _ = (c.public_url(), c.sqlite_path(), c.postgres_url());
            let _ = format!("{c:?}");
            Ok(())
        }
        Err(e) => {
            if e.0.is_empty() {
                return Err("an Err without any problem".into());
            }
            let _ = e.to_string();
            Ok(())
        }
    }
}

#[test]
fn fuzz_config_from_toml_never_panics() {
    fuzz_support::run(
        "config::Config::from_figment (grammar TOML)",
        PERSIST,
        256,
        toml_text(),
        |text| {
            check_text(&text).map_err(TestCaseError::fail)?;
            Ok(())
        },
    );
}

#[test]
fn fuzz_config_from_arbitrary_text_never_panics() {
    fuzz_support::run(
        "config::Config::from_figment (arbitrary text)",
        PERSIST,
        256,
        prop_oneof![".{0,200}", "[ -~\n]{0,200}"],
        |text| {
            check_text(&text).map_err(TestCaseError::fail)?;
            Ok(())
        },
    );
}

#[test]
fn fuzz_config_load_from_a_file_agrees() {
    // `Config::load` reads the `HERALD_*` environment too, where the fuzz knobs themselves
    // (`HERALD_FUZZ_CASES`, `HERALD_FUZZ_SECONDS`) are unknown keys `fuzz_*`; apart from those
    // the file alone decides.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("herald.toml");
    fuzz_support::run(
        "config::Config::load (file)",
        PERSIST,
        64,
        toml_text(),
        |text| {
            std::fs::write(&path, &text).expect("write config");
            let file_problems: Vec<String> = match Config::load(Some(&path)) {
                Ok(_) => Vec::new(),
                Err(e) => {
                    e.0.into_iter()
                        .filter(|p| !p.starts_with("`fuzz_"))
                        .collect()
                }
            };
            let direct = Config::from_figment(&figment_from_toml(&text));
            prop_assert_eq!(file_problems.is_empty(), direct.is_ok(), "{}", text);
            Ok(())
        },
    );
}

/// Found by `fuzz_config_from_toml_never_panics`: `lease_seconds` far above its 1–60 range
/// overflowed `lease_seconds * 1000` in the lease-vs-timeout check (a panic in debug builds, a
/// wrapped comparison in release) instead of being reported.
#[test]
fn fuzz_found_lease_seconds_overflow() {
    for text in [
        // The minimized input: the smallest value whose * 1000 overflows u64.
        "lease_seconds = 18446744073709552",
        "lease_seconds = 9223372036854775807",
        "lease_seconds = 18446744073709551",
    ] {
        let err = Config::from_figment(&figment_from_toml(text)).unwrap_err();
        assert!(err.0.iter().any(|p| p.contains("`lease_seconds`")), "{err}");
    }
}
