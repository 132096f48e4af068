//! Prometheus metrics: request counts and latencies by route, events appended, projection lag.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Installs the process's metrics recorder (once; later calls return the same handle). `None`
/// when another recorder was installed first.
pub fn install_metrics() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            ::metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

pub(crate) fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    ::metrics::counter!("casebook_http_requests_total", &labels).increment(1);
    ::metrics::histogram!(
        "casebook_http_request_duration_seconds",
        "method" => method.to_owned(),
        "route" => route.to_owned()
    )
    .record(elapsed.as_secs_f64());
}

pub(crate) fn record_appended(events: usize) {
    ::metrics::counter!("casebook_events_appended_total").increment(events as u64);
}

pub(crate) fn record_lag(lags: &[projector::Lag]) {
    for lag in lags {
        ::metrics::gauge!("casebook_projection_events_behind", "projection" => lag.projection.clone())
            .set(lag.events_behind as f64);
        ::metrics::gauge!("casebook_projection_events_applied", "projection" => lag.projection.clone())
            .set(lag.events_applied as f64);
        ::metrics::gauge!("casebook_projection_seconds_behind", "projection" => lag.projection.clone())
            .set(lag.seconds_behind);
    }
}

/// The current metrics in the Prometheus text format.
pub(crate) fn render() -> String {
    install_metrics()
        .map(|handle| handle.render())
        .unwrap_or_default()
}

/// Counts a request turned away for a bad bearer token.
pub fn record_auth_failure() {
    ::metrics::counter!("casebook_auth_failures_total").increment(1);
}
