//! The GraphQL types of fake monday's schema that Sync reads: `Board`, `Column`, `Group`, `Item`,
//! `ColumnValue`, `ItemsResponse`, the `ItemsQuery` input and the enums, with monday's field and
//! argument names (providers.md A2.2). Objects are snapshots taken while the state was locked.

use super::boards::{iso, text_of, Board, Item, Lifecycle};
use super::items;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Result, SimpleObject, ID};
use serde_json::Value;

/// monday's `State` (boards and items; `all` only as a filter).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "State", rename_items = "lowercase")]
pub(super) enum State {
    Active,
    All,
    Archived,
    Deleted,
}

impl State {
    pub fn of(lifecycle: Lifecycle) -> State {
        match lifecycle {
            Lifecycle::Active => State::Active,
            Lifecycle::Archived => State::Archived,
            Lifecycle::Deleted => State::Deleted,
        }
    }

    /// Whether something in `lifecycle` passes this filter.
    pub fn admits(self, lifecycle: Lifecycle) -> bool {
        self == State::All || self == State::of(lifecycle)
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "BoardKind", rename_items = "lowercase")]
pub(super) enum BoardKind {
    Public,
    Private,
    Share,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ItemsOrderByDirection", rename_items = "lowercase")]
pub(super) enum Direction {
    Asc,
    Desc,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ItemsQueryOperator", rename_items = "lowercase")]
pub(super) enum QueryOperator {
    And,
    Or,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ItemsQueryRuleOperator", rename_items = "snake_case")]
pub(super) enum RuleOperator {
    AnyOf,
    NotAnyOf,
    IsEmpty,
    IsNotEmpty,
    GreaterThan,
    GreaterThanOrEquals,
    LowerThan,
    LowerThanOrEqual,
    Between,
    ContainsText,
    NotContainsText,
    ContainsTerms,
    StartsWith,
    EndsWith,
}

#[derive(InputObject, Clone, Debug)]
#[graphql(name = "ItemsQueryOrderBy", rename_fields = "snake_case")]
pub(super) struct OrderBy {
    pub column_id: String,
    #[graphql(default_with = "Direction::Asc")]
    pub direction: Direction,
}

#[derive(InputObject, Clone, Debug)]
#[graphql(name = "ItemsQueryRule", rename_fields = "snake_case")]
pub(super) struct Rule {
    pub column_id: ID,
    /// monday's `CompareValue` scalar: any JSON (usually a list).
    pub compare_value: async_graphql::Json<Value>,
    pub compare_attribute: Option<String>,
    #[graphql(default_with = "RuleOperator::AnyOf")]
    pub operator: RuleOperator,
}

#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "ItemsQuery", rename_fields = "snake_case")]
pub(super) struct ItemsQuery {
    pub rules: Option<Vec<Rule>>,
    pub operator: Option<QueryOperator>,
    pub order_by: Option<Vec<OrderBy>>,
    pub ids: Option<Vec<ID>>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(rename_fields = "snake_case")]
pub(super) struct Column {
    pub id: ID,
    pub title: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub settings_str: String,
    pub archived: bool,
}

#[derive(SimpleObject, Clone, Debug)]
pub(super) struct Group {
    pub id: ID,
    pub title: String,
    pub position: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub(super) struct ColumnValue {
    pub id: ID,
    #[graphql(name = "type")]
    pub kind: String,
    pub text: Option<String>,
    /// The stored value as a JSON string (`null` when empty).
    pub value: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub(super) struct BoardRef {
    pub id: ID,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex, name = "Item", rename_fields = "snake_case")]
pub(super) struct ItemObject {
    pub id: ID,
    pub name: String,
    pub state: State,
    pub group: Option<Group>,
    pub board: Option<BoardRef>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    #[graphql(skip)]
    pub values: Vec<ColumnValue>,
}

#[ComplexObject(rename_fields = "snake_case", rename_args = "snake_case")]
impl ItemObject {
    /// Every column of the board (or those named), empty ones included.
    #[graphql(complexity = "super::cost::sublist(ids.as_ref(), child_complexity)")]
    async fn column_values(&self, ids: Option<Vec<String>>) -> Vec<ColumnValue> {
        self.values.iter().filter(|v| ids.as_ref().is_none_or(|ids| ids.contains(&v.id.0))).cloned().collect()
    }
}

impl ItemObject {
    pub fn of(board: &Board, item: &Item) -> ItemObject {
        let group = board.groups.iter().find(|g| g.id == item.group_id).map(group_of);
        let values = board
            .columns
            .iter()
            .map(|c| {
                let stored = item.values.get(&c.id);
                ColumnValue {
                    id: ID(c.id.clone()),
                    kind: c.kind.clone(),
                    text: Some(stored.map(text_of).unwrap_or_default()),
                    value: stored.map(Value::to_string),
                }
            })
            .collect();
        ItemObject {
            id: ID(item.id.to_string()),
            name: item.name.clone(),
            state: State::of(item.state),
            group,
            board: Some(BoardRef { id: ID(board.id.to_string()) }),
            created_at: Some(iso(item.created_at)),
            updated_at: Some(iso(item.updated_at)),
            values,
        }
    }
}

pub(super) fn group_of(group: &super::boards::Group) -> Group {
    Group { id: ID(group.id.clone()), title: group.title.clone(), position: group.position.clone() }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "ItemsResponse")]
pub(super) struct ItemsResponse {
    /// `null` when there are no more pages.
    pub cursor: Option<String>,
    pub items: Vec<ItemObject>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex, name = "Board", rename_fields = "snake_case")]
pub(super) struct BoardObject {
    pub id: ID,
    pub name: String,
    pub state: State,
    pub board_kind: BoardKind,
    pub updated_at: Option<String>,
    pub workspace_id: Option<ID>,
    pub items_count: Option<i32>,
    #[graphql(skip)]
    pub all_columns: Vec<Column>,
    #[graphql(skip)]
    pub all_groups: Vec<Group>,
}

#[ComplexObject(rename_fields = "snake_case", rename_args = "snake_case")]
impl BoardObject {
    #[graphql(complexity = "super::cost::sublist(ids.as_ref(), child_complexity)")]
    async fn columns(&self, ids: Option<Vec<String>>, types: Option<Vec<String>>) -> Vec<Column> {
        let wanted = |c: &&Column| {
            ids.as_ref().is_none_or(|ids| ids.contains(&c.id.0)) && types.as_ref().is_none_or(|t| t.contains(&c.kind))
        };
        self.all_columns.iter().filter(wanted).cloned().collect()
    }

