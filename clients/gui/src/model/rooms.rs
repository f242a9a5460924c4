//! Rooms as the user sees them: the list (the user's own from ROOM_INFO, the others from ROOMS
//! pages) with privacy, read-only, the user's role and the topic; the members of each room
//! (MEMBERS pages, kept current by the room's events); what the user's role allows; and the
//! acts of creating a room, inviting, removing, banning, granting roles and setting the topic.

use chat::wire::ChatMessage;
use chat::wire::event::{MemberState, RoomState};
use chat::wire::message::{EntryKind, Role};
use chat::wire::text::{self, MAX_REASON, MAX_TOPIC};

use super::actions::{room_name, user_name};
use super::{ConvKey, Conversation, Model, Paged, Request, ViewChange};

/// A row of the rooms list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    pub name: String,
    pub private: bool,
    pub read_only: bool,
    pub members: u32,
    pub joined: bool,
    pub unread: u32,
    pub mentions: u32,
    pub selected: bool,
}

/// A row of the members list of the room shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub user: String,
    pub role: Role,
    pub online: bool,
    pub me: bool,
}

/// What the members list's context menu offers for one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberAction {
    Message,
    Kick,
    Ban,
    MakeMember,
    MakeModerator,
    MakeOwner,
}

impl MemberAction {
    /// The menu item's text.
    pub fn label(self) -> &'static str {
        match self {
            MemberAction::Message => "Send a private message",
            MemberAction::Kick => "Remove from the room",
            MemberAction::Ban => "Ban from the room",
            MemberAction::MakeMember => "Make member",
            MemberAction::MakeModerator => "Make moderator",
            MemberAction::MakeOwner => "Make owner",
        }
    }
}

/// Ranks for who may act on whom: admin 4, owner 3, moderator 2, member 1, outsider 0.
fn rank(role: Role) -> u8 {
    match role {
        Role::Member => 1,
        Role::Moderator => 2,
        Role::Owner => 3,
    }
}

/// A role as the UI names it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Moderator => "moderator",
        Role::Owner => "owner",
    }
}

fn role_from_name(name: &str) -> Option<Role> {
    match name {
        "member" => Some(Role::Member),
        "moderator" => Some(Role::Moderator),
        "owner" => Some(Role::Owner),
        _ => None,
    }
}

impl Model {
    /// The user is a server admin (from the user directory).
    pub fn is_admin(&self) -> bool {
        self.users.get(&self.me).is_some_and(|u| u.admin)
    }

    fn my_rank(&self, room: &str) -> u8 {
        if self.is_admin() {
            return 4;
        }
        match self.rooms.get(room) {
            Some(state) if state.member => rank(state.role),
            Some(_) | None => 0,
        }
    }

    /// Whether the user may invite, remove, ban and set the topic in `room` (owner, moderator
    /// or admin).
    pub fn can_moderate(&self, room: &str) -> bool {
        self.my_rank(room) >= 2
    }

    /// The room shown, if a room is shown.
    pub fn current_room(&self) -> Option<&str> {
        match &self.current {
            Some(ConvKey::Room(room)) => Some(room),
            Some(ConvKey::Private(_) | ConvKey::Search) | None => None,
        }
    }

    /// The room shown, if the user may moderate it.
    fn moderated_room(&self) -> Result<String, String> {
        let Some(room) = self.current_room() else {
            return Err("Choose a room first".to_owned());
        };
        if !self.can_moderate(room) {
            return Err(format!(
                "Only owners, moderators and admins of #{room} can do that"
            ));
        }
        if !self.is_online() {
            return Err("Not connected: try again once the connection is back".to_owned());
        }
        Ok(room.to_owned())
    }

