//! Associated data: what a ciphertext is bound to (purpose, tenant, connection, …, key id), encoded
//! canonically with length prefixes so that no two different bindings share an encoding.

use crate::envelope::FORMAT_VERSION;

/// What a sealed value is. Its label is part of the associated data, so swapping columns fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// An OAuth access token.
    AccessToken,
    /// An OAuth refresh token.
    RefreshToken,
    /// A whole token response (access, refresh, expiry, scopes) stored as one value.
    TokenSet,
    /// A PKCE code verifier held between the start and callback of an authorization.
    PkceVerifier,
    /// A provider webhook signing secret.
    WebhookSecret,
    /// A push-channel token (e.g. Google Calendar `X-Goog-Channel-Token`).
    ChannelToken,
    /// An outbound endpoint's signing secret.
    EndpointSecret,
    /// A synced record's provider JSON and free text (boards, items, calendars, events).
    Record,
    /// The raw body of a webhook delivery kept in the inbox.
    WebhookBody,
}

impl Purpose {
    /// Every purpose, in declaration order.
    pub const ALL: [Purpose; 9] = [
        Purpose::AccessToken,
        Purpose::RefreshToken,
        Purpose::TokenSet,
        Purpose::PkceVerifier,
        Purpose::WebhookSecret,
        Purpose::ChannelToken,
        Purpose::EndpointSecret,
        Purpose::Record,
        Purpose::WebhookBody,
    ];

    /// The stable label written into associated data. Never change one: existing rows would stop decrypting.
    pub const fn label(self) -> &'static str {
        match self {
            Purpose::AccessToken => "access_token",
            Purpose::RefreshToken => "refresh_token",
            Purpose::TokenSet => "token_set",
            Purpose::PkceVerifier => "pkce_verifier",
            Purpose::WebhookSecret => "webhook_secret",
            Purpose::ChannelToken => "channel_token",
            Purpose::EndpointSecret => "endpoint_secret",
            Purpose::Record => "record",
            Purpose::WebhookBody => "webhook_body",
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The row a ciphertext belongs to: a purpose plus labelled fields, in the order they were added.
///
/// Build it the same way for writing and reading, e.g.
/// `Aad::new(Purpose::RefreshToken).with("tenant", tenant.as_bytes()).with("connection", id.as_bytes())`.
/// Field order is significant, and a uuid passed as bytes differs from the same uuid as text, so
/// each column should build its `Aad` in one function. Values are identifiers, not secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad {
    purpose: Purpose,
    fields: Vec<(&'static str, Vec<u8>)>,
}

impl Aad {
    /// Associated data for `purpose` with no fields yet.
    pub fn new(purpose: Purpose) -> Self {
        Self { purpose, fields: Vec::new() }
    }

    /// The usual binding: purpose, tenant id, connection id (pass uuids as `as_bytes()`).
    pub fn connection(purpose: Purpose, tenant: impl AsRef<[u8]>, connection: impl AsRef<[u8]>) -> Self {
        Self::new(purpose).with("tenant", tenant).with("connection", connection)
    }

    /// Adds a labelled field (tenant id, connection id, provider, endpoint id, …).
    #[must_use]
    pub fn with(mut self, label: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.fields.push((label, value.as_ref().to_vec()));
        self
    }

    /// The purpose this binding is for.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The bytes handed to the AEAD: `version ‖ (label, value)* ‖ ("purpose", label) ‖ ("key_id", u32 BE)`,
    /// every label and value prefixed with its length as a u32 BE.
    pub(crate) fn encode(&self, key_id: u32) -> Vec<u8> {
        let size = self.fields.iter().map(|(l, v)| 8 + l.len() + v.len()).sum::<usize>() + 64;
        let mut out = Vec::with_capacity(size);
        out.push(FORMAT_VERSION);
        for (label, value) in &self.fields {
            push_item(&mut out, label.as_bytes(), value);
        }
        push_item(&mut out, b"purpose", self.purpose.label().as_bytes());
        push_item(&mut out, b"key_id", &key_id.to_be_bytes());
        out
    }
}

fn push_item(out: &mut Vec<u8>, label: &[u8], value: &[u8]) {
    for part in [label, value] {
        // Associated data is ids and labels; nothing near 4 GiB ever reaches here.
        let len = u32::try_from(part.len()).expect("associated data field under 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixes_keep_adjacent_fields_apart() {
        let split_late = Aad::new(Purpose::AccessToken).with("tenant", "ab").with("connection", "c");
        let split_early = Aad::new(Purpose::AccessToken).with("tenant", "a").with("connection", "bc");
        assert_ne!(split_late.encode(1), split_early.encode(1));
    }

    #[test]
    fn purpose_key_id_and_field_labels_all_change_the_encoding() {
        let base = Aad::connection(Purpose::AccessToken, "t", "c");
        assert_ne!(base.encode(1), Aad::connection(Purpose::RefreshToken, "t", "c").encode(1));
        assert_ne!(base.encode(1), base.encode(2));
        assert_ne!(base.encode(1), Aad::new(Purpose::AccessToken).with("tenant", "t").with("endpoint", "c").encode(1));
        assert_ne!(base.encode(1), Aad::connection(Purpose::AccessToken, "c", "t").encode(1));
    }

    #[test]
    fn encoding_is_exactly_the_documented_layout() {
        let aad = Aad::new(Purpose::TokenSet).with("tenant", [0xAA]);
        let mut expected = vec![1u8];
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"tenant");
        expected.extend_from_slice(&[0, 0, 0, 1, 0xAA]);
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(b"purpose");
        expected.extend_from_slice(&[0, 0, 0, 9]);
        expected.extend_from_slice(b"token_set");
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"key_id");
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 1, 2]);
        assert_eq!(aad.encode(258), expected);
    }

    #[test]
    fn purpose_labels_are_distinct_and_stable() {
        let labels: Vec<&str> = Purpose::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            [
                "access_token",
                "refresh_token",
                "token_set",
                "pkce_verifier",
                "webhook_secret",
                "channel_token",
                "endpoint_secret",
                "record",
                "webhook_body"
            ]
        );
        assert_eq!(Purpose::PkceVerifier.to_string(), "pkce_verifier");
    }
}
