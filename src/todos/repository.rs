//! The todo data access the services need; implemented per backend in `db`.

use async_trait::async_trait;

use super::{ListedTodo, Todo, Visibility};
use crate::auth::policy::SharedReading;
use crate::repository::{Page, RepoError};

/// A todo about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTodo {
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub visibility: Visibility,
    pub clearance_level: u8,
}

/// The fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TodoChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub completed: Option<bool>,
    pub visibility: Option<Visibility>,
    pub clearance_level: Option<u8>,
}

impl From<NewTodo> for TodoChanges {
    /// A full replacement: every field is set.
    fn from(todo: NewTodo) -> Self {
        Self {
            title: Some(todo.title),
            description: Some(todo.description),
            completed: Some(todo.completed),
            visibility: Some(todo.visibility),
            clearance_level: Some(todo.clearance_level),
        }
    }
}

/// Which todos a list shows, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoListing {
    pub reader_id: i64,
    pub completed: Option<bool>,
    /// When set, the others' todos it admits are listed beside the
    /// reader's own (the access policy's rule, as a value).
    pub shared: Option<SharedReading<'static>>,
}

/// Where a listing hands its rows.
pub type ListSink<'s> = dyn FnMut(ListedTodo<'_>) + Send + 's;

/// Storage of todos. Writes take the owner's id and touch only that
/// owner's rows, so a caller can never change someone else's todo.
#[async_trait]
pub trait TodoRepository: Send + Sync {
    /// One page of the listing, newest first: each row is handed to `each`
    /// as it is read. Returns how many rows there were.
    async fn list(
        &self,
        listing: TodoListing,
        page: Page,
        each: &mut ListSink<'_>,
    ) -> Result<usize, RepoError>;
    /// How many todos the whole listing holds.
    async fn count(&self, listing: TodoListing) -> Result<u64, RepoError>;
    async fn find(&self, id: i64) -> Result<Option<Todo>, RepoError>;
    async fn insert(&self, owner_id: i64, todo: NewTodo) -> Result<Todo, RepoError>;
    async fn update(
        &self,
        owner_id: i64,
        id: i64,
        changes: TodoChanges,
    ) -> Result<Option<Todo>, RepoError>;
    async fn delete(&self, owner_id: i64, id: i64) -> Result<bool, RepoError>;
}
