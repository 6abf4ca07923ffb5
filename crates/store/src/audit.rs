//! The audit log: who did what to which target, from where.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub tenant_id: Option<TenantId>,
    /// Who acted: `user:<id>`, `api_key:<id>`, `operator:<token fingerprint>`, `cli`, `system`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

/// Input for [`crate::AuditStore::record_audit`].
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent>;
    /// The tenant's audit events, oldest first.
    async fn list_audit_events(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<AuditEvent>>;
}
