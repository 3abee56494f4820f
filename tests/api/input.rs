//! Input, protocol and error hygiene (I1–I9): limits, malformed requests,
//! odd ids, injection strings, exotic text, headers and leak-free errors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

fn todo_path(id: &Value) -> String {
    format!("/api/todos/{}", id.as_i64().expect("integer id"))
}

/// A POST/PUT/PATCH with a raw body and content type.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    app.send(
        app.request(method, path, token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body),
    )
    .await
}

#[tokio::test]
async fn todo_fields_beyond_their_limits_are_422_naming_each_field() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&token, json!({"title": "Valid"})).await;
    let path = todo_path(&todo["id"]);

    let cases = [
        (json!({"title": ""}), vec!["title"]),
        (json!({"title": "t".repeat(201)}), vec!["title"]),
        (json!({"title": "é".repeat(201)}), vec!["title"]),
        (
            json!({"title": "ok", "description": "d".repeat(10_001)}),
            vec!["description"],
        ),
        (
            json!({"title": "ok", "clearance_level": 6}),
            vec!["clearance_level"],
        ),
        (
            json!({"title": "ok", "clearance_level": -1}),
            vec!["clearance_level"],
        ),
        (
            json!({"title": "ok", "visibility": "public"}),
            vec!["visibility"],
        ),
        (
            json!({
                "title": "t".repeat(201),
                "description": "d".repeat(10_001),
                "visibility": "public",
                "clearance_level": 6,
            }),
            vec!["title", "description", "visibility", "clearance_level"],
        ),
    ];
    for (body, fields) in cases {
        let what = format!("{:.80}", body.to_string());
        let post = app
            .post_json("/api/todos", Some(&token), body.clone())
            .await;
        assert_invalid_fields(&post, &fields, &format!("POST {what}"));
        let put = app.put_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&put, &fields, &format!("PUT {what}"));
        let patch = app.patch_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&patch, &fields, &format!("PATCH {what}"));
    }

    // Nothing was stored or changed by the refused requests.
    let list = app.get("/api/todos", Some(&token)).await;
    assert_eq!(list.header("x-total-count"), Some("1"));
    assert_eq!(app.get(&path, Some(&token)).await.json(), todo);

    // The limits themselves are allowed, counted in characters.
    let at_limit = app
        .post_json(
            "/api/todos",
            Some(&token),
            json!({"title": "é".repeat(200), "description": "d".repeat(10_000),
                   "clearance_level": 5, "visibility": "department"}),
        )
        .await;
    assert_eq!(
        at_limit.status,
        StatusCode::CREATED,
        "{:.200}",
        at_limit.text
    );
    assert_eq!(at_limit.json()["title"], "é".repeat(200));
}

