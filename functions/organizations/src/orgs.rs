//! POST/GET /api/v1/organizations and GET /api/v1/organizations/{id}

use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{Json, OrganizationId};
use shared::http::{json, with_header, Response};
use shared::rbac::{authorize, memberships, person, Action, Role};
use shared::validate::Errors;
use shared::{ApiError, AppState};
use std::collections::HashMap;
use uuid::Uuid;

use crate::invites::insert_invite;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateOrganization {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedOrganization {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// A developer invite, shown only now: share it to let people join.
    pub invite_code: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// The caller's role in it.
    pub role: Role,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

/// Create an organization; the caller becomes its admin. A person only (an API token is 403).
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", security(("bearer" = [])),
    request_body = CreateOrganization,
    responses((status = 201, body = CreatedOrganization), (status = 401, body = shared::error::Problem),
              (status = 403, description = "an API token", body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Json(body): Json<CreateOrganization>,
) -> Result<Response, ApiError> {
    let user = person(&caller)?;
    let mut errors = Errors::new();
    let name = errors.name("name", &body.name, 100);
    errors.finish()?;

    let mut tx = state.db.begin().await?;
    let org = sqlx::query!(
        "INSERT INTO organizations (id, name, created_by) VALUES ($1, $2, $3) RETURNING id, created_at",
        Uuid::now_v7(),
        name,
        user
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'admin')",
        org.id,
        user
    )
    .execute(&mut *tx)
    .await?;
    let invite = insert_invite(&mut tx, org.id, user, Role::Developer, None, None).await?;
    let target = Target {
        kind: "organization",
        id: org.id,
        name: Some(&name),
    };
    audit::record(
        &mut tx,
        org.id,
        &caller,
        "organization.created",
        target,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;

    let body = CreatedOrganization {
        id: org.id,
        name,
        role: Role::Admin,
        invite_code: invite.code,
        created_at: org.created_at,
    };
    let location = format!("/api/v1/organizations/{}", org.id);
    Ok(with_header(
        json(StatusCode::CREATED, &body),
        "location",
        &location,
    ))
}

/// The organizations the caller belongs to, with the caller's role in each.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", security(("bearer" = [])),
    responses((status = 200, body = [Organization]), (status = 401, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let roles: HashMap<Uuid, Role> = memberships(&state.db, &caller).await?.into_iter().collect();
    let ids: Vec<Uuid> = roles.keys().copied().collect();
    let rows = sqlx::query!(
        r#"SELECT o.id, o.name, o.created_at,
                  (SELECT count(*) FROM memberships x WHERE x.organization_id = o.id) AS "member_count!"
           FROM organizations o WHERE o.id = ANY($1) ORDER BY o.created_at, o.id"#,
        &ids
    )
    .fetch_all(&state.db)
    .await?;
    let orgs: Vec<Organization> = rows
        .into_iter()
        .filter_map(|r| {
            Some(Organization {
                id: r.id,
                role: *roles.get(&r.id)?,
                name: r.name,
                member_count: r.member_count,
                created_at: r.created_at,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &orgs))
}

/// One organization the caller belongs to.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Organization), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let role = authorize(&state.db, &caller, org, Action::Read, "organization").await?;
    let row = sqlx::query!(
        r#"SELECT o.id, o.name, o.created_at,
                  (SELECT count(*) FROM memberships x WHERE x.organization_id = o.id) AS "member_count!"
           FROM organizations o WHERE o.id = $1"#,
        org
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(json(
        StatusCode::OK,
        &Organization {
            id: row.id,
            name: row.name,
            role,
            member_count: row.member_count,
            created_at: row.created_at,
        },
    ))
}
