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
    "FORGE_MAIL_DOMAIN",
    "FORGE_MAX_MAIL_BYTES",
    "FORGE_MAIL_AUTHSERV_ID",
    "FORGE_SECURE_COOKIES",
    "FORGE_TASK_CONCURRENCY",
    "FORGE_TASK_SWEEP_SECS",
    "FORGE_SHUTDOWN_DRAIN_SECS",
    "FORGE_MAX_ATTACHMENT_BYTES",
    "FORGE_MAX_TEXT_BYTES",
    "FORGE_MAX_FORM_BYTES",
    "FORGE_MAX_PUSH_BYTES",
    "FORGE_MAX_CONNECTIONS",
    "FORGE_MAX_REQUESTS",
    "FORGE_HEADER_TIMEOUT_SECS",
    "FORGE_BODY_TIMEOUT_SECS",
    "FORGE_MAX_GIT_PROCESSES",
    "FORGE_PROJECTS_PER_HOUR",
    "FORGE_PAGES_PER_HOUR",
    "FORGE_METRICS_TOKEN",
    "FORGE_METRICS_ALLOW",
    "FORGE_EVENTS_RETENTION_DAYS",
    "FORGE_AGG_INTERVAL",
    "FORGE_CACHE_MB",
    "FORGE_WEBHOOK_ALLOW_PRIVATE",
    "FORGE_TRUSTED_PROXIES",
    "FORGE_LOG",
    "FORGE_LOG_FORMAT",
];

