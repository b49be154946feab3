//! `/api/v1/organizations/*`: organizations, joining by invite, invites and members.

pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;

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
);
