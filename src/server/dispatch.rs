//! Acting on one decoded client message, in the same order for every type: is the type known
//! and of this session's version, may a client send it, is it the right phase; then, for a
//! logged-in user, the one guard (`access::authorize`); then its handler. The charge for the
//! request was taken before (see `Server::act_on_plaintext`). The match at the end is
//! exhaustive: a new message type does not compile until it is routed.

use std::time::Instant;

use super::access::{self, Context, Grant, Policy, Refusal};
use super::login::Verifier;
use super::queries::Query;
use super::requester::Req;
use super::{Server, now_ms};
use crate::wire::message::{Cost, Dir, EntryKind, Message, Phase as TypePhase, code};
use crate::wire::scram::is_valid_user;
use crate::wire::text::Conv;

impl Server {
    /// The guard every request after login passes, here or applied from a cluster's stream:
    /// may `user` do this at `now_ms`?
    pub(super) fn authorize(
        &self,
        user: &str,
        now_ms: u64,
        message: &Message<'_>,
    ) -> Result<Grant, Refusal> {
        let ctx = Context {
            dir: &self.directory,
            store: &self.store,
            user,
            deleted: &self.turn.deleted,
            policy: Policy {
                room_creation: self.config.room_creation,
                edit_window: self.config.edit_window,
            },
            now_ms,
        };
        access::authorize(&ctx, message)
    }

    /// A request of the connection `key`, made now as `user`.
    pub(super) fn local_req(&self, key: usize, user: String) -> Req {
        Req {
            conn: Some(key),
            user,
            version: self.conns[key].version(),
            ts: now_ms(),
        }
    }

    /// What a request costs its sender, in token-bucket units (docs/PROTOCOL.md section 6).
    pub(super) fn cost(&self, key: usize, message: &Message<'_>) -> f64 {
        let Some(info) = message.info() else {
            return 1.0;
        };
        let units = match info.cost {
            Cost::Fixed(n) | Cost::Frame(n) | Cost::Bounded(n) => n as usize,
            Cost::Page(n) => n as usize + usize::from(message.page_limit()) / 10,
            Cost::Search(n) => {
                n as usize + super::queries::units_of(self.config.search_budget) as usize
            }
            Cost::Post(n) => {
                let user = self.conns[key].user().unwrap_or("");
                let reach = match message {
                    Message::Say { room, .. } => self.fan_out(user, Conv::parse(room)),
                    Message::PrivMsg { to, .. } => {
                        let peer = is_valid_user(to).then_some(Conv::Private(to));
                        self.fan_out(user, peer)
                    }
                    Message::Post { conv, .. } => self.fan_out(user, Conv::parse(conv)),
                    // Edits, deletions and reactions go where their message went; charge the
                    // sender's own reach as a floor.
                    _ => self.online.conns_of(user).len(),
                };
                n as usize + reach / 4
            }
        };
        units as f64
    }

    /// Acts on one message from connection `key`.
    pub(super) fn act(&mut self, key: usize, message: Message<'_>, now: Instant) {
        let Some(info) = message.info() else {
            self.reply_error(
                key,
                code::UNKNOWN_TYPE,
                message.kind(),
                "unknown message type",
                now,
            );
            return;
        };
        let conn = &self.conns[key];
        if info.since > conn.version() {
            self.reply_error(
                key,
                code::UNKNOWN_TYPE,
                info.kind,
                "unknown message type in this protocol version",
                now,
            );
            return;
        }
        if info.dir == Dir::ToClient {
            self.reply_error(
                key,
                code::WRONG_STATE,
                info.kind,
                "a server-to-client message type",
                now,
            );
            return;
        }
        let ready = conn.session().is_some();
        match (info.phase, ready) {
            (TypePhase::Ready, false) => {
                self.reply_error(key, code::WRONG_STATE, info.kind, "log in first", now);
                return;
            }
            (TypePhase::Login, true) => {
                self.reply_error(key, code::WRONG_STATE, info.kind, "already logged in", now);
                return;
            }
            (TypePhase::Any, _) | (TypePhase::Ready, true) | (TypePhase::Login, false) => {}
        }
        if !ready {
            self.act_logging_in(key, message, now);
            return;
        }
        let user = conn.user().unwrap_or("").to_owned();
        match self.authorize(&user, now_ms(), &message) {
            Ok(grant) => self.act_ready(key, user, message, grant, now),
            Err(refusal) => self.reply_error(key, refusal.code, info.kind, refusal.detail, now),
        }
    }

