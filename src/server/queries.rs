//! Requests that only read: history pages, searches, room/member/user listings, who is online,
//! unread counts. They are queued during the turn and answered after its commit (so they see
//! the turn's own writes), each answer built within one frame.

use std::time::{Duration, Instant};

use log::warn;

use super::Server;
use super::access::may_read;
use crate::store::{ConvKey, SearchQuery, SearchScope, StoreError, StoredEntry};
use crate::wire::codec::{Record, len_str8};
use crate::wire::frame::MAX_PLAINTEXT;
use crate::wire::message::{
    Entry, HistoryEntry, Member, Message, Reaction, Role, RoomCount, RoomInfo, SearchEntry,
    UnreadEntry, UserInfo, code, entry_flag, kind, room_flag, user_flag,
};
use crate::wire::text::Conv;

/// A read request waiting for the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// v1 HISTORY_REQ: posts of a room.
    History {
        user: String,
        room: String,
        before_id: u64,
        limit: u16,
    },
    /// v1 SEARCH_REQ (room `None`: everything readable).
    Search {
        user: String,
        room: Option<String>,
        query: String,
        limit: u16,
    },
    /// v1 LIST_ROOMS.
    ListRooms {
        user: String,
    },
    /// v1 WHO (room `None`: everyone online).
    Who {
        room: Option<String>,
    },
    Fetch {
        user: String,
        conv: String,
        before_id: u64,
        after_id: u64,
        limit: u16,
    },
    Find {
        user: String,
        conv: Option<String>,
        query: String,
        before_id: u64,
        limit: u16,
    },
    Rooms {
        user: String,
        cursor: String,
        limit: u16,
    },
    Members {
        room: String,
        cursor: String,
        limit: u16,
    },
    Users {
        cursor: String,
        limit: u16,
    },
    /// `all`: every conversation, also those with nothing unread.
    Unread {
        user: String,
        cursor: String,
        all: bool,
    },
    /// One entry by id, in a page of its conversation.
    Entry {
        user: String,
        id: u64,
    },
}

/// The longest cursor a page hands out (`m:` or `o:` and a room name), for its header size.
const LONGEST_CURSOR: &str = "m:12345678901234567890123456789012";

/// At most this many conversations per UNREAD page (each needs a count from disk).
const UNREAD_PAGE: usize = 50;
/// At most this many private conversations are looked at per UNREAD page.
const UNREAD_SCAN: usize = 200;

impl Query {
    /// The request type this answers (for ERROR's ref_type).
    fn ref_type(&self) -> u8 {
        match self {
            Query::History { .. } => kind::HISTORY_REQ,
            Query::Search { .. } => kind::SEARCH_REQ,
            Query::ListRooms { .. } => kind::LIST_ROOMS,
            Query::Who { .. } => kind::WHO,
            Query::Fetch { .. } => kind::FETCH,
            Query::Find { .. } => kind::FIND,
            Query::Rooms { .. } => kind::ROOMS,
            Query::Members { .. } => kind::MEMBERS,
            Query::Users { .. } => kind::USERS,
            Query::Unread { .. } => kind::UNREAD_REQ,
            Query::Entry { .. } => kind::GET_ENTRY,
        }
    }
}

/// A page's byte budget: what fits in one frame after the answer's own header.
struct Budget {
    left: usize,
}

impl Budget {
    /// What is left of one frame after `empty`, the answer without its entries.
    fn for_answer(empty: &Message<'_>) -> Budget {
        Budget {
            left: MAX_PLAINTEXT.saturating_sub(empty.encoded_len()),
        }
    }

    fn take(&mut self, size: usize) -> bool {
        if size > self.left {
            return false;
        }
        self.left -= size;
        true
    }
}

/// The wire entry of a stored one.
pub fn wire_entry(e: &StoredEntry) -> Entry<'_> {
    Entry {
        id: e.id,
        ts: e.ts,
        room: e.room.as_deref().unwrap_or(""),
        from: &e.sender,
        to: e.to.as_deref().unwrap_or(""),
        kind: e.kind,
        flags: if e.edited { entry_flag::EDITED } else { 0 }
            | if e.deleted { entry_flag::DELETED } else { 0 },
        reply_to: e.reply_to,
        text: &e.text,
        reactions: e
            .reactions
            .iter()
            .map(|r| Reaction {
                reaction: &r.reaction,
                count: r.count,
                users: r.users.iter().map(String::as_str).collect(),
            })
            .collect(),
    }
}

fn entry_len(e: &StoredEntry) -> usize {
    wire_entry(e).encoded_len()
}

