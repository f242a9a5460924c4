//! The operator's end of the control socket: one request, one answer, then the socket closes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::server::control::{Answer, Request};
use crate::server::data_dir::CONTROL_SOCKET;

/// How long the server gets to answer (an account change waits for its commit, and a commit for
/// a busy database at most a couple of seconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not get an answer.
#[derive(Debug)]
pub enum CtlError {
    /// No server runs on the data directory (no socket, or nobody answers on it).
    NotRunning(String),
    /// The socket is there but talking to it failed.
    Io(String),
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::NotRunning(why) => write!(f, "chatd is not running: {why}"),
            CtlError::Io(why) => f.write_str(why),
        }
    }
}

/// Sends `request` to the server running on `data_dir` and returns its answer.
pub fn send(data_dir: &Path, request: &Request) -> Result<Answer, CtlError> {
    let path = data_dir.join(CONTROL_SOCKET);
    let mut stream = match UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CtlError::NotRunning(format!(
                "{} does not exist",
                path.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(CtlError::NotRunning(format!(
                "nobody answers on {} (left by a chatd that did not stop cleanly)",
                path.display()
            )));
        }
        Err(e) => return Err(CtlError::Io(format!("{}: {e}", path.display()))),
    };
    let talk = |stream: &mut UnixStream| -> io::Result<Vec<u8>> {
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
        stream.write_all(format!("{}\n", request.to_line()).as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(answer)
    };
    let bytes = talk(&mut stream)
        .map_err(|e| CtlError::Io(format!("talking to chatd on {}: {e}", path.display())))?;
    if bytes.is_empty() {
        return Err(CtlError::Io(format!(
            "chatd on {} closed the connection without an answer (see its log)",
            path.display()
        )));
    }
    Answer::decode(&bytes).map_err(CtlError::Io)
}
