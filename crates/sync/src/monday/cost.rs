//! Complexity estimates for the queries sync sends, reserved from the budget before a call and
//! corrected afterwards from `complexity { query }` (providers.md A3). monday does not publish
//! its formula; these follow the per-field rule its answers fit (and the test fake uses): a field
//! costs 1 plus its selection, a list of items, boards, columns or groups costs 10 (1 for
//! columns and groups) plus its length times its selection, where an unbounded list of columns
//! or groups counts as 10 and `complexity` itself is free.

/// Scalar fields asked of a board: `id name state board_kind updated_at workspace_id`.
const BOARD_SCALARS: i64 = 6;
/// `columns { id title type settings_str archived }`: 1 + 10 columns × 5 fields.
const COLUMNS: i64 = 1 + 10 * 5;
/// `groups { id title position }`: 1 + 10 groups × 3 fields.
const GROUPS: i64 = 1 + 10 * 3;
/// One item: `id name state updated_at` (4), `group { id }` (2) and
/// `column_values { id type text value }` (1 + 10 × 4).
const ITEM: i64 = 4 + 2 + (1 + 10 * 4);
/// An items page's selection: `cursor` and `items { … }`.
const PAGE_SELECTION: i64 = 1 + (1 + ITEM);

/// `boards(limit: n, page: p, state: all) { … columns … groups … }`.
pub(crate) fn boards_page(limit: u32) -> i64 {
    10 + i64::from(limit) * (BOARD_SCALARS + COLUMNS + GROUPS)
}

/// `boards(ids: [one]) { items_page(limit: n, …) { cursor items { … } } }`.
pub(crate) fn first_items_page(limit: u32) -> i64 {
    10 + next_items_page(limit)
}

/// `next_items_page(cursor: …, limit: n) { cursor items { … } }`.
pub(crate) fn next_items_page(limit: u32) -> i64 {
    10 + i64::from(limit) * PAGE_SELECTION
}

/// `items(ids: [n ids]) { … board { id } }`: a list of `n` items, each with its board.
pub(crate) fn items_by_id(n: usize) -> i64 {
    10 + i64::try_from(n).unwrap_or(i64::MAX / 64) * (ITEM + 2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn estimates_follow_the_per_field_rule() {
        // The sync integration test checks the fake charges exactly these for the same queries.
        assert_eq!(super::boards_page(25), 2210);
        assert_eq!(super::first_items_page(3), 167);
        assert_eq!(super::next_items_page(3), 157);
    }
}
