//! Row decoders: one function per model, reading the SQLite representation.

use crate::codec::*;
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;

pub(crate) fn tenant(row: &SqliteRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: uuid(row, "id")?.into(),
        external_key: text(row, "external_key")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn user(row: &SqliteRow) -> StoreResult<AppUser> {
    Ok(AppUser {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        issuer: text(row, "issuer")?,
        subject: text(row, "subject")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &SqliteRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        name: text(row, "name")?,
        prefix: text(row, "prefix")?,
        scopes: decode_scopes(&text(row, "scopes")?)
            .map_err(|e| StoreError::Corrupt(format!("api_key.scopes: {e}")))?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

pub(crate) fn connection(row: &SqliteRow) -> StoreResult<Connection> {
    Ok(Connection {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        user_id: uuid(row, "user_id")?.into(),
        provider: text(row, "provider")?,
        provider_account_id: text(row, "provider_account_id")?,
        provider_user_id: opt_text(row, "provider_user_id")?,
        account_name: opt_text(row, "account_name")?,
        account_email: opt_text(row, "account_email")?,
        scopes: text(row, "scopes")?.split_whitespace().map(str::to_owned).collect(),
        status: parsed(row, "status")?,
        status_reason: opt_text(row, "status_reason")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        last_refresh_at: opt_time(row, "last_refresh_at")?,
        last_sync_at: opt_time(row, "last_sync_at")?,
    })
}

pub(crate) fn event(row: &SqliteRow) -> StoreResult<OutboxEvent> {
    Ok(OutboxEvent {
        id: uuid(row, "id")?.into(),
        position: int(row, "position")?,
        tenant_id: uuid(row, "tenant_id")?.into(),
        connection_id: opt_uuid(row, "connection_id")?.map(Into::into),
        event_type: text(row, "event_type")?,
        sequence: opt_int(row, "sequence")?,
        payload: json(row, "payload")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn audit(row: &SqliteRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: uuid(row, "id")?.into(),
        tenant_id: opt_uuid(row, "tenant_id")?.map(Into::into),
        actor: text(row, "actor")?,
        action: text(row, "action")?,
        target: opt_text(row, "target")?,
        request_id: opt_text(row, "request_id")?,
        ip: opt_text(row, "ip")?,
        at: time(row, "at")?,
    })
}

pub(crate) fn job(row: &SqliteRow) -> StoreResult<Job> {
    Ok(Job {
        id: uuid(row, "id")?.into(),
        kind: text(row, "kind")?,
        payload: json(row, "payload")?,
        priority: int32(row, "priority")?,
        run_at: time(row, "run_at")?,
        dedup_key: opt_text(row, "dedup_key")?,
        concurrency_key: opt_text(row, "concurrency_key")?,
        attempts: int32(row, "attempts")?,
        max_attempts: int32(row, "max_attempts")?,
        status: parsed(row, "status")?,
        lease_owner: opt_text(row, "lease_owner")?,
        lease_token: opt_uuid(row, "lease_token")?,
        lease_until: opt_time(row, "lease_until")?,
        last_error: opt_text(row, "last_error")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn instance(row: &SqliteRow) -> StoreResult<Instance> {
    let key_ids = text(row, "key_ids")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| StoreError::Corrupt("instance.key_ids is not a list of numbers".into())))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Instance {
        id: uuid(row, "id")?.into(),
        key_ids,
        version: text(row, "version")?,
        started_at: time(row, "started_at")?,
        heartbeat_at: time(row, "heartbeat_at")?,
    })
}
