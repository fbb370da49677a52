//! The operations endpoint (`[http] listen`): `/metrics` in Prometheus'
//! text format, `/health` (liveness and readiness), `/health/live` and
//! `/health/ready`.
//!
//! axum routes the requests; hyper's HTTP/1.1 server drives each connection
//! itself rather than through `axum::serve`, which has no header read
//! timeout to set. Invariants: a connection answers one request
//! (`Connection: close`); its request head arrives within [`READ_TIMEOUT`]
//! and [`MAX_REQUEST`] bytes, and the whole exchange ends within
//! [`CONNECTION_TIMEOUT`], or the connection is dropped; a slow or hostile
//! client holds only its own task; the server never touches a pipeline, it
//! only reads [`crate::ops::metrics`].

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;

use crate::ops::metrics;

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may live, reading the response included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest request head read (hyper's smallest read buffer).
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
    tokio::spawn(accept(listener, READ_TIMEOUT));
    tracing::info!(address = %local, "serving /metrics and /health");
    Ok(local)
}

/// Accepts connections for ever, each answered on a task of its own.
async fn accept(listener: TcpListener, read_timeout: Duration) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_buf_size(MAX_REQUEST)
        .keep_alive(false);
    let routes = TowerToHyperService::new(routes());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let connection = http.serve_connection(TokioIo::new(stream), routes.clone());
                tokio::spawn(async move {
                    // A timeout, a malformed request or a client gone away:
                    // nothing to tell anyone but that client.
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                });
            }
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!("http: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// GET (and HEAD, answered without a body) on the four paths; JSON errors
/// for anything else.
fn routes() -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route(
            "/health/live",
            get(|| async { Json(json!({"live": true})) }),
        )
        .route("/health", get(health))
        .route("/health/ready", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"error": "only GET and HEAD"})),
            )
        })
}

async fn render_metrics() -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::registry().render(),
    )
        .into_response()
}

async fn health() -> Response {
    let waiting = metrics::registry().not_ready();
    let status = if waiting.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "live": true,
        "ready": waiting.is_empty(),
        "not_ready": waiting
            .iter()
            .map(|name| (name.clone(), json!("waiting for its partition assignment")))
            .collect::<serde_json::Map<_, _>>(),
    });
    (status, Json(body)).into_response()
}

async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no such path {path:?}; try /metrics or /health")})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    /// A server on a port of its own, with `read_timeout` for request heads.
    async fn server(read_timeout: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(accept(listener, read_timeout));
        addr
    }

    /// Sends `request` as is and reads until the server closes: the status
    /// code, the head (names lower-cased) and the body.
    async fn exchange(addr: SocketAddr, request: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("the server closes the connection after its response")
            .unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: weir\r\n\r\n")
    }

    #[tokio::test]
    async fn each_path_answers_with_its_status_type_and_body() {
        let addr = server(READ_TIMEOUT).await;

        let (status, head, body) = exchange(addr, &get("/metrics?x=1")).await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("connection: close"), "{head}");
        assert!(body.contains("weir_build_info{version="), "{body}");

        let (status, head, body) = exchange(addr, &get("/health/live")).await;
        assert_eq!((status, body.as_str()), (200, r#"{"live":true}"#));
        assert!(head.contains("content-type: application/json"), "{head}");

        let (_, _, health) = exchange(addr, &get("/health")).await;
        let (_, _, ready) = exchange(addr, &get("/health/ready")).await;
        let health: serde_json::Value = serde_json::from_str(&health).unwrap();
        assert_eq!(health["live"], true, "{health}");
        assert_eq!(
            health,
            serde_json::from_str::<serde_json::Value>(&ready).unwrap()
        );

        let (status, head, body) = exchange(addr, &get("/nope")).await;
        assert_eq!(status, 404);
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(body.contains(r#"no such path \"/nope\""#), "{body}");

        let (status, _, body) = exchange(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: weir\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (405, r#"{"error":"only GET and HEAD"}"#)
        );

        let (status, head, body) =
            exchange(addr, "HEAD /health/live HTTP/1.1\r\nHost: weir\r\n\r\n").await;
        assert_eq!((status, body.as_str()), (200, ""), "{head}");
    }

    #[tokio::test]
    async fn readiness_follows_the_pipelines() {
        let addr = server(READ_TIMEOUT).await;
        let name = "admin-test-never-started";
        metrics::registry().expect([name]);
        let (status, _, body) = exchange(addr, &get("/health/ready")).await;
        assert_eq!(status, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["ready"], false, "{body}");
        assert!(body["not_ready"][name].is_string(), "{body}");
    }

    #[tokio::test]
    async fn a_silent_client_is_dropped_and_holds_up_no_one_else() {
        let addr = server(Duration::from_millis(200)).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /metrics HTTP/1.1\r\nHost:")
            .await
            .unwrap();

        // Served while the other two hold their connections open.
        let (status, _, _) = exchange(addr, &get("/health/live")).await;
        assert_eq!(status, 200);

        for stream in [&mut silent, &mut half] {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
                .await
                .expect("the server drops a client that sends no request head in time");
            // Closed, or reset; hyper may answer 408 first.
            if read.is_ok() && !rest.is_empty() {
                assert!(
                    rest.starts_with(b"HTTP/1.1 408"),
                    "{:?}",
                    String::from_utf8_lossy(&rest)
                );
            }
        }
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_request_head_beyond_the_limit_is_refused() {
        let addr = server(READ_TIMEOUT).await;
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nHost: weir\r\nX-Pad: {}\r\n\r\n",
            "x".repeat(MAX_REQUEST * 2)
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may close before all of it is written.
        let _ = stream.write_all(huge.as_bytes()).await;
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("the server closes the connection");
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 431"),
            "{response}"
        );
    }
}
