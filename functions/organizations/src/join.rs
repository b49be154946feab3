//! POST /api/v1/organizations/join — the code travels in the body, never in a URL.

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::{token, RateLimitedCaller};
use shared::http::extract::Json;
use shared::http::{json, Response};
use shared::rbac::{person, Role};
use shared::{ApiError, AppState};
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct JoinRequest {
    pub invite_code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrganizationRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Joined {
    pub organization: OrganizationRef,
    pub role: Role,
}

/// Join an organization with an invite code. A person only (an API token is 403).
#[utoipa::path(post, path = "/api/v1/organizations/join", tag = "organizations", security(("bearer" = [])),
    request_body = JoinRequest,
    responses((status = 200, body = Joined), (status = 401, body = shared::error::Problem),
              (status = 403, description = "an API token", body = shared::error::Problem),
              (status = 404, description = "unknown, expired, revoked or used-up code", body = shared::error::Problem),
              (status = 409, description = "already a member", body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn join(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Json(body): Json<JoinRequest>,
) -> Result<Response, ApiError> {
    let user = person(&caller)?;
    let unusable = || ApiError::NotFound("invite code not found, expired or used up".into());
    let mut tx = state.db.begin().await?;
    // Taking a use and joining happen together, so max_uses holds under concurrent joins.
    let invite = sqlx::query!(
        r#"UPDATE invite_codes SET uses = uses + 1
         WHERE code_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
           AND (max_uses IS NULL OR uses < max_uses)
         RETURNING id, organization_id, role AS "role: Role""#,
        token::hash_token(body.invite_code.trim())
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(unusable)?;
    let inserted = sqlx::query!(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        invite.organization_id,
        user,
        invite.role as Role
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // Rolled back: a member re-using a code does not spend one of its uses.
        return Err(ApiError::Conflict(
            "you are already a member of this organization".into(),
        ));
    }
    let name = sqlx::query_scalar!(
        "SELECT name FROM organizations WHERE id = $1",
        invite.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let target = Target {
        kind: "member",
        id: user,
        name: None,
    };
    let detail = serde_json::json!({"role": invite.role, "invite_id": invite.id});
    audit::record(
        &mut tx,
        invite.organization_id,
        &caller,
        "member.joined",
        target,
        detail,
    )
    .await?;
    tx.commit().await?;
    let role = invite.role;
    Ok(json(
        StatusCode::OK,
        &Joined {
            organization: OrganizationRef {
                id: invite.organization_id,
                name,
            },
            role,
        },
    ))
}
