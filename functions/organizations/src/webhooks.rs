//! /api/v1/organizations/{id}/webhooks[/{webhook_id}[/deliveries]]: admins (people only)
//! register where the organization's events are POSTed, signed; the notifier delivers them.

use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{Json, OrganizationId, WebhookId};
use shared::http::{json, no_content, with_header, Response};
use shared::rbac::{authorize, person, Action};
use shared::validate::Errors;
use shared::{webhook, ApiError, AppState};
use uuid::Uuid;

/// The deployment event types a webhook may ask for.
pub const EVENT_TYPES: [&str; 8] = [
    "submitted",
    "started",
    "preempted",
    "requeued",
    "cancelled",
    "succeeded",
    "failed",
    "dependency_failed",
];
pub const MAX_DELIVERIES_SHOWN: i64 = 100;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateWebhook {
    /// An https URL on the public internet.
    #[schema(max_length = 2048, example = "https://hooks.example.com/hypervisor")]
    pub url: String,
    /// Event types to deliver (default: all).
    pub event_types: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// `whsec_...`: verifies the `webhook-signature` header. Shown only now.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The last successful delivery.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Whether its most recent attempt failed.
    pub failing: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub id: i64,
    /// The event's id, as in the `webhook-id` header.
    pub event_cursor: String,
    pub event_type: String,
    pub attempt: i32,
    /// The receiver's status code; null when there was no answer.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// When the next attempt is due; null once delivered or given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered: bool,
}

fn all_types() -> Vec<String> {
    EVENT_TYPES.iter().map(|t| t.to_string()).collect()
}

/// Register a webhook (admins). The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/organizations/{id}/webhooks", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    body: Result<Json<CreateWebhook>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let creator = person(&caller)?;
    let Json(body) = body?;
    let mut errors = Errors::new();
    let url = match webhook::check_url(body.url.trim(), state.config.webhook_allow_private) {
        Ok(url) => Some(url),
        Err(why) => {
            errors.add("url", why);
            None
        }
    };
    if let Some(url) = &url {
        if url.as_str().len() > 2048 {
            errors.add("url", "must be at most 2048 characters");
        } else if !state.config.webhook_allow_private {
            // A name that resolves to a forbidden address now is refused now; delivery checks
            // again, since DNS can change. A name that does not resolve may later.
            if let Err(why) = webhook::resolve_allowed(url, false).await {
                if why.contains("forbidden") {
                    errors.add("url", format!("must not point at a private address: {why}"));
                }
            }
        }
    }
    let event_types = match &body.event_types {
        None => None,
        Some(types) if types.is_empty() => {
            errors.add(
                "event_types",
                "must name at least one type, or be left out for all",
            );
            None
        }
        Some(types) => {
            for (i, t) in types.iter().enumerate() {
                if !EVENT_TYPES.contains(&t.as_str()) {
                    errors.add(
                        format!("event_types[{i}]"),
                        format!("must be one of {}", EVENT_TYPES.join(", ")),
                    );
                }
            }
            let mut types = types.clone();
            types.sort();
            types.dedup();
            Some(types)
        }
    };
    let description = body
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 500 || d.chars().any(char::is_control)) {
        errors.add(
            "description",
            "at most 500 characters, without control characters",
        );
    }
    errors.finish()?;
    let url = url.expect("validated above").to_string();

    let secret = webhook::new_secret();
    let mut tx = state.db.begin().await?;
    let row = sqlx::query!(
        "INSERT INTO webhooks (id, organization_id, url, event_types, description, secret, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
        Uuid::now_v7(),
        org,
        url,
        event_types.as_deref(),
        description,
        secret,
        creator
    )
    .fetch_one(&mut *tx)
    .await?;
    let target = Target {
        kind: "webhook",
        id: row.id,
        name: Some(&url),
    };
    // Never the secret.
    let detail = serde_json::json!({"url": url, "event_types": event_types});
    audit::record(&mut tx, org, &caller, "webhook.created", target, detail).await?;
    tx.commit().await?;
    let created = CreatedWebhook {
        id: row.id,
        url,
        event_types: event_types.unwrap_or_else(all_types),
        description: description.map(String::from),
        secret,
        created_at: row.created_at,
    };
    let location = format!("/api/v1/organizations/{org}/webhooks/{}", row.id);
    Ok(with_header(
        json(StatusCode::CREATED, &created),
        "location",
        &location,
    ))
}

/// The organization's webhooks, without their secrets.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/webhooks", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [Webhook]), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let rows = sqlx::query!(
        r#"SELECT w.id, w.url, w.event_types, w.description, w.created_at,
                  (SELECT max(a.at) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                   WHERE d.webhook_id = w.id AND a.delivered) AS last_delivery_at,
                  COALESCE((SELECT NOT a.delivered FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                            WHERE d.webhook_id = w.id ORDER BY a.id DESC LIMIT 1), false) AS "failing!"
           FROM webhooks w WHERE w.organization_id = $1 AND w.deleted_at IS NULL
           ORDER BY w.created_at, w.id"#,
        org
    )
    .fetch_all(&state.db)
    .await?;
    let hooks: Vec<Webhook> = rows
        .into_iter()
        .map(|r| Webhook {
            id: r.id,
            url: r.url,
            event_types: r.event_types.unwrap_or_else(all_types),
            description: r.description,
            created_at: r.created_at,
            last_delivery_at: r.last_delivery_at,
            failing: r.failing,
        })
        .collect();
    Ok(json(StatusCode::OK, &hooks))
}

/// Delete a webhook: no delivery to it starts after this.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/webhooks/{webhook_id}", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("webhook_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    WebhookId(id): WebhookId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let mut tx = state.db.begin().await?;
    // The notifier locks a delivery's webhook row while it sends, so once this commits no
    // attempt is in flight and none starts.
    let url = sqlx::query_scalar!(
        "UPDATE webhooks SET deleted_at = now()
         WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL RETURNING url",
        id,
        org
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("webhook"))?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET state = 'failed' WHERE webhook_id = $1 AND state = 'pending'",
        id
    )
    .execute(&mut *tx)
    .await?;
    let target = Target {
        kind: "webhook",
        id,
        name: Some(&url),
    };
    let detail = serde_json::json!({"url": url});
    audit::record(&mut tx, org, &caller, "webhook.deleted", target, detail).await?;
    tx.commit().await?;
    Ok(no_content())
}

/// A webhook's recent delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("webhook_id" = Uuid, Path)),
    responses((status = 200, body = [DeliveryAttempt]), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    WebhookId(id): WebhookId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    sqlx::query_scalar!(
        "SELECT id FROM webhooks WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL",
        id,
        org
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found("webhook"))?;
    let attempts: Vec<DeliveryAttempt> = sqlx::query!(
        r#"SELECT a.id, d.event_id, e.type, a.attempt, a.status_code, a.error, a.at, a.delivered,
                  CASE WHEN d.state = 'pending' THEN d.next_attempt_at END AS next_attempt_at
           FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id
           JOIN deployment_events e ON e.id = d.event_id
           WHERE d.webhook_id = $1 ORDER BY a.id DESC LIMIT $2"#,
        id,
        MAX_DELIVERIES_SHOWN
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|r| DeliveryAttempt {
        id: r.id,
        event_cursor: shared::webhook::event_id(r.event_id),
        event_type: r.r#type,
        attempt: r.attempt,
        status_code: r.status_code,
        error: r.error,
        at: r.at,
        next_attempt_at: r.next_attempt_at,
        delivered: r.delivered,
    })
    .collect();
    Ok(json(StatusCode::OK, &attempts))
}
