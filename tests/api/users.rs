//! `/api/users`: the profile, the admin routes (Z3, Z4, Z6, Z8, J9) and
//! authentication on every protected route (Z9).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// The byte-exact forbidden body of the contract.
const NOT_AUTHORIZED: &str = r#"{"error":"Not authorized"}"#;
const LAST_ADMIN: &str = "Cannot remove the last active admin";

/// The keys of a user object, exactly (Z6).
const USER_KEYS: [&str; 10] = [
    "id",
    "username",
    "name",
    "email",
    "role",
    "scopes",
    "disabled",
    "department",
    "clearance_level",
    "mfa_enabled",
];

fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn assert_user_shape(user: &Value) {
    let expected: BTreeSet<String> = USER_KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys_of(user), expected, "user object {user}");
    let text = user.to_string().to_lowercase();
    for leak in ["password", "hash", "$argon2"] {
        assert!(!text.contains(leak), "user object leaks {leak:?}: {user}");
    }
}

fn assert_not_authorized(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.text, NOT_AUTHORIZED, "{what}");
    assert_eq!(reply.text.len(), 26, "{what}");
    assert_json(reply, what);
}

fn assert_json(reply: &Reply, what: &str) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: Content-Type {content_type:?}"
    );
}

fn assert_last_admin_conflict(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::CONFLICT, "{what}: {}", reply.text);
    assert_eq!(reply.json(), json!({"error": LAST_ADMIN}), "{what}");
}

/// A 422 whose details name exactly `field`.
fn assert_invalid(reply: &Reply, field: &str, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        reply.text
    );
    assert_json(reply, what);
    assert!(!reply.error().is_empty(), "{what}");
    let details = reply.json()["details"].clone();
    for detail in details.as_array().expect("details") {
        assert!(
            detail["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {detail}"
        );
    }
    assert_eq!(reply.failed_fields(), [field], "{what}");
}

async fn user(app: &TestApp, admin: &str, id: i64) -> Value {
    let reply = app.get(&format!("/api/users/{id}"), Some(admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

async fn patch_user(app: &TestApp, admin: &str, id: i64, body: Value) -> Reply {
    app.patch_json(&format!("/api/users/{id}"), Some(admin), body)
        .await
}

/// The usernames of the active admins, as the admin `token` sees them.
async fn active_admins(app: &TestApp, token: &str) -> Vec<String> {
    let reply = app.get("/api/users?limit=1000", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "admin" && u["disabled"] == false)
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn my_profile_has_exactly_the_documented_keys_and_no_password() {
    let app = spawn_demo_app().await;
    let alice = app.alice_token().await;

    let me = app.get("/api/users/me", Some(&alice)).await;

    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_json(&me, "GET /api/users/me");
    assert_user_shape(&me.json());
    assert_eq!(
        me.json(),
        json!({
            "id": 1,
            "username": "alice",
            "name": "Alice Wonderson",
            "email": "alice@example.com",
            "role": "user",
            "scopes": ["read", "write"],
            "disabled": false,
            "department": null,
            "clearance_level": 0,
            "mfa_enabled": false,
        })
    );
    assert!(!me.text.contains("wonderland"), "{}", me.text);
}

#[tokio::test]
async fn admin_lists_users_with_a_total_count_and_paging() {
    let app = spawn_demo_app().await;
    assert_eq!(
        app.register("carol", PASSWORD).await.status,
        StatusCode::CREATED
    );
    let admin = app.admin_token().await;

    let all = app.get("/api/users", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.header("x-total-count"), Some("3"));
    let users = all.json();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 3);
    users.iter().for_each(assert_user_shape);
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "admin", "carol"]);

    let second = app.get("/api/users?limit=1&offset=1", Some(&admin)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(
        second.header("x-total-count"),
        Some("3"),
        "total, not page size"
    );
    let page = second.json();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], 2);
    assert_eq!(page[0]["username"], "admin");

    let past_the_end = app.get("/api/users?offset=3", Some(&admin)).await;
    assert_eq!(past_the_end.status, StatusCode::OK);
    assert_eq!(past_the_end.json(), json!([]));
    assert_eq!(past_the_end.header("x-total-count"), Some("3"));

    let max = app.get("/api/users?limit=1000", Some(&admin)).await;
    assert_eq!(max.status, StatusCode::OK, "{}", max.text);
    assert_eq!(max.json().as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn admin_user_list_refuses_out_of_range_paging_with_422() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;

    for (query, field) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-5", "offset"),
        ("offset=abc", "offset"),
    ] {
        let reply = app.get(&format!("/api/users?{query}"), Some(&admin)).await;
        assert_invalid(&reply, field, query);
    }
}

