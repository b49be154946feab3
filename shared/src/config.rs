//! Typed configuration, read once per cold start from the environment (12-factor). Every
//! environment variable the code reads is read here, and a malformed one is a start-up error
//! that names it.

use secrecy::{ExposeSecret, SecretString};
use std::env;

/// The JWT signing secret must be at least this long (HS256 wants a key as long as its hash).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// Plain connection URL; with `db_iam_auth` its password is replaced by IAM tokens.
    pub database_url: SecretString,
    pub db_iam_auth: bool,
    pub db_max_connections: u32,
    /// Signs new access tokens.
    pub jwt_secret: SecretString,
    /// `JWT_PREVIOUS_SECRETS` (comma-separated): still verify, never sign, so rotating the
    /// secret logs nobody out before their access token expires.
    pub jwt_previous_secrets: Vec<SecretString>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    pub rate_limit_per_minute: u32,
    pub auth_rate_limit_per_minute: u32,
    /// Deployment queue; `None` leaves scheduling to the periodic sweep.
    pub queue_url: Option<String>,
    /// Webhook queue (the notifier's); `None` leaves deliveries to the notifier's sweep.
    pub webhook_queue_url: Option<String>,
    /// `WEBHOOK_ALLOW_PRIVATE=true` (local development and tests only): webhooks may use plain
    /// http and point at loopback and private addresses.
    pub webhook_allow_private: bool,
    pub preemption_min_runtime_seconds: i64,
    /// Finished deployments older than this many days are deleted by the sweep; 0 keeps them.
    pub retention_days: i64,
    /// `DB_SSL_ROOT_CERT`: the CA bundle that makes IAM connections `verify-full`.
    pub db_ssl_root_cert: Option<String>,
    /// Set by the Lambda runtime (`AWS_LAMBDA_FUNCTION_NAME`): metrics go to stdout as EMF.
    pub in_lambda: bool,
}

/// Reads one setting after another from `lookup`; an empty value counts as unset.
pub struct Settings<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.text(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number in `min..=max`, or `default` when unset.
    pub fn int(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: if max == i64::MAX {
                        format!("expected a whole number of at least {min}, got {v:?}")
                    } else {
                        format!("expected a whole number from {min} to {max}, got {v:?}")
                    },
                }),
            },
        }
    }

    /// `true`/`1` or `false`/`0`; `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                reason: format!("expected true or false, got {other:?}"),
            }),
        }
    }
}

/// Whether this process runs as a Lambda function; read before the config exists (logging).
pub fn in_lambda_from_env() -> bool {
    env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = Settings(lookup);
        let required = |name| settings.required(name);
        let parsed = |name, default, min| settings.int(name, default, min, i64::MAX);
        let jwt_secret = required("JWT_SECRET")?;
        if jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            });
        }
        let mut jwt_previous_secrets = Vec::new();
        for previous in settings
            .text("JWT_PREVIOUS_SECRETS")
            .iter()
            .flat_map(|v| v.split(','))
        {
            let previous = previous.trim();
            if previous.is_empty() {
                continue;
            }
            if previous.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    name: "JWT_PREVIOUS_SECRETS",
                    reason: format!("each secret must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                });
            }
            jwt_previous_secrets.push(SecretString::from(previous.to_string()));
        }
        Ok(Config {
            database_url: SecretString::from(required("DATABASE_URL")?),
            db_iam_auth: settings.flag("DB_IAM_AUTH", false)?,
            db_max_connections: settings.int("DB_MAX_CONNECTIONS", 2, 1, 10_000)? as u32,
            jwt_secret: SecretString::from(jwt_secret),
            jwt_previous_secrets,
            jwt_issuer: settings
                .text("JWT_ISSUER")
                .unwrap_or_else(|| "hypervisor".into()),
            jwt_audience: settings
                .text("JWT_AUDIENCE")
                .unwrap_or_else(|| "hypervisor-api".into()),
            access_token_ttl_seconds: parsed("ACCESS_TOKEN_TTL_SECONDS", 900, 1)?,
            refresh_token_ttl_seconds: parsed("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600, 1)?,
            rate_limit_per_minute: settings.int("RATE_LIMIT_PER_MINUTE", 600, 1, u32::MAX.into())?
                as u32,
            auth_rate_limit_per_minute: settings.int(
                "AUTH_RATE_LIMIT_PER_MINUTE",
                10,
                1,
                u32::MAX.into(),
            )? as u32,
            queue_url: settings.text("QUEUE_URL"),
            webhook_queue_url: settings.text("WEBHOOK_QUEUE_URL"),
            webhook_allow_private: settings.flag("WEBHOOK_ALLOW_PRIVATE", false)?,
            preemption_min_runtime_seconds: parsed("PREEMPTION_MIN_RUNTIME_SECONDS", 0, 0)?,
            retention_days: settings.int("RETENTION_DAYS", 90, 0, 36_500)?,
            db_ssl_root_cert: settings.text("DB_SSL_ROOT_CERT"),
            in_lambda: settings.text("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        })
    }

    pub fn jwt_secret_bytes(&self) -> &[u8] {
        self.jwt_secret.expose_secret().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn short_jwt_secret_is_refused_at_start_up() {
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn previous_jwt_secrets_are_a_comma_separated_list_of_long_secrets() {
        let cfg = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
            (
                "JWT_PREVIOUS_SECRETS",
                "previous-secret-number-one-0123456789, previous-secret-number-two-0123456789,",
            ),
        ]))
        .unwrap();
        let previous: Vec<&str> = cfg
            .jwt_previous_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(
            previous,
            [
                "previous-secret-number-one-0123456789",
                "previous-secret-number-two-0123456789"
            ]
        );
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
            ("JWT_PREVIOUS_SECRETS", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_PREVIOUS_SECRETS"), "{err}");
        assert!(!err.to_string().contains("short"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let cfg = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("JWT_SECRET", SECRET),
        ]))
        .unwrap();
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains(SECRET));
    }

    #[test]
    fn defaults_apply_and_overrides_win() {
        let cfg = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
            ("RATE_LIMIT_PER_MINUTE", "5"),
        ]))
        .unwrap();
        assert_eq!(cfg.rate_limit_per_minute, 5);
        assert_eq!(cfg.auth_rate_limit_per_minute, 10);
        assert_eq!(cfg.access_token_ttl_seconds, 900);
        assert!(cfg.queue_url.is_none());
    }

    #[test]
    fn malformed_numbers_are_refused() {
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
            ("DB_MAX_CONNECTIONS", "lots"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DB_MAX_CONNECTIONS"));
    }
}
