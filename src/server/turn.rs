//! `Turn`: everything one loop turn queues before its commit. Acting on requests only records
//! here: the writes for the store, the deliveries (encoded once into an arena, with their
//! recipients fixed when queued), the queries to answer after the commit, and, for each durable
//! request, its origin and the undo of the in-memory changes it made. `settle` then says what
//! to send and what to undo, depending on whether the commit succeeded: a request's effects are
//! all delivered, or none of them and its sender gets ERROR 0302.

use std::ops::Range;

use super::directory::Change;
use super::queries::Query;
use crate::store::{Batch, Write};

/// The connection a durable request came from (none when nobody here waits for its answer),
/// and the type of that request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub conn: Option<usize>,
    pub ref_type: u8,
}

/// What to do to the server's memory when a commit fails (in reverse order of doing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Apply this change to the directory (and to the online index, for memberships).
    Directory(Change),
    /// Give back what a request counted against the user's daily quota.
    Quota {
        user: String,
        messages: u64,
        bytes: u64,
    },
}

/// What a queued delivery carries.
#[derive(Debug)]
pub enum Payload {
    /// An encoded message: a range of the turn's arena.
    Encoded(Range<usize>),
    /// A query answered at delivery time, after the commit, for each recipient.
    Query(Query),
}

/// One delivery, in order.
#[derive(Debug)]
struct Outgoing {
    recipients: Range<usize>,
    payload: Payload,
    /// Sent only if the turn's commit succeeds.
    durable: bool,
}

/// Everything a turn queues before its commit.
#[derive(Debug, Default)]
pub struct Turn {
    arena: Vec<u8>,
    recipients: Vec<usize>,
    items: Vec<Outgoing>,
    writes: Batch,
    origins: Vec<Origin>,
    undo: Vec<Undo>,
    /// The first entry id this turn handed out (the next id goes back here if the commit fails).
    pub first_id: u64,
    /// Reaction toggles of this turn not yet committed: (id, reaction, user, added).
    pub reactions: Vec<(u64, String, String, bool)>,
    /// Entries deleted in this turn (not yet committed).
    pub deleted: Vec<u64>,
    /// Connections to close once the commit succeeded (sessions a request ended).
    closes: Vec<usize>,
}

/// A durable request being recorded: everything it writes, undoes and delivers goes through
/// it, so a handler cannot forget a part.
pub struct Request<'t> {
    turn: &'t mut Turn,
}

impl Request<'_> {
    /// A write for the turn's transaction.
    pub fn write(&mut self, write: Write) -> &mut Self {
        self.turn.writes.push(write);
        self
    }

    /// Records how to undo an in-memory change this request made.
    pub fn undo(&mut self, undo: Undo) -> &mut Self {
        self.turn.undo.push(undo);
        self
    }

    /// Closes connection `conn` (after flushing) once the commit succeeded.
    pub fn close(&mut self, conn: usize) -> &mut Self {
        self.turn.closes.push(conn);
        self
    }

    /// Queues what `encode` appends for `recipients`, sent only if the commit succeeds.
    pub fn deliver(
        &mut self,
        recipients: &[usize],
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> &mut Self {
        self.turn.push_encoded(recipients, true, encode);
        self
    }
}

impl Turn {
    pub fn new(first_id: u64) -> Turn {
        Turn {
            first_id,
            ..Turn::default()
        }
    }

