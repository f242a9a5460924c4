//! `storm`: a login storm into one big room (issue 11). `--clients` members are logged in and
//! idle in `ROOM`; then `--logins` more members log in, `--concurrency` at a time. Counted: the
//! application messages the members already online receive meanwhile, in all and by type, and
//! what each newcomer receives. chatd sends presence only about rooms of at most
//! `notice_max_members` (500) members, so in a bigger room the storm must cost the members online
//! nothing: O(logins) messages in all, not O(logins × members).

use std::time::{Duration, Instant};

use chat::wire::message::type_info;

use super::generator::{Auth, Generator, Phase};
use super::measure::round;
use super::report::Report;
use super::scenarios::{SETUP_ATTEMPTS, deadline_for};
use super::{Params, Target};

/// chatd's default `notice_max_members`, which the chatd started here keeps.
pub const NOTICE_MAX_MEMBERS: usize = 500;

pub fn storm(target: &Target, params: &Params) -> Result<Report, String> {
    let mut generator = Generator::new(&target.addrs, params).map_err(|e| e.to_string())?;
    let online = generator.establish(
        0..params.clients,
        params.concurrency,
        Auth::Login,
        SETUP_ATTEMPTS,
        deadline_for(params.clients),
    );
    if online.failed > 0 {
        return Err(format!(
            "{} of {} members did not log in ({})",
            online.failed,
            online.attempted,
            generator.failure_reasons.join("; ")
        ));
    }
    generator.settle(Duration::from_millis(500), Duration::from_secs(60));
    let bystanders: Vec<usize> = (0..generator.clients.len())
        .filter(|&i| generator.clients[i].phase == Phase::Ready)
        .collect();
    let before: Vec<u64> = bystanders
        .iter()
        .map(|&i| generator.clients[i].received)
        .collect();
    let kinds_before = *generator.received_by_kind;
    let bytes_before = generator.bytes_in;
    let started = Instant::now();
    let storm = generator.establish(
        params.clients..params.clients + params.logins,
        params.concurrency,
        Auth::Login,
        1,
        deadline_for(params.logins),
    );
    let storm_s = started.elapsed().as_secs_f64();
    // Whatever the storm causes arrives by the time the connections are quiet.
    generator.settle(Duration::from_millis(1000), Duration::from_secs(60));
    let per_bystander: Vec<u64> = bystanders
        .iter()
        .zip(&before)
        .map(|(&i, b)| generator.clients[i].received - b)
        .collect();
    let bystander_messages: u64 = per_bystander.iter().sum();
    let newcomer_messages: u64 = (0..generator.clients.len())
        .filter(|i| !bystanders.contains(i))
        .map(|i| generator.clients[i].received)
        .sum();
    let by_type: Vec<String> = (0..256)
        .filter_map(|k| {
            let n = generator.received_by_kind[k] - kinds_before[k];
            let name = type_info(k as u8).map_or("?", |t| t.name);
            (n > 0).then(|| format!("{name}:{n}"))
        })
        .collect();
    let mut report = Report::new("storm", target, params);
    report.set("members", params.clients + params.logins);
    report.set("online", bystanders.len());
    report.set("logins", storm.succeeded);
    report.set("failures", storm.failed);
    report.set("notice_max_members", NOTICE_MAX_MEMBERS);
    report.set("storm_s", round(storm_s, 2));
    report.set("bystander_messages", bystander_messages);
    report.set(
        "per_login",
        round(bystander_messages as f64 / storm.succeeded.max(1) as f64, 2),
    );
    report.set("max_per_bystander", per_bystander.iter().copied().max());
    // Everything read meanwhile, the newcomers' handshakes and logins included.
    report.set("storm_bytes", generator.bytes_in - bytes_before);
    report.set(
        "newcomer_messages_per_login",
        round(newcomer_messages as f64 / storm.succeeded.max(1) as f64, 2),
    );
    report.set("by_type", by_type.join(" "));
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}
