//! `ProviderConfig::check_iss` on the callbacks the provider fakes send in every `IssMode`.

use patchbay_oauth::{IssError, MondayFlow, Pkce, ProviderConfig};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday, IssMode};
use url::Url;

use crate::support::{secret, CLIENT_SECRET};

const REDIRECT: &str = "https://patchbay.example/oauth/callback";

fn iss_values(callback: &Url) -> Vec<String> {
    callback.query_pairs().filter(|(k, _)| k == "iss").map(|(_, v)| v.into_owned()).collect()
}

type Verdict = Result<(), IssError>;

/// Each mode and what the check must say when `iss` is required and when it is not.
fn cases() -> [(IssMode, Verdict, Verdict); 4] {
    [
        (IssMode::Correct, Ok(()), Ok(())),
        (IssMode::Missing, Err(IssError::Missing), Ok(())),
        (IssMode::Wrong("https://evil.example".into()), Err(IssError::Mismatch), Err(IssError::Mismatch)),
        (IssMode::Duplicated, Err(IssError::Duplicated), Err(IssError::Duplicated)),
    ]
}

#[tokio::test]
async fn google_fake_callbacks_are_judged_by_check_iss_in_every_mode() {
    let fake = FakeGoogle::start().await;
    fake.register_client("gid", CLIENT_SECRET, &[REDIRECT]);
    fake.add_user("1001", "ada@example.com");
    let config = ProviderConfig::google("gid", secret(CLIENT_SECRET)).with_authorize_url(fake.auth_url());
    assert!(config.always_sends_iss);
    let optional = config.clone().with_always_sends_iss(false);
    let url = config.authorize_url("st", Some(&Pkce::generate().challenge), &Url::parse(REDIRECT).unwrap());

    for (mode, required, not_required) in cases() {
        fake.set_iss(mode.clone());
        for denied in [false, true] {
            fake.set_access_denied(denied);
            let values = iss_values(&fake.authorize_headless(&url, "1001"));
            assert_eq!(config.check_iss(&values), required, "{mode:?}, denied: {denied}");
            assert_eq!(optional.check_iss(&values), not_required, "{mode:?}, denied: {denied}");
        }
    }
}

#[tokio::test]
async fn monday_fake_callbacks_are_judged_by_check_iss_in_every_mode() {
    let fake = FakeMonday::start().await;
    fake.register_client("mid", CLIENT_SECRET, &[REDIRECT], &patchbay_oauth::MONDAY_REQUIRED_SCOPES);
    fake.add_account(77, "acme", "Acme");
    fake.add_user(501, 77, "Ada", "ada@acme.example");
    let config =
        ProviderConfig::monday("mid", secret(CLIENT_SECRET), MondayFlow::V2).with_authorize_url(fake.auth_url());
    let required = config.clone().with_always_sends_iss(true);
    let url = config.authorize_url("st", Some(&Pkce::generate().challenge), &Url::parse(REDIRECT).unwrap());

    // monday's default: no iss, accepted because monday is not configured to always send one.
    let default = iss_values(&fake.authorize_headless(&url, "501"));
    assert_eq!(config.check_iss(&default), Ok(()));

    for (mode, when_required, by_default) in cases() {
        fake.set_iss(mode.clone());
        for denied in [false, true] {
            fake.set_access_denied(denied);
            let values = iss_values(&fake.authorize_headless(&url, "501"));
            assert_eq!(required.check_iss(&values), when_required, "{mode:?}, denied: {denied}");
            assert_eq!(config.check_iss(&values), by_default, "{mode:?}, denied: {denied}");
        }
    }
}
