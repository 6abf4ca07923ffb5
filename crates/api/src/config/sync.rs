//! Sync tunables (architecture §4.3): backstop intervals, provider budgets and the longest
//! in-process budget wait, turned with the provider settings into [`SyncSettings`].

use super::args::ProviderSettings;
use super::ConfigError;
use patchbay_oauth::ProviderId;
use patchbay_sync::{GooglePush, MondayPlan, SyncSettings};
use std::time::Duration;
use url::Url;

const GOOGLE_API_URL: &str = "https://www.googleapis.com";
const MONDAY_API_URL: &str = "https://api.monday.com/v2";

/// Sync scheduling and budgets.
#[derive(clap::Args, Clone, Debug)]
pub struct SyncArgs {
    /// Seconds between scheduled syncs of a connection without a healthy change signal.
    #[arg(long, env = "PATCHBAY_SYNC_BACKSTOP_SECONDS", default_value_t = 300, global = true)]
    pub backstop_seconds: u64,
    /// Seconds between scheduled syncs when push channels / webhooks watch every part.
    #[arg(long, env = "PATCHBAY_SYNC_BACKSTOP_WITH_SIGNAL_SECONDS", default_value_t = 900, global = true)]
    pub backstop_with_signal_seconds: u64,
    /// Hours between full reconciliations of monday items.
    #[arg(long, env = "PATCHBAY_MONDAY_FULL_SYNC_HOURS", default_value_t = 24, global = true)]
    pub monday_full_sync_hours: u64,
    /// Google Calendar API quota per user per minute.
    #[arg(long, env = "PATCHBAY_GOOGLE_USER_REQUESTS_PER_MINUTE", default_value_t = 600, global = true)]
    pub google_user_requests_per_minute: u32,
    /// Google Calendar API quota per project per minute.
    #[arg(long, env = "PATCHBAY_GOOGLE_PROJECT_REQUESTS_PER_MINUTE", default_value_t = 10_000, global = true)]
    pub google_project_requests_per_minute: u32,
    /// monday complexity points per minute (reads and writes each).
    #[arg(long, env = "PATCHBAY_MONDAY_COMPLEXITY_PER_MINUTE", default_value_t = 5_000_000, global = true)]
    pub monday_complexity_per_minute: i64,
    /// Longest in-process wait for provider budget before a sync job yields.
    #[arg(long, env = "PATCHBAY_SYNC_MAX_BUDGET_WAIT_SECONDS", default_value_t = 10, global = true)]
    pub max_budget_wait_seconds: u64,
    /// Events asked of Google per `events.list` page (`maxResults`, 1–2500).
    #[arg(long, env = "PATCHBAY_GOOGLE_PAGE_SIZE", default_value_t = 250, global = true)]
    pub google_page_size: u32,
    /// Items asked of monday per `items_page` (`limit`, 1–500).
    #[arg(long, env = "PATCHBAY_MONDAY_PAGE_SIZE", default_value_t = 100, global = true)]
    pub monday_page_size: u32,
    /// Google Calendar push channels: after a sync, each calendar is watched at
    /// `{PATCHBAY_PUBLIC_URL}/webhooks/google/calendar` (Google requires an HTTPS address).
    #[arg(long, env = "PATCHBAY_GOOGLE_PUSH", default_value_t = false, global = true)]
    pub google_push: bool,
    /// The lifetime asked for a push channel (`params.ttl`, seconds; Google may grant less).
    #[arg(long, env = "PATCHBAY_GOOGLE_PUSH_TTL_SECONDS", default_value_t = 604_800, global = true)]
    pub google_push_ttl_seconds: u64,
    /// Seconds before a push channel's expiry at which it is replaced by a new one.
    #[arg(long, env = "PATCHBAY_GOOGLE_PUSH_RENEW_MARGIN_SECONDS", default_value_t = 86_400, global = true)]
    pub google_push_renew_margin_seconds: u64,
}

