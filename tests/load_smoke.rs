//! Smoke test of the load generator (benches/load): a one-second fanout with a few clients
//! against an in-process chatd loses nothing and yields a well-formed report. No timing
//! assertions: the numbers themselves belong to `cargo bench --bench load`.

#[path = "../benches/load/mod.rs"]
mod load;

use std::time::Duration;

use chat_test_support::TestServer;
use load::histogram::Histogram;
use load::{Accounts, Params, Target};

#[test]
fn fanout_for_a_second_loses_nothing() {
    let server = TestServer::start_with(|config| {
        // As the bench configures its own chatd: nothing throttles the generator.
        config.rate_burst = 1_000_000;
        config.rate_units_per_s = 1_000_000;
        config.max_unauth = 0;
        config.quota_messages_per_day = 0;
        config.quota_bytes_per_day = 0;
        config.rate_bytes_per_s = 1 << 30;
    });
    let target = Target {
        durability: Some("normal".into()),
        ..Target::single(server.addr, None, server.addr.to_string())
    };
    let params = Params {
        clients: 5,
        concurrency: 5,
        senders: 2,
        rate: 20.0,
        duration: Duration::from_secs(1),
        bytes: 100,
        iterations: chat_test_support::ITERATIONS,
        prefix: "smoke".into(),
        messages: 0,
        ..Params::default()
    };
    let report = load::fanout(&target, &params, Accounts::Register).expect("fanout runs");
    let json = report.to_json();
    eprintln!("{json}");

    assert_eq!(report.u64("logged_in"), Some(5), "{json}");
    assert_eq!(report.u64("failures"), Some(0), "{json}");
    // The set-up retries a failed login; a correct server never needs that.
    assert_eq!(report.u64("login_retries"), Some(0), "{json}");
    let sent = report.u64("sent").expect("sent");
    assert!(sent > 0, "{json}");
    assert_eq!(report.u64("expected"), Some(sent * 5), "{json}");
    assert_eq!(report.u64("received"), report.u64("expected"), "{json}");
    assert_eq!(report.u64("loss"), Some(0), "{json}");
    assert_eq!(report.u64("out_of_order"), Some(0), "{json}");
    assert_eq!(report.u64("entry_id_regressions"), Some(0), "{json}");
    assert_eq!(report.u64("disconnects"), Some(0), "{json}");
    for key in [
        "deliveries_per_s",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "logins_per_s",
    ] {
        let value = report
            .f64(key)
            .unwrap_or_else(|| panic!("{key} missing: {json}"));
        assert!(value.is_finite() && value >= 0.0, "{key}: {json}");
    }
    let (p50, p99, max) = (
        report.f64("p50_ms").unwrap(),
        report.f64("p99_ms").unwrap(),
        report.f64("max_ms").unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "{json}");
    assert_eq!(json["scenario"], "fanout");
    assert_eq!(json["pinned"], false);
    assert_eq!(json["clients"], 5);
    assert_eq!(json["senders"], 2);
    assert!(json["rss_kib_per_conn"].is_null() || json.get("rss_kib_per_conn").is_none());
    let table = load::report::table(std::slice::from_ref(&report));
    assert!(table.contains("deliveries_per_s"), "{table}");
}

#[test]
fn histogram_quantiles_are_within_one_percent() {
    let mut h = Histogram::new();
    for v in 1..=100_000u64 {
        h.record(v * 1000);
    }
    assert_eq!(h.count(), 100_000);
    assert_eq!(h.max(), 100_000_000);
    for (q, exact) in [
        (0.5, 50_000_000u64),
        (0.99, 99_000_000),
        (0.999, 99_900_000),
    ] {
        let got = h.quantile(q) as f64;
        let error = (got - exact as f64).abs() / exact as f64;
        assert!(error < 0.01, "q{q}: {got} vs {exact}");
    }
    assert_eq!(Histogram::new().quantile(0.99), 0);
    let mut small = Histogram::new();
    small.record(0);
    small.record(u64::MAX);
    assert_eq!(small.quantile(0.5), 0);
    assert_eq!(small.quantile(1.0), u64::MAX);
}

/// The generator's cluster mode (`--cluster 2`, feature `cluster`, nats-server on PATH): two
/// chatd instances on copies of one pre-filled chat.db, clients spread over both; every member
/// gets every message, those on the other instance included.
#[cfg(feature = "cluster")]
#[test]
fn fanout_across_two_cluster_instances_loses_nothing() {
    use load::chatd::{ChatdSettings, find_binary};
    use load::cluster::Cluster;

    let binary = find_binary().expect("the chatd binary of this build");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed");
    std::fs::create_dir(&seed).expect("seed dir");
    let params = Params {
        clients: 6,
        concurrency: 6,
        senders: 2,
        rate: 20.0,
        duration: Duration::from_secs(1),
        bytes: 100,
        iterations: chat_test_support::ITERATIONS,
        prefix: "smoke".into(),
        messages: 0,
        ..Params::default()
    };
    load::precreate_accounts(
        &seed.join("chat.db"),
        &params,
        params.clients,
        chat::store::Durability::Normal,
    )
    .expect("accounts");
    let settings = ChatdSettings {
        durability: "normal".into(),
        iterations: params.iterations,
        max_connections: 100,
        pin: false,
        lifted: true,
        cluster: None,
        extra: Vec::new(),
    };
    let cluster = Cluster::start(&binary, dir.path(), &seed, 2, &settings)
        .expect("a cluster of two (apt-get install nats-server)");
    let target = Target {
        addrs: cluster.instances.iter().map(|c| c.addr).collect(),
        pids: cluster.instances.iter().map(|c| c.pid).collect(),
        nats_pid: cluster.nats.pid(),
        server: "own".into(),
        durability: Some("normal".into()),
        pinned: false,
        cluster: Some(2),
    };
    let report = load::fanout(&target, &params, Accounts::Exist).expect("fanout runs");
    let json = report.to_json();
    eprintln!("{json}");

    assert_eq!(report.u64("logged_in"), Some(6), "{json}");
    assert_eq!(report.u64("login_retries"), Some(0), "{json}");
    let sent = report.u64("sent").expect("sent");
    assert!(sent > 0, "{json}");
    assert_eq!(report.u64("expected"), Some(sent * 6), "{json}");
    assert_eq!(report.u64("received"), report.u64("expected"), "{json}");
    assert_eq!(report.u64("out_of_order"), Some(0), "{json}");
    assert_eq!(report.u64("entry_id_regressions"), Some(0), "{json}");
    // Clients 0, 2, 4 on i0 and 1, 3, 5 on i1; senders 0 and 1, one on each.
    assert_eq!(
        json["members_by_instance"],
        serde_json::json!([3, 3]),
        "{json}"
    );
    assert_eq!(
        json["received_by_instance"], json["expected_by_instance"],
        "{json}"
    );
    // Each message reaches three members on its sender's instance and three on the other.
    assert_eq!(report.u64("local_received"), Some(sent * 3), "{json}");
    assert_eq!(report.u64("remote_received"), Some(sent * 3), "{json}");
    assert_eq!(json["cluster"], 2);
    assert_eq!(
        json["chatd_cpu_pct_each"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
    drop(cluster);
}
