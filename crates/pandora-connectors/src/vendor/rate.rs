//! A client-side rate budget, fed by the vendor's rate-limit headers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `max` requests in any `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    /// Requests allowed per interval.
    pub max: u32,
    /// The rolling interval.
    pub interval: Duration,
}

impl RateWindow {
    /// `max` requests per `interval`.
    pub const fn new(max: u32, interval: Duration) -> Self {
        RateWindow { max, interval }
    }
}

#[derive(Debug)]
struct Window {
    limit: RateWindow,
    /// What the vendor last said remains of this window.
    reported: Option<u32>,
    /// Send times within the (padded) interval, oldest first.
    log: VecDeque<Instant>,
}

impl Window {
    /// The interval with a safety margin: a request leaves the window a
    /// little after the vendor forgets it, so clock and network skew never
    /// make the vendor count one request more than the budget did.
    fn padded(&self) -> Duration {
        let i = self.limit.interval;
        i + (i / 33).max(Duration::from_millis(30))
    }

    fn prune(&mut self, now: Instant) {
        let padded = self.padded();
        while self
            .log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= padded)
        {
            self.log.pop_front();
        }
    }

    /// How long until a slot frees (`None`: one is free now).
    fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.prune(now);
        if (self.log.len() as u64) < u64::from(self.limit.max.max(1)) {
            return None;
        }
        let excess = self.log.len() + 1 - self.limit.max.max(1) as usize;
        let t = self.log.get(excess - 1).copied()?;
        Some((t + self.padded()).saturating_duration_since(now))
    }
}

#[derive(Debug, Default)]
struct State {
    windows: Vec<Window>,
    paused_until: Option<Instant>,
    daily: Option<(u64, u64)>,
}

/// Paces the requests of one vendor account: at most `max` requests in any
/// rolling `interval`, for each of its windows (e.g. HubSpot's 110 per 10 s
/// and 11 per second). Vendors' headers adjust it as they arrive: a window's
/// limit ([`observe_window`](Self::observe_window)), the remaining requests
/// when others share the account, and a pause after a 429. Shared (`Arc`)
/// by every request of a connection; never holds its lock across an await.
#[derive(Debug, Default)]
pub struct RateBudget {
    state: Mutex<State>,
}

/// One window of a [`BudgetSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSnapshot {
    /// The window.
    pub limit: RateWindow,
    /// Requests this process sent in it.
    pub used: u32,
    /// What the vendor last reported remaining in it.
    pub reported_remaining: Option<u32>,
}

/// What a [`RateBudget`] knows now, for health reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetSnapshot {
    /// The windows and their use.
    pub windows: Vec<WindowSnapshot>,
    /// The daily limit and what remains of it, as last reported.
    pub daily: Option<(u64, u64)>,
}

impl RateBudget {
    /// A budget with these windows.
    pub fn new(windows: impl IntoIterator<Item = RateWindow>) -> Self {
        let windows = windows
            .into_iter()
            .map(|limit| Window {
                limit,
                reported: None,
                log: VecDeque::new(),
            })
            .collect();
        RateBudget {
            state: Mutex::new(State {
                windows,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot now, or says how long to wait for one.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.lock();
        let mut wait = s
            .paused_until
            .map(|p| p.saturating_duration_since(now))
            .filter(|d| !d.is_zero());
        for w in &mut s.windows {
            if let Some(d) = w.wait(now) {
                wait = Some(wait.map_or(d, |x| x.max(d)));
            }
        }
        match wait {
            Some(d) if !d.is_zero() => Err(d),
            _ => {
                for w in &mut s.windows {
                    w.log.push_back(now);
                }
                Ok(())
            }
        }
    }

    /// Waits for a slot and takes it.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// The vendor reported a window: its limit (`max`) and, when given, the
    /// requests it still allows (`remaining`). A window of that interval is
    /// added when the budget had none; when the vendor allows fewer than this
    /// process thinks are left (someone else uses the account), the
    /// difference counts as sent now.
    pub fn observe_window(&self, interval: Duration, max: Option<u32>, remaining: Option<u32>) {
        if interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut s = self.lock();
        let index = match s.windows.iter().position(|w| w.limit.interval == interval) {
            Some(i) => i,
            None => {
                let Some(max) = max else { return };
                s.windows.push(Window {
                    limit: RateWindow::new(max, interval),
                    reported: None,
                    log: VecDeque::new(),
                });
                s.windows.len() - 1
            }
        };
        let w = &mut s.windows[index];
        if remaining.is_some() {
            w.reported = remaining;
        }
        if let Some(max) = max.filter(|m| *m > 0) {
            w.limit.max = max;
        }
        if let Some(r) = remaining {
            w.prune(now);
            let left = w.limit.max.saturating_sub(w.log.len() as u32);
            for _ in r..left {
                w.log.push_back(now);
            }
        }
    }

    /// The vendor reported its daily limit and what remains of it.
    pub fn observe_daily(&self, limit: u64, remaining: u64) {
        self.lock().daily = Some((limit, remaining));
    }

    /// No request of this budget starts in the next `d` (after a 429).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut s = self.lock();
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// What the budget knows now.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = Instant::now();
        let mut s = self.lock();
        let windows = s
            .windows
            .iter_mut()
            .map(|w| {
                w.prune(now);
                WindowSnapshot {
                    limit: w.limit,
                    used: w.log.len() as u32,
                    reported_remaining: w.reported,
                }
            })
            .collect();
        BudgetSnapshot {
            windows,
            daily: s.daily,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_max_requests_then_waits_for_the_oldest_to_leave() {
        let b = RateBudget::new([RateWindow::new(3, Duration::from_secs(1))]);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.try_acquire(t0).expect("free slot");
        }
        let wait = b.try_acquire(t0).expect_err("full");
        assert!(wait > Duration::from_secs(1) && wait < Duration::from_millis(1100));
        b.try_acquire(t0 + wait).expect("the oldest left");
    }

    #[test]
    fn the_tightest_window_wins_and_a_pause_holds_everything() {
        let b = RateBudget::new([
            RateWindow::new(10, Duration::from_secs(10)),
            RateWindow::new(2, Duration::from_secs(1)),
        ]);
        let t0 = Instant::now();
        b.try_acquire(t0).expect("1");
        b.try_acquire(t0).expect("2");
        assert!(b.try_acquire(t0).expect_err("secondly full") <= Duration::from_millis(1100));
        b.pause(Duration::from_secs(5));
        let now = Instant::now();
        assert!(b.try_acquire(now).expect_err("paused") > Duration::from_secs(4));
    }

    #[test]
    fn vendor_headers_set_limits_and_count_other_consumers() {
        let b = RateBudget::new([RateWindow::new(100, Duration::from_secs(10))]);
        b.observe_window(Duration::from_secs(10), Some(4), Some(1));
        let now = Instant::now();
        b.try_acquire(now).expect("the one the vendor still allows");
        assert!(b.try_acquire(now).is_err());
        let snap = b.snapshot();
        assert_eq!(snap.windows[0].limit.max, 4);
        assert_eq!(snap.windows[0].reported_remaining, Some(1));
        // A window first reported by the vendor is added.
        b.observe_window(Duration::from_secs(1), Some(11), None);
        assert_eq!(b.snapshot().windows.len(), 2);
    }
}
