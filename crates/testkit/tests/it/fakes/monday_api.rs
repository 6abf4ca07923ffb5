//! Fake monday's GraphQL API v2 through real HTTP: boards, columns, groups, item paging, item
//! lifecycle, column-value writes and monday's error answers. Limits live in `limits`.

mod limits;

use super::http;
use patchbay_testkit::fakes::FakeMonday;
use serde_json::{json, Value};

const CLIENT: &str = "monday-client";
const ACCOUNT: u64 = 77;
const BOARD: u64 = 4001;
const ITEM_FIELDS: &str = "id name state group { id } column_values { id type text value } updated_at created_at";

/// A fake with account 77 (user 501) holding board 4001 "Roadmap" (columns `status`, `text0`,
/// `numbers`; groups `topics`, `done`), and a token with every scope Sync needs.
async fn fake() -> (FakeMonday, String) {
    let monday = FakeMonday::start().await;
    monday.register_client(CLIENT, "secret", &["https://app.example/cb"], &["me:read"]);
    monday.add_account(ACCOUNT, "acme", "Acme Inc");
    monday.add_user(501, ACCOUNT, "Ada Lovelace", "ada@acme.example");
    monday.add_board(ACCOUNT, BOARD, "Roadmap");
    monday.add_column_with_settings(BOARD, "status", "Status", "status", r#"{"labels":{"0":"Working","1":"Done"}}"#);
    monday.add_column(BOARD, "text0", "Notes", "text");
    monday.add_column(BOARD, "numbers", "Estimate", "numbers");
    monday.add_group(BOARD, "topics", "Topics");
    monday.add_group(BOARD, "done", "Done");
    let scopes = ["me:read", "account:read", "boards:read", "boards:write"];
    let token = monday.issue_legacy_token(CLIENT, 501, &scopes);
    (monday, token)
}

/// Posts a query as Sync does (raw token, pinned version); the status, headers and body.
async fn gql(
    monday: &FakeMonday,
    token: &str,
    query: &str,
    variables: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let request = http().post(monday.api_url()).header("Authorization", token).header("API-Version", "2026-10");
    let response = request.json(&json!({ "query": query, "variables": variables })).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn monday_api_lists_the_accounts_boards_with_columns_and_groups() {
    let (monday, token) = fake().await;
    monday.add_board(ACCOUNT, 4002, "Old plans");
    monday.delete_board(4002);
    monday.add_board(88, 9001, "Someone else's");
    let query = "{ boards(limit: 10) { id name state board_kind updated_at columns { id title type settings_str } groups { id title position } } }";

    let (status, headers, body) = gql(&monday, &token, query, Value::Null).await;
    let (_, _, deleted) = gql(&monday, &token, "{ boards(state: deleted) { id state } }", Value::Null).await;
    let (_, _, all) = gql(&monday, &token, "{ boards(state: all, limit: 1, page: 2) { id } }", Value::Null).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["api-version"], "2026-10");
    assert!(headers.contains_key("ratelimit") && headers.contains_key("ratelimit-policy"));
    let boards = body["data"]["boards"].as_array().unwrap();
    assert_eq!(boards.len(), 1, "only the account's active boards: {body}");
    assert_eq!(boards[0]["id"], "4001");
    assert_eq!(boards[0]["state"], "active");
    assert_eq!(boards[0]["board_kind"], "public");
    assert!(boards[0]["updated_at"].as_str().unwrap().ends_with('Z'));
    let columns: Vec<_> =
        boards[0]["columns"].as_array().unwrap().iter().map(|c| (c["id"].clone(), c["type"].clone())).collect();
    assert_eq!(
        columns,
        [(json!("status"), json!("status")), (json!("text0"), json!("text")), (json!("numbers"), json!("numbers"))]
    );
    assert_eq!(boards[0]["columns"][0]["settings_str"], r#"{"labels":{"0":"Working","1":"Done"}}"#);
    assert_eq!(
        boards[0]["groups"],
        json!([{"id": "topics", "title": "Topics", "position": "65536"},
        {"id": "done", "title": "Done", "position": "131072"}])
    );
    assert_eq!(deleted["data"]["boards"], json!([{"id": "4002", "state": "deleted"}]));
    assert_eq!(all["data"]["boards"], json!([{"id": "4002"}]), "page 2 of 1 across both boards");
    assert_eq!(body["account_id"], ACCOUNT);
    assert!(body["extensions"]["request_id"].is_string());
}

/// Walks a board's items as Sync does: first page nested, later pages at the root.
async fn walk(monday: &FakeMonday, token: &str, limit: u32) -> (Vec<Value>, usize) {
    let first = format!(
        "{{ boards(ids: [{BOARD}]) {{ items_page(limit: {limit}, query_params: {{order_by: [{{column_id: \"__last_updated__\", direction: asc}}]}}) {{ cursor items {{ {ITEM_FIELDS} }} }} }} }}"
    );
    let (status, _, body) = gql(monday, token, &first, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let mut page = body["data"]["boards"][0]["items_page"].clone();
    let mut items: Vec<Value> = page["items"].as_array().unwrap().clone();
    let mut pages = 1;
    while let Some(cursor) = page["cursor"].as_str().map(str::to_owned) {
        let next = format!("query ($c: String!) {{ next_items_page(cursor: $c, limit: {limit}) {{ cursor items {{ {ITEM_FIELDS} }} }} }}");
        let (_, _, body) = gql(monday, token, &next, json!({ "c": cursor })).await;
        page = body["data"]["next_items_page"].clone();
        items.extend(page["items"].as_array().unwrap_or_else(|| panic!("a page: {body}")).iter().cloned());
        pages += 1;
    }
    (items, pages)
}

#[tokio::test]
async fn monday_api_items_page_and_next_items_page_walk_every_item_by_last_update() {
    let (monday, token) = fake().await;
    let ids: Vec<u64> = (1..=7).map(|n| monday.create_item(BOARD, "topics", &format!("Task {n}"))).collect();
    monday.update_item_column(ids[2], "status", json!({"label": "Done"}));
    monday.update_item_column(ids[0], "text0", json!("first, now last but one"));
    monday.rename_item(ids[4], "Task five");

    let (items, pages) = walk(&monday, &token, 3).await;

    assert_eq!(pages, 3, "7 items in pages of 3");
    assert_eq!(items, monday.board_items(BOARD), "a walk reads what the fake holds, in __last_updated__ order");
    let order: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = [1, 3, 5, 6, 2, 0, 4].iter().map(|&i| ids[i].to_string()).collect();
    assert_eq!(order, expected);
    let done_id = ids[2].to_string();
    let done = items.iter().find(|i| i["id"] == done_id.as_str()).unwrap();
    assert_eq!(
        done["column_values"][0],
        json!({"id": "status", "type": "status", "text": "Done", "value": "{\"label\":\"Done\"}"})
    );
    assert_eq!(done["column_values"][1], json!({"id": "text0", "type": "text", "text": "", "value": null}));
}

#[tokio::test]
async fn monday_api_items_by_ids_reads_up_to_100_and_refuses_more() {
    let (monday, token) = fake().await;
    let a = monday.create_item(BOARD, "topics", "A");
    let b = monday.create_item(BOARD, "done", "B");
    let many: Vec<String> = (0..101).map(|n| (a + n).to_string()).collect();

    let (_, _, body) =
        gql(&monday, &token, &format!("{{ items(ids: [{a}, {b}, 999]) {{ {ITEM_FIELDS} }} }}"), Value::Null).await;
    let (status, _, refused) =
        gql(&monday, &token, "query ($ids: [ID!]!) { items(ids: $ids) { id } }", json!({ "ids": many })).await;

    let read = body["data"]["items"].as_array().unwrap();
    assert_eq!(read, &[monday.item(a).unwrap(), monday.item(b).unwrap()]);
    assert_eq!(status, 200);
    assert_eq!(code(&refused), "ItemsLimitationException", "{refused}");
    assert_eq!(refused["data"]["items"], Value::Null);
}

#[tokio::test]
async fn monday_api_move_archive_delete_and_restore_show_in_reads() {
    let (monday, token) = fake().await;
    let [moved, archived, deleted, purged] =
        ["Moved", "Archived", "Deleted", "Purged"].map(|n| monday.create_item(BOARD, "topics", n));
    monday.move_item(moved, "done");
    monday.archive_item(archived);
    monday.delete_item(deleted);
    monday.delete_item(purged);
    monday.purge_item(purged);
    let by_ids = format!("{{ items(ids: [{moved}, {archived}, {deleted}, {purged}]) {{ id state group {{ id }} }} }}");

    let (page, _) = walk(&monday, &token, 25).await;
    let (_, _, before) = gql(&monday, &token, &by_ids, Value::Null).await;
    monday.restore_item(archived);
    let (after, _) = walk(&monday, &token, 25).await;

    assert_eq!(page.len(), 1, "archived and deleted items leave items_page: {page:?}");
    assert_eq!(page[0]["group"]["id"], "done");
    assert_eq!(
        before["data"]["items"],
        json!([
            {"id": moved.to_string(), "state": "active", "group": {"id": "done"}},
            {"id": archived.to_string(), "state": "archived", "group": {"id": "topics"}},
            {"id": deleted.to_string(), "state": "deleted", "group": {"id": "topics"}},
        ])
    );
    let ids: Vec<&str> = after.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [moved.to_string(), archived.to_string()], "the restored item is back, most recently updated last");
}

#[tokio::test]
async fn monday_api_an_expired_cursor_and_a_cursor_with_query_params_are_refused() {
    let (monday, token) = fake().await;
    for n in 0..3 {
        monday.create_item(BOARD, "topics", &format!("T{n}"));
    }
    let first = format!("{{ boards(ids: [{BOARD}]) {{ items_page(limit: 1) {{ cursor items {{ id }} }} }} }}");
    let (_, _, body) = gql(&monday, &token, &first, Value::Null).await;
    let cursor = body["data"]["boards"][0]["items_page"]["cursor"].as_str().unwrap().to_owned();
    let next = "query ($c: String!) { next_items_page(cursor: $c, limit: 1) { cursor items { id } } }";

    let (_, _, fresh) = gql(&monday, &token, next, json!({ "c": cursor })).await;
    let both = format!("query ($c: String!) {{ boards(ids: [{BOARD}]) {{ items_page(cursor: $c, query_params: {{ids: [1]}}) {{ cursor }} }} }}");
    let (_, _, conflict) = gql(&monday, &token, &both, json!({ "c": cursor })).await;
    let (_, _, too_big) = gql(&monday, &token, &first.replace("limit: 1", "limit: 501"), Value::Null).await;
    monday.advance_clock(std::time::Duration::from_secs(60 * 60));
    let (status, _, expired) = gql(&monday, &token, next, json!({ "c": cursor })).await;

    assert_eq!(fresh["data"]["next_items_page"]["items"].as_array().unwrap().len(), 1, "{fresh}");
    assert_eq!(code(&conflict), "InvalidArgumentException", "{conflict}");
    assert_eq!(code(&too_big), "InvalidArgumentException", "{too_big}");
    assert_eq!(status, 200);
    assert_eq!(code(&expired), "CursorExpiredError", "{expired}");
}

#[tokio::test]
async fn monday_api_change_multiple_column_values_writes_and_refuses_a_bad_column_and_a_locked_board() {
    let (monday, token) = fake().await;
    let item = monday.create_item(BOARD, "topics", "Ship it");
    let mutation = "mutation ($b: ID!, $i: ID, $v: JSON!) { change_multiple_column_values(board_id: $b, item_id: $i, column_values: $v) { id column_values(ids: [\"status\", \"text0\"]) { id text } } }";
    let vars = |values: Value| json!({ "b": BOARD.to_string(), "i": item.to_string(), "v": values.to_string() });

    let (status, _, ok) =
        gql(&monday, &token, mutation, vars(json!({"status": {"label": "Done"}, "text0": "shipped"}))).await;
    let (bad_status, _, bad) = gql(&monday, &token, mutation, vars(json!({"text0": "x", "nope": "y"}))).await;
    let (_, _, nan) = gql(&monday, &token, mutation, vars(json!({"numbers": "many"}))).await;
    monday.lock_board(BOARD, true);
    let (locked_status, locked_headers, locked) = gql(&monday, &token, mutation, vars(json!({"text0": "again"}))).await;

    assert_eq!(status, 200, "{ok}");
    assert_eq!(
        ok["data"]["change_multiple_column_values"],
        json!({"id": item.to_string(),
        "column_values": [{"id": "status", "text": "Done"}, {"id": "text0", "text": "shipped"}]})
    );
    assert_eq!(monday.board_items(BOARD)[0]["column_values"][1]["value"], "\"shipped\"");
    assert_eq!(bad_status, 200);
    assert_eq!(code(&bad), "InvalidColumnIdException", "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["error_data"]["column_id"], "nope");
    assert_eq!(bad["data"]["change_multiple_column_values"], Value::Null);
    assert_eq!(code(&nan), "ColumnValueException", "{nan}");
    assert_eq!(monday.board_items(BOARD)[0]["column_values"][1]["text"], "shipped", "a refused write changes nothing");
    assert_eq!(locked_status, 423);
    assert_eq!(locked["errors"][0]["message"], "Resource is currently locked");
    assert!(locked_headers.contains_key("retry-after"));
}

#[tokio::test]
async fn monday_api_answers_syntax_and_schema_errors_with_http_200_as_monday_words_them() {
    let (monday, token) = fake().await;

    let (status, _, syntax) = gql(&monday, &token, "query { boards { id ) }", Value::Null).await;
    let (_, _, truncated) = gql(&monday, &token, "query { boards { id }", Value::Null).await;
    let (_, _, unknown) = gql(&monday, &token, "{ boards { id nope } }", Value::Null).await;
    let (_, _, nested) =
        gql(&monday, &token, "{ boards { next_items_page(cursor: \"x\") { cursor } } }", Value::Null).await;

    assert_eq!(status, 200);
    assert_eq!(syntax["errors"][0]["message"], "Parse error on \")\" (RPAREN) at [1, 21]", "{syntax}");
    assert_eq!(syntax["errors"][0]["locations"], json!([{"line": 1, "column": 21}]));
    assert_eq!(code(&syntax), "PARSING_ERROR");
    assert_eq!(truncated["errors"][0]["message"], "Unexpected end of document");
    assert_eq!(unknown["errors"][0]["message"], "Field 'nope' doesn't exist on type 'Board'");
    assert_eq!(code(&unknown), "undefinedField");
    assert_eq!(nested["errors"][0]["message"], "Field 'next_items_page' doesn't exist on type 'Board'");
}

#[tokio::test]
async fn monday_api_me_still_answers_the_identity_query_and_scopes_are_enforced() {
    let (monday, token) = fake().await;
    let narrow = monday.issue_legacy_token(CLIENT, 501, &["me:read"]);

    let (status, _, me) = gql(&monday, &token, "query { me { id email account { id slug } } }", Value::Null).await;
    let (_, _, denied) = gql(&monday, &narrow, "{ boards { id } }", Value::Null).await;
    let (unknown, _, _) = gql(&monday, "not-a-token", "{ me { id } }", Value::Null).await;

    assert_eq!(status, 200);
    assert_eq!(
        me["data"]["me"],
        json!({"id": "501", "email": "ada@acme.example", "account": {"id": "77", "slug": "acme"}})
    );
    assert_eq!(code(&denied), "missingRequiredPermissions", "{denied}");
    assert_eq!(unknown, 401);
}
