//! Events-out tunables (architecture §4.5): the per-attempt timeout, when a failing endpoint is
//! disabled, and the delivery loop's pace. `PATCHBAY_ALLOW_PRIVATE_ENDPOINTS` stays in
//! `args.rs` (it predates this file).

use super::ConfigError;
use std::time::Duration;

/// The events-out loop.
#[derive(clap::Args, Clone, Debug)]
pub struct EventsOutArgs {
    /// Seconds one delivery attempt may take, connecting included (1 to 60).
    #[arg(
        long = "events-out-timeout-seconds",
        env = "PATCHBAY_EVENTS_OUT_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub timeout_seconds: u64,
    /// Hours an endpoint may fail every attempt before it is disabled (1 to 720).
    #[arg(
        long = "events-out-disable-after-hours",
        env = "PATCHBAY_EVENTS_OUT_DISABLE_AFTER_HOURS",
        default_value_t = 72,
        global = true
    )]
    pub disable_after_hours: u64,
    /// Milliseconds between delivery rounds (100 to 60000).
    #[arg(long = "events-out-poll-ms", env = "PATCHBAY_EVENTS_OUT_POLL_MS", default_value_t = 1_000, global = true)]
    pub poll_ms: u64,
    /// Deliveries attempted per round (1 to 1000).
    #[arg(long = "events-out-batch", env = "PATCHBAY_EVENTS_OUT_BATCH", default_value_t = 100, global = true)]
    pub batch: u32,
    /// Attempts in flight at once (1 to 256).
    #[arg(
        long = "events-out-concurrency",
        env = "PATCHBAY_EVENTS_OUT_CONCURRENCY",
        default_value_t = 16,
        global = true
    )]
    pub concurrency: usize,
}

/// Validated events-out settings.
#[derive(Clone, Debug)]
pub struct EventsOutSettings {
    pub timeout: Duration,
    pub disable_after: chrono::Duration,
    pub poll: Duration,
    pub batch: u32,
    pub concurrency: usize,
}

impl EventsOutArgs {
    pub(super) fn settings(&self) -> Result<EventsOutSettings, ConfigError> {
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err(ConfigError::new("PATCHBAY_EVENTS_OUT_TIMEOUT_SECONDS", "must be between 1 and 60"));
        }
        if !(1..=720).contains(&self.disable_after_hours) {
            return Err(ConfigError::new("PATCHBAY_EVENTS_OUT_DISABLE_AFTER_HOURS", "must be between 1 and 720"));
        }
        if !(100..=60_000).contains(&self.poll_ms) {
            return Err(ConfigError::new("PATCHBAY_EVENTS_OUT_POLL_MS", "must be between 100 and 60000"));
        }
        if !(1..=1_000).contains(&self.batch) {
            return Err(ConfigError::new("PATCHBAY_EVENTS_OUT_BATCH", "must be between 1 and 1000"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::new("PATCHBAY_EVENTS_OUT_CONCURRENCY", "must be between 1 and 256"));
        }
        Ok(EventsOutSettings {
            timeout: Duration::from_secs(self.timeout_seconds),
            disable_after: chrono::Duration::hours(i64::try_from(self.disable_after_hours).unwrap_or(72)),
            poll: Duration::from_millis(self.poll_ms),
            batch: self.batch,
            concurrency: self.concurrency,
        })
    }
}
