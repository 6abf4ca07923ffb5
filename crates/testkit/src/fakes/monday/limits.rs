//! Fake monday's rate limits (providers.md A3), all per account: the complexity budget per
//! minute (separate read and write budgets, as for app tokens), the per-query complexity cap, the
//! minute request limit, the concurrency limit and the daily call limit, plus the
//! `RateLimit-Policy` / `RateLimit` headers every response carries.

use std::collections::HashMap;

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
        }
    }
}

/// A window that opens at its first use and closes 60 seconds later (A3: "reset 60 s after the
/// first call"), with what was used in it.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    opened: Option<u64>,
    used: u64,
}

impl Window {
    fn roll(&mut self, now: u64) {
        if self.opened.is_none_or(|opened| now >= opened + 60) {
            *self = Window { opened: Some(now), used: 0 };
        }
    }

    /// Seconds until the window closes (60 for a window not yet opened).
    fn reset_in(&self, now: u64) -> u64 {
        self.opened.map_or(60, |opened| (opened + 60).saturating_sub(now).max(1))
    }
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
}

impl Limiter {
    fn usage(&mut self, account: u64, now: u64) -> &mut Usage {
        let usage = self.usage.entry(account).or_default();
        if usage.day != now / 86_400 {
            usage.day = now / 86_400;
            usage.daily_tenths = 0;
        }
        usage
    }

    /// Lets a request in (counting it against the minute limit and as in flight) or refuses it;
    /// a refused request still costs 0.1 daily call.
    pub fn admit(&mut self, account: u64, now: u64) -> Result<(), Refusal> {
        let limits = self.limits.clone();
        let usage = self.usage(account, now);
        usage.minute.roll(now);
        let refusal = if usage.minute.used >= limits.per_minute {
            Some(Refusal::Minute(usage.minute.reset_in(now)))
        } else if usage.in_flight >= limits.concurrency {
            Some(Refusal::Concurrency(1))
        } else if usage.daily_tenths >= limits.daily_calls * 10 {
            Some(Refusal::Daily(86_400 - now % 86_400))
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
                *self.refused.entry(code).or_default() += 1;
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
        let usage = self.usage(account, now);
        let window = if write { &mut usage.write } else { &mut usage.read };
        window.roll(now);
        let before = limit.saturating_sub(window.used);
        if cost > before {
            let exhausted = Exhausted { cost, remaining: before, limit, retry_in: window.reset_in(now) };
            *self.refused.entry("COMPLEXITY_BUDGET_EXHAUSTED").or_default() += 1;
            return Err(exhausted);
        }
        window.used += cost;
        let charge = Charge { cost, before, after: before - cost, reset_in: window.reset_in(now) };
        self.spent += cost;
        Ok(charge)
    }

    /// `RateLimit-Policy` and `RateLimit` for the account's state now (IETF draft structured
    /// fields, as monday sends them).
    pub fn headers(&mut self, account: u64, now: u64) -> (String, String) {
        let limits = self.limits.clone();
        let usage = self.usage(account, now);
        let policy = format!(
            "\"minuteRate\";q={};w=60, \"concurrency\";q={};qu=\"concurrent-requests\", \"complexityMinute\";q={};w=60",
            limits.per_minute, limits.concurrency, limits.read_budget
        );
        let fresh = |w: &Window| w.opened.is_none_or(|opened| now >= opened + 60);
        let minute_left =
            if fresh(&usage.minute) { limits.per_minute } else { limits.per_minute.saturating_sub(usage.minute.used) };
        let budget_left =
            if fresh(&usage.read) { limits.read_budget } else { limits.read_budget.saturating_sub(usage.read.used) };
        let current = format!(
            "\"minuteRate\";r={};t={}, \"concurrency\";r={}, \"complexityMinute\";r={};t={}",
            minute_left,
            usage.minute.reset_in(now),
            limits.concurrency.saturating_sub(usage.in_flight),
            budget_left,
            usage.read.reset_in(now)
        );
        (policy, current)
    }
}
