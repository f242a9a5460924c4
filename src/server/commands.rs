//! Acting on one decoded client message: authentication steps, rooms, messages, queries. Acting
//! never touches a socket: it queues writes in the turn's batch and deliveries in the turn's list.

use log::{info, warn};
use std::time::Instant;

use super::auth;
use super::conn::Phase;
use super::{Dest, Query, Server, now_ms};
use crate::store::{StoreError, StoredMessage, StoredPrivate, UserRecord, Write};
use crate::wire::NoticeKind;
use crate::wire::crypto::random_bytes;
use crate::wire::frame::MAX_PLAINTEXT;
use crate::wire::message::{
    HistoryEntry, Message, SearchEntry, check_text, code, is_valid_room, kind, truncate_to_boundary,
};
use crate::wire::scram::{self, MAX_ITERATIONS, SALT_BYTES};

/// The room every user is in.
pub const GENERAL: &str = "general";

impl Server {
    /// Acts on one message from connection `key`.
    pub(super) fn act(&mut self, key: usize, message: Message<'_>, now: Instant) {
        let ready = self.conns[key].is_ready();
        match message {
            Message::Ping { nonce } => self.reply(key, &Message::Pong { nonce }),
            Message::Pong { .. } => {}
            Message::Quit { .. } => self.close_after_flush(key, now),
            Message::Register { .. } | Message::AuthStart { .. } | Message::AuthProof { .. }
                if ready =>
            {
                self.reply_error(
                    key,
                    code::WRONG_STATE,
                    message.kind(),
                    "already logged in",
                    now,
                )
            }
            Message::Register {
                user,
                salt,
                iterations,
                stored_key,
                server_key,
            } => self.register(key, user, salt, iterations, stored_key, server_key, now),
            Message::AuthStart { user, nonce: _ } => self.auth_start(key, user, &message, now),
            Message::AuthProof { cb, proof } => self.auth_proof(key, &cb, &proof, now),
            Message::Unknown { kind } => {
                self.reply_error(key, code::UNKNOWN_TYPE, kind, "unknown message type", now)
            }
            _ if !ready => {
                self.reply_error(key, code::WRONG_STATE, message.kind(), "log in first", now)
            }
            Message::Join { room } => self.join(key, room, now),
            Message::Leave { room } => self.leave(key, room, now),
            Message::Say { room, text } => self.say(key, room, text, now),
            Message::PrivMsg { to, text } => self.private_message(key, to, text, now),
            Message::ListRooms => self.queue_query(key, Query::ListRooms),
            Message::Who { room } => self.who(key, room, now),
            Message::HistoryReq {
                room,
                before_id,
                limit,
            } => {
                self.charge_query(key, now);
                self.history(key, room, before_id, limit, now)
            }
            Message::SearchReq { room, query, limit } => {
                self.charge_query(key, now);
                self.search(key, room, query, limit, now)
            }
            other => self.reply_error(
                key,
                code::WRONG_STATE,
                other.kind(),
                "a server-to-client message type",
                now,
            ),
        }
    }

    /// Queues a NOTICE about `user` for the room's members, or only for the user's own
    /// connections when the room is larger than `notice_max_members`.
    pub(super) fn notice_room(
        &mut self,
        room: &str,
        notice: NoticeKind,
        user: &str,
        durable: bool,
    ) {
        let members = self.rooms.room(room).map_or(0, |r| r.user_count());
        let message = Message::Notice {
            kind: notice,
            room,
            user,
            ts: now_ms(),
        };
        if members <= self.config.notice_max_members {
            self.queue(Dest::Room(room), &message, durable);
        } else if notice != NoticeKind::Disconnect {
            self.queue(Dest::User(user), &message, durable);
        }
    }

    /// Sends a non-durable reply to this connection only.
    fn reply(&mut self, key: usize, message: &Message<'_>) {
        self.queue(Dest::Conn(key), message, false);
    }

    /// Notes that this connection's request is answered only if the batch commits.
    fn origin(&mut self, key: usize, ref_type: u8) {
        self.turn.origins.push((key, ref_type));
    }

    fn charge_query(&mut self, key: usize, now: Instant) {
        let extra = f64::from(self.config.rate_query_cost.saturating_sub(1));
        self.conns[key].frames.take(extra, now);
    }

