//! Authentication: access tokens (JWT), password hashing and opaque random tokens.

pub mod jwt;
pub mod password;
pub mod token;

use crate::{error::ApiError, http::Request, AppState};
use uuid::Uuid;

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
}

/// Reads and verifies the bearer token, then applies the caller's rate limit. Every token
/// failure is the same 401, so a caller learns nothing about why a token was refused.
pub async fn authenticate(state: &AppState, req: &Request) -> Result<AuthUser, ApiError> {
    let user = verify_bearer(state, req)?;
    crate::rate_limit::check_user(state, user.id).await?;
    Ok(user)
}

fn verify_bearer(state: &AppState, req: &Request) -> Result<AuthUser, ApiError> {
    let header = crate::http::header_str(req, "authorization")
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    // The scheme name is case-insensitive (RFC 7235).
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let claims = jwt::verify_access_token(&state.config, token)
        .map_err(|_| ApiError::Unauthorized("invalid or expired token".into()))?;
    Ok(AuthUser { id: claims.sub })
}
