//! Integration tests of the OAuth client over real loopback HTTP against small inline mock servers.

mod hardening;
mod identity;
mod iss;
mod redaction;
mod revoke;
mod support;
mod token_calls;
