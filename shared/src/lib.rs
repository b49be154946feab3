//! Everything the Hypervisor functions share: configuration, database, auth, RBAC, errors,
//! the queue client, rate limiting and the pure scheduling algorithm.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod queue;
pub mod rate_limit;
pub mod rbac;
pub mod resources;
pub mod scheduling;
pub mod snapshot;
pub mod status;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod webhook;
pub mod whole_number;

use std::sync::Arc;

pub use error::{ApiError, FieldError};

/// Every migration, embedded: tests and `make migrate` apply exactly these.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// What a handler needs, built once per cold start and borrowed by every invocation.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: sqlx::PgPool,
    /// The same database through connections that plan each statement once (`db::plan_once`):
    /// only for statements whose plan does not depend on their parameters.
    pub reads: sqlx::PgPool,
    pub config: Arc<config::Config>,
    pub queue: Option<queue::Queue>,
    /// The notifier's queue (webhook deliveries); `None`: the notifier's sweep only.
    pub webhook_queue: Option<queue::Queue>,
    /// Set with `DB_IAM_AUTH=true`: renews the pool's IAM token.
    pub db_iam: Option<Arc<db::IamAuth>>,
    /// Rate-limit tokens this instance took ahead of use.
    pub rate_leases: Arc<rate_limit::Leases>,
}

impl AppState {
    pub fn new(db: sqlx::PgPool, config: config::Config, queue: Option<queue::Queue>) -> Self {
        AppState {
            reads: db.clone(),
            db,
            config: Arc::new(config),
            queue,
            webhook_queue: None,
            db_iam: None,
            rate_leases: Arc::default(),
        }
    }

    /// Builds the state from the environment: config, lazy pool, and the queue client if
    /// `QUEUE_URL` is set.
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = config::Config::from_env()?;
        let pools = db::pools(&config).await?;
        let queue = config.queue_url.clone().map(queue::Queue::from_env);
        let webhook_queue = config.webhook_queue_url.clone().map(queue::Queue::from_env);
        Ok(AppState {
            reads: pools.reads,
            db_iam: pools.iam,
            webhook_queue,
            ..AppState::new(pools.db, config, queue)
        })
    }

    /// Runs before each invocation: renews database credentials when they are due.
    pub async fn prepare_invocation(&self) -> anyhow::Result<()> {
        match &self.db_iam {
            Some(iam) => iam.refresh_if_due(&self.db, &self.reads).await,
            None => Ok(()),
        }
    }
}
