//! One listing part during a run: its checkpoint, generation and state version, and the page
//! commit that moves all three together with the page's records (`Engine::write_page`).

use super::checkpoint::{Checkpoint, Phase};
use super::client::{is_bad_page_token, is_gone, Listing, Query};
use crate::engine::Engine;
use crate::SyncError;
use chrono::{DateTime, Utc};
use patchbay_store::{RecordWrite, StateWrite, Sweep};

/// A part's position as this run moves it.
#[derive(Debug)]
pub(crate) struct Part {
    pub name: String,
    /// The stored version this run last read or wrote (a stale writer is refused).
    version: i64,
    /// The mark-and-sweep generation rows of this part are written with.
    pub generation: i64,
    checkpoint: Checkpoint,
    /// How far back a full listing reaches (`None`: unbounded, the calendar list).
    days_back: Option<u32>,
    /// One restart per kind of refusal per run, so a provider that keeps refusing cannot loop us.
    restarted_full: bool,
    restarted_pages: bool,
}

impl Part {
    /// Loads the part's stored state (or a fresh one) and prepares the next listing.
    pub async fn load(engine: &Engine<'_>, name: String, days_back: Option<u32>) -> Result<Self, SyncError> {
        let state = engine.state(&name).await?;
        let (version, generation, checkpoint) = match state {
            Some(s) => (s.version, s.generation, Checkpoint::read(&s.checkpoint)),
            None => (0, 0, Checkpoint::default()),
        };
        let mut part =
            Self { name, version, generation, checkpoint, days_back, restarted_full: false, restarted_pages: false };
        if part.checkpoint.is_fresh_full() {
            part.begin_full(engine);
        }
        Ok(part)
    }

    /// Starts a new full listing under the next generation; `timeMin` is fixed here and kept in
    /// the checkpoint, so every page of this listing (even after a crash) sends the same query.
    fn begin_full(&mut self, engine: &Engine<'_>) {
        let now = engine.session.deps().clock.now();
        let time_min = self.days_back.map(|days| now - chrono::Duration::days(i64::from(days)));
        self.generation += 1;
        self.checkpoint = Checkpoint::full(time_min);
    }

    /// The request for the next page; remembers when a new listing started.
    pub fn query(&mut self, now: DateTime<Utc>) -> Query<'_> {
        if self.checkpoint.page_token.is_none() {
            self.checkpoint.started_at = Some(now);
        }
        self.checkpoint.query()
    }

    /// Whether the stored checkpoint reads changes (a full listing has finished).
    pub fn is_incremental(&self) -> bool {
        self.checkpoint.phase == Phase::Incremental
    }

    /// After a refused request: whether the part recovered (and the loop should ask again).
    /// A dead sync token starts a new full listing under a new generation; a refused page token
    /// restarts the listing under way from its first page.
    pub fn recover(&mut self, engine: &Engine<'_>, error: &SyncError) -> bool {
        if is_gone(error) && self.is_incremental() && !self.restarted_full {
            tracing::info!(part = self.kind(), "sync token expired; starting a full sync under a new generation");
            self.restarted_full = true;
            self.begin_full(engine);
            return true;
        }
        if is_bad_page_token(error) && self.checkpoint.page_token.is_some() && !self.restarted_pages {
            tracing::info!(part = self.kind(), "page token refused; restarting the listing");
            self.restarted_pages = true;
            self.checkpoint.page_token = None;
            return true;
        }
        false
    }

    /// The part's kind (`calendars`, `events`) for logs: a calendar id is an email address.
    fn kind(&self) -> &str {
        self.name.split(':').next().unwrap_or_default()
    }

    /// Whether `listing` is the last page of a full listing (its commit sweeps).
    pub fn finishes_full(&self, listing: &Listing) -> bool {
        !self.is_incremental() && listing.next_page_token.is_none()
    }

    /// The checkpoint the page after `listing` is asked with, when one follows (`None` after a
    /// listing's last page): what [`Part::commit`] stores for `listing`, so a page fetched
    /// ahead sends exactly the request it would have sent after the commit.
    pub fn following(&self, listing: &Listing) -> Option<Checkpoint> {
        let token = listing.next_page_token.clone()?;
        Some(self.checkpoint.after_page(Some(token), None).0)
    }

    /// Writes a page's records and sweeps with the checkpoint that follows it, in one
    /// transaction. Returns whether the listing is finished.
    pub async fn commit(
        &mut self,
        engine: &Engine<'_>,
        listing: &Listing,
        records: Vec<RecordWrite>,
        sweeps: Vec<Sweep>,
    ) -> Result<bool, SyncError> {
        if listing.next_page_token.is_none() && listing.next_sync_token.is_none() {
            return Err(SyncError::Protocol("a Calendar page with neither a page nor a sync token".into()));
        }
        let was_full = !self.is_incremental();
        let started_at = self.checkpoint.started_at;
        let (next, done) = self.checkpoint.after_page(listing.next_page_token.clone(), listing.next_sync_token.clone());
        let now = engine.session.deps().clock.now();
        let success_at = done.then(|| started_at.unwrap_or(now));
        let state = StateWrite {
            part: self.name.clone(),
            expected_version: self.version,
            checkpoint: next.to_json(),
            generation: self.generation,
            success_at,
            full_at: if was_full { success_at } else { None },
        };
        let outcome = engine.write_page(self.generation, records, sweeps, state).await?;
        self.version = outcome.state_version;
        self.checkpoint = next;
        Ok(done)
    }
}
