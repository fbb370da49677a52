//! {{name}}: a weir validator plugin. It accepts a message whose value is a
//! JSON object and rejects anything else as `invalid` (dead-lettered, never
//! retried). Put your own rule in `validate`.

use std::sync::OnceLock;

use exports::weir::plugin::validator::Guest;
use weir::plugin::log::{Level, log};
use weir::plugin::types::{Error, Message};

wit_bindgen::generate!({
    world: "validator-plugin",
    path: "wit",
});

/// What `init` worked out from the pipeline's `[pipeline.config]`, for every message.
static CONFIG: OnceLock<Vec<(String, String)>> = OnceLock::new();

struct Plugin;

impl Guest for Plugin {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        log(Level::Info, &format!("{{name}}: {} config keys", config.len()));
        // Returning Err(reason) here stops the pipeline at start-up with `reason`.
        CONFIG
            .set(config)
            .map_err(|_| "init was called twice".to_string())
    }

    fn validate(msg: Message) -> Result<(), Error> {
        let value = msg
            .value
            .ok_or_else(|| Error::Invalid("value is null; expected a JSON object".into()))?;
        match serde_json::from_slice::<serde_json::Value>(&value) {
            Ok(serde_json::Value::Object(_)) => {
                log(Level::Debug, &format!("offset {}: accepted", msg.offset));
                Ok(())
            }
            Ok(_) => Err(Error::Invalid("value is JSON but not an object".into())),
            Err(e) => Err(Error::Invalid(format!("value is not JSON: {e}"))),
        }
    }
}

export!(Plugin);
