//! Writing in conversations: posts (SAY, PRIVMSG, POST, with replies, actions and mentions),
//! edits, deletions, reactions and read markers, and the daily storage quota they count
//! against. Access was checked by the guard before any of these run.

use std::time::{Duration, Instant};

use super::Server;
use super::directory::Change;
use super::requester::Req;
use super::turn::Undo;
use crate::store::{AuditRecord, ConvKey, NewEntry, StoredEntry, Write};
use crate::wire::event::mentioned_names;
use crate::wire::message::{Cost, Entry, EntryKind, Message, VERSION_1, code, kind, type_info};
use crate::wire::text::{Conv, check_reaction, check_text};

/// A message has at most this many different reactions.
pub const MAX_REACTIONS: usize = 20;
const DAY_MS: u64 = 86_400_000;

/// What one user stored today (UTC).
#[derive(Debug, Clone, Copy)]
pub struct QuotaUse {
    day: u64,
    messages: u64,
    bytes: u64,
}

/// Where a conversation's news goes: (v1 connections, v2 connections).
type Recipients = (Vec<usize>, Vec<usize>);

impl Server {
    /// The connections that follow a conversation: a room's members online, or both parties
    /// of a private conversation.
    fn recipients(&self, room: Option<&str>, a: &str, b: &str) -> Recipients {
        match room {
            Some(room) => self
                .online
                .room(room)
                .map_or((Vec::new(), Vec::new()), |r| {
                    let (v1, v2) = r.by_version();
                    (v1.to_vec(), v2.to_vec())
                }),
            None => {
                let (mut v1, mut v2) = (Vec::new(), Vec::new());
                let mut users = vec![a];
                if b != a {
                    users.push(b);
                }
                for user in users {
                    for online in self.online.conns_of(user) {
                        if online.version == VERSION_1 {
                            v1.push(online.conn);
                        } else {
                            v2.push(online.conn);
                        }
                    }
                }
                (v1, v2)
            }
        }
    }

    /// How many connections a post to `conv` reaches (what it costs its sender).
    pub(super) fn fan_out(&self, user: &str, conv: Option<Conv<'_>>) -> usize {
        match conv {
            Some(Conv::Room(room)) => self.online.room(room).map_or(0, |r| {
                let (v1, v2) = r.by_version();
                v1.len() + v2.len()
            }),
            Some(Conv::Private(peer)) => {
                self.online.conns_of(user).len() + self.online.conns_of(peer).len()
            }
            None => 0,
        }
    }

    /// Counts `bytes` of text (and one message if `message`) against `user`'s daily quota, or
    /// refuses with ERROR 0007 when it is used up.
    fn charge_quota(&mut self, req: &Req, message: bool, bytes: u64, ref_type: u8) -> bool {
        let user = req.user.as_str();
        let today = req.ts / DAY_MS;
        let used = match self.quotas.get(user).filter(|q| q.day == today) {
            Some(q) => *q,
            None => {
                let (messages, bytes) = self
                    .store
                    .quota_usage(user, today * DAY_MS)
                    .unwrap_or_else(|e| {
                        log::warn!("cannot read the quota use of {user}: {e}");
                        (0, 0)
                    });
                QuotaUse {
                    day: today,
                    messages,
                    bytes,
                }
            }
        };
        let messages = u64::from(message);
        let over_messages = self.config.quota_messages_per_day != 0
            && used.messages + messages > u64::from(self.config.quota_messages_per_day);
        let over_bytes = self.config.quota_bytes_per_day != 0
            && used.bytes + bytes > self.config.quota_bytes_per_day;
        if over_messages || over_bytes {
            self.quotas.insert(user.to_owned(), used);
            self.refuse(
                req,
                code::QUOTA_EXCEEDED,
                ref_type,
                "your daily storage quota is used up; try again tomorrow (UTC)",
            );
            return false;
        }
        self.quotas.insert(
            user.to_owned(),
            QuotaUse {
                day: today,
                messages: used.messages + messages,
                bytes: used.bytes + bytes,
            },
        );
        self.turn.background_undo(Undo::Quota {
            user: user.to_owned(),
            messages,
            bytes,
        });
        true
    }

    /// Gives back what a failed commit counted.
    pub(super) fn refund_quota(&mut self, user: &str, messages: u64, bytes: u64) {
        if let Some(q) = self.quotas.get_mut(user) {
            q.messages = q.messages.saturating_sub(messages);
            q.bytes = q.bytes.saturating_sub(bytes);
        }
    }

