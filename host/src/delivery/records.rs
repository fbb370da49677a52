//! What a consumed record becomes: the plugin's [`Message`] (or, where the
//! contract cannot carry it, an [`Unfit`] record kept as bytes), and the
//! [`Record`]s a verdict asks to produce.
//!
//! Invariants: an accepted message is produced from its own buffers, not a
//! copy; a dead letter is the input's key, value and headers byte for byte,
//! followed by weir's `weir.*` headers; nothing here panics on any bytes.

use rdkafka::Message as _;
use rdkafka::message::BorrowedMessage;

use crate::config::Pipeline;
use crate::kafka::proxy::PipelineProducer;
use crate::kafka::record::{RawHeader, headers, ticketed_record};
use crate::plugin::{Header, Message, Output};

/// `weir.error.kind` of a record whose header names are not all UTF-8:
/// the contract's `header.key` is a `string`, so no plugin can see it.
pub const HEADER_NOT_UTF8: &str = "header-not-utf8";

/// A record to produce, owned so it can be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RawHeader>,
    pub timestamp: Option<i64>,
}

/// Key, value and headers in bytes: what the broker's size limit counts.
fn size(key: &Option<Vec<u8>>, value: &Option<Vec<u8>>, headers: &[RawHeader]) -> usize {
    let bytes = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len);
    bytes(key)
        + bytes(value)
        + headers
            .iter()
            .map(|(k, v)| k.len() + bytes(v))
            .sum::<usize>()
}

impl Record {
    /// Hands the record to the producer; its delivery report comes back
    /// with `ticket`.
    pub fn send(
        &self,
        producer: &PipelineProducer,
        ticket: usize,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut record = ticketed_record(
            &self.topic,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
            ticket,
        );
        record.timestamp = self.timestamp;
        producer.send(record).map_err(|(e, _)| e)
    }

    /// As [`Record::send`], waiting while the producer's local queue is
    /// full; any other refusal is returned (a transactional producer in an
    /// error state refuses every record until the transaction is aborted; a
    /// record over `message.max.bytes` is refused for good).
    pub async fn enqueue(
        &self,
        producer: &PipelineProducer,
        ticket: usize,
    ) -> Result<(), rdkafka::error::KafkaError> {
        loop {
            match self.send(producer, ticket) {
                Ok(()) => return Ok(()),
                Err(rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                )) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Key, value and headers in bytes: what the broker's size limit counts.
    pub fn size(&self) -> usize {
        size(&self.key, &self.value, &self.headers)
    }
}

/// A consumed record the plugin cannot be given, with why; dead-lettered
/// as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub kind: &'static str,
    pub reason: String,
    pub input: Input,
}

/// A consumed record in bytes, as the broker handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RawHeader>,
}

impl Input {
    /// Key, value and headers in bytes, as [`Record::size`] counts them.
    pub fn size(&self) -> usize {
        size(&self.key, &self.value, &self.headers)
    }

    pub fn read(msg: &BorrowedMessage<'_>) -> Input {
        Input {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp: msg.timestamp().to_millis(),
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            headers: headers(msg),
        }
    }

    /// The plugin's view, or the record back as [`Unfit`] when a header
    /// name is not UTF-8. Moves the buffers: no copy either way.
    // Both sides hold a whole record; boxing the rare one buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn into_message(self) -> Result<Message, Unfit> {
        let mut converted = Vec::with_capacity(self.headers.len());
        let mut rest = self.headers.into_iter();
        for (key, value) in rest.by_ref() {
            match String::from_utf8(key) {
                Ok(key) => converted.push(Header { key, value }),
                Err(e) => {
                    let index = converted.len();
                    let bad = e.into_bytes();
                    let reason = format!(
                        "header {index}'s name is not UTF-8 ({}), and a plugin's header.key is a string",
                        shown(&bad)
                    );
                    let mut headers: Vec<RawHeader> = converted
                        .into_iter()
                        .map(|h| (h.key.into_bytes(), h.value))
                        .collect();
                    headers.push((bad, value));
                    headers.extend(rest);
                    return Err(Unfit {
                        kind: HEADER_NOT_UTF8,
                        reason,
                        input: Input { headers, ..self },
                    });
                }
            }
        }
        Ok(Message {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key,
            value: self.value,
            headers: converted,
        })
    }
}

/// Bytes for a log line or a reason: at most 32 of them, escaped.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(32)];
    let mut s: String = cut.escape_ascii().to_string();
    if bytes.len() > cut.len() {
        s.push('…');
    }
    format!("b\"{s}\"")
}

/// The plugin's view of a consumed record (the library consumer's): a
/// header name that is not UTF-8 is shown lossily.
pub fn to_message(msg: &BorrowedMessage<'_>) -> Message {
    match Input::read(msg).into_message() {
        Ok(m) => m,
        Err(unfit) => {
            let i = unfit.input;
            Message {
                topic: i.topic,
                partition: i.partition,
                offset: i.offset,
                timestamp: i.timestamp,
                key: i.key,
                value: i.value,
                headers: i
                    .headers
                    .into_iter()
                    .map(|(k, value)| Header {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        value,
                    })
                    .collect(),
            }
        }
    }
}

