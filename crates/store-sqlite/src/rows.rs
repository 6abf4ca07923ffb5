//! Row decoders: one function per model, reading the SQLite representation.

use crate::codec::*;
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;

/// A credential with its tenant (credentials carry none of their own: the connection's rules).
pub(crate) const CREDENTIAL: &str =
    "SELECT cr.*, c.tenant_id FROM credential cr JOIN connection c ON c.id = cr.connection_id";

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
        provider: parsed(row, "provider")?,
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
        event_type: parsed(row, "event_type")?,
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

pub(crate) fn connect_session(row: &SqliteRow) -> StoreResult<ConnectSession> {
    let outcome = match opt_text(row, "outcome")?.as_deref() {
        None => None,
        Some("connected") => Some(ConnectOutcome::Connected(uuid(row, "outcome_connection_id")?.into())),
        Some("error") => Some(ConnectOutcome::Failed(text(row, "outcome_error")?)),
        Some(other) => return Err(StoreError::Corrupt(format!("connect_session.outcome `{other}`"))),
    };
    Ok(ConnectSession {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        user_id: uuid(row, "user_id")?.into(),
        provider: parsed(row, "provider")?,
        mode: parsed(row, "mode")?,
        return_to: opt_text(row, "return_to")?,
        opener_origin: opt_text(row, "opener_origin")?,
        reconnect_connection_id: opt_uuid(row, "reconnect_connection_id")?.map(Into::into),
        end_user: EndUser { display_name: opt_text(row, "end_user_name")?, email: opt_text(row, "end_user_email")? },
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        consumed_at: opt_time(row, "consumed_at")?,
        outcome,
    })
}

pub(crate) fn oauth_state(row: &SqliteRow) -> StoreResult<OAuthState> {
    Ok(OAuthState {
        state_sha256: hash32(row, "state_sha256")?,
        provider: parsed(row, "provider")?,
        tenant_id: uuid(row, "tenant_id")?.into(),
        user_id: uuid(row, "user_id")?.into(),
        session_id: uuid(row, "session_id")?.into(),
        pkce_verifier: opt_blob(row, "pkce_verifier")?,
        binding_sha256: hash32(row, "binding_sha256")?,
        redirect_uri: text(row, "redirect_uri")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

/// A credential row joined with its connection's `tenant_id`.
pub(crate) fn credential(row: &SqliteRow) -> StoreResult<Credential> {
    Ok(Credential {
        connection_id: uuid(row, "connection_id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        flow: parsed(row, "flow")?,
        key_id: key_id(row, "key_id")?,
        ciphertext: blob(row, "ciphertext")?,
        version: int(row, "version")?,
        access_expires_at: opt_time(row, "access_expires_at")?,
        refresh_lease_owner: opt_text(row, "refresh_lease_owner")?,
        refresh_lease_until: opt_time(row, "refresh_lease_until")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn sync_run(row: &SqliteRow) -> StoreResult<SyncRun> {
    Ok(SyncRun {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        connection_id: uuid(row, "connection_id")?.into(),
        resource: parsed(row, "resource")?,
        trigger: parsed(row, "trigger")?,
        status: parsed(row, "status")?,
        job_id: opt_uuid(row, "job_id")?.map(Into::into),
        queued_at: time(row, "queued_at")?,
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
        api_calls: int(row, "api_calls")?,
        upserted: int(row, "upserted")?,
        deleted: int(row, "deleted")?,
        error_code: opt_text(row, "error_code")?,
        error_message: opt_text(row, "error_message")?,
    })
}

pub(crate) fn sync_state(row: &SqliteRow) -> StoreResult<SyncState> {
    Ok(SyncState {
        connection_id: uuid(row, "connection_id")?.into(),
        part: text(row, "part")?,
        checkpoint: json(row, "checkpoint")?,
        version: int(row, "version")?,
        generation: int(row, "generation")?,
        dirty: int(row, "dirty")? != 0,
        dirty_at: opt_time(row, "dirty_at")?,
        signal_healthy_until: opt_time(row, "signal_healthy_until")?,
        last_success_at: opt_time(row, "last_success_at")?,
        last_full_at: opt_time(row, "last_full_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A record row of the table of `kind`.
pub(crate) fn record(row: &SqliteRow, kind: RecordKind) -> StoreResult<Record> {
    Ok(Record {
        id: uuid(row, "id")?.into(),
        kind,
        tenant_id: uuid(row, "tenant_id")?.into(),
        connection_id: uuid(row, "connection_id")?.into(),
        provider_id: text(row, "provider_id")?,
        parent_id: opt_uuid(row, "parent_id")?.map(Into::into),
        fields: RecordFields {
            hash: blob(row, "hash")?,
            sealed: blob(row, "sealed")?,
            key_id: key_id(row, "key_id")?,
            starts_at: opt_time(row, "starts_at")?,
            ends_at: opt_time(row, "ends_at")?,
            series_id: opt_text(row, "series_id")?,
            status: opt_text(row, "status")?,
            provider_updated_at: opt_time(row, "provider_updated_at")?,
        },
        generation: int(row, "generation")?,
        change_seq: int(row, "change_seq")?,
        deleted_at: opt_time(row, "deleted_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A record row of a union over kinds, whose `kind` column names its table.
pub(crate) fn any_record(row: &SqliteRow) -> StoreResult<Record> {
    record(row, parsed(row, "kind")?)
}
