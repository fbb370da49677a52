//! The client's full speed: a plain rdkafka consume → produce program as a
//! speed-minded rdkafka user would write it, and the one the benchmark's
//! ratios are taken against. Nothing in it is weir's.
//!
//! The main thread polls a `BaseConsumer` and hands each record to a
//! `ThreadedProducer`, librdkafka's defaults everywhere except what
//! at-least-once needs (`enable.auto.offset.store=false`). Up to
//! `max_in_flight` records (10,000 by default) and `max_in_flight_bytes` of
//! keys and values (64 MiB) await acknowledgement at once; a full window
//! waits on a condition variable, never spins. The delivery callback, on
//! the producer's own thread, stores an input offset once its record and
//! every earlier record of its partition are acknowledged (the records of
//! one input partition go to several output partitions, so their
//! acknowledgements can come back out of order). Stored offsets are
//! auto-committed every 5 s (librdkafka's default) and synchronously after
//! SIGTERM, once the window has drained. A record the broker refuses ends
//! the run with an error, which the benchmark reports. There is no
//! rebalance handling: the benchmark runs one member per group.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Headers as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Message as _};

pub struct Args {
    pub bootstrap: String,
    pub input: String,
    pub output: String,
    pub group: String,
    pub max_in_flight: usize,
    pub max_in_flight_bytes: usize,
}

static TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERM.store(true, Ordering::Relaxed);
}

/// A delivery's opaque: the input partition in the top 16 bits, its offset
/// below (offsets stay under 2^48).
fn pack(partition: i32, offset: i64) -> usize {
    ((partition as usize) << 48) | (offset as usize & ((1 << 48) - 1))
}

fn unpack(opaque: usize) -> (i32, i64) {
    ((opaque >> 48) as i32, (opaque & ((1 << 48) - 1)) as i64)
}

/// The records awaiting acknowledgement.
#[derive(Default)]
struct Window {
    /// Per input partition, in offset order: (offset, bytes, acknowledged).
    partitions: HashMap<i32, VecDeque<(i64, usize, bool)>>,
    records: usize,
    bytes: usize,
    /// The first refusal or store error; ends the run.
    error: Option<String>,
}

/// Shared by the main thread and the producer's delivery callback.
struct Shared {
    consumer: BaseConsumer,
    input: String,
    window: Mutex<Window>,
    /// Notified when acknowledgements make room.
    room: Condvar,
}

impl Shared {
    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Acks(Arc<Shared>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let shared = &self.0;
        let mut w = shared.window();
        if let Err((e, _)) = result {
            w.error
                .get_or_insert_with(|| format!("the broker refused a record: {e}"));
        }
        let (partition, offset) = unpack(opaque);
        let Some(p) = w.partitions.get_mut(&partition) else {
            return;
        };
        if let Ok(i) = p.binary_search_by_key(&offset, |r| r.0) {
            p[i].2 = true;
        }
        let (mut records, mut bytes, mut stored) = (0, 0, None);
        while let Some(&(offset, b, true)) = p.front() {
            p.pop_front();
            records += 1;
            bytes += b;
            stored = Some(offset);
        }
        w.records -= records;
        w.bytes -= bytes;
        if let Some(offset) = stored
            && let Err(e) = shared
                .consumer
                .store_offset(&shared.input, partition, offset)
        {
            w.error
                .get_or_insert_with(|| format!("storing an offset: {e}"));
        }
        drop(w);
        if records > 0 {
            shared.room.notify_all();
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("consumer")?;
    consumer.subscribe(&[&args.input])?;
    let shared = Arc::new(Shared {
        consumer,
        input: args.input.clone(),
        window: Mutex::new(Window::default()),
        room: Condvar::new(),
    });
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create_with_context(Acks(Arc::clone(&shared)))
        .context("producer")?;
    let full = |w: &Window| w.records >= args.max_in_flight || w.bytes >= args.max_in_flight_bytes;

    while !TERM.load(Ordering::Relaxed) {
        {
            let mut w = shared.window();
            while full(&w) && w.error.is_none() && !TERM.load(Ordering::Relaxed) {
                w = shared
                    .room
                    .wait_timeout(w, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if let Some(e) = w.error.take() {
                bail!(e);
            }
        }
        let Some(received) = shared.consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match received {
            Ok(m) => m,
            Err(e) => {
                eprintln!("consumer: {e}");
                continue;
            }
        };
        let bytes = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
        // In the window before it is sent: its acknowledgement may come at once.
        {
            let mut w = shared.window();
            w.partitions
                .entry(m.partition())
                .or_default()
                .push_back((m.offset(), bytes, false));
            w.records += 1;
            w.bytes += bytes;
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&args.output, pack(m.partition(), m.offset()));
        record.key = m.key();
        record.payload = m.payload();
        record.timestamp = m.timestamp().to_millis();
        if let Some(h) = m.headers().filter(|h| h.count() > 0) {
            record = record.headers(h.detach());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // librdkafka's own queue is full: wait for acknowledgements.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    let w = shared.window();
                    drop(
                        shared
                            .room
                            .wait_timeout(w, Duration::from_millis(10))
                            .unwrap_or_else(|p| p.into_inner()),
                    );
                }
                Err((e, _)) => return Err(e).context("produce"),
            }
        }
    }

    producer
        .flush(Duration::from_secs(30))
        .context("flushing after SIGTERM")?;
    {
        let mut w = shared.window();
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.records > 0 && w.error.is_none() && Instant::now() < deadline {
            w = shared
                .room
                .wait_timeout(w, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if let Some(e) = w.error.take() {
            bail!(e);
        }
        if w.records > 0 {
            bail!("{} records unacknowledged after SIGTERM", w.records);
        }
    }
    match shared.consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(e) => Err(e).context("final commit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_carry_partition_and_offset() {
        for (p, o) in [(0, 0), (3, 123_456_789), (1023, (1 << 48) - 1)] {
            assert_eq!(unpack(pack(p, o)), (p, o));
        }
    }
}
