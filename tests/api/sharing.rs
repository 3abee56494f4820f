//! Attribute-based access: department sharing and clearance levels, checked
//! over HTTP against the rule as API.md states it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// The byte-exact body of every 403 (API.md, Conventions).
const NOT_AUTHORIZED: &str = r#"{"error":"Not authorized"}"#;

/// `PATCH /api/users/{id}` as the admin; the reply must show the new values.
async fn set_user(app: &TestApp, admin: &str, id: i64, patch: Value) {
    let reply = app
        .patch_json(&format!("/api/users/{id}"), Some(admin), patch.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let user = reply.json();
    for (field, value) in patch.as_object().expect("a patch object") {
        assert_eq!(
            &user[field], value,
            "user {id} field {field}: {}",
            reply.text
        );
    }
}

fn id_of(todo: &Value) -> i64 {
    todo["id"].as_i64().expect("todo id")
}

/// The caller reads `todo` whole, and finds it in their `?shared=true` list.
async fn assert_reads(app: &TestApp, token: &str, todo: &Value) {
    let id = id_of(todo);
    let reply = app.get(&format!("/api/todos/{id}"), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "todo {id}: {}", reply.text);
    assert_eq!(&reply.json(), todo);
    let (ids, _) = todo_list(app, token, "?shared=true&limit=1000").await;
    assert!(ids.contains(&id), "todo {id} missing from {ids:?}");
}

/// The body of the todo as its owner sees it now.
async fn current(app: &TestApp, owner: &str, id: i64) -> Value {
    let reply = app.get(&format!("/api/todos/{id}"), Some(owner)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "owner reading {id}: {}",
        reply.text
    );
    reply.json()
}

/// `method` on `/api/todos/{id}` with a body that passes validation.
async fn call(app: &TestApp, method: Method, token: &str, id: i64) -> Reply {
    let path = format!("/api/todos/{id}");
    let request = app.request(method.clone(), &path, Some(token));
    let request = match method {
        Method::PUT => request.json(&json!({"title": "taken over", "completed": true})),
        Method::PATCH => request.json(&json!({"title": "taken over"})),
        _ => request,
    };
    app.send(request).await
}

fn comparable_headers(reply: &Reply) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        // Both differ from one request to the next by design.
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    headers.sort();
    headers
}

/// The caller can neither see nor touch todo `id`: every method answers
/// exactly as it does for an id that names nothing, and the list leaves it out.
async fn assert_hidden(app: &TestApp, token: &str, id: i64) {
    let missing = id + 1_000_000;
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let hidden = call(app, method.clone(), token, id).await;
        let absent = call(app, method.clone(), token, missing).await;
        assert_eq!(absent.status, StatusCode::NOT_FOUND, "{method} missing id");
        assert_eq!(
            hidden.status,
            StatusCode::NOT_FOUND,
            "{method} todo {id}: {}",
            hidden.text
        );
        assert_eq!(
            hidden.text, absent.text,
            "{method} body differs from a missing id"
        );
        assert!(!hidden.error().is_empty());
        assert_eq!(
            comparable_headers(&hidden),
            comparable_headers(&absent),
            "{method} headers differ from a missing id"
        );
    }
    let (ids, total) = todo_list(app, token, "?shared=true&limit=1000").await;
    assert!(!ids.contains(&id), "hidden todo {id} listed in {ids:?}");
    assert_eq!(total, ids.len() as u64);
}

/// An owner and a reader, both in "ops", and one todo the owner shares with
/// the department, readable by the reader when they start.
struct Sharing {
    app: TestApp,
    admin: String,
    owner_id: i64,
    owner: String,
    reader_id: i64,
    reader: String,
    todo: Value,
}

impl Sharing {
    fn id(&self) -> i64 {
        id_of(&self.todo)
    }

    async fn set(&self, id: i64, patch: Value) {
        set_user(&self.app, &self.admin, id, patch).await;
    }

    /// The todo is exactly as it was made.
    async fn assert_unchanged(&self) {
        assert_eq!(current(&self.app, &self.owner, self.id()).await, self.todo);
    }
}

