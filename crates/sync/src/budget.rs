//! Provider rate budgets (architecture §4.3): GCRA buckets in the store, so every instance draws
//! on the same budget. A call waits in process for at most `max_budget_wait`; past that the caller
//! gets [`SyncError::RateLimited`] with the time the budget returns, and its job yields without
//! spending an attempt.

use crate::{MondayPlan, SyncError, SyncSettings};
use chrono::{DateTime, Utc};
use patchbay_store::{jobs::Clock, BucketKey, BudgetStore, GcraStep, ProviderId};
use std::sync::Arc;
use std::time::Duration;

const DAY_US: i64 = 86_400_000_000;

/// One bucket and how much one call takes from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub key: BucketKey,
    /// Units per period (requests, complexity points).
    pub limit: i64,
    pub period_us: i64,
    /// Units this call takes.
    pub cost: i64,
}

/// The share of a provider limit Patchbay plans to use: providers count in sliding or fixed
/// windows on their own clocks, so spacing calls at exactly the limit would still be refused now
/// and then. 95 % keeps the steady state free of 429s and the budget ≥ 90 % used.
const PLANNED_SHARE: (i64, i64) = (95, 100);

/// The burst a bucket allows after an idle period, as a share of its period. A sliding-window
/// provider counts the burst on top of the steady rate in the first window, so it stays small:
/// 5 % burst + 95 % rate = the provider's limit in any window.
const BURST_SHARE: (i64, i64) = (5, 100);

impl Charge {
    fn step(&self, cost: i64, force: bool) -> GcraStep {
        let planned = (i128::from(self.limit) * i128::from(PLANNED_SHARE.0) / i128::from(PLANNED_SHARE.1)).max(1);
        // Emission interval in µs per unit, kept fractional by scaling the cost first.
        let increment_us = (i128::from(cost) * i128::from(self.period_us) / planned) as i64;
        let burst = self.period_us * BURST_SHARE.0 / BURST_SHARE.1;
        // A single call larger than the burst (a heavy monday query) still fits when idle, unless
        // it is larger than the whole period's limit: that one can never be afforded.
        GcraStep { increment_us, capacity_us: burst.max(increment_us.min(self.period_us)), force }
    }
}

/// Which budgets one provider call draws on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spend {
    /// A Google Calendar request: the user's and the project's per-minute quotas.
    Google { user: String, project: String },
    /// A monday.com query or mutation of the account, with its estimated complexity.
    Monday { account: String, write: bool, complexity: i64 },
}

/// The budgets of every provider, over the store.
#[derive(Clone)]
pub struct Budgets {
    store: Arc<dyn BudgetStore>,
    settings: Arc<SyncSettings>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets").finish_non_exhaustive()
    }
}

/// The minute and daily request limits of a monday plan (A3).
pub fn monday_limits(plan: MondayPlan) -> (i64, i64) {
    match plan {
        MondayPlan::Enterprise => (5_000, 25_000),
        MondayPlan::Pro => (2_500, 10_000),
        MondayPlan::Free | MondayPlan::Basic | MondayPlan::Standard => (1_000, 1_000),
    }
}

/// monday's concurrency limit of a plan (A3).
pub fn monday_concurrency(plan: MondayPlan) -> u32 {
    match plan {
        MondayPlan::Enterprise => 250,
        MondayPlan::Pro => 100,
        MondayPlan::Free | MondayPlan::Basic | MondayPlan::Standard => 40,
    }
}

fn key(provider: ProviderId, key: String, bucket: &str) -> BucketKey {
    BucketKey { provider, key, bucket: bucket.to_owned() }
}

impl Budgets {
    pub fn new(store: Arc<dyn BudgetStore>, settings: Arc<SyncSettings>, clock: Arc<dyn Clock>) -> Self {
        Self { store, settings, clock }
    }

