//! Rate limits for log lines that one record each can cause (a dead letter, an output sent
//! again): a poisoned topic or a broker outage would otherwise write a line per record. The
//! first few of a window are logged in full, and the rest as one count when the window ends.

use std::time::{Duration, Instant};

/// One kind of repeated line: at most `burst` in full per `window`, the rest counted.
#[derive(Debug)]
pub struct LogLimit {
    window: Duration,
    burst: u32,
    /// When the current window began, and what it let through and held back.
    started: Instant,
    shown: u32,
    held_back: u64,
}

/// What to log for one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admit {
    /// Log this occurrence in full.
    pub show: bool,
    /// Occurrences held back in the window that just ended: log their count first.
    pub held_back: Option<u64>,
}

impl LogLimit {
    pub fn new(window: Duration, burst: u32) -> Self {
        Self {
            window,
            burst,
            started: Instant::now(),
            shown: 0,
            held_back: 0,
        }
    }

    /// Ten lines in full per five seconds: enough to see what is wrong, not a flood.
    pub fn per_record() -> Self {
        Self::new(Duration::from_secs(5), 10)
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// One occurrence at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        let held_back = self.roll(now);
        let show = self.shown < self.burst;
        if show {
            self.shown += 1;
        } else {
            self.held_back += 1;
        }
        Admit { show, held_back }
    }

    /// The count held back in a window that has ended by `now` (call it on a timer, so the
    /// last window's count is logged without waiting for another occurrence).
    pub fn roll(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.started) < self.window {
            return None;
        }
        self.started = now;
        self.shown = 0;
        Some(std::mem::take(&mut self.held_back)).filter(|&n| n > 0)
    }

    /// The count held back so far, at once (at shutdown).
    pub fn drain(&mut self) -> Option<u64> {
        Some(std::mem::take(&mut self.held_back)).filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_shown_then_counted_and_the_count_is_given_once_the_window_ends() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(5), 3);
        let at = |ms| start + Duration::from_millis(ms);
        let shown: Vec<bool> = (0..10).map(|i| limit.admit(at(i)).show).collect();
        assert_eq!(shown.iter().filter(|&&s| s).count(), 3);
        assert_eq!(limit.roll(at(4_000)), None, "the window has not ended");
        assert_eq!(
            limit.admit(at(5_001)),
            Admit {
                show: true,
                held_back: Some(7)
            }
        );
        assert_eq!(limit.roll(at(10_002)), None, "nothing held back since");
        for i in 0..5 {
            limit.admit(at(10_003 + i));
        }
        assert_eq!(limit.drain(), Some(2));
        assert_eq!(limit.drain(), None, "a count is given once");
    }
}
