//! Fake monday's rate limits (providers.md A3), all per account: the complexity budget per
//! minute (separate read and write budgets, as for app tokens), the per-query complexity cap, the
//! minute request limit, the concurrency limit and the daily call limit, plus the
//! `RateLimit-Policy` / `RateLimit` headers every response carries.
//!
//! The per-minute windows last [`ApiLimits::window`] (60 s, as monday's; a test that runs minutes
//! of rate-limited traffic shortens it and configures the client's budget to the same length).
//! Times are kept in milliseconds of the fake's clock.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The limits the fake enforces per account. The defaults are monday's for an app token on a
/// plan below Pro (A3); tests lower them to reach a limit in a few calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Complexity points per minute for queries (app tokens: 5,000,000).
    pub read_budget: u64,
    /// Complexity points per minute for mutations (app tokens: a separate 5,000,000).
    pub write_budget: u64,
    /// The most one query may cost (5,000,000); above it the query is refused unrun.
    pub per_query: u64,
    /// Requests per minute (1,000; Pro 2,500; Enterprise 5,000).
    pub per_minute: u64,
    /// Requests in flight at once (40; Pro 100; Enterprise 250).
    pub concurrency: u64,
    /// Calls per UTC day (Free/Standard/Basic 1,000; Pro 10,000; Enterprise 25,000). A normal call
    /// counts 1, a rate-limited call and a standalone `complexity` query 0.1.
    pub daily_calls: u64,
    /// The length of a "minute" for the complexity budgets and the minute limit (60 s).
    pub window: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            read_budget: 5_000_000,
            write_budget: 5_000_000,
            per_query: 5_000_000,
            per_minute: 1_000,
            concurrency: 40,
            daily_calls: 1_000,
            window: Duration::from_secs(60),
        }
    }
}

/// A window that opens at its first use and closes a window length (60 s) later (A3: "reset
/// 60 s after the first call"), with what was used in it. Times in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    opened: Option<u64>,
    used: u64,
}

impl Window {
    /// Opens a new window when the last one closed; returns the closed one, if any.
    fn roll(&mut self, now: u64, length: u64) -> Option<Window> {
        if self.opened.is_none_or(|opened| now >= opened + length) {
            let closed = std::mem::replace(self, Window { opened: Some(now), used: 0 });
            return closed.opened.is_some().then_some(closed);
        }
        None
    }

    fn fresh(&self, now: u64, length: u64) -> bool {
        self.opened.is_none_or(|opened| now >= opened + length)
    }

    /// Whole seconds until the window closes, rounded up (a full window for one not yet opened).
    fn reset_in(&self, now: u64, length: u64) -> u64 {
        let left = self.opened.map_or(length, |opened| (opened + length).saturating_sub(now));
        left.div_ceil(1000).max(1)
    }
}

/// One closed (or the current) read-complexity window of an account, as the fake counted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpentWindow {
    pub account_id: u64,
    /// When its first query was charged.
    pub opened: SystemTime,
    /// Complexity charged in it.
    pub used: u64,
    /// The read budget when it was last charged.
    pub limit: u64,
}

/// A request the limits refused, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusalRecord {
    pub at: SystemTime,
    /// `COMPLEXITY_BUDGET_EXHAUSTED`, `RATE_LIMIT_EXCEEDED`, `maxConcurrencyExceeded` or
    /// `DAILY_LIMIT_EXCEEDED`.
    pub code: &'static str,
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[derive(Debug, Default)]
struct Usage {
    read: Window,
    write: Window,
    minute: Window,
    in_flight: u64,
    /// UTC day number and the calls made on it, in tenths.
    day: u64,
    daily_tenths: u64,
    /// Read windows that closed, oldest first.
    read_history: Vec<Window>,
}

/// Why a request was refused before it ran, with the seconds to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Minute(u64),
    Concurrency(u64),
    Daily(u64),
}

/// A query's complexity charged to the budget: remaining before and after, and seconds to reset.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Charge {
    pub cost: u64,
    pub before: u64,
    pub after: u64,
    pub reset_in: u64,
}

/// A query the budget could not pay for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Exhausted {
    pub cost: u64,
    pub remaining: u64,
    pub limit: u64,
    pub retry_in: u64,
}

#[derive(Debug, Default)]
pub(super) struct Limiter {
    pub limits: ApiLimits,
    usage: HashMap<u64, Usage>,
    /// Complexity points charged so far, all accounts.
    pub spent: u64,
    /// Refusals so far by error code.
    pub refused: HashMap<&'static str, usize>,
    /// Every refusal with its time, oldest first.
    pub refusals: Vec<RefusalRecord>,
}

