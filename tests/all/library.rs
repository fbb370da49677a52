//! The library API of the origin on a real broker: lazy proxies, a producer
//! that validates before it sends, a consumer that retrieves one message.

use std::path::Path;

use rdkafka::producer::Producer as _;
use serde_json::json;
use weir::client::{Container, OutMessage, ProduceError};
use weir::config::{Kafka, Limits};
use weir::kafka::proxy::{ProducerProxy, producer_config};
use weir::plugin::{LogTags, Runtime};

use crate::broker::Broker;
use crate::fixtures;
use crate::support::unique;

const SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;

fn kafka(broker: &Broker) -> Kafka {
    Kafka {
        brokers: broker.bootstrap.clone(),
        ..Kafka::default()
    }
}

#[test]
fn a_proxy_connects_on_first_use_keeps_the_connection_and_drops_it_on_disconnect() {
    let broker = Broker::shared();
    let proxy = ProducerProxy::new(producer_config(&kafka(&broker), &broker.bootstrap));
    assert!(!proxy.is_connected(), "nothing connects before first use");
    let first = proxy.connect().unwrap();
    assert!(proxy.is_connected());
    let again = proxy.connect().unwrap();
    assert!(
        std::ptr::eq(first.client().native_ptr(), again.client().native_ptr()),
        "the connection is kept"
    );
    proxy.disconnect().unwrap();
    assert!(!proxy.is_connected());
    let fresh = proxy.connect().unwrap();
    assert!(
        !std::ptr::eq(first.client().native_ptr(), fresh.client().native_ptr()),
        "a new one after disconnect"
    );
}

#[test]
fn the_producer_validates_before_it_sends_and_the_consumer_retrieves_one_at_a_time() {
    let broker = Broker::shared();
    let topic = unique("lib");
    broker.create_topics(1, &[&topic]);
    let runtime = Runtime::new().unwrap();
    let plugin = runtime.load(Path::new(fixtures::JSON_SCHEMA)).unwrap();
    let validator = plugin
        .instantiate(
            &[("schema".into(), SCHEMA.into())],
            &Limits::default(),
            LogTags::default(),
        )
        .unwrap();
    let container = Container::new(kafka(&broker));

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut producer = container.producer(&topic, Some(validator)).unwrap();
        producer
            .produce(OutMessage::value(r#"{"id":1,"text":"Hello 1"}"#))
            .await
            .unwrap();
        let rejected = producer.produce(OutMessage::value(r#"{"id":"two"}"#)).await;
        assert!(
            matches!(
                rejected,
                Err(ProduceError::Rejected {
                    kind: "invalid",
                    ..
                })
            ),
            "{rejected:?}"
        );
        producer
            .produce(OutMessage::value(r#"{"id":3,"text":"Hello 3"}"#))
            .await
            .unwrap();
        producer.disconnect().unwrap();

        let consumer = container.consumer(&topic, &unique("group"));
        let first = consumer.retrieve().await.unwrap();
        let second = consumer.retrieve().await.unwrap();
        assert_eq!(
            first.value.as_deref(),
            Some(br#"{"id":1,"text":"Hello 1"}"#.as_slice())
        );
        assert_eq!(
            second.value.as_deref(),
            Some(br#"{"id":3,"text":"Hello 3"}"#.as_slice())
        );
        consumer.disconnect().unwrap();
    });

    // The independent client sees exactly the two valid messages.
    let seen = broker.consume(
        &[&topic],
        2,
        std::time::Duration::from_secs(60),
        Some(std::time::Duration::from_secs(2)),
    );
    let values: Vec<_> = seen.iter().map(|r| r["value"].clone()).collect();
    assert_eq!(
        values,
        vec![
            json!(r#"{"id":1,"text":"Hello 1"}"#),
            json!(r#"{"id":3,"text":"Hello 3"}"#)
        ]
    );
}

#[test]
fn a_transformer_is_refused_as_a_producers_validator() {
    let runtime = Runtime::new().unwrap();
    let plugin = runtime.load(Path::new(fixtures::ECHO)).unwrap();
    let echo = plugin
        .instantiate(&[], &Limits::default(), LogTags::default())
        .unwrap();
    let container = Container::new(Kafka {
        brokers: "127.0.0.1:1".into(),
        ..Kafka::default()
    });
    assert!(matches!(
        container.producer("t", Some(echo)),
        Err(ProduceError::NotAValidator(_))
    ));
}

#[test]
fn a_send_dropped_mid_validation_keeps_the_validator_for_the_next_one() {
    let runtime = Runtime::new().unwrap();
    let plugin = runtime.load(Path::new(fixtures::REJECT)).unwrap();
    let reject = plugin
        .instantiate(&[], &Limits::default(), LogTags::default())
        .unwrap();
    // Nothing listens there: a message that got past validation would wait
    // for the send timeout instead of coming back rejected.
    let container = Container::new(Kafka {
        brokers: "127.0.0.1:1".into(),
        ..Kafka::default()
    });
    let mut producer = container.producer("t", Some(reject)).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        // One poll starts the validation, then the send is given up while
        // the call runs. A call done within that poll is a send that ended
        // (refused): try again.
        let mut dropped = false;
        for _ in 0..100 {
            tokio::select! {
                biased;
                _ = producer.produce(OutMessage::value("first")) => {}
                _ = std::future::ready(()) => {
                    dropped = true;
                    break;
                }
            }
        }
        assert!(dropped, "every validation ended within one poll");
        for value in ["second", "third"] {
            let sent = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                producer.produce(OutMessage::value(value)),
            )
            .await
            .expect("refused at once, not sent");
            assert!(
                matches!(
                    sent,
                    Err(ProduceError::Rejected {
                        kind: "invalid",
                        ..
                    })
                ),
                "{sent:?}"
            );
        }
    });
}