/// Longest `FORGE_SHUTDOWN_DRAIN_SECS`: a load balancer's health checks take a node out in a
/// few seconds.
pub const MAX_DRAIN_SECS: u64 = 60;

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
    /// Domain of the forge's own mail addresses (message ids, `reply+<token>@`, forum
    /// posting addresses); unset: the host of `base_url`.
    pub mail_domain: Option<String>,
    /// Largest message `forge mail-in` accepts, in bytes.
    pub max_mail_bytes: u64,
    /// The authserv-id of the `Authentication-Results` headers the receiving MTA adds (and
    /// strips from incoming mail): only a DMARC or DKIM pass it reports for the `From`
    /// domain makes `From` trusted. Unset: no `From` is trusted.
    pub mail_authserv_id: Option<String>,
    /// Mark cookies `Secure`; defaults to on when `base_url` is https.
    pub secure_cookies: Option<bool>,
    pub task_concurrency: usize,
    /// Seconds after which a task record stored but never published (its process died
    /// between the two) is published again by a worker; the longest such a task waits.
    pub task_sweep_secs: u64,
    /// Seconds a web node keeps serving after SIGTERM/SIGINT with `/healthz` answering 503,
    /// so that a proxy checking it sends it nothing new before its connections close (0: it
    /// stops at once, for a node nobody balances).
    pub shutdown_drain_secs: u64,
    /// Largest attachment accepted, in bytes.
    pub max_attachment_bytes: u64,
    /// Largest text a person may save in one field (page text, descriptions), in bytes.
    pub max_text_bytes: u64,
    /// Largest request body of a form or JSON call, in bytes (refused with 413 before it is
    /// read). URL-encoding can triple text, so this is larger than `max_text_bytes`.
    pub max_form_bytes: u64,
    /// Largest git push (request body of `git-receive-pack`), in bytes.
    pub max_push_bytes: u64,
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 with `Retry-After`.
    pub max_requests: usize,
    /// A client must send a request's headers within this many seconds; this also closes
    /// keep-alive connections idle for longer.
    pub header_timeout_secs: u64,
    /// A request body may pause at most this many seconds between chunks.
    pub body_timeout_secs: u64,
    /// git processes (clone, fetch, push, archive, blame) running at once; more get 503.
    pub max_git_processes: usize,
    /// Projects one account may create per hour (site admins are exempt).
    pub projects_per_hour: u32,
    /// Wiki pages (and other artifacts) one account may create per hour.
    pub pages_per_hour: u32,
    /// `/metrics` answers requests carrying `Authorization: Bearer <this token>`.
    pub metrics_token: Option<String>,
    /// `/metrics` also answers requests from these addresses (comma-separated IPs).
    pub metrics_allow: String,
    /// Raw events older than this many days are removed (a TTL index); aggregates stay.
    pub events_retention_days: u64,
    /// Seconds between periodic runs of the analytics aggregations (new events also start a
    /// run at once).
    pub agg_interval: u64,
    /// Memory for the read model (sessions, tokens, users, projects and their tools), in MB.
    pub cache_mb: u64,
    /// Webhooks may deliver to loopback, private, link-local and unique-local addresses
    /// (never to cloud metadata addresses); off: such targets are refused after DNS
    /// resolution and on every redirect.
    pub webhook_allow_private: bool,
    /// Proxies (comma-separated addresses or CIDR networks) whose `X-Forwarded-For` names
    /// the client; requests from anywhere else are the address that connected.
    pub trusted_proxies: String,
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
            mail_domain: None,
            max_mail_bytes: 10_000_000,
            mail_authserv_id: None,
            secure_cookies: None,
            task_concurrency: 4,
            task_sweep_secs: 120,
            shutdown_drain_secs: 0,
            max_attachment_bytes: 10_000_000,
            max_text_bytes: 1_000_000,
            max_form_bytes: 4_000_000,
            max_push_bytes: 2 << 30,
            max_connections: 10_000,
            max_requests: 1_024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_git_processes: 32,
            projects_per_hour: 20,
            pages_per_hour: 300,
            metrics_token: None,
            metrics_allow: "127.0.0.1,::1".into(),
            events_retention_days: 400,
            agg_interval: 10,
            cache_mb: 64,
            webhook_allow_private: false,
            trusted_proxies: String::new(),
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
        if self
            .db_name
            .to_ascii_lowercase()
            .ends_with(crate::events::DB_SUFFIX)
        {
            // Another forge's event log would share this database.
            return Err(ConfigError(format!(
                "FORGE_DB_NAME {:?} may not end with {:?}: that is the event log's database of a forge named without it",
                self.db_name,
                crate::events::DB_SUFFIX
            )));
        }
        if self.db_name.len() > crate::events::MAX_DB_NAME {
            return Err(ConfigError(format!(
                "FORGE_DB_NAME {:?} is too long: at most {} bytes (the event log's database adds {:?})",
                self.db_name,
                crate::events::MAX_DB_NAME,
                crate::events::DB_SUFFIX
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
        let positive = [
            ("FORGE_MAX_TEXT_BYTES", self.max_text_bytes),
            ("FORGE_MAX_FORM_BYTES", self.max_form_bytes),
            ("FORGE_MAX_PUSH_BYTES", self.max_push_bytes),
            ("FORGE_MAX_ATTACHMENT_BYTES", self.max_attachment_bytes),
            ("FORGE_MAX_MAIL_BYTES", self.max_mail_bytes),
            ("FORGE_MAX_CONNECTIONS", self.max_connections as u64),
            ("FORGE_MAX_REQUESTS", self.max_requests as u64),
            ("FORGE_HEADER_TIMEOUT_SECS", self.header_timeout_secs),
            ("FORGE_BODY_TIMEOUT_SECS", self.body_timeout_secs),
            ("FORGE_MAX_GIT_PROCESSES", self.max_git_processes as u64),
            ("FORGE_EVENTS_RETENTION_DAYS", self.events_retention_days),
            ("FORGE_AGG_INTERVAL", self.agg_interval),
            ("FORGE_CACHE_MB", self.cache_mb),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError(format!("{name} must be at least 1")));
        }
        // A node must still stop on SIGTERM before an orchestrator's grace period ends.
        if self.shutdown_drain_secs > MAX_DRAIN_SECS {
            return Err(ConfigError(format!(
                "FORGE_SHUTDOWN_DRAIN_SECS must be at most {MAX_DRAIN_SECS}"
            )));
        }
        if let Some(d) = &self.mail_domain
            && !valid_mail_domain(d)
        {
            return Err(ConfigError(format!(
                "FORGE_MAIL_DOMAIN must be a domain name (letters, digits, '-' and '.'), got {d:?}"
            )));
        }
        if self.metrics_allow_ips().is_err() {
            return Err(ConfigError(format!(
                "FORGE_METRICS_ALLOW must be comma-separated IP addresses, got {:?}",
                self.metrics_allow
            )));
        }
        if let Err(bad) = self.trusted_proxy_nets() {
            return Err(ConfigError(format!(
                "FORGE_TRUSTED_PROXIES must be comma-separated IP addresses or networks \
                 (10.0.0.0/8), got {bad:?}"
            )));
        }
        Ok(())
    }

    /// The networks of [`Config::trusted_proxies`] (a bare address is a network of one);
    /// the first entry that is neither, as the error.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| s.to_owned())
            })
            .collect()
    }

    /// Addresses that may read `/metrics` without the token.
    pub fn metrics_allow_ips(&self) -> Result<Vec<std::net::IpAddr>, std::net::AddrParseError> {
        self.metrics_allow
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }

    /// Public base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The domain of the forge's mail addresses, lower case: `FORGE_MAIL_DOMAIN`, else the
    /// host of the base URL (`localhost` when it has none).
    pub fn mail_domain(&self) -> String {
        if let Some(d) = &self.mail_domain {
            return d.trim_end_matches('.').to_ascii_lowercase();
        }
        let base = self.base_url();
        let rest = base.split_once("://").map_or(base.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // `[::1]:8080` keeps its brackets (a domain literal); `host:port` loses the port.
        let host = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or_default()
        } else {
            host.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            "localhost".to_owned()
        } else {
            host.to_ascii_lowercase()
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| self.base_url().starts_with("https://"))
    }
}

