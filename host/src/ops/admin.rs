//! The operations endpoint (`[http] listen`): `/metrics` in Prometheus'
//! text format, `/health` (liveness and readiness), `/health/live` and
//! `/health/ready`.
//!
//! A small HTTP/1.1 responder on tokio rather than an HTTP crate: three GET
//! routes, one response per connection (`Connection: close`), nothing a
//! scraper or a probe needs beyond that. Invariants: a request is read
//! within [`READ_TIMEOUT`] and [`MAX_REQUEST`] bytes or the connection is
//! dropped; a slow or hostile client holds only its own task; the server
//! never touches a pipeline, it only reads [`crate::ops::metrics`].

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::ops::metrics;

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head read.
const MAX_REQUEST: usize = 8 << 10;

#[derive(Debug, thiserror::Error)]
#[error("{file}: `http.listen`: cannot listen on {addr}: {source}")]
pub struct BindError {
    pub file: String,
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` (so a taken port fails the start, naming the key) and
/// serves in the background until the runtime stops. Returns the bound
/// address (port 0 picks one).
pub async fn serve(addr: SocketAddr, config_file: &str) -> Result<SocketAddr, BindError> {
    let bind_error = |source| BindError {
        file: config_file.to_string(),
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    metrics::registry().set_serving();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(respond(stream));
                }
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("http: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tracing::info!(address = %local, "serving /metrics and /health");
    Ok(local)
}

async fn respond(mut stream: TcpStream) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let (status, content_type, body) = route(&head);
    let head_only = head.starts_with("HEAD ");
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// The request head up to the blank line; none if it is too long or the
/// client went away first.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    }
}

const JSON: &str = "application/json";

/// Status line, content type and body for a request head.
fn route(head: &str) -> (&'static str, &'static str, String) {
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            JSON,
            json!({"error": "only GET and HEAD"}).to_string(),
        );
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::registry().render(),
        ),
        "/health/live" => ("200 OK", JSON, json!({"live": true}).to_string()),
        "/health" | "/health/ready" => {
            let waiting = metrics::registry().not_ready();
            let body = json!({
                "live": true,
                "ready": waiting.is_empty(),
                "not_ready": waiting
                    .iter()
                    .map(|name| (name.clone(), json!("waiting for its partition assignment")))
                    .collect::<serde_json::Map<_, _>>(),
            })
            .to_string();
            if waiting.is_empty() {
                ("200 OK", JSON, body)
            } else {
                ("503 Service Unavailable", JSON, body)
            }
        }
        _ => (
            "404 Not Found",
            JSON,
            json!({"error": format!("no such path {path:?}; try /metrics or /health")}).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        assert_eq!(route("GET /nope HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n").0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET /health/live HTTP/1.1\r\n\r\n").0, "200 OK");
        let (_, kind, body) = route("GET /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert!(kind.starts_with("text/plain"));
        assert!(body.contains("weir_build_info{version="), "{body}");
    }
}
