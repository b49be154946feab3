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

/// The pool, and with IAM auth the means to keep its credentials fresh.
pub async fn pool(config: &Config) -> anyhow::Result<(PgPool, Option<Arc<IamAuth>>)> {
    let options = connect_options(config)?;
    if !config.db_iam_auth {
        return Ok((pool_with(config, options), None));
    }
    let sdk = crate::aws::config_loader().load().await;
    let iam = Arc::new(IamAuth::new(
        sdk,
        options.clone(),
        config.db_ssl_root_cert.as_deref(),
    )?);
    let options = iam.options_with_token().await?;
    let pool = pool_with(config, options);
    Ok((pool, Some(iam)))
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
    pub async fn refresh_if_due(&self, pool: &PgPool) -> anyhow::Result<()> {
        let due = self
            .refreshed
            .lock()
            .expect("not poisoned")
            .is_none_or(|t| t.elapsed() >= IAM_TOKEN_REFRESH);
        if due {
            pool.set_connect_options(self.options_with_token().await?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::config::{Credentials, Region};

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
