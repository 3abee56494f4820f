//! Request and response bodies of the todo routes.

use std::io;

use serde::{Deserialize, Serialize};
use sonic_rs::format::{CompactFormatter, Formatter};

use super::repository::{NewTodo, TodoChanges};
use super::{ListedTodo, TodoFilter, Visibility};
use crate::json::WriteJson;
use crate::pagination::PageQuery;
use crate::validation::{self, Fields, Invalid};

const TITLE_MAX_CHARS: usize = 200;
const DESCRIPTION_MAX_CHARS: usize = 10_000;

/// A todo as clients see it; the owner appears by username only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TodoOut<'a> {
    pub id: i64,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub completed: bool,
    #[schema(value_type = Visibility)]
    pub visibility: &'static str,
    pub clearance_level: u8,
    pub owner: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

impl WriteJson for TodoOut<'_> {
    /// The keys are written as they are rather than escaped anew for every
    /// todo: a page of 20 encodes in a third of the time `Serialize` takes.
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut json = CompactFormatter;
        out.extend_from_slice(br#"{"id":"#);
        json.write_i64(out, self.id)?;
        out.extend_from_slice(br#","title":"#);
        json.write_string_fast(out, self.title, true)?;
        out.extend_from_slice(br#","description":"#);
        match self.description {
            Some(description) => json.write_string_fast(out, description, true)?,
            None => json.write_null(out)?,
        }
        out.extend_from_slice(br#","completed":"#);
        json.write_bool(out, self.completed)?;
        out.extend_from_slice(br#","visibility":"#);
        json.write_string_fast(out, self.visibility, true)?;
        out.extend_from_slice(br#","clearance_level":"#);
        json.write_u8(out, self.clearance_level)?;
        out.extend_from_slice(br#","owner":"#);
        json.write_string_fast(out, self.owner, true)?;
        out.extend_from_slice(br#","created_at":"#);
        json.write_string_fast(out, self.created_at, true)?;
        out.extend_from_slice(br#","updated_at":"#);
        json.write_string_fast(out, self.updated_at, true)?;
        out.push(b'}');
        Ok(())
    }
}

impl<'a> From<ListedTodo<'a>> for TodoOut<'a> {
    fn from(todo: ListedTodo<'a>) -> Self {
        Self {
            id: todo.id,
            title: todo.title,
            description: todo.description,
            completed: todo.completed,
            visibility: todo.visibility.as_str(),
            clearance_level: todo.clearance_level,
            owner: todo.owner,
            created_at: todo.created_at,
            updated_at: todo.updated_at,
        }
    }
}

/// `POST /api/todos` and `PUT /api/todos/{id}`: omitted fields take their
/// defaults. `id`, `owner` and timestamps in the body are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TodoIn {
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\x00]*$")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 10000, pattern = "^[^\\x00]*$")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = bool)]
    pub completed: Option<bool>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = Visibility)]
    pub visibility: Option<String>,
    #[serde(default, deserialize_with = "validation::whole_number")]
    #[schema(value_type = i64, minimum = 0, maximum = 5)]
    pub clearance_level: Option<i64>,
}

impl TodoIn {
    pub fn validate(self) -> Result<NewTodo, Invalid> {
        let patch = TodoPatch {
            title: Some(self.title),
            description: Some(self.description),
            completed: self.completed,
            visibility: self.visibility,
            clearance_level: self.clearance_level,
        };
        let changes = patch.validate()?;
        Ok(NewTodo {
            title: changes.title.unwrap_or_default(),
            description: changes.description.flatten(),
            completed: changes.completed.unwrap_or(false),
            visibility: changes.visibility.unwrap_or_default(),
            clearance_level: changes.clearance_level.unwrap_or(0),
        })
    }
}

/// `PATCH /api/todos/{id}`: any subset of the fields; a null description
/// clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TodoPatch {
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\x00]*$")]
    pub title: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "validation::nullable")]
    #[schema(value_type = Option<String>, max_length = 10000, pattern = "^[^\\x00]*$")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = bool)]
    pub completed: Option<bool>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = Visibility)]
    pub visibility: Option<String>,
    #[serde(default, deserialize_with = "validation::whole_number")]
    #[schema(value_type = i64, minimum = 0, maximum = 5)]
    pub clearance_level: Option<i64>,
}

