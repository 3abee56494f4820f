//! `/api/todos`: CRUD, lists and paging, object-level access (Z1, Z2, Z5)
//! and department sharing.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::*;

const NOT_AUTHORIZED: &str = r#"{"error":"Not authorized"}"#;
const TODO_KEYS: [&str; 9] = [
    "id",
    "title",
    "description",
    "completed",
    "visibility",
    "clearance_level",
    "owner",
    "created_at",
    "updated_at",
];

fn todo_path(id: &Value) -> String {
    format!("/api/todos/{}", id.as_i64().expect("integer id"))
}

fn timestamp(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"));
    assert_eq!(parsed.offset(), time::UtcOffset::UTC, "not UTC: {text}");
    // Every backend writes one shape: microseconds and a trailing `Z`.
    assert!(
        text.len() == 27 && text.as_bytes()[19] == b'.' && text.ends_with('Z'),
        "not YYYY-MM-DDTHH:MM:SS.ffffffZ: {text}"
    );
    parsed
}

fn assert_todo_shape(todo: &Value) {
    let keys: BTreeSet<&str> = todo
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {todo}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(TODO_KEYS), "{todo}");
    assert!(todo["id"].is_i64(), "{todo}");
    timestamp(&todo["created_at"]);
    timestamp(&todo["updated_at"]);
}

fn assert_json(reply: &Reply, what: &str) {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: Content-Type {content_type:?}"
    );
}

fn assert_not_found(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "{what}: {}",
        reply.text
    );
    assert_json(reply, what);
    assert_eq!(reply.json(), json!({"error": "Not found"}), "{what}");
}

fn assert_invalid(reply: &Reply, field: &str, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        reply.text
    );
    assert_json(reply, what);
    assert!(!reply.error().is_empty(), "{what}");
    assert_eq!(reply.failed_fields(), [field], "{what}");
}

fn ids(reply: &Reply) -> Vec<i64> {
    reply
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", reply.text))
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

async fn read(app: &TestApp, token: &str, todo: &Value) -> Value {
    let reply = app.get(&todo_path(&todo["id"]), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()
}

/// Every id of the caller's list at `query`, walking all pages of `size`.
async fn all_pages(app: &TestApp, token: &str, query: &str, size: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let path = format!("/api/todos?{query}&limit={size}&offset={}", seen.len());
        let reply = app.get(&path, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        let page = ids(&reply);
        let total: usize = reply
            .header("x-total-count")
            .expect("X-Total-Count")
            .parse()
            .unwrap();
        seen.extend(&page);
        if page.len() < size {
            assert_eq!(seen.len(), total, "{path}: pages add up to the total");
            return seen;
        }
    }
}

#[tokio::test]
async fn a_new_todo_gets_the_documented_defaults() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    let reply = app
        .post_json("/api/todos", Some(&token), json!({"title": "Buy milk"}))
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_json(&reply, "POST /api/todos");
    let todo = reply.json();
    assert_todo_shape(&todo);
    assert_eq!(todo["title"], "Buy milk");
    assert_eq!(todo["description"], Value::Null);
    assert_eq!(todo["completed"], false);
    assert_eq!(todo["visibility"], "private");
    assert_eq!(todo["clearance_level"], 0);
    assert_eq!(todo["owner"], "jdoe");
    assert_eq!(todo["created_at"], todo["updated_at"]);
    let age = OffsetDateTime::now_utc() - timestamp(&todo["created_at"]);
    assert!(age.abs() < time::Duration::minutes(1), "created {age} ago");

    assert_eq!(
        read(&app, &token, &todo).await,
        todo,
        "GET returns it as created"
    );
}

#[tokio::test]
async fn a_todo_created_with_every_field_keeps_them() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    let todo = app
        .create_todo(
            &token,
            json!({
                "title": "Report",
                "description": "Quarterly",
                "completed": true,
                "visibility": "department",
                "clearance_level": 3,
            }),
        )
        .await;

    assert_todo_shape(&todo);
    assert_eq!(todo["title"], "Report");
    assert_eq!(todo["description"], "Quarterly");
    assert_eq!(todo["completed"], true);
    assert_eq!(todo["visibility"], "department");
    assert_eq!(todo["clearance_level"], 3);
    assert_eq!(read(&app, &token, &todo).await, todo);
}