#[tokio::test]
async fn malformed_json_is_a_400_json_error() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&token, json!({"title": "x"})).await;

    for body in [
        r#"{"title": "#,
        "{title: 'x'}",
        "",
        "nul\u{0}l",
        r#"{"title":"a"} trailing"#,
    ] {
        for (method, path) in [
            (Method::POST, "/api/todos".to_string()),
            (Method::PUT, todo_path(&todo["id"])),
            (Method::PATCH, todo_path(&todo["id"])),
        ] {
            let reply = send_raw(
                &app,
                method.clone(),
                &path,
                Some(&token),
                "application/json",
                body.to_string(),
            )
            .await;
            assert_error_body(
                &reply,
                StatusCode::BAD_REQUEST,
                &format!("{method} {body:?}"),
            );
        }
    }
    let register = send_raw(
        &app,
        Method::POST,
        "/auth/register",
        None,
        "application/json",
        "{\"username\":",
    )
    .await;
    assert_error_body(&register, StatusCode::BAD_REQUEST, "register");
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_415() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let body = r#"{"title":"x"}"#;

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let reply = send_raw(
            &app,
            Method::POST,
            "/api/todos",
            Some(&token),
            content_type,
            body,
        )
        .await;
        assert_error_body(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE, content_type);
        let register = send_raw(
            &app,
            Method::POST,
            "/auth/register",
            None,
            content_type,
            r#"{"username":"someone","password":"correct horse battery","name":"S"}"#,
        )
        .await;
        assert_error_body(&register, StatusCode::UNSUPPORTED_MEDIA_TYPE, content_type);
    }
    let none = app
        .send(
            app.request(Method::POST, "/api/todos", Some(&token))
                .body(body),
        )
        .await;
    assert_error_body(&none, StatusCode::UNSUPPORTED_MEDIA_TYPE, "no Content-Type");

    // A charset parameter is still JSON.
    let charset = send_raw(
        &app,
        Method::POST,
        "/api/todos",
        Some(&token),
        "application/json; charset=utf-8",
        body,
    )
    .await;
    assert_eq!(charset.status, StatusCode::CREATED, "{}", charset.text);
    let list = app.get("/api/todos", Some(&token)).await;
    assert_eq!(
        list.header("x-total-count"),
        Some("1"),
        "nothing else was stored"
    );
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_422_naming_the_field() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let todo = app.create_todo(&token, json!({"title": "x"})).await;
    let path = todo_path(&todo["id"]);

    for (body, field) in [
        (json!({"title": "x", "completed": "yes"}), "completed"),
        (json!({"title": 5}), "title"),
        (json!({"title": ["x"]}), "title"),
        (
            json!({"title": "x", "clearance_level": "high"}),
            "clearance_level",
        ),
        (
            json!({"title": "x", "clearance_level": 1.5}),
            "clearance_level",
        ),
        (json!({"title": "x", "description": 7}), "description"),
    ] {
        let post = app
            .post_json("/api/todos", Some(&token), body.clone())
            .await;
        assert_invalid_fields(&post, &[field], &format!("POST {body}"));
        let put = app.put_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&put, &[field], &format!("PUT {body}"));
        let patch = app.patch_json(&path, Some(&token), body.clone()).await;
        assert_invalid_fields(&patch, &[field], &format!("PATCH {body}"));
    }
    for body in [json!([]), json!("title"), json!(null), json!(42)] {
        let reply = app
            .post_json("/api/todos", Some(&token), body.clone())
            .await;
        assert_error_body(&reply, StatusCode::UNPROCESSABLE_ENTITY, &body.to_string());
        assert!(!reply.failed_fields().is_empty(), "{body}");
    }
    assert_eq!(app.get(&path, Some(&token)).await.json(), todo);
}

#[tokio::test]
async fn unknown_routes_are_a_404_json_error() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    for path in [
        "/nope",
        "/api",
        "/api/nope",
        "/api/todos/1/extra",
        "/api/users/me/extra",
        "/auth",
    ] {
        for token in [None, Some(token.as_str())] {
            let reply = app.get(path, token).await;
            assert_error_body(&reply, StatusCode::NOT_FOUND, path);
        }
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_json_error_with_allow() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    for (method, path, allowed) in [
        (Method::PUT, "/api/todos", &["GET", "POST"][..]),
        (Method::DELETE, "/api/todos", &["GET", "POST"]),
        (
            Method::POST,
            "/api/todos/1",
            &["GET", "PUT", "PATCH", "DELETE"],
        ),
        (Method::POST, "/api/users", &["GET"]),
        (Method::POST, "/api/users/1", &["GET", "PATCH", "DELETE"]),
        (Method::DELETE, "/healthz", &["GET"]),
        (Method::GET, "/auth/register", &["POST"]),
    ] {
        let what = format!("{method} {path}");
        let reply = app
            .send(
                app.request(method, path, Some(&token))
                    .json(&json!({"title": "x"})),
            )
            .await;
        assert_error_body(&reply, StatusCode::METHOD_NOT_ALLOWED, &what);
        let allow: BTreeSet<String> = reply
            .header("allow")
            .unwrap_or_else(|| panic!("{what}: no Allow header"))
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        for method in allowed {
            assert!(
                allow.contains(*method),
                "{what}: Allow {allow:?} lacks {method}"
            );
        }
    }
    // The refused PUT created nothing.
    assert_eq!(app.get("/api/todos", Some(&token)).await.json(), json!([]));
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_quickly() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let big_json = |bytes: usize| {
        // {"title":"x","description":"ddd…"} of exactly `bytes` bytes.
        let frame = r#"{"title":"x","description":""}"#.len();
        format!(
            r#"{{"title":"x","description":"{}"}}"#,
            "d".repeat(bytes - frame)
        )
    };

    let megabyte = big_json(1024 * 1024);
    for (path, token) in [
        ("/api/todos", Some(token.as_str())),
        ("/auth/register", None),
    ] {
        let started = Instant::now();
        let reply = send_raw(
            &app,
            Method::POST,
            path,
            token,
            "application/json",
            megabyte.clone(),
        )
        .await;
        assert_error_body(&reply, StatusCode::PAYLOAD_TOO_LARGE, path);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: took {:?}",
            started.elapsed()
        );
    }

    let just_over = send_raw(
        &app,
        Method::POST,
        "/api/todos",
        Some(&token),
        "application/json",
        big_json(64 * 1024 + 1),
    )
    .await;
    assert_error_body(&just_over, StatusCode::PAYLOAD_TOO_LARGE, "64 KiB + 1");

    // Exactly 64 KiB is read; it fails only the description's own limit.
    let at_limit = send_raw(
        &app,
        Method::POST,
        "/api/todos",
        Some(&token),
        "application/json",
        big_json(64 * 1024),
    )
    .await;
    assert_invalid_fields(&at_limit, &["description"], "64 KiB");

    let patch = send_raw(
        &app,
        Method::PATCH,
        "/api/users/1",
        Some(&token),
        "application/json",
        big_json(64 * 1024 + 100),
    )
    .await;
    // Authorization comes first for a non-admin; no 500 either way.
    assert!(
        [StatusCode::FORBIDDEN, StatusCode::PAYLOAD_TOO_LARGE].contains(&patch.status),
        "{}",
        patch.status
    );
    assert_eq!(app.get("/api/todos", Some(&token)).await.json(), json!([]));
}

