//! The authorization response's `iss` parameter (RFC 9207 §2.4; security.md B3): the one check
//! every callback runs before its code goes anywhere.

use crate::provider::ProviderConfig;

/// Why an authorization response's `iss` values were refused. `Display` never shows the values
/// (they come from the query string and are attacker-controlled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssError {
    /// No `iss`, but the provider always sends one ([`ProviderConfig::always_sends_iss`]).
    #[error("the authorization response has no `iss` although the provider always sends one")]
    Missing,
    /// One `iss` that is not exactly the configured issuer.
    #[error("the authorization response's `iss` is not the expected issuer")]
    Mismatch,
    /// More than one `iss` (even if all are equal to the issuer).
    #[error("the authorization response carries more than one `iss`")]
    Duplicated,
}

impl IssError {
    /// A short machine-readable reason for logs and error codes.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "iss_missing",
            Self::Mismatch => "iss_mismatch",
            Self::Duplicated => "iss_duplicated",
        }
    }
}

impl ProviderConfig {
    /// Checks every `iss` value of one authorization response — success *and* error responses —
    /// against this provider, before the code is sent anywhere (RFC 9207 §2.4):
    ///
    /// - no value: `Ok` unless [`ProviderConfig::always_sends_iss`], then [`IssError::Missing`];
    /// - exactly one value, equal to [`ProviderConfig::issuer`] by simple string comparison
    ///   (no case folding, no trailing-slash or scheme normalisation): `Ok`;
    /// - exactly one other value (an empty one included): [`IssError::Mismatch`];
    /// - two or more values: [`IssError::Duplicated`].
    ///
    /// `values` are the URL-decoded `iss` query parameters in the order they arrived (for a query
    /// parsed with `url`, `query_pairs().filter(|(k, _)| k == "iss")`).
    pub fn check_iss<S: AsRef<str>>(&self, values: &[S]) -> Result<(), IssError> {
        match values {
            [] if self.always_sends_iss => Err(IssError::Missing),
            [] => Ok(()),
            [iss] if iss.as_ref() == self.issuer => Ok(()),
            [_] => Err(IssError::Mismatch),
            _ => Err(IssError::Duplicated),
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::provider::MondayFlow;

    fn google() -> ProviderConfig {
        ProviderConfig::google("gid", SecretString::from("s"))
    }

    fn monday() -> ProviderConfig {
        ProviderConfig::monday("mid", SecretString::from("s"), MondayFlow::V2)
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn defaults_google_always_sends_iss_and_monday_does_not() {
        assert!(google().always_sends_iss);
        assert!(!monday().always_sends_iss);
        assert!(!ProviderConfig::monday("mid", SecretString::from("s"), MondayFlow::Legacy).always_sends_iss);
        assert!(!google().with_always_sends_iss(false).always_sends_iss);
        assert!(monday().with_always_sends_iss(true).always_sends_iss);
    }

    #[test]
    fn no_iss_is_ok_only_when_not_required() {
        assert_eq!(google().check_iss(&NONE), Err(IssError::Missing));
        assert_eq!(monday().check_iss(&NONE), Ok(()));
        assert_eq!(google().with_always_sends_iss(false).check_iss(&NONE), Ok(()));
        assert_eq!(monday().with_always_sends_iss(true).check_iss(&NONE), Err(IssError::Missing));
    }

    #[test]
    fn exactly_the_issuer_is_ok_whether_required_or_not() {
        assert_eq!(google().check_iss(&["https://accounts.google.com"]), Ok(()));
        assert_eq!(monday().check_iss(&["https://auth.monday.com"]), Ok(()));
        let owned = vec!["https://accounts.google.com".to_owned()];
        assert_eq!(google().with_always_sends_iss(false).check_iss(&owned), Ok(()));
        let custom = google().with_issuer("http://127.0.0.1:9/");
        assert_eq!(custom.check_iss(&["http://127.0.0.1:9/"]), Ok(()));
    }

    #[test]
    fn any_other_single_value_is_a_mismatch_by_simple_string_comparison() {
        // security.md B3's matrix, plus the other provider's issuer and an empty value.
        for wrong in [
            "https://accounts.google.com/",
            "https://Accounts.google.com",
            "accounts.google.com",
            "http://accounts.google.com",
            "https://evil.example",
            "https://auth.monday.com",
            " https://accounts.google.com",
            "",
        ] {
            assert_eq!(google().check_iss(&[wrong]), Err(IssError::Mismatch), "{wrong:?}");
            assert_eq!(google().with_always_sends_iss(false).check_iss(&[wrong]), Err(IssError::Mismatch));
        }
        assert_eq!(monday().check_iss(&["https://accounts.google.com"]), Err(IssError::Mismatch));
    }

    #[test]
    fn two_or_more_values_are_duplicated_even_when_all_are_correct() {
        let issuer = "https://accounts.google.com";
        assert_eq!(google().check_iss(&[issuer, issuer]), Err(IssError::Duplicated));
        assert_eq!(google().check_iss(&[issuer, "https://evil.example"]), Err(IssError::Duplicated));
        assert_eq!(monday().check_iss(&["https://auth.monday.com"; 3]), Err(IssError::Duplicated));
    }

    #[test]
    fn reasons_are_stable_and_display_shows_no_value() {
        assert_eq!(IssError::Missing.reason(), "iss_missing");
        assert_eq!(IssError::Mismatch.reason(), "iss_mismatch");
        assert_eq!(IssError::Duplicated.reason(), "iss_duplicated");
        let shown = format!("{} {:?}", IssError::Mismatch, IssError::Mismatch);
        assert!(!shown.contains("evil") && !shown.contains("http"), "{shown}");
    }
}