/// The accepted message itself, to the pipeline's output.
pub fn accepted(spec: &Pipeline, message: Message) -> Record {
    Record {
        topic: spec.output.clone(),
        key: message.key,
        value: message.value,
        headers: message
            .headers
            .into_iter()
            .map(|h| (h.key.into_bytes(), h.value))
            .collect(),
        timestamp: message.timestamp,
    }
}

/// A transformer's outputs; each keeps the input's timestamp.
pub fn outputs(spec: &Pipeline, outputs: Vec<Output>, timestamp: Option<i64>) -> Vec<Record> {
    outputs
        .into_iter()
        .map(|o| Record {
            topic: o.topic.unwrap_or_else(|| spec.output.clone()),
            key: o.key,
            value: o.value,
            headers: o
                .headers
                .into_iter()
                .map(|h| (h.key.into_bytes(), h.value))
                .collect(),
            timestamp,
        })
        .collect()
}

/// The first output topic that is neither the output nor a route.
pub fn undeclared_route<'a>(spec: &Pipeline, outputs: &'a [Output]) -> Option<&'a str> {
    outputs
        .iter()
        .filter_map(|o| o.topic.as_deref())
        .find(|t| *t != spec.output && !spec.routes.iter().any(|r| r == t))
}

/// Where a dead letter came from and why.
pub struct Cause<'a> {
    pub kind: &'a str,
    pub reason: &'a str,
    pub plugin: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The original record's parts plus headers saying what happened to it and
/// where it came from.
pub fn dead_letter(
    spec: &Pipeline,
    cause: &Cause<'_>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    mut headers: Vec<RawHeader>,
    timestamp: Option<i64>,
) -> Record {
    headers.reserve(7);
    for (k, v) in [
        ("weir.error.kind", cause.kind.to_string()),
        ("weir.error.reason", cause.reason.to_string()),
        ("weir.source.topic", cause.topic.to_string()),
        ("weir.source.partition", cause.partition.to_string()),
        ("weir.source.offset", cause.offset.to_string()),
        ("weir.pipeline", spec.name.clone()),
        ("weir.plugin", cause.plugin.to_string()),
    ] {
        headers.push((k.as_bytes().to_vec(), Some(v.into_bytes())));
    }
    Record {
        topic: spec.dead_letter.clone(),
        key,
        value,
        headers,
        timestamp,
    }
}

/// A message's dead letter, copying its parts (the message stays with the
/// caller, who may need it again).
pub fn dead_letter_of(
    spec: &Pipeline,
    plugin: &str,
    m: &Message,
    kind: &str,
    reason: &str,
) -> Record {
    let cause = Cause {
        kind,
        reason,
        plugin,
        topic: &m.topic,
        partition: m.partition,
        offset: m.offset,
    };
    let headers = m
        .headers
        .iter()
        .map(|h| (h.key.as_bytes().to_vec(), h.value.clone()))
        .collect();
    dead_letter(
        spec,
        &cause,
        m.key.clone(),
        m.value.clone(),
        headers,
        m.timestamp,
    )
}

/// An unfit record's dead letter, its bytes moved.
pub fn dead_letter_unfit(spec: &Pipeline, plugin: &str, unfit: Unfit) -> Record {
    let i = unfit.input;
    let cause = Cause {
        kind: unfit.kind,
        reason: &unfit.reason,
        plugin,
        topic: &i.topic,
        partition: i.partition,
        offset: i.offset,
    };
    dead_letter(spec, &cause, i.key, i.value, i.headers, i.timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(headers: Vec<RawHeader>) -> Input {
        Input {
            topic: "in".into(),
            partition: 2,
            offset: 7,
            timestamp: Some(5),
            key: Some(vec![0xff, 0]),
            value: None,
            headers,
        }
    }

    #[test]
    fn utf8_headers_become_a_message_in_order() {
        let m = input(vec![(b"a".to_vec(), None), (b"b".to_vec(), Some(vec![]))])
            .into_message()
            .expect("fit");
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.headers[0].key, "a");
        assert_eq!(m.headers[1].value, Some(vec![]));
        assert_eq!(m.key, Some(vec![0xff, 0]));
        assert_eq!(m.value, None);
    }

    #[test]
    fn a_non_utf8_header_name_keeps_every_byte() {
        let headers = vec![
            (b"ok".to_vec(), Some(vec![1])),
            (vec![0xc3, 0x28], None),
            (b"after".to_vec(), Some(vec![2])),
        ];
        let unfit = input(headers.clone()).into_message().expect_err("unfit");
        assert_eq!(unfit.kind, HEADER_NOT_UTF8);
        assert!(unfit.reason.contains("header 1"), "{}", unfit.reason);
        assert_eq!(unfit.input, input(headers));
    }
}
