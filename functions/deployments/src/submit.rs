//! POST /api/v1/deployments and POST /api/v1/deployments/dry-run.
//! A submission is committed as `pending` first and only then announced on the queue: if the
//! announcement is lost, the periodic sweep still schedules it.

use axum::extract::State;
use chrono::Utc;
use http::HeaderMap;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::auth::{Caller, RateLimitedCaller};
use shared::error::violated_constraint;
use shared::http::extract::Json;
use shared::http::{header_str, json, with_header, Response};
use shared::queue::{nudge, ScheduleRequest};
use shared::rbac::{authorize, decide, readable, role_in, Action, Role};
use shared::resources::{Resources, ResourcesDto};
use shared::scheduling::{self, DependencyState, Pending};
use shared::status::DeploymentStatus;
use shared::validate::Errors;
use shared::{snapshot, ApiError, AppState};
use uuid::Uuid;

use crate::image_ref;
use crate::view::{self, Deployment};

pub const DEFAULT_PRIORITY: i32 = 50;
pub const MAX_DEPENDENCIES: usize = 100;
pub const MAX_RUNTIME_LIMIT_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct SubmitDeployment {
    /// Needed only when `cluster_id` is absent and you belong to several organizations.
    pub organization_id: Option<Uuid>,
    /// Omit to let the scheduler pick the best-fitting cluster of the organization.
    pub cluster_id: Option<Uuid>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// A container image reference, e.g. `ghcr.io/acme/trainer:1.4`.
    #[schema(min_length = 1, max_length = 512)]
    pub image: String,
    pub resources: ResourcesDto,
    /// 1-100, higher runs first (default 50).
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub priority: Option<i64>,
    /// Deployments (of the same organization) that must succeed first.
    #[schema(max_items = 100)]
    pub depends_on: Option<Vec<Uuid>>,
    /// Stop it as failed after this long running.
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 2592000)]
    pub max_runtime_seconds: Option<i64>,
}

/// A submission that passed every check.
pub struct Accepted {
    pub organization_id: Uuid,
    pub cluster_id: Option<Uuid>,
    pub name: String,
    pub image: String,
    pub resources: Resources,
    pub priority: i32,
    pub depends_on: Vec<Uuid>,
    pub max_runtime_seconds: Option<i32>,
}

/// Why a submission can never run, if it cannot.
enum Fit {
    Possible,
    Never(String),
}

