//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;
use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hypervisor API", version = "1.0.0",
         description = "Share GPU/CPU clusters between teams: organizations, clusters, and a priority scheduler that explains every decision."),
    paths(
        auth::register::register, auth::login::login, auth::sessions::refresh, auth::sessions::logout, auth::me::me,
        organizations::orgs::create, organizations::orgs::list, organizations::orgs::get, organizations::join::join,
        organizations::invites::create, organizations::invites::list, organizations::invites::revoke,
        organizations::members::list, organizations::members::change_role, organizations::members::remove,
        clusters::routes::create, clusters::routes::list, clusters::routes::get, clusters::routes::update,
        clusters::routes::delete,
        deployments::submit::submit, deployments::submit::dry_run, deployments::read::list, deployments::read::get,
        deployments::read::events, deployments::lifecycle::cancel, deployments::lifecycle::complete,
        openapi_json, swagger_ui, redoc,
    ),
    components(schemas(shared::error::Problem, shared::error::FieldError, shared::resources::ResourcesDto)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "organizations", description = "Organizations, invites and members"),
        (name = "clusters", description = "Clusters and their capacity"),
        (name = "deployments", description = "Submitting and following deployments"),
        (name = "docs", description = "This documentation"),
    )
)]
pub struct ApiDoc;

/// "Authorize" in Swagger UI logs in through the password flow of `/api/v1/auth/login`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/login",
                Scopes::new(),
            ))])),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", responses((status = 200, description = "The OpenAPI 3.1 document")))]
#[allow(dead_code)]
fn openapi_json() {}

/// Swagger UI.
#[utoipa::path(get, path = "/docs", tag = "docs", responses((status = 301, description = "Redirects to the Swagger UI page")))]
#[allow(dead_code)]
fn swagger_ui() {}

/// ReDoc.
#[utoipa::path(get, path = "/redoc", tag = "docs", responses((status = 200, description = "The ReDoc page", content_type = "text/html")))]
#[allow(dead_code)]
fn redoc() {}

pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_json().expect("the spec serializes"))
}
