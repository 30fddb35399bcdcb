//! The HTTP endpoints operators and orchestrators poll: `/metrics` (Prometheus text format),
//! `/healthz` (the process is alive) and `/readyz` (200 only while the worker is in its group
//! and its producer reached the broker; 503 during start-up and shutdown).
//!
//! Three GET routes do not need a web framework: this is a small HTTP/1.1 responder on a tokio
//! listener, closing each connection after one response. What a framework would bring against
//! slow or idle clients is here too: a request must arrive and its response be taken within
//! [`Limits::request_timeout`], and at most [`Limits::max_connections`] are served at once, so
//! half-sent requests cannot hold file descriptors for ever.

use crate::worker::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Readiness, set by the worker: ready when every part that runs is. A process running both
/// roles has two parts (the prepare and the decide worker), each of which sets its own.
#[derive(Debug)]
pub struct Health {
    /// One bit per part that is not ready; part 0 exists from the start.
    not_ready: AtomicU32,
    /// Why the cluster refused this process (credentials, TLS), once it has: librdkafka would
    /// retry for ever, so the worker stops with this reason and is never ready again.
    refused: tokio::sync::watch::Sender<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            not_ready: AtomicU32::new(1),
            refused: tokio::sync::watch::Sender::new(None),
        }
    }
}

impl Health {
    /// Sets part 0, the only part of a process that runs one worker.
    pub fn set_ready(&self, ready: bool) {
        self.set_part_ready(0, ready);
    }

    /// Sets one part (0 to 31); a part named here for the first time counts from then on.
    pub fn set_part_ready(&self, part: u32, ready: bool) {
        let bit = 1u32 << (part % 32);
        if ready {
            self.not_ready.fetch_and(!bit, Ordering::SeqCst);
        } else {
            self.not_ready.fetch_or(bit, Ordering::SeqCst);
        }
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready.load(Ordering::SeqCst) == 0 && self.refused.borrow().is_none()
    }

    /// Records that the cluster refused this process; the first reason is kept.
    pub fn refuse(&self, reason: String) {
        self.refused.send_if_modified(|refused| {
            if refused.is_some() {
                return false;
            }
            *refused = Some(reason);
            true
        });
    }

    /// The refusal, if the cluster refused this process.
    pub fn refusal(&self) -> Option<String> {
        self.refused.borrow().clone()
    }

    /// Waits until the cluster refuses this process, and says why.
    pub async fn refused(&self) -> String {
        let mut watch = self.refused.subscribe();
        loop {
            if let Some(reason) = watch.borrow_and_update().clone() {
                return reason;
            }
            if watch.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// What the endpoints report on.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub metrics: Metrics,
    pub health: Arc<Health>,
    /// Which readiness part the worker given this handle sets.
    pub part: u32,
}

impl Telemetry {
    pub fn new() -> Result<Self, crate::worker::metrics::MetricsError> {
        Ok(Self {
            metrics: Metrics::new()?,
            health: Arc::new(Health::default()),
            part: 0,
        })
    }

    /// The same endpoints for another worker of this process, whose readiness counts too
    /// (not ready until it says so).
    pub fn for_part(&self, part: u32) -> Self {
        self.health.set_part_ready(part, false);
        Self { part, ..self.clone() }
    }

    pub fn set_ready(&self, ready: bool) {
        self.health.set_part_ready(self.part, ready);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for the metrics and health endpoints: {source} (set http.address, or \"\" to turn them off)")]
pub struct HttpError {
    address: String,
    #[source]
    source: std::io::Error,
}

/// How long and how many connections the endpoints serve.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accepting a connection to having written its response. Scrapers and probes send
    /// their few hundred bytes at once; a client slower than this is closed.
    pub request_timeout: std::time::Duration,
    /// Connections served at once; one over it is closed at once. A scrape and two probes need
    /// three.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: std::time::Duration::from_secs(5),
            max_connections: 64,
        }
    }
}

/// Binds `address` and serves until the process ends. Returns the bound address (port 0 picks
/// a free one) once listening.
pub async fn serve(address: &str, telemetry: Telemetry) -> Result<SocketAddr, HttpError> {
    serve_with(address, telemetry, Limits::default()).await
}

/// [`serve`] within these limits.
pub async fn serve_with(address: &str, telemetry: Telemetry, limits: Limits) -> Result<SocketAddr, HttpError> {
    let error = |source| HttpError {
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::debug!(%peer, "http connection refused: {} already open", limits.max_connections);
                        drop(stream);
                        continue;
                    };
                    let telemetry = telemetry.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(limits.request_timeout, respond(stream, &telemetry)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => tracing::debug!(%error, %peer, "http connection ended early"),
                            Err(_) => tracing::debug!(%peer, "http connection closed: no whole request in time"),
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting an http connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

async fn respond(mut stream: TcpStream, telemetry: &Telemetry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request_line = String::from_utf8_lossy(&head);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            telemetry.metrics.render(),
        ),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/readyz") if telemetry.health.is_ready() => ("200 OK", "text/plain", "ready\n".to_string()),
        ("GET", "/readyz") => {
            let body = match telemetry.health.refusal() {
                Some(reason) => format!("not ready: {reason}\n"),
                None => "not ready\n".to_string(),
            };
            ("503 Service Unavailable", "text/plain", body)
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz or /readyz\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let telemetry = Telemetry::new().unwrap();
        let address = serve("127.0.0.1:0", telemetry.clone()).await.unwrap();
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        telemetry.health.set_ready(true);
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(address, "/metrics").await;
        assert!(metrics.contains("syndic_build_info"), "{metrics}");
        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));
    }

    /// A slowloris: connections that send half a request and wait. Each is closed once the
    /// request timeout passes, those over the cap at once, and the endpoints answer after.
    #[tokio::test]
    async fn half_sent_requests_are_closed_in_time_and_do_not_hold_the_endpoints() {
        let limits = Limits {
            request_timeout: std::time::Duration::from_millis(300),
            max_connections: 16,
        };
        let address = serve_with("127.0.0.1:0", Telemetry::new().unwrap(), limits)
            .await
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..100 {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHo").await.unwrap();
            held.push(stream);
        }
        for stream in &mut held {
            let mut rest = Vec::new();
            // The server closing the connection ends the read; a reset is a close too.
            let closed = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "a half-sent request was still open after 5 s");
        }
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_process_of_two_workers_is_ready_only_when_both_are() {
        let telemetry = Telemetry::new().unwrap();
        let (prepare, decide) = (telemetry.clone(), telemetry.for_part(1));
        prepare.set_ready(true);
        assert!(!telemetry.health.is_ready(), "the decider has not said it is ready");
        decide.set_ready(true);
        assert!(telemetry.health.is_ready());
        prepare.set_ready(false);
        assert!(!telemetry.health.is_ready());
    }
}
