use test_support::auth as common;

use common::{access_token, assert_problem, config_with, login, me, register, send};
use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use shared::AppState;
use sqlx::PgPool;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding, as in JWTs.
fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(text: &str) -> Vec<u8> {
    let values: Vec<u32> = text
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in values.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &v)| n | v << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i) & 0xff) as u8);
        }
    }
    out
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&b64_decode(part)).expect("a JSON token part")
}

fn encode_part(value: &Value) -> String {
    b64_encode(value.to_string().as_bytes())
}

async fn user_with_token(state: &AppState, name: &str) -> (Value, String) {
    let user = register(state, name).await;
    let tokens = login(state, name).await;
    (user, access_token(&tokens).to_string())
}

#[test]
fn base64url_helpers_round_trip() {
    for text in [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        r#"{"alg":"HS256","typ":"JWT"}"#,
    ] {
        assert_eq!(b64_decode(&b64_encode(text.as_bytes())), text.as_bytes());
    }
    assert_eq!(b64_encode(b"\xfb\xff"), "-_8");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_without_a_token_is_401(db: PgPool) {
    let state = test_state(db);
    let response = send(&state, TestRequest::get("/api/v1/auth/me").build()).await;
    assert_problem(&response, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_with_a_garbage_token_is_401(db: PgPool) {
    let state = test_state(db);
    let (_, token) = user_with_token(&state, "ada").await;
    for header in [
        "Bearer garbage".to_string(),
        "Bearer a.b.c".to_string(),
        "Bearer ".to_string(),
        "Bearer".to_string(),
        format!("Basic {token}"),
        token.clone(),
        format!("Bearer {token}x"),
    ] {
        let request = TestRequest::get("/api/v1/auth/me")
            .header("authorization", &header)
            .build();
        assert_problem(&send(&state, request).await, 401);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_with_a_tampered_token_is_401(db: PgPool) {
    let state = test_state(db);
    let (_, token) = user_with_token(&state, "mallory").await;
    let (victim, _) = user_with_token(&state, "ada").await;
    assert_eq!(
        me(&state, &token).await.status(),
        200,
        "the untampered token works"
    );

    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = decode_part(parts[1]);
    assert_eq!(
        claims["sub"].as_str(),
        Some(body_json(&me(&state, &token).await)["id"].as_str().unwrap())
    );
    claims["sub"] = victim["id"].clone();
    let forged = format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2]);
    assert_problem(&me(&state, &forged).await, 401);

    // A longer life, same signature: refused too.
    let mut claims = decode_part(parts[1]);
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 24 * 3600);
    let forged = format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2]);
    assert_problem(&me(&state, &forged).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_with_an_alg_none_token_is_401(db: PgPool) {
    let state = test_state(db);
    let (_, token) = user_with_token(&state, "ada").await;
    let parts: Vec<&str> = token.split('.').collect();
    for alg in ["none", "None", "NONE"] {
        let header = encode_part(&json!({"alg": alg, "typ": "JWT"}));
        assert_problem(&me(&state, &format!("{header}.{}.", parts[1])).await, 401);
        assert_problem(
            &me(&state, &format!("{header}.{}.{}", parts[1], parts[2])).await,
            401,
        );
    }
    // HS512 with the same payload and signature: another algorithm than ours, refused.
    let header = encode_part(&json!({"alg": "HS512", "typ": "JWT"}));
    assert_problem(
        &me(&state, &format!("{header}.{}.{}", parts[1], parts[2])).await,
        401,
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_with_an_expired_token_is_401(db: PgPool) {
    let expired_state = AppState::new(
        db.clone(),
        config_with(|c| c.access_token_ttl_seconds = -120),
        None,
    );
    register(&expired_state, "ada").await;
    let tokens = login(&expired_state, "ada").await;
    let token = access_token(&tokens);
    let exp = decode_part(token.split('.').nth(1).unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!(
        exp < chrono::Utc::now().timestamp() - 100,
        "the token really is expired"
    );
    assert_problem(&me(&expired_state, token).await, 401);
    // Nor does a normally configured instance accept it.
    let state = test_state(db);
    assert_problem(&me(&state, token).await, 401);
    // While a fresh token for the same user works.
    assert_eq!(
        me(&state, access_token(&login(&state, "ada").await))
            .await
            .status(),
        200
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn tokens_signed_with_another_secret_or_for_another_audience_are_401(db: PgPool) {
    let state = test_state(db.clone());
    register(&state, "ada").await;
    let other_secret = AppState::new(
        db.clone(),
        config_with(|c| {
            c.jwt_secret = "a-different-secret-that-is-long-enough-too"
                .to_string()
                .into()
        }),
        None,
    );
    let token = access_token(&login(&other_secret, "ada").await).to_string();
    assert_eq!(me(&other_secret, &token).await.status(), 200);
    assert_problem(&me(&state, &token).await, 401);

    let other_audience = AppState::new(
        db,
        config_with(|c| c.jwt_audience = "another-service".into()),
        None,
    );
    let token = access_token(&login(&other_audience, "ada").await).to_string();
    assert_problem(&me(&state, &token).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn token_of_a_deleted_user_is_401(db: PgPool) {
    let state = test_state(db.clone());
    let (user, token) = user_with_token(&state, "ada").await;
    let id = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    assert_problem(&me(&state, &token).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn me_lists_my_organizations_with_my_role(db: PgPool) {
    let state = test_state(db.clone());
    let (ada, token) = user_with_token(&state, "ada").await;
    let (bob, _) = user_with_token(&state, "bob").await;
    let ada_id = uuid::Uuid::parse_str(ada["id"].as_str().unwrap()).unwrap();
    let bob_id = uuid::Uuid::parse_str(bob["id"].as_str().unwrap()).unwrap();
    let (mine, theirs, other) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    for (org, name, owner) in [
        (mine, "Analytical", ada_id),
        (theirs, "Babbage", bob_id),
        (other, "Other", bob_id),
    ] {
        sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, $2, $3)")
            .bind(org)
            .bind(name)
            .bind(owner)
            .execute(&db)
            .await
            .unwrap();
    }
    for (org, user, role) in [
        (mine, ada_id, "admin"),
        (theirs, bob_id, "admin"),
        (theirs, ada_id, "viewer"),
        (other, bob_id, "admin"),
    ] {
        sqlx::query("INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(org)
            .bind(user)
            .bind(role)
            .execute(&db)
            .await
            .unwrap();
    }
    let response = me(&state, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body_json(&response)["organizations"],
        json!([
            {"id": mine, "name": "Analytical", "role": "admin"},
            {"id": theirs, "name": "Babbage", "role": "viewer"},
        ])
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn rotating_the_signing_key_logs_nobody_out(db: PgPool) {
    let before = test_state(db.clone());
    let (_, old_token) = user_with_token(&before, "ada").await;
    // Rotated: a new signing key, the old one kept as a previous key.
    let rotated = AppState::new(
        db.clone(),
        config_with(|c| {
            c.jwt_previous_secrets = vec![c.jwt_secret.clone()];
            c.jwt_secret = "the-next-signing-secret-which-is-long-enough"
                .to_string()
                .into();
        }),
        None,
    );
    let me_old = me(&rotated, &old_token).await;
    assert_eq!(me_old.status(), 200, "{}", body_json(&me_old));
    assert_eq!(body_json(&me_old)["kind"], "user");
    let new_token = access_token(&login(&rotated, "ada").await).to_string();
    let header = |token: &str| -> Value {
        serde_json::from_slice(&b64_decode(token.split('.').next().unwrap())).unwrap()
    };
    assert_ne!(header(&new_token)["kid"], header(&old_token)["kid"]);
    assert!(header(&new_token)["kid"].is_string());
    assert_eq!(me(&rotated, &new_token).await.status(), 200);
    // The rotation finished: the old key dropped, its tokens stop working, new ones go on.
    let finished = AppState::new(
        db,
        config_with(|c| {
            c.jwt_secret = "the-next-signing-secret-which-is-long-enough"
                .to_string()
                .into();
        }),
        None,
    );
    assert_problem(&me(&finished, &old_token).await, 401);
    assert_eq!(me(&finished, &new_token).await.status(), 200);
}