#[tokio::test]
async fn admin_reads_one_user_and_gets_404_for_an_unknown_id() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;

    let alice = app.get("/api/users/1", Some(&admin)).await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.text);
    assert_user_shape(&alice.json());
    assert_eq!(alice.json()["username"], "alice");
    assert_eq!(alice.json()["role"], "user");

    let me = app.get("/api/users/2", Some(&admin)).await;
    assert_eq!(me.json()["username"], "admin");
    assert_eq!(me.json()["role"], "admin");

    for id in ["999", "0", "-1"] {
        let missing = app.get(&format!("/api/users/{id}"), Some(&admin)).await;
        assert_eq!(
            missing.status,
            StatusCode::NOT_FOUND,
            "{id}: {}",
            missing.text
        );
        assert_json(&missing, id);
        assert_eq!(missing.json(), json!({"error": "Not found"}), "{id}");
    }

    let malformed = app.get("/api/users/abc", Some(&admin)).await;
    assert_invalid(&malformed, "id", "/api/users/abc");
}

#[tokio::test]
async fn admin_patches_each_user_field_and_the_change_is_stored() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;

    let steps = [
        json!({"name": "Alice Liddell"}),
        json!({"email": "liddell@example.org"}),
        json!({"email": null}),
        json!({"role": "admin"}),
        json!({"role": "user"}),
        json!({"scopes": ["read"]}),
        json!({"scopes": ["read", "write"]}),
        json!({"disabled": true}),
        json!({"disabled": false}),
        json!({"department": "ops"}),
        json!({"department": null}),
        json!({"clearance_level": 5}),
        json!({"clearance_level": 0}),
    ];
    let mut expected = user(&app, &admin, 1).await;
    for change in steps {
        for (key, value) in change.as_object().unwrap() {
            expected[key] = value.clone();
        }
        let reply = patch_user(&app, &admin, 1, change.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{change}: {}", reply.text);
        assert_user_shape(&reply.json());
        assert_eq!(reply.json(), expected, "response to {change}");
        assert_eq!(
            user(&app, &admin, 1).await,
            expected,
            "stored after {change}"
        );
    }

    let several = patch_user(
        &app,
        &admin,
        1,
        json!({"department": "ops", "clearance_level": 2, "name": "A"}),
    )
    .await;
    assert_eq!(several.status, StatusCode::OK, "{}", several.text);
    assert_eq!(several.json()["department"], "ops");
    assert_eq!(several.json()["clearance_level"], 2);
    assert_eq!(several.json()["name"], "A");
    assert_eq!(several.json()["email"], Value::Null, "untouched field kept");
    assert_eq!(several.json()["scopes"], json!(["read", "write"]));

    let nothing = patch_user(&app, &admin, 1, json!({})).await;
    assert_eq!(nothing.status, StatusCode::OK, "{}", nothing.text);
    assert_eq!(nothing.json(), several.json());

    let unknown = patch_user(&app, &admin, 999, json!({"name": "Ghost"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert_eq!(unknown.json(), json!({"error": "Not found"}));
}

#[tokio::test]
async fn admin_patch_with_an_invalid_value_is_422_naming_the_field_and_changes_nothing() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let before = user(&app, &admin, 1).await;

    for (body, field) in [
        (json!({"role": "root"}), "role"),
        (json!({"role": "Admin"}), "role"),
        (json!({"clearance_level": 6}), "clearance_level"),
        (json!({"clearance_level": -1}), "clearance_level"),
        (json!({"scopes": ["admin"]}), "scopes"),
        (json!({"scopes": ["read", "admin"]}), "scopes"),
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"disabled": "yes"}), "disabled"),
    ] {
        let reply = patch_user(&app, &admin, 1, body.clone()).await;
        assert_invalid(&reply, field, &body.to_string());
    }

    let mixed = patch_user(
        &app,
        &admin,
        1,
        json!({"name": "Fine", "role": "root", "clearance_level": 6}),
    )
    .await;
    assert_eq!(
        mixed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        mixed.text
    );
    let fields: BTreeSet<String> = mixed.failed_fields().into_iter().collect();
    assert_eq!(
        fields,
        BTreeSet::from(["role".to_string(), "clearance_level".to_string()])
    );

    let max_name = patch_user(&app, &admin, 1, json!({"name": "n".repeat(100)})).await;
    assert_eq!(max_name.status, StatusCode::OK, "100 chars is allowed");
    let mut expected = before;
    expected["name"] = json!("n".repeat(100));
    assert_eq!(
        user(&app, &admin, 1).await,
        expected,
        "only the valid patch applied"
    );
}

