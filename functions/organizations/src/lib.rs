//! `/api/v1/organizations/*`: organizations, joining by invite, invites, members, API tokens,
//! the audit log, the event feed and webhooks.

pub mod audit_log;
pub mod events;
pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;
pub mod tokens;
pub mod webhooks;

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
    events::feed,
    webhooks::create,
    webhooks::list,
    webhooks::delete,
    webhooks::deliveries,
);
