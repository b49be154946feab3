//! Who may call what: every route of `template.yaml` against every kind of caller, with the
//! status DESIGN.md §4 promises for each cell.
//!
//! The table below must name every route of the template (a plain #[test] and the matrix itself
//! fail otherwise), so a new route cannot ship without deciding who may call it. Every cell is
//! one real HTTP request against the in-process local stack; wrong cells are collected and the
//! whole matrix is printed before the test fails.

use e2e_tests::TestApp;
use reqwest::{header, Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

const PASSWORD: &str = "Correct-Horse-Battery-9";

/// Who the contract lets call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// `/docs`, `/redoc`, `/openapi.json`, the console (`/`, `/console/...`): anyone; 200 (or
    /// a redirect to a trailing slash or to the console).
    Docs,
    /// register, login, refresh, logout: no bearer needed, and a bad one changes nothing.
    Public,
    /// Any authenticated caller, API tokens included; not about one organization's objects.
    AnyUser,
    /// A person only: creating or joining organizations (403 for an API token).
    Person,
    /// Members of the organization (any role): reads.
    Member,
    /// Developers and admins of the organization.
    Deployer,
    /// Admins of the organization.
    OrgAdmin,
    /// Admins, or the member themselves (DELETE member). The matrix targets another member;
    /// the self cases are extra cells.
    OrgAdminOrSelf,
}

struct Row {
    method: &'static str,
    path: &'static str,
    who: Who,
    /// What an allowed caller gets.
    ok: &'static [u16],
}

const fn row(method: &'static str, path: &'static str, who: Who, ok: &'static [u16]) -> Row {
    Row {
        method,
        path,
        who,
        ok,
    }
}

/// One row per route of template.yaml.
const TABLE: &[Row] = &[
    row("POST", "/api/v1/auth/register", Who::Public, &[201]),
    row("POST", "/api/v1/auth/login", Who::Public, &[200]),
    row("POST", "/api/v1/auth/refresh", Who::Public, &[200]),
    row("POST", "/api/v1/auth/logout", Who::Public, &[204]),
    row("GET", "/api/v1/auth/me", Who::AnyUser, &[200]),
    row("POST", "/api/v1/organizations", Who::Person, &[201]),
    row("GET", "/api/v1/organizations", Who::AnyUser, &[200]),
    row("GET", "/api/v1/organizations/{id}", Who::Member, &[200]),
    row("POST", "/api/v1/organizations/join", Who::Person, &[200]),
    row(
        "POST",
        "/api/v1/organizations/{id}/invites",
        Who::OrgAdmin,
        &[201],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/invites",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/invites/{invite_id}",
        Who::OrgAdmin,
        &[204],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/members",
        Who::Member,
        &[200],
    ),
    row(
        "PATCH",
        "/api/v1/organizations/{id}/members/{user_id}",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/members/{user_id}",
        Who::OrgAdminOrSelf,
        &[204],
    ),
    row(
        "POST",
        "/api/v1/organizations/{id}/tokens",
        Who::OrgAdmin,
        &[201],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/tokens",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/tokens/{token_id}",
        Who::OrgAdmin,
        &[204],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/audit",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/events",
        Who::Member,
        &[200],
    ),
    row(
        "POST",
        "/api/v1/organizations/{id}/webhooks",
        Who::OrgAdmin,
        &[201],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/webhooks",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}",
        Who::OrgAdmin,
        &[204],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}/deliveries",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/settings",
        Who::Member,
        &[200],
    ),
    row(
        "PATCH",
        "/api/v1/organizations/{id}/settings",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "PUT",
        "/api/v1/organizations/{id}/members/{user_id}/quota",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/members/{user_id}/quota",
        Who::OrgAdmin,
        &[204],
    ),
    row(
        "PUT",
        "/api/v1/organizations/{id}/tokens/{token_id}/quota",
        Who::OrgAdmin,
        &[200],
    ),
    row(
        "DELETE",
        "/api/v1/organizations/{id}/tokens/{token_id}/quota",
        Who::OrgAdmin,
        &[204],
    ),
    row(
        "GET",
        "/api/v1/organizations/{id}/usage",
        Who::Member,
        &[200],
    ),
    row("POST", "/api/v1/clusters", Who::OrgAdmin, &[201]),
    row("GET", "/api/v1/clusters", Who::AnyUser, &[200]),
    row("GET", "/api/v1/clusters/{id}", Who::Member, &[200]),
    row("PATCH", "/api/v1/clusters/{id}", Who::OrgAdmin, &[200]),
    row("DELETE", "/api/v1/clusters/{id}", Who::OrgAdmin, &[204]),
    row("POST", "/api/v1/deployments", Who::Deployer, &[202]),
    row("POST", "/api/v1/deployments/dry-run", Who::Deployer, &[200]),
    row("GET", "/api/v1/deployments", Who::AnyUser, &[200]),
    row("GET", "/api/v1/deployments/{id}", Who::Member, &[200]),
    row(
        "GET",
        "/api/v1/deployments/{id}/events",
        Who::Member,
        &[200],
    ),
    row(
        "POST",
        "/api/v1/deployments/{id}/cancel",
        Who::Deployer,
        &[200],
    ),
    row(
        "POST",
        "/api/v1/deployments/{id}/complete",
        Who::Deployer,
        &[200],
    ),
    row("GET", "/openapi.json", Who::Docs, &[200, 301]),
    row("GET", "/docs", Who::Docs, &[200, 301]),
    row("GET", "/docs/{proxy+}", Who::Docs, &[200, 301]),
    row("GET", "/redoc", Who::Docs, &[200, 301]),
    row("GET", "/redoc/{proxy+}", Who::Docs, &[200, 301]),
    row("GET", "/", Who::Docs, &[302]),
    row("GET", "/console", Who::Docs, &[301]),
    row("GET", "/console/{proxy+}", Who::Docs, &[200]),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persona {
    NoToken,
    /// Signed by us, for the admin, but expired two minutes ago.
    Expired,
    /// The admin's token with one character of its signature changed.
    BadSignature,
    /// The viewer's header and signature around the admin's claims (a changed payload).
    SplicedClaims,
    /// Well-formed claims for the admin, signed with another secret.
    WrongKey,
    /// `alg: none` with the admin's claims and no signature.
    AlgNone,
    Viewer,
    Developer,
    Admin,
    /// Admin of another organization.
    Outsider,
    /// The organization's API tokens: developer and viewer.
    DevToken,
    ViewerToken,
    /// A developer token of the organization, revoked.
    RevokedToken,
    /// A developer token of the organization, past its expiry.
    ExpiredToken,
    /// A developer token of another organization.
    OutsiderToken,
}

