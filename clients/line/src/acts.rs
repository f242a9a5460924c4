//! The commands that change something with one request: `room create|invite|kick|ban|unban|
//! topic|mode|role|retention`, `edit`, `delete`, `react`; the words they take (roles, modes,
//! retention, ids), parsed once for the command line and the interactive mode; and finding the
//! conversation of a message for `reply`. Each act waits for the server's answer: a refusal
//! exits 1 (or as its class says) with one line naming the cause; on success it prints what
//! the act caused (the room event, the edited message...), as a line or `--json`.

use chat::wire::message::{EntryKind, Message, Role, RoomMode, create_flag};
use chat::wire::session::{Event, Target};

use crate::commands::Out;
use crate::failure::Failure;
use crate::output::Formatter;
use crate::session::Session;

/// A change to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAct {
    Create {
        room: String,
        private: bool,
        read_only: bool,
        topic: String,
    },
    Invite {
        room: String,
        user: String,
    },
    Kick {
        room: String,
        user: String,
        reason: String,
    },
    Ban {
        room: String,
        user: String,
        reason: String,
    },
    Unban {
        room: String,
        user: String,
    },
    Topic {
        room: String,
        topic: String,
    },
    Mode {
        room: String,
        mode: RoomMode,
    },
    Role {
        room: String,
        user: String,
        role: Role,
    },
    /// Hours (0: the server's default, `u32::MAX`: forever).
    Retention {
        room: String,
        hours: u32,
    },
}

impl RoomAct {
    /// The request.
    pub fn message(&self) -> Message<'_> {
        match self {
            RoomAct::Create {
                room,
                private,
                read_only,
                topic,
            } => Message::Create {
                room,
                flags: create_flag::of(*private, *read_only),
                topic,
            },
            RoomAct::Invite { room, user } => Message::Invite { room, user },
            RoomAct::Kick { room, user, reason } => Message::Kick { room, user, reason },
            RoomAct::Ban { room, user, reason } => Message::Ban { room, user, reason },
            RoomAct::Unban { room, user } => Message::Unban { room, user },
            RoomAct::Topic { room, topic } => Message::SetTopic { room, topic },
            RoomAct::Mode { room, mode } => Message::SetMode { room, mode: *mode },
            RoomAct::Role { room, user, role } => Message::SetRole {
                room,
                user,
                role: *role,
            },
            RoomAct::Retention { room, hours } => Message::SetRetention {
                room,
                hours: *hours,
            },
        }
    }

    /// The room acted on.
    pub fn room(&self) -> &str {
        match self {
            RoomAct::Create { room, .. }
            | RoomAct::Invite { room, .. }
            | RoomAct::Kick { room, .. }
            | RoomAct::Ban { room, .. }
            | RoomAct::Unban { room, .. }
            | RoomAct::Topic { room, .. }
            | RoomAct::Mode { room, .. }
            | RoomAct::Role { room, .. }
            | RoomAct::Retention { room, .. } => room,
        }
    }

    /// The kind of event the server records for it.
    pub fn records(&self) -> EntryKind {
        match self {
            RoomAct::Create { .. } => EntryKind::Created,
            RoomAct::Invite { .. } => EntryKind::Invited,
            RoomAct::Kick { .. } => EntryKind::Kicked,
            RoomAct::Ban { .. } => EntryKind::Banned,
            RoomAct::Unban { .. } => EntryKind::Unbanned,
            RoomAct::Topic { .. } => EntryKind::TopicChanged,
            RoomAct::Mode { .. } => EntryKind::ModeChanged,
            RoomAct::Role { .. } => EntryKind::RoleChanged,
            RoomAct::Retention { .. } => EntryKind::RetentionChanged,
        }
    }
}

/// A change to one message, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAct {
    Edit { id: u64, text: String },
    Delete { id: u64 },
    React { id: u64, reaction: String },
}

impl MessageAct {
    pub fn message(&self) -> Message<'_> {
        match self {
            MessageAct::Edit { id, text } => Message::Edit { id: *id, text },
            MessageAct::Delete { id } => Message::Delete { id: *id },
            MessageAct::React { id, reaction } => Message::React { id: *id, reaction },
        }
    }

    /// Whether `event` is what this act caused, for `me`.
    fn caused(&self, event: &Event, me: &str) -> bool {
        match (self, event) {
            (MessageAct::Edit { id, .. }, Event::Edited { id: e, .. })
            | (MessageAct::Delete { id }, Event::Deleted { id: e, .. }) => id == e,
            (
                MessageAct::React { id, reaction },
                Event::Reacted {
                    id: e,
                    user,
                    reaction: r,
                    ..
                },
            ) => id == e && user == me && reaction == r,
            _ => false,
        }
    }
}

/// A role as users write it.
pub fn parse_role(word: &str) -> Result<Role, String> {
    match word.to_lowercase().as_str() {
        "owner" => Ok(Role::Owner),
        "moderator" | "mod" => Ok(Role::Moderator),
        "member" => Ok(Role::Member),
        other => Err(format!(
            "a role is owner, moderator or member, not {other:?}"
        )),
    }
}

