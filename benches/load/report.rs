//! One scenario result: its parameters and measurements as named values, printed as one JSON
//! object per line (`--json`) or as rows of a human table.

use serde_json::{Map, Value};

use super::{Params, Target};

/// The named values of one result, in insertion order.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: String,
    fields: Vec<(String, Value)>,
}

impl Report {
    /// A report carrying the scenario, the target's setup and the parameters that apply.
    pub fn new(scenario: &str, target: &Target, params: &Params) -> Report {
        let mut report = Report {
            scenario: scenario.to_string(),
            fields: Vec::new(),
        };
        report.set("scenario", scenario);
        report.set("server", target.server.as_str());
        report.set("durability", target.durability.as_deref());
        report.set("pinned", target.pinned);
        // Instances on NATS JetStream (`--cluster N`); null for a plain chatd.
        report.set("cluster", target.cluster);
        report.set("clients", params.clients);
        report.set("concurrency", params.concurrency);
        report.set("iterations", params.iterations);
        report.set("protocol", params.protocol);
        if matches!(scenario, "fanout" | "sweep") {
            report.set("senders", params.senders);
            report.set("rate", params.rate);
            report.set("bytes", params.bytes);
        }
        if matches!(scenario, "fanout" | "sweep" | "history") {
            report.set("duration_s", params.duration.as_secs_f64());
        }
        report
    }

    /// Sets (or replaces) a value; `None` becomes JSON null.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_string(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// Records why clients failed, if any did.
    pub fn set_reasons(&mut self, reasons: &[String]) {
        if !reasons.is_empty() {
            self.set("failure_reasons", reasons.to_vec());
        }
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.fields {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }
}

/// The columns of the human table for a scenario (keys of the reports).
fn columns(scenario: &str) -> &'static [&'static str] {
    match scenario {
        "connect" => &[
            "cluster",
            "clients",
            "concurrency",
            "durability",
            "pinned",
            "logged_in",
            "failures",
            "elapsed_s",
            "logins_per_s",
            "login_p50_ms",
            "login_p99_ms",
            "rss_before_kib",
            "rss_after_kib",
            "rss_kib_per_conn",
            "generator_cpu_pct",
            "chatd_cpu_pct",
            "nats_cpu_pct",
            "logins_per_s_per_chatd_cpu",
        ],
        "history" => &[
            "cluster",
            "clients",
            "durability",
            "pinned",
            "messages",
            "pages",
            "pages_per_s",
            "entries_per_s",
            "passes",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "generator_cpu_pct",
            "chatd_cpu_pct",
            "pages_per_s_per_chatd_cpu",
        ],
        "worst" => &[
            "type",
            "messages",
            "rooms",
            "packed",
            "frame_bytes",
            "ending",
            "elapsed_ms",
            "out_bytes",
            "out_messages",
            "errors",
            "out_per_in",
            "bystander_pings",
            "bystander_p50_ms",
            "bystander_max_ms",
        ],
        "search" => &[
            "messages", "query", "scope", "searches", "errors", "hits_p50", "p50_ms", "p99_ms",
            "max_ms",
        ],
        "storm" => &[
            "cluster",
            "members",
            "online",
            "logins",
            "notice_max_members",
            "storm_s",
            "bystander_messages",
            "per_login",
            "max_per_bystander",
            "storm_bytes",
            "newcomer_messages_per_login",
            "by_type",
        ],
        _ => &[
            "step",
            "cluster",
            "clients",
            "senders",
            "rate",
            "bytes",
            "durability",
            "pinned",
            "sent",
            "expected",
            "received",
            "loss",
            "out_of_order",
            "deliveries_per_s",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "remote_p50_ms",
            "remote_p99_ms",
            "generator_cpu_pct",
            "chatd_cpu_pct",
            "nats_cpu_pct",
            "deliveries_per_s_per_chatd_cpu",
            "knee",
        ],
    }
}

/// Renders reports of one scenario as an aligned table (columns absent or null in every report
/// are left out), followed by any failure reasons.
pub fn table(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let columns: Vec<&str> = columns(&first.scenario)
        .iter()
        .copied()
        .filter(|c| {
            reports
                .iter()
                .any(|r| r.get(c).is_some_and(|v| !v.is_null()))
        })
        .collect();
    let cell = |r: &Report, c: &str| match r.get(c) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut rows = vec![columns.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
    for r in reports {
        rows.push(columns.iter().map(|c| cell(r, c)).collect());
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{}\n", first.scenario);
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:>w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for r in reports {
        if let Some(Value::Array(reasons)) = r.get("failure_reasons") {
            for reason in reasons {
                out.push_str(&format!("  failure: {}\n", reason.as_str().unwrap_or("?")));
            }
        }
    }
    out
}
