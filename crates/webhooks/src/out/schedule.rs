//! The retry schedule and what each answer means (architecture §4.5; documented in
//! `docs/webhooks.md`, "Events out").

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// Waits before attempts 2 to 7 (attempt 1 is at dispatch): 1 min, 5 min, 30 min, 2 h, 5 h,
/// 10 h — seven attempts over about 17.6 hours, each wait ±10 % jitter.
pub const RETRY_WAITS_SECONDS: [i64; 6] = [60, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600];

/// Attempts per delivery (the first plus one per wait).
pub const MAX_ATTEMPTS: i32 = RETRY_WAITS_SECONDS.len() as i32 + 1;

/// The longest `Retry-After` honoured; a larger value is capped here.
pub const MAX_RETRY_AFTER: Duration = Duration::hours(24);

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status with the `Retry-After` header's value, if any.
    Status(u16, Option<String>),
    /// No HTTP answer within the timeout.
    Timeout,
    /// Connection refused or reset, TLS failure, a refused address: no HTTP answer.
    Network(String),
}

/// What to do after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt; at least this long from now when the receiver said so.
    Retry {
        at_least: Option<Duration>,
    },
    /// Retrying the same bytes will not change the answer (a 4xx other than 408, 425, 429; a
    /// 3xx, since redirects are not followed).
    GiveUp,
}

/// 2xx delivered; 5xx, 408, 425, 429, timeouts and network errors retried (`Retry-After`
/// honoured on any retried status); other 3xx and 4xx given up at once.
pub fn judge(answer: &Answer, now: DateTime<Utc>) -> Verdict {
    match answer {
        Answer::Status(s, _) if (200..300).contains(s) => Verdict::Delivered,
        Answer::Status(s, retry_after) if *s >= 500 || matches!(s, 408 | 425 | 429) => {
            Verdict::Retry { at_least: retry_after.as_deref().and_then(|v| parse_retry_after(v, now)) }
        }
        Answer::Status(..) => Verdict::GiveUp,
        Answer::Timeout | Answer::Network(_) => Verdict::Retry { at_least: None },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]; `None` when
/// unparseable or in the past.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::seconds(value.parse::<i64>().unwrap_or(i64::MAX / 1000).min(MAX_RETRY_AFTER.num_seconds()))
    } else {
        DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc) - now
    };
    (wait > Duration::zero()).then(|| wait.min(MAX_RETRY_AFTER))
}

/// When attempt `attempts + 1` is due after attempt number `attempts` failed at `now`, or
/// `None` when the schedule is used up. The scheduled wait (with ±10 % jitter) is lengthened
/// to the receiver's `Retry-After` when that is longer.
pub fn next_attempt(attempts: i32, now: DateTime<Utc>, at_least: Option<Duration>) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let base = *RETRY_WAITS_SECONDS.get(index)?;
    let jitter = rand::thread_rng().gen_range(-(base / 10)..=base / 10);
    let wait = Duration::seconds(base + jitter);
    Some(now + at_least.map_or(wait, |floor| wait.max(floor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_attempts_over_most_of_a_day() {
        let now = Utc::now();
        let mut at = now;
        for attempt in 1..MAX_ATTEMPTS {
            let next = next_attempt(attempt, at, None).expect("scheduled");
            let base = RETRY_WAITS_SECONDS[usize::try_from(attempt - 1).unwrap()];
            let wait = (next - at).num_seconds();
            assert!((base - base / 10..=base + base / 10).contains(&wait), "attempt {attempt}: {wait}");
            at = next;
        }
        assert_eq!(next_attempt(MAX_ATTEMPTS, at, None), None, "then exhausted");
        let total = (at - now).num_seconds();
        assert!((14 * 3600..=20 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn answers_are_judged_and_retry_after_is_honoured() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(judge(&Answer::Status(204, None), now), Verdict::Delivered);
        assert_eq!(judge(&Answer::Status(500, None), now), Verdict::Retry { at_least: None });
        assert_eq!(
            judge(&Answer::Status(429, Some("120".into())), now),
            Verdict::Retry { at_least: Some(Duration::seconds(120)) }
        );
        let dated = Some("Sat, 05 Dec 2026 12:10:00 GMT".into());
        assert_eq!(judge(&Answer::Status(503, dated), now), Verdict::Retry { at_least: Some(Duration::minutes(10)) });
        assert_eq!(judge(&Answer::Status(429, Some("soon".into())), now), Verdict::Retry { at_least: None });
        assert_eq!(
            judge(&Answer::Status(429, Some("999999999".into())), now),
            Verdict::Retry { at_least: Some(MAX_RETRY_AFTER) }
        );
        assert_eq!(judge(&Answer::Status(408, None), now), Verdict::Retry { at_least: None });
        assert_eq!(judge(&Answer::Timeout, now), Verdict::Retry { at_least: None });
        assert_eq!(judge(&Answer::Network("refused".into()), now), Verdict::Retry { at_least: None });
        for given_up in [301, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(judge(&Answer::Status(given_up, None), now), Verdict::GiveUp, "{given_up}");
        }
        // A Retry-After longer than the scheduled wait wins; a shorter one does not shorten it.
        let next = next_attempt(1, now, Some(Duration::hours(1))).unwrap();
        assert_eq!(next, now + Duration::hours(1));
        let next = next_attempt(1, now, Some(Duration::seconds(1))).unwrap();
        assert!(next - now >= Duration::seconds(54));
    }
}