/// A domain name as mail addresses carry it: dot-separated labels of letters, digits and `-`.
fn valid_mail_domain(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
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
    fn mail_domain_defaults_to_the_base_url_host() {
        let c = Config::from_source(vars(&[])).unwrap();
        assert_eq!(c.mail_domain(), "127.0.0.1");
        let c = Config::from_source(vars(&[("FORGE_BASE_URL", "https://Forge.Example:8443/x")]))
            .unwrap();
        assert_eq!(c.mail_domain(), "forge.example");
        let c = Config::from_source(vars(&[
            ("FORGE_BASE_URL", "https://forge.example"),
            ("FORGE_MAIL_DOMAIN", "Mail.Forge.Example"),
        ]))
        .unwrap();
        assert_eq!(c.mail_domain(), "mail.forge.example");
        assert!(Config::from_source(vars(&[("FORGE_MAIL_DOMAIN", "a b")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_MAIL_DOMAIN", "x@y")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_MAX_MAIL_BYTES", "0")])).is_err());
    }

    #[test]
    fn bad_values_are_reported() {
        assert!(Config::from_source(vars(&[("FORGE_BIND", "nonsense")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_SHUTDOWN_DRAIN_SECS", "61")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_SHUTDOWN_DRAIN_SECS", "60")])).is_ok());
        assert!(Config::from_source(vars(&[("FORGE_BASE_URL", "ftp://x")])).is_err());
        assert!(Config::from_source(vars(&[("FORGE_DB_NAME", "a/b")])).is_err());
        // The event log's database is the name with `_events`: 56 + 7 = MongoDB's 63 bytes.
        let longest = "d".repeat(56);
        assert!(Config::from_source(vars(&[("FORGE_DB_NAME", &longest)])).is_ok());
        let err = Config::from_source(vars(&[("FORGE_DB_NAME", &format!("{longest}d"))]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 56 bytes"), "{err}");
        for taken in ["forge_events", "Forge_EVENTS"] {
            let err = Config::from_source(vars(&[("FORGE_DB_NAME", taken)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("event log's database"), "{err}");
        }
    }
}
