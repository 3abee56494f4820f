//! Two instances of the service on one PostgreSQL database, as behind a
//! load balancer: whatever one instance writes, the other acts on at the
//! very next request, and the rules that concurrent requests could break
//! hold across instances. These tests need PostgreSQL (a SQLite file is for
//! one instance): they are ignored by a plain `cargo test`, and
//! `.ci/postgres.sh` runs them with `--include-ignored`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const LAST_ADMIN: &str = "Cannot remove the last active admin";

/// These tests are ignored unless asked for; asked for on SQLite, they
/// say why they cannot run rather than pass without running.
fn require_postgres() {
    assert!(
        on_postgres(),
        "this test needs {TEST_DATABASE_URL} (a PostgreSQL server); .ci/postgres.sh sets it"
    );
}

/// Access and refresh token of a successful login or refresh.
fn pair(reply: &Reply) -> (String, String) {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "no token pair: {}",
        reply.text
    );
    let body = reply.json();
    (
        body["access_token"].as_str().expect("access_token").into(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .into(),
    )
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    app.token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
    .await
}

async fn patch_user(app: &TestApp, token: &str, id: i64, body: Value) -> Reply {
    app.patch_json(&format!("/api/users/{id}"), Some(token), body)
        .await
}

#[track_caller]
fn assert_refresh_refused(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.json(), json!({"error": "Invalid refresh token"}));
}

