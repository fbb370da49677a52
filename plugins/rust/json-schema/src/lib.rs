//! A validator plugin that accepts a message only if its value is JSON that
//! conforms to a JSON Schema.
//!
//! Config: `schema` = the JSON Schema document as text (the host reads
//! `schema = "@file.json"` from a file). It is compiled once in `init`; a
//! missing or broken schema fails `init`, so the pipeline never starts with it.
//! A null, non-UTF-8 or non-JSON value, or one that breaks the schema, is
//! `invalid`, naming each violation (up to ten) by its JSON pointer, e.g.
//! `/id: "x" is not of type "integer"`.

use std::sync::OnceLock;

use exports::weir::plugin::validator::Guest;
use jsonschema::{ValidationError, Validator};
use weir::plugin::types::{Error, Message};

wit_bindgen::generate!({
    world: "validator-plugin",
    path: "../../../wit",
});

static SCHEMA: OnceLock<Validator> = OnceLock::new();

const MAX_REPORTED: usize = 10;

/// `<JSON pointer>: <problem>`, e.g. `/id: "x" is not of type "integer"`.
fn describe(error: &ValidationError) -> String {
    let pointer = error.instance_path().as_str();
    let pointer = if pointer.is_empty() {
        "(root)"
    } else {
        pointer
    };
    format!("{pointer}: {error}")
}

struct JsonSchema;

impl Guest for JsonSchema {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let text = config
            .iter()
            .find(|(key, _)| key == "schema")
            .map(|(_, value)| value)
            .ok_or("config key `schema` is missing: set it to a JSON Schema document or @file")?;
        let schema: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("config key `schema` is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            format!(
                "config key `schema` is not a valid JSON Schema: {}",
                describe(&e)
            )
        })?;
        SCHEMA
            .set(validator)
            .map_err(|_| "init was called twice".to_string())
    }

    fn validate(msg: Message) -> Result<(), Error> {
        let validator = SCHEMA
            .get()
            .ok_or_else(|| Error::Failed("validate was called before init".into()))?;
        let bytes = msg
            .value
            .ok_or_else(|| Error::Invalid("value is null; expected JSON".into()))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::Invalid(format!("value is not UTF-8: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("value is not JSON: {e}")))?;
        let mut problems: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| describe(&e))
            .collect();
        // A dead-letter reason should stay readable: name the first few.
        if problems.len() > MAX_REPORTED {
            let more = problems.len() - MAX_REPORTED;
            problems.truncate(MAX_REPORTED);
            problems.push(format!("and {more} more"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(problems.join("; ")))
        }
    }
}

export!(JsonSchema);
