//! The audit log: every change an admin or a token makes to an organization, written through
//! the change's own transaction, so no change exists without its record and a refused change
//! (rolled back) records nothing. The table refuses updates and deletes.

use crate::auth::Caller;
use crate::error::ApiError;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// What an audit record is about.
pub struct Target<'a> {
    /// `organization`, `member`, `invite`, `token`, `cluster`, ...
    pub kind: &'static str,
    pub id: Uuid,
    /// `None` for a member or a token: the record takes its current username or name.
    pub name: Option<&'a str>,
}

/// Records `action` (dotted: `cluster.updated`) by `caller` in `org`. `detail` must never hold
/// a secret: callers pass what changed (roles, capacities, expiry), never a token or a code.
pub async fn record(
    tx: &mut PgConnection,
    org: Uuid,
    caller: &Caller,
    action: &str,
    target: Target<'_>,
    detail: Value,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO audit_log (organization_id, actor_kind, actor_id, actor_name, action,
                                target_type, target_id, target_name, detail)
         VALUES ($1, $2, $3, COALESCE(actor_name($2, $3), '(unknown)'), $4, $5, $6,
                 COALESCE($7, actor_name(CASE $5 WHEN 'member' THEN 'user' WHEN 'token' THEN 'token' END, $6)),
                 $8)",
        org,
        caller.kind(),
        caller.id(),
        action,
        target.kind,
        target.id,
        target.name,
        detail
    )
    .execute(tx)
    .await?;
    Ok(())
}
