//! Authorization, in one place: what each request names (`scope`, an exhaustive match over
//! every message type, so a new type must say what it touches) and whether the sender may do
//! it there (`authorize`, asking the directory). The dispatcher calls `authorize` for every
//! request of a logged-in user before any handler runs; no handler checks access itself.
//! Refusals for private rooms are the same as for rooms that do not exist.

use std::time::Duration;

use super::directory::{Directory, GENERAL};
use crate::config::RoomCreation;
use crate::store::{Store, StoredEntry};
use crate::wire::message::{Message, code};
use crate::wire::text::{Conv, is_valid_room};

/// What the sender must be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// See the room's history, members, search it.
    Read,
    /// See one entry as it stands, tombstones and events included.
    See,
    Join,
    Leave,
    /// Post in it (member; owner/moderator in a read-only room).
    Post,
    /// Be a member (read markers).
    Member,
    /// Owner, moderator or admin.
    Moderate,
    /// Moderate, and outrank the user acted on (kick, ban).
    Outrank,
    /// Owner or admin.
    Own,
    /// The entry's author.
    Author,
    /// The entry's author, or a moderator of its room.
    AuthorOrModerator,
}

/// What a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'m> {
    /// Nothing that needs a permission.
    Open,
    Room(&'m str, Need),
    /// A room and one of its (would-be) members.
    RoomUser(&'m str, &'m str, Need),
    /// A conversation: a room, or `@user`.
    Conv(&'m str, Need),
    /// A user to write to privately.
    Peer(&'m str),
    /// One entry by id.
    Entry(u64, Need),
    /// Making a room.
    Create,
    /// A user name that must be the sender's own.
    Myself(&'m str),
}

/// What the request names, by type.
pub fn scope<'m>(message: &Message<'m>) -> Scope<'m> {
    use Need::*;
    match message {
        Message::Join { room } => Scope::Room(room, Join),
        Message::Leave { room } => Scope::Room(room, Leave),
        Message::Say { room, .. } => Scope::Room(room, Post),
        Message::PrivMsg { to, .. } => Scope::Peer(to),
        Message::Who { room } | Message::SearchReq { room, .. } if room.is_empty() => Scope::Open,
        Message::Who { room } | Message::HistoryReq { room, .. } | Message::SearchReq { room, .. } => {
            Scope::Room(room, Read)
        }
        Message::Members { room, .. } => Scope::Room(room, Read),
        Message::Create { .. } => Scope::Create,
        Message::Invite { room, user } | Message::Unban { room, user } => {
            Scope::RoomUser(room, user, Moderate)
        }
        Message::Kick { room, user, .. } | Message::Ban { room, user, .. } => {
            Scope::RoomUser(room, user, Outrank)
        }
        Message::SetTopic { room, .. } | Message::SetMode { room, .. } => Scope::Room(room, Moderate),
        Message::SetRole { room, user, .. } => Scope::RoomUser(room, user, Own),
        Message::SetRetention { room, .. } => Scope::Room(room, Own),
        Message::Find { conv: "", .. } => Scope::Open,
        Message::Fetch { conv, .. } | Message::Find { conv, .. } => Scope::Conv(conv, Read),
        Message::Post { conv, .. } => Scope::Conv(conv, Post),
        Message::MarkRead { conv, .. } => Scope::Conv(conv, Member),
        Message::Edit { id, .. } => Scope::Entry(*id, Author),
        Message::Delete { id } => Scope::Entry(*id, AuthorOrModerator),
        Message::React { id, .. } => Scope::Entry(*id, Read),
        Message::GetEntry { id } => Scope::Entry(*id, See),
        Message::PasswdStart { user, .. } => Scope::Myself(user),
        Message::ListRooms
        | Message::Rooms { .. }
        | Message::Users { .. }
        | Message::UnreadReq { .. }
        | Message::PasswdSet { .. }
        | Message::Register { .. }
        | Message::AuthStart { .. }
        | Message::AuthProof { .. }
        | Message::Ping { .. }
        | Message::Pong { .. }
        | Message::Quit { .. }
        | Message::Rekey
        // Server-to-client types never get here (the dispatcher refuses them first).
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
        | Message::Unknown { .. } => Scope::Open,
    }
}

/// A refused request: the ERROR code and detail to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub detail: &'static str,
}