/// A room mode as users write it.
pub fn parse_mode(word: &str) -> Result<RoomMode, String> {
    match word.to_lowercase().as_str() {
        "public" => Ok(RoomMode::Public),
        "private" => Ok(RoomMode::Private),
        "read-only" | "readonly" => Ok(RoomMode::ReadOnly),
        "open" => Ok(RoomMode::Open),
        other => Err(format!(
            "a mode is public, private, read-only or open, not {other:?}"
        )),
    }
}

/// A retention: hours (1 and up), `default` (the server's) or `forever`.
pub fn parse_retention(word: &str) -> Result<u32, String> {
    match word.to_lowercase().as_str() {
        "default" => Ok(0),
        "forever" => Ok(u32::MAX),
        other => other
            .strip_suffix('h')
            .unwrap_or(other)
            .parse::<u32>()
            .ok()
            .filter(|h| (1..u32::MAX).contains(h))
            .ok_or_else(|| {
                format!("a retention is a number of hours, default or forever, not {word:?}")
            }),
    }
}

/// A message id as text output shows it.
pub fn parse_id(word: &str) -> Result<u64, String> {
    word.trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            format!("a message ID is a number (the first one in [brackets]), not {word:?}")
        })
}

/// `room ...`: the act, then what it caused.
pub fn room_act(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    act: &RoomAct,
) -> Result<(), Failure> {
    let events = session.act(&act.message())?;
    let me = session.user.clone();
    for event in &events {
        if let Event::Message(m) = event {
            if m.target == Target::Room(act.room().to_owned())
                && m.kind == act.records()
                && m.from == me
            {
                out.line(&fmt.message(m))?;
            }
        }
    }
    session.quit();
    Ok(())
}

/// `edit`, `delete`, `react`: the act, then the change it caused.
pub fn message_act(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    act: &MessageAct,
) -> Result<(), Failure> {
    let events = session.act(&act.message())?;
    let me = session.user.clone();
    for event in events.iter().filter(|e| act.caused(e, &me)) {
        if let Some(line) = fmt.change(event) {
            out.line(&line)?;
        }
    }
    session.quit();
    Ok(())
}

/// The conversation message `id` is in, looked for in the user's rooms and the private
/// conversations the server listed at login (the protocol has no lookup by id).
pub fn find_conversation(session: &mut Session, id: u64) -> Result<String, Failure> {
    let mut convs: Vec<String> = session.rooms.keys().cloned().collect();
    convs.extend(
        session
            .unread
            .iter()
            .filter(|u| u.conv.starts_with('@'))
            .map(|u| u.conv.clone()),
    );
    for conv in &convs {
        let answer = session.request(
            &Message::Fetch {
                conv,
                before_id: id.saturating_add(1),
                after_id: 0,
                limit: 1,
            },
            |event| matches!(event, Event::History { room, .. } if room == conv),
        )?;
        if let Event::History { messages, .. } = answer {
            if messages.iter().any(|m| m.id == id) {
                return Ok(conv.clone());
            }
        }
    }
    Err(Failure::new(format!(
        "message {id} is in none of your rooms; name its conversation with -r ROOM or --to USER"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(parse_role("Moderator"), Ok(Role::Moderator));
        assert_eq!(parse_role("owner"), Ok(Role::Owner));
        assert!(parse_role("admin").is_err());
        assert_eq!(parse_mode("read-only"), Ok(RoomMode::ReadOnly));
        assert_eq!(parse_mode("open"), Ok(RoomMode::Open));
        assert!(parse_mode("secret").is_err());
        assert_eq!(parse_retention("72"), Ok(72));
        assert_eq!(parse_retention("24h"), Ok(24));
        assert_eq!(parse_retention("default"), Ok(0));
        assert_eq!(parse_retention("forever"), Ok(u32::MAX));
        for bad in ["0", "-1", "soon", "4294967295"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_id("1234"), Ok(1234));
        assert!(parse_id("0").is_err());
        assert!(parse_id("#12").is_err());
    }

    #[test]
    fn acts_make_their_requests() {
        let create = RoomAct::Create {
            room: "ops".into(),
            private: true,
            read_only: true,
            topic: "Deploys".into(),
        };
        assert_eq!(
            create.message(),
            Message::Create {
                room: "ops",
                flags: create_flag::PRIVATE | create_flag::READ_ONLY,
                topic: "Deploys"
            }
        );
        assert_eq!(create.records(), EntryKind::Created);
        let kick = RoomAct::Kick {
            room: "ops".into(),
            user: "bob".into(),
            reason: "spam".into(),
        };
        assert_eq!(kick.room(), "ops");
        assert_eq!(
            kick.message(),
            Message::Kick {
                room: "ops",
                user: "bob",
                reason: "spam"
            }
        );
        let react = MessageAct::React {
            id: 5,
            reaction: "👍".into(),
        };
        let mine = Event::Reacted {
            id: 5,
            from: "alice".into(),
            target: Target::Room("ops".into()),
            user: "me".into(),
            reaction: "👍".into(),
            added: true,
            count: 1,
        };
        assert!(react.caused(&mine, "me"));
        assert!(!react.caused(&mine, "someone else"));
        assert!(!MessageAct::Delete { id: 5 }.caused(&mine, "me"));
    }
}