/// Checks the body and the caller's right to deploy; says whether it can ever fit.
async fn accept(
    state: &AppState,
    caller: &Caller,
    body: &SubmitDeployment,
) -> Result<(Accepted, Fit), ApiError> {
    let mut errors = Errors::new();
    let name = errors.name("name", &body.name, 100);
    let image = body.image.trim().to_string();
    if let Some(problem) = image_ref::problem(&image) {
        errors.add("image", problem);
    }
    let resources = body.resources.to_resources("resources", &mut errors);
    if resources.is_zero() {
        errors.add(
            "resources",
            "must ask for more than 0 of at least one resource",
        );
    }
    let priority = body.priority.unwrap_or(DEFAULT_PRIORITY.into());
    if !(1..=100).contains(&priority) {
        errors.add("priority", "must be between 1 and 100");
    }
    if let Some(s) = body.max_runtime_seconds {
        if !(1..=MAX_RUNTIME_LIMIT_SECONDS).contains(&s) {
            errors.add(
                "max_runtime_seconds",
                format!("must be between 1 and {MAX_RUNTIME_LIMIT_SECONDS}"),
            );
        }
    }
    let mut depends_on = body.depends_on.clone().unwrap_or_default();
    depends_on.sort();
    depends_on.dedup();
    if depends_on.len() > MAX_DEPENDENCIES {
        errors.add(
            "depends_on",
            format!("at most {MAX_DEPENDENCIES} dependencies"),
        );
    }
    errors.finish()?;

    let found = resolve_organization(state, caller, body).await?;
    let organization_id = found.organization_id;
    let membership = match found.membership {
        Some(membership) => membership,
        None => role_in(&state.db, caller, organization_id).await?,
    };
    let role = decide(
        caller,
        organization_id,
        membership,
        Action::Deploy,
        "organization",
    )?;
    if role != Role::Admin {
        let ceiling = sqlx::query_scalar!(
            "SELECT developer_max_priority FROM organizations WHERE id = $1",
            organization_id
        )
        .fetch_one(&state.db)
        .await?;
        if priority > i64::from(ceiling) {
            return Err(ApiError::validation(
                "priority",
                format!(
                    "must be at most {ceiling}: the organization's developer_max_priority caps \
                     developers and API tokens"
                ),
            ));
        }
    }

    if !depends_on.is_empty() {
        let known = sqlx::query_scalar!(
            "SELECT id FROM deployments WHERE organization_id = $1 AND id = ANY($2)",
            organization_id,
            &depends_on
        )
        .fetch_all(&state.db)
        .await?;
        if let Some(unknown) = depends_on.iter().find(|id| !known.contains(id)) {
            return Err(ApiError::validation(
                "depends_on",
                format!("no deployment {unknown} in this organization"),
            ));
        }
    }

    let capacities = match found.cluster {
        Some(cluster) => vec![cluster],
        None => {
            sqlx::query_as!(
                Capacity,
                "SELECT name, cpu_millis, ram_mgib, gpu FROM clusters
             WHERE organization_id = $1 ORDER BY id",
                organization_id,
            )
            .fetch_all(&state.db)
            .await?
        }
    };
    let fit = if capacities
        .iter()
        .any(|c| resources.fits_in(&Resources::new(c.cpu_millis, c.ram_mgib, c.gpu)))
    {
        Fit::Possible
    } else if let (Some(c), Some(_)) = (capacities.first(), body.cluster_id) {
        let total = Resources::new(c.cpu_millis, c.ram_mgib, c.gpu);
        let over = ResourcesDto::from(resources.shortfall(&total));
        Fit::Never(format!(
            "exceeds the total capacity of cluster '{}' (short by {} cores, {} GiB RAM, {} GPUs)",
            c.name, over.cpu_cores, over.ram_gib, over.gpu_count
        ))
    } else if capacities.is_empty() {
        Fit::Never("the organization has no clusters".into())
    } else {
        Fit::Never("exceeds the total capacity of every cluster of the organization".into())
    };
    let accepted = Accepted {
        organization_id,
        cluster_id: body.cluster_id,
        name,
        image,
        resources,
        priority: priority as i32,
        depends_on,
        max_runtime_seconds: body.max_runtime_seconds.map(|s| s as i32),
    };
    Ok((accepted, fit))
}

/// A cluster's name and capacity, for the check that a submission can ever fit.
struct Capacity {
    name: String,
    cpu_millis: i64,
    ram_mgib: i64,
    gpu: i64,
}

/// Where a submission goes, with what the statement that found it read besides.
struct Found {
    organization_id: Uuid,
    /// The caller's membership role there, when that statement read it (None: not read).
    membership: Option<Option<Role>>,
    /// The requested cluster.
    cluster: Option<Capacity>,
}