    /// Messages before login (and those allowed in any phase).
    fn act_logging_in(&mut self, key: usize, message: Message<'_>, now: Instant) {
        match message {
            Message::Register {
                user,
                salt,
                iterations,
                stored_key,
                server_key,
            } => self.register(
                key,
                user,
                Verifier {
                    salt,
                    iterations,
                    stored_key,
                    server_key,
                },
                now,
            ),
            Message::AuthStart { user, .. } => {
                let mut body = Vec::with_capacity(64);
                message.encode_body(&mut body);
                self.auth_start(key, user, &body, now)
            }
            Message::AuthProof { cb, proof } => self.auth_proof(key, cb, proof, now),
            other => self.act_any_phase(key, other, now),
        }
    }

    /// PING, PONG, QUIT: the same before and after login.
    fn act_any_phase(&mut self, key: usize, message: Message<'_>, now: Instant) {
        match message {
            Message::Ping { nonce } => self
                .turn
                .reply(&[key], |out| Message::Pong { nonce }.encode(out)),
            Message::Pong { .. } | Message::Rekey => {}
            Message::Quit { .. } => {
                self.conns[key].quit = true;
                self.close_after_flush(key, now);
            }
            other => self.reply_error(
                key,
                code::WRONG_STATE,
                other.kind(),
                "not in this state",
                now,
            ),
        }
    }

