//! Prometheus metrics, hand-rolled: a few atomic counters and one latency histogram, rendered
//! as the text exposition format at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the sync latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Counters the server keeps while it runs (they restart at zero with the process).
#[derive(Debug, Default)]
pub struct Metrics {
    syncs_ok: AtomicU64,
    syncs_failed: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    docs_changed: AtomicU64,
    docs_rejected: AtomicU64,
    docs_pushed: AtomicU64,
    docs_forbidden: AtomicU64,
    enrollments_failed: AtomicU64,
    logins_failed: AtomicU64,
    evictions: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// What one sync request did, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub changed: u64,
    pub rejected: u64,
    pub pushed: u64,
    pub forbidden: u64,
}

impl Metrics {
    pub fn sync_done(&self, up: usize, down: usize, counts: SyncCounts, elapsed: Duration) {
        self.syncs_ok.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(up as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(down as u64, Ordering::Relaxed);
        self.docs_changed
            .fetch_add(counts.changed, Ordering::Relaxed);
        self.docs_rejected
            .fetch_add(counts.rejected, Ordering::Relaxed);
        self.docs_pushed.fetch_add(counts.pushed, Ordering::Relaxed);
        self.docs_forbidden
            .fetch_add(counts.forbidden, Ordering::Relaxed);
        self.observe_latency(elapsed);
    }

    pub fn sync_failed(&self, up: usize, elapsed: Duration) {
        self.syncs_failed.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(up as u64, Ordering::Relaxed);
        self.observe_latency(elapsed);
    }

    pub fn enroll_failed(&self) {
        self.enrollments_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn login_failed(&self) {
        self.logins_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn evicted(&self, n: usize) {
        self.evictions.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn observe_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric; `cached_docs` and `durability` are
    /// sampled by the caller.
    pub fn render(
        &self,
        cached_docs: usize,
        durability: crate::storage::DurabilityStats,
    ) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, labels: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name}{labels} {value}");
        };
        counter(
            "doorstep_sync_requests_total",
            "Sync requests answered.",
            "{outcome=\"ok\"}",
            get(&self.syncs_ok),
        );
        counter(
            "doorstep_sync_failed_total",
            "Sync requests refused as a whole (4xx/5xx).",
            "",
            get(&self.syncs_failed),
        );
        counter(
            "doorstep_sync_bytes_received_total",
            "Sync request body bytes.",
            "",
            get(&self.bytes_received),
        );
        counter(
            "doorstep_sync_bytes_sent_total",
            "Sync reply body bytes.",
            "",
            get(&self.bytes_sent),
        );
        counter(
            "doorstep_sync_documents_changed_total",
            "Documents that accepted changes from a phone.",
            "",
            get(&self.docs_changed),
        );
        counter(
            "doorstep_sync_rejections_total",
            "Documents whose changes were rejected and quarantined.",
            "",
            get(&self.docs_rejected),
        );
        counter(
            "doorstep_sync_documents_pushed_total",
            "Documents the server sent changes for.",
            "",
            get(&self.docs_pushed),
        );
        counter(
            "doorstep_sync_forbidden_total",
            "Documents a device asked for but may not hold.",
            "",
            get(&self.docs_forbidden),
        );
        counter(
            "doorstep_enrollments_failed_total",
            "Enrollment attempts with a bad code.",
            "",
            get(&self.enrollments_failed),
        );
        counter(
            "doorstep_logins_failed_total",
            "Failed dashboard logins.",
            "",
            get(&self.logins_failed),
        );
        counter(
            "doorstep_documents_evicted_total",
            "Idle documents dropped from memory.",
            "",
            get(&self.evictions),
        );
        counter(
            "doorstep_db_commits_total",
            "Database transactions committed.",
            "",
            durability.commits,
        );
        counter(
            "doorstep_db_syncs_total",
            "Syncs of the database's log to disk: one acknowledges every transaction that \
             committed before it began (group commit).",
            "",
            durability.fsyncs,
        );
        counter(
            "doorstep_db_document_lock_waits_total",
            "Commits that found one of their documents locked by another transaction and \
             waited (several server processes on PostgreSQL).",
            "",
            durability.document_lock_waits,
        );
        counter(
            "doorstep_db_document_lock_wait_microseconds_total",
            "Time those commits waited for document locks.",
            "",
            durability.document_lock_wait_us,
        );
        counter(
            "doorstep_db_audit_lock_waits_total",
            "Commits that found the audit chain locked by another transaction and waited.",
            "",
            durability.audit_lock_waits,
        );
        counter(
            "doorstep_db_audit_lock_wait_microseconds_total",
            "Time those commits waited for the audit chain's lock.",
            "",
            durability.audit_lock_wait_us,
        );
        let _ = writeln!(
            out,
            "# HELP doorstep_documents_cached Documents held in memory."
        );
        let _ = writeln!(out, "# TYPE doorstep_documents_cached gauge");
        let _ = writeln!(out, "doorstep_documents_cached {cached_docs}");
        let name = "doorstep_sync_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to answer one sync request.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = get(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.sync_done(10, 20, SyncCounts::default(), Duration::from_millis(3));
        m.sync_done(10, 20, SyncCounts::default(), Duration::from_secs(20));
        let text = m.render(0, crate::storage::DurabilityStats::default());
        assert!(text.contains("doorstep_sync_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("doorstep_sync_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("doorstep_sync_bytes_sent_total 40"));
    }
}