    /// SAY, PRIVMSG and POST: stores the message and sends it to the conversation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn post(
        &mut self,
        req: &Req,
        conv: Conv<'_>,
        entry_kind: EntryKind,
        reply_to: u64,
        text: &str,
        ref_type: u8,
    ) {
        let user = req.user.clone();
        if !entry_kind.is_post() {
            self.refuse(
                req,
                code::MALFORMED,
                ref_type,
                "kind must be text or action",
            );
            return;
        }
        if let Err(e) = check_text(text, self.config.max_text) {
            self.refuse(req, e.code(), ref_type, &e.to_string());
            return;
        }
        let (room, to) = match conv {
            Conv::Room(room) => (Some(room), None),
            Conv::Private(peer) => (None, Some(peer)),
        };
        if reply_to != 0 && !self.replies_within(reply_to, room, &user, to) {
            self.refuse(
                req,
                code::NO_SUCH_MESSAGE,
                ref_type,
                "the message replied to is not in this conversation",
            );
            return;
        }
        if !self.charge_quota(req, true, text.len() as u64, ref_type) {
            return;
        }
        let id = self.new_id();
        let ts = req.ts;
        let mentions: Vec<String> = match room {
            Some(room) => self.mentions_in(room, &user, text),
            None => Vec::new(),
        };
        let peer = to.unwrap_or("");
        let (v1, v2) = self.recipients(room, &user, peer);
        let newest = room.map(|room| {
            self.apply(Change::SetNewest {
                room: room.to_owned(),
                id,
            })
        });
        let v1_text;
        let v1_text: &str = match entry_kind {
            EntryKind::Action => {
                v1_text = format!("* {user} {text}");
                &v1_text
            }
            _ => text,
        };
        let mut req = self.turn.request(req.conn, ref_type);
        if let Some(undo) = newest {
            req.undo(undo);
        }
        req.write(Write::Entry(NewEntry {
            id,
            ts,
            room: room.map(str::to_owned),
            sender: user.clone(),
            to: to.map(str::to_owned),
            kind: entry_kind,
            reply_to,
            text: text.to_owned(),
            mentions,
        }))
        .deliver(&v2, |out| {
            Message::NewEntry {
                entry: Entry {
                    id,
                    ts,
                    room: room.unwrap_or(""),
                    from: &user,
                    to: peer,
                    kind: entry_kind,
                    flags: 0,
                    reply_to,
                    text,
                    reactions: Vec::new(),
                },
            }
            .encode(out)
        })
        .deliver(&v1, |out| match room {
            Some(room) => Message::Msg {
                id,
                ts,
                room,
                from: &user,
                text: v1_text,
            }
            .encode(out),
            None => Message::Priv {
                id,
                ts,
                from: &user,
                to: peer,
                text: v1_text,
            }
            .encode(out),
        });
    }

    /// Whether `id` is a live message of the same conversation.
    fn replies_within(&self, id: u64, room: Option<&str>, user: &str, to: Option<&str>) -> bool {
        if self.turn.deleted.contains(&id) {
            return false;
        }
        match self.store.entry(id) {
            Ok(Some(e)) if e.kind.is_post() && !e.deleted => match (room, to) {
                (Some(room), _) => e.room.as_deref() == Some(room),
                (None, Some(peer)) => {
                    e.room.is_none()
                        && ((e.sender == user && e.to.as_deref() == Some(peer))
                            || (e.sender == peer && e.to.as_deref() == Some(user)))
                }
                (None, None) => false,
            },
            Ok(_) => false,
            Err(e) => {
                log::warn!("cannot read entry {id}: {e}");
                false
            }
        }
    }

    /// The members of `room` (other than the author) that `text` mentions.
    fn mentions_in(&self, room: &str, author: &str, text: &str) -> Vec<String> {
        let Some(state) = self.directory.room(room) else {
            return Vec::new();
        };
        let mut names: Vec<String> = mentioned_names(text)
            .map(str::to_ascii_lowercase)
            .filter(|name| name != author && state.members.contains_key(name))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The conversation of an entry, for delivering changes to it.
    fn entry_recipients(&self, entry: &StoredEntry) -> Recipients {
        self.recipients(
            entry.room.as_deref(),
            &entry.sender,
            entry.to.as_deref().unwrap_or(""),
        )
    }

    pub(super) fn edit(&mut self, req: &Req, entry: StoredEntry, text: &str) {
        let user = req.user.clone();
        if let Err(e) = check_text(text, self.config.max_text) {
            self.refuse(req, e.code(), kind::EDIT, &e.to_string());
            return;
        }
        if !self.charge_quota(req, false, text.len() as u64, kind::EDIT) {
            return;
        }
        let mentions = match &entry.room {
            Some(room) => self.mentions_in(room, &user, text),
            None => Vec::new(),
        };
        let (_, v2) = self.entry_recipients(&entry);
        let ts = req.ts;
        let room = entry.room.as_deref().unwrap_or("");
        let to = entry.to.as_deref().unwrap_or("");
        self.turn
            .request(req.conn, kind::EDIT)
            .write(Write::Edit {
                id: entry.id,
                ts,
                text: text.to_owned(),
                mentions,
            })
            .deliver(&v2, |out| {
                Message::Edited {
                    id: entry.id,
                    ts,
                    room,
                    from: &entry.sender,
                    to,
                    text,
                }
                .encode(out)
            });
    }

    pub(super) fn delete(&mut self, req: &Req, entry: StoredEntry) {
        let user = req.user.clone();
        let (_, v2) = self.entry_recipients(&entry);
        let room = entry.room.as_deref().unwrap_or("");
        let to = entry.to.as_deref().unwrap_or("");
        self.turn.deleted.push(entry.id);
        self.turn
            .request(req.conn, kind::DELETE)
            .write(Write::Delete { id: entry.id })
            .deliver(&v2, |out| {
                Message::Deleted {
                    id: entry.id,
                    room,
                    from: &entry.sender,
                    to,
                    by: &user,
                }
                .encode(out)
            });
        if entry.sender != user {
            // A moderator removing someone else's message is a moderation act.
            self.turn.same_request().write(Write::Audit(AuditRecord {
                ts: req.ts,
                actor: user.clone(),
                action: "message.delete".into(),
                target: entry.sender.clone(),
                room: room.to_owned(),
                detail: format!("message {}", entry.id),
            }));
        }
    }

    pub(super) fn react(&mut self, req: &Req, entry: StoredEntry, reaction: &str) {
        let user = req.user.clone();
        if let Err(e) = check_reaction(reaction) {
            self.refuse(req, e.code(), kind::REACT, &e.to_string());
            return;
        }
        let (mut had, mut count, distinct) = match (
            self.store.reaction_state(entry.id, &user, reaction),
            self.store.distinct_reactions(entry.id),
        ) {
            (Ok((had, count)), Ok(distinct)) => (had, count, distinct),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("cannot read reactions of {}: {e}", entry.id);
                self.refuse(req, code::STORAGE_FAILED, kind::REACT, "try again");
                return;
            }
        };
        // Toggles earlier in this turn are not committed yet.
        for (id, r, u, added) in &self.turn.reactions {
            if *id == entry.id && r == reaction {
                if *added {
                    count += 1;
                } else {
                    count = count.saturating_sub(1);
                }
                if u == &user {
                    had = *added;
                }
            }
        }
        let add = !had;
        if add && count == 0 && distinct >= MAX_REACTIONS {
            self.refuse(
                req,
                code::TOO_MANY_REACTIONS,
                kind::REACT,
                "that message has too many different reactions",
            );
            return;
        }
        let count = if add {
            count.saturating_add(1)
        } else {
            count.saturating_sub(1)
        };
        self.turn
            .reactions
            .push((entry.id, reaction.to_owned(), user.clone(), add));
        let (_, v2) = self.entry_recipients(&entry);
        let room = entry.room.as_deref().unwrap_or("");
        let to = entry.to.as_deref().unwrap_or("");
        self.turn
            .request(req.conn, kind::REACT)
            .write(Write::React {
                id: entry.id,
                user: user.clone(),
                reaction: reaction.to_owned(),
                add,
                ts: req.ts,
            })
            .deliver(&v2, |out| {
                Message::Reacted {
                    id: entry.id,
                    room,
                    from: &entry.sender,
                    to,
                    user: &user,
                    reaction,
                    added: add,
                    count,
                }
                .encode(out)
            });
    }

    /// Gives back the part of a `Cost::Bounded` charge that the work did not take.
    fn refund_unused(&mut self, req: &Req, kind: u8, used: Duration) {
        let Some(Cost::Bounded(charged)) = type_info(kind).map(|i| i.cost) else {
            return;
        };
        let unused = f64::from(charged) - super::queries::units_of(used);
        if let Some(conn) = req.conn.and_then(|key| self.conns.get_mut(key)) {
            if unused > 0.0 {
                conn.units.refund(unused);
            }
        }
    }

    /// MARK_READ: moves the user's marker forward (never past the conversation's newest entry)
    /// and tells all their v2 sessions.
    pub(super) fn mark_read(&mut self, req: &Req, conv: &str, id: u64) {
        let started = Instant::now();
        let user = req.user.clone();
        let (store_key, newest) = match Conv::parse(conv) {
            Some(Conv::Room(room)) => (
                ConvKey::Room(room),
                Ok(self.directory.room(room).map_or(0, |r| r.newest_id)),
            ),
            Some(Conv::Private(peer)) => (
                ConvKey::Pair(&user, peer),
                self.store.newest_private(&user, peer),
            ),
            None => return,
        };
        let current = self.store.marker(&user, conv);
        let (newest, current) = match (newest, current) {
            (Ok(newest), Ok(current)) => (newest, current),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("cannot read markers of {user}: {e}");
                self.refuse(req, code::STORAGE_FAILED, kind::MARK_READ, "try again");
                return;
            }
        };
        let marker = id.min(newest).max(current);
        // Read up to the newest entry (the usual case), nothing is left to count.
        let (unread, mentions) = if marker >= newest {
            (0, 0)
        } else {
            self.store
                .unread(&user, store_key, marker)
                .unwrap_or((0, 0))
        };
        self.refund_unused(req, kind::MARK_READ, started.elapsed());
        let sessions: Vec<usize> = self
            .online
            .conns_of(&user)
            .iter()
            .filter(|o| o.version != VERSION_1)
            .map(|o| o.conn)
            .collect();
        self.turn
            .request(req.conn, kind::MARK_READ)
            .write(Write::Marker {
                user: user.clone(),
                conv: conv.to_owned(),
                last_read: marker,
            })
            .deliver(&sessions, |out| {
                Message::Marker {
                    conv,
                    id: marker,
                    unread,
                    mentions,
                }
                .encode(out)
            });
    }
}
