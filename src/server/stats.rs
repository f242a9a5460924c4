//! What the server counts about itself for `chatd ctl status`: uptime, messages stored and
//! their rate, commit latencies (percentiles over a recent window), the longest loop turn, and
//! time spent in queries and searches.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many recent commits the latency percentiles cover.
const COMMIT_WINDOW: usize = 1024;
/// How long the message rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Running counters of one server.
#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    /// Entries stored since start.
    pub entries: u64,
    commits: VecDeque<Duration>,
    /// (when, entries so far) samples for the message rate.
    rate_samples: VecDeque<(Instant, u64)>,
    pub longest_turn: Duration,
    pub query_total: Duration,
    pub search_total: Duration,
    pub searches: u64,
    pub failed_commits: u64,
    /// Entries retention deleted since start.
    pub retention_deleted: u64,
    /// The longest retention step (one batch of deletes and its commit).
    pub retention_step: Duration,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            entries: 0,
            commits: VecDeque::with_capacity(COMMIT_WINDOW),
            rate_samples: VecDeque::new(),
            longest_turn: Duration::ZERO,
            query_total: Duration::ZERO,
            search_total: Duration::ZERO,
            searches: 0,
            failed_commits: 0,
            retention_deleted: 0,
            retention_step: Duration::ZERO,
        }
    }

    /// A commit of `entries` new entries took `took`.
    pub fn commit(&mut self, took: Duration, entries: u64, now: Instant) {
        if self.commits.len() == COMMIT_WINDOW {
            self.commits.pop_front();
        }
        self.commits.push_back(took);
        self.entries += entries;
        self.rate_samples.push_back((now, self.entries));
        while self
            .rate_samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_WINDOW)
        {
            self.rate_samples.pop_front();
        }
    }

    pub fn turn(&mut self, took: Duration) {
        self.longest_turn = self.longest_turn.max(took);
    }

    pub fn query_time(&mut self, took: Duration) {
        self.query_total += took;
    }

    pub fn search_time(&mut self, took: Duration) {
        self.search_total += took;
        self.searches += 1;
    }

    /// The `p`-th percentile (0..=100) of recent commit times.
    pub fn commit_percentile(&self, p: u32) -> Duration {
        if self.commits.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted: Vec<Duration> = self.commits.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (sorted.len() - 1) * p.min(100) as usize / 100;
        sorted[rank]
    }

    /// Entries stored per second over the last few seconds.
    pub fn entries_per_s(&self, now: Instant) -> f64 {
        let Some((first_at, first)) = self.rate_samples.front() else {
            return 0.0;
        };
        let span = now.saturating_duration_since(*first_at).as_secs_f64();
        if span < 0.001 {
            return 0.0;
        }
        (self.entries - first) as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        let t0 = Instant::now();
        let mut stats = Stats::new(t0);
        for ms in 1..=100u64 {
            stats.commit(
                Duration::from_millis(ms),
                10,
                t0 + Duration::from_millis(ms * 10),
            );
        }
        assert_eq!(stats.commit_percentile(50), Duration::from_millis(50));
        assert_eq!(stats.commit_percentile(99), Duration::from_millis(99));
        assert_eq!(stats.entries, 1000);
        // 990 entries over 0.99 s.
        let rate = stats.entries_per_s(t0 + Duration::from_millis(1000));
        assert!((rate - 1000.0).abs() < 20.0, "{rate}");
    }
}
