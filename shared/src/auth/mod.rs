//! Authentication: access tokens (JWT), password hashing and opaque random tokens.

pub mod jwt;
pub mod password;
pub mod token;

use crate::{error::ApiError, AppState};
use axum::extract::FromRequestParts;
use http::request::Parts;
use uuid::Uuid;

/// The authenticated caller of a request, who has also taken a token from their rate limit:
/// a handler that takes one can only run for a verified caller within their limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitedCaller {
    pub id: Uuid,
}

impl FromRequestParts<AppState> for RateLimitedCaller {
    type Rejection = ApiError;

    /// Verifies the bearer token, then takes a token from the caller's rate limit. Every token
    /// failure is the same 401, so a caller learns nothing about why a token was refused.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = verify_bearer(state, &parts.headers)?;
        crate::rate_limit::check_user(state, caller.id).await?;
        Ok(caller)
    }
}

fn verify_bearer(
    state: &AppState,
    headers: &http::HeaderMap,
) -> Result<RateLimitedCaller, ApiError> {
    let header = crate::http::header_str(headers, "authorization")
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
    Ok(RateLimitedCaller { id: claims.sub })
}