impl TodoPatch {
    pub fn validate(self) -> Result<TodoChanges, Invalid> {
        let mut fields = Fields::default();
        let title = fields.check_opt("title", self.title, |t| {
            validation::text(t, 1, TITLE_MAX_CHARS)
        });
        let description = fields.check_opt("description", self.description, |d| {
            d.map(|d| validation::text(d, 0, DESCRIPTION_MAX_CHARS))
                .transpose()
        });
        let visibility = fields.check_opt("visibility", self.visibility, |v| {
            v.parse::<Visibility>()
                .map_err(|_| "must be \"private\" or \"department\"".to_string())
        });
        let clearance_level = fields.check_opt(
            "clearance_level",
            self.clearance_level,
            validation::clearance,
        );
        fields.finish(|| {
            Some(TodoChanges {
                title: title?,
                description: description?,
                completed: self.completed,
                visibility: visibility?,
                clearance_level: clearance_level?,
            })
        })
    }
}

/// `GET /api/todos` filters and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TodoListQuery {
    /// Only completed (`true`) or open (`false`) todos.
    #[serde(default)]
    pub completed: Option<bool>,
    /// Also the todos the caller's department shares with them.
    #[serde(default)]
    pub shared: Option<bool>,
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip, default 0.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl TodoListQuery {
    pub fn validate(self) -> Result<TodoFilter, Invalid> {
        let mut fields = Fields::default();
        let page = PageQuery {
            limit: self.limit,
            offset: self.offset,
        }
        .validate(&mut fields);
        fields.finish(|| {
            Some(TodoFilter {
                completed: self.completed,
                shared: self.shared.unwrap_or(false),
                page: page?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast writer must not change a byte of what clients were
    /// promised (the derived `Serialize`, which the single-todo responses
    /// and the OpenAPI schema use), whatever the fields hold.
    #[test]
    fn a_todo_writes_the_same_json_as_it_serializes_to() {
        let tricky = "quote \" backslash \\ slash / tab \t nul \u{0} unit \u{1f} del \u{7f} \u{2028} é 漢字 🦀";
        let todos = [
            TodoOut {
                id: 1,
                title: "Buy milk",
                description: None,
                completed: false,
                visibility: Visibility::Private.as_str(),
                clearance_level: 0,
                owner: "alice",
                created_at: "2026-11-27T16:18:25.123456Z",
                updated_at: "2026-11-27T16:18:25.123456Z",
            },
            TodoOut {
                id: i64::MAX,
                title: tricky,
                description: Some(tricky),
                completed: true,
                visibility: Visibility::Department.as_str(),
                clearance_level: 5,
                owner: tricky,
                created_at: "",
                updated_at: tricky,
            },
            TodoOut {
                id: i64::MIN,
                title: "",
                description: Some(""),
                completed: false,
                visibility: "",
                clearance_level: 0,
                owner: "",
                created_at: "",
                updated_at: "",
            },
        ];
        for todo in todos {
            let mut written = Vec::new();
            todo.write_json(&mut written).unwrap();
            let serialized = serde_json::to_vec(&todo).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(serialized).unwrap()
            );
        }
    }

    fn todo_in(json: serde_json::Value) -> Result<NewTodo, Invalid> {
        serde_json::from_value::<TodoIn>(json).unwrap().validate()
    }

    fn failed_fields(result: Result<NewTodo, Invalid>) -> Vec<String> {
        match result {
            Err(Invalid(details)) => details.into_iter().map(|d| d.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let todo = todo_in(serde_json::json!({"title": "Milk"})).unwrap();
        assert_eq!(
            todo,
            NewTodo {
                title: "Milk".into(),
                description: None,
                completed: false,
                visibility: Visibility::Private,
                clearance_level: 0,
            }
        );
    }

    #[test]
    fn every_limit_of_the_contract_is_enforced_at_once() {
        let result = todo_in(serde_json::json!({
            "title": "x".repeat(201),
            "description": "y".repeat(10_001),
            "visibility": "public",
            "clearance_level": 6,
        }));
        assert_eq!(
            failed_fields(result),
            ["title", "description", "visibility", "clearance_level"]
        );
        assert_eq!(
            failed_fields(todo_in(serde_json::json!({"title": ""}))),
            ["title"]
        );
    }

    #[test]
    fn paging_is_bounded() {
        let query = |limit, offset| {
            TodoListQuery {
                completed: None,
                shared: None,
                limit,
                offset,
            }
            .validate()
        };
        assert!(query(Some(1000), Some(0)).is_ok());
        assert!(query(Some(1001), None).is_err());
        assert!(query(Some(0), None).is_err());
        assert!(query(None, Some(-5)).is_err());
        assert_eq!(query(None, None).unwrap().page.limit, 100);
    }
}
