//! `/api/v1/organizations/*`: organizations, joining by invite, invites and members.

pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;

use shared::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route of this function, each bound to its OpenAPI entry.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(orgs::create, orgs::list))
        .routes(routes!(join::join))
        .routes(routes!(orgs::get))
        .routes(routes!(invites::create, invites::list))
        .routes(routes!(invites::revoke))
        .routes(routes!(members::list))
        .routes(routes!(members::change_role, members::remove))
}

pub fn router(state: AppState) -> axum::Router {
    shared::http::router::finish(api().split_for_parts().0.with_state(state))
}
