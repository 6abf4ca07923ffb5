//! Fake monday's GraphQL schema (async-graphql): the root queries Sync and identity use — `me`,
//! `account`, `boards`, `items`, `next_items_page`, `complexity` — and the engine itself, priced
//! by [`super::meter`].

use super::errors::{app_error, missing_scope};
use super::meter::{Meter, Pricing};
use super::mutation::MutationRoot;
use super::types::{BoardKind, BoardObject, ItemObject, ItemsResponse, State};
use super::{cost, items, Shared};
use async_graphql::{Context, EmptySubscription, Object, Result, Schema, SimpleObject, ID};
use serde_json::json;
use std::sync::{Arc, LazyLock, Mutex};

pub(super) type MondaySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Built once: the schema is stateless; each request brings the state and its caller as data.
pub(super) static SCHEMA: LazyLock<MondaySchema> =
    LazyLock::new(|| Schema::build(QueryRoot, MutationRoot, EmptySubscription).extension(Pricing).finish());

/// Who is calling: from the token.
pub(super) struct Caller {
    pub account_id: u64,
    pub user_id: u64,
    pub scopes: Vec<String>,
}

pub(super) fn caller<'a>(ctx: &Context<'a>) -> &'a Caller {
    ctx.data_unchecked::<Caller>()
}

pub(super) fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<Shared>()
}

pub(super) fn meter<'a>(ctx: &Context<'a>) -> &'a Arc<Mutex<Meter>> {
    ctx.data_unchecked::<Arc<Mutex<Meter>>>()
}

/// Fails unless the token carries `scope`.
pub(super) fn require(ctx: &Context<'_>, scope: &str) -> Result<()> {
    if caller(ctx).scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(missing_scope(scope))
    }
}

#[derive(SimpleObject)]
pub(super) struct Account {
    id: ID,
    name: String,
    slug: String,
    tier: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(super) struct User {
    id: ID,
    name: String,
    email: String,
    account: Account,
    is_admin: bool,
    is_guest: bool,
    enabled: bool,
}

/// `complexity { before after query reset_in_x_seconds }`: the budget around this query.
#[derive(SimpleObject, Default)]
#[graphql(rename_fields = "snake_case")]
pub(super) struct Complexity {
    before: i32,
    after: i32,
    query: i32,
    reset_in_x_seconds: i32,
}

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) struct QueryRoot;

#[Object(name = "Query", rename_fields = "snake_case", rename_args = "snake_case")]
impl QueryRoot {
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        require(ctx, "me:read")?;
        let who = caller(ctx);
        let st = shared(ctx).lock().unwrap();
        let user = st.users.iter().find(|u| u.id == who.user_id);
        let account = st.account(who.account_id);
        Ok(user.zip(account).map(|(user, account)| User {
            id: ID(user.id.to_string()),
            name: user.name.clone(),
            email: user.email.clone(),
            account: Account {
                id: ID(account.id.to_string()),
                name: account.name.clone(),
                slug: account.slug.clone(),
                tier: None,
            },
            is_admin: false,
            is_guest: false,
            enabled: true,
        }))
    }

    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        require(ctx, "account:read")?;
        let st = shared(ctx).lock().unwrap();
        Ok(st.account(caller(ctx).account_id).map(|account| Account {
            id: ID(account.id.to_string()),
            name: account.name.clone(),
            slug: account.slug.clone(),
            tier: None,
        }))
    }

    /// The caller's account's boards, `limit` per `page` (from 1), by id.
    #[graphql(complexity = "cost::boards(ids.as_ref(), limit, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn boards(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
        #[graphql(default = 25)] limit: i32,
        #[graphql(default = 1)] page: i32,
        #[graphql(default_with = "State::Active")] state: State,
        board_kind: Option<BoardKind>,
        workspace_ids: Option<Vec<Option<ID>>>,
    ) -> Result<Option<Vec<BoardObject>>> {
        require(ctx, "boards:read")?;
        let _ = workspace_ids;
        let account_id = caller(ctx).account_id;
        let st = shared(ctx).lock().unwrap();
        let ws = &st.api.workspace;
        let wanted: Option<Vec<u64>> = ids.map(|ids| ids.iter().filter_map(|id| id.parse().ok()).collect());
        let skip = usize::try_from(page.max(1) - 1).unwrap_or(0) * usize::try_from(limit.max(0)).unwrap_or(0);
        let boards = ws
            .boards
            .values()
            .filter(|b| b.account_id == account_id && state.admits(b.state))
            .filter(|b| wanted.as_ref().is_none_or(|ids| ids.contains(&b.id)))
            .map(|b| {
                BoardObject::of(b, ws.items_of(b.id).filter(|i| i.state == super::boards::Lifecycle::Active).count())
            })
            .filter(|b| board_kind.is_none_or(|kind| kind == b.board_kind))
            .skip(skip)
            .take(usize::try_from(limit.max(0)).unwrap_or(0))
            .collect();
        Ok(Some(boards))
    }

    /// Up to 100 items by id, whatever their state (archived and deleted ones say so).
    #[graphql(complexity = "cost::items(&ids, child_complexity)")]
    async fn items(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Option<Vec<ItemObject>>> {
        require(ctx, "boards:read")?;
        if ids.len() > 100 {
            let message = "Max 100 items per query; use items_page to read more";
            return Err(app_error("ItemsLimitationException", message, 200, json!({ "ids": ids.len() })));
        }
        let account_id = caller(ctx).account_id;
        let mut st = shared(ctx).lock().unwrap();
        st.api.items_by_id.push(ids.len());
        let ws = &st.api.workspace;
        let items = ids
            .iter()
            .filter_map(|id| id.parse::<u64>().ok())
            .filter_map(|id| ws.items.get(&id))
            .filter_map(|item| ws.boards.get(&item.board_id).map(|board| (board, item)))
            .filter(|(board, _)| board.account_id == account_id)
            .map(|(board, item)| ItemObject::of(board, item))
            .collect();
        Ok(Some(items))
    }

    /// The page after `cursor` (root level only, as on monday).
    #[graphql(complexity = "cost::page(limit, child_complexity)")]
    async fn next_items_page(
        &self,
        ctx: &Context<'_>,
        cursor: String,
        #[graphql(default = 25)] limit: i32,
    ) -> Result<ItemsResponse> {
        require(ctx, "boards:read")?;
        items::next_page(ctx, &cursor, limit)
    }

    /// The complexity budget around this request; free.
    #[graphql(complexity = 0)]
    async fn complexity(&self, ctx: &Context<'_>) -> Option<Complexity> {
        Some(complexity(ctx))
    }

    /// A board's webhooks (root only).
    #[graphql(complexity = "10 + child_complexity")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        board_id: ID,
        app_webhooks_only: Option<bool>,
    ) -> Result<Vec<super::webhooks::WebhookObject>> {
        super::webhooks::list(ctx, board_id, app_webhooks_only)
    }
}

/// What the budget charged this request (queries and mutations alike).
pub(super) fn complexity(ctx: &Context<'_>) -> Complexity {
    let charge = meter(ctx).lock().unwrap().charge;
    Complexity {
        before: int(charge.before),
        after: int(charge.after),
        query: int(charge.cost),
        reset_in_x_seconds: int(charge.reset_in),
    }
}
