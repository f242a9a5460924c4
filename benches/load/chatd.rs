//! A chatd child process for the load generator: the release binary, a data directory the
//! generator prepared, and a generated chat.conf with the benchmark's settings (alone, or as one
//! instance of a cluster on NATS).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The line a cluster instance logs once it has caught up with the stream and listens.
const CLUSTER_READY: &str = "accepting connections";
/// How long an instance may take to start (a cluster instance: to reach JetStream and catch up).
const START_TIMEOUT: Duration = Duration::from_secs(20);
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of the chatd the generator starts.
#[derive(Clone, Debug)]
pub struct ChatdSettings {
    /// `full` or `normal`.
    pub durability: String,
    /// scram_iterations and scram_min_iterations.
    pub iterations: u32,
    pub max_connections: usize,
    /// Run chatd on CPU 0 with `taskset -c 0`.
    pub pin: bool,
    /// Per-address caps, quotas and rate limits off (else the shipped defaults hold).
    pub lifted: bool,
    /// As an instance of a cluster: where NATS is and the instance's name.
    pub cluster: Option<ClusterMember>,
    /// More chat.conf lines (`key = value`, `--set`), for keys the generator does not set.
    pub extra: Vec<String>,
}

/// The cluster settings of one instance.
#[derive(Clone, Debug)]
pub struct ClusterMember {
    /// `nats://HOST:PORT` of the NATS servers.
    pub urls: Vec<String>,
    /// `cluster_instance`, unique in the cluster.
    pub instance: String,
    /// `cluster_replicas`: copies JetStream keeps of the stream.
    pub replicas: usize,
}

/// The generated chat.conf: `listen`, small PBKDF2 counts, `log_level = warn`,
/// room for the connections; with `lifted` (every scenario but `worst`) also per-address caps
/// and quotas off and rate limits far beyond what the generator sends; in a cluster the
/// `cluster_*` keys and `log_level = info` (the readiness line is an info line; the generator
/// lowers the level to `warn` once it has seen it). Everything else is the default.
pub fn config_text(data_dir: &Path, listen: SocketAddr, settings: &ChatdSettings) -> String {
    let lifted = if settings.lifted {
        "max_per_ip = 0
max_unauth_per_ip = 0
max_handshakes_per_ip_per_min = 0
max_unauth = 0
rate_burst = 1000000
rate_units_per_s = 1000000
quota_messages_per_day = 0
quota_bytes_per_day = 0
rate_bytes_per_s = 1GiB
login_fail_per_ip_per_h = 0
register_per_ip_per_h = 0
"
    } else {
        ""
    };
    let (log_level, cluster) = match &settings.cluster {
        None => ("warn", String::new()),
        Some(member) => (
            "info",
            format!(
                "cluster_urls = {}\ncluster_instance = {}\ncluster_replicas = {}\n",
                member.urls.join(","),
                member.instance,
                member.replicas
            ),
        ),
    };
    format!(
        "# Written by the load generator (benches/load/chatd.rs).
listen = {listen}
data_dir = \"{data}\"
durability = {durability}
log_level = {log_level}
max_connections = {max_connections}
{lifted}{cluster}scram_iterations = {iterations}
scram_min_iterations = {iterations}
{extra}",
        data = data_dir
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
        durability = settings.durability,
        max_connections = settings.max_connections,
        iterations = settings.iterations,
        extra = settings
            .extra
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
}

/// Where the chatd binary is: `$CHATD_BIN`, else the one cargo built for this bench (the bench
/// profile builds the package's binaries into target/release), else target/release/chatd.
pub fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CHATD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let candidates = [
        option_env!("CARGO_BIN_EXE_chatd").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/chatd")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no chatd binary: run `cargo build --release --bin chatd` or set CHATD_BIN".to_string()
        })
}

/// A running chatd, stopped (SIGTERM, then SIGKILL) when dropped. Its data directory belongs to
/// the caller.
pub struct Chatd {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// `chatd`, or `chatd i0` for a cluster's instance i0: how its log lines are prefixed.
    pub name: String,
}

