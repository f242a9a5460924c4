//! How listings look: `rooms`, `members`, `unread` and `who`, as aligned human tables for the
//! command line, one-line `[SERVER]` summaries for the interactive mode, or one `--json`
//! object per row. Pure functions of what the server answered.

use chat::wire::event::{MemberState, RoomState, UnreadState};
use chat::wire::text::visible;
use serde_json::Value;

use crate::json::object;
use crate::output::role_name;

/// A room's retention as users write it: `default`, `forever` or hours (`72h`).
pub fn retention_name(hours: u32) -> String {
    match hours {
        0 => "default".to_owned(),
        u32::MAX => "forever".to_owned(),
        h => format!("{h}h"),
    }
}

/// `public` or `private`, and `read-only` when it is.
fn visibility(r: &RoomState) -> String {
    let mut words = String::from(if r.private { "private" } else { "public" });
    if r.read_only {
        words.push_str(", read-only");
    }
    words
}

fn role_of(r: &RoomState) -> &'static str {
    if r.member { role_name(r.role) } else { "-" }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Rows padded to their columns' widths (the last column is not padded).
fn aligned(rows: Vec<Vec<String>>) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.into_iter()
        .map(|row| {
            let last = row.len().saturating_sub(1);
            let cells: Vec<String> = row
                .into_iter()
                .enumerate()
                .map(|(i, cell)| {
                    if i == last {
                        cell
                    } else {
                        let pad = widths[i].saturating_sub(cell.chars().count());
                        format!("{cell}{}", " ".repeat(pad))
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// `rooms`: name, visibility, your role, members and topic.
pub fn rooms(json: bool, rooms: &[RoomState]) -> Vec<String> {
    if json {
        return rooms.iter().map(room_json).collect();
    }
    aligned(
        rooms
            .iter()
            .map(|r| {
                vec![
                    format!("#{}", visible(&r.room)),
                    visibility(r),
                    role_of(r).to_owned(),
                    format!(
                        "{}, {} online",
                        plural(r.members, "member", "members"),
                        r.online
                    ),
                    visible(&r.topic).into_owned(),
                ]
            })
            .collect(),
    )
}

fn room_json(r: &RoomState) -> String {
    object(&[
        ("room", Value::from(r.room.as_str())),
        ("private", Value::from(r.private)),
        ("read_only", Value::from(r.read_only)),
        ("member", Value::from(r.member)),
        (
            "role",
            if r.member {
                Value::from(role_name(r.role))
            } else {
                Value::Null
            },
        ),
        ("members", Value::from(r.members)),
        ("online", Value::from(r.online)),
        ("retention", Value::from(retention_name(r.retention_h))),
        ("topic", Value::from(r.topic.as_str())),
    ])
}

/// The interactive `/rooms`: one line.
pub fn rooms_summary(json: bool, rooms: &[RoomState]) -> Vec<String> {
    if json {
        return self::rooms(true, rooms);
    }
    let list: Vec<String> = rooms
        .iter()
        .map(|r| {
            let mut about = vec![plural(r.members, "member", "members")];
            if r.private {
                about.insert(0, "private".to_owned());
            }
            if r.read_only {
                about.push("read-only".to_owned());
            }
            if r.member {
                about.push(format!("you: {}", role_name(r.role)));
            }
            format!("#{} ({})", visible(&r.room), about.join(", "))
        })
        .collect();
    vec![format!("[SERVER] rooms: {}", list.join(", "))]
}

/// `members ROOM`: each member with their role and whether they are online.
pub fn members(json: bool, room: &str, members: &[MemberState]) -> Vec<String> {
    if json {
        return members
            .iter()
            .map(|m| {
                object(&[
                    ("room", Value::from(room)),
                    ("user", Value::from(m.user.as_str())),
                    ("role", Value::from(role_name(m.role))),
                    ("online", Value::from(m.online)),
                ])
            })
            .collect();
    }
    aligned(
        members
            .iter()
            .map(|m| {
                vec![
                    visible(&m.user).into_owned(),
                    role_name(m.role).to_owned(),
                    if m.online { "online" } else { "offline" }.to_owned(),
                ]
            })
            .collect(),
    )
}

/// The interactive `/members`: one line.
pub fn members_summary(json: bool, room: &str, members: &[MemberState]) -> Vec<String> {
    if json {
        return self::members(true, room, members);
    }
    let list: Vec<String> = members
        .iter()
        .map(|m| {
            let mut about = Vec::new();
            if m.role != chat::wire::message::Role::Member {
                about.push(role_name(m.role));
            }
            if m.online {
                about.push("online");
            }
            if about.is_empty() {
                visible(&m.user).into_owned()
            } else {
                format!("{} ({})", visible(&m.user), about.join(", "))
            }
        })
        .collect();
    vec![format!(
        "[SERVER] members of #{} ({}): {}",
        visible(room),
        members.len(),
        list.join(", ")
    )]
}

/// `#room` or `@user`, as a conversation is shown.
pub fn conv_name(conv: &str) -> String {
    if conv.starts_with('@') {
        visible(conv).into_owned()
    } else {
        format!("#{}", visible(conv))
    }
}

/// "999+" for the counts the server stops at.
fn count(n: u32) -> String {
    if n >= 999 {
        "999+".to_owned()
    } else {
        n.to_string()
    }
}

/// `unread`: the conversations with something unread.
pub fn unread(json: bool, convs: &[UnreadState]) -> Vec<String> {
    let with_news = convs.iter().filter(|c| c.unread > 0);
    if json {
        return with_news
            .map(|c| {
                object(&[
                    ("conv", Value::from(c.conv.as_str())),
                    ("unread", Value::from(c.unread)),
                    ("mentions", Value::from(c.mentions)),
                    ("last_read", Value::from(c.last_read)),
                    ("newest", Value::from(c.newest)),
                ])
            })
            .collect();
    }
    aligned(
        with_news
            .map(|c| {
                let mut counts = format!("{} unread", count(c.unread));
                if c.mentions > 0 {
                    counts.push_str(&format!(
                        ", {} {}",
                        count(c.mentions),
                        if c.mentions == 1 {
                            "mention"
                        } else {
                            "mentions"
                        }
                    ));
                }
                vec![
                    conv_name(&c.conv),
                    counts,
                    format!("(read up to {}, newest {})", c.last_read, c.newest),
                ]
            })
            .collect(),
    )
}

/// The interactive `/unread`: one line.
pub fn unread_summary(json: bool, convs: &[UnreadState]) -> Vec<String> {
    if json {
        return self::unread(true, convs);
    }
    let list: Vec<String> = convs
        .iter()
        .filter(|c| c.unread > 0)
        .map(|c| {
            let mentions = if c.mentions > 0 {
                format!(" ({} @you)", count(c.mentions))
            } else {
                String::new()
            };
            format!("{} {}{mentions}", conv_name(&c.conv), count(c.unread))
        })
        .collect();
    if list.is_empty() {
        vec!["[SERVER] nothing unread".to_owned()]
    } else {
        vec![format!("[SERVER] unread: {}", list.join(", "))]
    }
}

/// One line of `who`: a user, and the room asked about, if any.
pub fn who_line(json: bool, room: &str, user: &str) -> String {
    if !json {
        return visible(user).into_owned();
    }
    if room.is_empty() {
        object(&[("user", Value::from(user))])
    } else {
        object(&[("room", Value::from(room)), ("user", Value::from(user))])
    }
}

/// The interactive `/who`: one line.
pub fn who_summary(json: bool, room: &str, users: &[String]) -> Vec<String> {
    if json {
        return users.iter().map(|u| who_line(true, room, u)).collect();
    }
    let names: Vec<String> = users.iter().map(|u| visible(u).into_owned()).collect();
    let place = if room.is_empty() {
        "online".to_owned()
    } else {
        format!("online in #{}", visible(room))
    };
    vec![format!(
        "[SERVER] {place} ({}): {}",
        names.len(),
        if names.is_empty() {
            "nobody".to_owned()
        } else {
            names.join(", ")
        }
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::message::Role;

    fn room(name: &str, private: bool, member: bool, role: Role, topic: &str) -> RoomState {
        RoomState {
            room: name.into(),
            private,
            read_only: false,
            member,
            role,
            members: 3,
            online: 1,
            retention_h: 0,
            topic: topic.into(),
        }
    }

    #[test]
    fn rooms_show_visibility_role_and_topic() {
        let list = [
            room("general", false, true, Role::Member, "Company news"),
            RoomState {
                read_only: true,
                members: 1,
                ..room("ops", true, true, Role::Owner, "")
            },
            room("random", false, false, Role::Member, "Anything\u{202e}"),
        ];
        assert_eq!(
            rooms(false, &list),
            [
                "#general  public              member  3 members, 1 online  Company news",
                "#ops      private, read-only  owner   1 member, 1 online",
                "#random   public              -       3 members, 1 online  Anything<U+202E>",
            ]
        );
        let json = rooms(true, &list);
        let v: Value = serde_json::from_str(&json[1]).expect("json");
        assert_eq!(
            (
                v["private"].as_bool(),
                v["read_only"].as_bool(),
                v["role"].as_str()
            ),
            (Some(true), Some(true), Some("owner"))
        );
        let v: Value = serde_json::from_str(&json[2]).expect("json");
        assert!(v["role"].is_null());
        assert_eq!(v["retention"], "default");
        assert!(
            json[2].contains(r#""topic":"Anything\u202E""#),
            "{}",
            json[2]
        );
        assert_eq!(
            rooms_summary(false, &list[..2]),
            [
                "[SERVER] rooms: #general (3 members, you: member), #ops (private, 1 member, \
              read-only, you: owner)"
            ]
        );
        assert_eq!(retention_name(u32::MAX), "forever");
        assert_eq!(retention_name(72), "72h");
    }

    #[test]
    fn members_and_unread() {
        let list = [
            MemberState {
                user: "alice".into(),
                role: Role::Owner,
                online: true,
            },
            MemberState {
                user: "bob".into(),
                role: Role::Member,
                online: false,
            },
        ];
        assert_eq!(
            members(false, "ops", &list),
            ["alice  owner   online", "bob    member  offline"]
        );
        assert_eq!(
            members(true, "ops", &list)[1],
            r#"{"room":"ops","user":"bob","role":"member","online":false}"#
        );
        assert_eq!(
            members_summary(false, "ops", &list),
            ["[SERVER] members of #ops (2): alice (owner, online), bob"]
        );
        let convs = [
            UnreadState {
                conv: "general".into(),
                last_read: 10,
                newest: 10,
                unread: 0,
                mentions: 0,
            },
            UnreadState {
                conv: "ops".into(),
                last_read: 10,
                newest: 14,
                unread: 3,
                mentions: 1,
            },
            UnreadState {
                conv: "@bob".into(),
                last_read: 0,
                newest: 12,
                unread: 1200,
                mentions: 0,
            },
        ];
        assert_eq!(
            unread(false, &convs),
            [
                "#ops  3 unread, 1 mention  (read up to 10, newest 14)",
                "@bob  999+ unread          (read up to 0, newest 12)",
            ]
        );
        assert_eq!(
            unread(true, &convs)[0],
            r#"{"conv":"ops","unread":3,"mentions":1,"last_read":10,"newest":14}"#
        );
        assert_eq!(
            unread_summary(false, &convs),
            ["[SERVER] unread: #ops 3 (1 @you), @bob 999+"]
        );
        assert_eq!(
            unread_summary(false, &convs[..1]),
            ["[SERVER] nothing unread"]
        );
        assert_eq!(
            who_summary(false, "ops", &["alice".into(), "bob".into()]),
            ["[SERVER] online in #ops (2): alice, bob"]
        );
        assert_eq!(who_line(true, "", "alice"), r#"{"user":"alice"}"#);
    }
}
