//! Retention periods (architecture §3 "Retention") and the `retention.prune` sweep's pace.

use super::ConfigError;
use patchbay_webhooks::RetentionSettings;

/// Days a setting may ask for at most (ten years).
const MAX_DAYS: u32 = 3_650;

/// The retention sweep.
#[derive(clap::Args, Clone, Debug)]
pub struct RetentionArgs {
    /// Days a processed inbox event (its sealed body and dedup key) is kept after receipt (4 to
    /// 3650: dedup keys are kept at least 75 hours, the longest sender retry window).
    #[arg(
        long = "inbox-retention-processed-days",
        env = "PATCHBAY_INBOX_RETENTION_PROCESSED_DAYS",
        default_value_t = 7,
        global = true
    )]
    pub retention_inbox_processed_days: u32,
    /// Days a failed inbox event is kept after receipt, so it can be reprocessed (4 to 3650).
    #[arg(
        long = "inbox-retention-failed-days",
        env = "PATCHBAY_INBOX_RETENTION_FAILED_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub retention_inbox_failed_days: u32,
    /// Days a delivered or exhausted event delivery is kept after it finished (1 to 3650).
    #[arg(
        long = "event-delivery-retention-days",
        env = "PATCHBAY_EVENT_DELIVERY_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub retention_delivery_days: u32,
    /// Days a dispatched outbox event is kept after dispatch once no delivery refers to it (1 to
    /// 3650).
    #[arg(long = "outbox-retention-days", env = "PATCHBAY_OUTBOX_RETENTION_DAYS", default_value_t = 7, global = true)]
    pub retention_outbox_days: u32,
    /// Hours a Google push channel row is kept after the channel expired (1 to 720).
    #[arg(
        long = "watch-channel-retention-hours",
        env = "PATCHBAY_WATCH_CHANNEL_RETENTION_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub retention_watch_channel_hours: u32,
    /// Minutes between retention sweeps (1 to 1440).
    #[arg(
        long = "retention-interval-minutes",
        env = "PATCHBAY_RETENTION_INTERVAL_MINUTES",
        default_value_t = 60,
        global = true
    )]
    pub retention_interval_minutes: u32,
    /// Rows one retention statement deletes at most (1 to 10000).
    #[arg(long = "retention-batch", env = "PATCHBAY_RETENTION_BATCH", default_value_t = 1_000, global = true)]
    pub retention_batch: u32,
}

fn within(variable: &'static str, value: u32, low: u32, high: u32) -> Result<i64, ConfigError> {
    if (low..=high).contains(&value) {
        Ok(i64::from(value))
    } else {
        Err(ConfigError::new(variable, format!("must be between {low} and {high}")))
    }
}

impl RetentionArgs {
    pub(super) fn settings(&self) -> Result<RetentionSettings, ConfigError> {
        let days = |variable, value, low| within(variable, value, low, MAX_DAYS).map(chrono::Duration::days);
        let minutes = within("PATCHBAY_RETENTION_INTERVAL_MINUTES", self.retention_interval_minutes, 1, 1_440)?;
        Ok(RetentionSettings {
            // 4 days: the least whole number of days above the 75-hour dedup floor.
            inbox_processed: days("PATCHBAY_INBOX_RETENTION_PROCESSED_DAYS", self.retention_inbox_processed_days, 4)?,
            inbox_failed: days("PATCHBAY_INBOX_RETENTION_FAILED_DAYS", self.retention_inbox_failed_days, 4)?,
            deliveries: days("PATCHBAY_EVENT_DELIVERY_RETENTION_DAYS", self.retention_delivery_days, 1)?,
            outbox: days("PATCHBAY_OUTBOX_RETENTION_DAYS", self.retention_outbox_days, 1)?,
            watch_channels: chrono::Duration::hours(within(
                "PATCHBAY_WATCH_CHANNEL_RETENTION_HOURS",
                self.retention_watch_channel_hours,
                1,
                720,
            )?),
            batch: u32::try_from(within("PATCHBAY_RETENTION_BATCH", self.retention_batch, 1, 10_000)?).unwrap_or(1_000),
            every: std::time::Duration::from_secs(u64::try_from(minutes).unwrap_or(60) * 60),
            ..RetentionSettings::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        retention: RetentionArgs,
    }

    fn parse(args: &[&str]) -> Result<RetentionSettings, ConfigError> {
        let mut all = vec!["patchbay"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").retention.settings()
    }

    #[test]
    fn defaults_are_the_documented_periods() {
        let s = parse(&[]).expect("defaults are valid");
        assert_eq!(s.inbox_processed, chrono::Duration::days(7));
        assert_eq!(s.inbox_failed, chrono::Duration::days(30));
        assert_eq!(s.deliveries, chrono::Duration::days(30));
        assert_eq!(s.outbox, chrono::Duration::days(7));
        assert_eq!(s.watch_channels, chrono::Duration::hours(24));
        assert_eq!((s.batch, s.every), (1_000, std::time::Duration::from_secs(3_600)));
    }

    #[test]
    fn a_period_shorter_than_the_dedup_floor_or_out_of_range_is_refused_by_name() {
        let cases: [(&[&str], &str); 4] = [
            (&["--inbox-retention-processed-days", "3"], "PATCHBAY_INBOX_RETENTION_PROCESSED_DAYS"),
            (&["--inbox-retention-failed-days", "0"], "PATCHBAY_INBOX_RETENTION_FAILED_DAYS"),
            (&["--retention-batch", "0"], "PATCHBAY_RETENTION_BATCH"),
            (&["--outbox-retention-days", "4000"], "PATCHBAY_OUTBOX_RETENTION_DAYS"),
        ];
        for (args, variable) in cases {
            let error = parse(args).expect_err("refused");
            assert!(error.to_string().starts_with(variable), "{args:?}: {error}");
        }
    }
}
