//! `Req`: who a request is from, as its handler sees it: the connection waiting for the answer
//! (none when the request came from another instance of a cluster, or from the server itself),
//! the user it is made as, that session's protocol version, and the time it is stamped with
//! (the same on every instance that applies it).

/// The asker of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    /// The local connection that waits for the answer, if any.
    pub conn: Option<usize>,
    pub user: String,
    pub version: u16,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
}

impl Req {
    /// The connections that get the request's own answers: the asker's, or none.
    pub fn conns(&self) -> &[usize] {
        self.conn.as_slice()
    }
}
