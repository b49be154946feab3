//! `/api/v1/organizations/*`: organizations, joining by invite, invites, members, API tokens
//! and the audit log.

pub mod audit_log;
pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;
pub mod tokens;

shared::http_routes!(
    orgs::create,
    orgs::list,
    join::join,
    orgs::get,
    invites::create,
    invites::list,
    invites::revoke,
    members::list,
    members::change_role,
    members::remove,
    tokens::create,
    tokens::list,
    tokens::revoke,
    audit_log::list,
);
