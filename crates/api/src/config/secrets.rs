//! Secrets come only from the environment: `NAME`, or the file named by `NAME_FILE`
//! (container secrets). Never from flags, never echoed.

use super::ConfigError;
use secrecy::SecretString;

/// Where secret values are read from (the process environment, or a map in tests).
pub trait SecretSource {
    /// The raw value of an environment variable, if set.
    fn var(&self, name: &str) -> Option<String>;

    /// `name`, or the contents of the file named by `name_FILE` (trailing newline trimmed).
    /// Setting both is an error: the operator should know which one wins.
    fn secret(&self, name: &'static str) -> Result<Option<SecretString>, ConfigError> {
        let direct = self.var(name).filter(|v| !v.is_empty());
        let file_var = format!("{name}_FILE");
        let from_file = self.var(&file_var).filter(|v| !v.is_empty());
        match (direct, from_file) {
            (Some(_), Some(_)) => Err(ConfigError::new(name, format!("set either {name} or {file_var}, not both"))),
            (Some(value), None) => Ok(Some(SecretString::from(value))),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::new(name, format!("cannot read {file_var} file {path}: {e}")))?;
                let trimmed = text.trim_end_matches(['\n', '\r']).to_string();
                if trimmed.is_empty() {
                    return Err(ConfigError::new(name, format!("the file named by {file_var} is empty")));
                }
                Ok(Some(SecretString::from(trimmed)))
            }
            (None, None) => Ok(None),
        }
    }
}

/// The real process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl SecretSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl SecretSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
