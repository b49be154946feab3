//! /api/v1/organizations/{id}/invites[/{invite_id}] — admin only. Codes are shown once, at
//! creation; only their SHA-256 is stored, so they are listed without codes.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::{token, RateLimitedCaller};
use shared::http::extract::{InviteId, JsonOrDefault, OrganizationId};
use shared::http::{json, no_content, Response};
use shared::rbac::{authorize, person, Action, Role};
use shared::validate::Errors;
use shared::{ApiError, AppState};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub const MAX_EXPIRY_HOURS: i64 = 24 * 365;
pub const DEFAULT_EXPIRY_HOURS: i64 = 24 * 7;

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct CreateInvite {
    /// Role granted on joining (default `developer`).
    pub role: Option<Role>,
    /// Hours until the code stops working (default 168, at most 8760).
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 8760)]
    pub expires_in_hours: Option<i64>,
    /// How many people may join with it (default unlimited).
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_uses: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedInvite {
    pub id: Uuid,
    pub code: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Invite {
    pub id: Uuid,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_invite(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
    created_by: Uuid,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    max_uses: Option<i32>,
) -> Result<CreatedInvite, ApiError> {
    let code = token::random_token();
    let row = sqlx::query!(
        "INSERT INTO invite_codes (id, organization_id, code_hash, role, created_by, expires_at, max_uses)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, expires_at",
        Uuid::now_v7(),
        org,
        token::hash_token(&code),
        role as Role,
        created_by,
        expires_at,
        max_uses
    )
    .fetch_one(&mut **tx)
    .await?;
    // The stored expiry (microseconds), so what we return equals what we later list.
    Ok(CreatedInvite {
        id: row.id,
        code,
        role,
        expires_at: row.expires_at,
        max_uses,
    })
}

/// Create an invite code.
#[utoipa::path(post, path = "/api/v1/organizations/{id}/invites", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = CreateInvite,
    responses((status = 201, body = CreatedInvite), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    body: Result<JsonOrDefault<CreateInvite>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let JsonOrDefault(body) = body?;
    let mut errors = Errors::new();
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_EXPIRY_HOURS);
    if !(1..=MAX_EXPIRY_HOURS).contains(&hours) {
        errors.add(
            "expires_in_hours",
            format!("must be between 1 and {MAX_EXPIRY_HOURS}"),
        );
    }
    if let Some(n) = body.max_uses {
        if !(1..=100_000).contains(&n) {
            errors.add("max_uses", "must be between 1 and 100000");
        }
    }
    errors.finish()?;
    let mut tx = state.db.begin().await?;
    let invite = insert_invite(
        &mut tx,
        org,
        person(&caller)?,
        body.role.unwrap_or(Role::Developer),
        Some(Utc::now() + Duration::hours(hours)),
        body.max_uses.map(|n| n as i32), // validated above to 1..=100000
    )
    .await?;
    let target = Target {
        kind: "invite",
        id: invite.id,
        name: None,
    };
    // Never the code itself.
    let detail = serde_json::json!({
        "role": invite.role, "expires_at": invite.expires_at, "max_uses": invite.max_uses});
    audit::record(&mut tx, org, &caller, "invite.created", target, detail).await?;
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &invite))
}

/// List the organization's invites (without their codes).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/invites", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [Invite]), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let invites: Vec<Invite> = sqlx::query!(
        r#"SELECT id, role AS "role: Role", expires_at, max_uses, uses, revoked_at, created_at
           FROM invite_codes WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"#,
        org
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|r| Invite {
        id: r.id,
        role: r.role,
        expires_at: r.expires_at,
        max_uses: r.max_uses,
        uses: r.uses,
        revoked: r.revoked_at.is_some(),
        created_at: r.created_at,
    })
    .collect();
    Ok(json(StatusCode::OK, &invites))
}

/// Revoke an invite: its code stops working at once.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/invites/{invite_id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("invite_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    InviteId(invite): InviteId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let mut tx = state.db.begin().await?;
    let found = sqlx::query!(
        r#"SELECT revoked_at IS NOT NULL AS "revoked!", role AS "role: Role" FROM invite_codes
           WHERE id = $1 AND organization_id = $2 FOR UPDATE"#,
        invite,
        org
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("invite"))?;
    // Revoking twice is harmless, and only the first time changes anything (or is recorded).
    if !found.revoked {
        sqlx::query!(
            "UPDATE invite_codes SET revoked_at = now() WHERE id = $1",
            invite
        )
        .execute(&mut *tx)
        .await?;
        let target = Target {
            kind: "invite",
            id: invite,
            name: None,
        };
        let detail = serde_json::json!({"role": found.role});
        audit::record(&mut tx, org, &caller, "invite.revoked", target, detail).await?;
    }
    tx.commit().await?;
    Ok(no_content())
}
