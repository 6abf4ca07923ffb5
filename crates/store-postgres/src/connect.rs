//! Connect sessions and OAuth states: single-use rows, each consumed by one statement. A
//! concurrent consumer blocks on the row lock, then re-checks the WHERE clause against the
//! committed row and finds nothing, so exactly one wins.

use crate::{db_err, now, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl ConnectStore for PgStore {
    async fn create_connect_session(&self, new: NewConnectSession) -> StoreResult<ConnectSession> {
        let row = sqlx::query(
            "INSERT INTO connect_session (id, token_sha256, tenant_id, user_id, provider, mode, return_to,
                 opener_origin, reconnect_connection_id, created_at, expires_at, end_user_name, end_user_email)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *",
        )
        .bind(ConnectSessionId::new().0)
        .bind(&new.token_sha256[..])
        .bind(new.tenant_id.0)
        .bind(new.user_id.0)
        .bind(new.provider.as_str())
        .bind(new.mode.as_str())
        .bind(&new.return_to)
        .bind(&new.opener_origin)
        .bind(new.reconnect_connection_id.map(|c| c.0))
        .bind(now())
        .bind(us(new.expires_at))
        .bind(&new.end_user.display_name)
        .bind(&new.end_user.email)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        rows::connect_session(&row)
    }

    async fn get_connect_session(&self, scope: TenantScope, id: ConnectSessionId) -> StoreResult<ConnectSession> {
        let row = sqlx::query("SELECT * FROM connect_session WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::connect_session(&row)
    }

    async fn peek_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>> {
        let row = sqlx::query(
            "SELECT * FROM connect_session WHERE token_sha256 = $1 AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(&token_sha256[..])
        .bind(us(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::connect_session).transpose()
    }

    async fn consume_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>> {
        let row = sqlx::query(
            "UPDATE connect_session SET consumed_at = $2
             WHERE token_sha256 = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING *",
        )
        .bind(&token_sha256[..])
        .bind(us(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::connect_session).transpose()
    }

    async fn finish_connect_session(
        &self,
        id: ConnectSessionId,
        outcome: ConnectOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (kind, connection, error) = match &outcome {
            ConnectOutcome::Connected(c) => ("connected", Some(c.0), None),
            ConnectOutcome::Failed(code) => ("error", None, Some(code.as_str())),
        };
        // One statement: the update, or (when nothing was updated) whether the session exists.
        let exists: bool = sqlx::query_scalar(
            "WITH done AS (
                 UPDATE connect_session SET outcome = $2, outcome_connection_id = $3, outcome_error = $4,
                     finished_at = $5
                 WHERE id = $1 AND outcome IS NULL RETURNING id)
             SELECT EXISTS (SELECT 1 FROM done) OR EXISTS (SELECT 1 FROM connect_session WHERE id = $1)",
        )
        .bind(id.0)
        .bind(kind)
        .bind(connection)
        .bind(error)
        .bind(us(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn create_oauth_state(&self, state: OAuthState) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_state (state_sha256, provider, tenant_id, user_id, session_id, pkce_verifier,
                 binding_sha256, redirect_uri, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&state.state_sha256[..])
        .bind(state.provider.as_str())
        .bind(state.tenant_id.0)
        .bind(state.user_id.0)
        .bind(state.session_id.0)
        .bind(state.pkce_verifier.as_deref())
        .bind(&state.binding_sha256[..])
        .bind(&state.redirect_uri)
        .bind(us(state.created_at))
        .bind(us(state.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn unexpired_pkce_verifiers(&self, now: DateTime<Utc>) -> StoreResult<Vec<Vec<u8>>> {
        sqlx::query_scalar("SELECT pkce_verifier FROM oauth_state WHERE pkce_verifier IS NOT NULL AND expires_at > $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn consume_oauth_state(
        &self,
        state_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>> {
        let row = sqlx::query("DELETE FROM oauth_state WHERE state_sha256 = $1 RETURNING *")
            .bind(&state_sha256[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let state = row.as_ref().map(rows::oauth_state).transpose()?;
        // An expired state is deleted all the same, and is as good as unknown.
        Ok(state.filter(|s| s.expires_at > now))
    }
}
