use test_support::auth as common;

use common::{
    assert_field_error, assert_problem, email_of, login, me, register, try_register, PASSWORD,
};
use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use sqlx::PgPool;

fn body(username: &str, email: &str, password: &str) -> Value {
    json!({"username": username, "email": email, "password": password})
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn register_returns_the_user_and_never_a_password_hash(db: PgPool) {
    let state = test_state(db.clone());
    let response = try_register(&state, body("ada", "ada@example.com", PASSWORD)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    let user = body_json(&response);
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "email", "id", "username"]);
    assert_eq!(user["username"], "ada");
    assert_eq!(user["email"], "ada@example.com");
    uuid::Uuid::parse_str(user["id"].as_str().unwrap()).expect("id is a UUID");
    chrono::DateTime::parse_from_rfc3339(user["created_at"].as_str().unwrap())
        .expect("created_at is RFC 3339");
    let text = user.to_string().to_lowercase();
    assert!(
        !text.contains("password")
            && !text.contains("argon2")
            && !text.contains(&PASSWORD.to_lowercase())
    );

    // And the database keeps an argon2id hash, not the password.
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'ada'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn register_trims_username_and_email(db: PgPool) {
    let state = test_state(db);
    let response = try_register(&state, body("  ada  ", " ada@example.com ", PASSWORD)).await;
    assert_eq!(response.status(), 201);
    let user = body_json(&response);
    assert_eq!(user["username"], "ada");
    assert_eq!(user["email"], "ada@example.com");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn duplicate_username_in_any_case_is_a_conflict(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    for taken in ["ada", "ADA", "Ada", " ada "] {
        let response = try_register(&state, body(taken, "other@example.com", PASSWORD)).await;
        let problem = assert_problem(&response, 409);
        assert!(
            problem["detail"].as_str().unwrap().contains("username"),
            "{problem}"
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn duplicate_email_in_any_case_is_a_conflict(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    for taken in ["ada@example.com", "ADA@Example.COM"] {
        let response = try_register(&state, body("lovelace", taken, PASSWORD)).await;
        let problem = assert_problem(&response, 409);
        assert!(
            problem["detail"].as_str().unwrap().contains("email"),
            "{problem}"
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_usernames_are_field_errors(db: PgPool) {
    let state = test_state(db);
    let too_long = "a".repeat(33);
    for username in [
        "",
        "ab",
        too_long.as_str(),
        "ada lovelace",
        "ada!",
        "ada@example",
        "ädä",
    ] {
        let response = try_register(&state, body(username, "ada@example.com", PASSWORD)).await;
        assert_field_error(&response, "username");
    }
    // The limits themselves are allowed.
    let longest = "b".repeat(32);
    for (i, username) in ["abc", longest.as_str(), "a.b_c-d"].into_iter().enumerate() {
        let response = try_register(
            &state,
            body(username, &format!("u{i}@example.com"), PASSWORD),
        )
        .await;
        assert_eq!(
            response.status(),
            201,
            "{username}: {}",
            body_json(&response)
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn invalid_emails_are_field_errors(db: PgPool) {
    let state = test_state(db);
    for email in [
        "",
        "ada",
        "ada.example.com",
        "@example.com",
        "ada@localhost",
        "ada@.com",
        "ada@example.",
        "a da@example.com",
    ] {
        let response = try_register(&state, body("ada", email, PASSWORD)).await;
        assert_field_error(&response, "email");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn email_with_two_at_signs_is_a_field_error(db: PgPool) {
    let state = test_state(db);
    for email in ["ada@@example.com", "ada@home@example.com"] {
        let response = try_register(&state, body("ada", email, PASSWORD)).await;
        assert_field_error(&response, "email");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn weak_passwords_are_field_errors(db: PgPool) {
    let state = test_state(db);
    let too_long = format!("{}1", "a".repeat(128));
    for password in [
        "",
        "Short-1",
        "12345678901",
        "onlylettershere",
        too_long.as_str(),
        "Ada-Lovelace",
        "ADA@example.com",
    ] {
        let response =
            try_register(&state, body("Ada-Lovelace", "ada@example.com", password)).await;
        assert_field_error(&response, "password");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn every_invalid_field_is_reported_at_once(db: PgPool) {
    let state = test_state(db);
    let response = try_register(&state, body("a", "nope", "weak")).await;
    let problem = assert_field_error(&response, "username");
    assert_field_error(&response, "email");
    assert_field_error(&response, "password");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn missing_fields_are_422_naming_the_field(db: PgPool) {
    let state = test_state(db);
    for (missing, request) in [
        (
            "username",
            json!({"email": "ada@example.com", "password": PASSWORD}),
        ),
        ("email", json!({"username": "ada", "password": PASSWORD})),
        (
            "password",
            json!({"username": "ada", "email": "ada@example.com"}),
        ),
    ] {
        let response = try_register(&state, request).await;
        let problem = assert_problem(&response, 422);
        let errors = problem["errors"].as_array().expect("field-level errors");
        assert!(!errors.is_empty());
        // The field may be reported as the field itself or as the body with the field named.
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == missing || e["message"].as_str().unwrap().contains(missing)),
            "{problem}"
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn wrong_json_types_are_field_errors(db: PgPool) {
    let state = test_state(db);
    for (field, request) in [
        (
            "username",
            json!({"username": 42, "email": "ada@example.com", "password": PASSWORD}),
        ),
        (
            "email",
            json!({"username": "ada", "email": ["ada@example.com"], "password": PASSWORD}),
        ),
        (
            "password",
            json!({"username": "ada", "email": "ada@example.com", "password": null}),
        ),
    ] {
        let response = try_register(&state, request).await;
        assert_field_error(&response, field);
    }
    let response = try_register(&state, json!("ada")).await;
    assert_problem(&response, 422);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn malformed_json_is_422(db: PgPool) {
    let state = test_state(db);
    for text in [
        r#"{"username": "ada","#,
        "{username: ada}",
        "not json at all",
        r#"{"username":"ada"}}"#,
        "{}{",
    ] {
        let request = TestRequest::post("/api/v1/auth/register")
            .raw("application/json", text)
            .build();
        let response = common::send(&state, request).await;
        let problem = assert_problem(&response, 422);
        assert!(
            !problem["errors"].as_array().expect("errors").is_empty(),
            "{problem}"
        );
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn trailing_data_after_the_json_body_is_422(db: PgPool) {
    let state = test_state(db.clone());
    let text = format!(
        "{} trailing garbage",
        body("ada", "ada@example.com", PASSWORD)
    );
    let request = TestRequest::post("/api/v1/auth/register")
        .raw("application/json", text)
        .build();
    let response = common::send(&state, request).await;
    assert_problem(&response, 422);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn empty_body_is_422(db: PgPool) {
    let state = test_state(db);
    let response = common::send(&state, TestRequest::post("/api/v1/auth/register").build()).await;
    assert_field_error(&response, "body");
    let request = TestRequest::post("/api/v1/auth/register")
        .raw("application/json", "   ")
        .build();
    assert_field_error(&common::send(&state, request).await, "body");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn text_plain_body_is_415(db: PgPool) {
    let state = test_state(db.clone());
    let text = body("ada", "ada@example.com", PASSWORD).to_string();
    let request = TestRequest::post("/api/v1/auth/register")
        .raw("text/plain", text)
        .build();
    let response = common::send(&state, request).await;
    assert_problem(&response, 415);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn role_sent_at_registration_grants_nothing(db: PgPool) {
    let state = test_state(db);
    let response = try_register(
        &state,
        json!({"username": "mallory", "email": email_of("mallory"), "password": PASSWORD,
               "role": "admin", "organizations": [{"id": uuid::Uuid::new_v4(), "role": "admin"}]}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert!(body_json(&response).get("role").is_none());
    let tokens = login(&state, "mallory").await;
    let response = me(&state, common::access_token(&tokens)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["organizations"], json!([]));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn register_with_get_is_405(db: PgPool) {
    let state = test_state(db);
    let response = common::send(&state, TestRequest::get("/api/v1/auth/register").build()).await;
    assert_problem(&response, 405);
}
