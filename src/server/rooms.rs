//! `Rooms`: which connections are in which room right now, and which users are online. The one
//! place that knows fan-out targets; stored memberships live in the store.

use std::collections::{BTreeMap, HashMap};

/// One room's online members.
#[derive(Default)]
pub struct Room {
    /// Every connection in the room (a user may have several).
    conns: Vec<usize>,
    /// Online users in the room and how many of their connections are in it.
    users: BTreeMap<String, u32>,
}

impl Room {
    pub fn conns(&self) -> &[usize] {
        &self.conns
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

/// Online membership of all rooms, and the online users with their connections.
#[derive(Default)]
pub struct Rooms {
    rooms: HashMap<String, Room>,
    online: BTreeMap<String, Vec<usize>>,
}

impl Rooms {
    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.get(name)
    }

    /// The connections of `user`, if online.
    pub fn conns_of(&self, user: &str) -> &[usize] {
        self.online.get(user).map_or(&[], Vec::as_slice)
    }

    pub fn online_users(&self) -> impl Iterator<Item = &str> {
        self.online.keys().map(String::as_str)
    }

    pub fn is_online(&self, user: &str) -> bool {
        self.online.contains_key(user)
    }

    /// Adds a logged-in connection. Returns true if the user was offline until now.
    pub fn connect(&mut self, user: &str, conn: usize) -> bool {
        let conns = self.online.entry(user.to_owned()).or_default();
        conns.push(conn);
        conns.len() == 1
    }

    /// Removes a connection from the online list and from `rooms`. Returns true if that was the
    /// user's last connection.
    pub fn disconnect(&mut self, user: &str, conn: usize, rooms: &[String]) -> bool {
        for room in rooms {
            self.remove_conn(room, user, conn);
        }
        let Some(conns) = self.online.get_mut(user) else {
            return false;
        };
        conns.retain(|&c| c != conn);
        if conns.is_empty() {
            self.online.remove(user);
            true
        } else {
            false
        }
    }

    /// Puts one connection of `user` into `room`.
    pub fn add_conn(&mut self, room: &str, user: &str, conn: usize) {
        let entry = self.rooms.entry(room.to_owned()).or_default();
        if entry.conns.contains(&conn) {
            return;
        }
        entry.conns.push(conn);
        *entry.users.entry(user.to_owned()).or_default() += 1;
    }

    /// Takes one connection of `user` out of `room`.
    pub fn remove_conn(&mut self, room: &str, user: &str, conn: usize) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(at) = entry.conns.iter().position(|&c| c == conn) else {
            return;
        };
        entry.conns.swap_remove(at);
        if let Some(count) = entry.users.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                entry.users.remove(user);
            }
        }
        if entry.conns.is_empty() {
            self.rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_with_several_connections() {
        let mut rooms = Rooms::default();
        assert!(rooms.connect("alice", 1));
        assert!(!rooms.connect("alice", 2));
        rooms.add_conn("general", "alice", 1);
        rooms.add_conn("general", "alice", 2);
        rooms.add_conn("general", "alice", 2);
        assert!(rooms.connect("bob", 3));
        rooms.add_conn("general", "bob", 3);
        let general = rooms.room("general").expect("room");
        assert_eq!(general.conns().len(), 3);
        assert_eq!(general.user_count(), 2);
        assert!(!rooms.disconnect("alice", 1, &["general".to_owned()]));
        assert_eq!(rooms.room("general").expect("room").user_count(), 2);
        assert!(rooms.disconnect("alice", 2, &["general".to_owned()]));
        assert_eq!(
            rooms
                .room("general")
                .expect("room")
                .users()
                .collect::<Vec<_>>(),
            ["bob"]
        );
        rooms.remove_conn("general", "bob", 3);
        assert!(rooms.room("general").is_none());
        assert_eq!(rooms.online_users().collect::<Vec<_>>(), ["bob"]);
    }
}