#[tokio::test]
async fn admin_deletes_a_user_with_their_todos_and_they_cannot_log_in() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (bob_id, bob) = app.signed_up("bob").await;
    let alice = app.alice_token().await;
    for id in [1, bob_id] {
        let reply = patch_user(
            &app,
            &admin,
            id,
            json!({"department": "ops", "clearance_level": 1}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let shared = app
        .create_todo(
            &bob,
            json!({"title": "Bob's shared", "visibility": "department"}),
        )
        .await;
    let shared_path = format!("/api/todos/{}", shared["id"]);
    assert_eq!(
        app.get(&shared_path, Some(&alice)).await.status,
        StatusCode::OK
    );

    let deleted = app
        .delete(&format!("/api/users/{bob_id}"), Some(&admin))
        .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(deleted.text.is_empty(), "{}", deleted.text);
    let login = app.login("bob", PASSWORD).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text);
    assert_eq!(login.error(), "Incorrect username or password");
    let gone = app.get(&format!("/api/users/{bob_id}"), Some(&admin)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
    assert_eq!(gone.json(), json!({"error": "Not found"}));
    let old_token = app.get("/api/users/me", Some(&bob)).await;
    assert_eq!(
        old_token.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        old_token.text
    );

    // The todos went with the user: the colleague who could read them cannot.
    let todo = app.get(&shared_path, Some(&alice)).await;
    assert_eq!(todo.status, StatusCode::NOT_FOUND, "{}", todo.text);
    let list = app.get("/api/todos?shared=true", Some(&alice)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json(), json!([]));
    assert_eq!(list.header("x-total-count"), Some("0"));

    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(users.header("x-total-count"), Some("2"));

    let again = app
        .delete(&format!("/api/users/{bob_id}"), Some(&admin))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    assert_eq!(again.json(), json!({"error": "Not found"}));
}

#[tokio::test]
async fn a_non_admin_gets_the_exact_403_on_every_user_management_route() {
    let app = spawn_demo_app().await;
    let alice = app.alice_token().await;

    for path in ["/api/users", "/api/users?limit=1", "/api/users?limit=abc"] {
        let reply = app.get(path, Some(&alice)).await;
        assert_not_authorized(&reply, &format!("GET {path}"));
    }
    for id in ["1", "2", "999", "abc"] {
        let path = format!("/api/users/{id}");
        let get = app.get(&path, Some(&alice)).await;
        assert_not_authorized(&get, &format!("GET {path}"));
        let patch = app
            .patch_json(&path, Some(&alice), json!({"name": "Mallory"}))
            .await;
        assert_not_authorized(&patch, &format!("PATCH {path}"));
        let delete = app.delete(&path, Some(&alice)).await;
        assert_not_authorized(&delete, &format!("DELETE {path}"));
    }

    // Nothing was changed or deleted on the way.
    let admin = app.admin_token().await;
    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(users.header("x-total-count"), Some("2"));
    for u in users.json().as_array().unwrap() {
        assert_ne!(u["name"], "Mallory", "{u}");
    }
}

#[tokio::test]
async fn a_user_cannot_make_themselves_admin() {
    let app = spawn_demo_app().await;
    let alice = app.alice_token().await;

    let reply = app
        .patch_json("/api/users/1", Some(&alice), json!({"role": "admin"}))
        .await;

    assert_not_authorized(&reply, "PATCH own role");
    let me = app.get("/api/users/me", Some(&alice)).await;
    assert_eq!(me.json()["role"], "user");
    assert_not_authorized(&app.get("/api/users", Some(&alice)).await, "still no admin");
}

#[tokio::test]
async fn the_last_active_admin_cannot_demote_disable_or_delete_themselves() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let before = user(&app, &admin, 2).await;

    let demote = patch_user(&app, &admin, 2, json!({"role": "user"})).await;
    assert_last_admin_conflict(&demote, "demote self");
    let disable = patch_user(&app, &admin, 2, json!({"disabled": true})).await;
    assert_last_admin_conflict(&disable, "disable self");
    let both = patch_user(&app, &admin, 2, json!({"name": "Gone", "role": "user"})).await;
    assert_last_admin_conflict(&both, "rename and demote self");
    let delete = app.delete("/api/users/2", Some(&admin)).await;
    assert_last_admin_conflict(&delete, "delete self");

    // Nothing changed, not even the name sent along, and the token still works.
    assert_eq!(user(&app, &admin, 2).await, before);
    assert_eq!(
        app.get("/api/users", Some(&admin))
            .await
            .header("x-total-count"),
        Some("2")
    );
    let fresh = app.login("admin", "secret").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
}

#[tokio::test]
async fn with_two_admins_one_can_be_demoted_but_then_not_the_other() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;

    let promote = patch_user(&app, &admin, 1, json!({"role": "admin"})).await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);
    assert_eq!(promote.json()["role"], "admin");

    // Alice, now an admin, demotes the original admin: allowed.
    let demote = patch_user(&app, &alice, 2, json!({"role": "user"})).await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.text);
    assert_eq!(demote.json()["role"], "user");

    // Now alice is the last one: she cannot step down, be disabled or deleted.
    let self_demote = patch_user(&app, &alice, 1, json!({"role": "user"})).await;
    assert_last_admin_conflict(&self_demote, "demote the remaining admin");
    let self_disable = patch_user(&app, &alice, 1, json!({"disabled": true})).await;
    assert_last_admin_conflict(&self_disable, "disable the remaining admin");
    let self_delete = app.delete("/api/users/1", Some(&alice)).await;
    assert_last_admin_conflict(&self_delete, "delete the remaining admin");
    assert_eq!(active_admins(&app, &alice).await, ["alice"]);

    // The demoted admin lost the routes at once.
    assert_not_authorized(&app.get("/api/users", Some(&admin)).await, "demoted admin");
}

