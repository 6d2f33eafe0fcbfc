//! Serving an Axum app the way the Axum examples do: the public listener at `BIND_ADDR`, and
//! `GET /metrics` (Prometheus text format) on a listener of its own at `METRICS_ADDR`
//! (default `127.0.0.1:9464`: loopback, because scrapers are not the public), until SIGINT
//! or SIGTERM. Prints `metrics on http://<addr>/metrics`, then `listening on http://<addr>`
//! once both are bound (`127.0.0.1:0` picks a free port).

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use token_rotation::token_tower::metrics;

/// Where `GET /metrics` is served unless `METRICS_ADDR` says otherwise: loopback, the
/// Prometheus exporter's customary port.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Installs the metrics recorder, then serves `app` on `bind_addr` and `GET /metrics` on
/// `METRICS_ADDR`, until SIGINT or SIGTERM.
pub async fn serve_with_metrics(app: Router, bind_addr: &str) {
    let metrics = metrics_app(install_metrics_recorder());
    let metrics_addr =
        std::env::var("METRICS_ADDR").unwrap_or_else(|_| DEFAULT_METRICS_ADDR.into());
    // The metrics listener first: once "listening on" is printed, both answer.
    let metrics_listener = super::listen(&metrics_addr, "METRICS_ADDR").await;
    let local = metrics_listener.local_addr().expect("bound address");
    println!("metrics on http://{local}/metrics");
    let listener = super::listen(bind_addr, "BIND_ADDR").await;
    let local = listener.local_addr().expect("bound address");
    println!("listening on http://{local}");
    let (public, metrics) = tokio::join!(
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()),
        axum::serve(metrics_listener, metrics).with_graceful_shutdown(shutdown_signal()),
    );
    public.expect("server error");
    metrics.expect("metrics server error");
    println!("shut down");
}

/// `GET /metrics` alone, for the metrics listener.
fn metrics_app(metrics: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    )
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The process-wide recorder behind the `metrics` facade; the metrics listener's
/// `GET /metrics` renders it. Store latency gets fixed histogram buckets (rather than the
/// exporter's default summary, whose quantiles cannot be added up) so it can be aggregated
/// across instances; the layer describes its metrics (`# HELP`) at its first recording.
fn install_metrics_recorder() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::STORE_DURATION_SECONDS.into()),
            &metrics::STORE_DURATION_BUCKETS,
        )
        .expect("non-empty buckets")
        .install_recorder()
        .expect("the only metrics recorder of the process")
}
