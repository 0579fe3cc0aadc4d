//! Configuration: environment variables (`FORGE_*`), optionally a TOML file with the same keys
//! (lower-case, without the prefix) named by `FORGE_CONFIG`. The environment wins.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Every variable the forge reads; `deploy/forge.env.example` must list exactly these.
pub const VARIABLES: &[&str] = &[
    "FORGE_CONFIG",
    "FORGE_BIND",
    "FORGE_BASE_URL",
    "FORGE_DATA_DIR",
    "FORGE_MONGODB_URI",
    "FORGE_DB_NAME",
    "FORGE_AMQP_URL",
    "FORGE_AMQP_PREFIX",
    "FORGE_SMTP_URL",
    "FORGE_MAIL_FROM",
    "FORGE_SECURE_COOKIES",
    "FORGE_TASK_CONCURRENCY",
    "FORGE_MAX_ATTACHMENT_BYTES",
    "FORGE_LOG",
    "FORGE_LOG_FORMAT",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub bind: SocketAddr,
    /// Public URL; derived from `bind` when unset.
    pub base_url: Option<String>,
    pub data_dir: PathBuf,
    /// Unset: the forge runs its own embedded store under `data_dir`.
    pub mongodb_uri: Option<String>,
    pub db_name: String,
    /// Unset: tasks run in-process.
    pub amqp_url: Option<String>,
    /// Queue name prefix on the broker (several forges can share one RabbitMQ).
    pub amqp_prefix: String,
    /// Unset: mail is written as files under `data_dir`.
    pub smtp_url: Option<String>,
    /// Sender of notification mail.
    pub mail_from: String,
    /// Mark cookies `Secure`; defaults to on when `base_url` is https.
    pub secure_cookies: Option<bool>,
    pub task_concurrency: usize,
    /// Largest attachment accepted, in bytes.
    pub max_attachment_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            data_dir: PathBuf::from("./forge-data"),
            mongodb_uri: None,
            db_name: "forge".into(),
            amqp_url: None,
            amqp_prefix: "forge".into(),
            smtp_url: None,
            mail_from: "Forge <forge@localhost>".into(),
            secure_cookies: None,
            task_concurrency: 4,
            max_attachment_bytes: 10_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads `FORGE_CONFIG` (optional TOML file) and then the `FORGE_*` environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(std::env::vars())
    }

    /// Same as [`Config::from_env`] over the given variables (tests pass their own).
    pub fn from_source(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("FORGE_"))
            .collect();
        let mut builder = config::Config::builder();
        if let Some(path) = vars.get("FORGE_CONFIG") {
            builder = builder
                .add_source(config::File::new(path, config::FileFormat::Toml).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("FORGE")
                .source(Some(vars.clone()))
                .try_parsing(true),
        );
        let cfg: Self = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "FORGE_BASE_URL must start with http:// or https://, got {url:?}"
            )));
        }
        if self.db_name.is_empty() || self.db_name.contains(['/', '\\', '.', ' ', '"', '$']) {
            return Err(ConfigError(format!(
                "FORGE_DB_NAME {:?} is not a valid database name",
                self.db_name
            )));
        }
        if self.amqp_prefix.is_empty()
            || !self
                .amqp_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(ConfigError(format!(
                "FORGE_AMQP_PREFIX {:?} may only hold letters, digits, '.', '-' and '_'",
                self.amqp_prefix
            )));
        }
        Ok(())
    }

    /// Public base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| self.base_url().starts_with("https://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_variables() {
        let c = Config::from_source(vars(&[])).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert_eq!(c.db_name, "forge");
        assert!(c.mongodb_uri.is_none());
        assert!(!c.secure_cookies());
    }

    #[test]
    fn environment_overrides() {
        let c = Config::from_source(vars(&[
            ("FORGE_BIND", "0.0.0.0:9000"),
            ("FORGE_BASE_URL", "https://forge.example/"),
            ("FORGE_MONGODB_URI", "mongodb://db:27017/"),
            ("FORGE_TASK_CONCURRENCY", "9"),
        ]))
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.base_url(), "https://forge.example");
        assert!(c.secure_cookies());
        assert_eq!(c.mongodb_uri.as_deref(), Some("mongodb://db:27017/"));
        assert_eq!(c.task_concurrency, 9);
    }

    #[test]
    fn toml_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forge.toml");
        std::fs::write(&path, "db_name = \"fromfile\"\nbind = \"127.0.0.1:7000\"\n").unwrap();
        let c = Config::from_source(vars(&[
            ("FORGE_CONFIG", path.to_str().unwrap()),
            ("FORGE_BIND", "127.0.0.1:7001"),
        ]))
        .unwrap();
        assert_eq!(c.db_name, "fromfile");
        assert_eq!(c.bind.port(), 7001);
    }

    #[test]
    fn bad_values_are_reported() {
        assert!(Config::from_source(vars(&[("FORGE_BIND", "nonsense")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_BASE_URL", "ftp://x")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_DB_NAME", "a/b")])).is_err());
    }
}
