//! API tests: Accounts, users, API keys, messages and the audit log; users within an account; sandbox mode.

mod common;
mod harness;

use axum::http::Method;
use axum::http::StatusCode;
use serde_json::json;

use harness::{ACCOUNT_PASSWORD, Api, assert_error, message_for};

#[tokio::test]
async fn accounts_users_keys_messages_and_audit() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, first_key) = api.account(&admin, "acme", "acme.test").await;

    // Validation.
    for bad in [
        json!({ "name": "", "email": "a@acme.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [] }),
        json!({ "name": "x", "email": "not-an-email", "password": ACCOUNT_PASSWORD, "allowed_domains": [] }),
        json!({ "name": "x", "email": "a@x.test", "password": "short", "allowed_domains": [] }),
        json!({ "name": "x", "email": "a@x.test", "password": ACCOUNT_PASSWORD, "allowed_domains": ["bad domain"] }),
        json!({ "name": "x", "email": "a@x.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [], "monthly_limit": -1 }),
    ] {
        let reply = api
            .call(Method::POST, "/accounts", Some(&admin), Some(bad.clone()))
            .await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let dup = json!({ "name": "x", "email": "acme@acme.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [] });
    assert_error(
        &api.call(Method::POST, "/accounts", Some(&admin), Some(dup))
            .await,
        StatusCode::CONFLICT,
        "conflict",
    );

    // The first API key authenticates as the account's owner.
    let got = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["monthly_limit"], 10_000);
    assert!(got.body.get("password_hash").is_none());
    // Only admins list or create accounts.
    assert_error(
        &api.call(Method::GET, "/accounts", Some(&first_key), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Owners change their account but not its limit or status.
    let put = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "name": "Acme Inc" })),
        )
        .await;
    assert_eq!(
        (put.status, put.body["name"].as_str()),
        (StatusCode::OK, Some("Acme Inc"))
    );
    let limit = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "monthly_limit": 1 })),
        )
        .await;
    assert_error(&limit, StatusCode::FORBIDDEN, "forbidden");
    // Allowed domains are a read-only view of the verified domains: a tenant's write
    // grants nothing; an admin's list is the admin vouching for exactly those.
    let grab = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "allowed_domains": ["other-tenant.test", "gmail.com"] })),
        )
        .await;
    assert_error(&grab, StatusCode::BAD_REQUEST, "read_only_field");
    let own = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await;
    assert_eq!(own.body["allowed_domains"], json!(["acme.test"]));
    let vouched = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&admin),
            Some(json!({ "allowed_domains": ["acme.test", "Mail.Acme.Test."] })),
        )
        .await;
    assert_eq!(vouched.status, StatusCode::OK, "{}", vouched.text);
    assert_eq!(
        vouched.body["allowed_domains"],
        json!(["acme.test", "mail.acme.test"])
    );
    let listed = api
        .call(Method::GET, "/domains", Some(&first_key), None)
        .await;
    let hows: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verified_how"].as_str().unwrap())
        .collect();
    assert_eq!(hows, vec!["admin", "admin"], "{}", listed.text);
    let bad_status = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&admin),
            Some(json!({ "status": "gone" })),
        )
        .await;
    assert_error(
        &bad_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Users and roles.
    let (member_id, member) = api
        .user(&admin, account, "member@acme.test", "member")
        .await;
    let (_, viewer) = api
        .user(&admin, account, "viewer@acme.test", "viewer")
        .await;
    let got = api
        .call(
            Method::GET,
            &format!("/users/{member_id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(got.body["role"], "member");
    let escalate = api
        .call(
            Method::POST,
            "/users",
            Some(&member),
            Some(json!({ "email": "x@acme.test", "password": "pppppppp1", "role": "owner" })),
        )
        .await;
    assert_error(&escalate, StatusCode::FORBIDDEN, "forbidden");
    let admin_by_owner = api
        .call(
            Method::POST,
            "/users",
            Some(&first_key),
            Some(json!({ "email": "y@acme.test", "password": "pppppppp1", "role": "admin" })),
        )
        .await;
    assert_error(&admin_by_owner, StatusCode::FORBIDDEN, "forbidden");
    let bad_role = api
        .call(
            Method::POST,
            "/users",
            Some(&first_key),
            Some(json!({ "email": "y@acme.test", "password": "pppppppp1", "role": "god" })),
        )
        .await;
    assert_error(
        &bad_role,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // API keys: created once, listed by prefix, revoked; members may not.
    let created = api
        .call(Method::POST, "/api-keys", Some(&first_key), Some(json!({})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let second_key = created.body["api_key"].as_str().unwrap().to_string();
    let key_id = created.body["id"].as_i64().unwrap();
    let listed = api
        .call(Method::GET, "/api-keys", Some(&member), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(!listed.text.contains(&second_key) && !listed.text.contains(&first_key));
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/api-keys/{key_id}"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/api-keys/{key_id}"),
            Some(&first_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/api-keys", Some(&second_key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(Method::POST, "/api-keys", Some(&admin), Some(json!({})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // SMTP credentials: created (password never echoed), listed, revoked.
    let bad = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "a b", "password": "cred-password-1" })),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let cred = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "app-1", "password": "cred-password-1" })),
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
    assert!(!cred.text.contains("cred-password-1"));
    let again = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "APP-1", "password": "cred-password-2" })),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");
    let cred_id = cred.body["id"].as_i64().unwrap();
    let listed = api
        .call(Method::GET, "/smtp-credentials", Some(&viewer), None)
        .await;
    assert_eq!(listed.body[0]["username"], "app-1", "{}", listed.text);
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/smtp-credentials/{cred_id}"),
            Some(&viewer),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/smtp-credentials/{cred_id}"),
            Some(&first_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    // Messages: listed, filtered, shown with attempts/events, raw.
    let id = api
        .store
        .enqueue_messages(&[message_for(account)], 5)
        .await
        .unwrap()[0];
    let list = api
        .call(
            Method::GET,
            "/messages?status=queued&to=r@dest.test",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(list.body["items"][0]["id"], id, "{}", list.text);
    let none = api
        .call(
            Method::GET,
            "/messages?status=delivered",
            Some(&viewer),
            None,
        )
        .await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    assert_error(
        &api.call(Method::GET, "/messages?status=bogus", Some(&viewer), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let detail = api
        .call(Method::GET, &format!("/messages/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(
        detail.body["events"][0]["kind"], "queued",
        "{}",
        detail.text
    );
    let raw = api
        .call(
            Method::GET,
            &format!("/messages/{id}/raw"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(raw.text, "Subject: hi\r\n\r\nbody\r\n");
    let logs = api
        .call(
            Method::GET,
            &format!("/delivery-logs?message_id={id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (logs.status, logs.body.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert_error(
        &api.call(Method::GET, "/delivery-logs", Some(&viewer), None)
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    // A queued message cannot be retried; viewers cannot cancel; members can, once.
    assert_error(
        &api.call(
            Method::POST,
            &format!("/messages/{id}/retry"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&viewer),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&member),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let cancelled = api
        .call(Method::GET, &format!("/messages/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    // A failed message goes back to the queue, to all its recipients.
    let failed_id = api
        .store
        .enqueue_messages(&[message_for(account)], 6)
        .await
        .unwrap()[0];
    let claimed = api
        .store
        .claim_due_messages("w", 10, 1000, 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, failed_id);
    let report = sluice_core::DeliveryReport::uniform(
        "smtp",
        &claimed[0].envelope.rcpt_to,
        sluice_core::Verdict::Permanent,
        Some(550),
        "no",
    );
    api.store
        .record_attempt(&sluice_store::AttemptRecord {
            message_id: failed_id,
            lease_owner: "w".into(),
            report,
            calls: vec![],
            started_at: 11,
            finished_at: 12,
            new_status: sluice_core::MessageStatus::Failed,
            pending_rcpt: vec![],
            next_attempt_at: 12,
            last_error: Some("550 no".into()),
            events: vec![],
        })
        .await
        .unwrap();
    let retried = api
        .call(
            Method::POST,
            &format!("/messages/{failed_id}/retry"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    let again = api.store.message(failed_id).await.unwrap().unwrap();
    assert_eq!(again.status.as_str(), "queued");
    assert_eq!(again.pending_rcpt, again.rcpt_to);

    // The audit log has every change, with actor, target and fields; viewers may not read it.
    let audit = api
        .call(Method::GET, "/audit-logs", Some(&first_key), None)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let actions: Vec<String> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target_type"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "create account",
        "update account",
        "create user",
        "create api_key",
        "revoke api_key",
        "create smtp_credential",
        "revoke smtp_credential",
        "cancel message",
        "retry message",
    ] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} in {actions:?}"
        );
    }
    assert_error(
        &api.call(Method::GET, "/audit-logs", Some(&viewer), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Deleting (admins only) ends the account's access.
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/accounts/{account}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/api-keys", Some(&first_key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "account_deleted",
    );
    let gone = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn users_are_listed_changed_and_disabled_within_their_account() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (a, a_key) = api.account(&admin, "alpha", "alpha.test").await;
    let (member_id, member) = api.user(&admin, a, "member@alpha.test", "member").await;
    let (viewer_id, viewer) = api.user(&admin, a, "viewer@alpha.test", "viewer").await;
    let listed = api.call(Method::GET, "/users", Some(&viewer), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "{}", listed.text);
    let everyone = api.call(Method::GET, "/users", Some(&admin), None).await;
    assert_eq!(
        everyone.body.as_array().unwrap().len(),
        3,
        "admin sees the admin too"
    );
    // Members cannot manage users; owners can, but not into admins.
    let promote = json!({ "role": "owner" });
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&member),
            Some(promote.clone()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let promoted = api
        .call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(promote),
        )
        .await;
    assert_eq!(promoted.body["role"], "owner", "{}", promoted.text);
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(json!({ "role": "admin" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(json!({ "password": "short" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // A password change ends the user's sessions: its refresh token stops working.
    let pair = api.login("member@alpha.test", "user-password-1").await;
    let changed = api
        .call(
            Method::PUT,
            &format!("/users/{member_id}"),
            Some(&a_key),
            Some(json!({ "password": "new-password-2" })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let refresh = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": pair["refresh_token"] })),
        )
        .await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "unauthorized");
    api.login("member@alpha.test", "new-password-2").await;
    // Disabling ends access at once, even for a still-valid access token.
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/users/{member_id}"),
            Some(&a_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/users", Some(&member), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let relogin = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "member@alpha.test", "password": "new-password-2" })),
        )
        .await;
    assert_error(&relogin, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

/// The account's audit entries, newest first, as the admin reads them.
async fn audit_entries(api: &Api, admin: &str, account: i64) -> Vec<serde_json::Value> {
    let audit = api
        .call(
            Method::GET,
            &format!("/audit-logs?account_id={account}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    audit.body["items"].as_array().cloned().unwrap_or_default()
}

/// An update's audit entry holds what it changed and nothing else: a form that sends every
/// field (the panel's sandbox settings) records only the fields whose values differ, and
/// saving it again unchanged records nothing.
#[tokio::test]
async fn an_update_is_audited_with_only_what_it_changed() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, _key) = api.account(&admin, "acme", "acme.test").await;
    let (_, owner) = api.user(&admin, account, "owner@acme.test", "owner").await;
    let path = format!("/accounts/{account}");
    let form = json!({
        "sandbox": false,
        "capture_retention_count": 50,
        "capture_retention_days": null,
        "capture_release_allowlist": null,
        "capture_chaos": null,
    });
    let updates = || async {
        audit_entries(&api, &admin, account)
            .await
            .into_iter()
            .filter(|e| e["action"] == "update")
            .map(|e| e["changes"].clone())
            .collect::<Vec<_>>()
    };
    let saved = api
        .call(Method::PUT, &path, Some(&owner), Some(form.clone()))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(
        updates().await,
        vec![json!({ "capture_retention_count": 50 })]
    );
    // The same form again: nothing changed, nothing recorded.
    let again = api
        .call(Method::PUT, &path, Some(&owner), Some(form.clone()))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(updates().await.len(), 1);
    // Back to the default: the new value is null.
    let mut reset = form.clone();
    reset["capture_retention_count"] = json!(null);
    reset["capture_retention_days"] = json!(7);
    api.call(Method::PUT, &path, Some(&owner), Some(reset))
        .await;
    assert_eq!(
        updates().await.first(),
        Some(&json!({ "capture_retention_count": null, "capture_retention_days": 7 }))
    );
}

/// Sandbox mode: owners (an API key too) and admins turn it on; only a logged-in owner or
/// an admin turns it off; members and other tenants cannot touch it; every change is an
/// audit entry naming who made it.
#[tokio::test]
async fn sandbox_mode_goes_on_by_any_owner_and_off_only_by_a_login() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "acme", "acme.test").await;
    let (_, other_key) = api.account(&admin, "other", "other.test").await;
    let (owner_id, owner) = api.user(&admin, account, "owner@acme.test", "owner").await;
    let (_, member) = api
        .user(&admin, account, "member@acme.test", "member")
        .await;
    let path = format!("/accounts/{account}");
    let set = |token: String, on: bool| {
        let api = &api;
        let path = path.clone();
        async move {
            api.call(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({ "sandbox": on })),
            )
            .await
        }
    };
    let got = api.call(Method::GET, &path, Some(&key), None).await;
    assert_eq!(got.body["sandbox"], false, "{}", got.text);

    // On: the account's API key may.
    let on = set(key.clone(), true).await;
    assert_eq!(
        (on.status, &on.body["sandbox"]),
        (StatusCode::OK, &json!(true))
    );
    // Off: not by the API key, a member, or another tenant (who sees no such account).
    let by_key = set(key.clone(), false).await;
    assert_error(&by_key, StatusCode::FORBIDDEN, "forbidden");
    assert!(by_key.text.contains("API key"), "{}", by_key.text);
    assert_error(
        &set(member.clone(), false).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &set(other_key.clone(), false).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let got = api.call(Method::GET, &path, Some(&key), None).await;
    assert_eq!(got.body["sandbox"], true, "{}", got.text);
    // A logged-in owner may; saying false again changes (and audits) nothing.
    let off = set(owner.clone(), false).await;
    assert_eq!(
        (off.status, &off.body["sandbox"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(set(key.clone(), false).await.status, StatusCode::OK);
    // Admins both ways.
    assert_eq!(set(admin.clone(), true).await.body["sandbox"], true);
    assert_eq!(set(admin.clone(), false).await.body["sandbox"], false);
    let bad = api
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({ "sandbox": "yes" })),
        )
        .await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{}", bad.text);
    assert!(bad.body["error"]["code"].is_string(), "{}", bad.text);

    let mut changes: Vec<(String, String)> = audit_entries(&api, &admin, account)
        .await
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("sandbox_"))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    changes.reverse();
    let key_actor = changes[0].1.clone();
    assert!(key_actor.starts_with("api_key:"), "{changes:?}");
    let admin_actor = changes[2].1.clone();
    assert!(admin_actor.starts_with("user:"), "{changes:?}");
    assert_eq!(
        changes,
        vec![
            ("sandbox_on".to_string(), key_actor),
            ("sandbox_off".to_string(), format!("user:{owner_id}")),
            ("sandbox_on".to_string(), admin_actor.clone()),
            ("sandbox_off".to_string(), admin_actor),
        ]
    );

    // Admins may create an account in sandbox mode.
    let created = api
        .call(
            Method::POST,
            "/accounts",
            Some(&admin),
            Some(
                json!({ "name": "lab", "email": "lab@lab.test", "password": ACCOUNT_PASSWORD,
                "allowed_domains": ["lab.test"], "sandbox": true }),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["account"]["sandbox"], true);
}
