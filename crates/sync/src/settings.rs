//! Sync tunables, converted from configuration by the API crate.

use patchbay_store::BreakerPolicy;
use std::time::Duration;
use url::Url;

/// A monday.com account plan: decides the per-minute request limit and the daily call limit
/// (providers.md B6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MondayPlan {
    Free,
    Basic,
    Standard,
    Pro,
    Enterprise,
}

impl MondayPlan {
    /// Parses `PATCHBAY_MONDAY_PLAN`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "free" | "trial" => Self::Free,
            "basic" => Self::Basic,
            "standard" => Self::Standard,
            "pro" => Self::Pro,
            "enterprise" => Self::Enterprise,
            _ => return None,
        })
    }
}

/// Everything sync can be tuned by.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Root under which `/calendar/v3/…` lives (`https://www.googleapis.com`).
    pub google_api_url: Url,
    /// The GraphQL endpoint (`https://api.monday.com/v2`).
    pub monday_api_url: Url,
    /// Pinned `API-Version` header.
    pub monday_api_version: String,
    pub monday_plan: MondayPlan,
    /// monday complexity points per minute, for reads and separately for writes (app tokens: 5M).
    pub monday_complexity_per_minute: i64,
    /// A full calendar sync reaches this far back.
    pub google_days_back: u32,
    /// Google Calendar API quota per user per minute.
    pub google_user_per_minute: u32,
    /// Google Calendar API quota per project (client id) per minute.
    pub google_project_per_minute: u32,
    /// The length of the providers' per-minute windows: every "per minute" budget above (and
    /// monday's request limit) is that many units per `rate_window`. 60 s against the real
    /// providers; a test against fakes whose windows are shortened alike sets the same length,
    /// so minutes of rate-limited traffic run in seconds. Daily limits are not scaled.
    pub rate_window: Duration,
    /// The Google OAuth client id: names the project's quota bucket.
    pub google_client_id: String,
    /// Backstop interval when a healthy change signal exists.
    pub backstop_with_signal: Duration,
    /// Backstop interval without one.
    pub backstop_without_signal: Duration,
    /// How often monday items get a full reconciliation.
    pub monday_full_every: Duration,
    /// Longest in-process wait for budget before the job yields.
    pub max_budget_wait: Duration,
    /// Per-request timeout for provider calls.
    pub request_timeout: Duration,
    pub breaker: BreakerPolicy,
    /// Page size asked of Google `events.list` (`maxResults`, at most 2500).
    pub google_page_size: u32,
    /// Page size asked of monday `items_page` (`limit`, at most 500).
    pub monday_page_size: u32,
    /// Largest proxied response body.
    pub proxy_max_body: usize,
    /// Records deleted per purge batch.
    pub purge_batch: u32,
    /// Google Calendar push channels; `None`: no channels are made (polling only).
    pub google_push: Option<GooglePush>,
}

/// Where and for how long Google push channels are made.
#[derive(Clone, Debug)]
pub struct GooglePush {
    /// `{PATCHBAY_PUBLIC_URL}/webhooks/google/calendar` (Google requires HTTPS).
    pub address: Url,
    /// The lifetime asked for (`params.ttl`); Google may grant less.
    pub ttl: Duration,
    /// How long before expiry a channel is replaced.
    pub renew_margin: Duration,
}

impl SyncSettings {
    /// Defaults against the providers' real hosts.
    pub fn new(google_api_url: Url, monday_api_url: Url) -> Self {
        Self {
            google_api_url,
            monday_api_url,
            monday_api_version: "2026-10".into(),
            monday_plan: MondayPlan::Pro,
            monday_complexity_per_minute: 5_000_000,
            google_days_back: 365,
            google_user_per_minute: 600,
            google_project_per_minute: 10_000,
            rate_window: Duration::from_secs(60),
            google_client_id: String::new(),
            backstop_with_signal: Duration::from_secs(15 * 60),
            backstop_without_signal: Duration::from_secs(5 * 60),
            monday_full_every: Duration::from_secs(24 * 3600),
            max_budget_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            breaker: BreakerPolicy { failure_threshold: 5, base_cooldown_ms: 30_000, max_cooldown_ms: 30 * 60_000 },
            google_page_size: 250,
            monday_page_size: 100,
            proxy_max_body: 5 * 1024 * 1024,
            purge_batch: 500,
            google_push: None,
        }
    }
}