    /// A logged-in user's request, past the guard: reads are answered here, durable requests
    /// are executed.
    fn act_ready(
        &mut self,
        key: usize,
        user: String,
        message: Message<'_>,
        grant: Grant,
        now: Instant,
    ) {
        let ref_type = message.kind();
        match message {
            Message::Join { .. }
            | Message::Leave { .. }
            | Message::Say { .. }
            | Message::PrivMsg { .. }
            | Message::Post { .. }
            | Message::Edit { .. }
            | Message::Delete { .. }
            | Message::React { .. }
            | Message::MarkRead { .. }
            | Message::Create { .. }
            | Message::Invite { .. }
            | Message::Kick { .. }
            | Message::Ban { .. }
            | Message::Unban { .. }
            | Message::SetTopic { .. }
            | Message::SetMode { .. }
            | Message::SetRole { .. }
            | Message::SetRetention { .. } => {
                // In a cluster the request goes to the stream; every instance executes it
                // when it comes back, this one answering the asker.
                if self.replicated() {
                    return self.publish_request(key, &user, &message);
                }
                let req = self.local_req(key, user);
                self.execute(&req, message, grant)
            }
            Message::ListRooms => self.ask(key, Query::ListRooms { user }),
            Message::Who { room } => self.ask(
                key,
                Query::Who {
                    room: (!room.is_empty()).then(|| room.to_owned()),
                },
            ),
            Message::HistoryReq {
                room,
                before_id,
                limit,
            } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::History {
                            user,
                            room: room.to_owned(),
                            before_id,
                            limit,
                        },
                    )
                }
            }
            Message::SearchReq { room, query, limit } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Search {
                            user,
                            room: (!room.is_empty()).then(|| room.to_owned()),
                            query: query.to_owned(),
                            limit,
                        },
                    )
                }
            }
            Message::Fetch {
                conv,
                before_id,
                after_id,
                limit,
            } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Fetch {
                            user,
                            conv: conv.to_owned(),
                            before_id,
                            after_id,
                            limit,
                        },
                    )
                }
            }
            Message::Find {
                conv,
                query,
                before_id,
                limit,
            } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Find {
                            user,
                            conv: (!conv.is_empty()).then(|| conv.to_owned()),
                            query: query.to_owned(),
                            before_id,
                            limit,
                        },
                    )
                }
            }
            Message::Members {
                room,
                cursor,
                limit,
            } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Members {
                            room: room.to_owned(),
                            cursor: cursor.to_owned(),
                            limit,
                        },
                    )
                }
            }
            Message::Rooms { cursor, limit } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Rooms {
                            user,
                            cursor: cursor.to_owned(),
                            limit,
                        },
                    )
                }
            }
            Message::Users { cursor, limit } => {
                if let Some(limit) = self.page_limit(key, limit, ref_type, now) {
                    self.ask(
                        key,
                        Query::Users {
                            cursor: cursor.to_owned(),
                            limit,
                        },
                    )
                }
            }
            Message::UnreadReq { cursor, all } => self.ask(
                key,
                Query::Unread {
                    user,
                    cursor: cursor.to_owned(),
                    all,
                },
            ),
            Message::GetEntry { id } => self.ask(key, Query::Entry { user, id }),
            Message::PasswdStart { user: name, .. } => {
                let mut body = Vec::with_capacity(64);
                message.encode_body(&mut body);
                self.passwd_start(key, name, &body, now)
            }
            Message::PasswdSet {
                cb,
                proof,
                salt,
                iterations,
                stored_key,
                server_key,
            } => self.passwd_set(
                key,
                cb,
                proof,
                Verifier {
                    salt,
                    iterations,
                    stored_key,
                    server_key,
                },
                now,
            ),
            Message::Ping { .. } | Message::Pong { .. } | Message::Quit { .. } | Message::Rekey => {
                self.act_any_phase(key, message, now)
            }
            // Refused by `act` before the guard: login types after login, server-to-client
            // types, unknown types.
            Message::Register { .. }
            | Message::AuthStart { .. }
            | Message::AuthProof { .. }
            | Message::RegisterOk
            | Message::AuthChallenge { .. }
            | Message::AuthOk { .. }
            | Message::AuthFail { .. }
            | Message::Msg { .. }
            | Message::Priv { .. }
            | Message::RoomList { .. }
            | Message::WhoList { .. }
            | Message::History { .. }
            | Message::Notice { .. }
            | Message::SearchResult { .. }
            | Message::Error { .. }
            | Message::NewEntry { .. }
            | Message::Entries { .. }
            | Message::Found { .. }
            | Message::Edited { .. }
            | Message::Deleted { .. }
            | Message::Reacted { .. }
            | Message::Marker { .. }
            | Message::Unread { .. }
            | Message::RoomInfoMsg { .. }
            | Message::RoomPage { .. }
            | Message::MemberPage { .. }
            | Message::UserPage { .. }
            | Message::Presence { .. }
            | Message::PasswdOk { .. }
            | Message::Unknown { .. } => {
                self.reply_error(key, code::WRONG_STATE, ref_type, "not in this state", now)
            }
        }
    }

    /// Carries out a durable request of `req.user`, already past the guard: records it, changes
    /// the directory, and queues what it delivers. Every durable request type is listed here.
    pub(super) fn execute(&mut self, req: &Req, message: Message<'_>, grant: Grant) {
        let ref_type = message.kind();
        match message {
            Message::Join { room } => self.join(req, room),
            Message::Leave { room } => self.leave(req, room),
            Message::Say { room, text } => {
                self.post(req, Conv::Room(room), EntryKind::Text, 0, text, ref_type)
            }
            Message::PrivMsg { to, text } => {
                self.post(req, Conv::Private(to), EntryKind::Text, 0, text, ref_type)
            }
            Message::Post {
                conv,
                kind: entry_kind,
                reply_to,
                text,
            } => match Conv::parse(conv) {
                Some(conv) => self.post(req, conv, entry_kind, reply_to, text, ref_type),
                None => self.refuse(req, code::BAD_ROOM, ref_type, "not a room or @user"),
            },
            Message::Edit { text, .. } => match grant.entry {
                Some(entry) => self.edit(req, entry, text),
                None => self.refuse(req, code::NO_SUCH_MESSAGE, ref_type, "no such message"),
            },
            Message::Delete { .. } => match grant.entry {
                Some(entry) => self.delete(req, entry),
                None => self.refuse(req, code::NO_SUCH_MESSAGE, ref_type, "no such message"),
            },
            Message::React { reaction, .. } => match grant.entry {
                Some(entry) => self.react(req, entry, reaction),
                None => self.refuse(req, code::NO_SUCH_MESSAGE, ref_type, "no such message"),
            },
            Message::MarkRead { conv, id } => self.mark_read(req, conv, id),
            Message::Create { room, flags, topic } => self.create(req, room, flags, topic),
            Message::Invite { room, user: target } => self.invite(req, room, target),
            Message::Kick {
                room,
                user: target,
                reason,
            } => self.remove_member(req, room, target, reason, false),
            Message::Ban {
                room,
                user: target,
                reason,
            } => self.remove_member(req, room, target, reason, true),
            Message::Unban { room, user: target } => self.unban(req, room, target),
            Message::SetTopic { room, topic } => self.set_topic(req, room, topic),
            Message::SetMode { room, mode } => self.set_mode(req, room, mode),
            Message::SetRole {
                room,
                user: target,
                role,
            } => self.set_role(req, room, target, role),
            Message::SetRetention { room, hours } => self.set_retention(req, room, hours),
            // Not durable requests: reads, login, the session's own types, server-to-client
            // types.
            Message::ListRooms
            | Message::Who { .. }
            | Message::HistoryReq { .. }
            | Message::SearchReq { .. }
            | Message::Fetch { .. }
            | Message::Find { .. }
            | Message::Members { .. }
            | Message::Rooms { .. }
            | Message::Users { .. }
            | Message::UnreadReq { .. }
            | Message::GetEntry { .. }
            | Message::PasswdStart { .. }
            | Message::PasswdSet { .. }
            | Message::Ping { .. }
            | Message::Pong { .. }
            | Message::Quit { .. }
            | Message::Rekey
            | Message::Register { .. }
            | Message::AuthStart { .. }
            | Message::AuthProof { .. }
            | Message::RegisterOk
            | Message::AuthChallenge { .. }
            | Message::AuthOk { .. }
            | Message::AuthFail { .. }
            | Message::Msg { .. }
            | Message::Priv { .. }
            | Message::RoomList { .. }
            | Message::WhoList { .. }
            | Message::History { .. }
            | Message::Notice { .. }
            | Message::SearchResult { .. }
            | Message::Error { .. }
            | Message::NewEntry { .. }
            | Message::Entries { .. }
            | Message::Found { .. }
            | Message::Edited { .. }
            | Message::Deleted { .. }
            | Message::Reacted { .. }
            | Message::Marker { .. }
            | Message::Unread { .. }
            | Message::RoomInfoMsg { .. }
            | Message::RoomPage { .. }
            | Message::MemberPage { .. }
            | Message::UserPage { .. }
            | Message::Presence { .. }
            | Message::PasswdOk { .. }
            | Message::Unknown { .. } => self.refuse(
                req,
                code::WRONG_STATE,
                ref_type,
                "not a request that changes anything",
            ),
        }
    }

    /// A page's limit: 1..=`history_max`; 0 is malformed.
    fn page_limit(&mut self, key: usize, limit: u16, ref_type: u8, now: Instant) -> Option<u16> {
        if limit == 0 {
            self.reply_error(
                key,
                code::MALFORMED,
                ref_type,
                "limit must be 1 or more",
                now,
            );
            return None;
        }
        Some(
            limit.min(
                self.config
                    .history_max
                    .min(usize::from(crate::wire::message::MAX_PAGE)) as u16,
            ),
        )
    }
}

