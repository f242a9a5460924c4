//! Retention: entries older than their conversation's retention are deleted between loop turns,
//! a small batch at a time (at most [`BATCH_ROWS`] rows or [`BATCH_BUDGET`] of work, then its
//! commit; while catching up, a batch every `CATCH_UP_PAUSE`) until caught up, so the loop never
//! stalls and the write-ahead log's checkpoints keep up. A room's `retention_h`
//! (0: the server's `retention`; `u32::MAX`: forever) overrides the server's; private messages
//! follow the server's. The store removes each entry with its search-index text, reactions and
//! mentions; read markers are ids and stay valid.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::membership::FOREVER;
use super::{Server, now_ms};
use crate::store::{Expiry, ExpiryScope};

/// How often a sweep starts when the last one caught up.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Most entries deleted in one loop turn.
pub const BATCH_ROWS: usize = 500;
/// Most time spent deleting in one loop turn (at least one entry is deleted when one is due).
pub const BATCH_BUDGET: Duration = Duration::from_millis(2);
/// Most rules looked at in one loop turn (each costs one indexed read when nothing is due).
const RULES_PER_TURN: usize = 64;
/// The pause between two batches while catching up: the loop serves clients, and the
/// checkpointer copies the write-ahead log back, in between (without it the log grows by the
/// size of everything deleted).
const CATCH_UP_PAUSE: Duration = Duration::from_millis(50);
/// When another process holds the database's write lock: try again after this.
const BUSY_RETRY: Duration = Duration::from_millis(100);

/// Where retention's sweep stands.
#[derive(Debug)]
pub struct Sweep {
    /// The rules of the sweep under way, the next to work on first.
    queue: VecDeque<Expiry>,
    next_at: Instant,
    /// Entries deleted by the sweep under way.
    deleted: u64,
}

impl Sweep {
    /// A sweep that starts at once.
    pub fn new(now: Instant) -> Sweep {
        Sweep {
            queue: VecDeque::new(),
            next_at: now,
            deleted: 0,
        }
    }

    /// When the loop must wake for the next batch or sweep.
    pub fn next_at(&self) -> Instant {
        self.next_at
    }
}

/// The rules in force at `now_ms`: one per room with a finite retention (its own, or the
/// server's `default`), and one for private messages if `default` is finite.
pub fn rules<'a>(
    default: Option<Duration>,
    rooms: impl Iterator<Item = (&'a str, u32)>,
    now_ms: u64,
) -> Vec<Expiry> {
    let before = |keep: Duration| now_ms.saturating_sub(keep.as_millis() as u64);
    let mut rules: Vec<Expiry> = rooms
        .filter_map(|(room, hours)| {
            let keep = match hours {
                0 => default?,
                FOREVER => return None,
                hours => Duration::from_secs(u64::from(hours) * 3600),
            };
            Some(Expiry {
                scope: ExpiryScope::Room(room.to_owned()),
                before_ts: before(keep),
            })
        })
        .collect();
    if let Some(keep) = default {
        rules.push(Expiry {
            scope: ExpiryScope::Private,
            before_ts: before(keep),
        });
    }
    rules
}

impl Server {
    /// One step of retention, between turns: starts a sweep when it is time, else deletes the
    /// next small batch of the sweep under way.
    pub(super) fn retention_tick(&mut self, now: Instant) {
        if now < self.retention.next_at || self.commit_blocked.is_some() || !self.turn.is_empty() {
            return;
        }
        if self.retention.queue.is_empty() {
            let rooms = self
                .directory
                .rooms_after("")
                .map(|(name, state)| (name.as_str(), state.settings.retention_h));
            self.retention.queue = rules(self.config.retention, rooms, now_ms()).into();
            self.retention.deleted = 0;
            if self.retention.queue.is_empty() {
                self.retention.next_at = now + SWEEP_INTERVAL;
                return;
            }
        }
        let batch: Vec<Expiry> = self
            .retention
            .queue
            .iter()
            .take(RULES_PER_TURN)
            .cloned()
            .collect();
        let started = Instant::now();
        let result = self.store.delete_expired(&batch, BATCH_ROWS, BATCH_BUDGET);
        self.stats.retention_step = self.stats.retention_step.max(started.elapsed());
        match result {
            Ok(done) => {
                self.retention.queue.drain(..done.finished.min(batch.len()));
                self.retention.deleted += done.deleted;
                self.stats.retention_deleted += done.deleted;
                if !self.retention.queue.is_empty() {
                    self.retention.next_at = now + CATCH_UP_PAUSE;
                    return;
                }
                if self.retention.deleted > 0 {
                    info!(
                        "retention: deleted {} expired entries",
                        self.retention.deleted
                    );
                }
                self.retention.next_at = now + SWEEP_INTERVAL;
            }
            Err(e) if e.is_busy() => self.retention.next_at = now + BUSY_RETRY,
            Err(e) => {
                warn!("retention: cannot delete expired entries, trying again later: {e}");
                self.retention.queue.clear();
                self.retention.next_at = now + SWEEP_INTERVAL;
            }
        }
    }

    /// Starts a new sweep at the next turn (the rules changed).
    pub(super) fn retention_soon(&mut self) {
        self.retention.queue.clear();
        self.retention.next_at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn rooms_override_the_server_and_forever_means_no_rule() {
        let now = 1000 * HOUR;
        let rooms = [("a", 0), ("b", 2), ("c", FOREVER)];
        let found = rules(Some(Duration::from_secs(48 * 3600)), rooms.into_iter(), now);
        assert_eq!(
            found,
            [
                Expiry {
                    scope: ExpiryScope::Room("a".into()),
                    before_ts: now - 48 * HOUR
                },
                Expiry {
                    scope: ExpiryScope::Room("b".into()),
                    before_ts: now - 2 * HOUR
                },
                Expiry {
                    scope: ExpiryScope::Private,
                    before_ts: now - 48 * HOUR
                },
            ]
        );
        // Keeping forever by default: only rooms with their own retention have a rule.
        let found = rules(None, rooms.into_iter(), now);
        assert_eq!(
            found,
            [Expiry {
                scope: ExpiryScope::Room("b".into()),
                before_ts: now - 2 * HOUR
            }]
        );
    }
}