#[tokio::test]
async fn odd_todo_ids_are_422_when_malformed_and_404_when_unknown() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    for id in ["abc", "99999999999999999999", "1.5", "1e3", "0x10", "%20"] {
        let path = format!("/api/todos/{id}");
        let get = app.get(&path, Some(&token)).await;
        assert_invalid_fields(&get, &["id"], &format!("GET {path}"));
        let put = app
            .put_json(&path, Some(&token), json!({"title": "x"}))
            .await;
        assert_invalid_fields(&put, &["id"], &format!("PUT {path}"));
        let patch = app
            .patch_json(&path, Some(&token), json!({"title": "x"}))
            .await;
        assert_invalid_fields(&patch, &["id"], &format!("PATCH {path}"));
        let delete = app.delete(&path, Some(&token)).await;
        assert_invalid_fields(&delete, &["id"], &format!("DELETE {path}"));
    }
    for id in ["-1", "0", "9223372036854775807", "-9223372036854775808"] {
        let path = format!("/api/todos/{id}");
        let get = app.get(&path, Some(&token)).await;
        assert_error_body(&get, StatusCode::NOT_FOUND, &path);
        assert_eq!(get.error(), "Not found");
        let delete = app.delete(&path, Some(&token)).await;
        assert_error_body(&delete, StatusCode::NOT_FOUND, &path);
        let patch = app
            .patch_json(&path, Some(&token), json!({"title": "x"}))
            .await;
        assert_error_body(&patch, StatusCode::NOT_FOUND, &path);
    }
}

