//! The part of fake monday's state behind `/v2` beyond identity: boards and items, cursors,
//! rate limits and the switches that make the API misbehave.

use super::boards::Workspace;
use super::errors::ErrorShape;
use super::items::Cursor;
use super::limits::Limiter;
use crate::fakes::common::{FailNext, RefreshHold};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct ApiState {
    pub workspace: Workspace,
    pub cursors: HashMap<String, Cursor>,
    pub cursor_lifetime: Duration,
    pub limiter: Limiter,
    pub shape: ErrorShape,
    /// The HTTP status of `COMPLEXITY_BUDGET_EXHAUSTED` (429 by the errors page; 200 is seen too).
    pub budget_status: u16,
    pub fail: FailNext,
    pub latency: Duration,
    /// While set (and not released), `/v2` calls wait after admission, counted as in flight.
    pub hold: Option<Arc<RefreshHold>>,
    /// The headers of the last `/v2` request, for tests that check what a client forwarded.
    pub last_headers: axum::http::HeaderMap,
    /// Root `items(ids:)` fields resolved so far, and the ids each asked for.
    pub items_by_id: Vec<usize>,
}

impl Default for ApiState {
    fn default() -> Self {
        ApiState {
            workspace: Workspace::default(),
            cursors: HashMap::new(),
            cursor_lifetime: Duration::from_secs(60 * 60),
            limiter: Limiter::default(),
            shape: ErrorShape::Current,
            budget_status: 429,
            fail: FailNext::default(),
            latency: Duration::ZERO,
            hold: None,
            items_by_id: Vec::new(),
            last_headers: axum::http::HeaderMap::new(),
        }
    }
}
