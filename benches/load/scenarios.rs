//! The scenarios on the generator: connect, fanout, sweep, history; each returns `Report`s.

use std::time::Duration;

use super::fanout::FanoutResult;
use super::generator::{Auth, Establish, Generator};
use super::measure::{CpuMeter, CpuUse, ms, per_second, round, rss_total_kib};
use super::report::Report;
use super::{Accounts, PROBE_LEN, Params, Target};

/// Connections per account in the set-up of fanout, sweep and history (not measured): a client
/// that fails to log in is retried on a new connection.
pub(super) const SETUP_ATTEMPTS: u8 = 5;

pub(super) fn deadline_for(clients: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(clients as u64 * 10)
}

/// Makes the accounts exist: nothing to do when they were pre-created, else registers each
/// through its own session (`concurrency` at a time) and closes those sessions.
pub(super) fn ensure_accounts(
    generator: &mut Generator,
    params: &Params,
    accounts: Accounts,
) -> Result<(), String> {
    if accounts == Accounts::Exist {
        return Ok(());
    }
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        Auth::Register,
        SETUP_ATTEMPTS,
        deadline_for(params.clients),
    );
    generator.close_all();
    if done.failed > 0 {
        return Err(format!(
            "registration failed for {} of {} accounts ({})",
            done.failed,
            done.attempted,
            generator.failure_reasons.join("; ")
        ));
    }
    Ok(())
}

/// Logs `params.clients` clients in (registering first if need be) and lets the burst settle.
pub(super) fn log_in_all(
    generator: &mut Generator,
    params: &Params,
    accounts: Accounts,
) -> Result<Establish, String> {
    let auth = match accounts {
        Accounts::Exist => Auth::Login,
        Accounts::Register => Auth::RegisterThenLogin,
    };
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        auth,
        SETUP_ATTEMPTS,
        deadline_for(params.clients),
    );
    if done.succeeded == 0 {
        return Err(format!(
            "no client logged in ({})",
            generator.failure_reasons.join("; ")
        ));
    }
    generator.settle(Duration::from_millis(300), Duration::from_secs(30));
    Ok(done)
}

/// `connect`: N clients handshake and log in, at most C in flight. chatd's RSS is read before
/// and after (when its pid is known).
pub fn connect(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    let mut generator = Generator::new(&target.addrs, params).map_err(|e| e.to_string())?;
    ensure_accounts(&mut generator, params, accounts)?;
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_total_kib(target);
    let cpu = CpuMeter::start(target);
    // Measured: no second chances.
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        Auth::Login,
        1,
        deadline_for(params.clients),
    );
    let mut report = Report::new("connect", target, params);
    let cpu_used = cpu.percent();
    generator.settle(Duration::from_millis(500), Duration::from_secs(30));
    let rss_after = rss_total_kib(target);
    report.set("logged_in", done.succeeded);
    report.set("failures", done.failed);
    report.set("elapsed_s", round(done.elapsed.as_secs_f64(), 3));
    report.set(
        "logins_per_s",
        round(per_second(done.succeeded as u64, done.elapsed), 1),
    );
    report.set("login_p50_ms", ms(done.latency.quantile(0.5)));
    report.set("login_p99_ms", ms(done.latency.quantile(0.99)));
    report.set("login_max_ms", ms(done.latency.max()));
    fill_cpu(&mut report, cpu_used, Some("logins_per_s"));
    report.set("rss_before_kib", rss_before);
    report.set("rss_after_kib", rss_after);
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if done.succeeded > 0 => {
            Some(round((a as f64 - b as f64) / done.succeeded as f64, 2))
        }
        _ => None,
    };
    report.set("rss_kib_per_conn", per_conn);
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

