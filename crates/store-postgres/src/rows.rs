//! Row decoders: one function per model, reading Postgres' native types.

use patchbay_store::*;
use sqlx::postgres::PgRow;
use sqlx::Row;

pub(crate) fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|e| StoreError::Corrupt(format!("column `{name}`: {e}")))
}

/// Decodes a text column through `FromStr` (status enums), reporting a bad value as corrupt.
pub(crate) fn parsed<T>(row: &PgRow, name: &str) -> StoreResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    col::<String>(row, name)?.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column `{name}`: {e}")))
}

pub(crate) fn tenant(row: &PgRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId(col(row, "id")?),
        external_key: col(row, "external_key")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) fn user(row: &PgRow) -> StoreResult<AppUser> {
    Ok(AppUser {
        id: UserId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        issuer: col(row, "issuer")?,
        subject: col(row, "subject")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> StoreResult<ApiKey> {
    let scopes: String = col(row, "scopes")?;
    Ok(ApiKey {
        id: ApiKeyId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        name: col(row, "name")?,
        prefix: col(row, "prefix")?,
        scopes: decode_scopes(&scopes).map_err(|e| StoreError::Corrupt(format!("api_key.scopes: {e}")))?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        last_used_at: col(row, "last_used_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

pub(crate) fn connection(row: &PgRow) -> StoreResult<Connection> {
    let scopes: String = col(row, "scopes")?;
    Ok(Connection {
        id: ConnectionId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        user_id: UserId(col(row, "user_id")?),
        provider: parsed(row, "provider")?,
        provider_account_id: col(row, "provider_account_id")?,
        provider_user_id: col(row, "provider_user_id")?,
        account_name: col(row, "account_name")?,
        account_email: col(row, "account_email")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        status: parsed(row, "status")?,
        status_reason: col(row, "status_reason")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        last_refresh_at: col(row, "last_refresh_at")?,
        last_sync_at: col(row, "last_sync_at")?,
    })
}

pub(crate) fn event(row: &PgRow) -> StoreResult<OutboxEvent> {
    Ok(OutboxEvent {
        id: EventId(col(row, "id")?),
        position: col(row, "position")?,
        tenant_id: TenantId(col(row, "tenant_id")?),
        connection_id: col::<Option<uuid::Uuid>>(row, "connection_id")?.map(ConnectionId),
        event_type: parsed(row, "event_type")?,
        sequence: col(row, "sequence")?,
        payload: col(row, "payload")?,
        created_at: col(row, "created_at")?,
    })
}

pub(crate) fn audit(row: &PgRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(col(row, "id")?),
        tenant_id: col::<Option<uuid::Uuid>>(row, "tenant_id")?.map(TenantId),
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        target: col(row, "target")?,
        request_id: col(row, "request_id")?,
        ip: col(row, "ip")?,
        at: col(row, "at")?,
    })
}

pub(crate) fn job(row: &PgRow) -> StoreResult<Job> {
    Ok(Job {
        id: JobId(col(row, "id")?),
        kind: col(row, "kind")?,
        payload: col(row, "payload")?,
        priority: col(row, "priority")?,
        run_at: col(row, "run_at")?,
        dedup_key: col(row, "dedup_key")?,
        concurrency_key: col(row, "concurrency_key")?,
        attempts: col(row, "attempts")?,
        max_attempts: col(row, "max_attempts")?,
        status: parsed(row, "status")?,
        lease_owner: col(row, "lease_owner")?,
        lease_token: col(row, "lease_token")?,
        lease_until: col(row, "lease_until")?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub(crate) fn instance(row: &PgRow) -> StoreResult<Instance> {
    let key_ids: String = col(row, "key_ids")?;
    let key_ids = key_ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| StoreError::Corrupt("instance.key_ids is not a list of numbers".into())))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Instance {
        id: InstanceId(col(row, "id")?),
        key_ids,
        version: col(row, "version")?,
        started_at: col(row, "started_at")?,
        heartbeat_at: col(row, "heartbeat_at")?,
    })
}

/// A SHA-256 column (exactly 32 bytes).
fn hash32(row: &PgRow, name: &str) -> StoreResult<[u8; 32]> {
    col::<Vec<u8>>(row, name)?.try_into().map_err(|_| StoreError::Corrupt(format!("column `{name}` is not 32 bytes")))
}

/// A vault key id (a u32 stored as bigint).
pub(crate) fn key_id(row: &PgRow, name: &str) -> StoreResult<u32> {
    u32::try_from(col::<i64>(row, name)?).map_err(|_| StoreError::Corrupt(format!("column `{name}` is out of range")))
}

pub(crate) fn connect_session(row: &PgRow) -> StoreResult<ConnectSession> {
    let outcome = match col::<Option<String>>(row, "outcome")?.as_deref() {
        None => None,
        Some("connected") => Some(ConnectOutcome::Connected(ConnectionId(col(row, "outcome_connection_id")?))),
        Some("error") => Some(ConnectOutcome::Failed(col(row, "outcome_error")?)),
        Some(other) => return Err(StoreError::Corrupt(format!("connect_session.outcome `{other}`"))),
    };
    Ok(ConnectSession {
        id: ConnectSessionId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        user_id: UserId(col(row, "user_id")?),
        provider: parsed(row, "provider")?,
        mode: parsed(row, "mode")?,
        return_to: col(row, "return_to")?,
        opener_origin: col(row, "opener_origin")?,
        reconnect_connection_id: col::<Option<uuid::Uuid>>(row, "reconnect_connection_id")?.map(ConnectionId),
        end_user: EndUser { display_name: col(row, "end_user_name")?, email: col(row, "end_user_email")? },
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        consumed_at: col(row, "consumed_at")?,
        outcome,
    })
}

pub(crate) fn oauth_state(row: &PgRow) -> StoreResult<OAuthState> {
    Ok(OAuthState {
        state_sha256: hash32(row, "state_sha256")?,
        provider: parsed(row, "provider")?,
        tenant_id: TenantId(col(row, "tenant_id")?),
        user_id: UserId(col(row, "user_id")?),
        session_id: ConnectSessionId(col(row, "session_id")?),
        pkce_verifier: col(row, "pkce_verifier")?,
        binding_sha256: hash32(row, "binding_sha256")?,
        redirect_uri: col(row, "redirect_uri")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

/// A credential row joined with its connection's `tenant_id`.
pub(crate) fn credential(row: &PgRow) -> StoreResult<Credential> {
    Ok(Credential {
        connection_id: ConnectionId(col(row, "connection_id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        flow: parsed(row, "flow")?,
        key_id: key_id(row, "key_id")?,
        ciphertext: col(row, "ciphertext")?,
        version: col(row, "version")?,
        access_expires_at: col(row, "access_expires_at")?,
        refresh_lease_owner: col(row, "refresh_lease_owner")?,
        refresh_lease_until: col(row, "refresh_lease_until")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// A `deleted_at` column (tombstones are not part of [`Connection`]).
pub(crate) fn deleted_at(row: &PgRow) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    col(row, "deleted_at")
}

/// A `(tenant_id, id)` pair of a connection.
pub(crate) fn scoped_connection(row: &PgRow) -> StoreResult<(TenantScope, ConnectionId)> {
    Ok((TenantScope::new(TenantId(col(row, "tenant_id")?)), ConnectionId(col(row, "id")?)))
}

pub(crate) fn key_usage(row: &PgRow) -> StoreResult<KeyUsage> {
    Ok(KeyUsage { key_id: key_id(row, "key_id")?, credentials: col(row, "n")? })
}

pub(crate) fn sync_run(row: &PgRow) -> StoreResult<SyncRun> {
    Ok(SyncRun {
        id: SyncRunId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        connection_id: ConnectionId(col(row, "connection_id")?),
        resource: parsed(row, "resource")?,
        trigger: parsed(row, "trigger")?,
        status: parsed(row, "status")?,
        job_id: col::<Option<uuid::Uuid>>(row, "job_id")?.map(JobId),
        queued_at: col(row, "queued_at")?,
        started_at: col(row, "started_at")?,
        finished_at: col(row, "finished_at")?,
        api_calls: col(row, "api_calls")?,
        upserted: col(row, "upserted")?,
        deleted: col(row, "deleted")?,
        error_code: col(row, "error_code")?,
        error_message: col(row, "error_message")?,
    })
}

pub(crate) fn sync_state(row: &PgRow) -> StoreResult<SyncState> {
    Ok(SyncState {
        connection_id: ConnectionId(col(row, "connection_id")?),
        part: col(row, "part")?,
        checkpoint: col(row, "checkpoint")?,
        version: col(row, "version")?,
        generation: col(row, "generation")?,
        dirty: col(row, "dirty")?,
        dirty_at: col(row, "dirty_at")?,
        signal_healthy_until: col(row, "signal_healthy_until")?,
        last_success_at: col(row, "last_success_at")?,
        last_full_at: col(row, "last_full_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// A record row; its kind is the table it came from (a `kind` column in unions, else `kind`).
pub(crate) fn record(row: &PgRow, kind: Option<RecordKind>) -> StoreResult<Record> {
    let kind = match kind {
        Some(kind) => kind,
        None => parsed(row, "kind")?,
    };
    Ok(Record {
        id: RecordId(col(row, "id")?),
        kind,
        tenant_id: TenantId(col(row, "tenant_id")?),
        connection_id: ConnectionId(col(row, "connection_id")?),
        provider_id: col(row, "provider_id")?,
        parent_id: col::<Option<uuid::Uuid>>(row, "parent_id")?.map(RecordId),
        fields: RecordFields {
            hash: col(row, "hash")?,
            sealed: col(row, "sealed")?,
            key_id: key_id(row, "key_id")?,
            starts_at: col(row, "starts_at")?,
            ends_at: col(row, "ends_at")?,
            series_id: col(row, "series_id")?,
            status: col(row, "status")?,
            provider_updated_at: col(row, "provider_updated_at")?,
        },
        generation: col(row, "generation")?,
        change_seq: col(row, "change_seq")?,
        deleted_at: col(row, "deleted_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub(crate) fn breaker(row: &PgRow) -> StoreResult<Breaker> {
    Ok(Breaker {
        key: col(row, "key")?,
        state: parsed(row, "state")?,
        consecutive_failures: col(row, "consecutive_failures")?,
        opened_at: col(row, "opened_at")?,
        next_probe_at: col(row, "next_probe_at")?,
        cooldown_ms: col(row, "cooldown_ms")?,
        updated_at: col(row, "updated_at")?,
    })
}