    /// Starts a durable request from connection `conn`, answering a request of `ref_type`.
    pub fn request(&mut self, conn: Option<usize>, ref_type: u8) -> Request<'_> {
        self.origins.push(Origin { conn, ref_type });
        Request { turn: self }
    }

    /// Continues the request started last (more writes, undo and deliveries of it), without
    /// counting another origin.
    pub fn same_request(&mut self) -> Request<'_> {
        Request { turn: self }
    }

    /// A durable write with no requester (v1 backlog markers, last-login times): it only
    /// needs to be committed.
    pub fn background_write(&mut self, write: Write) {
        self.writes.push(write);
    }

    /// An undo for a change made without a requester (a presence change needs none).
    pub fn background_undo(&mut self, undo: Undo) {
        self.undo.push(undo);
    }

    /// Queues an encoded message that does not depend on the commit (replies to queries that
    /// need no answer from disk, PONG, errors, notices of presence).
    pub fn reply(&mut self, recipients: &[usize], encode: impl FnOnce(&mut Vec<u8>)) {
        self.push_encoded(recipients, false, encode);
    }

    /// Queues a query for `conn`, answered after the commit (so it sees the turn's writes).
    pub fn query(&mut self, conn: usize, query: Query) {
        let start = self.recipients.len();
        self.recipients.push(conn);
        self.items.push(Outgoing {
            recipients: start..self.recipients.len(),
            payload: Payload::Query(query),
            durable: false,
        });
    }

    fn push_encoded(
        &mut self,
        recipients: &[usize],
        durable: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        if recipients.is_empty() {
            return;
        }
        let start = self.arena.len();
        encode(&mut self.arena);
        let end = self.arena.len();
        let first = self.recipients.len();
        self.recipients.extend_from_slice(recipients);
        self.items.push(Outgoing {
            recipients: first..self.recipients.len(),
            payload: Payload::Encoded(start..end),
            durable,
        });
    }

    /// Whether the turn holds an answer to one of `conn`'s requests: a durable request of its
    /// own, a reply or a query for it. (Others' messages delivered to it do not count: they are
    /// not answers, so a later answer to `conn` may go out before them.)
    pub fn holds_answers_for(&self, conn: usize) -> bool {
        self.origins.iter().any(|o| o.conn == Some(conn))
            || self.items.iter().any(|item| {
                !item.durable && self.recipients[item.recipients.clone()].contains(&conn)
            })
    }

    /// Whether there is nothing to commit or send.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.writes.is_empty()
    }

    /// The store writes, for the commit.
    pub fn writes_mut(&mut self) -> &mut Batch {
        &mut self.writes
    }

    #[cfg(test)]
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The deliveries to make after a commit that succeeded (`committed`) or failed: durable
    /// ones only in the first case. In queueing order.
    pub fn deliveries(&self, committed: bool) -> impl Iterator<Item = (&[usize], &Payload)> {
        self.items
            .iter()
            .filter(move |item| committed || !item.durable)
            .map(|item| (&self.recipients[item.recipients.clone()], &item.payload))
    }

    /// The bytes of an encoded payload.
    pub fn bytes(&self, range: &Range<usize>) -> &[u8] {
        &self.arena[range.clone()]
    }

    /// The requests to answer ERROR 0302 after a failed commit (none after a success).
    pub fn failed_origins(&self, committed: bool) -> &[Origin] {
        if committed { &[] } else { &self.origins }
    }

    /// The connections to close after a commit that succeeded.
    pub fn closes(&self, committed: bool) -> &[usize] {
        if committed { &self.closes } else { &[] }
    }

    /// Takes what must be undone, last change first: everything after a failed commit,
    /// nothing after a success.
    pub fn take_undo(&mut self, committed: bool) -> Vec<Undo> {
        let mut undo = std::mem::take(&mut self.undo);
        if committed {
            undo.clear();
        } else {
            undo.reverse();
        }
        undo
    }

    /// Empties the turn for the next one, keeping allocations.
    pub fn clear(&mut self, first_id: u64) {
        self.arena.clear();
        self.recipients.clear();
        self.items.clear();
        self.writes.clear();
        self.origins.clear();
        self.undo.clear();
        self.reactions.clear();
        self.deleted.clear();
        self.closes.clear();
        self.first_id = first_id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::{Message, kind};

    fn ping(nonce: u64) -> impl FnOnce(&mut Vec<u8>) {
        move |out| Message::Ping { nonce }.encode(out)
    }

    /// A turn with two durable requests and a reply between them.
    fn busy_turn() -> Turn {
        let mut turn = Turn::new(10);
        turn.request(Some(1), kind::SAY)
            .write(Write::Leave {
                user: "a".into(),
                room: "r".into(),
            })
            .undo(Undo::Quota {
                user: "a".into(),
                messages: 1,
                bytes: 5,
            })
            .deliver(&[1, 2, 3], ping(1));
        turn.reply(&[2], ping(2));
        turn.request(Some(4), kind::JOIN)
            .undo(Undo::Directory(Change::DropRoom("r".into())))
            .deliver(&[4], ping(3));
        turn
    }

    fn nonces(turn: &Turn, committed: bool) -> Vec<(Vec<usize>, u64)> {
        turn.deliveries(committed)
            .map(|(to, payload)| match payload {
                Payload::Encoded(range) => match Message::decode(turn.bytes(range)) {
                    Ok(crate::wire::Status::Complete(Message::Ping { nonce }, _)) => {
                        (to.to_vec(), nonce)
                    }
                    other => panic!("{other:?}"),
                },
                Payload::Query(q) => panic!("{q:?}"),
            })
            .collect()
    }

    #[test]
    fn a_commit_that_succeeds_delivers_everything_in_order_and_undoes_nothing() {
        let mut turn = busy_turn();
        assert!(turn.has_writes());
        assert_eq!(
            nonces(&turn, true),
            [(vec![1, 2, 3], 1), (vec![2], 2), (vec![4], 3)]
        );
        assert!(turn.failed_origins(true).is_empty());
        assert!(turn.take_undo(true).is_empty());
    }

    #[test]
    fn a_failed_commit_drops_durable_deliveries_answers_each_origin_and_undoes_in_reverse() {
        let mut turn = busy_turn();
        assert_eq!(nonces(&turn, false), [(vec![2], 2)]);
        assert_eq!(
            turn.failed_origins(false),
            [
                Origin {
                    conn: Some(1),
                    ref_type: kind::SAY
                },
                Origin {
                    conn: Some(4),
                    ref_type: kind::JOIN
                }
            ]
        );
        assert_eq!(
            turn.take_undo(false),
            [
                Undo::Directory(Change::DropRoom("r".into())),
                Undo::Quota {
                    user: "a".into(),
                    messages: 1,
                    bytes: 5
                }
            ]
        );
        turn.clear(10);
        assert!(turn.is_empty());
        assert_eq!(nonces(&turn, false), []);
    }

    #[test]
    fn answers_are_told_from_deliveries_of_others_requests() {
        let turn = busy_turn();
        // 1 and 4 made requests, 2 got a reply; 3 only receives what 1's request delivers.
        for conn in [1, 2, 4] {
            assert!(turn.holds_answers_for(conn), "{conn}");
        }
        assert!(!turn.holds_answers_for(3));
        assert!(!turn.holds_answers_for(5));
        let mut turn = Turn::new(1);
        turn.query(
            7,
            Query::Unread {
                user: "a".into(),
                cursor: String::new(),
                all: false,
            },
        );
        assert!(turn.holds_answers_for(7));
    }

    #[test]
    fn deliveries_to_nobody_are_not_queued() {
        let mut turn = Turn::new(1);
        turn.reply(&[], ping(1));
        turn.request(Some(1), kind::SAY).deliver(&[], ping(2));
        assert_eq!(turn.deliveries(true).count(), 0);
        assert_eq!(turn.failed_origins(false).len(), 1);
    }
}
