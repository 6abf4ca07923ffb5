//! Where a connect may send the browser back: only to allowlisted app origins, compared as
//! exact strings after parsing (security.md F1: no open redirector).

use url::Url;

/// The longest `return_to` accepted (browsers and proxies cut longer URLs unpredictably).
pub const MAX_RETURN_TO: usize = 2048;

/// A `return_to` whose origin is allowlisted: the only way to make one is [`ReturnTo::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(Url);

impl ReturnTo {
    /// Parses and checks a `return_to` against the allowed origins.
    pub fn parse(text: &str, allowed: &[String]) -> Result<Self, TargetError> {
        return_to(text, allowed).map(Self)
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

/// An `opener_origin` that is exactly an allowlisted origin: made only by [`OpenerOrigin::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenerOrigin(String);

impl OpenerOrigin {
    /// Parses and checks an opener origin against the allowed origins.
    pub fn parse(text: &str, allowed: &[String]) -> Result<Self, TargetError> {
        opener_origin(text, allowed).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a return target was refused (the message names the field, never echoes the value).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` must be at most 2048 characters")]
    TooLong(&'static str),
    #[error("`{0}` must be an absolute https (or http) URL")]
    NotAbsolute(&'static str),
    #[error("`{0}` must not contain credentials")]
    Credentials(&'static str),
    #[error("`{0}` is not on PATCHBAY_RETURN_TO_ORIGINS")]
    NotAllowed(&'static str),
    #[error("`{0}` must be an origin (scheme://host[:port]) with no path")]
    NotAnOrigin(&'static str),
}

/// A `return_to` URL whose origin is allowlisted.
fn return_to(text: &str, allowed: &[String]) -> Result<Url, TargetError> {
    const FIELD: &str = "return_to";
    if text.len() > MAX_RETURN_TO {
        return Err(TargetError::TooLong(FIELD));
    }
    // Reject anything a browser might resolve differently from us: backslashes, control and
    // whitespace characters, and scheme-relative or relative forms.
    if text.contains('\\') || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(TargetError::NotAbsolute(FIELD));
    }
    let url = Url::parse(text).map_err(|_| TargetError::NotAbsolute(FIELD))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() || !text.contains("://") {
        return Err(TargetError::NotAbsolute(FIELD));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials(FIELD));
    }
    let origin = url.origin().ascii_serialization();
    if !allowed.contains(&origin) {
        return Err(TargetError::NotAllowed(FIELD));
    }
    Ok(url)
}

/// An `opener_origin` that is exactly an allowlisted origin.
fn opener_origin(text: &str, allowed: &[String]) -> Result<String, TargetError> {
    const FIELD: &str = "opener_origin";
    if text.len() > MAX_RETURN_TO {
        return Err(TargetError::TooLong(FIELD));
    }
    let url = Url::parse(text).map_err(|_| TargetError::NotAnOrigin(FIELD))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(TargetError::NotAnOrigin(FIELD));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials(FIELD));
    }
    let origin = url.origin().ascii_serialization();
    if text.trim_end_matches('/') != origin {
        return Err(TargetError::NotAnOrigin(FIELD));
    }
    if !allowed.contains(&origin) {
        return Err(TargetError::NotAllowed(FIELD));
    }
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https://app.example".to_string()]
    }

    #[test]
    fn the_open_redirect_table_is_refused() {
        // security.md F1, plus variants.
        for target in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "%2F%2Fevil.example",
            "https://app.example.evil.example",
            "https://app.example@evil.example",
            "https://user:pw@app.example/cb",
            "/relative/path",
            "https://app.example\\@evil.example",
            "http://app.example/cb",
            "https://app.example:8443/cb",
            " https://app.example/cb",
        ] {
            assert!(return_to(target, &allowed()).is_err(), "{target} is refused");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_RETURN_TO));
        assert_eq!(return_to(&long, &allowed()), Err(TargetError::TooLong("return_to")), "a 2 KiB+ target is refused");
        let ok = return_to("https://app.example/connected?x=1", &allowed()).unwrap();
        assert_eq!(ok.as_str(), "https://app.example/connected?x=1");
    }

    #[test]
    fn opener_origins_must_be_exact() {
        for origin in [
            "https://app.example/",
            "https://app.example/path",
            "https://evil.example",
            "null",
            "*",
            "https://app.example.evil.example",
        ] {
            let result = opener_origin(origin, &allowed());
            if origin == "https://app.example/" {
                assert_eq!(result.unwrap(), "https://app.example", "a trailing slash is the same origin");
            } else {
                assert!(result.is_err(), "{origin} is refused");
            }
        }
    }
}
