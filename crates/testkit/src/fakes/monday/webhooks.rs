//! Board webhooks on fake monday (providers.md A4, C1): `create_webhook` (which POSTs a
//! challenge to the URL first and fails unless it is echoed with 200), `delete_webhook`, the
//! `webhooks` query, and signed event deliveries (JWT HS256 with the app's signing secret,
//! `aud` = the webhook URL) whose bodies follow A4.4, plus lifecycle deliveries signed with the
//! client secret (A1.6).

use super::errors::app_error;
use super::mutation::Json;
use super::schema::{caller, require, shared};
use super::Shared;
use crate::fakes::common::random_token;
use async_graphql::{Context, Enum, Result, SimpleObject, ID};
use serde_json::{json, Value};
use std::time::Duration;

/// monday's `WebhookEventType`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "WebhookEventType", rename_items = "snake_case")]
pub(super) enum WebhookEventType {
    ChangeColumnValue,
    ChangeStatusColumnValue,
    ChangeSubitemColumnValue,
    ChangeSpecificColumnValue,
    ChangeName,
    CreateItem,
    ItemArchived,
    ItemDeleted,
    ItemMovedToAnyGroup,
    ItemMovedToSpecificGroup,
    ItemRestored,
    CreateSubitem,
    ChangeSubitemName,
    MoveSubitem,
    SubitemArchived,
    SubitemDeleted,
    CreateColumn,
    CreateUpdate,
    EditUpdate,
    DeleteUpdate,
    CreateSubitemUpdate,
}

impl WebhookEventType {
    fn name(self) -> String {
        async_graphql::Value::from(self).to_string()
    }
}

/// One registered webhook.
#[derive(Clone, Debug)]
pub(super) struct Hook {
    pub id: u64,
    pub board_id: u64,
    pub account_id: u64,
    pub event: String,
    pub config: Option<Value>,
    pub url: String,
}

/// Webhooks, the signing secret and what happened to them.
#[derive(Default)]
pub(super) struct Hooks {
    pub list: Vec<Hook>,
    pub signing_secret: Option<String>,
    /// Successful `create_webhook` calls.
    pub created: usize,
    /// Creations refused because the challenge was not echoed.
    pub challenge_failures: usize,
    pub deleted: usize,
}

/// `{ id board_id event config }` of a webhook.
#[derive(SimpleObject)]
#[graphql(name = "Webhook", rename_fields = "snake_case")]
pub(super) struct WebhookObject {
    id: ID,
    board_id: ID,
    event: String,
    config: Option<String>,
}

impl WebhookObject {
    fn of(hook: &Hook) -> Self {
        WebhookObject {
            id: ID(hook.id.to_string()),
            board_id: ID(hook.board_id.to_string()),
            event: hook.event.clone(),
            config: hook.config.as_ref().map(Value::to_string),
        }
    }
}

/// Posts the challenge and says whether the exact value came back with 200.
async fn challenge(url: &str) -> bool {
    let value = random_token("");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a reqwest client");
    let Ok(response) = client.post(url).json(&json!({ "challenge": value })).send().await else { return false };
    if response.status().as_u16() != 200 {
        return false;
    }
    let echoed: Option<Value> = response.json().await.ok();
    echoed.and_then(|b| b.get("challenge").and_then(Value::as_str).map(str::to_owned)).as_deref() == Some(&value)
}

pub(super) async fn create(
    ctx: &Context<'_>,
    board_id: ID,
    url: String,
    event: WebhookEventType,
    config: Option<Json>,
) -> Result<Option<WebhookObject>> {
    require(ctx, "webhooks:write")?;
    let account_id = caller(ctx).account_id;
    let shared: Shared = shared(ctx).clone();
    if url.len() > 255 {
        return Err(app_error("InvalidArgumentException", "url is longer than 255 characters", 200, json!({})));
    }
    let board = board_id
        .parse::<u64>()
        .ok()
        .filter(|id| shared.lock().unwrap().api.workspace.boards.get(id).is_some_and(|b| b.account_id == account_id));
    let Some(board) = board else {
        let data = json!({ "board_id": board_id.as_str() });
        return Err(app_error("InvalidBoardIdException", "The board does not exist", 200, data));
    };
    let config = config.map(|c| c.decode()).transpose()?;
    // No lock is held while the URL is called (it may call back into the fake).
    if !challenge(&url).await {
        shared.lock().unwrap().hooks.challenge_failures += 1;
        let data = json!({ "url": url });
        return Err(app_error("WebhookUrlVerificationFailed", "Failed to verify the webhook URL", 200, data));
    }
    let mut st = shared.lock().unwrap();
    let id = st.next_id();
    let hook = Hook { id, board_id: board, account_id, event: event.name(), config, url };
    let object = WebhookObject::of(&hook);
    st.hooks.list.push(hook);
    st.hooks.created += 1;
    Ok(Some(object))
}