fn refuse<T>(code: u16, detail: &'static str) -> Result<T, Refusal> {
    Err(Refusal { code, detail })
}

/// What the guard looked up on the way, for the handler.
#[derive(Debug, Default)]
pub struct Grant {
    /// The entry a request by id names.
    pub entry: Option<StoredEntry>,
}

/// Server settings the guard applies.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub room_creation: RoomCreation,
    /// How long after sending an author may edit or delete (zero: no limit).
    pub edit_window: Duration,
}

/// Everything `authorize` consults.
pub struct Context<'a> {
    pub dir: &'a Directory,
    pub store: &'a Store,
    /// The logged-in sender.
    pub user: &'a str,
    /// Entries deleted earlier in this turn (not committed yet).
    pub deleted: &'a [u64],
    pub policy: Policy,
    pub now_ms: u64,
}

/// Whether the sender may do what `message` asks; on success, what was looked up.
pub fn authorize(ctx: &Context<'_>, message: &Message<'_>) -> Result<Grant, Refusal> {
    match scope(message) {
        Scope::Open => Ok(Grant::default()),
        Scope::Room(room, need) => room_access(ctx, room, need).map(|()| Grant::default()),
        Scope::RoomUser(room, target, need) => {
            room_access(ctx, room, need)?;
            if ctx.dir.account(target).is_none() {
                return refuse(code::NO_SUCH_USER, "no such user");
            }
            if need == Need::Outrank {
                if room == GENERAL {
                    return refuse(code::NOT_ALLOWED, "nobody is removed from #general");
                }
                if ctx.dir.rank(room, ctx.user) <= ctx.dir.rank(room, target) {
                    return refuse(
                        code::NOT_ALLOWED,
                        "you can only act on members of a lower rank",
                    );
                }
            }
            Ok(Grant::default())
        }
        Scope::Conv(conv, need) => match Conv::parse(conv) {
            Some(Conv::Room(room)) => room_access(ctx, room, need).map(|()| Grant::default()),
            Some(Conv::Private(peer)) => peer_access(ctx, peer).map(|()| Grant::default()),
            None => refuse(code::BAD_ROOM, "not a room or @user"),
        },
        Scope::Peer(peer) => peer_access(ctx, peer).map(|()| Grant::default()),
        Scope::Entry(id, need) => {
            entry_access(ctx, id, need).map(|entry| Grant { entry: Some(entry) })
        }
        Scope::Create => match ctx.policy.room_creation {
            RoomCreation::Admins if !ctx.dir.is_admin(ctx.user) => {
                refuse(code::NOT_ALLOWED, "only admins create rooms on this server")
            }
            RoomCreation::Admins | RoomCreation::Everyone => Ok(Grant::default()),
        },
        Scope::Myself(user) if user == ctx.user => Ok(Grant::default()),
        Scope::Myself(_) => refuse(code::NOT_ALLOWED, "only your own password"),
    }
}

/// Whether the sender may read `room` (the rule the room list and search use as well).
pub fn may_read(dir: &Directory, room: &str, user: &str) -> bool {
    dir.visible(room, user) && (!dir.is_banned(room, user) || dir.is_admin(user))
}