async fn sharing(reader_clearance: u8, todo_clearance: u8) -> Sharing {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let (owner_id, owner) = app.signed_up("owner").await;
    let (reader_id, reader) = app.signed_up("reader").await;
    set_user(
        &app,
        &admin,
        owner_id,
        json!({"department": "ops", "clearance_level": 0}),
    )
    .await;
    set_user(
        &app,
        &admin,
        reader_id,
        json!({"department": "ops", "clearance_level": reader_clearance}),
    )
    .await;
    let todo = app
        .create_todo(
            &owner,
            json!({
                "title": "Quarterly plan",
                "description": "for the whole team",
                "visibility": "department",
                "clearance_level": todo_clearance,
            }),
        )
        .await;
    assert_eq!(todo["visibility"], "department");
    assert_eq!(todo["clearance_level"], todo_clearance);
    assert_eq!(todo["owner"], "owner");
    let fixture = Sharing {
        app,
        admin,
        owner_id,
        owner,
        reader_id,
        reader,
        todo,
    };
    if reader_clearance >= todo_clearance {
        assert_reads(&fixture.app, &fixture.reader, &fixture.todo).await;
    }
    fixture
}

#[tokio::test]
async fn a_reader_in_the_owners_department_with_enough_clearance_reads_a_shared_todo() {
    let s = sharing(2, 2).await;
    let reply = s
        .app
        .get(&format!("/api/todos/{}", s.id()), Some(&s.reader))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), s.todo);
    assert_eq!(reply.json()["owner"], "owner");

    let (ids, total) = todo_list(&s.app, &s.reader, "?shared=true").await;
    assert_eq!(ids, [s.id()]);
    assert_eq!(total, 1);
    let shared = s.app.get("/api/todos?shared=true", Some(&s.reader)).await;
    assert_eq!(shared.json(), json!([s.todo]));

    // Without `shared`, the list is the reader's own, which is empty.
    let (ids, total) = todo_list(&s.app, &s.reader, "").await;
    assert!(ids.is_empty());
    assert_eq!(total, 0);
}

