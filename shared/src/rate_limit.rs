//! Token-bucket rate limits kept in PostgreSQL, so they hold across every Lambda instance.
//! Each check is one atomic upsert: refill by elapsed time, take a token if there is one.

use crate::{auth::Caller, error::ApiError, AppState};

/// Takes one token from the bucket `key` holding up to `per_minute` tokens, refilled at
/// `per_minute` per minute. A refused request takes nothing.
pub async fn take(state: &AppState, key: &str, per_minute: u32) -> Result<(), ApiError> {
    let capacity = f64::from(per_minute);
    let row = sqlx::query!(
        r#"INSERT INTO rate_limit_buckets AS b (key, tokens, allowed, updated_at)
           VALUES ($1, $2::float8 - 1, true, now())
           ON CONFLICT (key) DO UPDATE SET
             allowed = LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0) >= 1,
             tokens = LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0)
                      - CASE WHEN LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0) >= 1
                             THEN 1 ELSE 0 END,
             updated_at = now()
           RETURNING allowed, tokens"#,
        key,
        capacity
    )
    .fetch_one(&state.db)
    .await?;
    if row.allowed {
        return Ok(());
    }
    let seconds_per_token = 60.0 / capacity;
    let retry_after_seconds = ((1.0 - row.tokens) * seconds_per_token).ceil().max(1.0) as u64;
    Err(ApiError::RateLimited {
        limit: per_minute,
        retry_after_seconds,
    })
}

/// The limit of authenticated routes: one bucket per user and one per API token.
pub async fn check_caller(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    take(
        state,
        &format!("{}:{}", caller.kind(), caller.id()),
        state.config.rate_limit_per_minute,
    )
    .await
}

/// The per-client limit of login and register (`scope`), optionally narrowed by username so
/// one noisy client behind a shared address cannot lock everybody out.
pub async fn check_client(
    state: &AppState,
    ip: &str,
    scope: &str,
    username: Option<&str>,
) -> Result<(), ApiError> {
    let key = match username {
        Some(name) => format!("{scope}:{ip}:{}", name.trim().to_lowercase()),
        None => format!("{scope}:{ip}"),
    };
    take(state, &key, state.config.auth_rate_limit_per_minute).await
}
