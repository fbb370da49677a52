//! Whatever a user writes, the config parser and the JSON-lines reader
//! answer with a value or an error, never a panic; records round-trip.
//! Whatever a broker holds, a consumed record becomes the plugin's message
//! or a dead letter, its bytes kept exactly.

use std::path::Path;

use proptest::prelude::*;
use weir::cli::jsonl;
use weir::config::Config;
use weir::delivery::records::{HEADER_NOT_UTF8, Input, dead_letter_unfit};

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "x".to_string())
}

/// Fragments a config is made of, so generated files get past the TOML
/// parser often enough to reach the checks behind it.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[kafka]".to_string()),
        Just("[[pipeline]]".to_string()),
        Just("[pipeline.config]".to_string()),
        Just("[pipeline.limits]".to_string()),
        Just("[pipeline.on_failure]".to_string()),
        Just("[pipeline.breaker]".to_string()),
        Just("[kafka.properties]".to_string()),
        Just("[kafka.consumer]".to_string()),
        Just("[kafka.producer]".to_string()),
        "(brokers|name|input|output|dead_letter|group|plugin|timeout|memory|fuel|retries|then|window|failures|routes|max_in_flight|shutdown_timeout) = (\"[a-z${}:@./-]{0,12}\"|[0-9]{1,20}|-1|true|\\[\\]|\\{\\})",
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_config_parser_never_panics(text in config_text()) {
        let _ = Config::parse(Path::new("/nonexistent/weir.toml"), &text, &env);
    }

    #[test]
    fn the_config_parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = Config::parse(Path::new("weir.toml"), &text, &env);
    }

    #[test]
    fn durations_and_sizes_never_panic(text in "[0-9.]{0,30}(ms|s|m|us|KiB|MiB|GiB|B|)") {
        let _ = weir::config::parse_duration(&text);
        let _ = weir::config::parse_size(&text);
    }

    #[test]
    fn the_line_reader_never_panics(line in "\\PC{0,120}") {
        let _ = jsonl::parse_line(&line);
    }

    #[test]
    fn the_line_reader_never_panics_on_json_shapes(
        key in "(\"key\"|\"value\"|\"headers\"|\"topic\"|\"partition\"|\"timestamp\"|\"x\")",
        value in "(null|1|-1|99999999999999999999|\"s\"|\\{\"\\$base64\":\"[A-Za-z0-9+/=!]{0,8}\"\\}|\\[\\[\"h\",null\\]\\]|\\[1\\]|\\{\\})",
    ) {
        let _ = jsonl::parse_line(&format!("{{{key}:{value}}}"));
    }

    #[test]
    fn bytes_round_trip(
        key in prop::option::of(prop::collection::vec(any::<u8>(), 0..32)),
        value in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        headers in prop::collection::vec(("[a-z.]{1,8}", prop::option::of(prop::collection::vec(any::<u8>(), 0..8))), 0..4),
    ) {
        let line = serde_json::json!({
            "key": jsonl::encode_bytes(key.as_deref()),
            "value": jsonl::encode_bytes(value.as_deref()),
            "headers": jsonl::encode_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_deref()))),
        });
        let record = jsonl::parse_line(&line.to_string()).unwrap();
        prop_assert_eq!(record.key, key);
        prop_assert_eq!(record.value, value);
        let named: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            headers.into_iter().map(|(k, v)| (k.into_bytes(), v)).collect();
        prop_assert_eq!(record.headers, named);
    }

    #[test]
    fn a_consumed_record_becomes_a_message_or_a_dead_letter_byte_for_byte(
        key in prop::option::of(prop::collection::vec(any::<u8>(), 0..32)),
        value in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        headers in prop::collection::vec((
            prop_oneof![prop::collection::vec(any::<u8>(), 0..12), "[a-z.]{0,8}".prop_map(String::into_bytes)],
            prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        ), 0..40),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let input = Input {
            topic: "in".into(),
            partition: 3,
            offset: 9,
            timestamp,
            key: key.clone(),
            value: value.clone(),
            headers: headers.clone(),
        };
        let all_utf8 = headers.iter().all(|(k, _)| std::str::from_utf8(k).is_ok());
        match input.clone().into_message() {
            Ok(m) => {
                prop_assert!(all_utf8);
                prop_assert_eq!(m.key, key);
                prop_assert_eq!(m.value, value);
                prop_assert_eq!(m.timestamp, timestamp);
                let back: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                    m.headers.into_iter().map(|h| (h.key.into_bytes(), h.value)).collect();
                prop_assert_eq!(back, headers);
            }
            Err(unfit) => {
                prop_assert!(!all_utf8);
                prop_assert_eq!(unfit.kind, HEADER_NOT_UTF8);
                prop_assert_eq!(&unfit.input, &input);
                let spec = pipeline();
                let dead = dead_letter_unfit(&spec, "p", unfit);
                prop_assert_eq!(dead.topic, spec.dead_letter);
                prop_assert_eq!(dead.key, key);
                prop_assert_eq!(dead.value, value);
                prop_assert_eq!(&dead.headers[..headers.len()], &headers[..]);
                let kind = dead.headers[headers.len()].clone();
                prop_assert_eq!(kind, (b"weir.error.kind".to_vec(), Some(HEADER_NOT_UTF8.as_bytes().to_vec())));
            }
        }
    }
}

/// A pipeline from the smallest config there is.
fn pipeline() -> weir::config::Pipeline {
    let text = "[kafka]\nbrokers = \"b:9092\"\n[[pipeline]]\nname = \"p\"\ninput = \"in\"\noutput = \"out\"\ndead_letter = \"dlq\"\nplugin = \"never_panics.rs\"\n";
    let config = Config::parse(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/weir.toml"),
        text,
        &env,
    )
    .expect("the smallest config parses");
    config.pipelines.into_iter().next().expect("one pipeline")
}
