use test_support::auth as common;

use common::{
    access_token, assert_problem, config_with, login, logout, me, refresh, refresh_token, register,
    send,
};
use serde_json::{json, Value};
use shared::testing::{body_json, test_state, TestRequest};
use shared::AppState;
use sqlx::PgPool;

/// Refreshes and asserts success; returns the new pair.
async fn rotate(state: &AppState, token: &str) -> Value {
    let response = refresh(state, token).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
    body_json(&response)
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn refresh_returns_a_new_pair_and_the_old_refresh_token_stops_working(db: PgPool) {
    let state = test_state(db);
    let user = register(&state, "ada").await;
    let first = login(&state, "ada").await;
    let second = rotate(&state, refresh_token(&first)).await;
    assert_eq!(second["token_type"], "bearer");
    assert_eq!(second["expires_in"], state.config.access_token_ttl_seconds);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    let response = me(&state, access_token(&second)).await;
    assert_eq!(body_json(&response)["id"], user["id"]);

    assert_problem(&refresh(&state, refresh_token(&first)).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn refresh_token_reuse_revokes_the_family(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let stolen = login(&state, "ada").await;
    let other_session = login(&state, "ada").await;
    let second = rotate(&state, refresh_token(&stolen)).await;
    let newest = rotate(&state, refresh_token(&second)).await;

    // The first token comes back: someone holds a copy.
    let reuse = assert_problem(&refresh(&state, refresh_token(&stolen)).await, 401);
    // Every token of that login is now dead, including the newest one nobody has used yet...
    assert_problem(&refresh(&state, refresh_token(&newest)).await, 401);
    assert_problem(&refresh(&state, refresh_token(&second)).await, 401);
    assert_problem(&logout(&state, refresh_token(&newest)).await, 401);
    // ...and the 401 says nothing about why.
    let unknown = assert_problem(&refresh(&state, "never-issued").await, 401);
    assert_eq!(reuse, unknown);

    // Another login of the same user is another family and keeps working.
    rotate(&state, refresh_token(&other_session)).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn reusing_a_rotated_token_revokes_the_family_even_after_a_second_rotation_is_presented(
    db: PgPool,
) {
    // The legitimate client rotated once; the thief presents the same old token twice.
    let state = test_state(db);
    register(&state, "ada").await;
    let first = login(&state, "ada").await;
    let second = rotate(&state, refresh_token(&first)).await;
    assert_problem(&refresh(&state, refresh_token(&first)).await, 401);
    assert_problem(&refresh(&state, refresh_token(&first)).await, 401);
    assert_problem(&refresh(&state, refresh_token(&second)).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn logout_ends_the_session(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let session = login(&state, "ada").await;
    let other_session = login(&state, "ada").await;
    let response = logout(&state, refresh_token(&session)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(body_json(&response), Value::Null);

    assert_problem(&refresh(&state, refresh_token(&session)).await, 401);
    assert_problem(&logout(&state, refresh_token(&session)).await, 401);
    // Only that session ends.
    rotate(&state, refresh_token(&other_session)).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn logout_after_rotation_ends_the_whole_session(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let first = login(&state, "ada").await;
    let second = rotate(&state, refresh_token(&first)).await;
    assert_eq!(logout(&state, refresh_token(&second)).await.status(), 204);
    assert_problem(&refresh(&state, refresh_token(&second)).await, 401);
    assert_problem(&refresh(&state, refresh_token(&first)).await, 401);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn garbage_refresh_tokens_are_401(db: PgPool) {
    let state = test_state(db);
    register(&state, "ada").await;
    let tokens = login(&state, "ada").await;
    // Neither junk, nor an empty string, nor the access token in place of the refresh token.
    for token in ["garbage", "", access_token(&tokens)] {
        assert_problem(&refresh(&state, token).await, 401);
        assert_problem(&logout(&state, token).await, 401);
    }
    // None of that harmed the real session.
    rotate(&state, refresh_token(&tokens)).await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn refresh_without_a_token_is_422(db: PgPool) {
    let state = test_state(db);
    for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
        let response = send(&state, TestRequest::post(path).json(json!({})).build()).await;
        assert_problem(&response, 422);
        let response = send(
            &state,
            TestRequest::post(path)
                .json(json!({"refresh_token": 7}))
                .build(),
        )
        .await;
        assert_problem(&response, 422);
        let response = send(&state, TestRequest::post(path).build()).await;
        assert_problem(&response, 422);
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expired_refresh_tokens_are_401(db: PgPool) {
    let state = AppState::new(db, config_with(|c| c.refresh_token_ttl_seconds = -1), None);
    register(&state, "ada").await;
    let tokens = login(&state, "ada").await;
    assert_problem(&refresh(&state, refresh_token(&tokens)).await, 401);
    assert_problem(&logout(&state, refresh_token(&tokens)).await, 401);
}

/// Puts a login's family in the database directly (no argon2 per round): `used` already
/// rotated into `newest`. Returns (used, newest).
async fn family_of_two(db: &PgPool, user: uuid::Uuid) -> (String, String) {
    let family = uuid::Uuid::now_v7();
    let tokens = (
        shared::auth::token::random_token(),
        shared::auth::token::random_token(),
    );
    for (token, used) in [(&tokens.0, true), (&tokens.1, false)] {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, used_at)
             VALUES ($1, $2, $3, $4, now() + interval '1 day', CASE WHEN $5 THEN now() END)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(user)
        .bind(family)
        .bind(shared::auth::token::hash_token(token))
        .bind(used)
        .execute(db)
        .await
        .unwrap();
    }
    tokens
}

/// Rotating the newest token races a reuse of the old one, for real (a thread, a runtime and a
/// pool each, released by a barrier), round after round: whatever the interleaving, once the
/// reuse is seen no token of the family works, including one the rotation just issued.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_reuse_racing_a_rotation_leaves_no_live_token_in_the_family(db: PgPool) {
    let state = test_state(db.clone());
    let user = register(&state, "ada").await;
    let user = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
    for _ in 0..60 {
        let (used, newest) = family_of_two(&db, user).await;
        let tokens = [newest.clone(), used];
        let results = test_support::race::race(&db, 2, move |i, state| {
            let token = tokens[i].clone();
            async move {
                let response = refresh(&state, &token).await;
                (response.status().as_u16(), body_json(&response))
            }
        })
        .await;
        assert_eq!(results[1].0, 401, "the reuse is refused: {:?}", results[1]);
        if results[0].0 == 200 {
            let issued = results[0].1["refresh_token"].as_str().unwrap();
            assert_problem(&refresh(&state, issued).await, 401);
        } else {
            assert_eq!(results[0].0, 401, "{:?}", results[0]);
        }
        assert_problem(&refresh(&state, &newest).await, 401);
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL AND used_at IS NULL",
        )
        .bind(user)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(live, 0, "a token of a reused family is still live");
    }
}
