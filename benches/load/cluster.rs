//! A chatd cluster for the load generator (`--cluster N`): one nats-server with JetStream and N
//! chatd instances `i0`.. sharing rooms through it, each on its own copy of one pre-filled data
//! directory, all with the same key files (as a cluster's instances must have).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use chat_test_support::nats::NatsServer;
use zeroize::Zeroizing;

use super::chatd::{Chatd, ChatdSettings, ClusterMember};

/// The key files every instance of a cluster shares.
const KEY_FILES: [&str; 2] = ["server_x25519.key", "auth_secret.key"];

/// A running cluster. Dropping it stops the instances first, then NATS.
pub struct Cluster {
    /// The instances, `i0` first.
    pub instances: Vec<Chatd>,
    pub nats: NatsServer,
}

impl Cluster {
    /// Starts NATS, then `count` instances of `binary` one after the other, each on
    /// `dir/iK`, a copy of the files in `seed` (the pre-filled chat.db) plus two new key files
    /// shared by all; `settings` apply to each (with its own `cluster_instance`, and
    /// `cluster_replicas = 1` on the one nats-server). With `settings.pin` the nats-server runs
    /// on CPU 0 with the instances. Each instance is waited for until it has caught up with the
    /// stream and accepts connections; the first to get there publishes the cluster's Genesis.
    pub fn start(
        binary: &Path,
        dir: &Path,
        seed: &Path,
        count: usize,
        settings: &ChatdSettings,
    ) -> Result<Cluster, String> {
        let nats = NatsServer::start().map_err(|e| {
            format!(
                "cannot start nats-server with JetStream ({e}); install it (apt-get install \
                 nats-server) or name it with NATS_SERVER"
            )
        })?;
        if settings.pin {
            if let Some(pid) = nats.pid() {
                pin_to_cpu0(pid)?;
            }
        }
        eprintln!(
            "nats-server (pid {}) on {}{}",
            nats.pid().map_or("?".into(), |p| p.to_string()),
            nats.url(),
            if settings.pin { ", CPU 0" } else { "" }
        );
        let keys = [new_key()?, new_key()?];
        let mut cluster = Cluster {
            instances: Vec::with_capacity(count),
            nats,
        };
        for k in 0..count {
            let name = format!("i{k}");
            let data = dir.join(&name);
            prepare(&data, seed, &keys)?;
            let settings = ChatdSettings {
                cluster: Some(ClusterMember {
                    urls: vec![cluster.nats.url()],
                    instance: name.clone(),
                    replicas: 1,
                }),
                ..settings.clone()
            };
            let conf = dir.join(format!("{name}.conf"));
            let chatd = Chatd::start(binary, &data, &conf, &settings)?;
            eprintln!(
                "{} (pid {}) on {}, caught up",
                chatd.name, chatd.pid, chatd.addr
            );
            cluster.instances.push(chatd);
        }
        Ok(cluster)
    }

    /// Stops every instance, then NATS.
    pub fn stop(&mut self) {
        for chatd in &mut self.instances {
            chatd.stop();
        }
        self.nats.stop();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 32 random bytes, a key file's content.
fn new_key() -> Result<Zeroizing<[u8; 32]>, String> {
    chat::wire::crypto::random_bytes()
        .map(Zeroizing::new)
        .map_err(|e| format!("no randomness for the cluster's keys: {e}"))
}

/// Makes `data` (mode 0700) a copy of the files in `seed`, with the shared key files (0600).
fn prepare(data: &Path, seed: &Path, keys: &[Zeroizing<[u8; 32]>; 2]) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(data)
        .map_err(io(data))?;
    for entry in std::fs::read_dir(seed).map_err(io(seed))? {
        let from = entry.map_err(io(seed))?.path();
        if from.is_file() {
            if let Some(file) = from.file_name() {
                let to = data.join(file);
                std::fs::copy(&from, &to).map_err(io(&to))?;
            }
        }
    }
    for (file, key) in KEY_FILES.iter().zip(keys) {
        let path = data.join(file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        std::io::Write::write_all(&mut f, key.as_slice()).map_err(io(&path))?;
    }
    Ok(())
}

/// An I/O error about `path`, as a message.
fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Moves every thread of process `pid` to CPU 0.
fn pin_to_cpu0(pid: u32) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-cp", "0", &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if !status.success() {
        return Err(format!("taskset -a -cp 0 {pid} failed ({status})"));
    }
    Ok(())
}