fn history_entry(e: &StoredEntry) -> HistoryEntry<'_> {
    HistoryEntry {
        id: e.id,
        ts: e.ts,
        from: &e.sender,
        text: &e.text,
    }
}

/// A v1 search hit: room messages only.
fn search_entry(e: &StoredEntry) -> Option<SearchEntry<'_>> {
    Some(SearchEntry {
        id: e.id,
        ts: e.ts,
        room: e.room.as_deref()?,
        from: &e.sender,
        text: &e.text,
    })
}

impl Server {
    /// Answers a query for connection `key` after the commit: the encoded reply, or an ERROR.
    pub(super) fn answer(&mut self, key: usize, query: &Query) -> Vec<u8> {
        let started = Instant::now();
        let result = match query {
            Query::History {
                room,
                before_id,
                limit,
                ..
            } => self.history_page(room, *before_id, *limit),
            Query::Search {
                user,
                room,
                query,
                limit,
            } => self.search_page(key, user, room.as_deref(), query, *limit),
            Query::ListRooms { user } => Ok(self.room_list(user)),
            Query::Who { room } => Ok(self.who_list(room.as_deref())),
            Query::Fetch {
                user,
                conv,
                before_id,
                after_id,
                limit,
            } => self.fetch_page(user, conv, *before_id, *after_id, *limit),
            Query::Find {
                user,
                conv,
                query,
                before_id,
                limit,
            } => self.find_page(key, user, conv.as_deref(), query, *before_id, *limit),
            Query::Rooms {
                user,
                cursor,
                limit,
            } => Ok(self.room_page(user, cursor, *limit)),
            Query::Members {
                room,
                cursor,
                limit,
            } => Ok(self.member_page(room, cursor, *limit)),
            Query::Users { cursor, limit } => Ok(self.user_page(cursor, *limit)),
            Query::Unread { user, cursor, all } => self.unread_page(user, cursor, *all),
            Query::Entry { user, id } => self.entry_page(user, *id),
        };
        self.stats.query_time(started.elapsed());
        result.unwrap_or_else(|e| {
            let (code, detail) = match e {
                StoreError::OverBudget => (
                    code::TOO_BROAD,
                    "search too broad: use fewer common words or name a conversation",
                ),
                other => {
                    warn!("query failed: {other}");
                    (
                        code::STORAGE_FAILED,
                        "the server could not read its database; try again",
                    )
                }
            };
            Message::Error {
                code,
                ref_type: query.ref_type(),
                detail,
            }
            .to_bytes()
        })
    }

    fn history_page(&self, room: &str, before_id: u64, limit: u16) -> Result<Vec<u8>, StoreError> {
        let mut budget = Budget::for_answer(&Message::History {
            room,
            more: true,
            entries: Vec::new(),
        });
        let (entries, more) =
            self.store
                .fetch(ConvKey::Room(room), before_id, 0, limit, true, &mut |e| {
                    budget.take(history_entry(e).encoded_len())
                })?;
        let entries = entries.iter().map(history_entry).collect();
        Ok(Message::History {
            room,
            more,
            entries,
        }
        .to_bytes())
    }

