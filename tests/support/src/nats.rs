//! A nats-server with JetStream on loopback, for the cluster tests and the load generator's
//! cluster mode: a free port, its own storage directory, stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server.
pub struct NatsServer {
    pub addr: SocketAddr,
    store: PathBuf,
    /// Clustering flags, for a member of a NATS cluster.
    cluster_args: Vec<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free loopback port (the binary must be on PATH, or named by
    /// `NATS_SERVER`).
    pub fn start() -> std::io::Result<NatsServer> {
        let dir = tempfile::tempdir()?;
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut server = NatsServer {
            addr,
            store: dir.path().join("jetstream"),
            cluster_args: Vec::new(),
            child: None,
            _dir: dir,
        };
        server.resume()?;
        Ok(server)
    }

    /// Starts `size` nats-servers forming one JetStream cluster on loopback (streams may then
    /// keep up to `size` copies), and waits until each accepts connections.
    pub fn start_cluster(size: usize) -> std::io::Result<Vec<NatsServer>> {
        let free_port = || -> std::io::Result<u16> {
            Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
        };
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let routes: Vec<String> = route_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect();
        let mut members = Vec::new();
        for (i, port) in route_ports.iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            members.push(NatsServer {
                addr,
                store: dir.path().join("jetstream"),
                cluster_args: vec![
                    "--server_name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "chat-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{port}"),
                    "--routes".into(),
                    routes.join(","),
                ],
                child: None,
                _dir: dir,
            });
        }
        for member in &mut members {
            member.resume()?;
        }
        Ok(members)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// The running server's process id (for CPU and memory readings), `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (kill), keeping its storage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage, and waits until it accepts connections.
    pub fn resume(&mut self) -> std::io::Result<()> {
        self.stop();
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.addr.port().to_string())
            .arg("-js")
            .arg("-sd")
            .arg(&self.store)
            .args(&self.cluster_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("nats-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
