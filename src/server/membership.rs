//! Rooms and their people: CREATE, JOIN, LEAVE, and the moderation acts (invite, kick, ban,
//! unban, topic, mode, role, retention). Each is one durable request: directory change with
//! its undo, store writes, an audit row for moderation, and an event entry recorded in the
//! room and delivered to its members and to the user concerned. Access was checked by the
//! guard before any of these run.

use std::time::Instant;

use super::directory::{Change, GENERAL, RoomSettings};
use super::{Server, now_ms};
use crate::store::{AuditRecord, BanRecord, NewEntry, Write};
use crate::wire::message::{
    Entry, EntryKind, Message, NoticeKind, Role, RoomMode, VERSION_1, code, create_flag, kind,
};
use crate::wire::text::{MAX_REASON, MAX_TOPIC, check_line, is_valid_room};

/// Retention hours meaning "keep forever".
pub const FOREVER: u32 = u32::MAX;

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Moderator => "moderator",
        Role::Owner => "owner",
    }
}

fn retention_text(hours: u32) -> String {
    match hours {
        0 => "default".into(),
        FOREVER => "forever".into(),
        h => format!("{h}h"),
    }
}

impl Server {
    /// An audit row of the current request.
    fn audit(&mut self, actor: &str, action: &str, target: &str, room: &str, detail: &str) {
        self.turn.same_request().write(Write::Audit(AuditRecord {
            ts: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            room: room.to_owned(),
            detail: detail.to_owned(),
        }));
    }

    /// Records an event in `room` as part of the current request and delivers it to the room's
    /// members online and to the user concerned (joined and left events of rooms bigger than
    /// `notice_max_members` only to the user concerned).
    pub(super) fn room_event(
        &mut self,
        room: &str,
        event: EntryKind,
        actor: &str,
        concerns: Option<&str>,
        text: &str,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let ts = now_ms();
        let undo = self.apply(Change::SetNewest {
            room: room.to_owned(),
            id,
        });
        let subject = concerns.unwrap_or(actor);
        let big = self
            .directory
            .room(room)
            .is_some_and(|r| r.members.len() > self.config.notice_max_members);
        let only_subject = big && matches!(event, EntryKind::Joined | EntryKind::Left);
        let (mut v1, mut v2): (Vec<usize>, Vec<usize>) =
            match (only_subject, self.online.room(room)) {
                (false, Some(conns)) => {
                    let (a, b) = conns.by_version();
                    (a.to_vec(), b.to_vec())
                }
                (true, _) | (false, None) => (Vec::new(), Vec::new()),
            };
        for online in self.online.conns_of(subject) {
            let list = if online.version == VERSION_1 {
                &mut v1
            } else {
                &mut v2
            };
            if !list.contains(&online.conn) {
                list.push(online.conn);
            }
        }
        let notice = match event {
            EntryKind::Joined => Some((NoticeKind::Join, actor)),
            EntryKind::Invited => Some((NoticeKind::Join, subject)),
            EntryKind::Left => Some((NoticeKind::Leave, actor)),
            EntryKind::Kicked | EntryKind::Banned => Some((NoticeKind::Leave, subject)),
            EntryKind::Text
            | EntryKind::Action
            | EntryKind::Unbanned
            | EntryKind::RoleChanged
            | EntryKind::TopicChanged
            | EntryKind::ModeChanged
            | EntryKind::Created
            | EntryKind::RetentionChanged => None,
        };
        let mut req = self.turn.same_request();
        req.undo(undo)
            .write(Write::Entry(NewEntry {
                id,
                ts,
                room: Some(room.to_owned()),
                sender: actor.to_owned(),
                to: concerns.map(str::to_owned),
                kind: event,
                reply_to: 0,
                text: text.to_owned(),
                mentions: Vec::new(),
            }))
            .deliver(&v2, |out| {
                Message::NewEntry {
                    entry: Entry {
                        id,
                        ts,
                        room,
                        from: actor,
                        to: concerns.unwrap_or(""),
                        kind: event,
                        flags: 0,
                        reply_to: 0,
                        text,
                        reactions: Vec::new(),
                    },
                }
                .encode(out)
            });
        if let Some((notice, user)) = notice {
            req.deliver(&v1, |out| {
                Message::Notice {
                    kind: notice,
                    room,
                    user,
                    ts,
                }
                .encode(out)
            });
        }
    }