impl Chatd {
    /// Starts `binary` on `data_dir` (possibly pre-filled) with a chat.conf written to `conf`,
    /// on a free loopback port, and waits until it accepts connections: alone, until the port
    /// answers (its log level is `warn`, so it prints no banner to read); in a cluster, until it
    /// logs that it caught up and accepts connections (its port is bound before that), then
    /// lowers its log level to `warn` (`chatd ctl log-level warn`). chatd's stderr lines are
    /// copied to ours, prefixed with its name.
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        conf: &Path,
        settings: &ChatdSettings,
    ) -> Result<Chatd, String> {
        private(data_dir)?;
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?;
        std::fs::write(conf, config_text(data_dir, addr, settings))
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        let name = match &settings.cluster {
            Some(member) => format!("chatd {}", member.instance),
            None => "chatd".to_string(),
        };
        let mut command = if settings.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command.arg("--config").arg(conf);
        if settings.cluster.is_none() {
            // A pre-filled chat.db has no server key yet: this start makes one. (A cluster's
            // instances get the same key files from the generator.)
            command.arg("--new-identity");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id();
        let (lines, log) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let prefix = name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    // A cluster instance starts at `info`: of those lines only its cluster's.
                    if !line.contains(" INFO ") || line.contains("cluster") {
                        eprintln!("[{prefix}] {line}");
                    }
                    // Read only while starting; afterwards nobody listens.
                    let _ = lines.send(line);
                }
            });
        }
        let mut chatd = Chatd {
            child,
            pid,
            addr,
            name,
        };
        let cluster = settings.cluster.is_some();
        let timeout = if cluster {
            CLUSTER_START_TIMEOUT
        } else {
            START_TIMEOUT
        };
        chatd.wait_ready(&log, cluster, timeout)?;
        if cluster {
            chatd.quiet_log(binary, conf);
        }
        Ok(chatd)
    }

    /// Waits until chatd is ready (see `start`); stops it on a timeout, and says why it
    /// exited if it did.
    fn wait_ready(
        &mut self,
        log: &mpsc::Receiver<String>,
        cluster: bool,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last_error: Option<String> = None;
        loop {
            match log.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    if cluster && line.contains(CLUSTER_READY) {
                        return Ok(());
                    }
                    if is_error(&line) {
                        last_error = Some(line);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            if !cluster && TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its last words may still be on their way through the pipe.
                let until = Instant::now() + Duration::from_secs(1);
                while let Ok(line) =
                    log.recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    if is_error(&line) {
                        last_error = Some(line);
                    }
                }
                let why = last_error.map(|l| format!(": {l}")).unwrap_or_default();
                let hint = if cluster && why.contains("cluster feature") {
                    "; run the generator as `cargo bench --features cluster --bench load -- ...` \
                     (or set CHATD_BIN to a chatd built with --features cluster)"
                } else {
                    ""
                };
                return Err(format!(
                    "{} exited at start ({status}){why}{hint}",
                    self.name
                ));
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(if cluster {
                    format!(
                        "{} did not log \"{CLUSTER_READY}\" within {timeout:?}",
                        self.name
                    )
                } else {
                    format!(
                        "{} did not listen on {} within {timeout:?}",
                        self.name, self.addr
                    )
                });
            }
        }
    }

    /// Lowers a cluster instance's log level to `warn`, as a lone chatd here runs (its info
    /// lines would log every login); a failure is only reported.
    fn quiet_log(&self, binary: &Path, conf: &Path) {
        let outcome = Command::new(binary)
            .arg("--config")
            .arg(conf)
            .args(["ctl", "log-level", "warn"])
            .stdin(Stdio::null())
            .output();
        match outcome {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "{}: cannot lower the log level ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("{}: cannot run chatd ctl: {e}", self.name),
        }
    }

    /// Asks chatd to stop (SIGTERM) and waits up to 10 s, then kills it.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Chatd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether chatd's stderr line says why it fails: an error record, or the one line chatd prints
/// when it cannot start (`chatd: ...`).
fn is_error(line: &str) -> bool {
    line.contains(" ERROR ") || line.starts_with("chatd:")
}

/// Makes a pre-filled data directory the owner's only, as chatd requires (the generator writes
/// it with the default umask).
fn private(data_dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if !data_dir.exists() {
        return Ok(());
    }
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    chmod(data_dir, 0o700)?;
    for entry in std::fs::read_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() {
            chmod(&path, 0o600)?;
        }
    }
    Ok(())
}
