//! Keyset pagination: what a list takes and what it answers.

/// Keyset pagination input: rows after `after` (an id), at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    pub after: Option<uuid::Uuid>,
}

impl Page {
    /// The largest page any list returns.
    pub const MAX_LIMIT: u32 = 500;
    /// The page size when the caller names none.
    pub const DEFAULT_LIMIT: u32 = 100;

    /// A page, with `limit` clamped to 1..=500.
    pub fn new(limit: Option<u32>, after: Option<uuid::Uuid>) -> Self {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT);
        Self { limit, after }
    }

    /// The first page of the default size.
    pub fn first() -> Self {
        Self::new(None, None)
    }
}

/// One page of results and the cursor for the next (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<uuid::Uuid>,
}

impl<T> Paged<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> uuid::Uuid) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Self { items: rows, next_cursor }
    }
}