    /// Sends `user`'s v2 connections the room's current info (as part of the current request).
    fn send_room_info(&mut self, room: &str, user: &str) {
        let v2: Vec<usize> = self
            .online
            .conns_of(user)
            .iter()
            .filter(|o| o.version != VERSION_1)
            .map(|o| o.conn)
            .collect();
        let mut info = Vec::new();
        self.encode_room_info(room, user, &mut info);
        self.turn
            .same_request()
            .deliver(&v2, |out| out.extend_from_slice(&info));
    }

    /// The role a new member gets: owner of a room that has nobody, else member.
    fn new_member_role(&self, room: &str) -> Role {
        match self.directory.room(room) {
            Some(state) if state.members.is_empty() => Role::Owner,
            Some(_) | None => Role::Member,
        }
    }

    pub(super) fn create(&mut self, key: usize, room: &str, flags: u8, topic: &str, now: Instant) {
        let user = self.user_of(key);
        let refusal = if !is_valid_room(room) {
            Some((code::BAD_ROOM, "room names are 1-32 of a-z, 0-9, _ and -"))
        } else if let Err(e) = check_line(topic, MAX_TOPIC) {
            Some((e.code(), "a topic is one line of at most 512 bytes"))
        } else if self.directory.room(room).is_some() {
            Some((code::ROOM_EXISTS, "a room of that name exists"))
        } else if self.directory.room_count_of(&user) >= self.config.max_rooms_per_user {
            Some((code::TOO_MANY_ROOMS, "too many rooms; leave one first"))
        } else if !self.directory.is_admin(&user)
            && self.directory.rooms_created_by(&user) >= self.config.max_rooms_per_creator
        {
            Some((
                code::ROOM_LIMIT,
                "you have created as many rooms as allowed",
            ))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            self.reply_error(key, error, kind::CREATE, detail, now);
            return;
        }
        let private = flags & create_flag::PRIVATE != 0;
        let read_only = flags & create_flag::READ_ONLY != 0;
        let created = self.apply(Change::CreateRoom {
            room: room.to_owned(),
            settings: RoomSettings {
                private,
                read_only,
                topic: topic.to_owned(),
                retention_h: 0,
                created_by: Some(user.clone()),
            },
        });
        let joined = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: user.clone(),
            role: Some(Role::Owner),
        });
        self.turn
            .request(key, kind::CREATE)
            .undo(created)
            .undo(joined)
            .write(Write::CreateRoom {
                name: room.to_owned(),
                private,
                read_only,
                topic: topic.to_owned(),
                creator: user.clone(),
                ts: now_ms(),
            })
            .write(Write::Join {
                user: user.clone(),
                room: room.to_owned(),
                role: Role::Owner,
            });
        let detail = if private { "private" } else { "public" };
        self.audit(&user, "room.create", "", room, detail);
        self.send_room_info(room, &user);
        self.room_event(room, EntryKind::Created, &user, None, topic);
    }

    pub(super) fn join(&mut self, key: usize, room: &str, now: Instant) {
        let user = self.user_of(key);
        if self.directory.role(room, &user).is_some() {
            // Already in: repeat what a join answers, to this connection only.
            let mut answer = Vec::new();
            if self.conns[key].version() == VERSION_1 {
                Message::Notice {
                    kind: NoticeKind::Join,
                    room,
                    user: &user,
                    ts: now_ms(),
                }
                .encode(&mut answer);
            } else {
                self.encode_room_info(room, &user, &mut answer);
            }
            self.turn
                .reply(&[key], |out| out.extend_from_slice(&answer));
            return;
        }
        if self.directory.room_count_of(&user) >= self.config.max_rooms_per_user {
            self.reply_error(
                key,
                code::TOO_MANY_ROOMS,
                kind::JOIN,
                "too many rooms; leave one first",
                now,
            );
            return;
        }
        let role = self.new_member_role(room);
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: user.clone(),
            role: Some(role),
        });
        self.turn
            .request(key, kind::JOIN)
            .undo(undo)
            .write(Write::Join {
                user: user.clone(),
                room: room.to_owned(),
                role,
            });
        self.send_room_info(room, &user);
        self.room_event(room, EntryKind::Joined, &user, None, "");
    }

    pub(super) fn leave(&mut self, key: usize, room: &str, now: Instant) {
        let user = self.user_of(key);
        if self.loses_last_owner(room, &user, None) {
            self.reply_error(
                key,
                code::LAST_OWNER,
                kind::LEAVE,
                "make someone else owner before you leave",
                now,
            );
            return;
        }
        self.turn.request(key, kind::LEAVE);
        // The leaver hears the event too: it is the acknowledgement.
        self.room_event(room, EntryKind::Left, &user, None, "");
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: user.clone(),
            role: None,
        });
        self.turn.same_request().undo(undo).write(Write::Leave {
            user,
            room: room.to_owned(),
        });
    }

    /// Whether `user` stopping being an owner of `room` (leaving, or taking `new_role`) would
    /// leave it without one while others remain.
    fn loses_last_owner(&self, room: &str, user: &str, new_role: Option<Role>) -> bool {
        let Some(state) = self.directory.room(room) else {
            return false;
        };
        let is_owner = state.members.get(user) == Some(&Role::Owner);
        let stays_owner = new_role == Some(Role::Owner);
        let others_remain = match new_role {
            Some(_) => true,
            None => state.members.len() > 1,
        };
        is_owner && !stays_owner && state.count_role(Role::Owner) == 1 && others_remain
    }

    pub(super) fn invite(&mut self, key: usize, room: &str, target: &str, now: Instant) {
        let actor = self.user_of(key);
        let refusal = if self.directory.role(room, target).is_some() {
            Some((code::NOT_ALLOWED, "already a member"))
        } else if self.directory.is_banned(room, target) {
            Some((
                code::NOT_ALLOWED,
                "that user is banned from the room; unban first",
            ))
        } else if self.directory.room_count_of(target) >= self.config.max_rooms_per_user {
            Some((code::TOO_MANY_ROOMS, "that user is in too many rooms"))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            self.reply_error(key, error, kind::INVITE, detail, now);
            return;
        }
        let role = self.new_member_role(room);
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: target.to_owned(),
            role: Some(role),
        });
        self.turn
            .request(key, kind::INVITE)
            .undo(undo)
            .write(Write::Join {
                user: target.to_owned(),
                room: room.to_owned(),
                role,
            });
        self.audit(&actor, "room.invite", target, room, "");
        self.send_room_info(room, target);
        self.room_event(room, EntryKind::Invited, &actor, Some(target), "");
    }

    /// KICK (`ban` false) and BAN (`ban` true): the user leaves the room; a ban also keeps
    /// them out until UNBAN.
    pub(super) fn remove_member(
        &mut self,
        key: usize,
        room: &str,
        target: &str,
        reason: &str,
        ban: bool,
        now: Instant,
    ) {
        let ref_type = if ban { kind::BAN } else { kind::KICK };
        let actor = self.user_of(key);
        let member = self.directory.role(room, target).is_some();
        let refusal = if let Err(e) = check_line(reason, MAX_REASON) {
            Some((e.code(), "a reason is one line of at most 200 bytes"))
        } else if !ban && !member {
            Some((code::NOT_IN_ROOM, "that user is not in the room"))
        } else if ban && self.directory.is_banned(room, target) {
            Some((code::NOT_ALLOWED, "that user is banned already"))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            self.reply_error(key, error, ref_type, detail, now);
            return;
        }
        self.turn.request(key, ref_type);
        let event = if ban {
            EntryKind::Banned
        } else {
            EntryKind::Kicked
        };
        // Delivered before the removal, so the user concerned hears it with the room.
        self.room_event(room, event, &actor, Some(target), reason);
        if member {
            let undo = self.apply(Change::SetMember {
                room: room.to_owned(),
                user: target.to_owned(),
                role: None,
            });
            self.turn.same_request().undo(undo).write(Write::Leave {
                user: target.to_owned(),
                room: room.to_owned(),
            });
        }
        if ban {
            let undo = self.apply(Change::SetBan {
                room: room.to_owned(),
                user: target.to_owned(),
                banned: true,
            });
            self.turn
                .same_request()
                .undo(undo)
                .write(Write::Ban(BanRecord {
                    room: room.to_owned(),
                    user: target.to_owned(),
                    by: actor.clone(),
                    ts: now_ms(),
                    reason: reason.to_owned(),
                }));
        }
        let action = if ban { "room.ban" } else { "room.kick" };
        self.audit(&actor, action, target, room, reason);
        self.send_room_info(room, target);
    }

    pub(super) fn unban(&mut self, key: usize, room: &str, target: &str, now: Instant) {
        let actor = self.user_of(key);
        if !self.directory.is_banned(room, target) {
            self.reply_error(
                key,
                code::NOT_ALLOWED,
                kind::UNBAN,
                "that user is not banned",
                now,
            );
            return;
        }
        let undo = self.apply(Change::SetBan {
            room: room.to_owned(),
            user: target.to_owned(),
            banned: false,
        });
        self.turn
            .request(key, kind::UNBAN)
            .undo(undo)
            .write(Write::Unban {
                room: room.to_owned(),
                user: target.to_owned(),
            });
        self.audit(&actor, "room.unban", target, room, "");
        self.room_event(room, EntryKind::Unbanned, &actor, Some(target), "");
    }

    /// Replaces a room's settings as part of a new request of `ref_type`, with the write that
    /// stores them.
    fn change_settings(
        &mut self,
        key: usize,
        ref_type: u8,
        room: &str,
        settings: RoomSettings,
        write: Write,
    ) {
        let undo = self.apply(Change::SetSettings {
            room: room.to_owned(),
            settings,
        });
        self.turn.request(key, ref_type).undo(undo).write(write);
    }

    fn settings_of(&self, room: &str) -> RoomSettings {
        self.directory
            .room(room)
            .map(|r| r.settings.clone())
            .unwrap_or_default()
    }

    pub(super) fn set_topic(&mut self, key: usize, room: &str, topic: &str, now: Instant) {
        if let Err(e) = check_line(topic, MAX_TOPIC) {
            self.reply_error(
                key,
                e.code(),
                kind::SET_TOPIC,
                "a topic is one line of at most 512 bytes",
                now,
            );
            return;
        }
        let actor = self.user_of(key);
        let settings = RoomSettings {
            topic: topic.to_owned(),
            ..self.settings_of(room)
        };
        self.change_settings(
            key,
            kind::SET_TOPIC,
            room,
            settings,
            Write::RoomTopic {
                room: room.to_owned(),
                topic: topic.to_owned(),
            },
        );
        self.audit(&actor, "room.topic", "", room, topic);
        self.room_event(room, EntryKind::TopicChanged, &actor, None, topic);
    }

    pub(super) fn set_mode(&mut self, key: usize, room: &str, mode: RoomMode, now: Instant) {
        let actor = self.user_of(key);
        let old = self.settings_of(room);
        let (settings, name) = match mode {
            RoomMode::Public => (
                RoomSettings {
                    private: false,
                    ..old
                },
                "public",
            ),
            RoomMode::Private => (
                RoomSettings {
                    private: true,
                    ..old
                },
                "private",
            ),
            RoomMode::ReadOnly => (
                RoomSettings {
                    read_only: true,
                    ..old
                },
                "read-only",
            ),
            RoomMode::Open => (
                RoomSettings {
                    read_only: false,
                    ..old
                },
                "open",
            ),
        };
        if room == GENERAL && settings.private {
            self.reply_error(
                key,
                code::NOT_ALLOWED,
                kind::SET_MODE,
                "#general stays public",
                now,
            );
            return;
        }
        let write = Write::RoomFlags {
            room: room.to_owned(),
            private: settings.private,
            read_only: settings.read_only,
        };
        self.change_settings(key, kind::SET_MODE, room, settings, write);
        self.audit(&actor, "room.mode", "", room, name);
        self.room_event(room, EntryKind::ModeChanged, &actor, None, name);
    }

    pub(super) fn set_role(
        &mut self,
        key: usize,
        room: &str,
        target: &str,
        role: Role,
        now: Instant,
    ) {
        let actor = self.user_of(key);
        let refusal = if self.directory.role(room, target).is_none() {
            Some((code::NOT_IN_ROOM, "that user is not in the room"))
        } else if self.loses_last_owner(room, target, Some(role)) {
            Some((code::LAST_OWNER, "a room must keep one owner"))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            self.reply_error(key, error, kind::SET_ROLE, detail, now);
            return;
        }
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: target.to_owned(),
            role: Some(role),
        });
        self.turn
            .request(key, kind::SET_ROLE)
            .undo(undo)
            .write(Write::Join {
                user: target.to_owned(),
                room: room.to_owned(),
                role,
            });
        self.audit(&actor, "room.role", target, room, role_name(role));
        self.send_room_info(room, target);
        self.room_event(
            room,
            EntryKind::RoleChanged,
            &actor,
            Some(target),
            role_name(role),
        );
    }

    pub(super) fn set_retention(&mut self, key: usize, room: &str, hours: u32) {
        let actor = self.user_of(key);
        let settings = RoomSettings {
            retention_h: hours,
            ..self.settings_of(room)
        };
        self.change_settings(
            key,
            kind::SET_RETENTION,
            room,
            settings,
            Write::RoomRetention {
                room: room.to_owned(),
                hours,
            },
        );
        let text = retention_text(hours);
        self.audit(&actor, "room.retention", "", room, &text);
        self.retention_soon();
        self.room_event(room, EntryKind::RetentionChanged, &actor, None, &text);
    }
}