    fn user_of(&self, key: usize) -> String {
        self.conns[key].user.clone().unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        key: usize,
        user: &str,
        salt: &[u8],
        iterations: u32,
        stored_key: [u8; 32],
        server_key: [u8; 32],
        now: Instant,
    ) {
        let ip = self.conns[key].ip;
        let refusal = if self.config.registration == crate::config::Registration::Closed {
            Some((
                code::REGISTRATION_OFF,
                "registration is closed; ask an operator",
            ))
        } else if !scram::is_valid_user(user) {
            Some((
                code::BAD_NAME,
                "user names are 3-32 of a-z, 0-9, _ and -, starting with a letter",
            ))
        } else if salt.len() != SALT_BYTES
            || iterations < self.config.scram_min_iterations
            || iterations > MAX_ITERATIONS
        {
            Some((
                code::BAD_SALT_OR_ITERATIONS,
                "salt must be 16 bytes and iterations in range",
            ))
        } else if !self.guard.allow_registration(ip, now) {
            Some((
                code::RATE_LIMITED,
                "too many registrations from your address",
            ))
        } else {
            match self.store.user(user) {
                Ok(Some(_)) => Some((code::NAME_TAKEN, "that name is taken")),
                Ok(None) if self.turn.registering.contains(user) => {
                    Some((code::NAME_TAKEN, "that name is taken"))
                }
                Ok(None) => None,
                Err(e) => {
                    warn!("user lookup failed: {e}");
                    Some((code::STORAGE_FAILED, "the server could not check that name"))
                }
            }
        };
        if let Some((error, detail)) = refusal {
            self.reply_error(key, error, kind::REGISTER, detail, now);
            return;
        }
        self.turn.registering.insert(user.to_owned());
        self.batch.push(Write::AddUser(UserRecord {
            name: user.to_owned(),
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        }));
        self.origin(key, kind::REGISTER);
        self.queue(Dest::Conn(key), &Message::RegisterOk, true);
        info!("registered {user}");
    }

    fn auth_start(&mut self, key: usize, user: &str, message: &Message<'_>, now: Instant) {
        if !matches!(self.conns[key].phase, Phase::AwaitAuth) {
            self.reply_error(
                key,
                code::WRONG_STATE,
                kind::AUTH_START,
                "a login is under way",
                now,
            );
            return;
        }
        let Ok(nonce) = random_bytes::<32>() else {
            self.kill(key, "no randomness");
            return;
        };
        let mut start_body = Vec::with_capacity(64);
        message.encode_body(&mut start_body);
        match auth::challenge(
            &self.store,
            &self.auth_secret,
            self.config.scram_iterations,
            user,
            &start_body,
            nonce,
        ) {
            Ok((encoded, pending)) => {
                self.turn
                    .push_encoded(&[key], false, |arena| arena.extend_from_slice(&encoded));
                self.conns[key].phase = Phase::AwaitProof(Box::new(pending));
            }
            Err(e) => {
                warn!("user lookup failed: {e}");
                self.reply_error(
                    key,
                    code::STORAGE_FAILED,
                    kind::AUTH_START,
                    "try again later",
                    now,
                );
            }
        }
    }

    fn auth_proof(&mut self, key: usize, cb: &[u8; 32], proof: &[u8; 32], now: Instant) {
        let conn = &mut self.conns[key];
        let Phase::AwaitProof(pending) = std::mem::replace(&mut conn.phase, Phase::AwaitAuth)
        else {
            self.reply_error(
                key,
                code::WRONG_STATE,
                kind::AUTH_PROOF,
                "no login under way",
                now,
            );
            return;
        };
        match pending.verify(&conn.cb, cb, proof) {
            Some(signature) => self.logged_in(key, pending.user, signature, now),
            None => {
                conn.login_failures += 1;
                let close_after = conn.login_failures >= self.config.login_fail_per_conn;
                let ip = conn.ip;
                let (delay, blocked) = self.guard.login_failed(&pending.user, ip, now);
                info!("failed login for {:?} from {ip}", pending.user);
                if blocked {
                    warn!(
                        "blocking {ip} for {:?} after repeated failed logins",
                        self.config.ip_block
                    );
                }
                self.conns[key].phase = Phase::FailDelay {
                    until: now + delay,
                    close_after: close_after || blocked,
                };
                if delay.is_zero() {
                    self.finish_failed_login(key, close_after || blocked, now);
                }
            }
        }
    }

