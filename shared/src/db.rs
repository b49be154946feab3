//! The PostgreSQL pool: lazy (a cold start does not wait for the database) and Lambda-sized.
//! With `DB_IAM_AUTH=true` it authenticates to RDS/Aurora with IAM tokens instead of a password.

use crate::config::Config;
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as TokenConfig};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use std::{str::FromStr, sync::Arc};

/// IAM tokens live 15 minutes; new connections get a fresh one well before that.
const IAM_TOKEN_REFRESH: Duration = Duration::from_secs(10 * 60);

pub fn connect_options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(
        config.database_url.expose_secret(),
    )?)
}

/// One Lambda instance serves one request at a time: a pool of 1-2 connections is enough,
/// and anything larger multiplies by the number of instances on the database.
pub fn pool_with(config: &Config, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

/// Connections that plan each prepared statement once, for [`Pools::reads`]. PostgreSQL's
/// default (`auto`) planned our hottest reads again on every execution, at several times the
/// cost of running them: `GET /api/v1/clusters` took ~160 µs to plan and ~35 µs to run. It is
/// not for every statement: a generic plan does not know a `LIMIT` or a cursor, and with a
/// million finished deployments the deployments list took 50 ms where a custom plan took 13.
pub fn plan_once(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_generic_plan")])
}

/// The pools, and with IAM auth the means to keep their credentials fresh.
pub struct Pools {
    pub db: PgPool,
    /// Same database, planned once per connection (see [`plan_once`]): for the reads of one
    /// object by id, and the clusters list, whose plans do not depend on their parameters.
    pub reads: PgPool,
    pub iam: Option<Arc<IamAuth>>,
}

pub async fn pools(config: &Config) -> anyhow::Result<Pools> {
    let options = connect_options(config)?;
    let (options, iam) = if config.db_iam_auth {
        let sdk = crate::aws::config_loader().load().await;
        let iam = Arc::new(IamAuth::new(
            sdk,
            options.clone(),
            config.db_ssl_root_cert.as_deref(),
        )?);
        (iam.options_with_token().await?, Some(iam))
    } else {
        (options, None)
    };
    Ok(Pools {
        db: pool_with(config, options.clone()),
        reads: pool_with(config, plan_once(options)),
        iam,
    })
}

/// Generates RDS IAM auth tokens (a local SigV4 signature: no network call) and puts them in
/// the pool's connect options before the previous one expires. TLS is required: IAM auth
/// refuses plain connections, and `verify-full` needs the RDS CA bundle (`DB_SSL_ROOT_CERT`).
#[derive(Debug)]
pub struct IamAuth {
    sdk: aws_config::SdkConfig,
    base: PgConnectOptions,
    generator: AuthTokenGenerator,
    refreshed: Mutex<Option<Instant>>,
}

impl IamAuth {
    pub fn new(
        sdk: aws_config::SdkConfig,
        base: PgConnectOptions,
        ssl_root_cert: Option<&str>,
    ) -> anyhow::Result<Self> {
        let region = sdk
            .region()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("DB_IAM_AUTH needs AWS_REGION"))?;
        let token_config = TokenConfig::builder()
            .hostname(base.get_host())
            .port(u64::from(base.get_port()))
            .username(base.get_username())
            .region(region)
            .build()
            .map_err(|e| anyhow::anyhow!("RDS auth token config: {e}"))?;
        let base = match ssl_root_cert {
            Some(path) => base.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(path),
            None => base.ssl_mode(PgSslMode::Require),
        };
        Ok(IamAuth {
            sdk,
            base,
            generator: AuthTokenGenerator::new(token_config),
            refreshed: Mutex::new(None),
        })
    }

    pub async fn token(&self) -> anyhow::Result<String> {
        let token = self
            .generator
            .auth_token(&self.sdk)
            .await
            .map_err(|e| anyhow::anyhow!("RDS auth token: {e}"))?;
        Ok(token.as_str().to_string())
    }

    pub async fn options_with_token(&self) -> anyhow::Result<PgConnectOptions> {
        let token = self.token().await?;
        *self.refreshed.lock().expect("not poisoned") = Some(Instant::now());
        Ok(self.base.clone().password(&token))
    }

    /// Called at the start of every invocation: cheap unless the token is due for renewal.
    pub async fn refresh_if_due(&self, db: &PgPool, reads: &PgPool) -> anyhow::Result<()> {
        let due = self
            .refreshed
            .lock()
            .expect("not poisoned")
            .is_none_or(|t| t.elapsed() >= IAM_TOKEN_REFRESH);
        if due {
            let options = self.options_with_token().await?;
            reads.set_connect_options(plan_once(options.clone()));
            db.set_connect_options(options);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::config::{Credentials, Region};

    /// The reads pool plans once; every other statement keeps PostgreSQL's default, which
    /// plans the deployments list with its cursor and limit known.
    #[tokio::test]
    async fn only_the_reads_pool_plans_each_statement_once() {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (make test sets it)");
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "JWT_SECRET" => Some("a-secret-that-is-at-least-32-bytes-long".into()),
            _ => None,
        })
        .unwrap();
        let pools = pools(&config).await.unwrap();
        let mode = |pool: PgPool| async move {
            sqlx::query_scalar::<_, String>("SHOW plan_cache_mode")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(mode(pools.reads.clone()).await, "force_generic_plan");
        assert_eq!(mode(pools.db.clone()).await, "auto");
    }

    #[tokio::test]
    async fn iam_tokens_are_signed_for_the_database_user_offline() {
        let sdk = crate::aws::config_loader()
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .load()
            .await;
        let base = PgConnectOptions::from_str(
            "postgres://hypervisor@db.example.eu-west-1.rds.amazonaws.com:5432/app",
        )
        .unwrap();
        let iam = IamAuth::new(sdk, base, None).unwrap();
        let token = iam.token().await.unwrap();
        assert!(
            token.starts_with("db.example.eu-west-1.rds.amazonaws.com:5432/?"),
            "{token}"
        );
        assert!(
            token.contains("Action=connect") && token.contains("DBUser=hypervisor"),
            "{token}"
        );
        assert!(token.contains("X-Amz-Signature="), "{token}");
        assert!(!token.contains("secret"));
    }
}