#[tokio::test]
async fn disabling_or_deleting_one_of_two_admins_is_allowed() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (_, _) = app.signed_up("bob").await;
    assert_eq!(
        patch_user(&app, &admin, 1, json!({"role": "admin"}))
            .await
            .status,
        StatusCode::OK
    );

    let disable = patch_user(&app, &admin, 1, json!({"disabled": true})).await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.text);
    // A disabled admin does not count: the other one is now the last.
    let demote_self = patch_user(&app, &admin, 2, json!({"role": "user"})).await;
    assert_last_admin_conflict(&demote_self, "only active admin left");

    let delete = app.delete("/api/users/1", Some(&admin)).await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT, "{}", delete.text);
    assert_eq!(active_admins(&app, &admin).await, ["admin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one_admin() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;
    let promote = patch_user(&app, &admin, 1, json!({"role": "admin"})).await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);

    for round in 0..10 {
        let (a, b) = tokio::join!(
            patch_user(&app, &admin, 1, json!({"role": "user"})),
            patch_user(&app, &alice, 2, json!({"role": "user"})),
        );

        let wins = [&a, &b]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(
            wins, 1,
            "round {round}: exactly one demotion succeeds: {} {} / {} {}",
            a.status, a.text, b.status, b.text
        );
        let (lost, winner, winner_name, loser_id) = if a.status == StatusCode::OK {
            (&b, &admin, "admin", 1)
        } else {
            (&a, &alice, "alice", 2)
        };
        // The loser is refused by the invariant (409); only when the
        // winner's demotion landed before the loser's request was even
        // authorized is it refused as the non-admin it has become (403).
        // The next test forces the first case every time.
        match lost.status {
            StatusCode::CONFLICT => {
                assert_eq!(lost.json(), json!({"error": LAST_ADMIN}), "round {round}")
            }
            StatusCode::FORBIDDEN => assert_eq!(lost.text, NOT_AUTHORIZED, "round {round}"),
            other => panic!("round {round}: the loser got {other}: {}", lost.text),
        }
        assert_eq!(
            active_admins(&app, winner).await,
            [winner_name],
            "round {round}"
        );

        // Set up the next round: two admins again.
        let again = patch_user(&app, winner, loser_id, json!({"role": "admin"})).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    }
}

