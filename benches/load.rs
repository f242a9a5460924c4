//! The load generator: `cargo bench --bench load -- SCENARIO [flags]`. One thread on mio drives
//! thousands of sans-I/O `ClientSession`s against chatd; see benches/README.md for the scenarios,
//! the flags and the results.

#[path = "load/mod.rs"]
mod load;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use load::chatd::{Chatd, ChatdSettings, find_binary};
use load::cluster::Cluster;
use load::report::{Report, table};
use load::{Accounts, Params, Target};

const USAGE: &str = "\
usage: cargo bench --bench load -- SCENARIO [options]

scenarios:
  connect   N clients handshake and log in, at most C in flight: logins/s, chatd RSS per connection
  fanout    N clients in #general, S of them say R msgs/s each for T s: deliveries/s, loss, latency
  sweep     fanout at doubling R until deliveries/s grow by less than 5 % (or messages are lost)
  history   N clients page back through a room of M messages (limit 100): pages/s
  worst     per request type, one frame packed with the costliest instance, against the shipped
            limits with M messages and R rooms: output bytes per frame, a bystander's stall
  search    FIND round trips one at a time, per kind of query, scoped and unscoped, M messages
  storm     N members of #general online, then L more log in: messages the N receive meanwhile

options:
  --server HOST:PORT   use a running chatd (accounts are registered over the wire) instead of
                       starting one; it must accept --iterations and not rate-limit the generator;
                       a comma-separated list (a running cluster's instances) spreads the clients
  --server-pid PID     with --server: read that process's RSS and CPU (a list, one per address)
  --cluster N          start a nats-server with JetStream and N chatd instances sharing rooms
                       through it (chatd built with --features cluster), clients spread
                       round-robin over them; N = 1 measures one instance on NATS; connect,
                       fanout, sweep, history, storm
  --clients N          clients (default: connect 1000, fanout 100, sweep 1000, history 1,
                       worst 2, search 1, storm 5000)
  --concurrency C      handshakes/logins in flight at once (default 100)
  --senders S          clients that send (default 10)
  --rate R             messages per second per sender (default 10; the first rate of a sweep)
  --duration T         seconds of sending or paging (default 5)
  --bytes B            bytes per text, at least 33 (default 100)
  --durability D       full or normal: the chatd started here (default full)
  --iterations I       PBKDF2 count of the accounts (default 1000)
  --messages M         history, worst, search: messages in the room (default: history
                       1000000, worst and search 50000)
  --rooms R            worst: rooms besides #general (default 20000)
  --logins L           storm: members logging in during the storm (default 500)
  --requests K         search: searches per kind of query and scope (default 200)
  --steps K            sweep: at most K rates (default 12)
  --protocol V         1 or 2: the version the sessions offer (default 2; not worst, search)
  --set KEY=VALUE      one more chat.conf line for the chatd started here (a key the generator
                       does not set; repeatable), e.g. --set cluster_max_inflight=100000
  --pin                chatd on CPU 0 (taskset -c 0), the generator on CPU 1; with --cluster
                       every instance and the nats-server on CPU 0
  --json               one JSON object per result on stdout instead of a table
";

struct Options {
    scenario: String,
    /// Running chatds to use instead of starting one.
    server: Vec<SocketAddr>,
    server_pids: Vec<u32>,
    /// Instances of a cluster to start on NATS.
    cluster: Option<usize>,
    /// `--set` lines for chat.conf.
    conf_lines: Vec<String>,
    params: Params,
    durability: String,
    steps: usize,
    pin: bool,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut scenario = None;
    let mut o = Options {
        scenario: String::new(),
        server: Vec::new(),
        server_pids: Vec::new(),
        cluster: None,
        conf_lines: Vec::new(),
        params: Params::default(),
        durability: "full".into(),
        steps: 12,
        pin: false,
        json: false,
    };
    let mut clients = None;
    let mut messages = None;
    let mut rooms = None;
    let mut explicit_duration = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: not a number: {v}"))
        }
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => return Err(String::new()),
            "--server" => {
                for v in value(arg)?.split(',') {
                    o.server.push(
                        v.to_socket_addrs()
                            .map_err(|e| format!("--server {v}: {e}"))?
                            .next()
                            .ok_or_else(|| format!("--server {v}: no address"))?,
                    );
                }
            }
            "--server-pid" => {
                for v in value(arg)?.split(',') {
                    o.server_pids.push(num(arg, v.to_string())?);
                }
            }
            "--cluster" => {
                let n: usize = num(arg, value(arg)?)?;
                if n == 0 {
                    return Err("--cluster needs at least 1 instance".into());
                }
                o.cluster = Some(n);
            }
            "--clients" => clients = Some(num(arg, value(arg)?)?),
            "--concurrency" => o.params.concurrency = num(arg, value(arg)?)?,
            "--senders" => o.params.senders = num(arg, value(arg)?)?,
            "--rate" => o.params.rate = num(arg, value(arg)?)?,
            "--duration" => {
                o.params.duration = Duration::from_secs_f64(num::<f64>(arg, value(arg)?)?);
                explicit_duration = true;
            }
            "--bytes" => o.params.bytes = num(arg, value(arg)?)?,
            "--iterations" => o.params.iterations = num(arg, value(arg)?)?,
            "--messages" => messages = Some(num(arg, value(arg)?)?),
            "--rooms" => rooms = Some(num(arg, value(arg)?)?),
            "--logins" => o.params.logins = num(arg, value(arg)?)?,
            "--requests" => o.params.requests = num(arg, value(arg)?)?,
            "--protocol" => {
                o.params.protocol = num(arg, value(arg)?)?;
                if !chat::wire::handshake::SUPPORTED_VERSIONS.contains(&o.params.protocol) {
                    return Err(format!(
                        "--protocol {} is not spoken here",
                        o.params.protocol
                    ));
                }
            }
            "--steps" => o.steps = num(arg, value(arg)?)?,
            "--durability" => {
                let v = value(arg)?;
                if v != "full" && v != "normal" {
                    return Err(format!("--durability must be full or normal, not {v}"));
                }
                o.durability = v;
            }
            "--set" => {
                let v = value(arg)?;
                let Some((key, val)) = v.split_once('=') else {
                    return Err(format!("--set {v}: not KEY=VALUE"));
                };
                o.conf_lines
                    .push(format!("{} = {}", key.trim(), val.trim()));
            }
            "--pin" => o.pin = true,
            "--json" => o.json = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if scenario.is_none() => scenario = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    o.scenario = scenario.ok_or("which scenario?")?;
    o.params.clients = clients.unwrap_or(match o.scenario.as_str() {
        "connect" | "sweep" => 1000,
        "fanout" => 100,
        "history" | "search" => 1,
        "worst" => 2,
        "storm" => 5000,
        other => return Err(format!("unknown scenario {other}")),
    });
    o.params.messages = messages.unwrap_or(match o.scenario.as_str() {
        "worst" | "search" => 50_000,
        _ => 1_000_000,
    });
    o.params.rooms = rooms.unwrap_or(if o.scenario == "worst" { 20_000 } else { 0 });
    if o.scenario == "worst" && !explicit_duration {
        // Here the duration bounds the service of each packed frame.
        o.params.duration = Duration::from_secs(10);
    }
    if o.params.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if !o.server_pids.is_empty() && o.server_pids.len() != o.server.len() {
        return Err("--server-pid needs one pid per --server address".into());
    }
    if let Some(n) = o.cluster {
        if !o.server.is_empty() {
            return Err("--cluster starts its own instances: no --server".into());
        }
        if matches!(o.scenario.as_str(), "worst" | "search") {
            return Err(format!(
                "{} talks to one chatd: no --cluster (it works with connect, fanout, sweep, \
                 history and storm)",
                o.scenario
            ));
        }
        if o.params.clients < n {
            eprintln!(
                "warning: {} clients on {n} instances leave some without clients",
                o.params.clients
            );
        }
    }
    Ok(o)
}

