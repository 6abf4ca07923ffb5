//! The control handle's API side: boards, columns, groups and items tests put in the fake and
//! change behind the client's back, views of that state for comparison, the API's switches
//! (limits, error shape, cursor lifetime, failures, latency, a hold) and its counters.

use super::boards::{item_json, Board, Column, Group, Lifecycle};
use super::errors::ErrorShape;
use super::limits::{ApiLimits, RefusalRecord, SpentWindow};
use super::FakeMonday;
use crate::fakes::common::{RefreshGate, RefreshHold};
use serde_json::Value;
use std::time::Duration;

impl FakeMonday {
    /// Adds an active public board, without columns or groups, to an account.
    pub fn add_board(&self, account_id: u64, board_id: u64, name: &str) {
        self.with(|st| {
            let now = st.clock.now();
            let board = Board {
                id: board_id,
                account_id,
                name: name.to_owned(),
                state: Lifecycle::Active,
                board_kind: "public".to_owned(),
                updated_at: now,
                columns: Vec::new(),
                groups: Vec::new(),
                locked: false,
            };
            st.api.workspace.boards.insert(board_id, board);
        });
    }

    /// Deletes a board: it leaves `boards` (default `state: active`) and shows as `deleted`
    /// under `state: deleted` or `all`.
    pub fn delete_board(&self, board_id: u64) {
        self.with(|st| st.api.workspace.board_mut(board_id).state = Lifecycle::Deleted);
    }

    /// Archives a board (shown under `state: archived` or `all`).
    pub fn archive_board(&self, board_id: u64) {
        self.with(|st| st.api.workspace.board_mut(board_id).state = Lifecycle::Archived);
    }

    /// Adds a column (`kind` is monday's column type: `text`, `status`, `numbers`, `date`, …)
    /// with `settings_str` `"{}"`.
    pub fn add_column(&self, board_id: u64, column_id: &str, title: &str, kind: &str) {
        self.add_column_with_settings(board_id, column_id, title, kind, "{}");
    }

    /// Adds a column with its `settings_str` (a JSON string, e.g. a status column's labels).
    pub fn add_column_with_settings(&self, board_id: u64, column_id: &str, title: &str, kind: &str, settings: &str) {
        let column = Column {
            id: column_id.to_owned(),
            title: title.to_owned(),
            kind: kind.to_owned(),
            settings_str: settings.to_owned(),
        };
        self.with(|st| st.api.workspace.board_mut(board_id).columns.push(column));
    }

    /// Adds a group at the end of the board.
    pub fn add_group(&self, board_id: u64, group_id: &str, title: &str) {
        self.with(|st| {
            let board = st.api.workspace.board_mut(board_id);
            let position = (65_536 * (board.groups.len() + 1)).to_string();
            board.groups.push(Group { id: group_id.to_owned(), title: title.to_owned(), position });
        });
    }

    /// Creates an active item in a group; returns its id.
    pub fn create_item(&self, board_id: u64, group_id: &str, name: &str) -> u64 {
        self.with(|st| {
            let now = st.clock.now();
            st.api.workspace.create_item(board_id, group_id, name, now)
        })
    }

    /// Sets a column's stored value as someone in monday's UI would (`Value::Null` clears it),
    /// which makes the item the most recently updated.
    pub fn update_item_column(&self, item_id: u64, column_id: &str, value: Value) {
        self.change_item(item_id, |item| {
            if value.is_null() {
                item.values.remove(column_id);
            } else {
                item.values.insert(column_id.to_owned(), value);
            }
        });
    }

    /// Renames an item.
    pub fn rename_item(&self, item_id: u64, name: &str) {
        self.change_item(item_id, |item| item.name = name.to_owned());
    }

    /// Moves an item to another group of its board.
    pub fn move_item(&self, item_id: u64, group_id: &str) {
        self.with(|st| {
            let board_id = st.api.workspace.item_mut(item_id).board_id;
            let board = st.api.workspace.board_mut(board_id);
            assert!(board.groups.iter().any(|g| g.id == group_id), "no group {group_id} on board {board_id}");
        });
        self.change_item(item_id, |item| item.group_id = group_id.to_owned());
    }

    /// Archives an item: it leaves `items_page` and reads as `state: archived` by `items(ids:)`.
    pub fn archive_item(&self, item_id: u64) {
        self.change_item(item_id, |item| item.state = Lifecycle::Archived);
    }

    /// Deletes an item (to the trash): it leaves `items_page` and reads as `state: deleted` by
    /// `items(ids:)` until [`FakeMonday::purge_item`].
    pub fn delete_item(&self, item_id: u64) {
        self.change_item(item_id, |item| item.state = Lifecycle::Deleted);
    }

    /// Brings an archived or deleted item back to active.
    pub fn restore_item(&self, item_id: u64) {
        self.change_item(item_id, |item| item.state = Lifecycle::Active);
    }