    /// Sends the delayed AUTH_FAIL; closes after too many failures on this connection.
    pub(super) fn finish_failed_login(&mut self, key: usize, close_after: bool, now: Instant) {
        self.conns[key].phase = Phase::AwaitAuth;
        self.reply(key, &Message::AuthFail { retry_after_ms: 0 });
        if close_after {
            self.close_after_flush(key, now);
        } else {
            self.resume.push(key);
        }
    }

    fn logged_in(&mut self, key: usize, user: String, signature: [u8; 32], now: Instant) {
        self.guard.login_succeeded(&user);
        self.guard.authenticated(self.conns[key].ip);
        let max_text = self.config.max_text.min(usize::from(u16::MAX)) as u16;
        let ping_s = self.config.ping_interval.as_secs().min(u64::from(u16::MAX)) as u16;
        self.reply(
            key,
            &Message::AuthOk {
                signature,
                max_text,
                ping_s,
            },
        );
        let conn = &mut self.conns[key];
        conn.phase = Phase::Ready;
        conn.user = Some(user.clone());
        conn.last_inbound = now;
        let first_connection = self.rooms.connect(&user, key);
        info!("{user} logged in from {}", self.conns[key].ip);

        let mut rooms = match self.store.memberships(&user) {
            Ok(rooms) => rooms,
            Err(e) => {
                warn!("cannot load the rooms of {user}: {e}");
                Vec::new()
            }
        };
        if !rooms.iter().any(|r| r == GENERAL) {
            rooms.insert(0, GENERAL.to_owned());
            self.batch.push(Write::Join {
                user: user.clone(),
                room: GENERAL.to_owned(),
            });
        }
        for room in rooms {
            self.rooms.add_conn(&room, &user, key);
            self.conns[key].rooms.push(room.clone());
            if first_connection {
                self.notice_room(&room, NoticeKind::Join, &user, false);
            } else {
                let notice = Message::Notice {
                    kind: NoticeKind::Join,
                    room: &room,
                    user: &user,
                    ts: now_ms(),
                };
                self.queue(Dest::Conn(key), &notice, false);
            }
        }
        self.deliver_offline(key, &user);
    }

    /// Queues the user's undelivered private messages, oldest first, and marks them delivered
    /// in the same batch.
    fn deliver_offline(&mut self, key: usize, user: &str) {
        let waiting = match self.store.undelivered_privates(user) {
            Ok(waiting) => waiting,
            Err(e) => {
                warn!("cannot load offline messages of {user}: {e}");
                return;
            }
        };
        let Some(last) = waiting.last().map(|m| m.id) else {
            return;
        };
        for m in &waiting {
            let message = Message::Priv {
                id: m.id,
                ts: m.ts,
                from: &m.from,
                to: &m.to,
                text: &m.text,
            };
            self.queue(Dest::Conn(key), &message, true);
        }
        self.batch.push(Write::MarkDelivered {
            user: user.to_owned(),
            up_to_id: last,
        });
    }

    fn join(&mut self, key: usize, room: &str, now: Instant) {
        if !is_valid_room(room) {
            self.reply_error(
                key,
                code::BAD_ROOM,
                kind::JOIN,
                "room names are 1-32 of a-z, 0-9, _ and -",
                now,
            );
            return;
        }
        let user = self.user_of(key);
        if self.conns[key].rooms.iter().any(|r| r == room) {
            // Already in: the NOTICE is the acknowledgement, to this connection only.
            let notice = Message::Notice {
                kind: NoticeKind::Join,
                room,
                user: &user,
                ts: now_ms(),
            };
            self.reply(key, &notice);
            return;
        }
        if self.conns[key].rooms.len() >= self.config.max_rooms_per_user {
            self.reply_error(
                key,
                code::TOO_MANY_ROOMS,
                kind::JOIN,
                "too many rooms; leave one first",
                now,
            );
            return;
        }
        self.apply_membership(&user, room, true);
        self.turn
            .memberships
            .push((user.clone(), room.to_owned(), true));
        self.batch.push(Write::Join {
            user: user.clone(),
            room: room.to_owned(),
        });
        self.origin(key, kind::JOIN);
        self.notice_room(room, NoticeKind::Join, &user, true);
    }