    /// The rooms list: every known room, joined ones first, by name.
    pub fn room_rows(&self) -> Vec<RoomRow> {
        let mut rows: Vec<RoomRow> = self
            .rooms
            .values()
            .map(|state| {
                let key = ConvKey::Room(state.room.clone());
                let conv = self.conversations.get(&key);
                RoomRow {
                    name: state.room.clone(),
                    private: state.private,
                    read_only: state.read_only,
                    members: state.members,
                    joined: state.member,
                    unread: conv.map_or(0, |c| c.unread),
                    mentions: conv.map_or(0, |c| c.mentions),
                    selected: self.current.as_ref() == Some(&key),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.joined.cmp(&a.joined).then_with(|| a.name.cmp(&b.name)));
        rows
    }

    /// The members of the room shown: owners, then moderators, then members, each by name.
    pub fn member_rows(&self) -> Vec<MemberRow> {
        let Some(room) = self.current_room() else {
            return Vec::new();
        };
        let Some(roster) = self.members.get(room) else {
            return Vec::new();
        };
        let mut rows: Vec<MemberRow> = roster
            .items
            .iter()
            .map(|m| MemberRow {
                user: m.user.clone(),
                role: m.role,
                online: self.users.get(&m.user).map_or(m.online, |u| u.online),
                me: m.user == self.me,
            })
            .collect();
        rows.sort_by(|a, b| {
            rank(b.role)
                .cmp(&rank(a.role))
                .then_with(|| a.user.cmp(&b.user))
        });
        rows
    }

    /// The room's topic, shown above the conversation (invisible characters made visible).
    pub fn topic(&self) -> Option<String> {
        let room = self.current_room()?;
        let topic = &self.rooms.get(room)?.topic;
        (!topic.is_empty()).then(|| text::visible(topic).into_owned())
    }

    /// What the user may do to `user` in the room shown.
    pub fn member_actions(&self, user: &str) -> Vec<MemberAction> {
        if user == self.me {
            return Vec::new();
        }
        let mut actions = vec![MemberAction::Message];
        let Some(room) = self.current_room() else {
            return actions;
        };
        let target = self
            .members
            .get(room)
            .and_then(|r| r.items.iter().find(|m| m.user == user))
            .map(|m| m.role);
        let mine = self.my_rank(room);
        if let Some(role) = target {
            if mine >= 2 && mine > rank(role) {
                actions.extend([MemberAction::Kick, MemberAction::Ban]);
            }
            if mine >= 3 {
                for (action, to) in [
                    (MemberAction::MakeMember, Role::Member),
                    (MemberAction::MakeModerator, Role::Moderator),
                    (MemberAction::MakeOwner, Role::Owner),
                ] {
                    if to != role {
                        actions.push(action);
                    }
                }
            }
        }
        actions
    }

    /// Does `action` to `user` in the room shown (`reason` for removing and banning).
    pub fn act_on_member(
        &mut self,
        user: &str,
        action: MemberAction,
        reason: &str,
    ) -> Result<Vec<Request>, String> {
        if action == MemberAction::Message {
            return self.open_private(user);
        }
        let room = self.moderated_room()?;
        let user = user.to_owned();
        let reason = reason.trim();
        if text::check_line(reason, MAX_REASON).is_err() {
            return Err("A reason is one line of at most 200 bytes".to_owned());
        }
        let reason = reason.to_owned();
        Ok(vec![match action {
            MemberAction::Kick => Request::Kick { room, user, reason },
            MemberAction::Ban => Request::Ban { room, user, reason },
            MemberAction::MakeMember => Request::SetRole {
                room,
                user,
                role: Role::Member,
            },
            MemberAction::MakeModerator => Request::SetRole {
                room,
                user,
                role: Role::Moderator,
            },
            MemberAction::MakeOwner => Request::SetRole {
                room,
                user,
                role: Role::Owner,
            },
            MemberAction::Message => return self.open_private(&user),
        }])
    }

    /// Invites `user` into the room shown.
    pub fn invite(&mut self, user: &str) -> Result<Vec<Request>, String> {
        let room = self.moderated_room()?;
        let user = user_name(user)?;
        if self
            .members
            .get(&room)
            .is_some_and(|r| r.items.iter().any(|m| m.user == user))
        {
            return Err(format!("{user} is in #{room} already"));
        }
        Ok(vec![Request::Invite { room, user }])
    }

    /// Sets the topic of the room shown.
    pub fn set_topic(&mut self, topic: &str) -> Result<Vec<Request>, String> {
        let room = self.moderated_room()?;
        let topic = topic.trim();
        if let Err(e) = text::check_line(topic, MAX_TOPIC) {
            return Err(format!("Cannot use that topic: {e}"));
        }
        Ok(vec![Request::SetTopic {
            room,
            topic: topic.to_owned(),
        }])
    }

    /// Creates a room; it is shown as soon as the server confirms.
    pub fn create_room(
        &mut self,
        name: &str,
        private: bool,
        read_only: bool,
        topic: &str,
    ) -> Result<Vec<Request>, String> {
        let room = room_name(name)?;
        let topic = topic.trim();
        if let Err(e) = text::check_line(topic, MAX_TOPIC) {
            return Err(format!("Cannot use that topic: {e}"));
        }
        if self.rooms.contains_key(&room) {
            return Err(format!("#{room} exists already"));
        }
        if !self.is_online() {
            return Err("Not connected: create the room once the connection is back".to_owned());
        }
        self.pending_join = Some(room.clone());
        Ok(vec![Request::Create {
            room,
            private,
            read_only,
            topic: topic.to_owned(),
        }])
    }

    /// The MEMBERS request for the room `key`, unless one is under way.
    pub(super) fn roster_request(&mut self, key: &ConvKey) -> Option<Request> {
        let ConvKey::Room(room) = key else {
            return None;
        };
        if !self.is_online() || !self.rooms.get(room).is_some_and(|r| r.member) {
            return None;
        }
        self.members
            .entry(room.clone())
            .or_default()
            .start()
            .then(|| Request::Members {
                room: room.clone(),
                cursor: String::new(),
            })
    }

    pub(super) fn on_member_page(
        &mut self,
        room: String,
        next: &str,
        members: Vec<MemberState>,
    ) -> Vec<Request> {
        let roster = self.members.entry(room.clone()).or_default();
        let more = roster.page(members, next);
        self.changes.lists = true;
        if more {
            return vec![Request::Members {
                room,
                cursor: next.to_owned(),
            }];
        }
        if let Some(state) = self.rooms.get_mut(&room) {
            state.members = roster.items.len() as u32;
        }
        Vec::new()
    }

    /// A room's state (after login, joining, being invited or removed, a role change).
    pub(super) fn on_room(&mut self, state: RoomState) -> Vec<Request> {
        let room = state.room.clone();
        let key = ConvKey::Room(room.clone());
        let was_in = self.conversations.contains_key(&key);
        let member = state.member;
        self.rooms.insert(room.clone(), state);
        self.changes.lists = true;
        self.touch(&key, ViewChange::Tail);
        match (member, was_in) {
            (true, false) => self.joined(room),
            (false, true) => {
                self.left(&room);
                Vec::new()
            }
            (true, true) | (false, false) => Vec::new(),
        }
    }

    pub(super) fn on_room_page(&mut self, next: &str, rooms: Vec<RoomState>) -> Vec<Request> {
        if self.room_list.page(rooms, next) {
            return vec![Request::Rooms(next.to_owned())];
        }
        let listed = std::mem::take(&mut self.room_list.items);
        // Rooms that are not listed any more and not ours disappear.
        self.rooms
            .retain(|name, state| state.member || listed.iter().any(|r| &r.room == name));
        for state in listed {
            if state.member || !self.rooms.get(&state.room).is_some_and(|r| r.member) {
                self.rooms.insert(state.room.clone(), state);
            }
        }
        self.changes.lists = true;
        if let Some(current) = self.current.clone() {
            self.touch(&current, ViewChange::Tail);
        }
        Vec::new()
    }

    /// The server confirmed that we are in `room` (after a JOIN, CREATE or invitation, or at
    /// login).
    pub(super) fn joined(&mut self, room: String) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        self.conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        self.changes.lists = true;
        if self.pending_join.as_deref() == Some(room.as_str()) {
            self.pending_join = None;
            return self.select(key);
        }
        // After login the server names our rooms in order: show the home room, or the first
        // one, unless the user has already picked something.
        if self.current.is_none() || (room == self.home_room && !self.user_chose) {
            let requests = self.select(key);
            self.user_chose = false;
            return requests;
        }
        Vec::new()
    }

    pub(super) fn left(&mut self, room: &str) {
        let key = ConvKey::Room(room.to_owned());
        if let Some(state) = self.rooms.get_mut(room) {
            state.member = false;
            state.role = Role::Member;
        }
        self.members.remove(room);
        self.conversations.remove(&key);
        self.outbox.forget(&key);
        self.changes.lists = true;
        if self.current.as_ref() == Some(&key) {
            self.compose = None;
            self.changes.compose = true;
            self.current = self
                .conversations
                .keys()
                .find(|k| matches!(k, ConvKey::Room(_)))
                .or_else(|| self.conversations.keys().next())
                .cloned();
            self.changes.view = Some(ViewChange::Switched);
        }
    }

    /// What a room event changes beyond its line in the conversation: members, roles, the
    /// topic, the room's mode; and news for the user concerned.
    pub(super) fn room_event(&mut self, room: &str, event: &ChatMessage) -> Vec<Request> {
        let concerns = event.concerns.as_str();
        let roster = self.members.get_mut(room);
        let add = |roster: Option<&mut Paged<MemberState>>, user: &str| {
            if let Some(roster) = roster {
                if !roster.items.iter().any(|m| m.user == user) {
                    roster.items.push(MemberState {
                        user: user.to_owned(),
                        role: Role::Member,
                        online: true,
                    });
                }
            }
        };
        match event.kind {
            EntryKind::Joined => add(roster, &event.from),
            EntryKind::Invited => add(roster, concerns),
            EntryKind::Left => {
                if let Some(roster) = roster {
                    roster.items.retain(|m| m.user != event.from);
                }
            }
            EntryKind::Kicked | EntryKind::Banned => {
                if let Some(roster) = roster {
                    roster.items.retain(|m| m.user != concerns);
                }
                if concerns == self.me {
                    let what = if event.kind == EntryKind::Banned {
                        "banned you from"
                    } else {
                        "removed you from"
                    };
                    let reason = if event.text.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text::visible(&event.text))
                    };
                    self.flash(format!("{} {what} #{room}{reason}", event.from));
                }
            }
            EntryKind::RoleChanged => {
                if let (Some(roster), Some(role)) = (roster, role_from_name(&event.text)) {
                    if let Some(m) = roster.items.iter_mut().find(|m| m.user == concerns) {
                        m.role = role;
                    }
                }
            }
            EntryKind::TopicChanged => {
                if let Some(state) = self.rooms.get_mut(room) {
                    state.topic = event.text.clone();
                }
            }
            EntryKind::ModeChanged => {
                if let Some(state) = self.rooms.get_mut(room) {
                    match event.text.as_str() {
                        "private" => state.private = true,
                        "public" => state.private = false,
                        "read-only" => state.read_only = true,
                        "open" => state.read_only = false,
                        _ => {}
                    }
                }
            }
            EntryKind::Text
            | EntryKind::Action
            | EntryKind::Unbanned
            | EntryKind::Created
            | EntryKind::RetentionChanged => {}
        }
        if let (Some(roster), Some(state)) = (self.members.get(room), self.rooms.get_mut(room)) {
            if roster.loading.is_none() && !roster.items.is_empty() {
                state.members = roster.items.len() as u32;
            }
        }
        self.changes.lists = true;
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    fn ops(role: Role) -> Event {
        Event::Room(room_state("ops", true, role))
    }