#[track_caller]
fn assert_token_refused(reply: &Reply, context: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{context}: {}",
        reply.text
    );
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test]
async fn an_admins_change_on_one_instance_applies_on_the_other_at_the_next_request() {
    require_postgres();
    let (a, b) = spawn_demo_pair().await;
    let admin = a.admin_token().await;
    // Alice logs in on B; tokens are good on either instance.
    let alice = b.alice_token().await;
    assert_eq!(
        a.get("/api/users/me", Some(&alice)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        b.get("/api/users", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );

    let promote = patch_user(&a, &admin, 1, json!({"role": "admin"})).await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);
    let list = b.get("/api/users", Some(&alice)).await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "promoted on A, listed on B: {}",
        list.text
    );
    assert_eq!(
        b.get("/api/users/me", Some(&alice)).await.json()["role"],
        "admin"
    );

    let demote = patch_user(&a, &admin, 1, json!({"role": "user"})).await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.text);
    let list = b.get("/api/users", Some(&alice)).await;
    assert_eq!(
        list.status,
        StatusCode::FORBIDDEN,
        "demoted on A: {}",
        list.text
    );

    // Scopes and the disabled flag follow the same way.
    let read_only = patch_user(&a, &admin, 1, json!({"scopes": ["read"]})).await;
    assert_eq!(read_only.status, StatusCode::OK, "{}", read_only.text);
    let write = b
        .post_json("/api/todos", Some(&alice), json!({"title": "x"}))
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);

    let disable = patch_user(&a, &admin, 1, json!({"disabled": true})).await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.text);
    assert_token_refused(&b.get("/api/users/me", Some(&alice)).await, "disabled on A");
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_registrations_of_one_name_over_two_instances_give_one_201() {
    require_postgres();
    let (a, b) = spawn_pair().await;
    // The same name in several spellings: uniqueness ignores case.
    let spellings = ["duplicate", "Duplicate", "DUPLICATE", "dUpLiCaTe"];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let (client, url) = (app.client.clone(), app.url("/auth/register"));
            let username = spellings[i % spellings.len()];
            tokio::spawn(async move {
                let body = json!({"username": username, "password": PASSWORD, "name": "Racer"});
                Reply::from(client.post(url).json(&body).send().await.expect("sent")).await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        let reply = task.await.expect("task finished");
        match reply.status {
            StatusCode::CREATED => created.push(reply.json()["username"].clone()),
            StatusCode::BAD_REQUEST => {
                assert_eq!(reply.json(), json!({"error": "User already exists"}))
            }
            other => panic!("a registration got {other}: {}", reply.text),
        }
    }
    assert_eq!(created.len(), 1, "created: {created:?}");
    let stored = created[0].as_str().expect("username").to_string();

    // The one account logs in on both instances, in any case.
    a.access_token("duplicate", PASSWORD).await;
    b.access_token("DUPLICATE", PASSWORD).await;
    let admin_view = b.state.db.users.count().await.expect("count");
    assert_eq!(admin_view, 1, "stored as {stored:?}");
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test]
async fn a_refresh_token_spent_on_one_instance_and_reused_on_the_other_revokes_the_session_on_both()
{
    require_postgres();
    let (a, b) = spawn_pair().await;
    a.signed_up("roamer").await;
    let (first_access, first_refresh) = pair(&a.login("roamer", PASSWORD).await);
    let (next_access, next_refresh) = pair(&refresh(&a, &first_refresh).await);
    assert_eq!(
        b.get("/api/users/me", Some(&next_access)).await.status,
        StatusCode::OK
    );

    // The spent token, presented to the other instance: reuse.
    assert_refresh_refused(&refresh(&b, &first_refresh).await);

    // The whole session is revoked, on both instances.
    assert_refresh_refused(&refresh(&a, &next_refresh).await);
    assert_refresh_refused(&refresh(&b, &next_refresh).await);
    for (name, app) in [("A", &a), ("B", &b)] {
        for (which, token) in [("first", &first_access), ("next", &next_access)] {
            let reply = app.get("/api/users/me", Some(token)).await;
            assert_token_refused(&reply, &format!("{which} access token on {name}"));
        }
    }
    // A new login is a new session and works.
    let (fresh, _) = pair(&b.login("roamer", PASSWORD).await);
    assert_eq!(
        a.get("/api/users/me", Some(&fresh)).await.status,
        StatusCode::OK
    );
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_refreshes_of_one_token_over_two_instances_succeed_at_most_once() {
    require_postgres();
    let (a, b) = spawn_pair().await;
    a.signed_up("racer").await;
    let (_, token) = pair(&a.login("racer", PASSWORD).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let (client, url) = (app.client.clone(), app.url("/auth/token"));
            let token = token.clone();
            tokio::spawn(async move {
                let form = [("grant_type", "refresh_token"), ("refresh_token", &token)];
                Reply::from(client.post(url).form(&form).send().await.expect("sent")).await
            })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        let reply = task.await.expect("task finished");
        if reply.status == StatusCode::OK {
            successes += 1;
        } else {
            assert_refresh_refused(&reply);
        }
    }
    assert!(successes <= 1, "{successes} refreshes succeeded");
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_through_different_instances_leave_one_admin() {
    require_postgres();
    let (a, b) = spawn_demo_pair().await;
    let admin = a.admin_token().await;
    let alice = b.alice_token().await;
    for round in 0..5 {
        let promote = patch_user(&a, &admin, 1, json!({"role": "admin"})).await;
        assert_eq!(
            promote.status,
            StatusCode::OK,
            "round {round}: {}",
            promote.text
        );
        let (by_admin, by_alice) = tokio::join!(
            patch_user(&a, &admin, 1, json!({"role": "user"})),
            patch_user(&b, &alice, 2, json!({"role": "user"})),
        );
        let mut statuses = [by_admin.status, by_alice.status];
        statuses.sort();
        // The loser is refused by the invariant (409), or, when the
        // winner's write landed before its request was authorized, as the
        // non-admin it has become (403). Never both 200.
        assert!(
            statuses == [StatusCode::OK, StatusCode::FORBIDDEN]
                || statuses == [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {} {} / {} {}",
            by_admin.status,
            by_admin.text,
            by_alice.status,
            by_alice.text
        );
        for lost in [&by_admin, &by_alice] {
            if lost.status == StatusCode::CONFLICT {
                assert_eq!(lost.json(), json!({"error": LAST_ADMIN}));
            }
        }
        // admin demoted alice, or alice demoted admin.
        let admin_won = by_admin.status == StatusCode::OK;
        let winner = if admin_won { &admin } else { &alice };
        let users = b.get("/api/users", Some(winner)).await;
        assert_eq!(
            users.status,
            StatusCode::OK,
            "round {round}: {}",
            users.text
        );
        let admins: Vec<Value> = users
            .json()
            .as_array()
            .expect("users")
            .iter()
            .filter(|u| u["role"] == "admin" && u["disabled"] == false)
            .map(|u| u["username"].clone())
            .collect();
        let expected = if admin_won { "admin" } else { "alice" };
        assert_eq!(admins, [json!(expected)], "round {round}");
        if !admin_won {
            // Back to the roles the rounds start from.
            let restore = patch_user(&b, &alice, 2, json!({"role": "admin"})).await;
            assert_eq!(
                restore.status,
                StatusCode::OK,
                "round {round}: {}",
                restore.text
            );
            let reset = patch_user(&a, &admin, 1, json!({"role": "user"})).await;
            assert_eq!(
                reset.status,
                StatusCode::OK,
                "round {round}: {}",
                reset.text
            );
        }
    }
}

/// Waits until the wall clock is early in a second: the throttle counts in
/// whole seconds, so the failures and the attempt after them must fall in
/// one second.
async fn early_in_a_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let ms = u64::from(now.subsec_millis());
    if ms > 300 {
        tokio::time::sleep(Duration::from_millis(1_010 - ms)).await;
    }
}

#[ignore = "needs PostgreSQL: .ci/postgres.sh runs it"]
#[tokio::test]
async fn failed_logins_spread_over_two_instances_throttle_the_account_on_both() {
    require_postgres();
    let (a, b) = spawn_pair().await;
    a.signed_up("besieged").await;
    for (attempt, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let reply = app.login("besieged", "not the password at all").await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {}",
            reply.text
        );
    }
    early_in_a_second().await;
    let fifth = a.login("besieged", "not the password at all").await;
    assert_eq!(fifth.status, StatusCode::UNAUTHORIZED, "{}", fifth.text);

    let throttled = b.login("besieged", PASSWORD).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "five failures over A and B, then B: {}",
        throttled.text
    );
    assert!(throttled.header("retry-after").is_some());
}
