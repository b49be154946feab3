//! /api/v1/organizations/{id}/members[/{user_id}]. The last admin can neither leave nor be
//! demoted: checked under a lock on the organization, so two admins demoting each other at
//! once cannot leave it without one.

use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{Json, MemberId, OrganizationId};
use shared::http::{json, no_content, Response};
use shared::rbac::{authorize, role_in, Action, Role};
use shared::{ApiError, AppState};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangeRole {
    pub role: Role,
}

/// The organization's members.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/members", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [Member]), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Read, "organization").await?;
    let members = sqlx::query_as!(
        Member,
        r#"SELECT m.user_id, u.username, m.role AS "role: Role", m.joined_at
           FROM memberships m JOIN users u ON u.id = m.user_id
           WHERE m.organization_id = $1 ORDER BY m.joined_at, m.user_id"#,
        org
    )
    .fetch_all(&state.db)
    .await?;
    Ok(json(StatusCode::OK, &members))
}

/// Change a member's role (admin only).
#[utoipa::path(patch, path = "/api/v1/organizations/{id}/members/{user_id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ChangeRole,
    responses((status = 200, body = Member), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, description = "would leave the organization without an admin", body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn change_role(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    MemberId(user): MemberId,
    caller: RateLimitedCaller,
    body: Result<Json<ChangeRole>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let Json(body) = body?;
    let mut tx = lock_organization(&state, org).await?;
    let current = member_role(&mut tx, org, user).await?;
    if current == Role::Admin && body.role != Role::Admin {
        ensure_another_admin(&mut tx, org).await?;
    }
    let member = sqlx::query_as!(
        Member,
        r#"WITH changed AS (
               UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2
               RETURNING user_id, role, joined_at)
           SELECT c.user_id, u.username, c.role AS "role: Role", c.joined_at
           FROM changed c JOIN users u ON u.id = c.user_id"#,
        org,
        user,
        body.role as Role
    )
    .fetch_one(&mut *tx)
    .await?;
    if current != body.role {
        let target = Target {
            kind: "member",
            id: user,
            name: Some(&member.username),
        };
        let detail = serde_json::json!({"old_role": current, "new_role": body.role});
        audit::record(&mut tx, org, &caller, "member.role_changed", target, detail).await?;
    }
    tx.commit().await?;
    Ok(json(StatusCode::OK, &member))
}

/// Remove a member: admins may remove anyone, anyone may remove themselves (leave).
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/members/{user_id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, description = "the last admin cannot leave", body = shared::error::Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    MemberId(user): MemberId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let leaving = caller.user_id() == Some(user);
    if !leaving {
        authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    } else if role_in(&state.db, &caller, org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    let mut tx = lock_organization(&state, org).await?;
    let role = member_role(&mut tx, org, user).await?;
    if role == Role::Admin {
        ensure_another_admin(&mut tx, org).await?;
    }
    let target = Target {
        kind: "member",
        id: user,
        name: None,
    };
    // Recorded before the row goes, while the target's name is still one query away.
    let action = if leaving {
        "member.left"
    } else {
        "member.removed"
    };
    audit::record(
        &mut tx,
        org,
        &caller,
        action,
        target,
        serde_json::json!({"role": role}),
    )
    .await?;
    sqlx::query!(
        "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2",
        org,
        user
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(no_content())
}

async fn lock_organization(
    state: &AppState,
    org: Uuid,
) -> Result<Transaction<'static, Postgres>, ApiError> {
    let mut tx = state.db.begin().await?;
    sqlx::query!("SELECT id FROM organizations WHERE id = $1 FOR UPDATE", org)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(tx)
}

async fn member_role(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
    user: Uuid,
) -> Result<Role, ApiError> {
    sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM memberships WHERE organization_id = $1 AND user_id = $2"#,
        org,
        user
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::not_found("member"))
}

async fn ensure_another_admin(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
) -> Result<(), ApiError> {
    let admins = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM memberships WHERE organization_id = $1 AND role = 'admin'"#,
        org
    )
    .fetch_one(&mut **tx)
    .await?;
    if admins <= 1 {
        return Err(ApiError::Conflict(
            "an organization needs at least one admin: promote someone else first".into(),
        ));
    }
    Ok(())
}
