//! `search`: what one search costs the loop, at the size of the history chatd holds. One
//! client sends FIND requests one at a time (the next when the answer is in) for each kind of
//! query, scoped to `ROOM` and unscoped; the round trip on an otherwise idle server is the loop
//! time of the search plus one loopback round trip (about 0.1 ms). Rate limits are lifted, so
//! the token bucket never paces the requests.

use std::time::{Duration, Instant};

use chat::wire::message::{MAX_PAGE, Message};

use super::blocking::{Conn, Ending};
use super::histogram::Histogram;
use super::measure::ms;
use super::report::Report;
use super::{Params, ROOM, Target};

/// The words `database::fill_history` writes (every message has several).
const COMMON: &[&str] = &[
    "deploy", "meeting", "coffee", "invoice", "budget", "roadmap",
];

/// The kinds of query measured; `i` varies the query from one request to the next.
fn query(class: &str, i: usize, messages: u64) -> String {
    let word = COMMON[i % COMMON.len()];
    match class {
        "common" => word.to_string(),
        "two_common" => format!("{word} {}", COMMON[(i + 1) % COMMON.len()]),
        // One common word 73 times (issue 9 measured this one at 0.41 s).
        "repeated" => vec![word; 73].join(" "),
        // A 73-word hyphenated phrase of common words (0.30 s in issue 9).
        "phrase" => (0..73)
            .map(|k| COMMON[(i + k) % COMMON.len()])
            .collect::<Vec<_>>()
            .join("-"),
        // A message id: in exactly one text ("history message ID ...").
        "rare" => format!("{}", 1 + (i as u64 * 7919) % messages.max(1)),
        // In no text at all.
        _ => format!("zzyzx{i}"),
    }
}

const CLASSES: &[&str] = &[
    "common",
    "two_common",
    "repeated",
    "phrase",
    "rare",
    "absent",
];

/// `search`: `params.senders` searches (default 200) per query kind and scope.
pub fn search(target: &Target, params: &Params) -> Result<Vec<Report>, String> {
    let mut conn = Conn::login(
        target.addr(),
        &params.account(0),
        params.iterations,
        Duration::from_secs(10),
    )?;
    let nonce = conn.ping()?;
    let (_, ending) = conn.until_pong(nonce, Instant::now() + Duration::from_secs(10));
    if ending != Ending::Pong {
        return Err(format!("no PONG after login: {ending:?}"));
    }
    let searches = params.requests.max(1);
    let mut reports = Vec::new();
    for scope in ["room", "all"] {
        for class in CLASSES {
            let mut latency = Histogram::new();
            let mut hits = Histogram::new();
            let mut errors = 0u64;
            for i in 0..searches {
                let text = query(class, i, params.messages);
                let request = Message::Find {
                    conv: if scope == "room" { ROOM } else { "" },
                    query: &text,
                    before_id: 0,
                    limit: MAX_PAGE,
                };
                let mut found = 0u64;
                let mut failed = false;
                let took = conn.request(
                    &request,
                    Instant::now() + Duration::from_secs(30),
                    |m| match m {
                        Message::Found { entries, .. } => {
                            found = entries.len() as u64;
                            true
                        }
                        Message::Error { .. } => {
                            failed = true;
                            true
                        }
                        _ => false,
                    },
                )?;
                latency.record(took.as_nanos() as u64);
                hits.record(found);
                errors += u64::from(failed);
            }
            let mut report = Report::new("search", target, params);
            report.set("messages", params.messages);
            report.set("query", *class);
            report.set("scope", scope);
            report.set("searches", searches);
            report.set("errors", errors);
            report.set("hits_p50", hits.quantile(0.5));
            report.set("p50_ms", ms(latency.quantile(0.5)));
            report.set("p99_ms", ms(latency.quantile(0.99)));
            report.set("max_ms", ms(latency.max()));
            eprintln!(
                "search: {class:<10} {scope:<4}: p50 {:.2} ms, p99 {:.2} ms, {errors} errors",
                ms(latency.quantile(0.5)),
                ms(latency.quantile(0.99))
            );
            reports.push(report);
        }
    }
    Ok(reports)
}
