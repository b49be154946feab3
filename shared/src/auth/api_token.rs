//! Organization API tokens: `hvt_` and 256 random bits, of which only the SHA-256 is stored.

use super::{token, TokenCaller};
use crate::rbac::Role;
use sqlx::PgPool;

pub const PREFIX: &str = "hvt_";

/// A new token's secret, shown to its creator once.
pub fn new_secret() -> String {
    format!("{PREFIX}{}", token::random_token())
}

/// The live (unrevoked, unexpired) token with this secret. Marks it used, to the minute: the
/// same statement writes the row only when the minute it last recorded has passed, so a busy
/// token costs one write a minute, not one per request.
pub async fn resolve(db: &PgPool, secret: &str) -> sqlx::Result<Option<TokenCaller>> {
    let row = sqlx::query!(
        r#"WITH live AS (
               SELECT id, organization_id, role, name, last_used_at FROM api_tokens
               WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()),
           touched AS (
               UPDATE api_tokens t SET last_used_at = date_trunc('minute', now())
               FROM live
               WHERE t.id = live.id
                 AND (live.last_used_at IS NULL OR live.last_used_at < date_trunc('minute', now()))
               RETURNING t.id)
           SELECT id AS "id!", organization_id AS "organization_id!", role AS "role!: Role",
                  name AS "name!"
           FROM live"#,
        token::hash_token(secret)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| TokenCaller {
        id: r.id,
        organization_id: r.organization_id,
        role: r.role,
        name: r.name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_the_prefix_and_256_random_bits() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("hvt_"));
        assert_ne!(a, b);
        // base64url without padding: 43 characters hold 256 bits.
        assert_eq!(a.len(), PREFIX.len() + 43);
    }
}
