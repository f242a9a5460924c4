//! A chatd child process for the load generator: the release binary, a temporary data
//! directory, and a generated chat.conf with the benchmark's settings.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// The generated chat.conf: `listen`, small PBKDF2 counts, `log_level = warn`,
/// room for the connections; with `lifted` (every scenario but `worst`) also per-address caps
/// and quotas off and rate limits far beyond what the generator sends. Everything else is the
/// default.
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
    format!(
        "# Written by the load generator (benches/load/chatd.rs).
listen = {listen}
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
    /// Starts `binary` on `dir` (which holds `data/`, possibly pre-filled) on a free loopback
    /// port and waits until it accepts connections (its log level is `warn`, so it prints no
    /// banner to read the address from). chatd's stderr lines are copied to ours, prefixed.
    pub fn start(
        binary: &Path,
        dir: tempfile::TempDir,
        settings: &ChatdSettings,
    ) -> Result<Chatd, String> {
        let data_dir = dir.path().join("data");
        private(&data_dir)?;
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?;
        let conf = dir.path().join("chat.conf");
        std::fs::write(&conf, config_text(&data_dir, addr, settings))
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
            // A pre-filled chat.db has no server key yet: this start makes one.
            .arg("--new-identity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id();
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[chatd] {line}");
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("chatd exited at start ({status})"));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chatd did not listen on {addr} within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
