//! Connect sessions and OAuth states: single-use rows, each consumed by one statement on the
//! single writer connection, so of concurrent consumers exactly one wins.

use crate::codec::{id_text, micros, now};
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl ConnectStore for SqliteStore {
    async fn create_connect_session(&self, new: NewConnectSession) -> StoreResult<ConnectSession> {
        let row = sqlx::query(
            "INSERT INTO connect_session (id, token_sha256, tenant_id, user_id, provider, mode, return_to,
                 opener_origin, reconnect_connection_id, created_at, expires_at, end_user_name, end_user_email)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(id_text(ConnectSessionId::new().0))
        .bind(&new.token_sha256[..])
        .bind(id_text(new.tenant_id.0))
        .bind(id_text(new.user_id.0))
        .bind(new.provider.as_str())
        .bind(new.mode.as_str())
        .bind(&new.return_to)
        .bind(&new.opener_origin)
        .bind(new.reconnect_connection_id.map(|c| id_text(c.0)))
        .bind(micros(now()))
        .bind(micros(new.expires_at))
        .bind(&new.end_user.display_name)
        .bind(&new.end_user.email)
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        rows::connect_session(&row)
    }

    async fn get_connect_session(&self, scope: TenantScope, id: ConnectSessionId) -> StoreResult<ConnectSession> {
        let row = sqlx::query("SELECT * FROM connect_session WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
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
            "SELECT * FROM connect_session WHERE token_sha256 = ? AND consumed_at IS NULL AND expires_at > ?",
        )
        .bind(&token_sha256[..])
        .bind(micros(now))
        .fetch_optional(&self.reader)
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
            "UPDATE connect_session SET consumed_at = ?2
             WHERE token_sha256 = ?1 AND consumed_at IS NULL AND expires_at > ?2 RETURNING *",
        )
        .bind(&token_sha256[..])
        .bind(micros(now))
        .fetch_optional(&self.writer)
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
            ConnectOutcome::Connected(c) => ("connected", Some(id_text(c.0)), None),
            ConnectOutcome::Failed(code) => ("error", None, Some(code.as_str())),
        };
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE connect_session SET outcome = ?, outcome_connection_id = ?, outcome_error = ?, finished_at = ?
             WHERE id = ? AND outcome IS NULL",
        )
        .bind(kind)
        .bind(connection)
        .bind(error)
        .bind(micros(now))
        .bind(id_text(id.0))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            // Already finished (the first outcome wins), or no such session.
            sqlx::query("SELECT 1 FROM connect_session WHERE id = ?")
                .bind(id_text(id.0))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn create_oauth_state(&self, state: OAuthState) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_state (state_sha256, provider, tenant_id, user_id, session_id, pkce_verifier,
                 binding_sha256, redirect_uri, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&state.state_sha256[..])
        .bind(state.provider.as_str())
        .bind(id_text(state.tenant_id.0))
        .bind(id_text(state.user_id.0))
        .bind(id_text(state.session_id.0))
        .bind(state.pkce_verifier.as_deref())
        .bind(&state.binding_sha256[..])
        .bind(&state.redirect_uri)
        .bind(micros(state.created_at))
        .bind(micros(state.expires_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn unexpired_pkce_verifiers(&self, now: DateTime<Utc>) -> StoreResult<Vec<Vec<u8>>> {
        sqlx::query_scalar("SELECT pkce_verifier FROM oauth_state WHERE pkce_verifier IS NOT NULL AND expires_at > ?")
            .bind(micros(now))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)
    }

    async fn consume_oauth_state(
        &self,
        state_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<OAuthState>> {
        let row = sqlx::query("DELETE FROM oauth_state WHERE state_sha256 = ? RETURNING *")
            .bind(&state_sha256[..])
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        let state = row.as_ref().map(rows::oauth_state).transpose()?;
        // An expired state is deleted all the same, and is as good as unknown.
        Ok(state.filter(|s| s.expires_at > now))
    }
}
