//! The directory: every account (verifiers, admin, disabled) and every room (visibility,
//! read-only, topic, retention, members with their roles, bans), loaded from the store at start
//! and kept in step with the durable writes of each turn. It answers who may see, read, join,
//! post in and moderate a room; `access.rs` asks it on behalf of every request. Every change is
//! a `Change` whose application returns its inverse, so a turn whose commit fails is undone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::store::{Account, DirectoryData, UserRecord};
use crate::wire::message::Role;

/// The room everybody is in.
pub const GENERAL: &str = "general";

/// An account as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub record: UserRecord,
    pub admin: bool,
    pub disabled: bool,
}

/// A room's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomSettings {
    pub private: bool,
    pub read_only: bool,
    pub topic: String,
    /// 0: the server's retention; `u32::MAX`: forever; else hours.
    pub retention_h: u32,
    pub created_by: Option<String>,
}

/// A room: its settings, members and bans, and its newest entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomState {
    pub settings: RoomSettings,
    pub members: BTreeMap<String, Role>,
    pub bans: BTreeSet<String>,
    pub newest_id: u64,
}

impl RoomState {
    /// How many members hold `role`.
    pub fn count_role(&self, role: Role) -> usize {
        self.members.values().filter(|r| **r == role).count()
    }

    /// Whether `user` (an admin or not) can know that this room exists.
    pub fn visible_to(&self, user: &str, admin: bool) -> bool {
        !self.settings.private || admin || self.members.contains_key(user)
    }

    /// `user`'s rank here: admin 3, owner 2, moderator 1, member or none 0.
    pub fn rank_of(&self, user: &str, admin: bool) -> u8 {
        if admin {
            return 3;
        }
        match self.members.get(user) {
            Some(Role::Owner) => 2,
            Some(Role::Moderator) => 1,
            Some(Role::Member) | None => 0,
        }
    }
}

/// One change of the directory. `Directory::apply` returns the change that undoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    AddAccount(Box<AccountState>),
    /// Removes an account with its memberships and bans.
    RemoveAccount(String),
    /// Puts back a removed account, its memberships and its bans.
    RestoreAccount {
        account: Box<AccountState>,
        memberships: Vec<(String, Role)>,
        bans: Vec<String>,
    },
    SetVerifier(Box<UserRecord>),
    SetAdmin {
        user: String,
        admin: bool,
    },
    SetDisabled {
        user: String,
        disabled: bool,
    },
    CreateRoom {
        room: String,
        settings: RoomSettings,
    },
    DropRoom(String),
    /// Puts back a dropped room as it was.
    RestoreRoom {
        room: String,
        state: Box<RoomState>,
    },
    SetSettings {
        room: String,
        settings: RoomSettings,
    },
    /// Makes `user` a member with `role`, or (None) not a member.
    SetMember {
        room: String,
        user: String,
        role: Option<Role>,
    },
    SetBan {
        room: String,
        user: String,
        banned: bool,
    },
    SetNewest {
        room: String,
        id: u64,
    },
}

/// Accounts and rooms.
#[derive(Debug, Default)]
pub struct Directory {
    accounts: BTreeMap<String, AccountState>,
    rooms: BTreeMap<String, RoomState>,
    /// The rooms each user is a member of.
    memberships: HashMap<String, BTreeSet<String>>,
    /// How many accounts have each PBKDF2 count (unknown names get the commonest).
    iterations: BTreeMap<u32, usize>,
}

impl Directory {
    /// The directory as the store has it; `general` is always there.
    pub fn load(data: DirectoryData) -> Directory {
        let mut dir = Directory::default();
        for Account {
            record,
            admin,
            disabled,
            ..
        } in data.accounts
        {
            dir.insert_account(AccountState {
                record,
                admin,
                disabled,
            });
        }
        for room in data.rooms {
            dir.rooms.insert(
                room.name,
                RoomState {
                    settings: RoomSettings {
                        private: room.private,
                        read_only: room.read_only,
                        topic: room.topic,
                        retention_h: room.retention_h,
                        created_by: room.created_by,
                    },
                    members: BTreeMap::new(),
                    bans: BTreeSet::new(),
                    newest_id: room.newest_id,
                },
            );
        }
        dir.rooms.entry(GENERAL.to_owned()).or_default();
        for m in data.memberships {
            dir.set_member(&m.room, &m.user, Some(m.role));
        }
        for b in data.bans {
            if let Some(room) = dir.rooms.get_mut(&b.room) {
                room.bans.insert(b.user);
            }
        }
        dir
    }

    pub fn account(&self, user: &str) -> Option<&AccountState> {
        self.accounts.get(user)
    }

