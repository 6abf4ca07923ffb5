//! The authenticated caller and what it may do.

use super::AuthError;
use patchbay_store::{ApiKeyId, ApiKeyScope, TenantId, TenantScope, UserId};

/// Who is calling `/v1`.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub kind: PrincipalKind,
}

/// An end user (JWT) or an API key.
#[derive(Clone, Debug)]
pub enum PrincipalKind {
    /// `identity` is who the verified token names; `admin` is the tenant admin role.
    User {
        user_id: UserId,
        admin: bool,
        identity: UserIdentity,
    },
    ApiKey {
        key_id: ApiKeyId,
        name: String,
        scopes: Vec<ApiKeyScope>,
    },
}

/// Who a verified user token names, as Patchbay keyed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserIdentity {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `iss` (empty when the token carries none and no issuer is required).
    pub issuer: String,
    /// The tenant's external key: `org:<tenant claim>` in claim mode, else `user:<iss>|<sub>`.
    pub tenant_key: String,
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read the caller's data (users: their own; admins and keys: the tenant's).
    Read,
    /// Start connects.
    Connect,
    /// Change data.
    Write,
    /// Tenant administration (users with the admin role, keys with the `admin` scope).
    Admin,
}

impl Principal {
    /// The tenant every read of this request is limited to.
    pub fn scope(&self) -> TenantScope {
        TenantScope::new(self.tenant_id)
    }

    /// Refuses the request unless the caller may do `need`.
    pub fn require(&self, need: Need) -> Result<(), AuthError> {
        match (&self.kind, need) {
            (PrincipalKind::User { admin: false, .. }, Need::Admin) => Err(AuthError::NeedsAdminRole),
            (PrincipalKind::User { .. }, _) => Ok(()),
            (PrincipalKind::ApiKey { scopes, .. }, need) => {
                let scope = match need {
                    Need::Read => ApiKeyScope::Read,
                    Need::Connect => ApiKeyScope::Connect,
                    Need::Write => ApiKeyScope::Write,
                    Need::Admin => ApiKeyScope::Admin,
                };
                // `admin` implies every other scope.
                if scopes.contains(&scope) || scopes.contains(&ApiKeyScope::Admin) {
                    Ok(())
                } else {
                    Err(AuthError::MissingScope(scope))
                }
            }
        }
    }

    /// For end users who are not admins: the only user whose data they may see.
    pub fn own_user(&self) -> Option<UserId> {
        match &self.kind {
            PrincipalKind::User { user_id, admin: false, .. } => Some(*user_id),
            _ => None,
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::User { user_id, .. } => format!("user:{user_id}"),
            PrincipalKind::ApiKey { key_id, .. } => format!("api_key:{key_id}"),
        }
    }
}

/// An operator, authenticated by one of `PATCHBAY_ADMIN_TOKENS`.
#[derive(Clone, Debug)]
pub struct Operator {
    /// First 8 hex of the token's SHA-256: tells which token acted, reveals nothing.
    pub fingerprint: String,
}

impl Operator {
    pub fn actor(&self) -> String {
        format!("operator:{}", self.fingerprint)
    }
}

/// Ids in logs are shortened to their last 8 characters (the random end of a v7 UUID):
/// enough to correlate, not a full identifier.
pub fn short(id: &str) -> &str {
    &id[id.len().saturating_sub(8)..]
}
