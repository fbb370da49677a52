//! Records as bytes, both ways: the one place weir turns key, value and
//! headers into what rdkafka sends, and reads a consumed record's headers.
//!
//! rdkafka's safe header API has two holes for records any client can
//! write: `Headers::get`/`iter` unwrap a header name as UTF-8 (a panic on
//! any other bytes), and `OwnedHeaders::insert` takes a `&str` name. Both
//! are reached here through librdkafka's own calls instead.
//!
//! librdkafka hands out header names as C strings: a name holding a NUL
//! byte reaches weir cut at that byte. No Kafka client in common use writes
//! one; it is the one header weir cannot carry exactly.

use std::ffi::CStr;

use rdkafka::bindings as rdsys;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedHeaders, BorrowedMessage, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// A header as Kafka holds it: a name and an optional value, both bytes.
pub type RawHeader = (Vec<u8>, Option<Vec<u8>>);

/// Every header of a consumed record, names and values as bytes, in order.
pub fn headers(msg: &BorrowedMessage<'_>) -> Vec<RawHeader> {
    let mut native: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is a live message for the borrow's length; the
    // headers it hands out belong to it and are only read before we return.
    let err = unsafe { rdsys::rd_kafka_message_headers(msg.ptr(), &mut native) };
    if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || native.is_null() {
        return Vec::new();
    }
    // SAFETY: as above.
    let count = unsafe { rdsys::rd_kafka_header_cnt(native) };
    let mut out = Vec::with_capacity(count);
    for idx in 0..count {
        let mut name: *const std::os::raw::c_char = std::ptr::null();
        let mut value: *const std::os::raw::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx < count`; librdkafka fills the three out-pointers.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(native, idx, &mut name, &mut value, &mut size)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name and `size` bytes of value, owned by
        // the message; copied before the borrow ends.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec());
        out.push((key, value));
    }
    out
}

/// A record to send, borrowed from owned parts.
pub fn future_record<'a, K: AsRef<[u8]>>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &[(K, Option<Vec<u8>>)],
) -> FutureRecord<'a, [u8], [u8]> {
    FutureRecord {
        key,
        payload: value,
        headers: some_headers(headers),
        ..FutureRecord::to(topic)
    }
}

/// A record to send whose delivery report carries `ticket`, borrowed from
/// owned parts (what a pipeline's producer sends).
pub fn ticketed_record<'a, K: AsRef<[u8]>>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &[(K, Option<Vec<u8>>)],
    ticket: usize,
) -> BaseRecord<'a, [u8], [u8], usize> {
    BaseRecord {
        key,
        payload: value,
        headers: some_headers(headers),
        ..BaseRecord::with_opaque_to(topic, ticket)
    }
}

/// None for no headers: an empty list is still a librdkafka allocation per
/// record.
fn some_headers<K: AsRef<[u8]>>(headers: &[(K, Option<Vec<u8>>)]) -> Option<OwnedHeaders> {
    (!headers.is_empty()).then(|| owned_headers(headers))
}

/// librdkafka headers with byte names.
fn owned_headers<K: AsRef<[u8]>>(headers: &[(K, Option<Vec<u8>>)]) -> OwnedHeaders {
    let owned = OwnedHeaders::new_with_capacity(headers.len());
    // `BorrowedHeaders` is rdkafka's view of the native list itself (its
    // address is the list's), so this is the list `owned` frees on drop.
    let native = owned.as_borrowed() as *const BorrowedHeaders as *mut rdsys::rd_kafka_headers_t;
    for (key, value) in headers {
        let key = key.as_ref();
        let (ptr, len) = match value {
            Some(v) => (v.as_ptr().cast::<std::os::raw::c_void>(), v.len() as isize),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `native` is a writable list owned by `owned`; librdkafka
        // copies name and value. It fails only on a read-only list.
        unsafe {
            rdsys::rd_kafka_header_add(
                native,
                key.as_ptr().cast::<std::os::raw::c_char>(),
                key.len() as isize,
                ptr,
                len,
            );
        }
    }
    owned
}

/// Why the producer or the broker refused a record for good (sending it
/// again can only fail again), as a `weir_records_refused_total` reason;
/// `None` for an error worth retrying.
pub fn permanent_refusal(e: &KafkaError) -> Option<&'static str> {
    use RDKafkaErrorCode as C;
    let code = match e {
        KafkaError::MessageProduction(code) => *code,
        _ => return None,
    };
    Some(match code {
        C::MessageSizeTooLarge | C::MessageBatchTooLarge | C::InvalidMessageSize => "too-large",
        C::UnknownTopic | C::UnknownTopicOrPartition | C::UnknownPartition | C::InvalidTopic => {
            "unknown-topic"
        }
        C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed => "authorization",
        C::InvalidRecord | C::InvalidMessage => "invalid-record",
        _ => return None,
    })
}
