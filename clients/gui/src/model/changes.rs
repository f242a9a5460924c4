//! What changed since the UI last looked, so it redraws only that and keeps the reader's place.

/// What changed since the UI last looked (`Model::take_changes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The rooms list, the private list or the online list.
    pub lists: bool,
    /// The current conversation's lines or header.
    pub view: Option<ViewChange>,
    pub status: bool,
    /// The reply or edit being written (the bar above the input line).
    pub compose: bool,
}

/// How the current view changed, so the UI can keep the reader's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewChange {
    /// Another conversation is shown: scroll to its end.
    Switched,
    /// Lines were added or changed at the end: follow them if the reader is at the end.
    Tail,
    /// Older lines were put in front: keep the reader on the line they were reading.
    Prepended,
}

impl ViewChange {
    pub(super) fn merge(self, other: ViewChange) -> ViewChange {
        use ViewChange::*;
        match (self, other) {
            (Switched, _) | (_, Switched) => Switched,
            (Prepended, _) | (_, Prepended) => Prepended,
            _ => Tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn view_changes_merge_to_the_strongest() {
        assert_eq!(
            ViewChange::Tail.merge(ViewChange::Prepended),
            ViewChange::Prepended
        );
        assert_eq!(
            ViewChange::Prepended.merge(ViewChange::Switched),
            ViewChange::Switched
        );
        assert_eq!(ViewChange::Tail.merge(ViewChange::Tail), ViewChange::Tail);
        let mut m = in_general();
        joined_room(&mut m, "elsewhere");
        m.take_changes();
        m.handle(Event::Message(msg(9, "bob", "elsewhere", "not shown")));
        assert_eq!(m.take_changes().view, None);
        m.handle(Event::Message(msg(10, "bob", "general", "shown")));
        assert_eq!(m.take_changes().view, Some(ViewChange::Tail));
    }
}