    fn roster(m: &mut Model, members: &[(&str, Role)]) {
        let requests = m.handle(Event::MemberPage {
            room: "ops".into(),
            next: String::new(),
            members: members
                .iter()
                .map(|(user, role)| MemberState {
                    user: (*user).into(),
                    role: *role,
                    online: *user != "dave",
                })
                .collect(),
        });
        assert!(requests.is_empty());
    }

    #[test]
    fn private_rooms_show_their_lock_topic_and_members_with_roles() {
        let mut m = in_general();
        let mut state = room_state("ops", true, Role::Moderator);
        state.topic = "Deploys\u{200b} and incidents".into();
        m.handle(Event::Room(state));
        let asked = m.select(ConvKey::Room("ops".into()));
        assert!(asked.contains(&Request::Members {
            room: "ops".into(),
            cursor: String::new()
        }));
        roster(
            &mut m,
            &[
                ("alice", Role::Moderator),
                ("bob", Role::Owner),
                ("carol", Role::Member),
                ("dave", Role::Member),
            ],
        );
        let row = m
            .room_rows()
            .into_iter()
            .find(|r| r.name == "ops")
            .expect("ops");
        assert!(row.private && row.joined);
        assert_eq!(m.title(), "🔒 #ops · 4 members");
        assert_eq!(m.topic().as_deref(), Some("Deploys<U+200B> and incidents"));
        let members: Vec<_> = m
            .member_rows()
            .iter()
            .map(|r| (r.user.clone(), r.role, r.online))
            .collect();
        assert_eq!(
            members,
            vec![
                ("bob".to_owned(), Role::Owner, true),
                ("alice".to_owned(), Role::Moderator, true),
                ("carol".to_owned(), Role::Member, true),
                ("dave".to_owned(), Role::Member, false),
            ]
        );
        // A moderator acts on members, not on the owner, and grants no roles.
        assert_eq!(
            m.member_actions("carol"),
            vec![MemberAction::Message, MemberAction::Kick, MemberAction::Ban]
        );
        assert_eq!(m.member_actions("bob"), vec![MemberAction::Message]);
        assert!(m.member_actions("alice").is_empty());
        assert_eq!(
            m.act_on_member("carol", MemberAction::Kick, " spam "),
            Ok(vec![Request::Kick {
                room: "ops".into(),
                user: "carol".into(),
                reason: "spam".into()
            }])
        );
        assert_eq!(
            m.invite("Erin"),
            Ok(vec![Request::Invite {
                room: "ops".into(),
                user: "erin".into()
            }])
        );
        assert!(m.invite("carol").is_err());
        assert_eq!(
            m.set_topic("New topic"),
            Ok(vec![Request::SetTopic {
                room: "ops".into(),
                topic: "New topic".into()
            }])
        );
    }