#[tokio::test]
async fn put_replaces_the_whole_todo_and_omitted_fields_return_to_defaults() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app
        .create_todo(
            &token,
            json!({
                "title": "Old",
                "description": "Old text",
                "completed": true,
                "visibility": "department",
                "clearance_level": 4,
            }),
        )
        .await;
    let path = todo_path(&todo["id"]);
    tokio::time::sleep(Duration::from_millis(5)).await;

    let reply = app
        .put_json(&path, Some(&token), json!({"title": "New"}))
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let replaced = reply.json();
    assert_todo_shape(&replaced);
    assert_eq!(replaced["id"], todo["id"]);
    assert_eq!(replaced["title"], "New");
    assert_eq!(replaced["description"], Value::Null);
    assert_eq!(replaced["completed"], false);
    assert_eq!(replaced["visibility"], "private");
    assert_eq!(replaced["clearance_level"], 0);
    assert_eq!(replaced["owner"], "jdoe");
    assert_eq!(replaced["created_at"], todo["created_at"]);
    assert!(timestamp(&replaced["updated_at"]) > timestamp(&todo["updated_at"]));
    assert_eq!(read(&app, &token, &todo).await, replaced);

    let full = app
        .put_json(
            &path,
            Some(&token),
            json!({"title": "Full", "description": "d", "completed": true,
                   "visibility": "department", "clearance_level": 2}),
        )
        .await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_eq!(full.json()["description"], "d");
    assert_eq!(full.json()["completed"], true);
    assert_eq!(full.json()["visibility"], "department");
    assert_eq!(full.json()["clearance_level"], 2);
}

#[tokio::test]
async fn put_without_a_title_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app
        .create_todo(&token, json!({"title": "Keep", "description": "me"}))
        .await;
    let path = todo_path(&todo["id"]);

    let reply = app
        .put_json(&path, Some(&token), json!({"completed": true}))
        .await;
    assert_invalid(&reply, "title", "PUT without title");
    let null_title = app
        .put_json(&path, Some(&token), json!({"title": null}))
        .await;
    assert_eq!(null_title.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(null_title.failed_fields(), ["title"]);

    assert_eq!(read(&app, &token, &todo).await, todo);
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_a_null_description_clears_it() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app
        .create_todo(
            &token,
            json!({"title": "Title", "description": "Text", "clearance_level": 2}),
        )
        .await;
    let path = todo_path(&todo["id"]);
    tokio::time::sleep(Duration::from_millis(5)).await;

    let done = app
        .patch_json(&path, Some(&token), json!({"completed": true}))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let mut expected = todo.clone();
    expected["completed"] = json!(true);
    expected["updated_at"] = done.json()["updated_at"].clone();
    assert_eq!(done.json(), expected, "only completed changed");
    assert!(timestamp(&done.json()["updated_at"]) > timestamp(&todo["updated_at"]));
    assert_eq!(done.json()["created_at"], todo["created_at"]);

    let cleared = app
        .patch_json(&path, Some(&token), json!({"description": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.json()["description"], Value::Null);
    assert_eq!(cleared.json()["title"], "Title");
    assert_eq!(cleared.json()["completed"], true);
    assert_eq!(cleared.json()["clearance_level"], 2);

    let several = app
        .patch_json(
            &path,
            Some(&token),
            json!({"title": "Renamed", "visibility": "department", "description": "New"}),
        )
        .await;
    assert_eq!(several.status, StatusCode::OK, "{}", several.text);
    let mut expected = cleared.json();
    expected["title"] = json!("Renamed");
    expected["visibility"] = json!("department");
    expected["description"] = json!("New");
    expected["updated_at"] = several.json()["updated_at"].clone();
    assert_eq!(several.json(), expected);

    let empty = app.patch_json(&path, Some(&token), json!({})).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    let mut unchanged = several.json();
    unchanged["updated_at"] = empty.json()["updated_at"].clone();
    assert_eq!(empty.json(), unchanged, "an empty patch changes no field");

    assert_eq!(read(&app, &token, &todo).await, empty.json());
}

#[tokio::test]
async fn delete_is_204_and_the_todo_is_gone() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&token, json!({"title": "Bye"})).await;
    let path = todo_path(&todo["id"]);

    let deleted = app.delete(&path, Some(&token)).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    assert_not_found(&app.get(&path, Some(&token)).await, "GET after DELETE");
    assert_not_found(&app.delete(&path, Some(&token)).await, "DELETE again");
    let patch = app
        .patch_json(&path, Some(&token), json!({"title": "Back"}))
        .await;
    assert_not_found(&patch, "PATCH after DELETE");
    let list = app.get("/api/todos", Some(&token)).await;
    assert_eq!(list.json(), json!([]));
    assert_eq!(list.header("x-total-count"), Some("0"));
}

