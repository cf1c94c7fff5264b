//! API tests: Logins, refresh tokens, logout, lockout; refused credentials and malformed requests.

mod common;
mod harness;

use axum::body::Body;
use axum::http::Method;
use axum::http::Request;
use axum::http::StatusCode;
use serde_json::json;

use harness::{ADMIN_PASSWORD, Api, assert_error};

#[tokio::test]
async fn login_refresh_logout_and_lockout() {
    let api = Api::new().await;
    let pair = api.login("admin@sluice.test", ADMIN_PASSWORD).await;
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("rt_"));
    assert_eq!(
        api.call(Method::GET, "/accounts", Some(access), None)
            .await
            .status,
        StatusCode::OK
    );

    // Refresh rotates: the new token works, the old one is dead.
    let rotated = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let replay = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "unauthorized");
    let newer = rotated.body["refresh_token"].as_str().unwrap();
    let out = api
        .call(
            Method::POST,
            "/auth/logout",
            None,
            Some(json!({ "refresh_token": newer })),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": newer })),
        )
        .await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "unauthorized");

    // Unknown user and wrong password look the same.
    let unknown = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "nobody@x.test", "password": "p" })),
        )
        .await;
    let wrong = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "admin@sluice.test", "password": "p" })),
        )
        .await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        unknown.body["error"]["message"],
        wrong.body["error"]["message"]
    );

    // Four more failures (five in all) lock the user: the right password is refused too.
    for _ in 0..4 {
        let reply = api
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "email": "admin@sluice.test", "password": "p" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "admin@sluice.test", "password": ADMIN_PASSWORD })),
        )
        .await;
    assert_error(&locked, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        locked.body["error"]["message"],
        wrong.body["error"]["message"]
    );
}

#[tokio::test]
async fn bad_credentials_and_malformed_requests() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    assert_error(
        &api.call(Method::GET, "/accounts", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(Method::GET, "/accounts", Some("garbage"), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_error(
        &api.call(Method::GET, "/accounts", Some(&forged), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(
            Method::GET,
            "/accounts",
            Some("sk_0000000000000000000000000000000000000000000000000000000000000000"),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Malformed JSON: 400 in our shape.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/accounts")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_error(
        &api.send(request).await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    // Wrong shape and unknown fields: 422.
    let reply = api
        .call(
            Method::POST,
            "/accounts",
            Some(&admin),
            Some(json!({ "name": 5 })),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let reply = api
        .call(
            Method::POST,
            "/api-keys",
            Some(&admin),
            Some(json!({ "account_id": 1, "extra": true })),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &api.call(Method::GET, "/no-such-route", Some(&admin), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
