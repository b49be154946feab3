//! The handlers of /api/v1/clusters and /api/v1/clusters/{id}.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use shared::audit::{self, Target};
use shared::auth::{Caller, RateLimitedCaller};
use shared::error::violated_constraint;
use shared::http::extract::{ClusterId, Json, Query};
use shared::http::{json, no_content, with_header, Response};
use shared::queue::{nudge, ScheduleRequest};
use shared::rbac::{authorize, decide, readable, Action};
use shared::resources::ResourcesDto;
use shared::snapshot;
use shared::validate::Errors;
use shared::{ApiError, AppState};
use uuid::Uuid;

use crate::view::{self, Cluster};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateCluster {
    pub organization_id: Uuid,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1000000.0, multiple_of = 0.001)]
    pub cpu_cores: f64,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 100000000.0, multiple_of = 0.001)]
    pub ram_gib: f64,
    #[serde(default, deserialize_with = "shared::whole_number::required")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub gpu_count: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateCluster {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(minimum = 0.0, maximum = 1000000.0, multiple_of = 0.001)]
    pub cpu_cores: Option<f64>,
    #[schema(minimum = 0.0, maximum = 100000000.0, multiple_of = 0.001)]
    pub ram_gib: Option<f64>,
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub gpu_count: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this organization's clusters.
    pub organization_id: Option<Uuid>,
    /// Only the cluster with exactly this name (unique within an organization).
    pub name: Option<String>,
}

fn name_taken() -> ApiError {
    ApiError::Conflict("a cluster with that name already exists in this organization".into())
}

/// Register a cluster with a fixed capacity (organization admins).
#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", security(("bearer" = [])),
    request_body = CreateCluster,
    responses((status = 201, body = Cluster), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, body = shared::error::Problem), (status = 422, body = shared::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Json(body): Json<CreateCluster>,
) -> Result<Response, ApiError> {
    let org = body.organization_id;
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let mut errors = Errors::new();
    let name = errors.name("name", &body.name, 100);
    let capacity = ResourcesDto {
        cpu_cores: body.cpu_cores,
        ram_gib: body.ram_gib,
        gpu_count: body.gpu_count,
    }
    .to_resources("", &mut errors);
    errors.finish()?;
    let mut tx = state.db.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        Uuid::now_v7(),
        org,
        name,
        capacity.cpu_millis,
        capacity.ram_mgib,
        capacity.gpu
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match violated_constraint(&err) {
        Some("clusters_organization_id_name_key") => name_taken(),
        _ => err.into(),
    })?;
    let target = Target {
        kind: "cluster",
        id,
        name: Some(&name),
    };
    let detail = serde_json::json!({"capacity": ResourcesDto::from(capacity)});
    audit::record(&mut tx, org, &caller, "cluster.created", target, detail).await?;
    tx.commit().await?;
    let cluster = view::find(&state.reads, id)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster"))?;
    let location = format!("/api/v1/clusters/{id}");
    Ok(with_header(
        json(StatusCode::CREATED, &cluster),
        "location",
        &location,
    ))
}

/// Clusters of the caller's organizations.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = [Cluster]), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem), (status = 422, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = readable(&state.db, &caller, query.organization_id).await?;
    let clusters = view::list_visible(&state.reads, scope, query.name.as_deref()).await?;
    Ok(json(StatusCode::OK, &clusters))
}

/// Loads a cluster the caller may act on; another organization's cluster is 404.
async fn visible_cluster(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<Cluster, ApiError> {
    let (cluster, membership) = view::find_for(&state.reads, id, caller.user_id())
        .await?
        .ok_or_else(|| ApiError::not_found("cluster"))?;
    decide(
        caller,
        cluster.organization_id,
        membership,
        action,
        "cluster",
    )?;
    Ok(cluster)
}

/// One cluster, with its books.
#[utoipa::path(get, path = "/api/v1/clusters/{id}", tag = "clusters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Cluster), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    ClusterId(id): ClusterId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let cluster = visible_cluster(&state, &caller, id, Action::Read).await?;
    Ok(json(StatusCode::OK, &cluster))
}

