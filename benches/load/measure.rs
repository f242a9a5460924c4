//! Readings about the processes under test: CPU time and RSS from /proc, rates and rounding.

use std::time::{Duration, Instant};

use super::Target;

pub fn per_second(count: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        count as f64 / window.as_secs_f64()
    }
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat; `None` for "self".
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start with field 3, the state;
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU use of the generator, of chatd (one process, or each instance of a cluster) and of the
/// nats-server (in a cluster the generator started) over a stretch of wall time.
pub(super) struct CpuMeter {
    pub(super) wall: Instant,
    pub(super) generator: Option<Duration>,
    pub(super) chatd: Vec<Option<Duration>>,
    pub(super) nats: Option<Duration>,
    pub(super) pids: Vec<u32>,
    pub(super) nats_pid: Option<u32>,
}

/// Percent of one CPU each process used over a `CpuMeter`'s stretch.
#[derive(Clone, Debug, Default)]
pub struct CpuUse {
    pub generator: Option<f64>,
    /// Every chatd together (`None` when no pid is known or one could not be read).
    pub chatd: Option<f64>,
    /// Each chatd instance, in the order of the target's pids.
    pub each: Vec<Option<f64>>,
    pub nats: Option<f64>,
}

impl CpuMeter {
    pub(super) fn start(target: &Target) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            generator: cpu_time(None),
            chatd: target.pids.iter().map(|&p| cpu_time(Some(p))).collect(),
            nats: target.nats_pid.and_then(|p| cpu_time(Some(p))),
            pids: target.pids.clone(),
            nats_pid: target.nats_pid,
        }
    }

    /// Percent of one CPU used by each process since `start`.
    pub(super) fn percent(&self) -> CpuUse {
        let wall = self.wall.elapsed().as_secs_f64();
        let pct = |before: Option<Duration>, now: Option<Duration>| match (before, now) {
            (Some(b), Some(n)) if wall > 0.0 => {
                Some(round(n.saturating_sub(b).as_secs_f64() / wall * 100.0, 1))
            }
            _ => None,
        };
        let each: Vec<Option<f64>> = self
            .pids
            .iter()
            .zip(&self.chatd)
            .map(|(&pid, &before)| pct(before, cpu_time(Some(pid))))
            .collect();
        let chatd = if each.is_empty() {
            None
        } else {
            each.iter()
                .copied()
                .sum::<Option<f64>>()
                .map(|sum| round(sum, 1))
        };
        CpuUse {
            generator: pct(self.generator, cpu_time(None)),
            chatd,
            each,
            nats: pct(self.nats, self.nats_pid.and_then(|p| cpu_time(Some(p)))),
        }
    }
}

/// The RSS of every chatd of `target` added up, in KiB (`None` when no pid is known or one
/// could not be read).
pub fn rss_total_kib(target: &Target) -> Option<u64> {
    if target.pids.is_empty() {
        return None;
    }
    target.pids.iter().map(|&p| rss_kib(p)).sum()
}

/// chatd's resident set size in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

pub(super) fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}
