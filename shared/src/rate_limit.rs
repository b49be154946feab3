//! Token-bucket rate limits kept in PostgreSQL, so they hold across every Lambda instance.
//! Each take is one atomic upsert: refill by elapsed time, take tokens if there are some.
//!
//! An authenticated request must not pay a write for its token (DESIGN §12): an instance
//! takes a lease of up to a second's refill at once and serves the next requests of the same
//! caller from memory until the lease is used up or a second old. Every token served was taken
//! from the shared bucket first, so the limit still holds across instances; a lease that
//! expires unused costs its caller at most a second's worth of tokens. With a limit under 60 a
//! minute the lease is one token: every request takes from PostgreSQL, as before.

use crate::{auth::Caller, error::ApiError, AppState};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long leased tokens may be served from memory.
const LEASE_LIFETIME: Duration = Duration::from_secs(1);
/// The most tokens one take leases, however high the limit.
const MAX_LEASE: u32 = 100;
/// Past this many callers, expired leases are dropped (memory stays bounded).
const PRUNE_ABOVE: usize = 10_000;

/// Tokens this instance took ahead of use, per bucket.
#[derive(Debug, Default)]
pub struct Leases(Mutex<HashMap<String, Lease>>);

#[derive(Debug)]
struct Lease {
    tokens: u32,
    expires: Instant,
}

impl Leases {
    /// Takes a leased token for `key`, if one is left and fresh.
    fn take(&self, key: &str) -> bool {
        let mut leases = self.0.lock().expect("the lease map is never poisoned");
        match leases.get_mut(key) {
            Some(lease) if lease.tokens > 0 && lease.expires > Instant::now() => {
                lease.tokens -= 1;
                true
            }
            _ => false,
        }
    }

    /// Keeps `tokens` more for `key` until a lease lifetime from now.
    fn add(&self, key: &str, tokens: u32) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        let mut leases = self.0.lock().expect("the lease map is never poisoned");
        if leases.len() > PRUNE_ABOVE {
            leases.retain(|_, lease| lease.expires > now);
        }
        let lease = leases.entry(key.to_string()).or_insert(Lease {
            tokens: 0,
            expires: now,
        });
        if lease.expires <= now {
            lease.tokens = 0;
        }
        lease.tokens += tokens;
        lease.expires = now + LEASE_LIFETIME;
    }
}

/// How many tokens one take leases for a bucket of `per_minute`: a second's refill.
fn lease_size(per_minute: u32) -> u32 {
    (per_minute / 60).clamp(1, MAX_LEASE)
}

/// Takes one token from the bucket `key` holding up to `per_minute` tokens, refilled at
/// `per_minute` per minute: from this instance's lease when it has one, else from PostgreSQL
/// (leasing more). A refused request takes nothing.
pub async fn take(state: &AppState, key: &str, per_minute: u32) -> Result<(), ApiError> {
    if state.rate_leases.take(key) {
        return Ok(());
    }
    let granted = take_from_store(state, key, per_minute, lease_size(per_minute)).await?;
    state.rate_leases.add(key, granted - 1);
    Ok(())
}

/// Takes up to `wanted` tokens from the shared bucket; returns how many (at least one), or
/// the 429 when not even one is there.
async fn take_from_store(
    state: &AppState,
    key: &str,
    per_minute: u32,
    wanted: u32,
) -> Result<u32, ApiError> {
    let capacity = f64::from(per_minute);
    let row = sqlx::query!(
        // In SET, `b` is the row as it is once locked (a concurrent take has committed), and
        // every expression sees its old values.
        r#"INSERT INTO rate_limit_buckets AS b (key, tokens, granted, allowed, updated_at)
           VALUES ($1, $2::float8 - LEAST($3, $2)::int, LEAST($3, $2)::int, true, now())
           ON CONFLICT (key) DO UPDATE SET
             granted = LEAST($3::float8, floor(LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0)))::int,
             tokens = LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0)
                      - LEAST($3::float8, floor(LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0))),
             allowed = LEAST($2, b.tokens + EXTRACT(EPOCH FROM now() - b.updated_at)::float8 * $2 / 60.0) >= 1,
             updated_at = now()
           RETURNING granted, tokens"#,
        key,
        capacity,
        wanted as i32
    )
    .fetch_one(&state.db)
    .await?;
    if row.granted > 0 {
        return Ok(row.granted as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_a_seconds_refill_within_bounds() {
        assert_eq!(lease_size(5), 1);
        assert_eq!(lease_size(59), 1);
        assert_eq!(lease_size(600), 10);
        assert_eq!(lease_size(u32::MAX), MAX_LEASE);
    }

    #[test]
    fn leased_tokens_are_served_once_each_and_not_after_they_expire() {
        let leases = Leases::default();
        assert!(!leases.take("user:a"));
        leases.add("user:a", 2);
        assert!(leases.take("user:a"));
        assert!(leases.take("user:a"));
        assert!(!leases.take("user:a"), "a third token was never leased");
        assert!(!leases.take("user:b"), "leases are per bucket");
        leases.add("user:a", 1);
        leases.0.lock().unwrap().get_mut("user:a").unwrap().expires = Instant::now();
        assert!(!leases.take("user:a"), "an expired lease is not served");
    }
}