#[tokio::test]
async fn the_list_holds_only_my_todos_newest_first_and_filters_by_completed() {
    let app = spawn_app().await;
    let (_, me) = app.signed_up("jdoe").await;
    let (_, other) = app.signed_up("other").await;
    let mut mine = Vec::new();
    for i in 0..5 {
        let todo = app
            .create_todo(
                &me,
                json!({"title": format!("mine {i}"), "completed": i % 2 == 0}),
            )
            .await;
        mine.push(todo["id"].as_i64().unwrap());
        app.create_todo(&other, json!({"title": format!("theirs {i}")}))
            .await;
    }

    let list = app.get("/api/todos", Some(&me)).await;

    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_json(&list, "GET /api/todos");
    let newest_first: Vec<i64> = mine.iter().rev().copied().collect();
    assert_eq!(ids(&list), newest_first);
    assert_eq!(list.header("x-total-count"), Some("5"));
    for todo in list.json().as_array().unwrap() {
        assert_todo_shape(todo);
        assert_eq!(todo["owner"], "jdoe");
    }

    let done = app.get("/api/todos?completed=true", Some(&me)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(ids(&done), [mine[4], mine[2], mine[0]]);
    assert_eq!(done.header("x-total-count"), Some("3"));
    let open = app.get("/api/todos?completed=false", Some(&me)).await;
    assert_eq!(ids(&open), [mine[3], mine[1]]);
    assert_eq!(open.header("x-total-count"), Some("2"));
}

#[tokio::test]
async fn the_list_pages_with_limit_and_offset_and_counts_the_total() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let todo = app
            .create_todo(
                &token,
                json!({"title": format!("t{i}"), "completed": i < 2}),
            )
            .await;
        created.push(todo["id"].as_i64().unwrap());
    }
    created.reverse();

    let first = app.get("/api/todos?limit=2", Some(&token)).await;
    assert_eq!(ids(&first), created[0..2]);
    assert_eq!(
        first.header("x-total-count"),
        Some("5"),
        "the total, not the page"
    );
    let second = app.get("/api/todos?limit=2&offset=2", Some(&token)).await;
    assert_eq!(ids(&second), created[2..4]);
    assert_eq!(second.header("x-total-count"), Some("5"));
    let last = app.get("/api/todos?limit=2&offset=4", Some(&token)).await;
    assert_eq!(ids(&last), created[4..]);
    let beyond = app.get("/api/todos?offset=10", Some(&token)).await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert_eq!(beyond.json(), json!([]));
    assert_eq!(beyond.header("x-total-count"), Some("5"));

    let filtered = app
        .get("/api/todos?completed=true&limit=1", Some(&token))
        .await;
    assert_eq!(ids(&filtered), [created[3]]);
    assert_eq!(
        filtered.header("x-total-count"),
        Some("2"),
        "total of the filter"
    );

    let max = app.get("/api/todos?limit=1000", Some(&token)).await;
    assert_eq!(max.status, StatusCode::OK, "{}", max.text);
    assert_eq!(ids(&max), created);
}

