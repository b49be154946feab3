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
    modifiers(&BearerAuth, &ProblemResponses),
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

/// Error bodies are `application/problem+json`, every API operation may be rate limited (429),
/// and the invite body is optional: stated once here rather than on every annotation.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Required, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if status.as_str() >= "400" {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response
                                .content
                                .insert("application/problem+json".to_string(), content);
                        }
                    }
                }
                if path.starts_with("/api/") && !operation.responses.responses.contains_key("429") {
                    let problem = utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                        .build();
                    let too_many = ResponseBuilder::new()
                        .description("Rate limited; see Retry-After")
                        .content("application/problem+json", problem)
                        .build();
                    operation
                        .responses
                        .responses
                        .insert("429".to_string(), too_many.into());
                }
                if path.ends_with("/invites") {
                    if let Some(body) = operation.request_body.as_mut() {
                        body.required = Some(Required::False);
                    }
                }
            }
        }
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