    #[test]
    fn owners_grant_roles_and_members_may_do_nothing_but_talk() {
        let mut m = in_general();
        m.handle(ops(Role::Owner));
        m.select(ConvKey::Room("ops".into()));
        roster(&mut m, &[("alice", Role::Owner), ("bob", Role::Moderator)]);
        assert_eq!(
            m.member_actions("bob"),
            vec![
                MemberAction::Message,
                MemberAction::Kick,
                MemberAction::Ban,
                MemberAction::MakeMember,
                MemberAction::MakeOwner
            ]
        );
        assert_eq!(
            m.act_on_member("bob", MemberAction::MakeOwner, ""),
            Ok(vec![Request::SetRole {
                room: "ops".into(),
                user: "bob".into(),
                role: Role::Owner
            }])
        );
        // Demoted to member by an event: nothing but a private message is offered any more,
        // and trying anyway is refused with a reason.
        m.handle(ops(Role::Member));
        assert_eq!(m.member_actions("bob"), vec![MemberAction::Message]);
        assert!(
            m.act_on_member("bob", MemberAction::Kick, "")
                .is_err_and(|e| e.contains("Only owners, moderators and admins"))
        );
        assert!(m.set_topic("x").is_err());
        assert!(m.invite("erin").is_err());
    }

    #[test]
    fn admins_may_act_on_anyone() {
        let mut m = in_general();
        m.handle(Event::UserPage {
            next: String::new(),
            users: vec![user_state("alice", true, true)],
        });
        m.handle(ops(Role::Member));
        m.select(ConvKey::Room("ops".into()));
        roster(&mut m, &[("alice", Role::Member), ("bob", Role::Owner)]);
        assert!(m.member_actions("bob").contains(&MemberAction::Ban));
        assert!(
            m.member_actions("bob")
                .contains(&MemberAction::MakeModerator)
        );
    }

