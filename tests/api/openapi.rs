use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let reply = app.get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    reply.json()
}

/// Every `$ref` in `value`, wherever it is nested.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_resolvable_references() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(doc["info"]["title"], "todo-api");
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external reference {target}"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_oauth2_password_flow_and_bearer_are_declared_with_per_route_scopes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    let password = &schemes["oauth2"]["flows"]["password"];
    assert_eq!(password["tokenUrl"], "/auth/token");
    assert!(password["scopes"]["read"].is_string());
    assert!(password["scopes"]["write"].is_string());
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(security("/api/todos", "get")[0]["oauth2"][0], "read");
    assert_eq!(security("/api/todos", "post")[0]["oauth2"][0], "write");
    assert!(security("/auth/register", "post").is_null());
}

#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    for (path, item) in paths {
        let concrete = path.replace("{id}", "1");
        for method in METHODS {
            let documented = item.get(method).is_some();
            let request = app.request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                &concrete,
                None,
            );
            let reply = app.send(request).await;
            if documented {
                assert_ne!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
                assert_ne!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_error_status_an_operation_can_give_is_documented_with_the_error_schema() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let todo = &doc["paths"]["/api/todos/{id}"]["patch"]["responses"];
    for status in ["400", "401", "403", "404", "413", "415", "422", "503"] {
        assert_eq!(
            todo[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "PATCH /api/todos/{{id}} {status}"
        );
    }
    let users = &doc["paths"]["/api/users/{id}"]["delete"]["responses"];
    assert!(users["409"].is_object());
}

#[tokio::test]
async fn the_interactive_docs_are_served_from_the_binary() {
    let app = spawn_app().await;
    let reply = app.get("/docs/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text.contains("swagger"), "{}", reply.text);
    let config = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(config.status, StatusCode::OK);
    assert!(config.text.contains("/openapi.json"));
}

/// Every property of every request body, as (schema, property, definition).
fn request_properties(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut bodies = Vec::new();
    refs(&request_bodies(doc), &mut bodies);
    bodies.sort();
    bodies.dedup();
    for reference in bodies {
        let name = reference.trim_start_matches("#/components/schemas/");
        let Some(properties) = schemas[name]["properties"].as_object() else {
            continue;
        };
        for (property, definition) in properties {
            found.push((name.to_string(), property.clone(), definition.clone()));
        }
    }
    found
}

/// The `requestBody` of every operation, in one array.
fn request_bodies(doc: &Value) -> Value {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .values()
        .flat_map(|item| {
            METHODS
                .iter()
                .map(move |method| item[*method]["requestBody"].clone())
        })
        .filter(|body| !body.is_null())
        .collect()
}

fn may_be_null(definition: &Value) -> bool {
    let type_says = match &definition["type"] {
        Value::Array(types) => types.iter().any(|t| t == "null"),
        other => other == "null",
    };
    let one_of_says = definition["oneOf"]
        .as_array()
        .is_some_and(|options| options.iter().any(|o| o["type"] == "null"));
    type_says || one_of_says
}

#[tokio::test]
async fn a_request_field_may_be_null_in_the_document_exactly_where_the_server_takes_null() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut nullable: Vec<(String, String)> = request_properties(&doc)
        .into_iter()
        .filter(|(_, _, definition)| may_be_null(definition))
        .map(|(schema, property, _)| (schema, property))
        .collect();
    nullable.sort();
    let expected = [
        ("RegisterRequest", "email"),
        ("TodoIn", "description"),
        ("TodoPatch", "description"),
        ("UserPatch", "department"),
        ("UserPatch", "email"),
    ];
    assert_eq!(
        nullable,
        expected.map(|(s, p)| (s.to_string(), p.to_string())),
    );
    // No body as a whole may be null either, not even logout's optional one.
    for body in request_bodies(&doc).as_array().expect("bodies") {
        for content in body["content"].as_object().expect("content").values() {
            assert!(!may_be_null(&content["schema"]), "{body}");
        }
    }
}

#[tokio::test]
async fn every_email_field_states_the_servers_own_pattern_and_length() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let emails: Vec<_> = request_properties(&doc)
        .into_iter()
        .filter(|(_, _, definition)| definition["format"] == "email")
        .collect();
    assert_eq!(emails.len(), 2, "{emails:?}");
    for (schema, property, definition) in emails {
        assert_eq!(
            definition["pattern"],
            todo_api::validation::EMAIL_PATTERN,
            "{schema}.{property}"
        );
        assert_eq!(
            definition["maxLength"],
            todo_api::validation::EMAIL_MAX_LEN,
            "{schema}.{property}"
        );
    }
}
