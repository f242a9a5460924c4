//! v1's offline delivery, with flow control: the private messages a v1 session has not read go
//! out a page at a time, each page only once the previous one has been written to the socket,
//! and the read markers move only past what was written. So a backlog of any size arrives
//! whole, and a session dropped halfway gets the rest at its next login.

use std::collections::BTreeMap;

use super::Server;
use crate::cluster::command::Body;
use crate::store::Write;
use crate::wire::frame::MAX_PLAINTEXT;
use crate::wire::message::Message;

/// Messages per page.
const PAGE: u16 = 50;

/// Where a v1 session's offline delivery stands.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The last id queued.
    after_id: u64,
    /// Per sender, the newest id of the page queued but not yet known to be written.
    unconfirmed: BTreeMap<String, u64>,
}

impl Server {
    /// Moves the backlog of connection `key` along: confirms a written page (its markers go
    /// into the next commit) and queues the next page when the output has room.
    pub(super) fn pump_backlog(&mut self, key: usize) {
        let resume_below = self.config.write_resume;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let pending = conn.out.pending();
        let Some(session) = conn.session_mut() else {
            return;
        };
        let Some(backlog) = session.backlog.as_mut() else {
            return;
        };
        if !backlog.unconfirmed.is_empty() {
            if pending > 0 {
                return;
            }
            let user = session.user.clone();
            for (peer, id) in std::mem::take(&mut backlog.unconfirmed) {
                let conv = format!("@{peer}");
                if self.replicated() {
                    self.publish_record(&user, Body::Delivered { conv, id });
                } else {
                    self.turn.background_write(Write::Marker {
                        user: user.clone(),
                        conv,
                        last_read: id,
                    });
                }
            }
            return self.pump_backlog(key);
        }
        if pending >= resume_below {
            return;
        }
        let user = session.user.clone();
        let after_id = backlog.after_id;
        let mut used = 0usize;
        let page = match self.store.private_backlog(&user, after_id, PAGE, &mut |e| {
            used += Message::Priv {
                id: e.id,
                ts: e.ts,
                from: &e.sender,
                to: &user,
                text: &e.text,
            }
            .encoded_len();
            used <= MAX_PLAINTEXT
        }) {
            Ok(page) => page,
            Err(e) => {
                log::warn!("cannot load the offline messages of {user}: {e}");
                return;
            }
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(backlog) = conn.session_mut().and_then(|s| s.backlog.as_mut()) else {
            return;
        };
        if page.is_empty() {
            if let Some(session) = conn.session_mut() {
                session.backlog = None;
            }
            return;
        }
        let mut encoded = Vec::new();
        for e in &page {
            backlog.after_id = e.id;
            backlog.unconfirmed.insert(e.sender.clone(), e.id);
            Message::Priv {
                id: e.id,
                ts: e.ts,
                from: &e.sender,
                to: &user,
                text: &e.text,
            }
            .encode(&mut encoded);
        }
        conn.out.push_encoded(&encoded);
        self.mark_dirty(key);
    }
}
