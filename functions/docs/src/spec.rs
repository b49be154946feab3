//! The OpenAPI 3.1 document: each function's router brings its operations (bound to the
//! handlers by utoipa-axum), merged here under one title, security scheme and problem format.
//! The merged document is committed as `functions/docs/openapi.json`; a test keeps it current.

use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hypervisor API", version = "1.0.0",
         description = "Share GPU/CPU clusters between teams: organizations, clusters, and a priority scheduler that explains every decision."),
    components(schemas(shared::error::Problem, shared::error::FieldError, shared::resources::ResourcesDto)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "organizations", description = "Organizations, invites, members and the audit log"),
        (name = "tokens", description = "Organization API tokens for CI pipelines, agents and scripts"),
        (name = "clusters", description = "Clusters and their capacity"),
        (name = "deployments", description = "Submitting and following deployments"),
        (name = "docs", description = "This documentation"),
    )
)]
pub struct ApiDoc;

/// The whole document from the API functions' routers (`auth::api()`, ...): this function's
/// pages, their operations, one title, security scheme and problem format.
/// `tests/openapi_is_current.rs` calls it and keeps `openapi.json` equal to it.
pub fn assemble(
    functions: impl IntoIterator<Item = utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api().split_for_parts().1);
    for function in functions {
        doc.merge(function);
    }
    BearerAuth.modify(&mut doc);
    ProblemResponses.modify(&mut doc);
    doc
}

/// "Authorize" in Swagger UI logs in through the password flow of `/api/v1/auth/login`, or
/// takes an organization API token (`hvt_...`): every authenticated operation accepts either.
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
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An organization API token (`hvt_...`), made by an admin with \
                         POST /api/v1/organizations/{id}/tokens",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if let Some(security) = operation.security.as_mut().filter(|s| !s.is_empty()) {
                    security.push(SecurityRequirement::new("api_token", Vec::<String>::new()));
                }
            }
        }
    }
}

/// Error bodies are `application/problem+json`, every API operation may be rate limited (429)
/// or meet a database outage (503),
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
                if path.starts_with("/api/") && !operation.responses.responses.contains_key("503") {
                    let problem = utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                        .build();
                    let unavailable = ResponseBuilder::new()
                        .description("The database is briefly unreachable; see Retry-After")
                        .content("application/problem+json", problem)
                        .build();
                    operation
                        .responses
                        .responses
                        .insert("503".to_string(), unavailable.into());
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

/// The document this function serves, generated by [`assemble`] and committed (as `.sqlx/` is):
/// linking the other functions' routers here would put all their handlers in this binary.
pub fn json() -> &'static str {
    include_str!("../openapi.json")
}
