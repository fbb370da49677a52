//! Messages as JSON lines: what `weir test` reads and prints, what `--seed`
//! produces and what the quickstart shows.
//!
//! One encoding for every byte field (key, value, header values), the same
//! as the end-to-end tests' independent client uses:
//! JSON `null` is no bytes; a string is its UTF-8 bytes; `{"$base64": "…"}`
//! is any bytes; on input any other JSON value stands for its compact
//! serialization. On output, UTF-8 bytes print as a string, others as
//! `{"$base64": …}`. Headers are an object `{name: bytes}` or a list of
//! `[name, bytes]` pairs on input, and always the list on output. A header
//! name is bytes too: a string, or in a pair `{"$base64": …}` for a name
//! that is not UTF-8 (which Kafka allows and a plugin cannot be given).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::delivery::records::Input;
use crate::kafka::record::RawHeader;
use crate::plugin::{Header, Message, Output};

/// Headers as name and optional value, both bytes, in order.
pub type Headers = Vec<RawHeader>;

/// One input line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
}

impl Record {
    /// The record as the pipeline's consumer would hand it over at
    /// `offset`: [`Input::into_message`] then judges it as a pipeline does
    /// (a header name that is not UTF-8 makes it unfit).
    pub fn to_input(&self, default_topic: &str, offset: i64) -> Input {
        Input {
            topic: self
                .topic
                .clone()
                .unwrap_or_else(|| default_topic.to_string()),
            partition: self.partition.unwrap_or(0),
            offset,
            timestamp: self.timestamp,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
        }
    }

    /// The plugin's view of this record, as if consumed at `offset`; a
    /// header name that is not UTF-8 is shown lossily.
    pub fn to_message(&self, default_topic: &str, offset: i64) -> Message {
        Message {
            topic: self
                .topic
                .clone()
                .unwrap_or_else(|| default_topic.to_string()),
            partition: self.partition.unwrap_or(0),
            offset,
            timestamp: self.timestamp,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self
                .headers
                .iter()
                .map(|(key, value)| Header {
                    key: String::from_utf8_lossy(key).into_owned(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

/// Parses one line; the error says which field is wrong.
pub fn parse_line(line: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut obj) = v else {
        return Err("expected a JSON object like {\"key\":…, \"value\":…, \"headers\":{…}}".into());
    };
    let mut record = Record::default();
    if let Some(t) = obj.remove("topic") {
        match t {
            Value::String(s) => record.topic = Some(s),
            Value::Null => {}
            _ => return Err("`topic` must be a string".into()),
        }
    }
    if let Some(p) = obj.remove("partition").filter(|p| !p.is_null()) {
        let p = p
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p >= 0);
        record.partition = Some(p.ok_or("`partition` must be a non-negative integer")?);
    }
    if let Some(t) = obj.remove("timestamp").filter(|t| !t.is_null()) {
        record.timestamp = Some(
            t.as_i64()
                .ok_or("`timestamp` must be milliseconds since the epoch")?,
        );
    }
    if let Some(k) = obj.remove("key") {
        record.key = decode_bytes(&k).map_err(|e| format!("`key`: {e}"))?;
    }
    if let Some(v) = obj.remove("value") {
        record.value = decode_bytes(&v).map_err(|e| format!("`value`: {e}"))?;
    }
    if let Some(h) = obj.remove("headers") {
        record.headers = decode_headers(&h)?;
    }
    // Fields a result line carries are allowed, so outputs can be fed back
    // in, and so is what `weir dlq show --format json` says of a dead letter.
    obj.retain(|k, _| !matches!(k.as_str(), "offset" | "expect" | "dead_letter"));
    if let Some(unknown) = obj.keys().next() {
        return Err(format!(
            "unknown field `{unknown}` (known: topic, partition, timestamp, key, value, headers)"
        ));
    }
    Ok(record)
}

fn decode_headers(h: &Value) -> Result<Headers, String> {
    match h {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone().into_bytes(),
                    decode_bytes(v).map_err(|e| format!("header `{k}`: {e}"))?,
                ))
            })
            .collect(),
        Value::Array(pairs) => pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((
                    k.clone().into_bytes(),
                    decode_bytes(v).map_err(|e| format!("header `{k}`: {e}"))?,
                )),
                Some([name @ Value::Object(_), v]) => {
                    let name = decode_bytes(name)
                        .map_err(|e| format!("header {i}'s name: {e}"))?
                        .unwrap_or_default();
                    let value = decode_bytes(v).map_err(|e| format!("header {i}: {e}"))?;
                    Ok((name, value))
                }
                _ => Err(
                    "`headers` as a list must hold [name, value] pairs (a name is a string or {\"$base64\": …})"
                        .to_string(),
                ),
            })
            .collect(),
        _ => Err("`headers` must be an object or a list of [name, value] pairs".into()),
    }
}

