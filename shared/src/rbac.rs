//! Roles per organization and the one question every route asks: may this user do X in org Y?

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Role {
    Admin,
    Developer,
    Viewer,
}

/// What a route wants to do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the organization and everything in it.
    Read,
    /// Submit, cancel and complete deployments.
    Deploy,
    /// Manage clusters, invites and members.
    Administer,
}

impl Role {
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Developer => matches!(action, Action::Read | Action::Deploy),
            Role::Viewer => action == Action::Read,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// The caller's role in `org`, if they are a member.
pub async fn role_in(db: &PgPool, user_id: Uuid, org: Uuid) -> Result<Option<Role>, ApiError> {
    let role = sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM memberships WHERE organization_id = $1 AND user_id = $2"#,
        org,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(role)
}

/// Allows `action` or explains why not. Non-members get 404 (`what` names the object), so
/// another organization's objects are indistinguishable from ones that do not exist.
pub async fn authorize(
    db: &PgPool,
    user_id: Uuid,
    org: Uuid,
    action: Action,
    what: &str,
) -> Result<Role, ApiError> {
    // Every log line of the request from here on names the organization it acts in.
    tracing::Span::current().record("organization_id", tracing::field::display(org));
    let role = role_in(db, user_id, org)
        .await?
        .ok_or_else(|| ApiError::not_found(what))?;
    if role.allows(action) {
        Ok(role)
    } else {
        Err(ApiError::Forbidden(format!(
            "your role ({}) does not allow this",
            role.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_contract_says() {
        assert!(Role::Admin.allows(Action::Administer));
        assert!(Role::Developer.allows(Action::Deploy));
        assert!(!Role::Developer.allows(Action::Administer));
        assert!(Role::Viewer.allows(Action::Read));
        assert!(!Role::Viewer.allows(Action::Deploy));
    }
}
