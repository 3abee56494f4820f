//! Todos: each belongs to one user and may be shared with their department.

pub mod repository;
pub mod router;
pub mod schemas;
pub mod service;

use std::str::FromStr;

use crate::repository::Page;

/// A checked list request: which of the caller's todos, and whether the
/// ones shared with them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TodoFilter {
    pub completed: Option<bool>,
    pub shared: bool,
    pub page: Page,
}

/// A stored todo, with what the access policy needs to know of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub id: i64,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub visibility: Visibility,
    pub clearance_level: u8,
    pub owner_id: i64,
    pub owner: String,
    pub owner_department: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Todo {
    /// The todo as a listing shows it.
    pub fn as_listed(&self) -> ListedTodo<'_> {
        ListedTodo {
            id: self.id,
            title: &self.title,
            description: self.description.as_deref(),
            completed: self.completed,
            visibility: self.visibility,
            clearance_level: self.clearance_level,
            owner: &self.owner,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        }
    }
}

/// A todo as a listing shows it, borrowed from the stored row: a listing
/// hands on its rows one at a time, so that a page goes from the database
/// into the response without copying each field into a [`Todo`] first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedTodo<'a> {
    pub id: i64,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub completed: bool,
    pub visibility: Visibility,
    pub clearance_level: u8,
    pub owner: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

impl ListedTodo<'_> {
    /// The stored todo, given what the access policy needs of its owner.
    pub fn into_todo(self, owner_id: i64, owner_department: Option<String>) -> Todo {
        Todo {
            id: self.id,
            title: self.title.to_owned(),
            description: self.description.map(str::to_owned),
            completed: self.completed,
            visibility: self.visibility,
            clearance_level: self.clearance_level,
            owner_id,
            owner: self.owner.to_owned(),
            owner_department,
            created_at: self.created_at.to_owned(),
            updated_at: self.updated_at.to_owned(),
        }
    }
}

/// Who besides the owner may read a todo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Department,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Department => "department",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "private" => Ok(Self::Private),
            "department" => Ok(Self::Department),
            other => Err(format!("unknown visibility {other:?}")),
        }
    }
}