#[tokio::test]
async fn bad_list_parameters_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    for (query, field) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("offset=-5", "offset"),
        ("offset=abc", "offset"),
        ("completed=maybe", "completed"),
        ("completed=1", "completed"),
        ("shared=maybe", "shared"),
    ] {
        let reply = app.get(&format!("/api/todos?{query}"), Some(&token)).await;
        assert_invalid(&reply, field, query);
    }
}

#[tokio::test]
async fn another_users_todo_is_a_404_for_every_method_like_a_missing_one() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_up("owner").await;
    let (_, intruder) = app.signed_up("intruder").await;
    let todo = app
        .create_todo(&owner, json!({"title": "Secret", "description": "mine"}))
        .await;
    let theirs = todo_path(&todo["id"]);
    let missing = "/api/todos/999999";
    let body = json!({"title": "Hacked", "completed": true});

    let pairs = [
        (
            app.get(&theirs, Some(&intruder)).await,
            app.get(missing, Some(&intruder)).await,
            "GET",
        ),
        (
            app.put_json(&theirs, Some(&intruder), body.clone()).await,
            app.put_json(missing, Some(&intruder), body.clone()).await,
            "PUT",
        ),
        (
            app.patch_json(&theirs, Some(&intruder), body.clone()).await,
            app.patch_json(missing, Some(&intruder), body.clone()).await,
            "PATCH",
        ),
        (
            app.delete(&theirs, Some(&intruder)).await,
            app.delete(missing, Some(&intruder)).await,
            "DELETE",
        ),
    ];
    for (other, absent, method) in pairs {
        assert_not_found(&other, method);
        assert_eq!(other.status, absent.status, "{method}");
        assert_eq!(other.text, absent.text, "{method}: body byte-identical");
        for header in ["content-type", "content-length", "www-authenticate"] {
            assert_eq!(
                other.header(header),
                absent.header(header),
                "{method} {header}"
            );
        }
    }

    assert_eq!(
        read(&app, &owner, &todo).await,
        todo,
        "the todo is unchanged"
    );
}

#[tokio::test]
async fn another_users_todos_never_appear_in_my_list() {
    let app = spawn_app().await;
    let (_, a) = app.signed_up("usera").await;
    let (_, b) = app.signed_up("userb").await;
    let mut a_ids = BTreeSet::new();
    let mut b_ids = BTreeSet::new();
    for i in 0..6 {
        let done = i % 2 == 0;
        let ta = app
            .create_todo(
                &a,
                json!({"title": format!("a{i}"), "completed": done,
                                    "visibility": "department"}),
            )
            .await;
        a_ids.insert(ta["id"].as_i64().unwrap());
        let tb = app
            .create_todo(&b, json!({"title": format!("b{i}"), "completed": done}))
            .await;
        b_ids.insert(tb["id"].as_i64().unwrap());
    }

    for query in [
        "x=1",
        "completed=true",
        "completed=false",
        "shared=true",
        "shared=false",
    ] {
        for size in [1, 4, 1000] {
            let seen: BTreeSet<i64> = all_pages(&app, &b, query, size).await.into_iter().collect();
            assert!(seen.is_disjoint(&a_ids), "{query} limit {size}: {seen:?}");
            assert!(seen.is_subset(&b_ids), "{query} limit {size}: {seen:?}");
        }
    }
    let everything: BTreeSet<i64> = all_pages(&app, &b, "x=1", 2).await.into_iter().collect();
    assert_eq!(everything, b_ids);
}

#[tokio::test]
async fn an_admin_gets_no_access_to_other_peoples_todos() {
    let app = spawn_demo_app().await;
    let alice = app.alice_token().await;
    let admin = app.admin_token().await;
    let todo = app
        .create_todo(
            &alice,
            json!({"title": "Alice's", "visibility": "department"}),
        )
        .await;
    let path = todo_path(&todo["id"]);

    assert_not_found(&app.get(&path, Some(&admin)).await, "admin GET");
    let put = app
        .put_json(&path, Some(&admin), json!({"title": "Admin"}))
        .await;
    assert_not_found(&put, "admin PUT");
    let patch = app
        .patch_json(&path, Some(&admin), json!({"title": "Admin"}))
        .await;
    assert_not_found(&patch, "admin PATCH");
    assert_not_found(&app.delete(&path, Some(&admin)).await, "admin DELETE");
    for query in ["", "?shared=true"] {
        let list = app.get(&format!("/api/todos{query}"), Some(&admin)).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.json(), json!([]), "{query}");
        assert_eq!(list.header("x-total-count"), Some("0"));
    }

    assert_eq!(read(&app, &alice, &todo).await, todo);
}