#[tokio::test]
async fn injection_strings_are_stored_and_returned_verbatim() {
    let app = spawn_demo_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let titles = [
        "'; DROP TABLE todos;--",
        "%",
        "_",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM users; --",
        "\\",
        "<script>alert(1)</script>",
    ];
    let mut ids = Vec::new();
    for title in titles {
        let todo = app
            .create_todo(&token, json!({"title": title, "description": title}))
            .await;
        assert_eq!(todo["title"], title);
        assert_eq!(todo["description"], title);
        let read = app.get(&todo_path(&todo["id"]), Some(&token)).await;
        assert_eq!(read.json()["title"], title);
        ids.push(todo["id"].as_i64().unwrap());
    }

    let list = app.get("/api/todos", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(
        list.header("x-total-count"),
        Some(&*titles.len().to_string())
    );
    let listed: Vec<Value> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    let expected: Vec<Value> = titles.iter().rev().map(|t| json!(t)).collect();
    assert_eq!(listed, expected);

    // The tables are intact: other users and the user list still work.
    let admin = app.admin_token().await;
    let users = app.get("/api/users", Some(&admin)).await;
    assert_eq!(users.header("x-total-count"), Some("3"));

    // Wildcards in a username match nothing.
    for pattern in ["%", "_", "alic_", "al%", "ALIC%"] {
        let login = app.login(pattern, "wonderland").await;
        assert_error_body(&login, StatusCode::UNAUTHORIZED, pattern);
    }
}

#[tokio::test]
async fn a_nul_in_a_title_is_422_and_exotic_unicode_round_trips() {
    let app = spawn_app().await;
    let (_, token) = app.signed_up("jdoe").await;

    for title in ["\u{0}", "a\u{0}b", "trailing\u{0}"] {
        let reply = app
            .post_json("/api/todos", Some(&token), json!({"title": title}))
            .await;
        assert_invalid_fields(&reply, &["title"], &format!("{title:?}"));
    }
    let described = app
        .post_json(
            "/api/todos",
            Some(&token),
            json!({"title": "ok", "description": "x\u{0}y"}),
        )
        .await;
    match described.status {
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_invalid_fields(&described, &["description"], "NUL in description")
        }
        StatusCode::CREATED => assert_eq!(described.json()["description"], "x\u{0}y"),
        other => panic!("NUL in description: {other} {}", described.text),
    }

    let exotic = [
        "مرحبا بالعالم",
        "\u{202E}txt.exe\u{202C} שלום",
        "emoji 🎉 👩‍👩‍👧‍👦 🇫🇷 👍🏽",
        "e\u{0301} vs \u{00E9}",
        "\u{FEFF}zero\u{200B}width\u{200D}",
        "𝕳𝖊𝖑𝖑𝖔 \u{10FFFF}",
        "  spaces kept  ",
        "line\nbreak\ttab",
    ];
    for title in exotic {
        let created = app
            .create_todo(&token, json!({"title": title, "description": title}))
            .await;
        assert_eq!(created["title"], title, "created {title:?}");
        let path = todo_path(&created["id"]);
        let read = app.get(&path, Some(&token)).await.json();
        assert_eq!(read["title"], title, "read {title:?}");
        assert_eq!(read["description"], title);
        let patched = app
            .patch_json(&path, Some(&token), json!({"title": format!("{title}!")}))
            .await;
        assert_eq!(patched.json()["title"], format!("{title}!"));
    }
    let list = app.get("/api/todos?limit=1000", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK);
    let listed: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = exotic.iter().rev().map(|t| format!("{t}!")).collect();
    assert_eq!(listed[..expected.len()], expected[..]);
}