    /// Where "everything" is searched for `user`: every room but the private ones they are not
    /// in and those they are banned from, plus their own private conversations.
    fn excluded_rooms(&self, user: &str) -> String {
        let mut excluded = Vec::new();
        for (name, _) in self.directory.rooms_after("") {
            if !may_read(&self.directory, name, user) {
                excluded.push(name.as_str());
            }
        }
        // Room names are [a-z0-9_-]: no JSON escaping is needed.
        let mut json = String::from("[");
        for (i, name) in excluded.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push('"');
            json.push_str(name);
            json.push('"');
        }
        json.push(']');
        json
    }

    /// Runs a search within the budget, refunding the unused part of its up-front charge.
    fn run_search(
        &mut self,
        key: usize,
        scope: SearchScope<'_>,
        query: &str,
        before_id: u64,
        limit: u16,
        fits: &mut dyn FnMut(&StoredEntry) -> bool,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let Some(query) = SearchQuery::parse(query) else {
            return Ok((Vec::new(), false));
        };
        let budget = self.config.search_budget;
        let started = Instant::now();
        let result = self
            .store
            .search(scope, &query, before_id, limit, budget, fits);
        let used = started.elapsed();
        self.stats.search_time(used);
        let unused = budget.saturating_sub(used);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.units.refund(units_of(unused));
        }
        result
    }

    fn search_page(
        &mut self,
        key: usize,
        user: &str,
        room: Option<&str>,
        query: &str,
        limit: u16,
    ) -> Result<Vec<u8>, StoreError> {
        let excluded;
        let scope = match room {
            Some(room) => SearchScope::Conv(ConvKey::Room(room)),
            None => {
                excluded = self.excluded_rooms(user);
                SearchScope::Everything {
                    user,
                    excluded: &excluded,
                }
            }
        };
        let mut budget = Budget::for_answer(&Message::SearchResult {
            more: true,
            entries: Vec::new(),
        });
        let (found, more) = self.run_search(key, scope, query, 0, limit, &mut |e| {
            // v1 results are room messages only.
            search_entry(e).is_some_and(|entry| budget.take(entry.encoded_len()))
        })?;
        let entries = found.iter().filter_map(search_entry).collect();
        Ok(Message::SearchResult { more, entries }.to_bytes())
    }

    fn fetch_page(
        &self,
        user: &str,
        conv: &str,
        before_id: u64,
        after_id: u64,
        limit: u16,
    ) -> Result<Vec<u8>, StoreError> {
        let key = match Conv::parse(conv) {
            Some(Conv::Room(room)) => ConvKey::Room(room),
            Some(Conv::Private(peer)) => ConvKey::Pair(user, peer),
            // The guard let only valid names through.
            None => ConvKey::Room(""),
        };
        let mut budget = Budget::for_answer(&Message::Entries {
            conv,
            more: true,
            entries: Vec::new(),
        });
        let (entries, more) =
            self.store
                .fetch(key, before_id, after_id, limit, false, &mut |e| {
                    budget.take(entry_len(e))
                })?;
        Ok(Message::Entries {
            conv,
            more,
            entries: entries.iter().map(wire_entry).collect(),
        }
        .to_bytes())
    }

    fn find_page(
        &mut self,
        key: usize,
        user: &str,
        conv: Option<&str>,
        query: &str,
        before_id: u64,
        limit: u16,
    ) -> Result<Vec<u8>, StoreError> {
        let excluded;
        let scope = match conv.and_then(Conv::parse) {
            Some(Conv::Room(room)) => SearchScope::Conv(ConvKey::Room(room)),
            Some(Conv::Private(peer)) => SearchScope::Conv(ConvKey::Pair(user, peer)),
            None => {
                excluded = self.excluded_rooms(user);
                SearchScope::Everything {
                    user,
                    excluded: &excluded,
                }
            }
        };
        let mut budget = Budget::for_answer(&Message::Found {
            more: true,
            entries: Vec::new(),
        });
        let (found, more) = self.run_search(key, scope, query, before_id, limit, &mut |e| {
            budget.take(entry_len(e))
        })?;
        Ok(Message::Found {
            more,
            entries: found.iter().map(wire_entry).collect(),
        }
        .to_bytes())
    }

    /// A room as `user` sees it.
    pub(super) fn room_info<'a>(&'a self, room: &'a str, user: &str) -> Option<RoomInfo<'a>> {
        let state = self.directory.room(room)?;
        let role = state.members.get(user).copied();
        let flags = if state.settings.private {
            room_flag::PRIVATE
        } else {
            0
        } | if state.settings.read_only {
            room_flag::READ_ONLY
        } else {
            0
        } | if role.is_some() { room_flag::MEMBER } else { 0 };
        Some(RoomInfo {
            room,
            flags,
            role: role.unwrap_or(Role::Member),
            members: u32::try_from(state.members.len()).unwrap_or(u32::MAX),
            online: u32::try_from(self.online_in_room(room)).unwrap_or(u32::MAX),
            retention_h: state.settings.retention_h,
            topic: &state.settings.topic,
        })
    }

    /// The encoded ROOM_INFO of `room` for `user`.
    pub(super) fn encode_room_info(&self, room: &str, user: &str, out: &mut Vec<u8>) {
        if let Some(info) = self.room_info(room, user) {
            Message::RoomInfoMsg { info }.encode(out);
        }
    }

    /// The rooms `user` can see, theirs first: (cursor section, name) from just after `cursor`.
    fn visible_rooms<'a>(
        &'a self,
        user: &'a str,
        cursor: &str,
    ) -> impl Iterator<Item = (bool, &'a String)> + 'a {
        let (section, after) = match cursor.split_once(':') {
            Some(("o", name)) => (false, name.to_owned()),
            Some(("m", name)) => (true, name.to_owned()),
            _ => (true, String::new()),
        };
        let mine_after = if section {
            after.clone()
        } else {
            "\u{10FFFF}".to_owned()
        };
        let others_after = if section { String::new() } else { after };
        let mine = self
            .directory
            .rooms_of(user)
            .filter(move |r| r.as_str() > mine_after.as_str())
            .map(|r| (true, r));
        let others = self
            .directory
            .rooms_after("")
            .filter(move |(name, state)| {
                name.as_str() > others_after.as_str()
                    && !state.members.contains_key(user)
                    && self.directory.visible(name, user)
            })
            .map(|(name, _)| (false, name));
        mine.chain(others)
    }

    fn room_page(&self, user: &str, cursor: &str, limit: u16) -> Vec<u8> {
        let mut budget = Budget::for_answer(&Message::RoomPage {
            next: LONGEST_CURSOR,
            rooms: Vec::new(),
        });
        let mut rooms = Vec::new();
        let mut next = String::new();
        for (mine, name) in self.visible_rooms(user, cursor) {
            let Some(info) = self.room_info(name, user) else {
                continue;
            };
            if rooms.len() == usize::from(limit) || !budget.take(info.encoded_len()) {
                break;
            }
            next = format!("{}:{name}", if mine { "m" } else { "o" });
            rooms.push(info);
        }
        // The cursor is only needed when something is left.
        let exhausted = self.visible_rooms(user, &next).next().is_none();
        if exhausted {
            next.clear();
        }
        Message::RoomPage { next: &next, rooms }.to_bytes()
    }

    /// v1's room list: what ROOMS would list first, with online counts, in one frame.
    fn room_list(&self, user: &str) -> Vec<u8> {
        let mut budget = Budget::for_answer(&Message::RoomList { rooms: Vec::new() });
        let mut rooms = Vec::new();
        for (_, name) in self.visible_rooms(user, "") {
            let members = self.online.room(name).map_or(0, |r| r.user_count());
            let entry = RoomCount {
                room: name,
                members: u32::try_from(members).unwrap_or(u32::MAX),
            };
            if !budget.take(entry.encoded_len()) {
                break;
            }
            rooms.push(entry);
        }
        Message::RoomList { rooms }.to_bytes()
    }

    fn who_list(&self, room: Option<&str>) -> Vec<u8> {
        let name = room.unwrap_or("");
        let mut budget = Budget::for_answer(&Message::WhoList {
            room: name,
            users: Vec::new(),
        });
        let users: Vec<&str> = match room {
            None => self
                .online_users()
                .into_iter()
                .take_while(|u| budget.take(len_str8(u)))
                .collect(),
            Some(room) => match self.directory.room(room) {
                Some(state) => state
                    .members
                    .keys()
                    .map(String::as_str)
                    .filter(|u| self.is_online(u))
                    .take_while(|u| budget.take(len_str8(u)))
                    .collect(),
                None => Vec::new(),
            },
        };
        Message::WhoList { room: name, users }.to_bytes()
    }

    fn member_page(&self, room: &str, cursor: &str, limit: u16) -> Vec<u8> {
        let mut budget = Budget::for_answer(&Message::MemberPage {
            room,
            next: LONGEST_CURSOR,
            members: Vec::new(),
        });
        let mut members = Vec::new();
        let mut next = "";
        if let Some(state) = self.directory.room(room) {
            use std::ops::Bound;
            let mut iter = state
                .members
                .range::<str, _>((Bound::Excluded(cursor), Bound::Unbounded))
                .peekable();
            while let Some((user, role)) = iter.next() {
                let member = Member {
                    user,
                    role: *role,
                    online: self.is_online(user),
                };
                if members.len() == usize::from(limit) || !budget.take(member.encoded_len()) {
                    break;
                }
                members.push(member);
                next = if iter.peek().is_some() { user } else { "" };
            }
        }
        Message::MemberPage {
            room,
            next,
            members,
        }
        .to_bytes()
    }

    fn user_page(&self, cursor: &str, limit: u16) -> Vec<u8> {
        let mut budget = Budget::for_answer(&Message::UserPage {
            next: LONGEST_CURSOR,
            users: Vec::new(),
        });
        let mut users = Vec::new();
        let mut next = "";
        let mut iter = self.directory.accounts_after(cursor).peekable();
        while let Some((name, account)) = iter.next() {
            let flags = if self.is_online(name) {
                user_flag::ONLINE
            } else {
                0
            } | if account.admin { user_flag::ADMIN } else { 0 }
                | if account.disabled {
                    user_flag::DISABLED
                } else {
                    0
                };
            let entry = UserInfo { user: name, flags };
            if users.len() == usize::from(limit) || !budget.take(entry.encoded_len()) {
                break;
            }
            users.push(entry);
            next = if iter.peek().is_some() { name } else { "" };
        }
        Message::UserPage { next, users }.to_bytes()
    }

    /// One page of what is unread for `user`: their rooms by name, then their private
    /// conversations with something unread.
    /// GET_ENTRY: the entry as it stands, in an ENTRIES page of its conversation as `user` names
    /// it (the guard checked it is readable).
    fn entry_page(&self, user: &str, id: u64) -> Result<Vec<u8>, StoreError> {
        let Some(mut entry) = self.store.entry(id)? else {
            return Ok(Message::Error {
                code: code::NO_SUCH_MESSAGE,
                ref_type: kind::GET_ENTRY,
                detail: "no such message",
            }
            .to_bytes());
        };
        entry.reactions = self.store.reactions(id)?;
        let conv = match (&entry.room, entry.to.as_deref()) {
            (Some(room), _) => room.clone(),
            (None, Some(to)) if to != user => format!("@{to}"),
            (None, _) => format!("@{}", entry.sender),
        };
        Ok(Message::Entries {
            conv: &conv,
            more: false,
            entries: vec![wire_entry(&entry)],
        }
        .to_bytes())
    }

    fn unread_page(&self, user: &str, cursor: &str, all: bool) -> Result<Vec<u8>, StoreError> {
        let markers = self.store.markers(user)?;
        let marker = |conv: &str| {
            markers
                .binary_search_by(|(c, _)| c.as_str().cmp(conv))
                .map_or(0, |at| markers[at].1)
        };
        let (in_rooms, after) = match cursor.split_once(':') {
            Some(("p", peer)) => (false, peer),
            Some(("r", room)) => (true, room),
            _ => (true, ""),
        };
        let mut entries: Vec<(String, u64, u64, u32, u32)> = Vec::new();
        let mut next = String::new();
        if in_rooms {
            for room in self.directory.rooms_of(user).filter(|r| r.as_str() > after) {
                if entries.len() == UNREAD_PAGE {
                    next = format!("r:{}", entries.last().map_or("", |e| e.0.as_str()));
                    break;
                }
                let last_read = marker(room);
                let newest = self.directory.room(room).map_or(0, |r| r.newest_id);
                let (unread, mentions) = if newest > last_read {
                    self.store.unread(user, ConvKey::Room(room), last_read)?
                } else {
                    (0, 0)
                };
                entries.push((room.clone(), last_read, newest, unread, mentions));
            }
        }
        if next.is_empty() {
            let private_after = if in_rooms { "" } else { after };
            let mut scanned = 0;
            let mut last_peer = private_after;
            for (conv, last_read) in markers.iter().filter(|(c, _)| c.starts_with('@')) {
                let peer = &conv[1..];
                if peer <= private_after {
                    continue;
                }
                if entries.len() == UNREAD_PAGE || scanned == UNREAD_SCAN {
                    next = format!("p:{last_peer}");
                    break;
                }
                scanned += 1;
                last_peer = peer;
                let newest = self.store.newest_private(user, peer)?;
                let (unread, mentions) = if newest > *last_read {
                    self.store
                        .unread(user, ConvKey::Pair(user, peer), *last_read)?
                } else {
                    (0, 0)
                };
                if unread > 0 || all {
                    entries.push((conv.clone(), *last_read, newest, unread, mentions));
                }
            }
        }
        Ok(Message::Unread {
            next: &next,
            entries: entries
                .iter()
                .map(|(conv, last_read, newest, unread, mentions)| UnreadEntry {
                    conv,
                    last_read: *last_read,
                    newest: *newest,
                    unread: *unread,
                    mentions: *mentions,
                })
                .collect(),
        }
        .to_bytes())
    }
}

/// Token-bucket units for a stretch of loop time (one unit is 10 µs).
pub fn units_of(time: Duration) -> f64 {
    time.as_secs_f64() * 100_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::EntryKind;

    #[test]
    fn units_are_ten_microseconds() {
        assert_eq!(units_of(Duration::from_millis(20)), 2000.0);
        assert_eq!(units_of(Duration::ZERO), 0.0);
    }

    #[test]
    fn wire_entries_carry_flags_and_reactions() {
        let stored = StoredEntry {
            id: 5,
            ts: 6,
            room: None,
            sender: "alice".into(),
            to: Some("bob".into()),
            kind: EntryKind::Text,
            edited: true,
            deleted: false,
            reply_to: 2,
            text: "hi".into(),
            reactions: vec![crate::store::ReactionSummary {
                reaction: "👍".into(),
                count: 7,
                users: vec!["carol".into()],
            }],
        };
        let entry = wire_entry(&stored);
        assert_eq!(entry.room, "");
        assert_eq!(entry.to, "bob");
        assert_eq!(entry.flags, entry_flag::EDITED);
        assert_eq!(entry.reactions[0].count, 7);
        assert_eq!(entry_len(&stored), entry.encoded_len());
    }
}