/// Rename or resize. Shrinking below what is allocated is refused (409).
#[utoipa::path(patch, path = "/api/v1/clusters/{id}", tag = "clusters", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateCluster,
    responses((status = 200, body = Cluster), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, body = shared::error::Problem), (status = 422, body = shared::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    ClusterId(id): ClusterId,
    caller: RateLimitedCaller,
    body: Result<Json<UpdateCluster>, ApiError>,
) -> Result<Response, ApiError> {
    let cluster = visible_cluster(&state, &caller, id, Action::Administer).await?;
    // The body is judged after visibility: an outsider learns nothing from a 422.
    let Json(body) = body?;
    let mut errors = Errors::new();
    let name = body.name.as_deref().map(|n| errors.name("name", n, 100));
    // Validate what was sent; fields left out are left alone in SQL (COALESCE), so two
    // concurrent PATCHes of different fields cannot undo each other.
    let sent = ResourcesDto {
        cpu_cores: body.cpu_cores.unwrap_or(0.0),
        ram_gib: body.ram_gib.unwrap_or(0.0),
        gpu_count: body.gpu_count.unwrap_or(0),
    }
    .to_resources("", &mut errors);
    errors.finish()?;
    let cpu = body.cpu_cores.map(|_| sent.cpu_millis);
    let ram = body.ram_gib.map(|_| sent.ram_mgib);
    let gpu = body.gpu_count.map(|_| sent.gpu);
    let mut tx = state.db.begin().await?;
    lock_organization_clusters(&mut tx, &cluster).await?;
    let after = Some(Capacity { cpu, ram, gpu });
    if stranded_by(&mut tx, id, after).await? > 0 {
        return Err(ApiError::Conflict(
            "cannot shrink the cluster below what a waiting deployment needs (one that asked for \
             this cluster, or one that fits no other cluster); cancel it first"
                .into(),
        ));
    }
    // The CHECK constraints compare against the allocation as it is at this instant.
    sqlx::query!(
        "UPDATE clusters SET name = COALESCE($2, name), cpu_millis = COALESCE($3, cpu_millis),
                ram_mgib = COALESCE($4, ram_mgib), gpu = COALESCE($5, gpu)
         WHERE id = $1",
        id,
        name,
        cpu,
        ram,
        gpu
    )
    .execute(&mut *tx)
    .await
    .map_err(|err| match violated_constraint(&err) {
        Some("clusters_organization_id_name_key") => name_taken(),
        Some(c) if c.ends_with("_within_capacity") => {
            ApiError::Conflict("cannot shrink the cluster below what is allocated on it".into())
        }
        _ => err.into(),
    })?;
    let after = view::find_in(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster"))?;
    let target = Target {
        kind: "cluster",
        id,
        name: Some(&after.name),
    };
    let detail = serde_json::json!({
        "old": {"name": cluster.name, "capacity": cluster.capacity},
        "new": {"name": after.name, "capacity": after.capacity},
    });
    audit::record(
        &mut tx,
        cluster.organization_id,
        &caller,
        "cluster.updated",
        target,
        detail,
    )
    .await?;
    tx.commit().await?;
    let cluster = after;
    let trigger = ScheduleRequest {
        organization_id: cluster.organization_id,
        deployment_id: None,
        trigger: "resized".into(),
    };
    nudge(state.queue.as_ref(), trigger).await;
    Ok(json(StatusCode::OK, &cluster))
}

/// Delete a cluster that nothing is running on or waiting for.
#[utoipa::path(delete, path = "/api/v1/clusters/{id}", tag = "clusters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, body = shared::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    ClusterId(id): ClusterId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let cluster = visible_cluster(&state, &caller, id, Action::Administer).await?;
    let mut tx = state.db.begin().await?;
    // The row lock makes a concurrent submission to this cluster wait for us (its foreign key
    // check needs a share lock), so nothing can slip in between the check and the delete.
    lock_organization_clusters(&mut tx, &cluster).await?;
    let running = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM deployments WHERE cluster_id = $1 AND status = 'running'"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let busy = running + stranded_by(&mut tx, id, None).await?;
    if busy > 0 {
        return Err(ApiError::Conflict(format!(
            "{busy} deployment(s) are running on or waiting for this cluster (or fit no other \
             cluster); cancel them first"
        )));
    }
    sqlx::query!("DELETE FROM clusters WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    let target = Target {
        kind: "cluster",
        id,
        name: Some(&cluster.name),
    };
    let detail = serde_json::json!({"capacity": cluster.capacity});
    audit::record(
        &mut tx,
        cluster.organization_id,
        &caller,
        "cluster.deleted",
        target,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(no_content())
}

/// Locks every cluster of the organization, as a scheduler pass does, so a resize or delete
/// asking "does this waiting deployment still fit somewhere?" cannot race another one taking
/// the somewhere away. 404 if the cluster went meanwhile.
async fn lock_organization_clusters(
    tx: &mut sqlx::PgConnection,
    cluster: &Cluster,
) -> Result<(), ApiError> {
    let locked = snapshot::load_clusters(tx, cluster.organization_id, true).await?;
    if !locked.iter().any(|c| c.id == cluster.id) {
        return Err(ApiError::not_found("cluster"));
    }
    Ok(())
}

/// A cluster's capacity after a resize; `None` fields stay as they are.
struct Capacity {
    cpu: Option<i64>,
    ram: Option<i64>,
    gpu: Option<i64>,
}

/// How many waiting deployments could never start if cluster `id` had the capacity `after`
/// (None: if it were deleted): those that asked for it, and auto-placed ones that fit it now
/// and no other cluster of the organization.
async fn stranded_by(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    after: Option<Capacity>,
) -> Result<i64, ApiError> {
    let (kept, cpu, ram, gpu) = match after {
        Some(c) => (true, c.cpu, c.ram, c.gpu),
        None => (false, None, None, None),
    };
    let stranded = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM deployments d JOIN clusters c ON c.id = $1
           WHERE d.organization_id = c.organization_id AND d.status = 'pending'
             AND (d.requested_cluster_id = c.id
                  OR (d.requested_cluster_id IS NULL
                      AND d.cpu_millis <= c.cpu_millis AND d.ram_mgib <= c.ram_mgib AND d.gpu <= c.gpu
                      AND NOT EXISTS (
                          SELECT 1 FROM clusters o
                          WHERE o.organization_id = c.organization_id AND o.id <> c.id
                            AND d.cpu_millis <= o.cpu_millis AND d.ram_mgib <= o.ram_mgib
                            AND d.gpu <= o.gpu)))
             AND NOT ($2 AND d.cpu_millis <= COALESCE($3, c.cpu_millis)
                      AND d.ram_mgib <= COALESCE($4, c.ram_mgib) AND d.gpu <= COALESCE($5, c.gpu))"#,
        id,
        kept,
        cpu,
        ram,
        gpu
    )
    .fetch_one(tx)
    .await?;
    Ok(stranded)
}
