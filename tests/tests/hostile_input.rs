//! What a hostile or careless client can send, over real HTTP: oversized, deeply nested,
//! malformed and mislabelled bodies, absurd numbers, control characters, garbage query strings
//! and path segments, and huge headers. The contract for all of it: a 4xx
//! `application/problem+json` answer `{type, title, status, detail}`, never a 5xx; and text
//! that is valid is stored and returned byte for byte.

use e2e_tests::TestApp;
use reqwest::{header, Method};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::fmt::Write as _;

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect()
    }
}

/// Sends raw bytes with the given content type (none if `None`).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut req = app.client.request(method, format!("{}{}", app.base, path));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = req.body(body).send().await.expect("the server answers");
    Reply {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    }
}

async fn json_body(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    raw(
        app,
        method,
        path,
        token,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Collects every violation, then fails once with the whole list.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
    count: usize,
}

impl Checks {
    /// `reply` must have one of `statuses`; an error must be a well-formed problem; never a 5xx.
    fn expect(&mut self, what: &str, reply: &Reply, statuses: &[u16]) {
        self.count += 1;
        let mut wrong = Vec::new();
        if !statuses.contains(&reply.status) {
            wrong.push(format!("status {} (expected {statuses:?})", reply.status));
        }
        if reply.status >= 500 {
            wrong.push("a 5xx".into());
        }
        if reply.status >= 400 {
            wrong.extend(problem_shape(reply));
        }
        if !wrong.is_empty() {
            self.failures
                .push(format!("{what}: {} — {}", wrong.join("; "), reply.text()));
        }
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        self.count += 1;
        if !ok {
            self.failures.push(format!("{what}: {detail}"));
        }
    }

    fn finish(self) {
        if !self.failures.is_empty() {
            let mut report = String::new();
            for f in &self.failures {
                let _ = writeln!(report, "  - {f}");
            }
            panic!(
                "{} of {} checks failed:\n{report}",
                self.failures.len(),
                self.count
            );
        }
    }
}

fn problem_shape(reply: &Reply) -> Vec<String> {
    let mut wrong = Vec::new();
    if !reply.content_type.starts_with("application/problem+json") {
        wrong.push(format!(
            "content-type {:?} is not application/problem+json",
            reply.content_type
        ));
    }
    let p = reply.json();
    if !p.is_object() {
        wrong.push("the body is not a JSON object".into());
        return wrong;
    }
    for field in ["type", "title", "detail"] {
        if !p[field].is_string() {
            wrong.push(format!("no string `{field}`"));
        }
    }
    if p["status"] != json!(reply.status) {
        wrong.push(format!("`status` is {} not {}", p["status"], reply.status));
    }
    wrong
}

/// An admin with an organization and a cluster; returns (token, org id, cluster id).
async fn setup(app: &TestApp) -> (String, String, String) {
    let token = app.user("hostile-admin").await;
    let (org, _) = app.organization(&token, "hostile-org").await;
    let cluster = app.cluster(&token, &org, "target", 16.0, 64.0, 2).await;
    (token, org, cluster)
}

fn deployment(cluster: &str, name: &str) -> Value {
    json!({"cluster_id": cluster, "name": name, "image": "busybox:1.36",
           "resources": {"cpu_cores": 0.5, "ram_gib": 1}})
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn oversized_bodies_are_413_problems(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let megabyte = "x".repeat(1024 * 1024);

    let body = json!({ "name": megabyte }).to_string();
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/organizations",
        Some(&token),
        &body,
    )
    .await;
    checks.expect("1 MB POST /organizations", &r, &[413]);

    let body = json!({"organization_id": org, "name": megabyte, "cpu_cores": 1}).to_string();
    let r = json_body(&app, Method::POST, "/api/v1/clusters", Some(&token), &body).await;
    checks.expect("1 MB POST /clusters", &r, &[413]);

    let body = deployment(&cluster, &megabyte).to_string();
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/deployments",
        Some(&token),
        &body,
    )
    .await;
    checks.expect("1 MB POST /deployments", &r, &[413]);

    // Public routes read the body before knowing who is calling: same limit.
    let body = json!({"username": "someone", "email": "a@b.io", "password": megabyte}).to_string();
    let r = json_body(&app, Method::POST, "/api/v1/auth/register", None, &body).await;
    checks.expect("1 MB POST /auth/register", &r, &[413]);
    let body = json!({"username": "someone", "password": megabyte}).to_string();
    let r = json_body(&app, Method::POST, "/api/v1/auth/login", None, &body).await;
    checks.expect("1 MB POST /auth/login", &r, &[413]);
    let form = format!("username=someone&password={megabyte}");
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some("application/x-www-form-urlencoded"),
        form,
    )
    .await;
    checks.expect("1 MB login form", &r, &[413]);

    // Just under the 64 KiB the handlers accept is a normal validation error, not a 413.
    let body = json!({ "name": "y".repeat(60 * 1024) }).to_string();
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/organizations",
        Some(&token),
        &body,
    )
    .await;
    checks.expect("60 KiB POST /organizations (name too long)", &r, &[422]);

    // Past the server's own 10 MB cap.
    let huge = format!("{{\"name\":\"{}\"}}", "z".repeat(11 * 1024 * 1024));
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/organizations",
        Some(&token),
        &huge,
    )
    .await;
    checks.expect("11 MB POST /organizations", &r, &[413]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn deeply_nested_json_is_422(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, _) = setup(&app).await;
    let mut checks = Checks::default();
    const DEPTH: usize = 10_000;
    let arrays = "[".repeat(DEPTH);
    let balanced = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let unclosed_objects = "{\"a\":".repeat(DEPTH);
    let closed_objects = format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    let invites = format!("/api/v1/organizations/{org}/invites");
    // (path, a field the route reads, whether a token is needed)
    let routes = [
        ("/api/v1/organizations", "name", true),
        ("/api/v1/clusters", "name", true),
        ("/api/v1/deployments", "resources", true),
        ("/api/v1/deployments/dry-run", "name", true),
        ("/api/v1/organizations/join", "invite_code", true),
        (invites.as_str(), "role", true),
        ("/api/v1/auth/register", "username", false),
        ("/api/v1/auth/login", "username", false),
        ("/api/v1/auth/refresh", "refresh_token", false),
    ];
    for (path, field, authenticated) in routes {
        let token = authenticated.then_some(token.as_str());
        let in_field_arrays = format!("{{\"{field}\":{}{}}}", "[".repeat(DEPTH), "]".repeat(DEPTH));
        let in_field_objects = format!(
            "{{\"{field}\":{}1{}}}",
            "{\"a\":".repeat(DEPTH),
            "}".repeat(DEPTH)
        );
        for (label, body) in [
            ("10k '['", arrays.as_str()),
            ("10k balanced []", balanced.as_str()),
            ("10k unclosed objects", unclosed_objects.as_str()),
            ("10k '[' in a field", in_field_arrays.as_str()),
            ("10k objects in a field", in_field_objects.as_str()),
        ] {
            let r = json_body(&app, Method::POST, path, token, body).await;
            checks.expect(&format!("{label} → POST {path}"), &r, &[422]);
        }
        // Closed nesting under a key no route knows: skipped as an unknown field, so only the
        // invite route (whose fields are all optional) may accept it; it must never crash.
        let r = json_body(&app, Method::POST, path, token, &closed_objects).await;
        let ok: &[u16] = if path == invites { &[201, 422] } else { &[422] };
        checks.expect(
            &format!("10k objects under an unknown key → POST {path}"),
            &r,
            ok,
        );
    }
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_utf8_and_malformed_json_are_422(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, _, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("bare invalid bytes", vec![0xff, 0xfe, 0xfd, 0x00, 0xc3]),
        (
            "invalid UTF-8 inside a string",
            b"{\"name\":\"ok\xff\xfe\"}".to_vec(),
        ),
        (
            "overlong encoding of '/'",
            b"{\"name\":\"\xc0\xaf\"}".to_vec(),
        ),
        (
            "truncated multi-byte char",
            b"{\"name\":\"\xe2\x82\"}".to_vec(),
        ),
        (
            "UTF-16 surrogate as UTF-8",
            b"{\"name\":\"\xed\xa0\x80\"}".to_vec(),
        ),
        ("lone surrogate escape", br#"{"name":"\ud800"}"#.to_vec()),
        (
            "UTF-8 BOM before JSON",
            b"\xef\xbb\xbf{\"name\":\"bom\"}".to_vec(),
        ),
        ("truncated JSON", br#"{"name":"#.to_vec()),
        ("two documents", br#"{"name":"a"}{"name":"b"}"#.to_vec()),
        ("trailing garbage", br#"{"name":"a"} trailing"#.to_vec()),
        ("NaN literal", br#"{"name":NaN}"#.to_vec()),
        ("single quotes", br#"{'name':'a'}"#.to_vec()),
        (
            "a JSON string, not an object",
            br#""just a string""#.to_vec(),
        ),
        ("null", b"null".to_vec()),
        ("empty body", Vec::new()),
        ("whitespace only", b"  \n\t ".to_vec()),
        ("wrong type for name", br#"{"name": 42}"#.to_vec()),
        ("duplicate keys", br#"{"name":"a","name":"b"}"#.to_vec()),
    ];
    for (label, body) in &bodies {
        for path in [
            "/api/v1/organizations",
            "/api/v1/clusters",
            "/api/v1/deployments",
        ] {
            let r = raw(
                &app,
                Method::POST,
                path,
                Some(&token),
                Some("application/json"),
                body.clone(),
            )
            .await;
            checks.expect(&format!("{label} → POST {path}"), &r, &[422]);
        }
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/logout",
        ] {
            let r = raw(
                &app,
                Method::POST,
                path,
                None,
                Some("application/json"),
                body.clone(),
            )
            .await;
            checks.expect(&format!("{label} → POST {path}"), &r, &[422]);
        }
    }
    // The same bytes in a PATCH and in the OAuth2 form of login.
    let r = raw(
        &app,
        Method::PATCH,
        &format!("/api/v1/clusters/{cluster}"),
        Some(&token),
        Some("application/json"),
        b"{\"name\":\"\xff\"}".to_vec(),
    )
    .await;
    checks.expect("invalid UTF-8 → PATCH /clusters/{id}", &r, &[422]);
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some("application/x-www-form-urlencoded"),
        b"username=\xff\xfe&password=\xc0".to_vec(),
    )
    .await;
    checks.expect("invalid UTF-8 login form", &r, &[401, 422]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn wrong_content_types_are_415(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let org_body = json!({"name": "typed"}).to_string();
    let multipart =
        "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ntyped\r\n--XyZ--\r\n";
    let types: [(&str, &str); 5] = [
        ("text/plain", org_body.as_str()),
        ("text/plain; charset=utf-8", org_body.as_str()),
        ("multipart/form-data; boundary=XyZ", multipart),
        ("application/xml", "<name>typed</name>"),
        ("application/octet-stream", org_body.as_str()),
    ];
    let authenticated = [
        (Method::POST, "/api/v1/organizations".to_string()),
        (Method::POST, "/api/v1/organizations/join".to_string()),
        (Method::POST, format!("/api/v1/organizations/{org}/invites")),
        (Method::POST, "/api/v1/clusters".to_string()),
        (Method::PATCH, format!("/api/v1/clusters/{cluster}")),
        (Method::POST, "/api/v1/deployments".to_string()),
        (Method::POST, "/api/v1/deployments/dry-run".to_string()),
    ];
    for (ct, body) in types {
        for (method, path) in &authenticated {
            let r = raw(
                &app,
                method.clone(),
                path,
                Some(&token),
                Some(ct),
                body.to_string(),
            )
            .await;
            checks.expect(&format!("{ct} → {method} {path}"), &r, &[415]);
        }
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
        ] {
            let r = raw(&app, Method::POST, path, None, Some(ct), body.to_string()).await;
            checks.expect(&format!("{ct} → POST {path}"), &r, &[415]);
        }
    }
    // The same bytes labelled as JSON are fine: the label, not the content, was refused.
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/organizations",
        Some(&token),
        Some("application/json; charset=utf-8"),
        org_body.clone(),
    )
    .await;
    checks.expect("application/json; charset=utf-8", &r, &[201]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn absurd_numbers_are_422(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let numbers = [
        "1e309",
        "-1e309",
        "1e20",
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
        "-1",
        "1e-400",
        "0.0001",
        &"9".repeat(5000),
    ];
    let mut serial = 0;
    for n in numbers {
        // An integer field, then the float fields, of a cluster; every other field valid.
        for field in ["gpu_count", "cpu_cores", "ram_gib"] {
            let quantities: Vec<String> =
                [("cpu_cores", "1"), ("ram_gib", "1"), ("gpu_count", "0")]
                    .iter()
                    .map(|(f, v)| format!(r#""{f}":{}"#, if *f == field { n } else { v }))
                    .collect();
            serial += 1;
            let body = format!(
                r#"{{"organization_id":"{org}","name":"n-{serial}",{}}}"#,
                quantities.join(",")
            );
            let r = json_body(&app, Method::POST, "/api/v1/clusters", Some(&token), &body).await;
            // 1e-400 underflows to 0, a valid quantity (whole GPUs accept any integral number, as JSON Schema does).
            let tiny = n == "1e-400";
            let ok: &[u16] = if tiny { &[201, 422] } else { &[422] };
            checks.expect(
                &format!("cluster {field}={}", &n[..n.len().min(24)]),
                &r,
                ok,
            );
            let body = format!(r#"{{"{field}":{n}}}"#);
            let r = json_body(
                &app,
                Method::PATCH,
                &format!("/api/v1/clusters/{cluster}"),
                Some(&token),
                &body,
            )
            .await;
            let ok: &[u16] = if tiny { &[200, 409, 422] } else { &[422] };
            checks.expect(
                &format!("PATCH cluster {field}={}", &n[..n.len().min(24)]),
                &r,
                ok,
            );
        }
        for field in ["gpu_count", "cpu_cores", "ram_gib"] {
            let body = format!(
                r#"{{"cluster_id":"{cluster}","name":"d","image":"busybox","resources":{{"{field}":{n}}}}}"#
            );
            let r = json_body(
                &app,
                Method::POST,
                "/api/v1/deployments",
                Some(&token),
                &body,
            )
            .await;
            checks.expect(
                &format!("deployment resources.{field}={}", &n[..n.len().min(24)]),
                &r,
                &[422],
            );
        }
        for field in ["priority", "max_runtime_seconds"] {
            let body = format!(
                r#"{{"cluster_id":"{cluster}","name":"d","image":"busybox","resources":{{"cpu_cores":1}},"{field}":{n}}}"#
            );
            let r = json_body(
                &app,
                Method::POST,
                "/api/v1/deployments",
                Some(&token),
                &body,
            )
            .await;
            checks.expect(
                &format!("deployment {field}={}", &n[..n.len().min(24)]),
                &r,
                &[422],
            );
        }
        for field in ["expires_in_hours", "max_uses"] {
            let body = format!(r#"{{"{field}":{n}}}"#);
            let r = json_body(
                &app,
                Method::POST,
                &format!("/api/v1/organizations/{org}/invites"),
                Some(&token),
                &body,
            )
            .await;
            checks.expect(
                &format!("invite {field}={}", &n[..n.len().min(24)]),
                &r,
                &[422],
            );
        }
    }
    // 1e20 cores and 2^64 GPUs as the brief names them, with every other field valid.
    let r = json_body(&app, Method::POST, "/api/v1/clusters", Some(&token),
        &format!(r#"{{"organization_id":"{org}","name":"big","cpu_cores":1e20,"ram_gib":1,"gpu_count":1}}"#)).await;
    checks.expect("1e20 cores", &r, &[422]);
    let r = json_body(&app, Method::POST, "/api/v1/clusters", Some(&token),
        &format!(r#"{{"organization_id":"{org}","name":"big","cpu_cores":1,"ram_gib":1,"gpu_count":18446744073709551616}}"#)).await;
    checks.expect("2^64 GPUs", &r, &[422]);
    // Nothing of that was stored.
    let (_, clusters) = app
        .call(
            Method::GET,
            &format!("/api/v1/clusters?organization_id={org}"),
            Some(&token),
            None,
        )
        .await;
    let stored = clusters.as_array().map(|a| a.len()).unwrap_or(0);
    checks.check(
        "no absurd cluster was stored",
        // The target plus one tiny (1e-400 = 0) cluster per quantity field.
        stored <= 1 + 3,
        format!("{clusters}"),
    );
    checks.finish();
}

/// Names that look like SQL, markup or format strings, and names in every script.
const NAMES: &[&str] = &[
    "Robert'); DROP TABLE organizations;--",
    "' OR '1'='1' --",
    "\"; SELECT pg_sleep(10); --",
    "1; DELETE FROM clusters WHERE true",
    "$1 %s %n {0} ${jndi:ldap://x/a} {{7*7}}",
    "<script>alert(1)</script>",
    "back\\slash \\\" \\u0000 literal",
    "🚀 GPU team 👩‍👩‍👧‍👦 🏳️‍🌈",
    "مرحبا بالعالم",
    "שלום \u{202E}evil\u{202C} end",
    "训练集群 東京 서울",
    "e\u{0301}\u{0302}\u{0303} Z\u{0351}\u{0363}\u{0300}algo",
    "zero\u{200B}width\u{FEFF}joiner\u{200D}",
    "Ω≈ç√∫˜µ≤≥÷ ﷽",
    "\u{10FFFF} last code point",
];

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn hostile_and_unicode_names_round_trip_byte_for_byte(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let mut names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    // The limit counts characters, not bytes: 100 four-byte characters are allowed.
    names.push("🚀".repeat(100));
    names.push("é".repeat(100));

    for (i, name) in names.iter().enumerate() {
        let short: String = name.chars().take(20).collect();
        // Organizations.
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/organizations",
            Some(&token),
            &json!({ "name": name }).to_string(),
        )
        .await;
        checks.expect(&format!("create org {short:?}"), &r, &[201]);
        let created = r.json();
        checks.check(
            &format!("org {short:?} as created"),
            created["name"] == json!(name),
            &created["name"],
        );
        if let Some(id) = created["id"].as_str() {
            let (_, got) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/organizations/{id}"),
                    Some(&token),
                    None,
                )
                .await;
            checks.check(
                &format!("org {short:?} read back"),
                got["name"] == json!(name),
                &got["name"],
            );
        }
        // Clusters (names are unique per organization; these are all different).
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/clusters",
            Some(&token),
            &json!({"organization_id": org, "name": name, "cpu_cores": 1, "ram_gib": 1})
                .to_string(),
        )
        .await;
        checks.expect(&format!("create cluster {short:?}"), &r, &[201]);
        let created = r.json();
        checks.check(
            &format!("cluster {short:?} as created"),
            created["name"] == json!(name),
            &created["name"],
        );
        if let Some(id) = created["id"].as_str() {
            let (_, got) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/clusters/{id}"),
                    Some(&token),
                    None,
                )
                .await;
            checks.check(
                &format!("cluster {short:?} read back"),
                got["name"] == json!(name),
                &got["name"],
            );
        }
        // Deployments.
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/deployments",
            Some(&token),
            &deployment(&cluster, name).to_string(),
        )
        .await;
        checks.expect(&format!("submit deployment {short:?}"), &r, &[202]);
        let created = r.json();
        checks.check(
            &format!("deployment {short:?} as created"),
            created["name"] == json!(name),
            &created["name"],
        );
        if let Some(id) = created["id"].as_str() {
            let (_, got) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/deployments/{id}"),
                    Some(&token),
                    None,
                )
                .await;
            checks.check(
                &format!("deployment {short:?} read back"),
                got["name"] == json!(name),
                &got["name"],
            );
        }
        // A rename through PATCH keeps it too.
        // A prefix keeps it unique and within 100 characters.
        let renamed = format!("#{i} {}", name.chars().take(90).collect::<String>());
        let r = json_body(
            &app,
            Method::PATCH,
            &format!("/api/v1/clusters/{cluster}"),
            Some(&token),
            &json!({ "name": renamed }).to_string(),
        )
        .await;
        checks.expect(&format!("rename cluster to {short:?}"), &r, &[200]);
        if r.status == 409 {
            let names: Vec<String> = sqlx::query_scalar("SELECT name FROM clusters")
                .fetch_all(&app.db)
                .await
                .unwrap();
            eprintln!("DEBUG renamed={renamed:?} existing={names:?}");
        }
        checks.check(
            &format!("cluster renamed to {short:?}"),
            r.json()["name"] == json!(renamed),
            &r.json()["name"],
        );
    }

    // The lists carry the same bytes.
    let (_, orgs) = app
        .call(Method::GET, "/api/v1/organizations", Some(&token), None)
        .await;
    let org_names: Vec<&str> = orgs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    let (_, clusters) = app
        .call(
            Method::GET,
            &format!("/api/v1/clusters?organization_id={org}"),
            Some(&token),
            None,
        )
        .await;
    let cluster_names: Vec<&str> = clusters
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/deployments?limit=200",
            Some(&token),
            None,
        )
        .await;
    let deployment_names: Vec<&str> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    for name in &names {
        let short: String = name.chars().take(20).collect();
        checks.check(
            &format!("org list has {short:?}"),
            org_names.contains(&name.as_str()),
            "missing",
        );
        checks.check(
            &format!("cluster list has {short:?}"),
            cluster_names.contains(&name.as_str()),
            "missing",
        );
        checks.check(
            &format!("deployment list has {short:?}"),
            deployment_names.contains(&name.as_str()),
            "missing",
        );
    }

    // And the tables the SQL-looking names talk about are still there.
    let orgs_left: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    checks.check(
        "organizations survived",
        orgs_left > names.len() as i64, // every name, plus the setup organization
        orgs_left,
    );

    // One character over the limit is refused, however few bytes or many it takes.
    for name in ["🚀".repeat(101), "a".repeat(101)] {
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/organizations",
            Some(&token),
            &json!({ "name": name }).to_string(),
        )
        .await;
        checks.expect("101-character org name", &r, &[422]);
    }
    checks.finish();
}

const CONTROL_NAMES: &[&str] = &[
    "nul\u{0000}inside",
    "ends with nul\u{0000}",
    "tab\tinside",
    "new\nline",
    "carriage\rreturn",
    "bell\u{0007}",
    "escape \u{001b}[31mred",
    "delete\u{007f}char",
    "next line\u{0085}C1",
    "\u{0000}",
];

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn control_characters_in_names_are_422(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    for name in CONTROL_NAMES {
        let label = format!("{name:?}");
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/organizations",
            Some(&token),
            &json!({ "name": name }).to_string(),
        )
        .await;
        checks.expect(&format!("org name {label}"), &r, &[422]);
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/clusters",
            Some(&token),
            &json!({"organization_id": org, "name": name, "cpu_cores": 1}).to_string(),
        )
        .await;
        checks.expect(&format!("cluster name {label}"), &r, &[422]);
        let r = json_body(
            &app,
            Method::PATCH,
            &format!("/api/v1/clusters/{cluster}"),
            Some(&token),
            &json!({ "name": name }).to_string(),
        )
        .await;
        checks.expect(&format!("cluster rename {label}"), &r, &[422]);
        for path in ["/api/v1/deployments", "/api/v1/deployments/dry-run"] {
            let r = json_body(
                &app,
                Method::POST,
                path,
                Some(&token),
                &deployment(&cluster, name).to_string(),
            )
            .await;
            checks.expect(&format!("deployment name {label} → {path}"), &r, &[422]);
        }
        // Images are references, so control characters are invalid there too.
        let mut body = deployment(&cluster, "fine");
        body["image"] = json!(format!("busybox{name}"));
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/deployments",
            Some(&token),
            &body.to_string(),
        )
        .await;
        checks.expect(&format!("image {label}"), &r, &[422]);
        // Registration validates every field.
        let r = json_body(&app, Method::POST, "/api/v1/auth/register", None,
            &json!({"username": format!("u{name}x"), "email": "ctl@example.com", "password": "Correct-Horse-9"}).to_string()).await;
        checks.expect(&format!("username {label}"), &r, &[422]);
        let r = json_body(&app, Method::POST, "/api/v1/auth/register", None,
            &json!({"username": "ctl-user", "email": format!("c{name}@example.com"), "password": "Correct-Horse-9"}).to_string()).await;
        checks.expect(&format!("email {label}"), &r, &[422]);
    }
    // Text that is hashed, never stored, may contain anything; it just does not match.
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/organizations/join",
        Some(&token),
        &json!({"invite_code": "code\u{0000}with nul"}).to_string(),
    )
    .await;
    checks.expect("invite code with NUL", &r, &[404, 422]);
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": "tok\u{0000}en"}).to_string(),
    )
    .await;
    checks.expect("refresh token with NUL", &r, &[401, 422]);
    let r = json_body(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        None,
        &json!({"refresh_token": "tok\u{0000}en"}).to_string(),
    )
    .await;
    checks.expect("logout token with NUL", &r, &[401, 422]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_nul_in_the_login_username_is_a_client_error(db: PgPool) {
    let app = TestApp::start(db).await;
    let mut checks = Checks::default();
    for username in ["ali\u{0000}ce", "\u{0000}", "alice\u{0000}"] {
        let r = json_body(
            &app,
            Method::POST,
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": "Correct-Horse-9"}).to_string(),
        )
        .await;
        checks.expect(&format!("JSON login {username:?}"), &r, &[401, 422]);
    }
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some("application/x-www-form-urlencoded"),
        "username=ali%00ce&password=Correct-Horse-9",
    )
    .await;
    checks.expect("form login with %00", &r, &[401, 422]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_nul_in_the_completion_message_is_a_client_error(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let (_, d) = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&token),
            Some(deployment(&cluster, "job")),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_string();
    scheduler::run_pass(&app.state, org.parse().unwrap())
        .await
        .unwrap();
    app.wait_for(&token, &id, std::time::Duration::from_secs(10), |d| {
        d["status"] == "running"
    })
    .await;
    let mut checks = Checks::default();
    for outcome in ["failed", "succeeded"] {
        let r = json_body(
            &app,
            Method::POST,
            &format!("/api/v1/deployments/{id}/complete"),
            Some(&token),
            &json!({"outcome": outcome, "message": "oom\u{0000}killed"}).to_string(),
        )
        .await;
        // Refusing it (422) or storing it without the NUL (200) are both fine; a 500 is not.
        checks.expect(
            &format!("complete {outcome} with NUL in message"),
            &r,
            &[200, 422],
        );
    }
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn garbage_query_strings_are_422(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, _) = setup(&app).await;
    let mut checks = Checks::default();
    let long = "a".repeat(10_000);
    let deployments = [
        "limit=abc",
        "limit=",
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=1.5",
        "limit=99999999999999999999",
        "limit=1&limit=2",
        "status=';drop%20table%20deployments;--",
        "status=RUNNING",
        "status=",
        "status=%ff%fe",
        "status=%00",
        "organization_id=not-a-uuid",
        "organization_id=%27%20OR%201%3D1",
        "organization_id=",
        "cluster_id=1",
        "cluster_id=%00",
        "cursor=!!!",
        "cursor=bm90IGEgY3Vyc29y",
        "cursor=%00",
        "unknown=1",
        "__proto__=1",
    ];
    for q in deployments {
        let r = raw(
            &app,
            Method::GET,
            &format!("/api/v1/deployments?{q}"),
            Some(&token),
            None,
            "",
        )
        .await;
        checks.expect(&format!("GET /deployments?{q}"), &r, &[422]);
    }
    let r = raw(
        &app,
        Method::GET,
        &format!("/api/v1/deployments?cursor={long}"),
        Some(&token),
        None,
        "",
    )
    .await;
    checks.expect("GET /deployments?cursor=<10 KB>", &r, &[422]);
    for q in [
        "organization_id=not-a-uuid",
        "organization_id=';drop%20table%20clusters;--",
        "organization_id=",
        "organization_id=%00",
        "foo=bar",
    ] {
        let r = raw(
            &app,
            Method::GET,
            &format!("/api/v1/clusters?{q}"),
            Some(&token),
            None,
            "",
        )
        .await;
        checks.expect(&format!("GET /clusters?{q}"), &r, &[422]);
    }
    // Sound queries still work, and a valid but foreign organization is a 404.
    let r = raw(
        &app,
        Method::GET,
        &format!("/api/v1/deployments?organization_id={org}&status=pending&limit=5"),
        Some(&token),
        None,
        "",
    )
    .await;
    checks.expect("a sound deployments query", &r, &[200]);
    let r = raw(
        &app,
        Method::GET,
        &format!("/api/v1/clusters?organization_id={}", uuid::Uuid::new_v4()),
        Some(&token),
        None,
        "",
    )
    .await;
    checks.expect("an unknown organization_id", &r, &[404]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn path_segments_that_are_not_uuids_are_404(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    let long = "b".repeat(10_000);
    for bad in [
        "not-a-uuid",
        "123",
        "%27%3B%20drop%20table%20clusters%3B--",
        "%00",
        "..",
        "%2e%2e",
        "00000000-0000-0000-0000-00000000000g",
        long.as_str(),
    ] {
        let cases = [
            (Method::GET, format!("/api/v1/organizations/{bad}")),
            (Method::GET, format!("/api/v1/organizations/{bad}/members")),
            (Method::POST, format!("/api/v1/organizations/{bad}/invites")),
            (Method::GET, format!("/api/v1/organizations/{bad}/invites")),
            (
                Method::DELETE,
                format!("/api/v1/organizations/{org}/invites/{bad}"),
            ),
            (
                Method::PATCH,
                format!("/api/v1/organizations/{org}/members/{bad}"),
            ),
            (
                Method::DELETE,
                format!("/api/v1/organizations/{org}/members/{bad}"),
            ),
            (Method::GET, format!("/api/v1/clusters/{bad}")),
            (Method::PATCH, format!("/api/v1/clusters/{bad}")),
            (Method::DELETE, format!("/api/v1/clusters/{bad}")),
            (Method::GET, format!("/api/v1/deployments/{bad}")),
            (Method::GET, format!("/api/v1/deployments/{bad}/events")),
            (Method::POST, format!("/api/v1/deployments/{bad}/cancel")),
            (Method::POST, format!("/api/v1/deployments/{bad}/complete")),
        ];
        for (method, path) in cases {
            let body = match method {
                Method::PATCH => json!({"role": "viewer", "name": "x"}).to_string(),
                Method::POST => json!({"outcome": "succeeded"}).to_string(),
                _ => String::new(),
            };
            let r = raw(
                &app,
                method.clone(),
                &path,
                Some(&token),
                Some("application/json"),
                body,
            )
            .await;
            let shown: String = path.chars().take(70).collect();
            // The client resolves ".." and "%2e%2e" (WHATWG URL rules), which can land on another
            // route's shape: 404 or 405 there, never a 5xx.
            let ok: &[u16] = if bad == ".." || bad == "%2e%2e" {
                &[404, 405]
            } else {
                &[404]
            };
            checks.expect(&format!("{method} {shown}"), &r, ok);
        }
    }
    // An unknown but well-formed id is the same 404.
    let r = raw(
        &app,
        Method::GET,
        &format!("/api/v1/clusters/{}", uuid::Uuid::new_v4()),
        Some(&token),
        None,
        "",
    )
    .await;
    checks.expect("unknown cluster id", &r, &[404]);
    let r = raw(
        &app,
        Method::GET,
        &format!("/api/v1/clusters/{cluster}"),
        Some(&token),
        None,
        "",
    )
    .await;
    checks.expect("the real cluster", &r, &[200]);
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn huge_and_malformed_authorization_headers_are_401(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, _, _) = setup(&app).await;
    let mut checks = Checks::default();
    let ten_kb = "a".repeat(10 * 1024);
    let (h, p, _) = {
        let v: Vec<&str> = token.split('.').collect();
        (v[0].to_string(), v[1].to_string(), v[2].to_string())
    };
    let headers: Vec<(String, reqwest::header::HeaderValue)> = vec![
        (
            "10 KB bearer".into(),
            format!("Bearer {ten_kb}").parse().unwrap(),
        ),
        ("10 KB without a scheme".into(), ten_kb.parse().unwrap()),
        (
            "10 KB JWT-shaped".into(),
            format!("Bearer {h}.{p}{ten_kb}.{ten_kb}").parse().unwrap(),
        ),
        (
            "Basic credentials".into(),
            "Basic YWxpY2U6cGFzc3dvcmQ=".parse().unwrap(),
        ),
        ("scheme only".into(), "Bearer".parse().unwrap()),
        ("scheme and spaces".into(), "Bearer    ".parse().unwrap()),
        ("token without scheme".into(), token.parse().unwrap()),
        (
            "two tokens".into(),
            format!("Bearer {token} {token}").parse().unwrap(),
        ),
        (
            "non-ASCII bytes".into(),
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
        ),
        ("three dots".into(), "Bearer ...".parse().unwrap()),
        (
            "base64 garbage".into(),
            "Bearer eyJ.eyJ.eyJ".parse().unwrap(),
        ),
    ];
    for (label, value) in headers {
        for (method, path) in [
            (Method::GET, "/api/v1/auth/me"),
            (Method::GET, "/api/v1/organizations"),
            (Method::POST, "/api/v1/organizations"),
            (Method::GET, "/api/v1/deployments"),
        ] {
            let mut req = app
                .client
                .request(method.clone(), format!("{}{}", app.base, path))
                .header(header::AUTHORIZATION, value.clone());
            if method == Method::POST {
                req = req.json(&json!({"name": "should-not-exist"}));
            }
            let resp = req.send().await.expect("the server answers");
            let r = Reply {
                status: resp.status().as_u16(),
                content_type: resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
                body: resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            };
            checks.expect(&format!("{label} → {method} {path}"), &r, &[401]);
        }
    }
    // Two Authorization headers: refused rather than guessing which one counts.
    let resp = app
        .client
        .get(format!("{}/api/v1/auth/me", app.base))
        .header(header::AUTHORIZATION, format!("Bearer {ten_kb}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    checks.check(
        "two Authorization headers are not a 5xx",
        resp.status().as_u16() < 500,
        resp.status(),
    );
    let orgs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM organizations WHERE name = 'should-not-exist'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    checks.check(
        "no organization was created by a bad token",
        orgs == 0,
        orgs,
    );
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn odd_methods_are_405_problems(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, org, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    for (method, path) in [
        (Method::PUT, "/api/v1/organizations".to_string()),
        (Method::DELETE, "/api/v1/organizations".to_string()),
        (Method::PUT, format!("/api/v1/clusters/{cluster}")),
        (Method::POST, format!("/api/v1/clusters/{cluster}")),
        (Method::PATCH, "/api/v1/deployments".to_string()),
        (Method::GET, "/api/v1/deployments/dry-run".to_string()),
        (Method::GET, "/api/v1/auth/login".to_string()),
        (Method::POST, "/openapi.json".to_string()),
        (
            Method::PATCH,
            format!("/api/v1/organizations/{org}/invites"),
        ),
        (
            Method::from_bytes(b"PROPFIND").unwrap(),
            "/api/v1/organizations".to_string(),
        ),
    ] {
        let r = raw(&app, method.clone(), &path, Some(&token), None, "").await;
        checks.expect(&format!("{method} {path}"), &r, &[405]);
    }
    checks.finish();
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn method_not_allowed_answers_name_the_allowed_methods(db: PgPool) {
    let app = TestApp::start(db).await;
    let (token, _, cluster) = setup(&app).await;
    let mut checks = Checks::default();
    for (method, path, allowed) in [
        (Method::PUT, "/api/v1/auth/login".to_string(), "POST"),
        (
            Method::DELETE,
            "/api/v1/organizations".to_string(),
            "GET, POST",
        ),
        (
            Method::POST,
            format!("/api/v1/clusters/{cluster}"),
            "GET, PATCH, DELETE",
        ),
        (Method::TRACE, "/api/v1/auth/me".to_string(), "GET"),
        (Method::POST, "/docs".to_string(), "GET"),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{}", app.base, path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        checks.check(
            &format!("{method} {path} is 405"),
            resp.status() == 405,
            resp.status(),
        );
        let header: BTreeSet<String> = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|m| m.trim().to_uppercase()).collect())
            .unwrap_or_default();
        let wanted: BTreeSet<String> = allowed.split(", ").map(String::from).collect();
        checks.check(
            &format!("{method} {path} has Allow: {allowed}"),
            header == wanted,
            format!("{header:?}"),
        );
    }
    checks.finish();
}