    /// The buckets a spend draws on.
    pub fn charges(&self, spend: &Spend) -> Vec<Charge> {
        // The providers' "minute" (60 s unless a test shortened the fakes' windows alike).
        let minute_us = i64::try_from(self.settings.rate_window.as_micros()).unwrap_or(i64::MAX).max(1);
        match spend {
            Spend::Google { user, project } => vec![
                Charge {
                    key: key(ProviderId::Google, format!("user:{user}"), "rpm"),
                    limit: self.settings.google_user_per_minute.into(),
                    period_us: minute_us,
                    cost: 1,
                },
                Charge {
                    key: key(ProviderId::Google, format!("project:{project}"), "rpm"),
                    limit: self.settings.google_project_per_minute.into(),
                    period_us: minute_us,
                    cost: 1,
                },
            ],
            Spend::Monday { account, write, complexity } => {
                let (per_minute, per_day) = monday_limits(self.settings.monday_plan);
                let account_key = format!("account:{account}");
                vec![
                    Charge {
                        key: key(ProviderId::Monday, account_key.clone(), if *write { "write" } else { "read" }),
                        limit: self.settings.monday_complexity_per_minute,
                        period_us: minute_us,
                        cost: (*complexity).max(1),
                    },
                    Charge {
                        key: key(ProviderId::Monday, account_key.clone(), "rpm"),
                        limit: per_minute,
                        period_us: minute_us,
                        cost: 1,
                    },
                    Charge {
                        key: key(ProviderId::Monday, account_key, "daily"),
                        limit: per_day,
                        period_us: DAY_US,
                        cost: 1,
                    },
                ]
            }
        }
    }

    /// Takes every bucket of `spend`, waiting up to `max_budget_wait` in process; a bucket taken
    /// before another refuses is given back.
    pub async fn acquire(&self, spend: &Spend) -> Result<(), SyncError> {
        let charges = self.charges(spend);
        let deadline = self.clock.now() + chrono::Duration::from_std(self.settings.max_budget_wait).unwrap_or_default();
        loop {
            match self.try_take(&charges).await? {
                None => return Ok(()),
                Some(retry_at) if retry_at <= deadline => {
                    let wait = (retry_at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
                Some(retry_at) => return Err(SyncError::RateLimited(retry_at)),
            }
        }
    }

    /// One attempt over every bucket: `None` when all admitted, else when to try again.
    async fn try_take(&self, charges: &[Charge]) -> Result<Option<DateTime<Utc>>, SyncError> {
        let now = self.clock.now();
        for (i, charge) in charges.iter().enumerate() {
            let verdict = self.store.gcra(&charge.key, charge.step(charge.cost, false), now).await?;
            if !verdict.admitted {
                for taken in &charges[..i] {
                    self.store.gcra(&taken.key, taken.step(-taken.cost, true), now).await?;
                }
                return Ok(Some(verdict.retry_at));
            }
        }
        Ok(None)
    }

    /// A provider said "not before `until`" (429 `Retry-After`, `retry_in_seconds`): the first
    /// bucket of `spend` admits nothing before then, for every instance.
    pub async fn hold_until(&self, spend: &Spend, until: DateTime<Utc>) -> Result<(), SyncError> {
        let now = self.clock.now();
        if let Some(first) = self.charges(spend).into_iter().next() {
            // Push the theoretical arrival time to `until + burst`: nothing is admitted before
            // `until` (admission needs tat - now <= burst).
            let capacity_us = first.step(first.cost, true).capacity_us;
            let probe = GcraStep { increment_us: 0, capacity_us, force: true };
            let verdict = self.store.gcra(&first.key, probe, now).await?;
            let target = until + chrono::Duration::microseconds(capacity_us);
            let missing = (target - verdict.tat.max(now)).num_microseconds().unwrap_or(0);
            if missing > 0 {
                let push = GcraStep { increment_us: missing, capacity_us, force: true };
                self.store.gcra(&first.key, push, now).await?;
            }
        }
        Ok(())
    }

    /// Corrects a monday complexity reservation once the answer says what the query cost.
    pub async fn reconcile(&self, spend: &Spend, charged: i64) -> Result<(), SyncError> {
        if let Spend::Monday { complexity, .. } = spend {
            let delta = charged - complexity;
            if delta != 0 {
                if let Some(first) = self.charges(spend).into_iter().next() {
                    self.store.gcra(&first.key, first.step(delta, true), self.clock.now()).await?;
                }
            }
        }
        Ok(())
    }

    /// The concurrency bucket of a monday account, when the spend has one.
    pub fn concurrency(&self, spend: &Spend) -> Option<(BucketKey, u32)> {
        match spend {
            Spend::Monday { account, .. } => Some((
                key(ProviderId::Monday, format!("account:{account}"), "concurrency"),
                monday_concurrency(self.settings.monday_plan),
            )),
            Spend::Google { .. } => None,
        }
    }

    pub fn store(&self) -> &Arc<dyn BudgetStore> {
        &self.store
    }
}
