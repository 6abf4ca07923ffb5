//! How the fake prices a query (its complexity), deterministically from the fields and limits
//! requested, since monday does not publish its formula:
//!
//! - a field costs 1 plus what its selection costs (the engine's default);
//! - `boards`: 10 + n × selection, n = the number of `ids`, else `limit` (default 25);
//! - `items_page`, `next_items_page`: 10 + `limit` (default 25) × selection;
//! - root `items`: 10 + the number of `ids` × selection;
//! - `columns`, `groups`, `column_values`: 1 + n × selection, n = the number of `ids`, else 10
//!   (a board is assumed to have 10 of each);
//! - `change_multiple_column_values`: 1,000 + selection (writes are dear);
//! - `complexity { … }`: 0, so the budget probe is free.
//!
//! E.g. `boards(limit: 5) { id name }` costs 10 + 5 × 2 = 20.

use async_graphql::ID;

fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

pub(super) fn boards(ids: Option<&Vec<ID>>, limit: i32, child: usize) -> usize {
    10 + ids.map_or(count(limit), Vec::len) * child
}

pub(super) fn page(limit: i32, child: usize) -> usize {
    10 + count(limit) * child
}

pub(super) fn items(ids: &[ID], child: usize) -> usize {
    10 + ids.len() * child
}

pub(super) fn sublist(ids: Option<&Vec<String>>, child: usize) -> usize {
    1 + ids.map_or(10, Vec::len) * child
}

pub(super) fn mutation(child: usize) -> usize {
    1_000 + child
}