pub(super) fn delete(ctx: &Context<'_>, id: ID) -> Result<Option<WebhookObject>> {
    require(ctx, "webhooks:write")?;
    let account_id = caller(ctx).account_id;
    let mut st = shared(ctx).lock().unwrap();
    let position = st.hooks.list.iter().position(|h| h.id.to_string() == id.as_str() && h.account_id == account_id);
    let Some(position) = position else {
        return Err(app_error("ResourceNotFoundException", "Webhook not found", 200, json!({ "id": id.as_str() })));
    };
    let hook = st.hooks.list.remove(position);
    st.hooks.deleted += 1;
    Ok(Some(WebhookObject::of(&hook)))
}

pub(super) fn list(ctx: &Context<'_>, board_id: ID, app_webhooks_only: Option<bool>) -> Result<Vec<WebhookObject>> {
    require(ctx, "webhooks:read")?;
    let _ = app_webhooks_only; // every webhook here was made by the app
    let account_id = caller(ctx).account_id;
    let st = shared(ctx).lock().unwrap();
    Ok(st
        .hooks
        .list
        .iter()
        .filter(|h| h.board_id.to_string() == board_id.as_str() && h.account_id == account_id)
        .map(WebhookObject::of)
        .collect())
}

/// A delivery as fake monday would send it: the URL, the JSON body and the `Authorization`
/// value. Tests send it (again, or out of order) with [`super::FakeMonday::send`].
#[derive(Clone, Debug)]
pub struct MondayDelivery {
    pub url: String,
    pub body: Vec<u8>,
    pub authorization: String,
}

/// A board webhook as the control handle shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredWebhook {
    pub id: u64,
    pub board_id: u64,
    pub account_id: u64,
    pub event: String,
    pub url: String,
}

impl From<&Hook> for RegisteredWebhook {
    fn from(h: &Hook) -> Self {
        RegisteredWebhook {
            id: h.id,
            board_id: h.board_id,
            account_id: h.account_id,
            event: h.event.clone(),
            url: h.url.clone(),
        }
    }
}

/// Signs `claims` with HS256.
pub(super) fn sign(claims: &Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key)
        .expect("HS256 signing does not fail")
}

/// The `{"event": …}` body of an event of `hook` about `item` (A4.4): `type` by event name,
/// numeric ids as JSON numbers, a fresh `triggerUuid`.
pub(super) fn event_body(hook: &Hook, item: Option<(u64, String, String)>, user_id: u64, now: u64) -> Value {
    let (item_id, item_name, group_id) = item.unwrap_or((0, String::new(), String::new()));
    let trigger = uuid::Uuid::new_v4().simple().to_string();
    let mut event = json!({
        "app": "monday",
        "triggerTime": chrono::DateTime::from_timestamp(i64::try_from(now).unwrap_or(0), 0)
            .unwrap_or_default()
            .to_rfc3339(),
        "subscriptionId": hook.id,
        "triggerUuid": trigger,
        "originalTriggerUuid": null,
        "userId": user_id,
        "accountId": hook.account_id,
        "boardId": hook.board_id,
        "isRetry": false,
    });
    let extra = match hook.event.as_str() {
        "create_item" => json!({ "type": "create_pulse", "pulseId": item_id, "pulseName": item_name,
            "groupId": group_id, "groupName": group_id, "groupColor": "#579bfc", "isTopGroup": true,
            "columnValues": {} }),
        "change_name" => json!({ "type": "update_name", "pulseId": item_id, "groupId": group_id,
            "value": { "name": item_name }, "previousValue": { "name": "" } }),
        "item_deleted" => json!({ "type": "delete_pulse", "itemId": item_id, "itemName": item_name }),
        "item_archived" => json!({ "type": "archive_pulse", "itemId": item_id, "itemName": item_name }),
        "item_restored" => json!({ "type": "restore_pulse", "itemId": item_id, "itemName": item_name }),
        "item_moved_to_any_group" | "item_moved_to_specific_group" => json!({ "type": "move_pulse_into_group",
            "pulseId": item_id, "sourceGroupId": "", "destGroupId": group_id, "destGroup": { "id": group_id } }),
        _ => json!({ "type": "update_column_value", "pulseId": item_id, "pulseName": item_name,
            "groupId": group_id, "columnId": "status", "columnType": "color", "columnTitle": "Status",
            "value": { "label": { "index": 1, "text": "Done", "is_done": true }, "post_id": null },
            "previousValue": null, "changedAt": now as f64 + 0.25 }),
    };
    if let (Value::Object(event), Value::Object(extra)) = (&mut event, extra) {
        event.extend(extra);
    }
    json!({ "event": event })
}