#[tokio::test]
async fn authenticated_responses_are_not_cached_nor_sniffed_and_json_says_so() {
    let app = spawn_demo_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let alice = app.alice_token().await;
    let todo = app.create_todo(&token, json!({"title": "x"})).await;
    let path = todo_path(&todo["id"]);

    let replies = [
        ("GET me", app.get("/api/users/me", Some(&token)).await),
        ("GET list", app.get("/api/todos", Some(&token)).await),
        (
            "POST",
            app.post_json("/api/todos", Some(&token), json!({"title": "y"}))
                .await,
        ),
        ("GET one", app.get(&path, Some(&token)).await),
        (
            "PUT",
            app.put_json(&path, Some(&token), json!({"title": "z"}))
                .await,
        ),
        (
            "PATCH",
            app.patch_json(&path, Some(&token), json!({"completed": true}))
                .await,
        ),
        ("403", app.get("/api/users", Some(&alice)).await),
        ("404", app.get("/api/todos/999999", Some(&token)).await),
        ("422", app.get("/api/todos/abc", Some(&token)).await),
        ("401", app.get("/api/todos", None).await),
        (
            "401 bad token",
            app.get("/api/todos", Some("not.a.jwt")).await,
        ),
        ("token", app.login("alice", "wonderland").await),
        ("DELETE", app.delete(&path, Some(&token)).await),
    ];
    for (what, reply) in &replies {
        assert!(
            reply.status.is_success() || reply.status.is_client_error(),
            "{what}: {}",
            reply.status
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        if reply.status == StatusCode::NO_CONTENT {
            assert!(reply.text.is_empty(), "{what}");
        } else {
            assert!(
                content_type(reply).starts_with("application/json"),
                "{what}: Content-Type {:?}",
                content_type(reply)
            );
            reply.json();
        }
    }
}

#[tokio::test]
async fn error_bodies_reveal_no_sql_paths_or_hashes() {
    let app = spawn_demo_app().await;
    let (_, token) = app.signed_up("jdoe").await;
    let alice = app.alice_token().await;
    let todo = app.create_todo(&alice, json!({"title": "alice's"})).await;

    // Many registrations of one name at once race into the UNIQUE index.
    let (r1, r2, r3, r4, r5, r6) = tokio::join!(
        app.register("racer", PASSWORD),
        app.register("racer", PASSWORD),
        app.register("RACER", PASSWORD),
        app.register("racer", PASSWORD),
        app.register("Racer", PASSWORD),
        app.register("racer", PASSWORD),
    );
    let raced = [r1, r2, r3, r4, r5, r6];
    let created = raced
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one registration wins");
    let mut errors: Vec<(String, Reply)> = Vec::new();
    for reply in raced {
        if reply.status != StatusCode::CREATED {
            assert_error_body(&reply, StatusCode::BAD_REQUEST, "duplicate race");
            assert_eq!(reply.error(), "User already exists");
            errors.push(("duplicate race".into(), reply));
        }
    }

    let mut push = |what: &str, reply: Reply| errors.push((what.to_string(), reply));
    push("duplicate", app.register("ALICE", PASSWORD).await);
    push("weak password", app.register("weakling", "password").await);
    push("bad username", app.register("a/b", PASSWORD).await);
    push("wrong password", app.login("alice", "not-wonderland").await);
    push("unknown user", app.login("nobody", "whatever123").await);
    push(
        "bad grant",
        app.token_form(&[("grant_type", "client_credentials")])
            .await,
    );
    push(
        "bad refresh",
        app.token_form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .await,
    );
    push("bad token", app.get("/api/todos", Some("a.b.c")).await);
    push("no token", app.get("/api/todos", None).await);
    push(
        "foreign todo",
        app.get(&todo_path(&todo["id"]), Some(&token)).await,
    );
    push(
        "huge id",
        app.get("/api/todos/99999999999999999999", Some(&token))
            .await,
    );
    push(
        "bad limit",
        app.get("/api/todos?limit=abc", Some(&token)).await,
    );
    push(
        "NUL",
        app.post_json("/api/todos", Some(&token), json!({"title": "\u{0}"}))
            .await,
    );
    push(
        "schema",
        app.post_json("/api/todos", Some(&token), json!({"title": 5}))
            .await,
    );
    push(
        "malformed",
        send_raw(
            &app,
            Method::POST,
            "/api/todos",
            Some(&token),
            "application/json",
            "{",
        )
        .await,
    );
    push(
        "clearance",
        app.post_json(
            "/api/todos",
            Some(&token),
            json!({"title": "x", "clearance_level": 99}),
        )
        .await,
    );
    push("forbidden", app.get("/api/users/1", Some(&alice)).await);
    push(
        "unknown route",
        app.get("/api/../../etc/passwd", Some(&token)).await,
    );
    push(
        "wrong method",
        app.send(app.request(Method::PUT, "/api/todos", Some(&token)))
            .await,
    );

    let forbidden = [
        "sqlite",
        "constraint",
        "no such",
        "syntax error",
        "unique",
        "rusqlite",
        "select ",
        "insert ",
        "/tmp",
        "/work",
        "/home",
        "src/",
        ".rs:",
        "$argon2",
        "argon2id",
        "panicked",
        "backtrace",
        "correct horse battery",
        "wonderland",
    ];
    for (what, reply) in &errors {
        assert!(
            reply.status.is_client_error(),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
        assert!(
            content_type(reply).starts_with("application/json"),
            "{what}: Content-Type {:?}",
            content_type(reply)
        );
        let body = reply.text.to_lowercase();
        for word in forbidden {
            assert!(
                !body.contains(word),
                "{what}: body mentions {word:?}: {}",
                reply.text
            );
        }
    }
}
