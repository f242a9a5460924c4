//! `Online`: which connections receive which room right now, and which users are online. The
//! one place that knows fan-out targets (the directory knows memberships; this knows sockets).
//! Connections are kept apart by protocol version, since v1 and v2 sessions get different
//! encodings of the same news.

use std::collections::{BTreeMap, HashMap};

use crate::wire::message::VERSION_1;

/// The connections of one room, by protocol version, and who they belong to.
#[derive(Default)]
pub struct RoomConns {
    v1: Vec<usize>,
    v2: Vec<usize>,
    /// Online users in the room and how many of their connections are in it.
    users: BTreeMap<String, u32>,
}

impl RoomConns {
    /// The v1 and the v2 connections.
    pub fn by_version(&self) -> (&[usize], &[usize]) {
        (&self.v1, &self.v2)
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    #[cfg(test)]
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

/// A logged-in connection: its key and protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Online {
    pub conn: usize,
    pub version: u16,
}

/// Online membership of all rooms, and the online users with their connections.
#[derive(Default)]
pub struct OnlineIndex {
    rooms: HashMap<String, RoomConns>,
    users: BTreeMap<String, Vec<Online>>,
}

impl OnlineIndex {
    pub fn room(&self, name: &str) -> Option<&RoomConns> {
        self.rooms.get(name)
    }

    /// The connections of `user`, if online.
    pub fn conns_of(&self, user: &str) -> &[Online] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// Online users by name, from just after `after`.
    pub fn users_after<'a>(&'a self, after: &str) -> impl Iterator<Item = &'a str> + 'a {
        use std::ops::Bound;
        self.users
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
            .map(|(name, _)| name.as_str())
    }

    pub fn is_online(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub fn online_count(&self) -> usize {
        self.users.len()
    }

    /// Adds a logged-in connection. Returns true if the user was offline until now.
    pub fn connect(&mut self, user: &str, conn: usize, version: u16) -> bool {
        let conns = self.users.entry(user.to_owned()).or_default();
        conns.push(Online { conn, version });
        conns.len() == 1
    }

    /// Removes a connection from the online list and from `rooms`. Returns true if that was the
    /// user's last connection.
    pub fn disconnect(&mut self, user: &str, conn: usize, rooms: &[String]) -> bool {
        for room in rooms {
            self.remove_conn(room, user, conn);
        }
        let Some(conns) = self.users.get_mut(user) else {
            return false;
        };
        conns.retain(|c| c.conn != conn);
        if conns.is_empty() {
            self.users.remove(user);
            true
        } else {
            false
        }
    }

    /// Puts one connection of `user` into `room`.
    pub fn add_conn(&mut self, room: &str, user: &str, online: Online) {
        let entry = self.rooms.entry(room.to_owned()).or_default();
        let list = if online.version == VERSION_1 {
            &mut entry.v1
        } else {
            &mut entry.v2
        };
        if list.contains(&online.conn) {
            return;
        }
        list.push(online.conn);
        *entry.users.entry(user.to_owned()).or_default() += 1;
    }

    /// Takes one connection of `user` out of `room`.
    pub fn remove_conn(&mut self, room: &str, user: &str, conn: usize) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let removed = [&mut entry.v1, &mut entry.v2].into_iter().any(|list| {
            match list.iter().position(|&c| c == conn) {
                Some(at) => {
                    list.swap_remove(at);
                    true
                }
                None => false,
            }
        });
        if !removed {
            return;
        }
        if let Some(count) = entry.users.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                entry.users.remove(user);
            }
        }
        if entry.v1.is_empty() && entry.v2.is_empty() {
            self.rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::VERSION_2;

    fn v(conn: usize, version: u16) -> Online {
        Online { conn, version }
    }

    #[test]
    fn users_with_several_connections_of_both_versions() {
        let mut index = OnlineIndex::default();
        assert!(index.connect("alice", 1, VERSION_2));
        assert!(!index.connect("alice", 2, VERSION_1));
        index.add_conn("general", "alice", v(1, VERSION_2));
        index.add_conn("general", "alice", v(2, VERSION_1));
        index.add_conn("general", "alice", v(2, VERSION_1));
        assert!(index.connect("bob", 3, VERSION_2));
        index.add_conn("general", "bob", v(3, VERSION_2));
        let general = index.room("general").expect("room");
        assert_eq!(general.by_version(), (&[2][..], &[1, 3][..]));
        assert_eq!(general.user_count(), 2);
        assert!(!index.disconnect("alice", 1, &["general".to_owned()]));
        assert_eq!(index.room("general").expect("room").user_count(), 2);
        assert!(index.disconnect("alice", 2, &["general".to_owned()]));
        assert_eq!(
            index
                .room("general")
                .expect("room")
                .users()
                .collect::<Vec<_>>(),
            ["bob"]
        );
        index.remove_conn("general", "bob", 3);
        assert!(index.room("general").is_none());
        assert_eq!(index.users_after("").collect::<Vec<_>>(), ["bob"]);
        assert_eq!(index.users_after("bob").count(), 0);
    }
}