impl Limiter {
    fn usage(&mut self, account: u64, now: u64) -> &mut Usage {
        let usage = self.usage.entry(account).or_default();
        if usage.day != now / 86_400_000 {
            usage.day = now / 86_400_000;
            usage.daily_tenths = 0;
        }
        usage
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.limits.window.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn refuse(&mut self, code: &'static str, now: u64) {
        *self.refused.entry(code).or_default() += 1;
        self.refusals.push(RefusalRecord { at: time_of(now), code });
    }

    /// Every account's read-complexity windows, closed ones and the current one, oldest first
    /// per account.
    pub fn read_windows(&self) -> Vec<SpentWindow> {
        let limit = self.limits.read_budget;
        let mut accounts: Vec<_> = self.usage.iter().collect();
        accounts.sort_by_key(|(id, _)| **id);
        accounts
            .into_iter()
            .flat_map(|(id, usage)| {
                usage.read_history.iter().chain(std::iter::once(&usage.read)).filter_map(move |w| {
                    Some(SpentWindow { account_id: *id, opened: time_of(w.opened?), used: w.used, limit })
                })
            })
            .collect()
    }

    /// Lets a request in (counting it against the minute limit and as in flight) or refuses it;
    /// a refused request still costs 0.1 daily call. `now` in milliseconds.
    pub fn admit(&mut self, account: u64, now: u64) -> Result<(), Refusal> {
        let limits = self.limits.clone();
        let length = self.window_ms();
        let usage = self.usage(account, now);
        usage.minute.roll(now, length);
        let refusal = if usage.minute.used >= limits.per_minute {
            Some(Refusal::Minute(usage.minute.reset_in(now, length)))
        } else if usage.in_flight >= limits.concurrency {
            Some(Refusal::Concurrency(1))
        } else if usage.daily_tenths >= limits.daily_calls * 10 {
            Some(Refusal::Daily(86_400 - (now / 1000) % 86_400))
        } else {
            None
        };
        usage.minute.used += 1;
        match refusal {
            Some(refusal) => {
                usage.daily_tenths += 1;
                let code = match refusal {
                    Refusal::Minute(_) => "RATE_LIMIT_EXCEEDED",
                    Refusal::Concurrency(_) => "maxConcurrencyExceeded",
                    Refusal::Daily(_) => "DAILY_LIMIT_EXCEEDED",
                };
                self.refuse(code, now);
                Err(refusal)
            }
            None => {
                usage.in_flight += 1;
                Ok(())
            }
        }
    }

    /// The request that [`Limiter::admit`] let in has finished.
    pub fn release(&mut self, account: u64) {
        if let Some(usage) = self.usage.get_mut(&account) {
            usage.in_flight = usage.in_flight.saturating_sub(1);
        }
    }

    /// Counts an admitted call against the daily limit, in tenths of a call.
    pub fn count_daily(&mut self, account: u64, now: u64, tenths: u64) {
        self.usage(account, now).daily_tenths += tenths;
    }

    /// Charges a query's complexity to the account's read or write budget.
    pub fn charge(&mut self, account: u64, write: bool, cost: u64, now: u64) -> Result<Charge, Exhausted> {
        let limit = if write { self.limits.write_budget } else { self.limits.read_budget };
        let length = self.window_ms();
        let usage = self.usage(account, now);
        let window = if write { &mut usage.write } else { &mut usage.read };
        if let Some(closed) = window.roll(now, length) {
            if !write {
                usage.read_history.push(closed);
            }
        }
        let window = if write { &mut usage.write } else { &mut usage.read };
        let before = limit.saturating_sub(window.used);
        if cost > before {
            let exhausted = Exhausted { cost, remaining: before, limit, retry_in: window.reset_in(now, length) };
            self.refuse("COMPLEXITY_BUDGET_EXHAUSTED", now);
            return Err(exhausted);
        }
        window.used += cost;
        let charge = Charge { cost, before, after: before - cost, reset_in: window.reset_in(now, length) };
        self.spent += cost;
        Ok(charge)
    }

    /// `RateLimit-Policy` and `RateLimit` for the account's state now (IETF draft structured
    /// fields, as monday sends them).
    pub fn headers(&mut self, account: u64, now: u64) -> (String, String) {
        let limits = self.limits.clone();
        let length = self.window_ms();
        let seconds = length.div_ceil(1000);
        let usage = self.usage(account, now);
        let policy = format!(
            "\"minuteRate\";q={};w={seconds}, \"concurrency\";q={};qu=\"concurrent-requests\", \"complexityMinute\";q={};w={seconds}",
            limits.per_minute, limits.concurrency, limits.read_budget
        );
        let fresh = |w: &Window| w.fresh(now, length);
        let minute_left =
            if fresh(&usage.minute) { limits.per_minute } else { limits.per_minute.saturating_sub(usage.minute.used) };
        let budget_left =
            if fresh(&usage.read) { limits.read_budget } else { limits.read_budget.saturating_sub(usage.read.used) };
        let current = format!(
            "\"minuteRate\";r={};t={}, \"concurrency\";r={}, \"complexityMinute\";r={};t={}",
            minute_left,
            usage.minute.reset_in(now, length),
            limits.concurrency.saturating_sub(usage.in_flight),
            budget_left,
            usage.read.reset_in(now, length)
        );
        (policy, current)
    }
}
