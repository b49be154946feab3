//! `/api/v1/organizations/*`: organizations, joining by invite, invites, members, API tokens,
//! the audit log, the event feed and webhooks, fair-sharing settings, quotas and usage.

pub mod audit_log;
pub mod events;
pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;
pub mod quotas;
pub mod settings;
pub mod tokens;
pub mod usage;
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
    settings::get,
    settings::update,
    quotas::set_for_member,
    quotas::remove_for_member,
    quotas::set_for_token,
    quotas::remove_for_token,
    usage::list,
);
