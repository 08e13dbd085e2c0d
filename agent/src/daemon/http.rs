//! `/metrics` (Prometheus text format) and `/healthz`.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::metrics::Metrics;

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

pub fn serve(listener: TcpListener, metrics: Arc<Mutex<Metrics>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, metrics.clone()));
                if let Err(err) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%err, "HTTP connection ended with an error");
                }
            });
        }
    })
}

async fn respond<B>(
    request: Request<B>,
    metrics: Arc<Mutex<Metrics>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    };
    if request.method() != Method::GET {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ));
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
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /healthz\n".into(),
        ),
    })
}
