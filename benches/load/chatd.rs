//! A chatd child process for the load generator: the release binary, a temporary data
//! directory, and a generated chat.conf with the benchmark's settings.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
}

/// The generated chat.conf: loopback on a free port, small PBKDF2 counts, `log_level = warn`,
/// room for the connections; with `lifted` (every scenario but `worst`) also per-address caps
/// and quotas off and rate limits far beyond what the generator sends. Everything else is the
/// default.
pub fn config_text(data_dir: &Path, settings: &ChatdSettings) -> String {
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
    format!(
        "# Written by the load generator (benches/load/chatd.rs).
listen = 127.0.0.1:0
data_dir = \"{data}\"
durability = {durability}
log_level = warn
max_connections = {max_connections}
{lifted}scram_iterations = {iterations}
scram_min_iterations = {iterations}
",
        data = data_dir
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
        durability = settings.durability,
        max_connections = settings.max_connections,
        iterations = settings.iterations,
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

/// A running chatd, stopped (SIGTERM, then SIGKILL) and its data removed when dropped.
pub struct Chatd {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Chatd {
    /// Starts `binary` on `dir` (which holds `data/`, possibly pre-filled) and waits for its
    /// "Listening on:" line. chatd's other stderr lines are copied to ours, prefixed.
    pub fn start(
        binary: &Path,
        dir: tempfile::TempDir,
        settings: &ChatdSettings,
    ) -> Result<Chatd, String> {
        let data_dir = dir.path().join("data");
        let conf = dir.path().join("chat.conf");
        std::fs::write(&conf, config_text(&data_dir, settings))
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        let mut command = if settings.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The start-up banner runs from a rule of `=` to the rule after "Listening on:";
            // only the address in it matters.
            let (mut in_banner, mut seen_address) = (false, false);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let rule = line.starts_with("====");
                if !seen_address && rule {
                    in_banner = true;
                } else if in_banner {
                    if let Some(rest) = line.strip_prefix("Listening on:") {
                        let _ = tx.send(rest.trim().to_string());
                        seen_address = true;
                    } else if rule && seen_address {
                        in_banner = false;
                    }
                } else {
                    eprintln!("[chatd] {line}");
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("chatd exited at start ({status})"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("chatd did not report its address".into());
                }
            }
        };
        let addr = addr
            .parse()
            .map_err(|e| format!("chatd's address {addr:?}: {e}"))?;
        Ok(Chatd {
            child,
            pid,
            addr,
            _dir: dir,
        })
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
