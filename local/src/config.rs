//! The local server's own settings, read like the functions' ([`shared::config::Settings`]).

use shared::config::{ConfigError, Settings};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `HOST` and `PORT` (default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// `TEMPLATE`: where the routes are read from (default `template.yaml`).
    pub template: PathBuf,
    /// `SWEEP_INTERVAL_SECONDS` (default 5).
    pub sweep_interval: Duration,
    /// `LOCAL_ROLE`: what this process runs (default everything).
    pub role: Role,
    /// `SCHEDULER_CONCURRENCY`: how many consumers of the scheduler's queue run passes at once,
    /// as concurrent Lambda invocations do in AWS (default 2).
    pub scheduler_concurrency: usize,
}

/// Which part of the system one local process runs. `make dev` runs all of it in one process;
/// `make chaos` runs the API and the scheduler as separate processes, to kill them separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    All,
    /// The HTTP functions only.
    Api,
    /// The queue consumer and the sweep only.
    Scheduler,
}

impl Role {
    pub fn serves_http(self) -> bool {
        self != Role::Scheduler
    }

    pub fn schedules(self) -> bool {
        self != Role::Api
    }
}

impl LocalConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = Settings(lookup);
        let host = settings.text("HOST").unwrap_or_else(|| "127.0.0.1".into());
        let host: IpAddr = host.parse().map_err(|_| ConfigError::Invalid {
            name: "HOST",
            reason: format!("expected an IP address, got {host:?}"),
        })?;
        let port = settings.int("PORT", 3000, 0, u16::MAX.into())? as u16;
        Ok(LocalConfig {
            addr: SocketAddr::new(host, port),
            template: settings
                .text("TEMPLATE")
                .map_or_else(|| "template.yaml".into(), PathBuf::from),
            sweep_interval: Duration::from_secs(settings.int(
                "SWEEP_INTERVAL_SECONDS",
                5,
                1,
                86_400,
            )? as u64),
            scheduler_concurrency: settings.int("SCHEDULER_CONCURRENCY", 2, 1, 64)? as usize,
            role: match settings.text("LOCAL_ROLE").as_deref() {
                None | Some("all") => Role::All,
                Some("api") => Role::Api,
                Some("scheduler") => Role::Scheduler,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "LOCAL_ROLE",
                        reason: format!("expected all, api or scheduler, got {other:?}"),
                    })
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_that_is_not_a_number_is_a_start_up_error_naming_it() {
        let err =
            LocalConfig::from_lookup(|name| (name == "PORT").then(|| "abc".into())).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
        assert!(err.to_string().contains("abc"), "{err}");
    }

    #[test]
    fn defaults_apply_and_overrides_win() {
        let defaults = LocalConfig::from_lookup(|_| None).unwrap();
        assert_eq!(defaults.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(defaults.sweep_interval, Duration::from_secs(5));
        assert_eq!(defaults.scheduler_concurrency, 2);
        let custom = LocalConfig::from_lookup(|name| match name {
            "PORT" => Some("3100".into()),
            "SWEEP_INTERVAL_SECONDS" => Some("2".into()),
            "SCHEDULER_CONCURRENCY" => Some("4".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(custom.addr.port(), 3100);
        assert_eq!(custom.sweep_interval, Duration::from_secs(2));
        assert_eq!(custom.scheduler_concurrency, 4);
    }
}