#[tokio::test]
async fn owner_id_and_created_at_in_a_body_never_change_them() {
    let app = spawn_demo_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let forged = json!({
        "id": 4242,
        "owner": "alice",
        "owner_id": 1,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
    });
    let with = |fields: Value| {
        let mut body = forged.clone();
        for (key, value) in fields.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };

    let created = app
        .post_json("/api/todos", Some(&token), with(json!({"title": "Mine"})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let todo = created.json();
    assert_ne!(todo["id"], 4242);
    assert_eq!(todo["owner"], "jdoe");
    assert_ne!(todo["created_at"], "2000-01-01T00:00:00Z");
    assert_ne!(todo["updated_at"], "2000-01-01T00:00:00Z");
    let path = todo_path(&todo["id"]);
    assert_not_found(&app.get("/api/todos/4242", Some(&token)).await, "forged id");

    let put = app
        .put_json(&path, Some(&token), with(json!({"title": "Put"})))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let patch = app
        .patch_json(&path, Some(&token), with(json!({"title": "Patched"})))
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text);
    for (reply, what) in [(&put, "PUT"), (&patch, "PATCH")] {
        let body = reply.json();
        assert_eq!(body["id"], todo["id"], "{what}");
        assert_eq!(body["owner"], "jdoe", "{what}");
        assert_eq!(body["created_at"], todo["created_at"], "{what}");
        assert_ne!(body["updated_at"], "2000-01-01T00:00:00Z", "{what}");
    }
    assert_eq!(read(&app, &token, &todo).await["title"], "Patched");

    // Alice was not given the todo.
    let alice = app.alice_token().await;
    assert_not_found(&app.get(&path, Some(&alice)).await, "alice");
    assert_eq!(app.get("/api/todos", Some(&alice)).await.json(), json!([]));
}

/// alice and bob in department "ops" with clearance 2; returns
/// (admin, alice, bob) tokens.
async fn ops_colleagues(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let alice = app.alice_token().await;
    let (bob_id, bob) = app.signed_up("bob").await;
    for id in [1, bob_id] {
        let reply = app
            .patch_json(
                &format!("/api/users/{id}"),
                Some(&admin),
                json!({"department": "ops", "clearance_level": 2}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    (admin, alice, bob)
}

#[tokio::test]
async fn a_department_todo_is_readable_by_a_colleague_but_only_the_owner_changes_it() {
    let app = spawn_demo_app().await;
    let (_, alice, bob) = ops_colleagues(&app).await;
    let shared = app
        .create_todo(
            &alice,
            json!({"title": "Ops plan", "description": "v1",
                   "visibility": "department", "clearance_level": 1}),
        )
        .await;
    let path = todo_path(&shared["id"]);

    let seen = app.get(&path, Some(&bob)).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert_eq!(seen.json(), shared);
    assert_eq!(seen.json()["owner"], "alice");

    let put = app
        .put_json(&path, Some(&bob), json!({"title": "Bob's plan"}))
        .await;
    let patch = app
        .patch_json(&path, Some(&bob), json!({"completed": true}))
        .await;
    let delete = app.delete(&path, Some(&bob)).await;
    for (reply, method) in [(put, "PUT"), (patch, "PATCH"), (delete, "DELETE")] {
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method}: {}",
            reply.text
        );
        assert_eq!(reply.text, NOT_AUTHORIZED, "{method}");
        assert_json(&reply, method);
    }
    assert_eq!(read(&app, &alice, &shared).await, shared, "unchanged");
}

#[tokio::test]
async fn a_private_todo_stays_404_for_a_colleague() {
    let app = spawn_demo_app().await;
    let (_, alice, bob) = ops_colleagues(&app).await;
    let private = app
        .create_todo(&alice, json!({"title": "Diary", "clearance_level": 0}))
        .await;
    let path = todo_path(&private["id"]);
    let missing = app.get("/api/todos/999999", Some(&bob)).await;

    let reply = app.get(&path, Some(&bob)).await;
    assert_not_found(&reply, "private todo");
    assert_eq!(reply.text, missing.text);
    let patch = app
        .patch_json(&path, Some(&bob), json!({"title": "x"}))
        .await;
    assert_not_found(&patch, "PATCH of a private todo");
    assert_eq!(read(&app, &alice, &private).await, private);
}

#[tokio::test]
async fn shared_true_lists_my_todos_plus_what_my_department_shares_with_me() {
    let app = spawn_demo_app().await;
    let (_, alice, bob) = ops_colleagues(&app).await;
    let bobs = app.create_todo(&bob, json!({"title": "Bob's"})).await;
    let shared = app
        .create_todo(
            &alice,
            json!({"title": "Shared", "visibility": "department", "clearance_level": 1}),
        )
        .await;
    let private = app.create_todo(&alice, json!({"title": "Private"})).await;
    let too_secret = app
        .create_todo(
            &alice,
            json!({"title": "Top secret", "visibility": "department", "clearance_level": 3}),
        )
        .await;

    let with_shared = app.get("/api/todos?shared=true", Some(&bob)).await;
    assert_eq!(with_shared.status, StatusCode::OK, "{}", with_shared.text);
    assert_eq!(
        ids(&with_shared),
        [shared["id"].as_i64().unwrap(), bobs["id"].as_i64().unwrap()],
        "newest first; neither the private nor the too-secret todo"
    );
    assert_eq!(with_shared.header("x-total-count"), Some("2"));

    for query in ["", "?shared=false"] {
        let own = app.get(&format!("/api/todos{query}"), Some(&bob)).await;
        assert_eq!(own.status, StatusCode::OK);
        assert_eq!(ids(&own), [bobs["id"].as_i64().unwrap()], "{query:?}");
        assert_eq!(own.header("x-total-count"), Some("1"));
    }

    for hidden in [&private, &too_secret] {
        assert_not_found(
            &app.get(&todo_path(&hidden["id"]), Some(&bob)).await,
            hidden["title"].as_str().unwrap(),
        );
    }
}

/// The X-Total-Count of a full page (the count is then read, not inferred
/// from the page) for `query`.
async fn full_page_total(app: &TestApp, token: &str, query: &str) -> u64 {
    let (ids, total) = todo_list(app, token, &format!("?limit=1{query}")).await;
    assert_eq!(ids.len(), 1, "{query}");
    total
}

/// The totals of all, completed and open todos, each from a full page.
async fn totals(app: &TestApp, token: &str) -> [u64; 3] {
    [
        full_page_total(app, token, "").await,
        full_page_total(app, token, "&completed=true").await,
        full_page_total(app, token, "&completed=false").await,
    ]
}

#[tokio::test]
async fn the_total_count_follows_every_write_with_and_without_the_filter() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let (_, other) = app.signed_up("other").await;
    app.create_todo(&other, json!({"title": "not mine"})).await;
    let mut todos = Vec::new();
    for n in 0..5 {
        todos.push(
            app.create_todo(
                &token,
                json!({"title": format!("t{n}"), "completed": n < 2}),
            )
            .await,
        );
    }
    assert_eq!(totals(&app, &token).await, [5, 2, 3]);

    let patched = app
        .patch_json(
            &todo_path(&todos[4]["id"]),
            Some(&token),
            json!({"completed": true}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(totals(&app, &token).await, [5, 3, 2]);

    // PUT returns omitted fields to their defaults: completed becomes false.
    let replaced = app
        .put_json(
            &todo_path(&todos[0]["id"]),
            Some(&token),
            json!({"title": "again"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(totals(&app, &token).await, [5, 2, 3]);

    let deleted = app.delete(&todo_path(&todos[1]["id"]), Some(&token)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(totals(&app, &token).await, [4, 1, 3]);
    assert_eq!(full_page_total(&app, &other, "").await, 1);
}