    #[graphql(complexity = "super::cost::sublist(ids.as_ref(), child_complexity)")]
    async fn groups(&self, ids: Option<Vec<String>>) -> Vec<Group> {
        self.all_groups.iter().filter(|g| ids.as_ref().is_none_or(|ids| ids.contains(&g.id.0))).cloned().collect()
    }

    /// The first page of the board's items; later pages come from root `next_items_page`.
    #[graphql(complexity = "super::cost::page(limit, child_complexity)")]
    async fn items_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 25)] limit: i32,
        cursor: Option<String>,
        query_params: Option<ItemsQuery>,
    ) -> Result<ItemsResponse> {
        items::first_page(ctx, &self.id, limit, cursor, query_params)
    }
}

impl BoardObject {
    pub fn of(board: &Board, items_count: usize) -> BoardObject {
        let kind = match board.board_kind.as_str() {
            "private" => BoardKind::Private,
            "share" => BoardKind::Share,
            _ => BoardKind::Public,
        };
        let columns = board
            .columns
            .iter()
            .map(|c| Column {
                id: ID(c.id.clone()),
                title: c.title.clone(),
                kind: c.kind.clone(),
                settings_str: c.settings_str.clone(),
                archived: false,
            })
            .collect();
        BoardObject {
            id: ID(board.id.to_string()),
            name: board.name.clone(),
            state: State::of(board.state),
            board_kind: kind,
            updated_at: Some(iso(board.updated_at)),
            workspace_id: None,
            items_count: Some(i32::try_from(items_count).unwrap_or(i32::MAX)),
            all_columns: columns,
            all_groups: board.groups.iter().map(group_of).collect(),
        }
    }
}
