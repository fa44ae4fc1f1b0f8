//! A processing-time histogram cheap enough for the SIP hot path: fixed
//! buckets, one relaxed atomic add for the bucket and one for the sum per
//! observation, no lock, no allocation.
//!
//! The pipeline times each message it handles and calls
//! [`Histogram::observe`]; the HTTP door's `/metrics` renders it in
//! Prometheus's text format ([`Histogram::render_prometheus`]) as
//! `serc_request_processing_seconds`. When the door is off the proxy keeps no
//! histogram (an `Option<Arc<Histogram>>` that is `None`), so the hot path
//! pays one branch, and not even the clock reads.
//!
//! The counts are kept per bucket (not cumulative) so that an observation
//! touches one bucket; they are summed when read. A reader racing with
//! writers sees each count exactly or one behind; the `_count` it reports is
//! the sum of the buckets it read, so buckets and count always agree.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use serc_runtime::mi::histogram::Histogram;
//!
//! let h = Histogram::new();
//! let t = Instant::now();
//! // … process a message …
//! h.observe(t.elapsed());
//! h.observe(Duration::from_micros(120));
//! assert_eq!(h.snapshot().count, 2);
//! ```

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds in nanoseconds: 10 µs to 1 s, 1-2.5-5 steps (a
/// SIP message takes tens of microseconds to a few milliseconds; the upper
/// buckets catch stalls). Above the last is the `+Inf` bucket.
pub const BOUNDS_NS: [u64; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// A counter on its own cache line, so that workers bumping neighbouring
/// buckets do not fight over one line.
#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A fixed-bucket histogram of durations (see the module's documentation).
pub struct Histogram {
    /// Per bucket, not cumulative; the last is `+Inf`.
    counts: [Slot; BUCKETS],
    /// The sum of the observations in nanoseconds (wraps after 584 years of
    /// accumulated processing time).
    sum_ns: Slot,
}

/// What a [`Histogram`] holds at one moment, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `(upper bound in seconds, cumulative count)` for each finite bucket, in order.
    pub buckets: Vec<(f64, u64)>,
    /// The number of observations (the `+Inf` bucket's cumulative count).
    pub count: u64,
    /// The sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram").field("count", &s.count).field("sum_seconds", &s.sum_seconds).finish()
    }
}

impl Histogram {
    /// An empty histogram with the buckets of [`BOUNDS_NS`].
    pub fn new() -> Histogram {
        Histogram { counts: Default::default(), sum_ns: Slot::default() }
    }

    /// Records one duration.
    #[inline]
    pub fn observe(&self, d: Duration) {
        // u64 nanoseconds hold 584 years; anything longer is clamped.
        self.observe_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in nanoseconds.
    #[inline]
    pub fn observe_ns(&self, ns: u64) {
        // Prometheus buckets are `le`: a value equal to a bound counts in it.
        // A branch-light count of the bounds below the value: the compiler
        // unrolls this into compares and adds over 16 constants.
        let i = BOUNDS_NS.iter().map(|&b| usize::from(ns > b)).sum::<usize>();
        self.counts[i].0.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.0.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts now, cumulative per bucket.
    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(BOUNDS_NS.len());
        for (i, bound) in BOUNDS_NS.iter().enumerate() {
            cumulative = cumulative.saturating_add(self.counts[i].0.load(Ordering::Relaxed));
            buckets.push((*bound as f64 / 1e9, cumulative));
        }
        let count = cumulative.saturating_add(self.counts[BUCKETS - 1].0.load(Ordering::Relaxed));
        let sum_seconds = self.sum_ns.0.load(Ordering::Relaxed) as f64 / 1e9;
        Snapshot { buckets, count, sum_seconds }
    }

    /// Appends the histogram to `out` in Prometheus's text exposition format
    /// (version 0.0.4) as the family `name`: `# HELP`, `# TYPE … histogram`,
    /// one `name_bucket{le="…"}` line per bucket with `+Inf` last, `name_sum`
    /// and `name_count`. `name` must be a valid metric name; `help` is
    /// escaped.
    pub fn render_prometheus(&self, name: &str, help: &str, out: &mut String) {
        let s = self.snapshot();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (le, n) in &s.buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", s.count);
        let _ = writeln!(out, "{name}_sum {}", s.sum_seconds);
        let _ = writeln!(out, "{name}_count {}", s.count);
    }
}

/// A `# HELP` text as the format wants it: backslashes and line feeds escaped.
pub(crate) fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_le_and_cumulative() {
        let h = Histogram::new();
        h.observe(Duration::from_nanos(0));
        h.observe(Duration::from_micros(10)); // on the first bound: in it
        h.observe(Duration::from_nanos(10_001)); // just above: the second
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5)); // +Inf only
        h.observe(Duration::MAX); // clamped, +Inf
        let s = h.snapshot();
        assert_eq!(s.count, 6);
        assert_eq!(s.buckets[0], (0.00001, 2));
        assert_eq!(s.buckets[1], (0.000025, 3));
        assert_eq!(s.buckets[7].1, 3, "2.5 ms");
        assert_eq!(s.buckets[8].1, 4, "5 ms");
        assert_eq!(s.buckets[15], (1.0, 4));
        let mut out = String::new();
        let h = Histogram::new();
        h.observe(Duration::from_millis(2));
        h.render_prometheus("x_seconds", "a\\b\nc", &mut out);
        assert!(out.starts_with("# HELP x_seconds a\\\\b\\nc\n# TYPE x_seconds histogram\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.001\"} 0\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 1\nx_seconds_sum 0.002\nx_seconds_count 1\n"), "{out}");
    }
}