    fn leave(&mut self, key: usize, room: &str, now: Instant) {
        if !is_valid_room(room) {
            self.reply_error(key, code::BAD_ROOM, kind::LEAVE, "bad room name", now);
            return;
        }
        if room == GENERAL {
            self.reply_error(
                key,
                code::BAD_ROOM,
                kind::LEAVE,
                "everyone stays in #general",
                now,
            );
            return;
        }
        if !self.conns[key].rooms.iter().any(|r| r == room) {
            self.reply_error(
                key,
                code::NOT_IN_ROOM,
                kind::LEAVE,
                "you are not in that room",
                now,
            );
            return;
        }
        let user = self.user_of(key);
        // The leaver hears the notice too: it is the acknowledgement.
        self.notice_room(room, NoticeKind::Leave, &user, true);
        self.apply_membership(&user, room, false);
        self.turn
            .memberships
            .push((user.clone(), room.to_owned(), false));
        self.batch.push(Write::Leave {
            user,
            room: room.to_owned(),
        });
        self.origin(key, kind::LEAVE);
    }

    /// Puts all of `user`'s connections into `room`, or takes them out.
    fn apply_membership(&mut self, user: &str, room: &str, joined: bool) {
        let conns = self.rooms.conns_of(user).to_vec();
        for conn_key in conns {
            if joined {
                self.rooms.add_conn(room, user, conn_key);
                let rooms = &mut self.conns[conn_key].rooms;
                if !rooms.iter().any(|r| r == room) {
                    rooms.push(room.to_owned());
                }
            } else {
                self.rooms.remove_conn(room, user, conn_key);
                self.conns[conn_key].rooms.retain(|r| r != room);
            }
        }
    }

    /// Reverses a membership change of a turn whose commit failed.
    pub(super) fn undo_membership(&mut self, user: &str, room: &str, joined: bool) {
        self.apply_membership(user, room, !joined);
    }

    fn say(&mut self, key: usize, room: &str, text: &str, now: Instant) {
        if !is_valid_room(room) {
            self.reply_error(key, code::BAD_ROOM, kind::SAY, "bad room name", now);
            return;
        }
        if let Err(e) = check_text(text, self.config.max_text) {
            self.reply_error(key, e.code(), kind::SAY, &e.to_string(), now);
            return;
        }
        if !self.conns[key].rooms.iter().any(|r| r == room) {
            self.reply_error(
                key,
                code::NOT_IN_ROOM,
                kind::SAY,
                "join the room first",
                now,
            );
            return;
        }
        let user = self.user_of(key);
        let (id, ts) = (self.next_id, now_ms());
        self.next_id += 1;
        self.queue(
            Dest::Room(room),
            &Message::Msg {
                id,
                ts,
                room,
                from: &user,
                text,
            },
            true,
        );
        self.batch.push(Write::Message(StoredMessage {
            id,
            ts,
            room: room.to_owned(),
            from: user,
            text: text.to_owned(),
        }));
        self.origin(key, kind::SAY);
    }

    fn private_message(&mut self, key: usize, to: &str, text: &str, now: Instant) {
        if let Err(e) = check_text(text, self.config.max_text) {
            self.reply_error(key, e.code(), kind::PRIVMSG, &e.to_string(), now);
            return;
        }
        let known = scram::is_valid_user(to)
            && (self.rooms.is_online(to) || matches!(self.store.user(to), Ok(Some(_))));
        if !known {
            self.reply_error(key, code::NO_SUCH_USER, kind::PRIVMSG, "no such user", now);
            return;
        }
        let user = self.user_of(key);
        let (id, ts) = (self.next_id, now_ms());
        self.next_id += 1;
        let message = Message::Priv {
            id,
            ts,
            from: &user,
            to,
            text,
        };
        self.queue(Dest::User(to), &message, true);
        if to != user {
            self.queue(Dest::User(&user), &message, true);
        }
        self.batch.push(Write::Private {
            msg: StoredPrivate {
                id,
                ts,
                from: user,
                to: to.to_owned(),
                text: text.to_owned(),
            },
            delivered: self.rooms.is_online(to),
        });
        self.origin(key, kind::PRIVMSG);
    }