fn room_access(ctx: &Context<'_>, room: &str, need: Need) -> Result<(), Refusal> {
    let (dir, user) = (ctx.dir, ctx.user);
    if !is_valid_room(room) {
        return refuse(code::BAD_ROOM, "room names are 1-32 of a-z, 0-9, _ and -");
    }
    let admin = dir.is_admin(user);
    let Some(state) = dir.room(room).filter(|r| r.visible_to(user, admin)) else {
        return refuse(code::NO_SUCH_ROOM, "no such room");
    };
    let member = state.members.contains_key(user);
    let rank = state.rank_of(user, admin);
    let banned = state.bans.contains(user) && !admin;
    match need {
        Need::Read | Need::See | Need::Join if banned => {
            refuse(code::BANNED, "you are banned from that room")
        }
        Need::Read | Need::See | Need::Join => Ok(()),
        Need::Leave if room == GENERAL => refuse(code::NOT_ALLOWED, "everyone stays in #general"),
        Need::Leave | Need::Member if !member => {
            refuse(code::NOT_IN_ROOM, "you are not in that room")
        }
        Need::Leave | Need::Member => Ok(()),
        Need::Post if !member => refuse(code::NOT_IN_ROOM, "join the room first"),
        Need::Post if state.settings.read_only && rank == 0 => {
            refuse(code::READ_ONLY, "that room is read-only")
        }
        Need::Post => Ok(()),
        Need::Moderate | Need::Outrank if rank == 0 => {
            refuse(code::NOT_ALLOWED, "only owners and moderators may do that")
        }
        Need::Moderate | Need::Outrank => Ok(()),
        Need::Own if rank < 2 => refuse(code::NOT_ALLOWED, "only owners may do that"),
        Need::Own => Ok(()),
        // Entry needs are checked by entry_access; a room-level check of them only reads.
        Need::Author | Need::AuthorOrModerator => Ok(()),
    }
}

fn peer_access(ctx: &Context<'_>, peer: &str) -> Result<(), Refusal> {
    match ctx.dir.account(peer) {
        Some(_) => Ok(()),
        None => refuse(code::NO_SUCH_USER, "no such user"),
    }
}

fn entry_access(ctx: &Context<'_>, id: u64, need: Need) -> Result<StoredEntry, Refusal> {
    let missing = || refuse(code::NO_SUCH_MESSAGE, "no such message");
    if ctx.deleted.contains(&id) {
        return missing();
    }
    let entry = match ctx.store.entry(id) {
        Ok(Some(entry)) => entry,
        Ok(None) => return missing(),
        Err(e) => {
            log::warn!("cannot read entry {id}: {e}");
            return refuse(
                code::STORAGE_FAILED,
                "the server could not read that message",
            );
        }
    };
    let readable = match &entry.room {
        Some(room) => may_read(ctx.dir, room, ctx.user),
        None => entry.sender == ctx.user || entry.to.as_deref() == Some(ctx.user),
    };
    if !readable || (need != Need::See && (entry.deleted || !entry.kind.is_post())) {
        return missing();
    }
    let author = entry.sender == ctx.user;
    let moderator = entry
        .room
        .as_deref()
        .is_some_and(|room| ctx.dir.rank(room, ctx.user) > 0);
    let within_window = ctx.policy.edit_window.is_zero()
        || ctx.now_ms.saturating_sub(entry.ts) <= ctx.policy.edit_window.as_millis() as u64;
    match need {
        Need::Author if !author => refuse(code::NOT_ALLOWED, "only its author may edit a message"),
        Need::Author if !within_window => refuse(code::TOO_LATE, "too late to edit that message"),
        Need::AuthorOrModerator if moderator => Ok(entry),
        Need::AuthorOrModerator if !author => refuse(
            code::NOT_ALLOWED,
            "only its author or a moderator may delete a message",
        ),
        Need::AuthorOrModerator if !within_window => {
            refuse(code::TOO_LATE, "too late to delete that message")
        }
        Need::Author
        | Need::AuthorOrModerator
        | Need::Read
        | Need::See
        | Need::Join
        | Need::Leave
        | Need::Post
        | Need::Member
        | Need::Moderate
        | Need::Outrank
        | Need::Own => Ok(entry),
    }
}

#[cfg(test)]
mod tests;