/// Both demotions are authorized before either is written: the database is
/// held busy by an outside writer until both requests wait on it, so the
/// invariant alone must decide (one 200, one 409).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_both_authorized_before_either_demotion_is_written_get_one_200_and_one_409() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;
    let promote = patch_user(&app, &admin, 1, json!({"role": "admin"})).await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);

    let lock = app.lock_writes().await;
    let release = async {
        // Reads still work (SQLite's WAL, PostgreSQL's EXCLUSIVE table
        // lock), so both requests get past their authorization and queue
        // for the write.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        lock.release().await;
    };
    let (a, b, ()) = tokio::join!(
        patch_user(&app, &admin, 1, json!({"role": "user"})),
        patch_user(&app, &alice, 2, json!({"role": "user"})),
        release,
    );

    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} {} / {} {}",
        a.status,
        a.text,
        b.status,
        b.text
    );
    let (lost, winner, winner_name) = if a.status == StatusCode::OK {
        (&b, &admin, "admin")
    } else {
        (&a, &alice, "alice")
    };
    assert_eq!(lost.json(), json!({"error": LAST_ADMIN}));
    assert_eq!(active_admins(&app, winner).await, [winner_name]);
}

#[tokio::test]
async fn a_promoted_user_uses_admin_routes_with_the_old_token_and_loses_them_when_demoted() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;
    assert_not_authorized(&app.get("/api/users", Some(&alice)).await, "before");

    let promote = patch_user(&app, &admin, 1, json!({"role": "admin"})).await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);

    let list = app.get("/api/users", Some(&alice)).await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "old token, new role: {}",
        list.text
    );
    assert_eq!(list.header("x-total-count"), Some("2"));
    let me = app.get("/api/users/me", Some(&alice)).await;
    assert_eq!(me.json()["role"], "admin");
    let one = app.get("/api/users/2", Some(&alice)).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);

    let demote = patch_user(&app, &admin, 1, json!({"role": "user"})).await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.text);

    assert_not_authorized(&app.get("/api/users", Some(&alice)).await, "after demotion");
    assert_not_authorized(
        &app.get("/api/users/2", Some(&alice)).await,
        "after demotion",
    );
    assert_eq!(
        app.get("/api/users/me", Some(&alice)).await.json()["role"],
        "user"
    );
}

#[tokio::test]
async fn every_protected_route_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_demo_app().await;
    let body = json!({"title": "x", "name": "x"});
    let routes = [
        (Method::GET, "/api/users/me"),
        (Method::GET, "/api/users"),
        (Method::GET, "/api/users/1"),
        (Method::PATCH, "/api/users/1"),
        (Method::DELETE, "/api/users/1"),
        (Method::GET, "/api/todos"),
        (Method::POST, "/api/todos"),
        (Method::GET, "/api/todos/1"),
        (Method::PUT, "/api/todos/1"),
        (Method::PATCH, "/api/todos/1"),
        (Method::DELETE, "/api/todos/1"),
    ];
    for (method, path) in routes {
        let what = format!("{method} {path}");
        let mut request = app.request(method.clone(), path, None);
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            request = request.json(&body);
        }
        let reply = app.send(request).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.text
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{what}");
        assert_json(&reply, &what);
        assert_eq!(
            reply.json(),
            json!({"error": "Not authenticated"}),
            "{what}"
        );
    }
    // Nothing happened to the demo users on the way.
    let admin = app.admin_token().await;
    assert_eq!(user(&app, &admin, 1).await["name"], "Alice Wonderson");
}

#[tokio::test]
async fn register_token_and_healthz_need_no_token() {
    let app = spawn_app().await;

    let register = app.register("newbie", PASSWORD).await;
    assert_eq!(register.status, StatusCode::CREATED, "{}", register.text);
    let token = app.login("newbie", PASSWORD).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert!(token.json()["access_token"].is_string());
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    for reply in [&register, &token, &health] {
        assert!(reply.header("www-authenticate").is_none());
    }
}