const PERSONAS: [Persona; 15] = [
    Persona::NoToken,
    Persona::Expired,
    Persona::BadSignature,
    Persona::SplicedClaims,
    Persona::WrongKey,
    Persona::AlgNone,
    Persona::Viewer,
    Persona::Developer,
    Persona::Admin,
    Persona::Outsider,
    Persona::DevToken,
    Persona::ViewerToken,
    Persona::RevokedToken,
    Persona::ExpiredToken,
    Persona::OutsiderToken,
];

impl Persona {
    fn label(self) -> &'static str {
        match self {
            Persona::NoToken => "none",
            Persona::Expired => "expired",
            Persona::BadSignature => "badsig",
            Persona::SplicedClaims => "spliced",
            Persona::WrongKey => "wrongkey",
            Persona::AlgNone => "algnone",
            Persona::Viewer => "viewer",
            Persona::Developer => "dev",
            Persona::Admin => "admin",
            Persona::Outsider => "outsider",
            Persona::DevToken => "devtoken",
            Persona::ViewerToken => "viewtoken",
            Persona::RevokedToken => "revoked",
            Persona::ExpiredToken => "exptoken",
            Persona::OutsiderToken => "othertoken",
        }
    }

    fn is_authenticated(self) -> bool {
        matches!(
            self,
            Persona::Viewer
                | Persona::Developer
                | Persona::Admin
                | Persona::Outsider
                | Persona::DevToken
                | Persona::ViewerToken
                | Persona::OutsiderToken
        )
    }

    fn is_token(self) -> bool {
        matches!(
            self,
            Persona::DevToken | Persona::ViewerToken | Persona::OutsiderToken
        )
    }

    fn is_outsider(self) -> bool {
        matches!(self, Persona::Outsider | Persona::OutsiderToken)
    }
}

/// The statuses the contract allows for `persona` calling `row`.
fn expected(row: &Row, persona: Persona) -> Vec<u16> {
    use Persona::*;
    match row.who {
        Who::Docs | Who::Public => row.ok.to_vec(),
        _ if !persona.is_authenticated() => vec![401],
        Who::AnyUser => row.ok.to_vec(),
        Who::Person if persona.is_token() => vec![403],
        Who::Person => row.ok.to_vec(),
        _ if persona.is_outsider() => vec![404],
        Who::Member => row.ok.to_vec(),
        Who::Deployer => match persona {
            Viewer | ViewerToken => vec![403],
            _ => row.ok.to_vec(),
        },
        Who::OrgAdmin | Who::OrgAdminOrSelf => match persona {
            Viewer | Developer | DevToken | ViewerToken => vec![403],
            _ => row.ok.to_vec(),
        },
    }
}

