//! The people of the server: the directory of every account (USERS pages, to start a private
//! conversation with anyone) and who is online (PRESENCE, kept out of the conversations).

use chat::wire::event::UserState;

use super::{ConvKey, Model, Request, ViewChange};

/// A row of the people list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRow {
    pub user: String,
    pub online: bool,
    pub admin: bool,
    pub me: bool,
}

impl Model {
    pub(super) fn on_user_page(&mut self, next: &str, users: Vec<UserState>) -> Vec<Request> {
        if self.user_list.page(users, next) {
            return vec![Request::Users(next.to_owned())];
        }
        let listed = std::mem::take(&mut self.user_list.items);
        self.users = listed
            .into_iter()
            .filter(|u| !u.disabled)
            .map(|u| (u.user.clone(), u))
            .collect();
        self.changes.lists = true;
        self.touch_private();
        Vec::new()
    }

    pub(super) fn on_presence(&mut self, user: String, online: bool) {
        let entry = self.users.entry(user.clone()).or_insert(UserState {
            user,
            online,
            admin: false,
            disabled: false,
        });
        entry.online = online;
        self.changes.lists = true;
        self.touch_private();
    }

    /// The header of a private conversation says whether the peer is online.
    fn touch_private(&mut self) {
        if let Some(key @ ConvKey::Private(_)) = self.current.clone() {
            self.touch(&key, ViewChange::Tail);
        }
    }

    /// Whether `user` is online, as far as the user can know.
    pub fn is_user_online(&self, user: &str) -> bool {
        user == self.me || self.users.get(user).is_some_and(|u| u.online)
    }

    /// Everybody: the user first, then those online, then the others, each by name.
    pub fn people_rows(&self) -> Vec<PersonRow> {
        let mut rows: Vec<PersonRow> = self
            .users
            .values()
            .filter(|u| u.user != self.me)
            .map(|u| PersonRow {
                user: u.user.clone(),
                online: u.online,
                admin: u.admin,
                me: false,
            })
            .collect();
        rows.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.user.cmp(&b.user)));
        rows.insert(
            0,
            PersonRow {
                user: self.me.clone(),
                online: true,
                admin: self.is_admin(),
                me: true,
            },
        );
        rows
    }

    /// How many people are online (the user included).
    pub fn online_count(&self) -> usize {
        1 + self
            .users
            .values()
            .filter(|u| u.online && u.user != self.me)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use crate::model::fixtures::*;

    #[test]
    fn the_directory_lists_everyone_and_presence_moves_them() {
        let mut m = in_general();
        let first = m.handle(Event::UserPage {
            next: "c".into(),
            users: vec![
                user_state("bob", true, false),
                user_state("zed", false, false),
            ],
        });
        assert_eq!(first, vec![Request::Users("c".into())]);
        let mut gone = user_state("old", false, false);
        gone.disabled = true;
        m.handle(Event::UserPage {
            next: String::new(),
            users: vec![user_state("carol", false, false), gone],
        });
        let rows = |m: &Model| -> Vec<(String, bool)> {
            m.people_rows()
                .into_iter()
                .map(|r| (r.user, r.online))
                .collect()
        };
        assert_eq!(
            rows(&m),
            vec![
                ("alice".to_owned(), true),
                ("bob".to_owned(), true),
                ("carol".to_owned(), false),
                ("zed".to_owned(), false),
            ]
        );
        let before = plain(&m);
        m.handle(Event::Presence {
            user: "carol".into(),
            online: true,
        });
        m.handle(Event::Presence {
            user: "bob".into(),
            online: false,
        });
        assert_eq!(m.online_count(), 2);
        assert_eq!(rows(&m)[1], ("carol".to_owned(), true));
        // Presence is not shown in any conversation.
        assert_eq!(plain(&m), before);
        // Anyone in the directory can be written to, online or not.
        m.open_private("zed").expect("valid");
        assert_eq!(m.title(), "Private conversation with zed (offline)");
    }
}
