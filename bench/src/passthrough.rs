//! The limit of the Kafka client: a plain rdkafka consume → produce loop
//! with weir's at-least-once shape and client settings, and no plugin.
//!
//! As weir: `enable.auto.offset.store=false`, acks=all, a FIFO window of at
//! most `max_in_flight` records awaiting acknowledgement, an offset stored
//! only when its record and every one before it are acknowledged, stored
//! offsets committed in the background each second and synchronously on
//! SIGTERM. Unlike weir it copies nothing (librdkafka copies the borrowed
//! payload into its queue) and a refused record ends the run with an error
//! instead of being sent again: the benchmark reports it.

use std::collections::VecDeque;

use anyhow::{Context as _, bail};
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::Headers as _;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message as _};
use tokio::signal::unix::{SignalKind, signal};

pub struct Args {
    pub bootstrap: String,
    pub input: String,
    pub output: String,
    pub group: String,
    pub max_in_flight: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("consumer")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", "all")
        .create()
        .context("producer")?;
    consumer.subscribe(&[&args.input])?;
    let mut term = signal(SignalKind::terminate())?;
    let mut window: VecDeque<(i32, i64, DeliveryFuture)> = VecDeque::new();

    loop {
        tokio::select! {
            biased;
            _ = term.recv() => break,
            delivered = async { (&mut window.front_mut().expect("guarded").2).await },
                if !window.is_empty() =>
            {
                let (partition, offset, _) = window.pop_front().expect("guarded");
                acknowledged(delivered)?;
                consumer.store_offset(&args.input, partition, offset)?;
            }
            received = consumer.recv(), if window.len() < args.max_in_flight => {
                let m = received?;
                let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&args.output);
                record.key = m.key();
                record.payload = m.payload();
                record.timestamp = m.timestamp().to_millis();
                if let Some(h) = m.headers().filter(|h| h.count() > 0) {
                    record = record.headers(h.detach());
                }
                let future = loop {
                    match producer.send_result(record) {
                        Ok(f) => break f,
                        // The local queue is full: make room by settling the oldest.
                        Err((_, back)) => {
                            record = back;
                            match window.pop_front() {
                                Some((partition, offset, f)) => {
                                    acknowledged(f.await)?;
                                    consumer.store_offset(&args.input, partition, offset)?;
                                }
                                None => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                            }
                        }
                    }
                };
                window.push_back((m.partition(), m.offset(), future));
            }
        }
    }
    for (partition, offset, f) in window.drain(..) {
        acknowledged(f.await)?;
        consumer.store_offset(&args.input, partition, offset)?;
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(())
        | Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => Ok(()),
        Err(e) => Err(e).context("final commit"),
    }
}

fn acknowledged<E>(
    delivered: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> anyhow::Result<()> {
    match delivered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("the broker refused a record: {e}"),
        Err(_) => bail!("a delivery report was lost"),
    }
}