/// The routes of template.yaml, read by the router the local server uses and, independently, by
/// a plain scan of its `Method:`/`Path:` lines; the two must agree.
fn template_routes() -> BTreeSet<(String, String)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let routes = hypervisor_local::Routes::from_template_file(&file).expect("template.yaml parses");
    let parsed: BTreeSet<(String, String)> = routes
        .all()
        .iter()
        .map(|r| (r.method.to_uppercase(), r.path.clone()))
        .collect();
    assert_eq!(
        parsed.len(),
        routes.all().len(),
        "template.yaml declares a route twice"
    );

    let text = std::fs::read_to_string(&file).expect("template.yaml is readable");
    let mut scanned = BTreeSet::new();
    let (mut method, mut path): (Option<String>, Option<String>) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(m) = line.strip_prefix("Method:") {
            method = Some(m.trim().trim_matches('"').to_uppercase());
        } else if let Some(p) = line.strip_prefix("Path:") {
            path = Some(p.trim().trim_matches('"').to_string());
        }
        if let (Some(m), Some(p)) = (&method, &path) {
            scanned.insert((m.clone(), p.clone()));
            (method, path) = (None, None);
        }
    }
    assert_eq!(
        parsed, scanned,
        "the router and a plain reading of template.yaml disagree about the routes"
    );
    parsed
}

fn table_routes() -> BTreeSet<(String, String)> {
    let set: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(set.len(), TABLE.len(), "the table has a duplicate row");
    set
}

fn assert_table_covers_template() {
    let template = template_routes();
    let table = table_routes();
    let missing: Vec<_> = template.difference(&table).collect();
    let stale: Vec<_> = table.difference(&template).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "authorization_matrix.rs TABLE is out of date with template.yaml:\n  \
         routes without a row (decide who may call them): {missing:?}\n  \
         rows for routes the template no longer has: {stale:?}"
    );
}

#[test]
fn every_template_route_has_a_row_in_the_matrix() {
    assert_table_covers_template();
}

/// What the matrix needs to exist before it starts.
struct Fixture {
    org: String,
    org_uuid: Uuid,
    /// The organization's default developer invite code.
    org_code: String,
    cluster: String,
    running: String,
    pending: String,
    invite: String,
    /// A webhook nobody's cell deletes (the deliveries cells read it).
    webhook: String,
    /// A developer nobody's cell removes; PATCH member cells target them.
    spare_member: String,
    /// An invite code of a third organization nobody in the matrix belongs to.
    lobby_code: String,
    admin_name: String,
    admin_id: Uuid,
    admin_token: String,
    /// The admin's current refresh token (rotated by every refresh cell).
    refresh: String,
    tokens: Vec<(Persona, Option<String>)>,
    /// Every id of the organization an outsider must never see in a 2xx body.
    secrets: Vec<String>,
    counter: u32,
}

impl Fixture {
    fn token(&self, persona: Persona) -> Option<String> {
        self.tokens
            .iter()
            .find(|(p, _)| *p == persona)
            .and_then(|(_, t)| t.clone())
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }
}

async fn me(app: &TestApp, token: &str) -> Value {
    let (status, me) = app
        .call(Method::GET, "/api/v1/auth/me", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

async fn join(app: &TestApp, token: &str, code: &str) {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/organizations/join",
            Some(token),
            Some(json!({ "invite_code": code })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "join: {body}");
}

/// A user created without the password hashing cost of registering: the matrix needs many.
async fn quick_user(app: &TestApp, name: &str) -> (Uuid, String) {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'unusable')",
    )
    .bind(id)
    .bind(name)
    .bind(format!("{name}@example.com"))
    .execute(&app.db)
    .await
    .expect("insert a user");
    let token = shared::auth::jwt::issue_access_token(&app.state.config, id).expect("a token");
    (id, token)
}

/// A fresh member of the organization (joined through the API); returns (user id, token).
async fn fresh_member(app: &TestApp, fx: &mut Fixture) -> (String, String) {
    let n = fx.next();
    let (id, token) = quick_user(app, &format!("member-{n}")).await;
    join(app, &token, &fx.org_code).await;
    (id.to_string(), token)
}