    /// Every account, by name, from just after `after` ("" for the start).
    pub fn accounts_after<'a>(
        &'a self,
        after: &str,
    ) -> impl Iterator<Item = (&'a String, &'a AccountState)> + 'a {
        use std::ops::Bound;
        self.accounts
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
    }

    /// The PBKDF2 count most accounts have (the larger of equally common ones), if any account
    /// exists: what a fake challenge for an unknown name must carry to look like a real one.
    pub fn common_iterations(&self) -> Option<u32> {
        self.iterations
            .iter()
            .max_by_key(|(iterations, count)| (**count, **iterations))
            .map(|(iterations, _)| *iterations)
    }

    fn insert_account(&mut self, account: AccountState) {
        *self
            .iterations
            .entry(account.record.iterations)
            .or_default() += 1;
        if let Some(old) = self.accounts.insert(account.record.name.clone(), account) {
            self.uncount_iterations(old.record.iterations);
        }
    }

    fn uncount_iterations(&mut self, iterations: u32) {
        if let Some(count) = self.iterations.get_mut(&iterations) {
            *count -= 1;
            if *count == 0 {
                self.iterations.remove(&iterations);
            }
        }
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.accounts.get(user).is_some_and(|a| a.admin)
    }

    pub fn room(&self, room: &str) -> Option<&RoomState> {
        self.rooms.get(room)
    }

    /// Every room by name, from just after `after`.
    pub fn rooms_after<'a>(
        &'a self,
        after: &str,
    ) -> impl Iterator<Item = (&'a String, &'a RoomState)> + 'a {
        use std::ops::Bound;
        self.rooms
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
    }

    /// The rooms `user` is a member of, by name.
    pub fn rooms_of(&self, user: &str) -> impl Iterator<Item = &String> {
        self.memberships.get(user).into_iter().flatten()
    }

    pub fn room_count_of(&self, user: &str) -> usize {
        self.memberships.get(user).map_or(0, BTreeSet::len)
    }

    /// How many rooms `user` created (that still exist).
    pub fn rooms_created_by(&self, user: &str) -> usize {
        self.rooms
            .values()
            .filter(|r| r.settings.created_by.as_deref() == Some(user))
            .count()
    }

    pub fn role(&self, room: &str, user: &str) -> Option<Role> {
        self.rooms.get(room)?.members.get(user).copied()
    }

    /// Whether `user` can know that `room` exists: public rooms, private rooms they are in,
    /// every room for admins.
    pub fn visible(&self, room: &str, user: &str) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.visible_to(user, self.is_admin(user)))
    }

    pub fn is_banned(&self, room: &str, user: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.bans.contains(user))
    }

    /// A user's rank in a room: admin 3, owner 2, moderator 1, member or none 0.
    pub fn rank(&self, room: &str, user: &str) -> u8 {
        let admin = self.is_admin(user);
        self.rooms
            .get(room)
            .map_or(if admin { 3 } else { 0 }, |r| r.rank_of(user, admin))
    }

    /// Applies a change and returns the change that undoes it.
    pub fn apply(&mut self, change: Change) -> Change {
        match change {
            Change::AddAccount(account) => {
                let name = account.record.name.clone();
                self.insert_account(*account);
                self.set_member(GENERAL, &name, Some(Role::Member));
                Change::RemoveAccount(name)
            }
            Change::RemoveAccount(name) => {
                let account = self.accounts.remove(&name);
                if let Some(account) = &account {
                    self.uncount_iterations(account.record.iterations);
                }
                let memberships: Vec<(String, Role)> = self
                    .rooms_of(&name)
                    .filter_map(|room| Some((room.clone(), self.role(room, &name)?)))
                    .collect();
                for (room, _) in &memberships {
                    self.set_member(room, &name, None);
                }
                let mut bans = Vec::new();
                for (room, state) in self.rooms.iter_mut() {
                    if state.bans.remove(&name) {
                        bans.push(room.clone());
                    }
                }
                match account {
                    Some(account) => Change::RestoreAccount {
                        account: Box::new(account),
                        memberships,
                        bans,
                    },
                    None => Change::RemoveAccount(name),
                }
            }
            Change::RestoreAccount {
                account,
                memberships,
                bans,
            } => {
                let name = account.record.name.clone();
                self.insert_account(*account);
                for (room, role) in memberships {
                    self.set_member(&room, &name, Some(role));
                }
                for room in bans {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.bans.insert(name.clone());
                    }
                }
                Change::RemoveAccount(name)
            }
            Change::SetVerifier(record) => {
                let new_iterations = record.iterations;
                match self.accounts.get_mut(&record.name) {
                    Some(account) => {
                        let old = std::mem::replace(&mut account.record, *record);
                        self.uncount_iterations(old.iterations);
                        *self.iterations.entry(new_iterations).or_default() += 1;
                        Change::SetVerifier(Box::new(old))
                    }
                    None => Change::SetVerifier(record),
                }
            }
            Change::SetAdmin { user, admin } => {
                let old = match self.accounts.get_mut(&user) {
                    Some(a) => std::mem::replace(&mut a.admin, admin),
                    None => admin,
                };
                Change::SetAdmin { user, admin: old }
            }
            Change::SetDisabled { user, disabled } => {
                let old = match self.accounts.get_mut(&user) {
                    Some(a) => std::mem::replace(&mut a.disabled, disabled),
                    None => disabled,
                };
                Change::SetDisabled {
                    user,
                    disabled: old,
                }
            }
            Change::CreateRoom { room, settings } => {
                self.rooms.insert(
                    room.clone(),
                    RoomState {
                        settings,
                        ..RoomState::default()
                    },
                );
                Change::DropRoom(room)
            }
            Change::DropRoom(room) => {
                let state = self.rooms.remove(&room).unwrap_or_default();
                for user in state.members.keys() {
                    if let Some(set) = self.memberships.get_mut(user) {
                        set.remove(&room);
                    }
                }
                Change::RestoreRoom {
                    room,
                    state: Box::new(state),
                }
            }
            Change::RestoreRoom { room, state } => {
                for user in state.members.keys() {
                    self.memberships
                        .entry(user.clone())
                        .or_default()
                        .insert(room.clone());
                }
                self.rooms.insert(room.clone(), *state);
                Change::DropRoom(room)
            }
            Change::SetSettings { room, settings } => {
                let old = match self.rooms.get_mut(&room) {
                    Some(r) => std::mem::replace(&mut r.settings, settings),
                    None => settings,
                };
                Change::SetSettings {
                    room,
                    settings: old,
                }
            }
            Change::SetMember { room, user, role } => {
                let old = self.set_member(&room, &user, role);
                Change::SetMember {
                    room,
                    user,
                    role: old,
                }
            }
            Change::SetBan { room, user, banned } => {
                let old = match self.rooms.get_mut(&room) {
                    Some(r) if banned => !r.bans.insert(user.clone()),
                    Some(r) => r.bans.remove(&user),
                    None => banned,
                };
                Change::SetBan {
                    room,
                    user,
                    banned: old,
                }
            }
            Change::SetNewest { room, id } => {
                let old = match self.rooms.get_mut(&room) {
                    Some(r) => std::mem::replace(&mut r.newest_id, id),
                    None => id,
                };
                Change::SetNewest { room, id: old }
            }
        }
    }

    /// Sets or removes a membership; returns the role before.
    fn set_member(&mut self, room: &str, user: &str, role: Option<Role>) -> Option<Role> {
        let state = self.rooms.get_mut(room)?;
        match role {
            Some(role) => {
                self.memberships
                    .entry(user.to_owned())
                    .or_default()
                    .insert(room.to_owned());
                state.members.insert(user.to_owned(), role)
            }
            None => {
                if let Some(set) = self.memberships.get_mut(user) {
                    set.remove(room);
                    if set.is_empty() {
                        self.memberships.remove(user);
                    }
                }
                state.members.remove(user)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BanRecord, MembershipRecord, RoomRecord};

    fn account(name: &str, admin: bool) -> Account {
        Account {
            record: UserRecord {
                name: name.into(),
                salt: vec![1; 16],
                iterations: 1000,
                stored_key: [1; 32],
                server_key: [2; 32],
            },
            admin,
            disabled: false,
            created_ts: 0,
            last_login_ts: None,
        }
    }

    fn room(name: &str, private: bool) -> RoomRecord {
        RoomRecord {
            name: name.into(),
            private,
            read_only: false,
            topic: String::new(),
            created_by: Some("alice".into()),
            created_ts: 0,
            retention_h: 0,
            newest_id: 7,
        }
    }

    fn member(user: &str, room: &str, role: Role) -> MembershipRecord {
        MembershipRecord {
            user: user.into(),
            room: room.into(),
            role,
        }
    }

    #[test]
    fn the_common_iteration_count_follows_registrations_changes_and_undo() {
        let mut dir = sample();
        assert_eq!(dir.common_iterations(), Some(1000));
        let with = |name: &str, iterations| {
            let mut a = account(name, false).record;
            a.iterations = iterations;
            a
        };
        let mut undo = Vec::new();
        for name in ["n1", "n2", "n3", "n4"] {
            undo.push(dir.apply(Change::AddAccount(Box::new(AccountState {
                record: with(name, 5000),
                admin: false,
                disabled: false,
            }))));
        }
        assert_eq!(
            dir.common_iterations(),
            Some(5000),
            "4 against 4: the larger"
        );
        undo.push(dir.apply(Change::SetVerifier(Box::new(with("n1", 1000)))));
        assert_eq!(dir.common_iterations(), Some(1000));
        undo.push(dir.apply(Change::RemoveAccount("alice".into())));
        undo.push(dir.apply(Change::RemoveAccount("bob".into())));
        assert_eq!(dir.common_iterations(), Some(5000));
        for change in undo.into_iter().rev() {
            dir.apply(change);
        }
        assert_eq!(dir.common_iterations(), Some(1000));
        assert_eq!(dir.iterations.get(&5000), None, "nothing left over");
        assert_eq!(Directory::default().common_iterations(), None);
    }

    pub(crate) fn sample() -> Directory {
        Directory::load(DirectoryData {
            accounts: vec![
                account("alice", false),
                account("bob", false),
                account("root", true),
                account("eve", false),
            ],
            rooms: vec![
                room("general", false),
                room("ops", true),
                room("lobby", false),
            ],
            memberships: vec![
                member("alice", "general", Role::Member),
                member("alice", "ops", Role::Owner),
                member("bob", "ops", Role::Member),
            ],
            bans: vec![BanRecord {
                room: "lobby".into(),
                user: "eve".into(),
                by: "alice".into(),
                ts: 0,
                reason: String::new(),
            }],
        })
    }

    #[test]
    fn visibility_ranks_and_bans() {
        let dir = sample();
        assert!(dir.visible("ops", "alice"));
        assert!(dir.visible("ops", "root"), "admins see private rooms");
        assert!(!dir.visible("ops", "eve"));
        assert!(dir.visible("lobby", "eve"));
        assert!(!dir.visible("nope", "alice"));
        assert!(dir.is_banned("lobby", "eve"));
        assert_eq!(dir.rank("ops", "root"), 3);
        assert_eq!(dir.rank("ops", "alice"), 2);
        assert_eq!(dir.rank("ops", "bob"), 0);
        assert_eq!(
            dir.rooms_of("alice").collect::<Vec<_>>(),
            ["general", "ops"]
        );
        assert_eq!(dir.rooms_created_by("alice"), 3);
        assert_eq!(dir.room("ops").map(|r| r.newest_id), Some(7));
    }

    #[test]
    fn every_change_is_undone_by_its_inverse() {
        let changes = vec![
            Change::AddAccount(Box::new(AccountState {
                record: account("zed", false).record,
                admin: false,
                disabled: false,
            })),
            Change::RemoveAccount("alice".into()),
            Change::SetVerifier(Box::new(UserRecord {
                name: "bob".into(),
                salt: vec![9; 16],
                iterations: 5,
                stored_key: [9; 32],
                server_key: [9; 32],
            })),
            Change::SetAdmin {
                user: "bob".into(),
                admin: true,
            },
            Change::SetDisabled {
                user: "bob".into(),
                disabled: true,
            },
            Change::CreateRoom {
                room: "new".into(),
                settings: RoomSettings::default(),
            },
            Change::DropRoom("ops".into()),
            Change::SetSettings {
                room: "ops".into(),
                settings: RoomSettings {
                    private: false,
                    read_only: true,
                    topic: "t".into(),
                    retention_h: 5,
                    created_by: None,
                },
            },
            Change::SetMember {
                room: "ops".into(),
                user: "bob".into(),
                role: Some(Role::Moderator),
            },
            Change::SetMember {
                room: "ops".into(),
                user: "alice".into(),
                role: None,
            },
            Change::SetBan {
                room: "lobby".into(),
                user: "eve".into(),
                banned: false,
            },
            Change::SetBan {
                room: "ops".into(),
                user: "bob".into(),
                banned: true,
            },
            Change::SetNewest {
                room: "ops".into(),
                id: 99,
            },
        ];
        for change in changes {
            let mut dir = sample();
            let inverse = dir.apply(change.clone());
            assert_ne!(
                format!("{:?}", dir.rooms) + &format!("{:?}", dir.accounts),
                format!("{:?}", sample().rooms) + &format!("{:?}", sample().accounts),
                "{change:?} changed nothing"
            );
            dir.apply(inverse);
            let fresh = sample();
            assert_eq!(dir.accounts, fresh.accounts, "{change:?}");
            assert_eq!(dir.rooms, fresh.rooms, "{change:?}");
            assert_eq!(dir.memberships, fresh.memberships, "{change:?}");
        }
    }
}