impl super::FakeMonday {
    /// The app's signing secret (Developer Center): board deliveries are signed with it.
    pub fn set_signing_secret(&self, secret: &str) {
        self.with(|st| st.hooks.signing_secret = Some(secret.to_owned()));
    }

    /// The registered board webhooks of `board_id`, oldest first.
    pub fn board_webhooks(&self, board_id: u64) -> Vec<RegisteredWebhook> {
        self.with(|st| st.hooks.list.iter().filter(|h| h.board_id == board_id).map(RegisteredWebhook::from).collect())
    }

    /// Successful `create_webhook` calls, creations refused for a failed challenge, and
    /// `delete_webhook` calls that deleted one.
    pub fn webhook_counts(&self) -> (usize, usize, usize) {
        self.with(|st| (st.hooks.created, st.hooks.challenge_failures, st.hooks.deleted))
    }

    /// The delivery monday would send to webhook `webhook_id` about `item_id` (its event
    /// type follows the webhook's event), signed with the signing secret for `exp_in` seconds.
    pub fn board_delivery(&self, webhook_id: u64, item_id: u64, exp_in: i64) -> MondayDelivery {
        self.with(|st| {
            let hook = st.hooks.list.iter().find(|h| h.id == webhook_id).cloned().expect("a registered webhook");
            let item = st.api.workspace.items.get(&item_id).map(|i| (i.id, i.name.clone(), i.group_id.clone()));
            let user = st.users.iter().find(|u| u.account_id == hook.account_id).map_or(1, |u| u.id);
            let now = st.clock.unix();
            let body = event_body(&hook, item, user, now);
            let secret = st.hooks.signing_secret.clone().expect("set_signing_secret first");
            let now = i64::try_from(now).unwrap_or(0);
            let claims = json!({
                "accountId": hook.account_id, "userId": user, "aud": hook.url, "iat": now, "exp": now + exp_in,
                "shortLivedToken": random_token("slt_"),
            });
            MondayDelivery {
                url: hook.url.clone(),
                body: body.to_string().into_bytes(),
                authorization: sign(&claims, &secret),
            }
        })
    }

    /// The deliveries of every webhook of `board_id` for `event` (e.g. `change_column_value`)
    /// about `item_id`, each with its own `triggerUuid`.
    pub fn board_deliveries(&self, board_id: u64, event: &str, item_id: u64) -> Vec<MondayDelivery> {
        let ids: Vec<u64> =
            self.board_webhooks(board_id).into_iter().filter(|h| h.event == event).map(|h| h.id).collect();
        ids.into_iter().map(|id| self.board_delivery(id, item_id, 300)).collect()
    }

    /// A lifecycle delivery (`install`, `uninstall`, …) of `account_id` to `url`, signed with the
    /// client secret of `client_id` (A1.6).
    pub fn lifecycle_delivery(&self, client_id: &str, account_id: u64, kind: &str, url: &str) -> MondayDelivery {
        self.with(|st| {
            let secret = st.clients.get(client_id).map(|c| c.secret.clone()).expect("a registered client");
            let account = st.account(account_id).map(|a| (a.slug.clone(), a.name.clone())).unwrap_or_default();
            let user = st.users.iter().find(|u| u.account_id == account_id).map_or(1, |u| u.id);
            let now = i64::try_from(st.clock.unix()).unwrap_or(0);
            let body = json!({ "type": kind, "data": {
                "app_id": 1, "app_name": "Patchbay", "user_id": user, "user_email": "", "user_name": "",
                "user_cluster": "other", "account_tier": "pro", "account_max_users": 10, "account_id": account_id,
                "account_name": account.1, "account_slug": account.0,
                "version_data": { "major": 1, "minor": 0, "patch": 0, "type": "major", "number": 1 },
                "timestamp": now, "subscription": null, "user_country": "US" } });
            let claims = json!({ "accountId": account_id, "userId": user, "aud": url, "iat": now, "exp": now + 300 });
            MondayDelivery {
                url: url.to_owned(),
                body: body.to_string().into_bytes(),
                authorization: sign(&claims, &secret),
            }
        })
    }

    /// POSTs a delivery as monday does (JSON, bare JWT in `Authorization`); the HTTP status.
    pub async fn send(&self, delivery: &MondayDelivery) -> u16 {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a reqwest client");
        match client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("authorization", &delivery.authorization)
            .body(delivery.body.clone())
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The account uninstalls the app ([`super::FakeMonday::uninstall`]) and monday posts the
    /// `uninstall` lifecycle webhook to `url`; its HTTP status.
    pub async fn uninstall_and_notify(&self, client_id: &str, account_id: u64, url: &str) -> u16 {
        self.uninstall(account_id);
        let delivery = self.lifecycle_delivery(client_id, account_id, "uninstall", url);
        self.send(&delivery).await
    }
}