/// Lifts our open-files soft limit to the hard limit, so thousands of sockets fit.
fn raise_open_files(wanted: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        limit.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("cannot raise the open-files limit: {e}");
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if soft < wanted as u64 + 64 {
        eprintln!("warning: open-files limit {soft} is too low for {wanted} clients");
    }
}

/// Pins every thread of this process to CPU 1.
fn pin_self() -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-cp", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if !status.success() {
        return Err(format!("taskset -a -cp 1 failed ({status})"));
    }
    Ok(())
}

/// The servers a run started, stopped (chatd before NATS) and their data removed when dropped.
struct Started {
    _chatd: Option<Chatd>,
    _cluster: Option<Cluster>,
    _dir: tempfile::TempDir,
}

fn run(o: &Options) -> Result<Vec<Report>, String> {
    raise_open_files(o.params.clients);
    if o.pin {
        pin_self()?;
    }
    let p = &o.params;
    let own_data = matches!(o.scenario.as_str(), "worst" | "search" | "storm");
    if own_data && !o.server.is_empty() {
        return Err(format!(
            "{} writes its data into chatd's database before it starts: no --server",
            o.scenario
        ));
    }
    // With our own chatd the accounts (and the history room) go straight into its database
    // before it starts; a running server gets them over the wire.
    let (started, target, accounts) = if o.server.is_empty() {
        let (started, target) = start_servers(o)?;
        (Some(started), target, Accounts::Exist)
    } else {
        if o.scenario == "history" {
            eprintln!(
                "history against --server pages through whatever #general holds; \
                 --messages is only reported"
            );
        }
        let list: Vec<String> = o.server.iter().map(ToString::to_string).collect();
        let target = Target {
            addrs: o.server.clone(),
            pids: o.server_pids.clone(),
            nats_pid: None,
            server: list.join(","),
            durability: None,
            pinned: false,
            cluster: None,
        };
        (None, target, Accounts::Register)
    };
    let reports = match o.scenario.as_str() {
        "connect" => vec![load::connect(&target, p, accounts)?],
        "fanout" => vec![load::fanout(&target, p, accounts)?],
        "sweep" => load::sweep(&target, p, accounts, o.steps)?,
        "history" => vec![load::history(&target, p, accounts)?],
        "worst" => load::worst(&target, p)?,
        "search" => load::search(&target, p)?,
        "storm" => vec![load::storm(&target, p)?],
        other => return Err(format!("unknown scenario {other}")),
    };
    drop(started);
    Ok(reports)
}

