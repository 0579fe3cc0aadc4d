//! Prometheus metrics: request counts and latencies per route, served at `/metrics`. The
//! middleware takes the metrics alone as its state, so this module needs nothing of the app.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("forge".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The event log's counters in the text format: events written, dropped because the
/// writer's queue was full (recording never waits), and lost to store errors.
pub fn event_lines(stats: &forge_tools::events::EventStats) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    for (name, help, v) in [
        (
            "forge_events_written_total",
            "Events written to the event log",
            stats.written.load(Relaxed),
        ),
        (
            "forge_events_dropped_total",
            "Events dropped because the event log's queue was full",
            stats.dropped.load(Relaxed),
        ),
        (
            "forge_events_failed_total",
            "Events lost because the store refused or failed the write",
            stats.failed.load(Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    }
    out
}

/// A metric family of the read model: name, help, type and the figure of a part.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&forge_tools::readmodel::PartStats) -> u64,
);

/// The read model's counters per part (`sessions`, `tokens`, `users`, `projects`, `tools`):
/// hits, misses, evictions for room, bytes and entries held; whether it is coherent (its
/// change stream live) and how often the stream was lost.
pub fn read_model_lines(model: &forge_tools::readmodel::ReadModel) -> String {
    let (parts, coherent, losses) = model.stats();
    let mut out = String::new();
    let families: [Family; 5] = [
        (
            "forge_cache_hits_total",
            "Lookups served from memory",
            "counter",
            |p| p.hits,
        ),
        (
            "forge_cache_misses_total",
            "Lookups that read the store",
            "counter",
            |p| p.misses,
        ),
        (
            "forge_cache_evictions_total",
            "Entries evicted for room",
            "counter",
            |p| p.evictions,
        ),
        ("forge_cache_bytes", "Estimated bytes held", "gauge", |p| {
            p.bytes
        }),
        ("forge_cache_entries", "Entries held", "gauge", |p| {
            p.entries
        }),
    ];
    for (name, help, kind, value) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for p in &parts {
            out.push_str(&format!("{name}{{cache=\"{}\"}} {}\n", p.name, value(p)));
        }
    }
    out.push_str(&format!(
        "# HELP forge_cache_coherent Whether the read model follows the store's change stream now\n# TYPE forge_cache_coherent gauge\nforge_cache_coherent {}\n",
        u8::from(coherent)
    ));
    out.push_str(&format!(
        "# HELP forge_cache_stream_losses_total Times the change stream was lost (caches dropped)\n# TYPE forge_cache_stream_losses_total counter\nforge_cache_stream_losses_total {losses}\n"
    ));
    out
}

/// The method as a label: the standard ones by name, anything else `other`, so clients
/// cannot grow the metrics by inventing methods.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware that counts and times every request. Routes are labelled by their pattern, not
/// the concrete path, so the number of series stays bounded.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    m.latency
        .with_label_values(&[&route, method])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[&route, method, res.status().as_str()])
        .inc();
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn made_up_methods_share_one_label() {
        for m in ["FOO", "PROPFIND", "BREW"] {
            let m = axum::http::Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(super::method_label(&m), "other");
        }
        assert_eq!(super::method_label(&axum::http::Method::GET), "GET");
    }
}
