//! Logging set-up: JSON lines in Lambda (CloudWatch), readable text locally.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = crate::config::in_lambda_from_env();
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = if in_lambda {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}
