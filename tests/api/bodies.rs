//! JSON bodies are objects, and `null` is taken only where a field may
//! hold null (`description`, `email`, `department`): on every route that
//! reads a body, anything else is a 422 and changes nothing.

use serde_json::{Value, json};

use crate::helpers::*;

/// Bodies that are valid JSON but not an object. `[null, null]` is what
/// serde would otherwise read as a struct of two absent fields.
fn not_objects() -> [Value; 7] {
    [
        json!([null, null]),
        json!([]),
        json!(["x", "y"]),
        json!("title"),
        json!(42),
        json!(true),
        json!(null),
    ]
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422_on_every_json_route() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (jdoe_id, jdoe) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&jdoe, json!({"title": "Milk"})).await;
    let todo_path = format!("/api/todos/{}", todo["id"]);
    let user_path = format!("/api/users/{jdoe_id}");
    let user_before = app.get(&user_path, Some(&admin)).await.json();

    for body in not_objects() {
        let what = |route: &str| format!("{route} {body}");
        let replies = [
            (
                "POST /auth/register",
                app.post_json("/auth/register", None, body.clone()).await,
            ),
            (
                "POST /api/todos",
                app.post_json("/api/todos", Some(&jdoe), body.clone()).await,
            ),
            (
                "PUT todo",
                app.put_json(&todo_path, Some(&jdoe), body.clone()).await,
            ),
            (
                "PATCH todo",
                app.patch_json(&todo_path, Some(&jdoe), body.clone()).await,
            ),
            (
                "PATCH user",
                app.patch_json(&user_path, Some(&admin), body.clone()).await,
            ),
            (
                "PUT password",
                app.put_json("/api/users/me/password", Some(&jdoe), body.clone())
                    .await,
            ),
            (
                "POST /auth/logout",
                app.post_json("/auth/logout", Some(&jdoe), body.clone())
                    .await,
            ),
        ];
        for (route, reply) in replies {
            assert_invalid_fields(&reply, &["body"], &what(route));
            assert_eq!(
                reply.json()["details"][0]["message"],
                "must be a JSON object",
                "{}",
                what(route)
            );
        }
    }

    // Nothing changed, and the logouts ended no session.
    assert_eq!(app.get(&todo_path, Some(&jdoe)).await.json(), todo);
    assert_eq!(app.get(&user_path, Some(&admin)).await.json(), user_before);
    let (ids, total) = todo_list(&app, &jdoe, "").await;
    assert_eq!((ids.len(), total), (1, 1));
}

#[tokio::test]
async fn null_is_422_for_every_todo_field_that_may_not_hold_it() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&token, json!({"title": "Milk"})).await;
    let path = format!("/api/todos/{}", todo["id"]);

    for field in ["completed", "visibility", "clearance_level"] {
        let mut body = json!({"title": "x"});
        body[field] = Value::Null;
        let post = app
            .post_json("/api/todos", Some(&token), body.clone())
            .await;
        assert_invalid_fields(&post, &[field], &format!("POST {body}"));
        let put = app.put_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&put, &[field], &format!("PUT {body}"));
    }
    for field in ["title", "completed", "visibility", "clearance_level"] {
        let body = json!({ field: null });
        let patch = app.patch_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&patch, &[field], &format!("PATCH {body}"));
    }
    let post = app
        .post_json("/api/todos", Some(&token), json!({"title": null}))
        .await;
    assert_invalid_fields(&post, &["title"], "POST null title");

    assert_eq!(app.get(&path, Some(&token)).await.json(), todo);
    let (ids, _) = todo_list(&app, &token, "").await;
    assert_eq!(ids.len(), 1, "no todo was created");
}

#[tokio::test]
async fn null_is_taken_where_a_todo_field_may_hold_it() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let created = app
        .post_json(
            "/api/todos",
            Some(&token),
            json!({"title": "Milk", "description": null}),
        )
        .await;
    assert_eq!(
        created.status,
        reqwest::StatusCode::CREATED,
        "{}",
        created.text
    );
    let todo = created.json();
    assert_eq!(todo["description"], Value::Null);

    let path = format!("/api/todos/{}", todo["id"]);
    let described = app
        .patch_json(&path, Some(&token), json!({"description": "two litres"}))
        .await;
    assert_eq!(described.json()["description"], "two litres");
    let cleared = app
        .patch_json(&path, Some(&token), json!({"description": null}))
        .await;
    assert_eq!(cleared.status, reqwest::StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.json()["description"], Value::Null);
}

#[tokio::test]
async fn null_is_422_for_every_user_field_that_may_not_hold_it() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (id, _) = app.signed_up("jdoe").await;
    let path = format!("/api/users/{id}");
    let before = app.get(&path, Some(&admin)).await.json();

    for field in ["name", "role", "scopes", "disabled", "clearance_level"] {
        let body = json!({ field: null });
        let reply = app.patch_json(&path, Some(&admin), body.clone()).await;
        assert_invalid_fields(&reply, &[field], &format!("PATCH {body}"));
    }
    assert_eq!(app.get(&path, Some(&admin)).await.json(), before);

    let cleared = app
        .patch_json(
            &path,
            Some(&admin),
            json!({"email": null, "department": null}),
        )
        .await;
    assert_eq!(cleared.status, reqwest::StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.json()["email"], Value::Null);
    assert_eq!(cleared.json()["department"], Value::Null);
}

#[tokio::test]
async fn null_is_422_for_every_registration_field_but_the_email() {
    let app = spawn_app().await;
    for field in ["username", "password", "name"] {
        let mut body = json!({"username": "jdoe", "password": PASSWORD, "name": "John"});
        body[field] = Value::Null;
        let reply = app.post_json("/auth/register", None, body).await;
        assert_invalid_fields(&reply, &[field], &format!("register, {field} null"));
    }
    let registered = app
        .post_json(
            "/auth/register",
            None,
            json!({"username": "jdoe", "password": PASSWORD, "name": "John", "email": null}),
        )
        .await;
    assert_eq!(
        registered.status,
        reqwest::StatusCode::CREATED,
        "{}",
        registered.text
    );
}

/// JSON Schema counts `3.0` an integer, so a client that checks its body
/// against `/openapi.json` may send one.
#[tokio::test]
async fn an_integer_written_with_a_zero_fraction_is_that_integer() {
    let app = spawn_demo_app().await;
    let (id, token) = app.signed_up("jdoe").await;
    let created = app
        .post_json(
            "/api/todos",
            Some(&token),
            json!({"title": "x", "clearance_level": 3.0}),
        )
        .await;
    assert_eq!(
        created.status,
        reqwest::StatusCode::CREATED,
        "{}",
        created.text
    );
    assert_eq!(created.json()["clearance_level"], 3);

    let admin = app.admin_token().await;
    let patched = app
        .patch_json(
            &format!("/api/users/{id}"),
            Some(&admin),
            json!({"clearance_level": 2.0}),
        )
        .await;
    assert_eq!(patched.status, reqwest::StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["clearance_level"], 2);

    for level in [json!(2.5), json!(6.0), json!(-1.0), json!(1e300)] {
        let reply = app
            .post_json(
                "/api/todos",
                Some(&token),
                json!({"title": "x", "clearance_level": level}),
            )
            .await;
        assert_invalid_fields(&reply, &["clearance_level"], &format!("level {level}"));
    }
}
