//! Development-only secrets, generated once into the data directory (SQLite only), so that
//! `patchbay serve` runs on a fresh machine with nothing set. Production never reaches here.

use super::{ConfigError, KeyRing};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::Path;

/// The secrets development may generate.
#[derive(Clone, Copy, Debug)]
pub enum DevSecret {
    VaultKeys,
    JwtSecret,
}

impl DevSecret {
    fn file_name(self) -> &'static str {
        match self {
            Self::VaultKeys => "dev-vault-keys",
            Self::JwtSecret => "dev-jwt-secret",
        }
    }

    fn variable(self) -> &'static str {
        match self {
            Self::VaultKeys => "PATCHBAY_VAULT_KEYS",
            Self::JwtSecret => "PATCHBAY_AUTH_JWT_SECRET",
        }
    }

    fn generate(self) -> SecretString {
        match self {
            Self::VaultKeys => KeyRing::generate().1,
            Self::JwtSecret => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                SecretString::from(hex::encode(bytes))
            }
        }
    }
}

/// Reads the secret from `<data dir>/secrets/<name>`, creating it (mode 0600) if missing.
pub fn load_or_generate(data_dir: &Path, which: DevSecret) -> Result<SecretString, ConfigError> {
    let variable = which.variable();
    let dir = data_dir.join("secrets");
    let path = dir.join(which.file_name());
    let fail = |what: &str, e: std::io::Error| {
        ConfigError::new(
            variable,
            format!("not set, and the development fallback could not {what} {}: {e}", path.display()),
        )
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(SecretString::from(text.trim().to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail("read", e)),
        Err(_) => {}
    }
    std::fs::create_dir_all(&dir).map_err(|e| fail("create the directory of", e))?;
    let secret = which.generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.expose_secret().as_bytes()).map_err(|e| fail("write", e))?;
            // Logging is not set up yet (its format is configuration too), so this goes to stderr.
            eprintln!("warning: {variable} is not set; generated a development secret in {}", path.display());
            Ok(secret)
        }
        // Another process won the race: use what it wrote.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| fail("read", e))?;
            Ok(SecretString::from(text.trim().to_string()))
        }
        Err(e) => Err(fail("create", e)),
    }
}
