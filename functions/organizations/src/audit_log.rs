//! GET /api/v1/organizations/{id}/audit: who changed what in the organization, newest first,
//! for its admins.

use axum::extract::State;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{OrganizationId, Query};
use shared::http::{json, Response};
use shared::rbac::{authorize, Action};
use shared::validate::bounded;
use shared::{ApiError, AppState};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Actor {
    /// `user` or `token`.
    pub kind: String,
    pub id: Uuid,
    /// The username or token name at the time.
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditTarget {
    /// `organization`, `member`, `invite`, `token` or `cluster`.
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: Option<Uuid>,
    pub name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// Dotted: `organization.created`, `member.joined`, `member.role_changed`,
    /// `member.removed`, `member.left`, `invite.created`, `invite.revoked`, `token.created`,
    /// `token.revoked`, `cluster.created`, `cluster.updated`, `cluster.deleted`.
    pub action: String,
    pub target: AuditTarget,
    /// What changed (for `cluster.updated`, the old and new name and capacity). Never a secret.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` to get the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("audit:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    text.strip_prefix("audit:")?.parse().ok()
}

/// The organization's audit log, newest first, a page at a time (admins).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/audit", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    query: Result<Query<AuditQuery>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let Query(q) = query?;
    let limit = bounded("limit", q.limit, DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let before = match &q.cursor {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::validation("cursor", "is not a cursor this API gave"))?,
        ),
        None => None,
    };
    let rows = sqlx::query!(
        "SELECT id, at, actor_kind, actor_id, actor_name, action, target_type, target_id,
                target_name, detail
         FROM audit_log
         WHERE organization_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
        org,
        before,
        limit + 1
    )
    .fetch_all(&state.db)
    .await?;
    let more = rows.len() as i64 > limit;
    let mut next_cursor = None;
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| {
            next_cursor = Some(encode_cursor(r.id));
            AuditEntry {
                id: r.id.to_string(),
                at: r.at,
                actor: Actor {
                    kind: r.actor_kind,
                    id: r.actor_id,
                    name: r.actor_name,
                },
                action: r.action,
                target: AuditTarget {
                    target_type: r.target_type,
                    id: r.target_id,
                    name: r.target_name,
                },
                detail: r.detail,
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &AuditPage {
            items,
            next_cursor: next_cursor.filter(|_| more),
        },
    ))
}
