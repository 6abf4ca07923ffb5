//! Fake monday's workspace data: boards (owned by an account) with their columns, groups and
//! items, the changes tests make to them, and the JSON a full read returns for an item.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// `active`, `archived` or `deleted`, as monday's `State` enum spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lifecycle {
    Active,
    Archived,
    Deleted,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Archived => "archived",
            Lifecycle::Deleted => "deleted",
        }
    }
}

pub(super) struct Column {
    pub id: String,
    pub title: String,
    /// monday's `ColumnType` (`text`, `status`, `numbers`, `date`, …).
    pub kind: String,
    pub settings_str: String,
}

pub(super) struct Group {
    pub id: String,
    pub title: String,
    /// monday sends positions as decimal strings (`"65536"`).
    pub position: String,
}

pub(super) struct Item {
    pub id: u64,
    pub board_id: u64,
    pub name: String,
    pub state: Lifecycle,
    pub group_id: String,
    /// Column id → the stored value (what `value` carries, as JSON).
    pub values: BTreeMap<String, Value>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// The fake's change counter at this item's last change: `__last_updated__` orders by it,
    /// so the order is the order changes were made in even within one second.
    pub touched: u64,
}

pub(super) struct Board {
    pub id: u64,
    pub account_id: u64,
    pub name: String,
    pub state: Lifecycle,
    pub board_kind: String,
    pub updated_at: SystemTime,
    pub columns: Vec<Column>,
    pub groups: Vec<Group>,
    /// While on, mutations on the board answer 423 "Resource is currently locked".
    pub locked: bool,
}

/// Every board and item the fake holds.
#[derive(Default)]
pub(super) struct Workspace {
    pub boards: BTreeMap<u64, Board>,
    pub items: BTreeMap<u64, Item>,
    pub next_item_id: u64,
    pub touches: u64,
}

impl Workspace {
    pub fn board_mut(&mut self, id: u64) -> &mut Board {
        self.boards.get_mut(&id).unwrap_or_else(|| panic!("no board {id} in the fake"))
    }

    pub fn item_mut(&mut self, id: u64) -> &mut Item {
        self.items.get_mut(&id).unwrap_or_else(|| panic!("no item {id} in the fake"))
    }

    /// Marks an item changed now (and its board).
    pub fn touch(&mut self, item_id: u64, now: SystemTime) {
        self.touches += 1;
        let touches = self.touches;
        let item = self.item_mut(item_id);
        item.updated_at = now;
        item.touched = touches;
        let board_id = item.board_id;
        self.board_mut(board_id).updated_at = now;
    }

    pub fn create_item(&mut self, board_id: u64, group_id: &str, name: &str, now: SystemTime) -> u64 {
        let board = self.board_mut(board_id);
        assert!(board.groups.iter().any(|g| g.id == group_id), "no group {group_id} on board {board_id}");
        self.next_item_id += 1;
        let id = 1_000_000_000 + self.next_item_id;
        let item = Item {
            id,
            board_id,
            name: name.to_owned(),
            state: Lifecycle::Active,
            group_id: group_id.to_owned(),
            values: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            touched: 0,
        };
        self.items.insert(id, item);
        self.touch(id, now);
        id
    }

    /// The board's items, in creation order.
    pub fn items_of(&self, board_id: u64) -> impl Iterator<Item = &Item> {
        self.items.values().filter(move |i| i.board_id == board_id)
    }
}

/// ISO 8601 in UTC to the second, as monday's `ISO8601DateTime` reads.
pub(super) fn iso(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What monday shows as a column's `text` for a stored value.
pub(super) fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(map) => ["label", "text", "date", "email", "url", "phone"]
            .iter()
            .find_map(|key| map.get(*key).map(text_of))
            .unwrap_or_default(),
        Value::Array(values) => values.iter().map(text_of).collect::<Vec<_>>().join(", "),
    }
}

/// One column value as a full read returns it.
pub(super) fn column_value_json(column: &Column, stored: Option<&Value>) -> Value {
    json!({
        "id": column.id,
        "type": column.kind,
        "text": stored.map(text_of).unwrap_or_default(),
        "value": stored.map(Value::to_string),
    })
}

/// An item as `items_page { items { id name state group { id } column_values { id type text value }
/// updated_at created_at } }` returns it.
pub(super) fn item_json(board: &Board, item: &Item) -> Value {
    let values: Vec<Value> = board.columns.iter().map(|c| column_value_json(c, item.values.get(&c.id))).collect();
    json!({
        "id": item.id.to_string(),
        "name": item.name,
        "state": item.state.as_str(),
        "group": { "id": item.group_id },
        "column_values": values,
        "updated_at": iso(item.updated_at),
        "created_at": iso(item.created_at),
    })
}
