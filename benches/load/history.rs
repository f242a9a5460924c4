//! History runs: every logged-in client pages back through `ROOM`, one request outstanding.

use std::time::{Duration, Instant};

use chat::wire::{ChatMessage, Message};

use super::ROOM;
use super::generator::{Generator, Phase};
use super::histogram::Histogram;

/// The state of a history run in progress.
pub(super) struct HistoryRun {
    pub(super) limit: u16,
    pub(super) end_ns: u64,
    /// Per client: (before_id of the next request, when the outstanding one was sent).
    pub(super) cursor: Vec<(u64, u64)>,
    pub(super) pages: u64,
    pub(super) entries: u64,
    pub(super) passes: u64,
    pub(super) latency: Histogram,
    pub(super) last_page_ns: u64,
}

impl Generator {
    /// Every logged-in client pages back through `ROOM` with `limit`, one request outstanding
    /// each, for `duration`; at the oldest page it starts again from the newest.
    pub fn history(&mut self, limit: u16, duration: Duration) -> HistoryResult {
        let start = Instant::now();
        let start_ns = self.now_ns();
        self.history = Some(HistoryRun {
            limit,
            end_ns: start_ns + duration.as_nanos() as u64,
            cursor: vec![(0, 0); self.clients.len()],
            pages: 0,
            entries: 0,
            passes: 0,
            latency: Histogram::new(),
            last_page_ns: start_ns,
        });
        let clients: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].phase == Phase::Ready)
            .collect();
        for &idx in &clients {
            self.request_page(idx, 0, start_ns);
        }
        self.flush_pending();
        let deadline = duration + Duration::from_secs(10);
        while start.elapsed() < deadline {
            let outstanding = self
                .history
                .as_ref()
                .is_some_and(|h| h.cursor.iter().any(|&(_, sent)| sent != 0));
            if !outstanding {
                break;
            }
            self.pump(Duration::from_millis(20));
        }
        let run = self.history.take().expect("history run");
        HistoryResult {
            clients: clients.len(),
            pages: run.pages,
            entries: run.entries,
            passes: run.passes,
            elapsed: Duration::from_nanos(run.last_page_ns - start_ns),
            latency: run.latency,
        }
    }

    pub(super) fn request_page(&mut self, idx: usize, before_id: u64, now: u64) {
        let Some(run) = self.history.as_mut() else {
            return;
        };
        let limit = run.limit;
        run.cursor[idx] = (before_id, now.max(1));
        let request = Message::HistoryReq {
            room: ROOM,
            before_id,
            limit,
        };
        match self.clients[idx].session.send(&request) {
            Ok(()) => self.want_flush(idx),
            Err(e) => {
                run.cursor[idx].1 = 0;
                self.fail(idx, format!("history request: {e}"));
            }
        }
    }

    pub(super) fn on_history(
        &mut self,
        idx: usize,
        more: bool,
        messages: &[ChatMessage],
        now: u64,
    ) {
        let Some(run) = self.history.as_mut() else {
            return;
        };
        let (_, sent) = run.cursor[idx];
        run.latency.record(now.saturating_sub(sent));
        run.pages += 1;
        run.entries += messages.len() as u64;
        run.last_page_ns = now;
        run.cursor[idx].1 = 0;
        let next = match messages.first() {
            Some(oldest) if more => oldest.id,
            _ => {
                run.passes += 1;
                0
            }
        };
        if now < run.end_ns {
            self.request_page(idx, next, now);
        }
    }
}

/// What a history run measured.
#[derive(Debug)]
pub struct HistoryResult {
    pub clients: usize,
    pub pages: u64,
    pub entries: u64,
    /// Times a client reached the oldest message and started again.
    pub passes: u64,
    pub elapsed: Duration,
    /// Request-to-page round trips, ns.
    pub latency: Histogram,
}