/// A byte field from its JSON form.
pub fn decode_bytes(v: &Value) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Object(map) if map.contains_key("$base64") => {
            let Some(Value::String(b64)) = map.get("$base64").filter(|_| map.len() == 1) else {
                return Err("{\"$base64\": …} takes one base64 string and nothing else".into());
            };
            BASE64
                .decode(b64)
                .map(Some)
                .map_err(|e| format!("bad base64: {e}"))
        }
        other => Ok(Some(other.to_string().into_bytes())),
    }
}

/// A byte field in its JSON form.
pub fn encode_bytes(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => json!({ "$base64": BASE64.encode(b) }),
        },
    }
}

pub fn encode_headers<'a>(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Value {
    Value::Array(
        headers
            .into_iter()
            .map(|(k, v)| json!([k, encode_bytes(v)]))
            .collect(),
    )
}

/// Headers of any bytes: a name that is not UTF-8 as `{"$base64": …}`.
pub fn encode_raw_headers(headers: &[RawHeader]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(k, v)| json!([encode_bytes(Some(k)), encode_bytes(v.as_deref())]))
            .collect(),
    )
}

/// A transformer output in its JSON form.
pub fn encode_output(o: &Output) -> Value {
    let mut m = Map::new();
    m.insert(
        "topic".into(),
        o.topic.clone().map_or(Value::Null, Value::String),
    );
    m.insert("key".into(), encode_bytes(o.key.as_deref()));
    m.insert("value".into(), encode_bytes(o.value.as_deref()));
    m.insert(
        "headers".into(),
        encode_headers(
            o.headers
                .iter()
                .map(|h| (h.key.as_str(), h.value.as_deref())),
        ),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_form_decodes() {
        let r = parse_line(
            r#"{"key":null,"value":{"id":1,"text":"é"},"headers":{"a":"x","b":null,"c":{"$base64":"AP8="}}}"#,
        )
        .unwrap();
        assert_eq!(r.key, None);
        assert_eq!(
            r.value.as_deref(),
            Some(r#"{"id":1,"text":"é"}"#.as_bytes())
        );
        assert_eq!(r.headers[1], (b"b".to_vec(), None));
        assert_eq!(r.headers[2].1.as_deref(), Some([0u8, 255].as_slice()));
        let pairs = parse_line(r#"{"value":"plain","headers":[["h","1"],["h","2"]]}"#).unwrap();
        assert_eq!(pairs.value.as_deref(), Some(b"plain".as_slice()));
        assert_eq!(pairs.headers.len(), 2);
    }

    #[test]
    fn bytes_round_trip() {
        for bytes in [None, Some(b"text".to_vec()), Some(vec![0, 159, 146, 150])] {
            let encoded = encode_bytes(bytes.as_deref());
            assert_eq!(decode_bytes(&encoded).unwrap(), bytes);
        }
    }

    #[test]
    fn header_names_of_any_bytes_round_trip() {
        let headers: Headers = vec![
            (vec![0xc3, 0x28], Some(b"v".to_vec())),
            (b"plain".to_vec(), None),
        ];
        let line = json!({"headers": encode_raw_headers(&headers), "dead_letter": {"kind": "x"}});
        assert_eq!(line["headers"][0][0], json!({"$base64": "wyg="}));
        let r = parse_line(&line.to_string()).unwrap();
        assert_eq!(r.headers, headers);
        let unfit = r.to_input("t", 0).into_message().unwrap_err();
        assert_eq!(unfit.kind, crate::delivery::records::HEADER_NOT_UTF8);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(parse_line("nope").unwrap_err().contains("not JSON"));
        assert!(parse_line("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_line(r#"{"valeu":1}"#).unwrap_err().contains("valeu"));
        assert!(
            parse_line(r#"{"value":{"$base64":"!!"}}"#)
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            parse_line(r#"{"headers":[["a"]]}"#)
                .unwrap_err()
                .contains("pairs")
        );
        assert!(
            parse_line(r#"{"partition":-1}"#)
                .unwrap_err()
                .contains("partition")
        );
    }
}
