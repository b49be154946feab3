//! The PostgreSQL pool: lazy (a cold start does not wait for the database) and Lambda-sized.

use crate::config::Config;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::{str::FromStr, time::Duration};

pub fn connect_options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(config.database_url.expose_secret())?)
}

/// One Lambda instance serves one request at a time: a pool of 1-2 connections is enough,
/// and anything larger multiplies by the number of instances on the database.
pub fn pool(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(connect_options(config)?))
}
