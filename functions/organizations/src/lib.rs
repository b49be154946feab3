//! `/api/v1/organizations/*`: organizations, joining by invite, invites and members.

pub mod invites;
pub mod join;
pub mod members;
pub mod orgs;

use lambda_http::http::Method;
use shared::http::{
    finish, method_not_allowed, path_id, route_not_found, segments_after, Request, Response,
};
use shared::{ApiError, AppState};

pub const PREFIX: &str = "/api/v1/organizations";

pub async fn handle(state: &AppState, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    finish(&method, &path, route(state, &req).await)
}

async fn route(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let segments = segments_after(req, PREFIX).ok_or_else(route_not_found)?;
    let m = req.method().clone();
    let org = |s: &str| path_id(s, "organization");
    match (segments.as_slice(), m) {
        ([], Method::POST) => orgs::create(state, req).await,
        ([], Method::GET) => orgs::list(state, req).await,
        (["join"], Method::POST) => join::join(state, req).await,
        ([id], Method::GET) if *id != "join" => orgs::get(state, req, org(id)?).await,
        ([id, "invites"], Method::POST) => invites::create(state, req, org(id)?).await,
        ([id, "invites"], Method::GET) => invites::list(state, req, org(id)?).await,
        ([id, "invites", invite], Method::DELETE) => {
            invites::revoke(state, req, org(id)?, path_id(invite, "invite")?).await
        }
        ([id, "members"], Method::GET) => members::list(state, req, org(id)?).await,
        ([id, "members", user], Method::PATCH) => {
            members::change_role(state, req, org(id)?, path_id(user, "member")?).await
        }
        ([id, "members", user], Method::DELETE) => {
            members::remove(state, req, org(id)?, path_id(user, "member")?).await
        }
        ([], _) => Err(method_not_allowed(&[Method::GET, Method::POST])),
        (["join"], _) => Err(method_not_allowed(&[Method::POST])),
        ([_], _) => Err(method_not_allowed(&[Method::GET])),
        ([_, "invites"], _) => Err(method_not_allowed(&[Method::GET, Method::POST])),
        ([_, "invites", _], _) => Err(method_not_allowed(&[Method::DELETE])),
        ([_, "members"], _) => Err(method_not_allowed(&[Method::GET])),
        ([_, "members", _], _) => Err(method_not_allowed(&[Method::PATCH, Method::DELETE])),
        _ => Err(route_not_found()),
    }
}
