//! `/metrics` (Prometheus text format) and `/healthz`.
//!
//! Any local user can connect, so the server bounds what a connection may hold: at most
//! [`MAX_CONNECTIONS`] at once (a new one closes the oldest, so idle connections cannot lock
//! scrapers out), headers within [`HEADER_TIMEOUT`], and any connection within
//! [`CONNECTION_LIFETIME`]. When accept() fails for lack of descriptors or memory it backs off
//! instead of retrying at once.

use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

use crate::metrics::Metrics;

/// Far more than Prometheus and a health checker need; far fewer than systemd's default soft
/// limit of 1024 descriptors.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive scrapers reconnect after this; nothing holds a descriptor longer.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// After accept() failed for lack of resources: a pause, not a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A persistent accept() failure is logged at most this often.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(60);

/// Binds first, before any probe is attached, so that a port in use fails fast and clearly.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the address is already in use (another tcpwhy, or another \
             exporter on that port?); choose another with --listen or `listen` in the config file"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    })
}

/// What `/healthz` reports: the capabilities no attached probe covers.
#[derive(Debug, Clone, Default)]
pub struct Health {
    uncovered: Vec<&'static str>,
}

impl Health {
    pub fn from_coverage(coverage: &[(&'static str, bool)]) -> Self {
        Self {
            uncovered: coverage
                .iter()
                .filter(|(_, covered)| !covered)
                .map(|(capability, _)| *capability)
                .collect(),
        }
    }

    /// 200 with what is degraded in the body; with `strict`, a degraded daemon is 503.
    fn answer(&self, strict: bool) -> (StatusCode, String) {
        if self.uncovered.is_empty() {
            return (StatusCode::OK, "ok\n".into());
        }
        let status = if strict {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (
            status,
            format!(
                "degraded: no probe attached for {}\n",
                self.uncovered.join(", ")
            ),
        )
    }
}

/// Serves on a thread and runtime of its own: the engine's samples (namespace scans, socket
/// dumps, fd-table walks) can take a second on a busy host, and must never hold up a scrape.
pub fn serve_on_own_thread(
    listener: TcpListener,
    metrics: Arc<Mutex<Metrics>>,
    health: Health,
) -> std::io::Result<()> {
    // Registered with the engine's runtime until now; the new one takes it over.
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let _ = serve(listener, metrics, health).await;
                    }
                    Err(err) => tracing::error!(%err, "cannot serve /metrics"),
                }
            })
        })?;
    Ok(())
}

fn serve(listener: TcpListener, metrics: Arc<Mutex<Metrics>>, health: Health) -> JoinHandle<()> {
    let health = Arc::new(health);
    tokio::spawn(async move {
        let mut open: VecDeque<AbortHandle> = VecDeque::new();
        let mut last_warning: Option<Instant> = None;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    if last_warning.is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY) {
                        tracing::warn!(%err, "accepting an HTTP connection failed; backing off");
                        last_warning = Some(Instant::now());
                    }
                    // Frees a descriptor for the next scraper when we are the ones holding them.
                    if let Some(oldest) = open.pop_front() {
                        oldest.abort();
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            open.retain(|connection| !connection.is_finished());
            if open.len() >= MAX_CONNECTIONS {
                if let Some(oldest) = open.pop_front() {
                    oldest.abort();
                }
            }
            let task = tokio::spawn(connection(stream, metrics.clone(), health.clone()));
            open.push_back(task.abort_handle());
        }
    })
}

async fn connection(stream: TcpStream, metrics: Arc<Mutex<Metrics>>, health: Arc<Health>) {
    let service = service_fn(move |request| respond(request, metrics.clone(), health.clone()));
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, served).await {
        Ok(Err(err)) => tracing::debug!(%err, "HTTP connection ended with an error"),
        Err(_) => tracing::debug!("HTTP connection closed after its lifetime"),
        Ok(Ok(())) => {}
    }
}

async fn respond<B>(
    request: Request<B>,
    metrics: Arc<Mutex<Metrics>>,
    health: Arc<Health>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    };
    // hyper sends no body in answer to HEAD.
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET, HEAD")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from("GET or HEAD only\n")))
            .expect("static response parts are valid"));
    }
    Ok(match request.uri().path() {
        "/metrics" => match metrics
            .lock()
            .map_err(|_| ())
            .and_then(|m| m.encode().map_err(|_| ()))
        {
            Ok(text) => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
            Err(()) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "metrics unavailable\n".into(),
            ),
        },
        "/healthz" => {
            let strict = request
                .uri()
                .query()
                .is_some_and(|query| query.split('&').any(|pair| pair == "strict"));
            let (status, body) = health.answer(strict);
            reply(status, "text/plain", body)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_names_what_is_degraded_and_fails_only_when_strict() {
        let healthy = Health::from_coverage(&[("resets_sent", true)]);
        assert_eq!(healthy.answer(true), (StatusCode::OK, "ok\n".into()));
        let degraded = Health::from_coverage(&[("resets_sent", true), ("retransmits", false)]);
        let (status, body) = degraded.answer(false);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "degraded: no probe attached for retransmits\n");
        assert_eq!(degraded.answer(true).0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