/// The organization named by `cluster_id`, `organization_id`, or the caller's only one.
async fn resolve_organization(
    state: &AppState,
    caller: &Caller,
    body: &SubmitDeployment,
) -> Result<Found, ApiError> {
    let (member, only) = readable(&state.db, caller, None).await?.binds();
    if let Some(cluster) = body.cluster_id {
        let row = sqlx::query!(
            r#"SELECT c.organization_id, c.name, c.cpu_millis, c.ram_mgib, c.gpu,
                      (SELECT role FROM memberships
                       WHERE organization_id = c.organization_id AND user_id = $2) AS "role: Role"
             FROM clusters c
             WHERE c.id = $1
               AND c.organization_id IN (SELECT organization_id FROM memberships WHERE user_id = $2
                                         UNION ALL SELECT $3::uuid)"#,
            cluster,
            member,
            only
        )
        .fetch_optional(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster"))?;
        if body
            .organization_id
            .is_some_and(|o| o != row.organization_id)
        {
            return Err(ApiError::validation(
                "cluster_id",
                "belongs to a different organization",
            ));
        }
        return Ok(Found {
            organization_id: row.organization_id,
            membership: Some(row.role),
            cluster: Some(Capacity {
                name: row.name,
                cpu_millis: row.cpu_millis,
                ram_mgib: row.ram_mgib,
                gpu: row.gpu,
            }),
        });
    }
    let found = |organization_id, membership| Found {
        organization_id,
        membership,
        cluster: None,
    };
    if let Some(org) = body.organization_id {
        return Ok(found(org, None));
    }
    if let Some(org) = only {
        return Ok(found(org, None));
    }
    let orgs = sqlx::query!(
        r#"SELECT organization_id, role AS "role: Role" FROM memberships WHERE user_id = $1 LIMIT 2"#,
        member
    )
    .fetch_all(&state.db)
    .await?;
    match orgs.as_slice() {
        [only] => Ok(found(only.organization_id, Some(Some(only.role)))),
        _ => Err(ApiError::validation(
            "organization_id",
            "required when cluster_id is not given",
        )),
    }
}

/// Identifies a request for idempotency; dependency order does not make it a different one.
fn fingerprint(body: &SubmitDeployment) -> Vec<u8> {
    let mut value = serde_json::to_value(body).expect("serializable");
    if let Some(deps) = value.get_mut("depends_on").and_then(|d| d.as_array_mut()) {
        deps.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        deps.dedup();
    }
    Sha256::digest(value.to_string()).to_vec()
}

/// Submit a deployment. It is queued as `pending`; the scheduler places it.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", security(("bearer" = [])),
    request_body = SubmitDeployment,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same deployment")),
    responses((status = 202, body = Deployment), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 409, body = shared::error::Problem),
              (status = 422, description = "invalid, or can never fit", body = shared::error::Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    headers: HeaderMap,
    Json(body): Json<SubmitDeployment>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let print = fingerprint(&body);
    if let Some(key) = &key {
        if let Some(existing) = replay(&state, &caller, key, &print).await? {
            return Ok(accepted_response(&existing));
        }
    }
    let (d, fit) = accept(&state, &caller, &body).await?;
    if let Fit::Never(why) = fit {
        return Err(ApiError::validation("resources", why));
    }

    let id = Uuid::now_v7();
    // One statement, so one round trip and its own transaction: the deployment, its
    // dependencies and its "submitted" event go in together or not at all.
    let inserted = sqlx::query!(
        r#"WITH deployment AS (
             INSERT INTO deployments (id, organization_id, requested_cluster_id, name, image, cpu_millis, ram_mgib, gpu,
                                      priority, max_runtime_seconds, created_by, submitted_by_token,
                                      idempotency_key, request_fingerprint, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                     '{"code": "queued", "message": "waiting for the scheduler to consider it"}')
             RETURNING id
           ), dependencies AS (
             INSERT INTO deployment_dependencies (deployment_id, depends_on_id)
             SELECT deployment.id, unnest($15::uuid[]) FROM deployment
           )
           INSERT INTO deployment_events (deployment_id, type, detail, actor_kind, actor_id, actor_name)
           SELECT deployment.id, 'submitted', format('submitted by %s %s with priority %s', $16, name, $9::int), $16, $17, name
           FROM deployment, actor_name($16, $17) AS name"#,
        id,
        d.organization_id,
        d.cluster_id,
        d.name,
        d.image,
        d.resources.cpu_millis,
        d.resources.ram_mgib,
        d.resources.gpu,
        d.priority,
        d.max_runtime_seconds,
        caller.user_id(),
        caller.token_id(),
        key,
        print,
        &d.depends_on,
        caller.kind(),
        caller.id(),
    )
    .execute(&state.db)
    .await;
    if let Err(err) = inserted {
        return match (violated_constraint(&err), &key) {
            // A concurrent retry with the same key won the race: answer as it did.
            (Some("deployments_submitter_idempotency_key_key"), Some(key)) => {
                let existing = replay(&state, &caller, key, &print)
                    .await?
                    .ok_or_else(|| ApiError::Unexpected(err.into()))?;
                Ok(accepted_response(&existing))
            }
            (Some("deployments_requested_cluster_id_fkey"), _) => {
                Err(ApiError::not_found("cluster"))
            }
            _ => Err(err.into()),
        };
    }

    let deployment = view::find(&state.reads, id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    let trigger = ScheduleRequest {
        organization_id: d.organization_id,
        deployment_id: Some(id),
        trigger: "submitted".into(),
    };
    nudge(state.queue.as_ref(), trigger).await;
    Ok(accepted_response(&deployment))
}

fn accepted_response(deployment: &Deployment) -> Response {
    let location = format!("/api/v1/deployments/{}", deployment.id);
    with_header(
        json(StatusCode::ACCEPTED, deployment),
        "location",
        &location,
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = header_str(headers, "idempotency-key").unwrap_or("");
    if raw.is_empty()
        || key.is_empty()
        || key.len() > 255
        || !key.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::validation(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_string()))
}

/// The deployment an earlier request with this key created, if the request was the same.
async fn replay(
    state: &AppState,
    caller: &Caller,
    key: &str,
    print: &[u8],
) -> Result<Option<Deployment>, ApiError> {
    let Some(row) = sqlx::query!(
        "SELECT id, request_fingerprint FROM deployments WHERE submitter_id = $1 AND idempotency_key = $2",
        caller.id(),
        key
    )
    .fetch_optional(&state.db)
    .await?
    else {
        return Ok(None);
    };
    if row.request_fingerprint.as_deref() != Some(print) {
        return Err(ApiError::Conflict(
            "this Idempotency-Key was already used for a different request".into(),
        ));
    }
    let existing = view::find(&state.reads, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    // A replay answers only someone who may still deploy there (a removed member gets 404).
    authorize(
        &state.db,
        caller,
        existing.organization_id,
        Action::Deploy,
        "deployment",
    )
    .await?;
    Ok(Some(existing))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunResult {
    /// `start`: it would run now; `queue`: it would wait; `reject`: it can never run.
    pub outcome: &'static str,
    pub cluster_id: Option<Uuid>,
    /// Running deployments it would preempt to start.
    pub would_preempt: Vec<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub reason: Option<serde_json::Value>,
}

/// What would happen to this submission now. Changes nothing.
#[utoipa::path(post, path = "/api/v1/deployments/dry-run", tag = "deployments", security(("bearer" = [])),
    request_body = SubmitDeployment,
    responses((status = 200, body = DryRunResult), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn dry_run(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
    Json(body): Json<SubmitDeployment>,
) -> Result<Response, ApiError> {
    let (d, fit) = accept(&state, &caller, &body).await?;
    if let Fit::Never(why) = fit {
        let reason = serde_json::json!({"code": "exceeds_capacity", "message": why});
        return Ok(json(
            StatusCode::OK,
            &DryRunResult {
                outcome: "reject",
                cluster_id: d.cluster_id,
                would_preempt: vec![],
                reason: Some(reason),
            },
        ));
    }
    let mut conn = state.db.acquire().await?;
    let now = Utc::now();
    let clusters = snapshot::load_clusters(&mut conn, d.organization_id, false).await?;
    let input = snapshot::load_input(
        &mut conn,
        d.organization_id,
        clusters,
        now,
        state.config.preemption_min_runtime_seconds,
    )
    .await?
    .input;
    let candidate = Pending {
        id: Uuid::now_v7(),
        cluster_id: d.cluster_id,
        priority: d.priority,
        resources: d.resources,
        created_at: now,
        dependencies: dependency_state_of(&state, &d.depends_on).await?,
        submitter: caller.id(),
        queued_at: now,
    };
    let plan = scheduling::dry_run(&input, &candidate);
    let result = if let Some(start) = plan.starts.iter().find(|s| s.deployment_id == candidate.id) {
        DryRunResult {
            outcome: "start",
            cluster_id: Some(start.cluster_id),
            would_preempt: start.preempted.clone(),
            reason: None,
        }
    } else if let Some(f) = plan
        .dependency_failures
        .iter()
        .find(|f| f.deployment_id == candidate.id)
    {
        let reason = serde_json::json!({"code": "dependency_failed",
            "message": format!("dependency {} failed or was cancelled", f.dependency_id)});
        DryRunResult {
            outcome: "reject",
            cluster_id: d.cluster_id,
            would_preempt: vec![],
            reason: Some(reason),
        }
    } else {
        let reason = plan
            .waiting
            .iter()
            .find(|w| w.deployment_id == candidate.id)
            .map(|w| serde_json::to_value(&w.reason).expect("reasons serialize"));
        DryRunResult {
            outcome: "queue",
            cluster_id: d.cluster_id,
            would_preempt: vec![],
            reason,
        }
    };
    Ok(json(StatusCode::OK, &result))
}

async fn dependency_state_of(state: &AppState, deps: &[Uuid]) -> Result<DependencyState, ApiError> {
    let rows = sqlx::query!(
        r#"SELECT id, status AS "status: DeploymentStatus" FROM deployments WHERE id = ANY($1) ORDER BY id"#,
        deps
    )
    .fetch_all(&state.db)
    .await?;
    if let Some(failed) = rows.iter().find(|r| r.status.is_unsuccessful_end()) {
        return Ok(DependencyState::Failed {
            dependency: failed.id,
        });
    }
    let unfinished: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.status != DeploymentStatus::Succeeded)
        .map(|r| r.id)
        .collect();
    Ok(if unfinished.is_empty() {
        DependencyState::Satisfied
    } else {
        DependencyState::Waiting { unfinished }
    })
}