impl SyncArgs {
    /// The sync settings, given the validated provider settings.
    pub(super) fn settings(&self, providers: &ProviderSettings, public_url: &Url) -> Result<SyncSettings, ConfigError> {
        let plan = MondayPlan::parse(&providers.monday_plan).ok_or_else(|| {
            ConfigError::new("PATCHBAY_MONDAY_PLAN", "must be `free`, `basic`, `standard`, `pro` or `enterprise`")
        })?;
        positive("PATCHBAY_SYNC_BACKSTOP_SECONDS", self.backstop_seconds)?;
        positive("PATCHBAY_SYNC_BACKSTOP_WITH_SIGNAL_SECONDS", self.backstop_with_signal_seconds)?;
        positive("PATCHBAY_MONDAY_FULL_SYNC_HOURS", self.monday_full_sync_hours)?;
        positive("PATCHBAY_GOOGLE_USER_REQUESTS_PER_MINUTE", self.google_user_requests_per_minute.into())?;
        positive("PATCHBAY_GOOGLE_PROJECT_REQUESTS_PER_MINUTE", self.google_project_requests_per_minute.into())?;
        if self.monday_complexity_per_minute <= 0 {
            return Err(ConfigError::new("PATCHBAY_MONDAY_COMPLEXITY_PER_MINUTE", "must be at least 1"));
        }
        if providers.google_sync_days_back == 0 {
            return Err(ConfigError::new("PATCHBAY_GOOGLE_SYNC_DAYS_BACK", "must be at least 1"));
        }
        let version = providers.monday_api_version.trim();
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return Err(ConfigError::new("PATCHBAY_MONDAY_API_VERSION", "must look like `2026-10`"));
        }
        let google_api_url = providers.google_api_url.clone().unwrap_or_else(|| default_url(GOOGLE_API_URL));
        let monday_api_url = providers.monday_api_url.clone().unwrap_or_else(|| default_url(MONDAY_API_URL));
        let mut settings = SyncSettings::new(google_api_url, monday_api_url);
        settings.monday_api_version = version.to_owned();
        settings.monday_plan = plan;
        settings.monday_complexity_per_minute = self.monday_complexity_per_minute;
        settings.google_days_back = providers.google_sync_days_back;
        settings.google_user_per_minute = self.google_user_requests_per_minute;
        settings.google_project_per_minute = self.google_project_requests_per_minute;
        settings.google_client_id =
            providers.registry.get(ProviderId::Google).map(|c| c.client_id.clone()).unwrap_or_default();
        settings.backstop_without_signal = Duration::from_secs(self.backstop_seconds);
        settings.backstop_with_signal = Duration::from_secs(self.backstop_with_signal_seconds);
        settings.monday_full_every = Duration::from_secs(self.monday_full_sync_hours.saturating_mul(3600));
        settings.max_budget_wait = Duration::from_secs(self.max_budget_wait_seconds);
        if !(1..=2500).contains(&self.google_page_size) {
            return Err(ConfigError::new("PATCHBAY_GOOGLE_PAGE_SIZE", "must be between 1 and 2500"));
        }
        if !(1..=500).contains(&self.monday_page_size) {
            return Err(ConfigError::new("PATCHBAY_MONDAY_PAGE_SIZE", "must be between 1 and 500"));
        }
        settings.google_page_size = self.google_page_size;
        settings.monday_page_size = self.monday_page_size;
        settings.google_push = self.google_push(public_url)?;
        Ok(settings)
    }

    fn google_push(&self, public_url: &Url) -> Result<Option<GooglePush>, ConfigError> {
        if !self.google_push {
            return Ok(None);
        }
        positive("PATCHBAY_GOOGLE_PUSH_TTL_SECONDS", self.google_push_ttl_seconds)?;
        if self.google_push_renew_margin_seconds >= self.google_push_ttl_seconds {
            return Err(ConfigError::new(
                "PATCHBAY_GOOGLE_PUSH_RENEW_MARGIN_SECONDS",
                "must be below PATCHBAY_GOOGLE_PUSH_TTL_SECONDS",
            ));
        }
        let address = public_url
            .join("webhooks/google/calendar")
            .map_err(|_| ConfigError::new("PATCHBAY_PUBLIC_URL", "cannot hold the Google push path"))?;
        Ok(Some(GooglePush {
            address,
            ttl: Duration::from_secs(self.google_push_ttl_seconds),
            renew_margin: Duration::from_secs(self.google_push_renew_margin_seconds),
        }))
    }
}

fn positive(variable: &'static str, value: u64) -> Result<(), ConfigError> {
    match value {
        0 => Err(ConfigError::new(variable, "must be at least 1")),
        _ => Ok(()),
    }
}

fn default_url(text: &str) -> Url {
    Url::parse(text).expect("the providers' API roots are valid URLs")
}