    #[test]
    fn room_events_keep_members_topic_and_mode_current() {
        let mut m = in_general();
        m.handle(ops(Role::Owner));
        m.select(ConvKey::Room("ops".into()));
        roster(&mut m, &[("alice", Role::Owner), ("bob", Role::Member)]);
        let event = |id: u64, kind: EntryKind, from: &str, concerns: &str, text: &str| {
            Event::Message(room_event(id, "ops", kind, from, concerns, text))
        };
        m.handle(event(20, EntryKind::Invited, "alice", "carol", ""));
        m.handle(event(
            21,
            EntryKind::RoleChanged,
            "alice",
            "carol",
            "moderator",
        ));
        m.handle(event(22, EntryKind::Kicked, "alice", "bob", "off topic"));
        m.handle(event(
            23,
            EntryKind::TopicChanged,
            "carol",
            "",
            "Launch plans",
        ));
        m.handle(event(24, EntryKind::ModeChanged, "alice", "", "read-only"));
        m.handle(event(25, EntryKind::Joined, "dave", "", ""));
        let members: Vec<_> = m
            .member_rows()
            .iter()
            .map(|r| (r.user.clone(), r.role))
            .collect();
        assert_eq!(
            members,
            vec![
                ("alice".to_owned(), Role::Owner),
                ("carol".to_owned(), Role::Moderator),
                ("dave".to_owned(), Role::Member),
            ]
        );
        assert_eq!(m.topic().as_deref(), Some("Launch plans"));
        assert_eq!(m.title(), "🔒 #ops · 3 members · read-only");
        let lines = plain(&m);
        let calm: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains("— "))
            .map(String::as_str)
            .collect();
        assert_eq!(
            calm,
            vec![
                "[22:12] — alice invited carol",
                "[22:12] — alice made carol moderator",
                "[22:12] — alice removed bob from the room: off topic",
                "[22:12] — carol changed the topic to “Launch plans”",
                "[22:12] — alice made the room read-only",
                "[22:12] — dave joined",
            ]
        );
    }

    #[test]
    fn being_removed_says_so_and_closes_the_room() {
        let mut m = in_general();
        m.handle(ops(Role::Member));
        m.select(ConvKey::Room("ops".into()));
        m.handle(Event::Message(room_event(
            30,
            "ops",
            EntryKind::Banned,
            "bob",
            "alice",
            "rude",
        )));
        m.handle(Event::Room(
            room_state("ops", true, Role::Member).not_member(),
        ));
        assert_eq!(
            m.take_flash().as_deref(),
            Some("bob banned you from #ops: rude")
        );
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert!(m.room_rows().iter().all(|r| r.name != "ops" || !r.joined));
    }

    #[test]
    fn creating_a_room_shows_it_once_the_server_confirms() {
        let mut m = in_general();
        assert!(m.create_room("bad name", false, false, "").is_err());
        assert!(m.create_room("general", false, false, "").is_err());
        assert!(m.create_room("x", false, false, "two\nlines").is_err());
        assert_eq!(
            m.create_room("#Launch", true, false, " Q4 launch "),
            Ok(vec![Request::Create {
                room: "launch".into(),
                private: true,
                read_only: false,
                topic: "Q4 launch".into()
            }])
        );
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        let mut state = room_state("launch", true, Role::Owner);
        state.topic = "Q4 launch".into();
        let requests = m.handle(Event::Room(state));
        assert_eq!(m.current(), Some(&ConvKey::Room("launch".into())));
        assert!(
            requests
                .iter()
                .any(|r| matches!(r, Request::Fetch { conv, .. } if conv == "launch"))
        );
        m.handle(Event::Message(room_event(
            40,
            "launch",
            EntryKind::Created,
            "alice",
            "",
            "Q4 launch",
        )));
        assert!(
            plain(&m)
                .iter()
                .any(|l| l.ends_with("— alice created the room")),
            "{:?}",
            plain(&m)
        );
    }

    #[test]
    fn the_room_list_pages_and_keeps_the_users_rooms() {
        let mut m = in_general();
        let page = |next: &str, names: &[&str]| Event::RoomPage {
            next: next.into(),
            rooms: names
                .iter()
                .map(|n| room_state(n, false, Role::Member).not_member())
                .collect(),
        };
        assert_eq!(
            m.handle(page("c1", &["archive"])),
            vec![Request::Rooms("c1".into())]
        );
        assert!(m.handle(page("", &["sales"])).is_empty());
        let names: Vec<_> = m
            .room_rows()
            .iter()
            .map(|r| (r.name.clone(), r.joined))
            .collect();
        assert_eq!(
            names,
            vec![
                ("general".to_owned(), true),
                ("archive".to_owned(), false),
                ("sales".to_owned(), false)
            ]
        );
    }
}