/// Whether a message is a durable request: one that changes what the server stores (in a
/// cluster, one that goes through the stream). Everything else is read or answered locally.
pub(super) fn is_durable(message: &Message<'_>) -> bool {
    match message {
        Message::Register { .. }
        | Message::PasswdSet { .. }
        | Message::Join { .. }
        | Message::Leave { .. }
        | Message::Say { .. }
        | Message::PrivMsg { .. }
        | Message::Post { .. }
        | Message::Edit { .. }
        | Message::Delete { .. }
        | Message::React { .. }
        | Message::MarkRead { .. }
        | Message::Create { .. }
        | Message::Invite { .. }
        | Message::Kick { .. }
        | Message::Ban { .. }
        | Message::Unban { .. }
        | Message::SetTopic { .. }
        | Message::SetMode { .. }
        | Message::SetRole { .. }
        | Message::SetRetention { .. } => true,
        Message::AuthStart { .. }
        | Message::AuthProof { .. }
        | Message::ListRooms
        | Message::Who { .. }
        | Message::HistoryReq { .. }
        | Message::SearchReq { .. }
        | Message::Fetch { .. }
        | Message::Find { .. }
        | Message::Members { .. }
        | Message::Rooms { .. }
        | Message::Users { .. }
        | Message::UnreadReq { .. }
        | Message::GetEntry { .. }
        | Message::PasswdStart { .. }
        | Message::Ping { .. }
        | Message::Pong { .. }
        | Message::Quit { .. }
        | Message::Rekey
        | Message::RegisterOk
        | Message::AuthChallenge { .. }
        | Message::AuthOk { .. }
        | Message::AuthFail { .. }
        | Message::Msg { .. }
        | Message::Priv { .. }
        | Message::RoomList { .. }
        | Message::WhoList { .. }
        | Message::History { .. }
        | Message::Notice { .. }
        | Message::SearchResult { .. }
        | Message::Error { .. }
        | Message::NewEntry { .. }
        | Message::Entries { .. }
        | Message::Found { .. }
        | Message::Edited { .. }
        | Message::Deleted { .. }
        | Message::Reacted { .. }
        | Message::Marker { .. }
        | Message::Unread { .. }
        | Message::RoomInfoMsg { .. }
        | Message::RoomPage { .. }
        | Message::MemberPage { .. }
        | Message::UserPage { .. }
        | Message::Presence { .. }
        | Message::PasswdOk { .. }
        | Message::Unknown { .. } => false,
    }
}
