#![forbid(unsafe_code)]
//! Patchbay's end-to-end suites (architecture §2: the top-level `tests/` package), and what they
//! share. Each suite is its own test binary:
//!
//! - `cli/` (`cargo nextest run -p patchbay-tests --test cli`): the real `patchbay` binary as an
//!   operator runs it — start-up on a fresh machine, refusals, SIGTERM, `--help`, API keys and
//!   dev tokens.
//! - `browser/` (`--test browser`): the connect flow in headless Chromium against a Patchbay
//!   wired to the provider fakes (`PATCHBAY_BROWSER=skip` skips it).
//!
//! Suites still to come here: many instances on one Postgres, crash and chaos.
//!
//! [`binary`] finds (and builds, when needed) the real binary; [`browser`] starts a Chromium
//! session through chromedriver. Databases, provider fakes, secrets and user tokens come from
//! `patchbay-testkit`.

pub mod binary;
pub mod browser;