#[tokio::test]
async fn moving_the_reader_to_another_department_ends_access_at_once() {
    let s = sharing(2, 1).await;
    s.set(s.reader_id, json!({"department": "sales"})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;
    s.assert_unchanged().await;

    // Moving back restores it, on the same token.
    s.set(s.reader_id, json!({"department": "ops"})).await;
    assert_reads(&s.app, &s.reader, &s.todo).await;
}

#[tokio::test]
async fn moving_the_owner_to_another_department_ends_access_at_once() {
    let s = sharing(2, 1).await;
    s.set(s.owner_id, json!({"department": "sales"})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;
    s.assert_unchanged().await;
    // The owner still sees their own todo.
    let (ids, _) = todo_list(&s.app, &s.owner, "?shared=true").await;
    assert_eq!(ids, [s.id()]);
}

#[tokio::test]
async fn an_owner_without_a_department_shares_with_nobody_not_even_callers_without_one() {
    let s = sharing(2, 1).await;
    s.set(s.owner_id, json!({"department": null})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;

    // Null never matches null.
    s.set(s.reader_id, json!({"department": null})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;
    let (ids, total) = todo_list(&s.app, &s.reader, "?shared=true").await;
    assert!(ids.is_empty(), "{ids:?}");
    assert_eq!(total, 0);
    s.assert_unchanged().await;
}

#[tokio::test]
async fn lowering_the_readers_clearance_below_the_todos_ends_access_at_once() {
    let s = sharing(3, 3).await;
    s.set(s.reader_id, json!({"clearance_level": 2})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;
    s.assert_unchanged().await;
}

#[tokio::test]
async fn the_owner_making_the_todo_private_again_ends_access_at_once() {
    let s = sharing(2, 0).await;
    let patched = s
        .app
        .patch_json(
            &format!("/api/todos/{}", s.id()),
            Some(&s.owner),
            json!({"visibility": "private"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["visibility"], "private");
    assert_eq!(patched.json()["title"], s.todo["title"]);
    assert_hidden(&s.app, &s.reader, s.id()).await;
}

#[tokio::test]
async fn the_owner_raising_the_todos_clearance_above_the_readers_ends_access_at_once() {
    let s = sharing(2, 2).await;
    let patched = s
        .app
        .patch_json(
            &format!("/api/todos/{}", s.id()),
            Some(&s.owner),
            json!({"clearance_level": 3}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["clearance_level"], 3);
    assert_eq!(patched.json()["visibility"], "department");
    assert_hidden(&s.app, &s.reader, s.id()).await;

    // The owner's own clearance (0) is below the todo's, and the owner
    // still reads it: owners are not subject to the clearance check.
    assert_eq!(current(&s.app, &s.owner, s.id()).await, patched.json());
}

#[tokio::test]
async fn a_reader_moved_into_the_department_gains_access_at_once() {
    let s = sharing(4, 4).await;
    s.set(s.reader_id, json!({"department": "sales"})).await;
    assert_hidden(&s.app, &s.reader, s.id()).await;
    s.set(s.reader_id, json!({"department": "ops"})).await;
    assert_reads(&s.app, &s.reader, &s.todo).await;
}

#[tokio::test]
async fn clearance_equal_to_the_todos_is_enough_and_one_less_is_not() {
    let s = sharing(3, 0).await;
    let mut by_level = Vec::new();
    for level in 0..=5 {
        let todo = s
            .app
            .create_todo(
                &s.owner,
                json!({"title": format!("level {level}"), "visibility": "department",
                       "clearance_level": level}),
            )
            .await;
        by_level.push(todo);
    }
    for (level, todo) in by_level.iter().enumerate() {
        if level <= 3 {
            assert_reads(&s.app, &s.reader, todo).await;
        } else {
            assert_hidden(&s.app, &s.reader, id_of(todo)).await;
        }
    }
    let (ids, total) = todo_list(&s.app, &s.reader, "?shared=true").await;
    let expected: Vec<i64> = [3, 2, 1, 0]
        .iter()
        .map(|&level| id_of(&by_level[level]))
        .chain([s.id()])
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(total, 5);

    // Clearance 0 against a clearance-0 todo is enough too.
    s.set(s.reader_id, json!({"clearance_level": 0})).await;
    assert_reads(&s.app, &s.reader, &by_level[0]).await;
    assert_hidden(&s.app, &s.reader, id_of(&by_level[1])).await;
}

#[tokio::test]
async fn a_reader_can_never_replace_patch_or_delete_a_shared_todo() {
    let s = sharing(5, 0).await;
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = call(&s.app, method.clone(), &s.reader, s.id()).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method}: {}",
            reply.text
        );
        assert_eq!(reply.text, NOT_AUTHORIZED, "{method}");
        assert_eq!(reply.text.len(), 26);
        s.assert_unchanged().await;
    }
    // Still readable, still listed: nothing was taken away either.
    assert_reads(&s.app, &s.reader, &s.todo).await;
}

#[tokio::test]
async fn a_caller_who_cannot_read_gets_the_same_404_as_for_a_missing_id() {
    let s = sharing(2, 0).await;
    // Private in the same department: the reader may not read it.
    let private = s.app.create_todo(&s.owner, json!({"title": "Diary"})).await;
    assert_eq!(private["visibility"], "private");
    assert_eq!(private["clearance_level"], 0);
    assert_hidden(&s.app, &s.reader, id_of(&private)).await;

    // Someone in another department: not even the shared one.
    let (outsider_id, outsider) = s.app.signed_up("outsider").await;
    s.set(
        outsider_id,
        json!({"department": "sales", "clearance_level": 5}),
    )
    .await;
    assert_hidden(&s.app, &outsider, s.id()).await;
    assert_hidden(&s.app, &outsider, id_of(&private)).await;

    s.assert_unchanged().await;
    assert_eq!(current(&s.app, &s.owner, id_of(&private)).await, private);
}

#[tokio::test]
async fn an_admin_in_another_department_cannot_read_others_todos() {
    let s = sharing(0, 0).await;
    let admin_id = 2;
    let me = s.app.get("/api/users/me", Some(&s.admin)).await.json();
    assert_eq!(me["id"], admin_id);
    assert_eq!(me["role"], "admin");

    // No department at all.
    assert_hidden(&s.app, &s.admin, s.id()).await;
    // Another department, highest clearance.
    s.set(
        admin_id,
        json!({"department": "sales", "clearance_level": 5}),
    )
    .await;
    assert_hidden(&s.app, &s.admin, s.id()).await;
    let private = s.app.create_todo(&s.owner, json!({"title": "Diary"})).await;
    assert_hidden(&s.app, &s.admin, id_of(&private)).await;
    s.assert_unchanged().await;
}

#[tokio::test]
async fn an_admin_in_the_same_department_with_enough_clearance_reads_like_anyone_else() {
    let s = sharing(0, 3).await;
    let admin_id = 2;
    s.set(admin_id, json!({"department": "ops", "clearance_level": 3}))
        .await;
    assert_reads(&s.app, &s.admin, &s.todo).await;
    let (ids, total) = todo_list(&s.app, &s.admin, "?shared=true").await;
    assert_eq!(ids, [s.id()]);
    assert_eq!(total, 1);

    // Reading is all: the role does not make the admin an owner.
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = call(&s.app, method.clone(), &s.admin, s.id()).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method}: {}",
            reply.text
        );
        assert_eq!(reply.text, NOT_AUTHORIZED);
    }
    s.assert_unchanged().await;

    // And not a private one, nor one above the admin's clearance.
    let private = s.app.create_todo(&s.owner, json!({"title": "Diary"})).await;
    assert_hidden(&s.app, &s.admin, id_of(&private)).await;
    s.set(admin_id, json!({"clearance_level": 2})).await;
    assert_hidden(&s.app, &s.admin, s.id()).await;
}

#[tokio::test]
async fn a_user_without_a_department_sees_only_own_todos_with_shared() {
    let app = spawn_app().await;
    let (_, other) = app.signed_up("other").await;
    let (_, loner) = app.signed_up("loner").await;
    // Neither has a department; the other shares at clearance 0.
    let theirs = app
        .create_todo(
            &other,
            json!({"title": "Shared?", "visibility": "department"}),
        )
        .await;
    let own_private = app.create_todo(&loner, json!({"title": "Mine"})).await;
    let own_shared = app
        .create_todo(
            &loner,
            json!({"title": "Also mine", "visibility": "department", "clearance_level": 5}),
        )
        .await;

    let reply = app.get("/api/todos?shared=true", Some(&loner)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-total-count"), Some("2"));
    assert_eq!(reply.json(), json!([own_shared, own_private]));
    assert_hidden(&app, &loner, id_of(&theirs)).await;
}

// ---------------------------------------------------------------------------
// The shared listing against the rule, over a small department.

/// A user of the listing world and the attributes the test gives them.
struct Person {
    department: Option<&'static str>,
    clearance: u8,
    token: String,
}

/// A todo of the listing world, as the test made it.
struct Made {
    id: i64,
    owner: usize,
    department_visible: bool,
    clearance: u8,
    completed: bool,
}

struct World {
    app: TestApp,
    people: Vec<Person>,
    todos: Vec<Made>,
}

const OPS_LOW: usize = 0;
const OPS_MID: usize = 1;
const OPS_HIGH: usize = 2;
const SALES: usize = 3;
const LONER: usize = 4;

/// Three users in "ops" at clearances 1, 2 and 3, one in "sales" at 5, one
/// without a department at 5; each makes eight todos (private and
/// department-visible at clearances 0 to 3), interleaved so that ids of
/// different owners alternate.
async fn world() -> World {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let attributes = [
        ("ops_low", Some("ops"), 1),
        ("ops_mid", Some("ops"), 2),
        ("ops_high", Some("ops"), 3),
        ("sales", Some("sales"), 5),
        ("loner", None, 5),
    ];
    let mut people = Vec::new();
    for (name, department, clearance) in attributes {
        let (id, token) = app.signed_up(name).await;
        set_user(
            &app,
            &admin,
            id,
            json!({"department": department, "clearance_level": clearance}),
        )
        .await;
        people.push(Person {
            department,
            clearance,
            token,
        });
    }
    let mut todos = Vec::new();
    for round in 0..8 {
        for (owner, person) in people.iter().enumerate() {
            let combo = (round + owner) % 8;
            let clearance = (combo % 4) as u8;
            let department_visible = combo < 4;
            let completed = (round + owner) % 3 == 0;
            let todo = app
                .create_todo(
                    &person.token,
                    json!({
                        "title": format!("{owner}/{round}"),
                        "visibility": if department_visible { "department" } else { "private" },
                        "clearance_level": clearance,
                        "completed": completed,
                    }),
                )
                .await;
            todos.push(Made {
                id: id_of(&todo),
                owner,
                department_visible,
                clearance,
                completed,
            });
        }
    }
    World { app, people, todos }
}

impl World {
    /// The rule of API.md, written out.
    fn may_read(&self, caller: usize, todo: &Made) -> bool {
        let (reader, owner) = (&self.people[caller], &self.people[todo.owner]);
        todo.owner == caller
            || (todo.department_visible
                && owner.department.is_some()
                && reader.department == owner.department
                && reader.clearance >= todo.clearance)
    }

    /// What `?shared=true` must list for `caller`, newest first.
    fn expected(&self, caller: usize, keep: impl Fn(&Made) -> bool) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .todos
            .iter()
            .filter(|todo| self.may_read(caller, todo) && keep(todo))
            .map(|todo| todo.id)
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    }

    fn own(&self, caller: usize, keep: impl Fn(&Made) -> bool) -> Vec<i64> {
        self.expected(caller, |todo| todo.owner == caller && keep(todo))
    }

    fn others_in(&self, ids: &[i64], caller: usize) -> usize {
        self.todos
            .iter()
            .filter(|todo| todo.owner != caller && ids.contains(&todo.id))
            .count()
    }
}

#[tokio::test]
async fn shared_listing_holds_exactly_the_todos_each_caller_may_read_newest_first() {
    let w = world().await;
    for (caller, person) in w.people.iter().enumerate() {
        let expected = w.expected(caller, |_| true);
        let (ids, total) = todo_list(&w.app, &person.token, "?shared=true&limit=1000").await;
        assert_eq!(ids, expected, "caller {caller}");
        assert_eq!(total, expected.len() as u64, "caller {caller}");
        // Every listed todo is also readable on its own.
        for id in &ids {
            let reply = w
                .app
                .get(&format!("/api/todos/{id}"), Some(&person.token))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "caller {caller} todo {id}");
        }
    }

    // The expectations are not vacuous: clearance decides how much of the
    // department each ops member sees, and nobody else sees any of it.
    let shared_seen: Vec<usize> = (0..w.people.len())
        .map(|caller| w.others_in(&w.expected(caller, |_| true), caller))
        .collect();
    assert!(shared_seen[OPS_LOW] > 0);
    assert!(shared_seen[OPS_LOW] < shared_seen[OPS_MID]);
    assert!(shared_seen[OPS_MID] < shared_seen[OPS_HIGH]);
    assert_eq!(shared_seen[SALES], 0);
    assert_eq!(shared_seen[LONER], 0);
    // ops_high sees the shared todos of both other ops members at clearance
    // 0 to 3: four each (one per clearance level).
    assert_eq!(shared_seen[OPS_HIGH], 8);
}

#[tokio::test]
async fn shared_listing_pages_with_limit_and_offset() {
    let w = world().await;
    for caller in [OPS_LOW, OPS_HIGH, SALES] {
        let token = &w.people[caller].token;
        let expected = w.expected(caller, |_| true);
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let (ids, total) = todo_list(
                &w.app,
                token,
                &format!("?shared=true&limit=3&offset={offset}"),
            )
            .await;
            assert_eq!(
                total,
                expected.len() as u64,
                "caller {caller} offset {offset}"
            );
            let remaining = expected.len().saturating_sub(offset);
            assert_eq!(
                ids.len(),
                remaining.min(3),
                "caller {caller} offset {offset}"
            );
            if ids.is_empty() {
                break;
            }
            paged.extend(ids);
            offset += 3;
        }
        assert_eq!(paged, expected, "caller {caller}");
    }
    // Far past the end: empty, with the total still right.
    let (ids, total) = todo_list(
        &w.app,
        &w.people[OPS_HIGH].token,
        "?shared=true&limit=5&offset=500",
    )
    .await;
    assert!(ids.is_empty());
    assert_eq!(total, w.expected(OPS_HIGH, |_| true).len() as u64);
}

