//! `patchbay dev-token`: a JWT for local development, signed with the configured (or generated)
//! HS256 secret. Refused in production.

use crate::config::{Environment, Settings};
use anyhow::{bail, Context};
use jsonwebtoken::{encode, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

#[derive(Debug, clap::Args)]
pub struct DevTokenArgs {
    /// The user's subject (`sub`).
    #[arg(long)]
    pub user: String,
    /// The tenant claim's value (claim mode only; the claim is PATCHBAY_AUTH_TENANT_CLAIM).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The role claim's value (e.g. `admin` makes a tenant admin).
    #[arg(long)]
    pub role: Option<String>,
    /// Lifetime in minutes.
    #[arg(long, default_value_t = 60)]
    pub ttl_minutes: i64,
}

pub fn run(args: DevTokenArgs, settings: &Settings) -> anyhow::Result<()> {
    if settings.environment == Environment::Production {
        bail!("dev-token is refused when PATCHBAY_ENV=production");
    }
    let auth = &settings.auth;
    let secret = auth
        .jwt_secret
        .as_ref()
        .context("PATCHBAY_AUTH_JWT_SECRET is not set (dev-token signs with the HS256 secret)")?;
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(args.user));
    claims.insert("iss".into(), json!(auth.issuer.clone().unwrap_or_else(|| "patchbay-dev".into())));
    if let Some(audience) = &auth.audience {
        claims.insert("aud".into(), json!(audience));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + args.ttl_minutes.max(1) * 60));
    match (&auth.tenant_claim, args.tenant) {
        (Some(claim), Some(tenant)) => {
            claims.insert(claim.clone(), Value::String(tenant));
        }
        (None, Some(_)) => {
            eprintln!("warning: --tenant is ignored: PATCHBAY_AUTH_TENANT_CLAIM is unset (per-user tenants)")
        }
        (Some(claim), None) => {
            eprintln!("warning: no --tenant: the token lacks the `{claim}` claim and will be refused")
        }
        (None, None) => {}
    }
    if let Some(role) = args.role {
        claims.insert(auth.role_claim.clone(), Value::String(role));
    }
    let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.expose_secret().as_bytes()))
        .context("signing the token")?;
    println!("{token}");
    Ok(())
}
