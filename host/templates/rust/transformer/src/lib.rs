//! {{name}}: a weir transformer plugin. It passes every message on
//! unchanged to the pipeline's output topic. Return several outputs to fan a
//! message out, none to drop it, `Output { topic: Some(route), .. }` to send
//! it to one of the pipeline's `routes`, `Err(Error::Invalid(..))` to
//! dead-letter it.

use std::sync::OnceLock;

use exports::weir::plugin::transformer::Guest;
use weir::plugin::log::{Level, log};
use weir::plugin::types::{Error, Message, Output};

wit_bindgen::generate!({
    world: "transformer-plugin",
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

    fn transform(msg: Message) -> Result<Vec<Output>, Error> {
        log(Level::Debug, &format!("offset {}: passed on", msg.offset));
        Ok(vec![Output {
            topic: None,
            key: msg.key,
            value: msg.value,
            headers: msg.headers,
        }])
    }
}

export!(Plugin);
