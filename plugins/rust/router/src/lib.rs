//! A transformer plugin that shows the three things a transformer can do
//! besides passing a message on: drop it, fan it out and route it.
//!
//! The value must be a JSON object, else the message is `invalid`.
//! - `"drop": true` → no output: the message is dropped.
//! - an array field `"items"` → one output per item (the item as compact
//!   JSON, the original key and headers plus `weir.split.index` = its index).
//! - otherwise → one output with the original key, value and headers.
//!
//! Routing: config `route_field` (default `region`) names a string field and
//! each `route.<value> = <topic>` entry sends outputs whose object (for a
//! fan-out: whose item) has that value to `<topic>`; anything else goes to the
//! pipeline's output topic. Every route must also be declared by the pipeline.

use std::collections::HashMap;
use std::sync::OnceLock;

use exports::weir::plugin::transformer::Guest;
use serde_json::Value;
use weir::plugin::log::{Level, log};
use weir::plugin::types::{Error, Header, Message, Output};

wit_bindgen::generate!({
    world: "transformer-plugin",
    path: "../../../wit",
});

struct Routes {
    field: String,
    topics: HashMap<String, String>,
}

impl Routes {
    fn topic_for(&self, value: &Value) -> Option<String> {
        let key = value.get(&self.field)?.as_str()?;
        self.topics.get(key).cloned()
    }
}

static ROUTES: OnceLock<Routes> = OnceLock::new();

struct Router;

impl Guest for Router {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut routes = Routes {
            field: "region".into(),
            topics: HashMap::new(),
        };
        for (key, value) in config {
            if key == "route_field" {
                routes.field = value;
            } else if let Some(name) = key.strip_prefix("route.") {
                routes.topics.insert(name.to_string(), value);
            }
        }
        ROUTES
            .set(routes)
            .map_err(|_| "init was called twice".to_string())
    }

    fn transform(msg: Message) -> Result<Vec<Output>, Error> {
        let routes = ROUTES
            .get()
            .ok_or_else(|| Error::Failed("transform was called before init".into()))?;
        let bytes = msg
            .value
            .ok_or_else(|| Error::Invalid("value is null; expected a JSON object".into()))?;
        let object = match serde_json::from_slice::<Value>(&bytes) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => return Err(Error::Invalid("value is JSON but not an object".into())),
            Err(e) => return Err(Error::Invalid(format!("value is not JSON: {e}"))),
        };

        let outputs = if object.get("drop") == Some(&Value::Bool(true)) {
            Vec::new()
        } else if let Some(Value::Array(items)) = object.get("items") {
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let mut headers = msg.headers.clone();
                    headers.push(Header {
                        key: "weir.split.index".into(),
                        value: Some(index.to_string().into_bytes()),
                    });
                    Output {
                        topic: routes.topic_for(item),
                        key: msg.key.clone(),
                        value: Some(item.to_string().into_bytes()),
                        headers,
                    }
                })
                .collect()
        } else {
            vec![Output {
                topic: routes.topic_for(&object),
                key: msg.key,
                value: Some(bytes),
                headers: msg.headers,
            }]
        };

        let summary = if outputs.is_empty() {
            "dropped".to_string()
        } else {
            let topics: Vec<&str> = outputs
                .iter()
                .map(|o| o.topic.as_deref().unwrap_or("(output topic)"))
                .collect();
            format!("{} output(s) to {}", outputs.len(), topics.join(", "))
        };
        log(Level::Debug, &format!("offset {}: {summary}", msg.offset));
        Ok(outputs)
    }
}

export!(Router);