/// Writes the scenario's data into a new chat.db, then starts one chatd on it, or a cluster
/// (`--cluster N`) on copies of it.
fn start_servers(o: &Options) -> Result<(Started, Target), String> {
    let p = &o.params;
    let binary = find_binary()?;
    let dir = tempfile::Builder::new()
        .prefix("chat-load-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let db = data.join("chat.db");
    let durability = match o.durability.as_str() {
        "normal" => chat::store::Durability::Normal,
        _ => chat::store::Durability::Full,
    };
    let accounts = if o.scenario == "storm" {
        p.clients + p.logins
    } else {
        p.clients
    };
    load::precreate_accounts(&db, p, accounts, durability)?;
    if o.scenario == "worst" {
        load::create_rooms(&db, p, p.rooms)?;
    }
    if matches!(o.scenario.as_str(), "history" | "worst" | "search") {
        let started = std::time::Instant::now();
        load::fill_history(&db, p, p.messages)?;
        eprintln!(
            "history: {} messages written in {:.1} s",
            p.messages,
            started.elapsed().as_secs_f64()
        );
    }
    let settings = ChatdSettings {
        durability: o.durability.clone(),
        iterations: p.iterations,
        max_connections: p.clients + p.logins + 1000,
        pin: o.pin,
        // `worst` measures against the shipped limits.
        lifted: o.scenario != "worst",
        cluster: None,
        extra: o.conf_lines.clone(),
    };
    let mut target = Target {
        addrs: Vec::new(),
        pids: Vec::new(),
        nats_pid: None,
        server: "own".into(),
        durability: Some(o.durability.clone()),
        pinned: o.pin,
        cluster: o.cluster,
    };
    let started = match o.cluster {
        None => {
            let chatd = Chatd::start(&binary, &data, &dir.path().join("chat.conf"), &settings)?;
            eprintln!(
                "chatd {} (pid {}) on {}{}, durability {}",
                binary.display(),
                chatd.pid,
                chatd.addr,
                if o.pin { ", CPU 0" } else { "" },
                o.durability
            );
            target.addrs.push(chatd.addr);
            target.pids.push(chatd.pid);
            Started {
                _chatd: Some(chatd),
                _cluster: None,
                _dir: dir,
            }
        }
        Some(n) => {
            let cluster = Cluster::start(&binary, dir.path(), &data, n, &settings)?;
            eprintln!(
                "cluster of {n} chatd {} on NATS{}, durability {}",
                binary.display(),
                if o.pin { ", all on CPU 0" } else { "" },
                o.durability
            );
            target.addrs = cluster.instances.iter().map(|c| c.addr).collect();
            target.pids = cluster.instances.iter().map(|c| c.pid).collect();
            target.nats_pid = cluster.nats.pid();
            Started {
                _chatd: None,
                _cluster: Some(cluster),
                _dir: dir,
            }
        }
    };
    Ok((started, target))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A plain `cargo bench` runs every bench target with only `--bench`: nothing to do here.
    if args.iter().all(|a| a == "--bench") {
        eprintln!("load: no scenario given, nothing run (see benches/README.md)");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load: {e}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(reports) => {
            if options.json {
                for r in &reports {
                    println!("{}", r.to_json());
                }
            } else {
                print!("{}", table(&reports));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(1)
        }
    }
}