/// A new webhook of the organization, made by its admin: its id.
async fn fresh_webhook(app: &TestApp, fx: &Fixture) -> String {
    let (status, hook) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{}/webhooks", fx.org),
            Some(&fx.admin_token),
            Some(json!({"url": "https://hooks.example.com/fresh"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["id"].as_str().unwrap().to_string()
}

/// A new API token of the organization, made by its admin: (id, secret).
async fn fresh_api_token(app: &TestApp, fx: &mut Fixture, role: &str) -> (String, String) {
    let n = fx.next();
    api_token_of(app, &fx.admin_token, &fx.org, &format!("api-{n}"), role).await
}

async fn api_token_of(
    app: &TestApp,
    admin_token: &str,
    org: &str,
    name: &str,
    role: &str,
) -> (String, String) {
    let (status, token) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{org}/tokens"),
            Some(admin_token),
            Some(json!({"name": name, "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    (
        token["id"].as_str().unwrap().to_string(),
        token["token"].as_str().unwrap().to_string(),
    )
}

async fn fresh_cluster(app: &TestApp, fx: &mut Fixture) -> String {
    let n = fx.next();
    app.cluster(
        &fx.admin_token,
        &fx.org,
        &format!("scratch-{n}"),
        1.0,
        1.0,
        0,
    )
    .await
}

async fn fresh_invite(app: &TestApp, fx: &Fixture) -> String {
    let (status, invite) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{}/invites", fx.org),
            Some(&fx.admin_token),
            Some(json!({"role": "viewer", "max_uses": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    invite["id"].as_str().unwrap().to_string()
}

async fn submit(app: &TestApp, token: &str, body: Value) -> String {
    let (status, d) = app
        .call(Method::POST, "/api/v1/deployments", Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{d}");
    d["id"].as_str().unwrap().to_string()
}

fn small_deployment(fx: &mut Fixture) -> Value {
    let n = fx.next();
    json!({"cluster_id": fx.cluster, "name": format!("job-{n}"), "image": "busybox:1.36",
           "resources": {"cpu_cores": 0.1, "ram_gib": 0.1}})
}

/// Pending for as long as the fixture's running deployment runs.
async fn fresh_pending(app: &TestApp, fx: &mut Fixture) -> String {
    let mut body = small_deployment(fx);
    body["depends_on"] = json!([fx.running]);
    submit(app, &fx.admin_token, body).await
}

async fn fresh_running(app: &TestApp, fx: &mut Fixture) -> String {
    let body = small_deployment(fx);
    let id = submit(app, &fx.admin_token, body).await;
    scheduler::run_pass(&app.state, fx.org_uuid)
        .await
        .expect("a scheduler pass");
    app.wait_for(&fx.admin_token, &id, Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    id
}

/// A refresh token of the admin from a login of its own.
async fn login_refresh_token(app: &TestApp, fx: &Fixture) -> String {
    let (status, pair) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": fx.admin_name, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    pair["refresh_token"].as_str().unwrap().to_string()
}

/// A refresh token of a session of its own, so a logout cell ends only that session. Stored
/// as the login handler stores one (a hashed random token in a new family): logging in for
/// each cell would cost a deliberately slow password hash each time.
async fn session_refresh_token(app: &TestApp, fx: &Fixture) -> String {
    let token = shared::auth::token::random_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + interval '1 hour')",
    )
    .bind(Uuid::now_v7())
    .bind(fx.admin_id)
    .bind(Uuid::now_v7())
    .bind(shared::auth::token::hash_token(&token))
    .execute(&app.db)
    .await
    .expect("insert a refresh token");
    token
}

/// The concrete request of one cell: fresh objects wherever the call may change or destroy one.
async fn prepare(
    app: &TestApp,
    fx: &mut Fixture,
    row: &Row,
    persona: Persona,
) -> (String, Option<Value>) {
    let org = fx.org.clone();
    match (row.method, row.path) {
        ("POST", "/api/v1/auth/register") => {
            let n = fx.next();
            let name = format!("reg-{}-{n}", persona.label());
            (
                row.path.into(),
                Some(
                    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
                ),
            )
        }
        ("POST", "/api/v1/auth/login") => (
            row.path.into(),
            Some(json!({"username": fx.admin_name, "password": PASSWORD})),
        ),
        // Each refresh cell spends the token the previous one got (see the main loop).
        ("POST", "/api/v1/auth/refresh") => (
            row.path.into(),
            Some(json!({ "refresh_token": fx.refresh })),
        ),
        ("POST", "/api/v1/auth/logout") => {
            let token = session_refresh_token(app, fx).await;
            (row.path.into(), Some(json!({ "refresh_token": token })))
        }
        ("GET", "/api/v1/auth/me")
        | ("GET", "/api/v1/organizations")
        | ("GET", "/api/v1/clusters")
        | ("GET", "/api/v1/deployments") => (row.path.into(), None),
        ("POST", "/api/v1/organizations") => {
            let n = fx.next();
            (row.path.into(), Some(json!({"name": format!("org-{n}")})))
        }
        ("GET", "/api/v1/organizations/{id}") => (format!("/api/v1/organizations/{org}"), None),
        ("POST", "/api/v1/organizations/join") => {
            (row.path.into(), Some(json!({"invite_code": fx.lobby_code})))
        }
        ("POST", "/api/v1/organizations/{id}/invites") => (
            format!("/api/v1/organizations/{org}/invites"),
            Some(json!({"role": "viewer", "expires_in_hours": 1, "max_uses": 1})),
        ),
        ("GET", "/api/v1/organizations/{id}/invites") => {
            (format!("/api/v1/organizations/{org}/invites"), None)
        }
        ("DELETE", "/api/v1/organizations/{id}/invites/{invite_id}") => {
            let invite = fresh_invite(app, fx).await;
            (
                format!("/api/v1/organizations/{org}/invites/{invite}"),
                None,
            )
        }
        ("POST", "/api/v1/organizations/{id}/tokens") => {
            let n = fx.next();
            (
                format!("/api/v1/organizations/{org}/tokens"),
                Some(json!({"name": format!("token-{n}"), "role": "viewer"})),
            )
        }
        ("GET", "/api/v1/organizations/{id}/tokens") => {
            (format!("/api/v1/organizations/{org}/tokens"), None)
        }
        ("DELETE", "/api/v1/organizations/{id}/tokens/{token_id}") => {
            let (token_id, _) = fresh_api_token(app, fx, "viewer").await;
            (
                format!("/api/v1/organizations/{org}/tokens/{token_id}"),
                None,
            )
        }
        ("GET", "/api/v1/organizations/{id}/audit") => {
            (format!("/api/v1/organizations/{org}/audit"), None)
        }
        ("GET", "/api/v1/organizations/{id}/events") => {
            (format!("/api/v1/organizations/{org}/events"), None)
        }
        ("POST", "/api/v1/organizations/{id}/webhooks") => (
            format!("/api/v1/organizations/{org}/webhooks"),
            Some(json!({"url": "https://hooks.example.com/matrix"})),
        ),
        ("GET", "/api/v1/organizations/{id}/webhooks") => {
            (format!("/api/v1/organizations/{org}/webhooks"), None)
        }
        ("DELETE", "/api/v1/organizations/{id}/webhooks/{webhook_id}") => {
            let hook = fresh_webhook(app, fx).await;
            (format!("/api/v1/organizations/{org}/webhooks/{hook}"), None)
        }
        ("GET", "/api/v1/organizations/{id}/webhooks/{webhook_id}/deliveries") => {
            let hook = fx.webhook.clone();
            (
                format!("/api/v1/organizations/{org}/webhooks/{hook}/deliveries"),
                None,
            )
        }
        ("GET", "/api/v1/organizations/{id}/settings")
        | ("GET", "/api/v1/organizations/{id}/usage") => (row.path.replace("{id}", &org), None),
        // Changes nothing: fair share is off already.
        ("PATCH", "/api/v1/organizations/{id}/settings") => (
            format!("/api/v1/organizations/{org}/settings"),
            Some(json!({"fair_share": false})),
        ),
        ("PUT", "/api/v1/organizations/{id}/members/{user_id}/quota")
        | ("DELETE", "/api/v1/organizations/{id}/members/{user_id}/quota") => (
            format!(
                "/api/v1/organizations/{org}/members/{}/quota",
                fx.spare_member
            ),
            (row.method == "PUT").then(|| json!({"gpu_count": 1000})),
        ),
        ("PUT", "/api/v1/organizations/{id}/tokens/{token_id}/quota")
        | ("DELETE", "/api/v1/organizations/{id}/tokens/{token_id}/quota") => {
            let (token_id, _) = fresh_api_token(app, fx, "viewer").await;
            (
                format!("/api/v1/organizations/{org}/tokens/{token_id}/quota"),
                (row.method == "PUT").then(|| json!({"gpu_count": 1000})),
            )
        }
        ("GET", "/api/v1/organizations/{id}/members") => {
            (format!("/api/v1/organizations/{org}/members"), None)
        }
        ("PATCH", "/api/v1/organizations/{id}/members/{user_id}") => (
            format!("/api/v1/organizations/{org}/members/{}", fx.spare_member),
            // The spare member is a developer already: an allowed call changes nothing.
            Some(json!({"role": "developer"})),
        ),
        ("DELETE", "/api/v1/organizations/{id}/members/{user_id}") => {
            let (member, _) = fresh_member(app, fx).await;
            (
                format!("/api/v1/organizations/{org}/members/{member}"),
                None,
            )
        }
        ("POST", "/api/v1/clusters") => {
            let n = fx.next();
            (
                row.path.into(),
                Some(
                    json!({"organization_id": org, "name": format!("cluster-{n}"),
                            "cpu_cores": 1, "ram_gib": 1, "gpu_count": 0}),
                ),
            )
        }
        ("GET", "/api/v1/clusters/{id}") => (format!("/api/v1/clusters/{}", fx.cluster), None),
        ("PATCH", "/api/v1/clusters/{id}") => {
            let cluster = fresh_cluster(app, fx).await;
            let n = fx.next();
            (
                format!("/api/v1/clusters/{cluster}"),
                Some(json!({"name": format!("renamed-{n}"), "cpu_cores": 2})),
            )
        }
        ("DELETE", "/api/v1/clusters/{id}") => {
            let cluster = fresh_cluster(app, fx).await;
            (format!("/api/v1/clusters/{cluster}"), None)
        }
        ("POST", "/api/v1/deployments") | ("POST", "/api/v1/deployments/dry-run") => {
            (row.path.into(), Some(small_deployment(fx)))
        }
        ("GET", "/api/v1/deployments/{id}") => {
            (format!("/api/v1/deployments/{}", fx.running), None)
        }
        ("GET", "/api/v1/deployments/{id}/events") => {
            (format!("/api/v1/deployments/{}/events", fx.pending), None)
        }
        ("POST", "/api/v1/deployments/{id}/cancel") => {
            let d = fresh_pending(app, fx).await;
            (format!("/api/v1/deployments/{d}/cancel"), None)
        }
        ("POST", "/api/v1/deployments/{id}/complete") => {
            let d = fresh_running(app, fx).await;
            (
                format!("/api/v1/deployments/{d}/complete"),
                Some(json!({"outcome": "succeeded", "message": "done"})),
            )
        }
        ("GET", "/openapi.json") | ("GET", "/docs") | ("GET", "/redoc") => (row.path.into(), None),
        ("GET", "/docs/{proxy+}") => ("/docs/index.html".into(), None),
        ("GET", "/redoc/{proxy+}") => ("/redoc/redoc.standalone.js".into(), None),
        ("GET", "/") | ("GET", "/console") => (row.path.into(), None),
        ("GET", "/console/{proxy+}") => ("/console/o/any/queue".into(), None),
        (method, path) => panic!("the matrix has a row for {method} {path} but no request for it"),
    }
}

struct Outcome {
    status: u16,
    content_type: String,
    body: String,
}

async fn send(
    client: &Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Outcome {
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.bytes().await.unwrap_or_default();
    Outcome {
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Everything wrong with one answer, beyond its status.
fn shape_problems(outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if outcome.status >= 500 {
        problems.push("a 5xx".to_string());
    }
    if outcome.status >= 400 {
        if !outcome.content_type.starts_with("application/problem+json") {
            problems.push(format!(
                "error content-type is {:?}, not application/problem+json",
                outcome.content_type
            ));
        }
        match serde_json::from_str::<Value>(&outcome.body) {
            Ok(p) => {
                for field in ["type", "title", "detail"] {
                    if !p[field].is_string() {
                        problems.push(format!("problem has no string `{field}`"));
                    }
                }
                if p["status"] != json!(outcome.status) {
                    problems.push(format!(
                        "problem status {} ≠ {}",
                        p["status"], outcome.status
                    ));
                }
            }
            Err(_) => problems.push("error body is not JSON".into()),
        }
    }
    problems
}

struct Cell {
    route: String,
    persona: Persona,
    expected: Vec<u16>,
    status: u16,
    problems: Vec<String>,
    body: String,
}

impl Cell {
    fn wrong(&self) -> bool {
        !self.expected.contains(&self.status) || !self.problems.is_empty()
    }
}

fn short(body: &str) -> String {
    let one_line: String = body.chars().filter(|c| !c.is_control()).take(160).collect();
    one_line
}

fn render(cells: &[Cell], routes: &[String]) -> String {
    let mut out = String::new();
    let width = routes.iter().map(String::len).max().unwrap_or(10).max(10);
    let _ = write!(out, "{:width$}", "route (✗ = wrong cell)");
    for p in PERSONAS {
        let _ = write!(out, " {:>9}", p.label());
    }
    out.push('\n');
    for route in routes {
        let _ = write!(out, "{route:width$}");
        for p in PERSONAS {
            let text = cells
                .iter()
                .find(|c| &c.route == route && c.persona == p)
                .map(|c| format!("{}{}", if c.wrong() { "✗" } else { "" }, c.status))
                .unwrap_or_else(|| "-".into());
            let _ = write!(out, " {text:>9}");
        }
        out.push('\n');
    }
    out
}

/// The organization with an admin, a developer, a viewer, a spare developer, a cluster, a
/// running and a pending deployment and an invite; another organization whose admin is the
/// outsider; and a third ("lobby") whose invite code anyone may use.
async fn fixture(app: &TestApp) -> Fixture {
    // Only the admin logs in with a password (the login cells use it); the others get their
    // tokens from the signing function, which spares a slow password hash each.
    let admin = app.user("alice").await;
    let (_, developer) = quick_user(app, "dave").await;
    let (_, viewer) = quick_user(app, "vera").await;
    let (_, outsider) = quick_user(app, "oscar").await;
    let (org, org_code) = app.organization(&admin, "main-org").await;
    let org_uuid: Uuid = org.parse().unwrap();
    join(app, &developer, &org_code).await;
    join(app, &viewer, &org_code).await;
    let viewer_id = me(app, &viewer).await["id"].as_str().unwrap().to_string();
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/organizations/{org}/members/{viewer_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "viewer");
    let (spare, _) = quick_user(app, "spare").await;
    let spare_token = shared::auth::jwt::issue_access_token(&app.state.config, spare).unwrap();
    join(app, &spare_token, &org_code).await;

    let cluster = app.cluster(&admin, &org, "main", 64.0, 256.0, 8).await;
    let (other_org, _) = app.organization(&outsider, "other-org").await;
    app.cluster(&outsider, &other_org, "theirs", 8.0, 8.0, 0)
        .await;
    let (_, outsider_token) =
        api_token_of(app, &outsider, &other_org, "their-ci", "developer").await;
    let (_, dev_token) = api_token_of(app, &admin, &org, "ci", "developer").await;
    let (_, viewer_token) = api_token_of(app, &admin, &org, "dashboard", "viewer").await;
    let (revoked_id, revoked_token) = api_token_of(app, &admin, &org, "gone", "developer").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/organizations/{org}/tokens/{revoked_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (expired_id, expired_token) = api_token_of(app, &admin, &org, "old", "developer").await;
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(expired_id.parse::<Uuid>().unwrap())
        .execute(&app.db)
        .await
        .expect("expire a token");
    let (host, _) = quick_user(app, "host").await;
    let host_token = shared::auth::jwt::issue_access_token(&app.state.config, host).unwrap();
    let (_, lobby_code) = app.organization(&host_token, "lobby").await;

    let mut fx = Fixture {
        org: org.clone(),
        org_uuid,
        org_code,
        cluster: cluster.clone(),
        running: String::new(),
        pending: String::new(),
        invite: String::new(),
        webhook: String::new(),
        spare_member: spare.to_string(),
        lobby_code,
        admin_name: "alice".into(),
        admin_id: me(app, &admin).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        admin_token: admin.clone(),
        refresh: String::new(),
        tokens: vec![],
        secrets: vec![],
        counter: 0,
    };
    fx.running = fresh_running(app, &mut fx).await;
    fx.pending = fresh_pending(app, &mut fx).await;
    let pending = app
        .wait_for(&admin, &fx.pending, Duration::from_secs(10), |d| {
            d["reason"]["code"] == "waiting_for_dependencies"
        })
        .await;
    assert_eq!(pending["status"], "pending");
    fx.invite = fresh_invite(app, &fx).await;
    fx.webhook = fresh_webhook(app, &fx).await;
    let admin_id = fx.admin_id;
    fx.refresh = login_refresh_token(app, &fx).await;
    fx.secrets = vec![
        org.clone(),
        cluster,
        fx.running.clone(),
        fx.pending.clone(),
        fx.invite.clone(),
        fx.webhook.clone(),
        viewer_id,
    ];

    // The invalid tokens, all in the admin's name: any of them working would be the worst case.
    let mut expired_config = shared::testing::test_config();
    expired_config.access_token_ttl_seconds = -120;
    let expired = shared::auth::jwt::issue_access_token(&expired_config, admin_id).unwrap();
    let bad_signature = {
        let (rest, signature) = admin.rsplit_once('.').unwrap();
        let mut sig: Vec<char> = signature.chars().collect();
        let i = sig.len() / 2;
        sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
        format!("{rest}.{}", sig.into_iter().collect::<String>())
    };
    let spliced = {
        let v: Vec<&str> = viewer.split('.').collect();
        let a: Vec<&str> = admin.split('.').collect();
        format!("{}.{}.{}", v[0], a[1], v[2])
    };
    let mut other_key = shared::testing::test_config();
    other_key.jwt_secret = "another-secret-that-is-also-32-bytes-or-more"
        .to_string()
        .into();
    let wrong_key = shared::auth::jwt::issue_access_token(&other_key, admin_id).unwrap();
    // base64url of {"alg":"none","typ":"JWT"}
    let alg_none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        admin.split('.').nth(1).unwrap()
    );
    fx.tokens = vec![
        (Persona::NoToken, None),
        (Persona::Expired, Some(expired)),
        (Persona::BadSignature, Some(bad_signature)),
        (Persona::SplicedClaims, Some(spliced)),
        (Persona::WrongKey, Some(wrong_key)),
        (Persona::AlgNone, Some(alg_none)),
        (Persona::Viewer, Some(viewer)),
        (Persona::Developer, Some(developer)),
        (Persona::Admin, Some(admin)),
        (Persona::Outsider, Some(outsider)),
        (Persona::DevToken, Some(dev_token)),
        (Persona::ViewerToken, Some(viewer_token)),
        (Persona::RevokedToken, Some(revoked_token)),
        (Persona::ExpiredToken, Some(expired_token)),
        (Persona::OutsiderToken, Some(outsider_token)),
    ];
    fx
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn every_route_answers_every_caller_as_the_contract_says(db: PgPool) {
    assert_table_covers_template();
    let app = TestApp::start(db).await;
    let mut fx = fixture(&app).await;
    // Redirects are part of the answer (/docs → /docs/), so do not follow them.
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut cells = Vec::new();
    let mut routes = Vec::new();
    for row in TABLE {
        let route = format!("{} {}", row.method, row.path);
        routes.push(route.clone());
        for persona in PERSONAS {
            let (path, body) = prepare(&app, &mut fx, row, persona).await;
            let token = fx.token(persona);
            let outcome = send(
                &client,
                &app.base,
                row.method,
                &path,
                token.as_deref(),
                body,
            )
            .await;
            if row.path == "/api/v1/auth/refresh" {
                fx.refresh = match serde_json::from_str::<Value>(&outcome.body) {
                    Ok(pair) if outcome.status == 200 && pair["refresh_token"].is_string() => {
                        pair["refresh_token"].as_str().unwrap().to_string()
                    }
                    _ => login_refresh_token(&app, &fx).await,
                };
            }
            let mut problems = shape_problems(&outcome);
            if persona.is_outsider() && outcome.status < 300 {
                for secret in fx
                    .secrets
                    .iter()
                    .filter(|s| outcome.body.contains(s.as_str()))
                {
                    problems.push(format!("leaks the other organization's id {secret}"));
                }
            }
            cells.push(Cell {
                route: route.clone(),
                persona,
                expected: expected(row, persona),
                status: outcome.status,
                problems,
                body: outcome.body,
            });
        }
    }

    // DELETE member "or self": anyone may leave; leaving is not removing someone else.
    let route = "DELETE members/{self} (leave)".to_string();
    routes.push(route.clone());
    for persona in [Persona::Viewer, Persona::Developer] {
        let (member, token) = fresh_member(&app, &mut fx).await;
        if persona == Persona::Viewer {
            let (status, _) = app
                .call(
                    Method::PATCH,
                    &format!("/api/v1/organizations/{}/members/{member}", fx.org),
                    Some(&fx.admin_token),
                    Some(json!({"role": "viewer"})),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let path = format!("/api/v1/organizations/{}/members/{member}", fx.org);
        let outcome = send(&client, &app.base, "DELETE", &path, Some(&token), None).await;
        cells.push(Cell {
            route: route.clone(),
            persona,
            expected: vec![204],
            status: outcome.status,
            problems: shape_problems(&outcome),
            body: outcome.body,
        });
    }
    // The outsider "leaving" an organization they are not in learns nothing.
    let outsider_id = me(&app, &fx.token(Persona::Outsider).unwrap()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/organizations/{}/members/{outsider_id}", fx.org);
    let outcome = send(
        &client,
        &app.base,
        "DELETE",
        &path,
        fx.token(Persona::Outsider).as_deref(),
        None,
    )
    .await;
    cells.push(Cell {
        route: route.clone(),
        persona: Persona::Outsider,
        expected: vec![404],
        status: outcome.status,
        problems: shape_problems(&outcome),
        body: outcome.body,
    });

    // Naming the organization in a query string or a body, rather than the path, is the same.
    let org = fx.org.clone();
    let by_org_query: [(&str, String, Option<Value>, [u16; 7]); 3] = [
        (
            "GET /clusters?organization_id=",
            format!("/api/v1/clusters?organization_id={org}"),
            None,
            [200, 200, 200, 404, 200, 200, 404],
        ),
        (
            "GET /deployments?organization_id=",
            format!("/api/v1/deployments?organization_id={org}"),
            None,
            [200, 200, 200, 404, 200, 200, 404],
        ),
        (
            "POST /deployments {organization_id}",
            "/api/v1/deployments".to_string(),
            Some(
                json!({"organization_id": org, "name": "by-org", "image": "busybox:1.36",
                        "resources": {"cpu_cores": 0.1}}),
            ),
            [403, 202, 202, 404, 403, 202, 404],
        ),
    ];
    for (label, path, body, statuses) in by_org_query {
        routes.push(label.to_string());
        let method = if body.is_some() { "POST" } else { "GET" };
        for (persona, status) in [
            Persona::Viewer,
            Persona::Developer,
            Persona::Admin,
            Persona::Outsider,
            Persona::ViewerToken,
            Persona::DevToken,
            Persona::OutsiderToken,
        ]
        .into_iter()
        .zip(statuses)
        {
            let token = fx.token(persona);
            let outcome = send(
                &client,
                &app.base,
                method,
                &path,
                token.as_deref(),
                body.clone(),
            )
            .await;
            let mut problems = shape_problems(&outcome);
            if persona.is_outsider() && outcome.status < 300 {
                problems.push("answered an outsider".into());
            }
            cells.push(Cell {
                route: label.to_string(),
                persona,
                expected: vec![status],
                status: outcome.status,
                problems,
                body: outcome.body,
            });
        }
    }

    let wrong: Vec<&Cell> = cells.iter().filter(|c| c.wrong()).collect();
    if !wrong.is_empty() {
        let mut report = render(&cells, &routes);
        report.push_str("\nwrong cells:\n");
        for c in &wrong {
            let _ = writeln!(
                report,
                "  {} as {}: expected {:?}, got {}{} — {}",
                c.route,
                c.persona.label(),
                c.expected,
                c.status,
                if c.problems.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", c.problems.join("; "))
                },
                short(&c.body)
            );
        }
        panic!(
            "{} of {} cells are wrong:\n{report}",
            wrong.len(),
            cells.len()
        );
    }
    println!("{}", render(&cells, &routes));
}