    /// Removes an item for good (the trash emptied): no read returns it any more.
    pub fn purge_item(&self, item_id: u64) {
        self.with(|st| st.api.workspace.items.remove(&item_id));
    }

    fn change_item(&self, item_id: u64, change: impl FnOnce(&mut super::boards::Item)) {
        self.with(|st| {
            let now = st.clock.now();
            change(st.api.workspace.item_mut(item_id));
            st.api.workspace.touch(item_id, now);
        });
    }

    /// While on, mutations on the board answer HTTP 423 "Resource is currently locked".
    pub fn lock_board(&self, board_id: u64, locked: bool) {
        self.with(|st| st.api.workspace.board_mut(board_id).locked = locked);
    }

    /// The board's active items as a full read returns them (`id name state group { id }
    /// column_values { id type text value } updated_at created_at`), ordered by
    /// `__last_updated__`.
    pub fn board_items(&self, board_id: u64) -> Vec<Value> {
        self.with(|st| {
            let ws = &st.api.workspace;
            let board = ws.boards.get(&board_id).unwrap_or_else(|| panic!("no board {board_id} in the fake"));
            let mut items: Vec<_> = ws.items_of(board_id).filter(|i| i.state == Lifecycle::Active).collect();
            items.sort_by_key(|i| i.touched);
            items.into_iter().map(|item| item_json(board, item)).collect()
        })
    }

    /// One item in any state, as `items(ids:)` returns it; `None` once purged.
    pub fn item(&self, item_id: u64) -> Option<Value> {
        self.with(|st| {
            let ws = &st.api.workspace;
            let item = ws.items.get(&item_id)?;
            Some(item_json(&ws.boards[&item.board_id], item))
        })
    }

    /// The limits enforced from now on (usage so far is kept).
    pub fn set_api_limits(&self, limits: ApiLimits) {
        self.with(|st| st.api.limiter.limits = limits);
    }

    /// How application errors are laid out (default [`ErrorShape::Current`]).
    pub fn set_error_shape(&self, shape: ErrorShape) {
        self.with(|st| st.api.shape = shape);
    }

    /// The HTTP status of `COMPLEXITY_BUDGET_EXHAUSTED`: 429 (default, as monday's errors page
    /// lists it) or 200 (as older answers and the legacy `ComplexityException` came).
    pub fn set_budget_exhausted_status(&self, status: u16) {
        self.with(|st| st.api.budget_status = status);
    }

    /// How long after its first page a cursor keeps working (default 60 minutes).
    pub fn set_cursor_lifetime(&self, lifetime: Duration) {
        self.with(|st| st.api.cursor_lifetime = lifetime);
    }

    /// The next `times` calls to `/v2` answer `status` (e.g. 500, 502, 503) before any check.
    pub fn fail_api(&self, status: u16, times: u32) {
        self.with(|st| st.api.fail.set(status, times));
    }

    /// Every admitted `/v2` call waits this long (real time) before it runs, in flight.
    pub fn set_api_latency(&self, latency: Duration) {
        self.with(|st| st.api.latency = latency);
    }

    /// Holds admitted `/v2` calls (counted as in flight, so the concurrency limit sees them)
    /// until the gate is released or dropped; the gate works as for [`FakeMonday::hold_refreshes`].
    pub fn hold_api_calls(&self) -> RefreshGate {
        let hold = RefreshHold::new();
        self.with(|st| st.api.hold = Some(hold.clone()));
        RefreshGate::new(hold)
    }

    /// The headers of the last `/v2` request (names lower-case), to check what a client sent.
    pub fn last_api_headers(&self) -> Vec<(String, String)> {
        self.with(|st| {
            st.api
                .last_headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect()
        })
    }

    /// The root `items(ids:)` calls answered so far (any account): how many ids each asked for.
    pub fn items_by_id_calls(&self) -> Vec<usize> {
        self.with(|st| st.api.items_by_id.clone())
    }

    /// Complexity points charged so far, all accounts.
    pub fn complexity_spent(&self) -> u64 {
        self.with(|st| st.api.limiter.spent)
    }

    /// Requests refused so far with this code (`COMPLEXITY_BUDGET_EXHAUSTED`,
    /// `RATE_LIMIT_EXCEEDED`, `maxConcurrencyExceeded`, `DAILY_LIMIT_EXCEEDED`).
    pub fn rate_limited(&self, code: &str) -> usize {
        self.with(|st| st.api.limiter.refused.get(code).copied().unwrap_or(0))
    }

    /// Every refusal by the limits so far (any account), with its time on the fake's clock,
    /// oldest first.
    pub fn refusals(&self) -> Vec<RefusalRecord> {
        self.with(|st| st.api.limiter.refusals.clone())
    }

    /// The read-complexity windows the fake has counted (closed ones and the current one), per
    /// account, oldest first: what a client spent of its budget in each window.
    pub fn read_windows(&self) -> Vec<SpentWindow> {
        self.with(|st| st.api.limiter.read_windows())
    }
}
