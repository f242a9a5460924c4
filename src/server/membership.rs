//! Rooms and their people: CREATE, JOIN, LEAVE, and the moderation acts (invite, kick, ban,
//! unban, topic, mode, role, retention). Each is one durable request: directory change with
//! its undo, store writes, an audit row for moderation, and an event entry recorded in the
//! room and delivered to its members and to the user concerned. Access was checked by the
//! guard before any of these run.

use super::Server;
use super::directory::{Change, GENERAL, RoomSettings};
use super::requester::Req;
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
    fn audit(&mut self, req: &Req, action: &str, target: &str, room: &str, detail: &str) {
        self.turn.same_request().write(Write::Audit(AuditRecord {
            ts: req.ts,
            actor: req.user.clone(),
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
        req: &Req,
        room: &str,
        event: EntryKind,
        concerns: Option<&str>,
        text: &str,
    ) {
        let actor = req.user.as_str();
        let id = self.new_id();
        let ts = req.ts;
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
        // The user concerned hears it even when no longer (or not yet) in the room, and so does
        // the actor (an admin acting in a room they are not in): it is their answer.
        let concerned = self.online.conns_of(subject).iter();
        let acting = self.online.conns_of(actor).iter();
        for online in concerned.chain(acting) {
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

    pub(super) fn create(&mut self, req: &Req, room: &str, flags: u8, topic: &str) {
        let user = req.user.clone();
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
            self.refuse(req, error, kind::CREATE, detail);
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
            .request(req.conn, kind::CREATE)
            .undo(created)
            .undo(joined)
            .write(Write::CreateRoom {
                name: room.to_owned(),
                private,
                read_only,
                topic: topic.to_owned(),
                creator: user.clone(),
                ts: req.ts,
            })
            .write(Write::Join {
                user: user.clone(),
                room: room.to_owned(),
                role: Role::Owner,
            });
        let detail = if private { "private" } else { "public" };
        self.audit(req, "room.create", "", room, detail);
        self.send_room_info(room, &user);
        self.room_event(req, room, EntryKind::Created, None, topic);
    }

    pub(super) fn join(&mut self, req: &Req, room: &str) {
        let user = req.user.clone();
        if self.directory.role(room, &user).is_some() {
            // Already in: repeat what a join answers, to this connection only.
            let mut answer = Vec::new();
            if req.version == VERSION_1 {
                Message::Notice {
                    kind: NoticeKind::Join,
                    room,
                    user: &user,
                    ts: req.ts,
                }
                .encode(&mut answer);
            } else {
                self.encode_room_info(room, &user, &mut answer);
            }
            self.turn
                .reply(req.conns(), |out| out.extend_from_slice(&answer));
            return;
        }
        if self.directory.room_count_of(&user) >= self.config.max_rooms_per_user {
            self.refuse(
                req,
                code::TOO_MANY_ROOMS,
                kind::JOIN,
                "too many rooms; leave one first",
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
            .request(req.conn, kind::JOIN)
            .undo(undo)
            .write(Write::Join {
                user: user.clone(),
                room: room.to_owned(),
                role,
            });
        self.send_room_info(room, &user);
        self.room_event(req, room, EntryKind::Joined, None, "");
    }

    pub(super) fn leave(&mut self, req: &Req, room: &str) {
        let user = req.user.clone();
        if self.loses_last_owner(room, &user, None) {
            self.refuse(
                req,
                code::LAST_OWNER,
                kind::LEAVE,
                "make someone else owner before you leave",
            );
            return;
        }
        self.turn.request(req.conn, kind::LEAVE);
        // The leaver hears the event too: it is the acknowledgement.
        self.room_event(req, room, EntryKind::Left, None, "");
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

    pub(super) fn invite(&mut self, req: &Req, room: &str, target: &str) {
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
            self.refuse(req, error, kind::INVITE, detail);
            return;
        }
        let role = self.new_member_role(room);
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: target.to_owned(),
            role: Some(role),
        });
        self.turn
            .request(req.conn, kind::INVITE)
            .undo(undo)
            .write(Write::Join {
                user: target.to_owned(),
                room: room.to_owned(),
                role,
            });
        self.audit(req, "room.invite", target, room, "");
        self.send_room_info(room, target);
        self.room_event(req, room, EntryKind::Invited, Some(target), "");
    }

    /// KICK (`ban` false) and BAN (`ban` true): the user leaves the room; a ban also keeps
    /// them out until UNBAN.
    pub(super) fn remove_member(
        &mut self,
        req: &Req,
        room: &str,
        target: &str,
        reason: &str,
        ban: bool,
    ) {
        let ref_type = if ban { kind::BAN } else { kind::KICK };
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
            self.refuse(req, error, ref_type, detail);
            return;
        }
        self.turn.request(req.conn, ref_type);
        let event = if ban {
            EntryKind::Banned
        } else {
            EntryKind::Kicked
        };
        // Delivered before the removal, so the user concerned hears it with the room.
        self.room_event(req, room, event, Some(target), reason);
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
                    by: req.user.clone(),
                    ts: req.ts,
                    reason: reason.to_owned(),
                }));
        }
        let action = if ban { "room.ban" } else { "room.kick" };
        self.audit(req, action, target, room, reason);
        self.send_room_info(room, target);
    }

    pub(super) fn unban(&mut self, req: &Req, room: &str, target: &str) {
        if !self.directory.is_banned(room, target) {
            self.refuse(
                req,
                code::NOT_ALLOWED,
                kind::UNBAN,
                "that user is not banned",
            );
            return;
        }
        let undo = self.apply(Change::SetBan {
            room: room.to_owned(),
            user: target.to_owned(),
            banned: false,
        });
        self.turn
            .request(req.conn, kind::UNBAN)
            .undo(undo)
            .write(Write::Unban {
                room: room.to_owned(),
                user: target.to_owned(),
            });
        self.audit(req, "room.unban", target, room, "");
        self.room_event(req, room, EntryKind::Unbanned, Some(target), "");
    }

    /// Replaces a room's settings as part of a new request of `ref_type`, with the write that
    /// stores them.
    fn change_settings(
        &mut self,
        req: &Req,
        ref_type: u8,
        room: &str,
        settings: RoomSettings,
        write: Write,
    ) {
        let undo = self.apply(Change::SetSettings {
            room: room.to_owned(),
            settings,
        });
        self.turn
            .request(req.conn, ref_type)
            .undo(undo)
            .write(write);
    }

    fn settings_of(&self, room: &str) -> RoomSettings {
        self.directory
            .room(room)
            .map(|r| r.settings.clone())
            .unwrap_or_default()
    }

    pub(super) fn set_topic(&mut self, req: &Req, room: &str, topic: &str) {
        if let Err(e) = check_line(topic, MAX_TOPIC) {
            self.refuse(
                req,
                e.code(),
                kind::SET_TOPIC,
                "a topic is one line of at most 512 bytes",
            );
            return;
        }
        let settings = RoomSettings {
            topic: topic.to_owned(),
            ..self.settings_of(room)
        };
        self.change_settings(
            req,
            kind::SET_TOPIC,
            room,
            settings,
            Write::RoomTopic {
                room: room.to_owned(),
                topic: topic.to_owned(),
            },
        );
        self.audit(req, "room.topic", "", room, topic);
        self.room_event(req, room, EntryKind::TopicChanged, None, topic);
    }

    pub(super) fn set_mode(&mut self, req: &Req, room: &str, mode: RoomMode) {
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
            self.refuse(
                req,
                code::NOT_ALLOWED,
                kind::SET_MODE,
                "#general stays public",
            );
            return;
        }
        let write = Write::RoomFlags {
            room: room.to_owned(),
            private: settings.private,
            read_only: settings.read_only,
        };
        self.change_settings(req, kind::SET_MODE, room, settings, write);
        self.audit(req, "room.mode", "", room, name);
        self.room_event(req, room, EntryKind::ModeChanged, None, name);
    }

    pub(super) fn set_role(&mut self, req: &Req, room: &str, target: &str, role: Role) {
        let refusal = if self.directory.role(room, target).is_none() {
            Some((code::NOT_IN_ROOM, "that user is not in the room"))
        } else if self.loses_last_owner(room, target, Some(role)) {
            Some((code::LAST_OWNER, "a room must keep one owner"))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            self.refuse(req, error, kind::SET_ROLE, detail);
            return;
        }
        let undo = self.apply(Change::SetMember {
            room: room.to_owned(),
            user: target.to_owned(),
            role: Some(role),
        });
        self.turn
            .request(req.conn, kind::SET_ROLE)
            .undo(undo)
            .write(Write::Join {
                user: target.to_owned(),
                room: room.to_owned(),
                role,
            });
        self.audit(req, "room.role", target, room, role_name(role));
        self.send_room_info(room, target);
        self.room_event(
            req,
            room,
            EntryKind::RoleChanged,
            Some(target),
            role_name(role),
        );
    }

    pub(super) fn set_retention(&mut self, req: &Req, room: &str, hours: u32) {
        let settings = RoomSettings {
            retention_h: hours,
            ..self.settings_of(room)
        };
        self.change_settings(
            req,
            kind::SET_RETENTION,
            room,
            settings,
            Write::RoomRetention {
                room: room.to_owned(),
                hours,
            },
        );
        let text = retention_text(hours);
        self.audit(req, "room.retention", "", room, &text);
        self.retention_soon();
        self.room_event(req, room, EntryKind::RetentionChanged, None, &text);
    }
}