#[tokio::test]
async fn the_completed_filter_applies_to_own_and_shared_todos_alike() {
    let w = world().await;
    for (caller, person) in w.people.iter().enumerate() {
        for completed in [true, false] {
            let expected = w.expected(caller, |todo| todo.completed == completed);
            let (ids, total) = todo_list(
                &w.app,
                &person.token,
                &format!("?shared=true&completed={completed}&limit=1000"),
            )
            .await;
            assert_eq!(ids, expected, "caller {caller} completed={completed}");
            assert_eq!(total, expected.len() as u64);
        }
    }
    // Both halves of the filter are exercised for ops_high.
    for completed in [true, false] {
        let expected = w.expected(OPS_HIGH, |todo| todo.completed == completed);
        assert!(
            w.others_in(&expected, OPS_HIGH) > 0,
            "completed={completed}"
        );
        assert!(
            !w.own(OPS_HIGH, |todo| todo.completed == completed)
                .is_empty()
        );
    }
}

#[tokio::test]
async fn without_shared_the_list_holds_only_the_callers_own_todos() {
    let w = world().await;
    for (caller, person) in w.people.iter().enumerate() {
        let own = w.own(caller, |_| true);
        assert_eq!(own.len(), 8);
        for query in ["?limit=1000", "?shared=false&limit=1000"] {
            let (ids, total) = todo_list(&w.app, &person.token, query).await;
            assert_eq!(ids, own, "caller {caller} {query}");
            assert_eq!(total, 8);
        }
        let done = w.own(caller, |todo| todo.completed);
        let (ids, total) = todo_list(&w.app, &person.token, "?completed=true").await;
        assert_eq!(ids, done, "caller {caller}");
        assert_eq!(total, done.len() as u64);
    }
}
