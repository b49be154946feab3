use test_support::auth as common;

use common::{access_token, assert_problem, config_with, login, me, register, try_login, PASSWORD};
use shared::testing::body_json;
use shared::testing::Response;
use shared::AppState;
use sqlx::PgPool;

fn assert_rate_limited(response: &Response, limit: u32) {
    assert_problem(response, 429);
    let headers = response.headers();
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(headers["ratelimit-limit"], limit.to_string().as_str());
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn fourth_login_attempt_for_the_same_username_is_rate_limited(db: PgPool) {
    let state = AppState::new(db, config_with(|c| c.auth_rate_limit_per_minute = 3), None);
    register(&state, "ada").await;
    assert_eq!(
        try_login(&state, "ada", "Wrong-Guess-1").await.status(),
        401
    );
    assert_eq!(
        try_login(&state, "ada", "Wrong-Guess-2").await.status(),
        401
    );
    assert_eq!(try_login(&state, "ADA", PASSWORD).await.status(), 200);
    // The fourth is refused before the password is even looked at, right or wrong.
    assert_rate_limited(&try_login(&state, "ada", PASSWORD).await, 3);
    assert_rate_limited(&try_login(&state, " Ada ", "Wrong-Guess-3").await, 3);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn authenticated_routes_are_rate_limited_per_user(db: PgPool) {
    let state = AppState::new(db, config_with(|c| c.rate_limit_per_minute = 2), None);
    register(&state, "ada").await;
    register(&state, "bob").await;
    let ada = login(&state, "ada").await;
    let bob = login(&state, "bob").await;
    assert_eq!(me(&state, access_token(&ada)).await.status(), 200);
    assert_eq!(me(&state, access_token(&ada)).await.status(), 200);
    let response = me(&state, access_token(&ada)).await;
    assert_rate_limited(&response, 2);
    // Another login of the same user does not reset the limit...
    let again = login(&state, "ada").await;
    assert_rate_limited(&me(&state, access_token(&again)).await, 2);
    // ...and another user is not affected.
    let response = me(&state, access_token(&bob)).await;
    assert_eq!(response.status(), 200, "{}", body_json(&response));
}

/// Two instances (their own pools, as two Lambdas) on one database take from one bucket.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_limit_holds_across_instances(db: PgPool) {
    let limited = |c: &mut shared::config::Config| c.rate_limit_per_minute = 4;
    let first = AppState::new(db.clone(), config_with(limited), None);
    let other_pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with(db.connect_options().as_ref().clone())
        .await
        .unwrap();
    let second = AppState::new(other_pool, config_with(limited), None);
    register(&first, "ada").await;
    let ada = login(&first, "ada").await;
    for state in [&first, &second, &first, &second] {
        assert_eq!(me(state, access_token(&ada)).await.status(), 200);
    }
    assert_rate_limited(&me(&first, access_token(&ada)).await, 4);
    assert_rate_limited(&me(&second, access_token(&ada)).await, 4);
}

/// Registrations are limited per client address, whatever the usernames.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_fourth_registration_from_one_client_is_rate_limited(db: PgPool) {
    let state = AppState::new(db, config_with(|c| c.auth_rate_limit_per_minute = 3), None);
    for name in ["ada", "bob", "carol"] {
        register(&state, name).await;
    }
    let response = common::try_register(
        &state,
        serde_json::json!({"username": "dan", "email": "dan@example.com", "password": PASSWORD}),
    )
    .await;
    assert_rate_limited(&response, 3);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&state.db)
        .await
        .unwrap();
    assert_eq!(users, 3, "a refused registration created nobody");
}