    fn who(&mut self, key: usize, room: &str, now: Instant) {
        if !room.is_empty() && !is_valid_room(room) {
            self.reply_error(key, code::BAD_ROOM, kind::WHO, "bad room name", now);
            return;
        }
        // One frame holds the answer; a huge list is cut at what fits.
        let mut budget = MAX_PLAINTEXT - 6 - room.len();
        let users: Vec<&str> = if room.is_empty() {
            self.rooms.online_users().collect()
        } else {
            self.rooms
                .room(room)
                .map(|r| r.users().collect())
                .unwrap_or_default()
        };
        let users: Vec<&str> = users
            .into_iter()
            .take_while(|u| {
                let fits = u.len() < budget;
                budget = budget.saturating_sub(1 + u.len());
                fits
            })
            .collect();
        // The list borrows the room table, so it is encoded straight into the turn's arena.
        let message = Message::WhoList { room, users };
        self.turn
            .push_encoded(&[key], false, |arena| message.encode(arena));
    }

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
        Some(limit.min(self.config.history_max.min(100) as u16))
    }

    fn history(&mut self, key: usize, room: &str, before_id: u64, limit: u16, now: Instant) {
        if !is_valid_room(room) {
            self.reply_error(key, code::BAD_ROOM, kind::HISTORY_REQ, "bad room name", now);
            return;
        }
        if let Some(limit) = self.page_limit(key, limit, kind::HISTORY_REQ, now) {
            let room = room.to_owned();
            self.queue_query(
                key,
                Query::History {
                    room,
                    before_id,
                    limit,
                },
            );
        }
    }

    fn search(&mut self, key: usize, room: &str, query: &str, limit: u16, now: Instant) {
        if !room.is_empty() && !is_valid_room(room) {
            self.reply_error(key, code::BAD_ROOM, kind::SEARCH_REQ, "bad room name", now);
            return;
        }
        if let Some(limit) = self.page_limit(key, limit, kind::SEARCH_REQ, now) {
            let room = room.to_owned();
            let query = truncate_to_boundary(query, 512).to_owned();
            self.queue_query(key, Query::Search { room, query, limit });
        }
    }

    /// Answers a query after the turn's commit: the encoded reply, or an ERROR if the database
    /// failed.
    pub(super) fn answer(&self, query: &Query) -> Vec<u8> {
        let (result, ref_type) = match query {
            Query::History {
                room,
                before_id,
                limit,
            } => (
                self.history_page(room, *before_id, *limit),
                kind::HISTORY_REQ,
            ),
            Query::Search { room, query, limit } => {
                (self.search_page(room, query, *limit), kind::SEARCH_REQ)
            }
            Query::ListRooms => (self.room_list(), kind::LIST_ROOMS),
        };
        result.unwrap_or_else(|e| {
            warn!("query failed: {e}");
            Message::Error {
                code: code::STORAGE_FAILED,
                ref_type,
                detail: "the server could not read its database; try again",
            }
            .to_bytes()
        })
    }

    fn history_page(&self, room: &str, before_id: u64, limit: u16) -> Result<Vec<u8>, StoreError> {
        // One frame holds the page: the HISTORY header, then entries while they fit.
        let budget = MAX_PLAINTEXT - (3 + 1 + room.len() + 1 + 2);
        let (messages, more) = self.store.history(room, before_id, limit, budget)?;
        let entries = messages
            .iter()
            .map(|m| HistoryEntry {
                id: m.id,
                ts: m.ts,
                from: &m.from,
                text: &m.text,
            })
            .collect();
        Ok(Message::History {
            room,
            more,
            entries,
        }
        .to_bytes())
    }

    fn search_page(&self, room: &str, query: &str, limit: u16) -> Result<Vec<u8>, StoreError> {
        let budget = MAX_PLAINTEXT - (3 + 1 + 2);
        let scope = (!room.is_empty()).then_some(room);
        let (messages, more) = self.store.search(scope, query, limit, budget)?;
        let entries = messages
            .iter()
            .map(|m| SearchEntry {
                id: m.id,
                ts: m.ts,
                room: &m.room,
                from: &m.from,
                text: &m.text,
            })
            .collect();
        Ok(Message::SearchResult { more, entries }.to_bytes())
    }

    /// Every room with its online member count, as many as one frame holds.
    fn room_list(&self) -> Result<Vec<u8>, StoreError> {
        let names = self.store.rooms()?;
        let mut budget = MAX_PLAINTEXT - 5;
        let mut rooms = Vec::with_capacity(names.len());
        for name in &names {
            let size = 1 + name.len() + 4;
            if size > budget {
                break;
            }
            budget -= size;
            let members = self.rooms.room(name).map_or(0, |r| r.user_count()) as u32;
            rooms.push(crate::wire::message::RoomCount {
                room: name.as_str(),
                members,
            });
        }
        Ok(Message::RoomList { rooms }.to_bytes())
    }
}