/// `fanout`: N clients in `ROOM`, S of them saying R messages/s each for T.
pub fn fanout(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    check_bytes(params)?;
    let mut generator = Generator::new(&target.addrs, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let cpu = CpuMeter::start(target);
    let result = generator.fanout(
        1,
        params.senders,
        params.rate,
        params.duration,
        params.bytes,
    );
    let mut report = Report::new("fanout", target, params);
    fill_login(&mut report, &done);
    fill_fanout(&mut report, &result);
    fill_cpu(&mut report, cpu.percent(), Some("deliveries_per_s"));
    report.set("rss_after_kib", rss_total_kib(target));
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

/// `sweep`: fanout at doubling rates (from `params.rate`) on one set of logged-in clients,
/// until deliveries/s grow by less than 5 % or messages are lost. The knee is the step with the
/// most deliveries/s before that. Returns one report per step; the knee's has `knee: true`.
pub fn sweep(
    target: &Target,
    params: &Params,
    accounts: Accounts,
    max_steps: usize,
) -> Result<Vec<Report>, String> {
    check_bytes(params)?;
    let mut generator = Generator::new(&target.addrs, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let mut reports: Vec<Report> = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut rate = params.rate;
    for step in 0..max_steps {
        let cpu = CpuMeter::start(target);
        let result = generator.fanout(
            (step + 1) as u8,
            params.senders,
            rate,
            params.duration,
            params.bytes,
        );
        let dps = result.deliveries_per_s();
        let lossy = result.received < result.expected || result.disconnects > 0;
        let mut step_params = params.clone();
        step_params.rate = rate;
        let mut report = Report::new("sweep", target, &step_params);
        report.set("step", step + 1);
        fill_login(&mut report, &done);
        fill_fanout(&mut report, &result);
        fill_cpu(&mut report, cpu.percent(), Some("deliveries_per_s"));
        report.set("knee", false);
        report.set_reasons(&generator.failure_reasons);
        eprintln!(
            "sweep step {}: rate {rate}/s x {} senders -> {:.0} deliveries/s, loss {}",
            step + 1,
            result.senders,
            dps,
            result.expected.saturating_sub(result.received)
        );
        reports.push(report);
        let grew = best.is_none_or(|(_, b)| dps > b * 1.05);
        if lossy || !grew || generator.ready() == 0 {
            break;
        }
        best = Some((step, dps));
        // Let the server drain before the next step.
        generator.settle(Duration::from_millis(300), Duration::from_secs(10));
        rate *= 2.0;
    }
    if let Some((step, _)) = best {
        reports[step].set("knee", true);
    }
    generator.close_all();
    Ok(reports)
}

/// `history`: N clients page back through a room of `params.messages` messages, limit 100.
pub fn history(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    let mut generator = Generator::new(&target.addrs, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let cpu = CpuMeter::start(target);
    let result = generator.history(100, params.duration);
    let mut report = Report::new("history", target, params);
    fill_login(&mut report, &done);
    let cpu_used = cpu.percent();
    report.set("messages", params.messages);
    report.set("pages", result.pages);
    report.set("entries", result.entries);
    report.set("passes", result.passes);
    report.set(
        "pages_per_s",
        round(per_second(result.pages, result.elapsed), 1),
    );
    report.set(
        "entries_per_s",
        round(per_second(result.entries, result.elapsed), 1),
    );
    report.set("p50_ms", ms(result.latency.quantile(0.5)));
    report.set("p99_ms", ms(result.latency.quantile(0.99)));
    report.set("p999_ms", ms(result.latency.quantile(0.999)));
    report.set("max_ms", ms(result.latency.max()));
    fill_cpu(&mut report, cpu_used, Some("pages_per_s"));
    report.set("rss_after_kib", rss_total_kib(target));
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

pub(super) fn check_bytes(params: &Params) -> Result<(), String> {
    if params.bytes < PROBE_LEN || params.bytes > 4096 {
        return Err(format!(
            "--bytes must be {PROBE_LEN}..4096 (texts carry a {PROBE_LEN}-byte probe header)"
        ));
    }
    if params.senders == 0 || params.rate <= 0.0 {
        return Err("--senders and --rate must be above 0".into());
    }
    Ok(())
}

pub(super) fn fill_login(report: &mut Report, done: &Establish) {
    report.set("logged_in", done.succeeded);
    report.set("failures", done.failed);
    report.set("login_retries", done.retried);
    report.set("login_elapsed_s", round(done.elapsed.as_secs_f64(), 3));
    report.set(
        "logins_per_s",
        round(per_second(done.succeeded as u64, done.elapsed), 1),
    );
}

pub(super) fn fill_fanout(report: &mut Report, r: &FanoutResult) {
    report.set("members", r.members);
    report.set("sent", r.sent);
    report.set("sent_per_s", round(per_second(r.sent, r.send_window), 1));
    report.set("expected", r.expected);
    report.set("received", r.received);
    report.set("loss", r.expected.saturating_sub(r.received));
    report.set("out_of_order", r.out_of_order);
    report.set("entry_id_regressions", r.entry_regressions);
    report.set("disconnects", r.disconnects);
    report.set("deliveries_per_s", round(r.deliveries_per_s(), 1));
    report.set("p50_ms", ms(r.latency.quantile(0.5)));
    report.set("p99_ms", ms(r.latency.quantile(0.99)));
    report.set("p999_ms", ms(r.latency.quantile(0.999)));
    report.set("max_ms", ms(r.latency.max()));
    if r.members_by_instance.len() > 1 {
        // Receivers on the sender's own instance, and on the others.
        for (name, h) in [("local", &r.latency_local), ("remote", &r.latency_remote)] {
            report.set(&format!("{name}_received"), h.count());
            report.set(&format!("{name}_p50_ms"), ms(h.quantile(0.5)));
            report.set(&format!("{name}_p99_ms"), ms(h.quantile(0.99)));
        }
        report.set("members_by_instance", r.members_by_instance.clone());
        report.set("expected_by_instance", r.expected_by_instance.clone());
        report.set("received_by_instance", r.received_by_instance.clone());
    }
}

/// CPU use during the measured stretch: tells whether chatd or the generator was the limit.
/// With `rate_key` (a per-second result already in the report), also that rate per second of
/// chatd CPU (every instance's together in a cluster): what one fully busy chatd core would do
/// at this load, on a shared machine.
pub(super) fn fill_cpu(report: &mut Report, cpu: CpuUse, rate_key: Option<&str>) {
    report.set("generator_cpu_pct", cpu.generator);
    report.set("chatd_cpu_pct", cpu.chatd);
    if cpu.each.len() > 1 {
        report.set("chatd_cpu_pct_each", cpu.each.clone());
    }
    if cpu.nats.is_some() {
        report.set("nats_cpu_pct", cpu.nats);
    }
    if let (Some(key), Some(pct)) = (rate_key, cpu.chatd) {
        let per_cpu = report
            .f64(key)
            .filter(|_| pct > 0.0)
            .map(|rate| round(rate / (pct / 100.0), 0));
        report.set(&format!("{key}_per_chatd_cpu"), per_cpu);
    }
}
