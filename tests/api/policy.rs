//! The access policy and the listings' SQL against each other: for many
//! random readers and todos, on the backend under test, a todo is in the
//! reader's `?shared=true` listing, and readable by id, exactly when
//! `policy::allows(Read)` says so.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use todo_api::auth::policy::{self, Action, Resource, Subject};
use todo_api::todos::Visibility;

use crate::helpers::*;

const USERS: usize = 8;
const TODOS_PER_USER: usize = 6;
const ROUNDS: usize = 4;
/// Few departments, so that many pairs share one and the clearance decides.
const DEPARTMENTS: [Option<&str>; 3] = [None, Some("ops"), Some("sales")];

struct Person {
    id: i64,
    token: String,
    department: Option<String>,
    clearance_level: u8,
}

struct StoredTodo {
    id: i64,
    owner: usize,
    visibility: Visibility,
    clearance_level: u8,
}

/// Gives `person` a random department and clearance, through the admin route.
async fn reassign(app: &TestApp, admin: &str, person: &mut Person, rng: &mut StdRng) {
    let department = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())].map(String::from);
    let clearance_level = rng.random_range(0..=5u8);
    let reply = app
        .patch_json(
            &format!("/api/users/{}", person.id),
            Some(admin),
            json!({"department": department, "clearance_level": clearance_level}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    person.department = department;
    person.clearance_level = clearance_level;
}

fn policy_allows(reader: &Person, owner: &Person, todo: &StoredTodo) -> bool {
    let subject = Subject {
        id: reader.id,
        department: reader.department.as_deref(),
        clearance_level: reader.clearance_level,
    };
    let resource = Resource {
        owner_id: owner.id,
        owner_department: owner.department.as_deref(),
        visibility: todo.visibility,
        clearance_level: todo.clearance_level,
    };
    policy::allows(subject, Action::Read, resource)
}

#[tokio::test]
async fn a_shared_listing_shows_exactly_what_the_policy_allows_to_read() {
    let app = spawn_demo_app().await;
    let admin = app.admin_token().await;
    let mut rng = StdRng::seed_from_u64(0x5eed_0fac_ce55);

    let mut people = Vec::new();
    for n in 0..USERS {
        let (id, token) = app.signed_up(&format!("reader{n}")).await;
        people.push(Person {
            id,
            token,
            department: None,
            clearance_level: 0,
        });
    }
    let mut todos = Vec::new();
    for (owner, person) in people.iter().enumerate() {
        for n in 0..TODOS_PER_USER {
            let visibility = if rng.random_bool(0.6) {
                Visibility::Department
            } else {
                Visibility::Private
            };
            let clearance_level = rng.random_range(0..=5u8);
            let created = app
                .create_todo(
                    &person.token,
                    json!({"title": format!("todo {n}"), "visibility": visibility.as_str(),
                           "clearance_level": clearance_level, "completed": rng.random_bool(0.5)}),
                )
                .await;
            todos.push(StoredTodo {
                id: created["id"].as_i64().expect("id"),
                owner,
                visibility,
                clearance_level,
            });
        }
    }

    let mut pairs = 0;
    let mut allowed_to_others = 0;
    for round in 0..ROUNDS {
        for person in &mut people {
            reassign(&app, &admin, person, &mut rng).await;
        }
        for (r, reader) in people.iter().enumerate() {
            let expected: BTreeSet<i64> = todos
                .iter()
                .filter(|todo| policy_allows(reader, &people[todo.owner], todo))
                .map(|todo| todo.id)
                .collect();
            let (listed, total) = todo_list(&app, &reader.token, "?shared=true&limit=1000").await;
            let listed: BTreeSet<i64> = listed.into_iter().collect();
            assert_eq!(listed, expected, "round {round}, reader {}", reader.id);
            assert_eq!(total, expected.len() as u64);
            for todo in &todos {
                let reply = app
                    .get(&format!("/api/todos/{}", todo.id), Some(&reader.token))
                    .await;
                let readable = expected.contains(&todo.id);
                let status = if readable {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(
                    reply.status, status,
                    "round {round}, reader {}, todo {}",
                    reader.id, todo.id
                );
                if readable {
                    assert_eq!(reply.json()["id"], Value::from(todo.id));
                }
                pairs += 1;
                allowed_to_others += usize::from(readable && todo.owner != r);
            }
        }
    }
    assert_eq!(pairs, ROUNDS * USERS * USERS * TODOS_PER_USER);
    // Random attributes that never shared anything would prove nothing.
    assert!(
        allowed_to_others > 20,
        "only {allowed_to_others} shared reads in {pairs} pairs"
    );
}
