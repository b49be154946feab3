//! Roles per organization and the one question every route asks: may this caller (a person or
//! an API token) do X in organization Y?

use crate::auth::Caller;
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

/// The caller's role in `org`, if they act in it: a member's role, or a token's role in its
/// own organization.
pub async fn role_in(db: &PgPool, caller: &Caller, org: Uuid) -> Result<Option<Role>, ApiError> {
    let user = match caller {
        Caller::Token(t) => return Ok((t.organization_id == org).then_some(t.role)),
        Caller::User { id } => *id,
    };
    let role = sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM memberships WHERE organization_id = $1 AND user_id = $2"#,
        org,
        user
    )
    .fetch_optional(db)
    .await?;
    Ok(role)
}

/// Allows `action` or explains why not. Outsiders get 404 (`what` names the object), so
/// another organization's objects are indistinguishable from ones that do not exist. A token
/// is never admin, so everything `Administer` guards is 403 for one.
pub async fn authorize(
    db: &PgPool,
    caller: &Caller,
    org: Uuid,
    action: Action,
    what: &str,
) -> Result<Role, ApiError> {
    decide(caller, org, role_in(db, caller, org).await?, action, what)
}

/// [`authorize`] with the user's membership role in `org` already read, by the same statement
/// that read the object (so a read costs one round trip); ignored for a token, whose role and
/// organization it carries.
pub fn decide(
    caller: &Caller,
    org: Uuid,
    membership: Option<Role>,
    action: Action,
    what: &str,
) -> Result<Role, ApiError> {
    // Every log line of the request from here on names the organization it acts in.
    tracing::Span::current().record("organization_id", tracing::field::display(org));
    let role = match caller {
        Caller::Token(t) => (t.organization_id == org).then_some(t.role),
        Caller::User { .. } => membership,
    }
    .ok_or_else(|| ApiError::not_found(what))?;
    if role.allows(action) {
        Ok(role)
    } else {
        let whose = match caller {
            Caller::User { .. } => "your role",
            Caller::Token(_) => "this API token's role",
        };
        Err(ApiError::Forbidden(format!(
            "{whose} ({}) does not allow this",
            role.as_str()
        )))
    }
}

/// The person making the request, for what only a person may do (create or join an
/// organization, or be recorded as an object's creator). A token is 403.
pub fn person(caller: &Caller) -> Result<Uuid, ApiError> {
    caller.user_id().ok_or_else(|| {
        ApiError::Forbidden(
            "an API token cannot do this: it needs a person signed in with their own account"
                .into(),
        )
    })
}

/// Every organization the caller acts in, with its role there: a user's memberships, or a
/// token's one organization.
pub async fn memberships(db: &PgPool, caller: &Caller) -> Result<Vec<(Uuid, Role)>, ApiError> {
    let user = match caller {
        Caller::Token(t) => return Ok(vec![(t.organization_id, t.role)]),
        Caller::User { id } => *id,
    };
    let rows = sqlx::query!(
        r#"SELECT organization_id, role AS "role: Role" FROM memberships WHERE user_id = $1"#,
        user
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.organization_id, r.role))
        .collect())
}

/// Which organizations a list may show: every one the user belongs to, or exactly one (a
/// token's own, or one the caller named and may read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MemberOf(Uuid),
    Organization(Uuid),
}

impl Scope {
    /// `(user, organization)` for SQL written as `organization_id IN (SELECT organization_id
    /// FROM memberships WHERE user_id = $user UNION ALL SELECT $organization)`: exactly one of
    /// the two is set, so the other adds nothing.
    pub fn binds(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Scope::MemberOf(user) => (Some(user), None),
            Scope::Organization(org) => (None, Some(org)),
        }
    }
}

/// The scope of a list the caller asked for, optionally narrowed to `org` (404 unless they may
/// read it).
pub async fn readable(db: &PgPool, caller: &Caller, org: Option<Uuid>) -> Result<Scope, ApiError> {
    if let Some(org) = org {
        authorize(db, caller, org, Action::Read, "organization").await?;
        return Ok(Scope::Organization(org));
    }
    Ok(match caller {
        Caller::User { id } => Scope::MemberOf(*id),
        Caller::Token(t) => Scope::Organization(t.organization_id),
    })
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
