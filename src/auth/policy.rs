//! Every authorization decision, as pure functions of attributes loaded from
//! the database. Nothing here reads a token claim.

use std::borrow::Cow;

use crate::todos::{Todo, Visibility};
use crate::users::{Role, User};

/// What a caller wants to do with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

/// The caller's current attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub id: i64,
    pub department: Option<&'a str>,
    pub clearance_level: u8,
}

impl<'a> From<&'a User> for Subject<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            department: user.department.as_deref(),
            clearance_level: user.clearance_level,
        }
    }
}

/// A todo's attributes, with its owner's current department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    pub owner_id: i64,
    pub owner_department: Option<&'a str>,
    pub visibility: Visibility,
    pub clearance_level: u8,
}

impl<'a> From<&'a Todo> for Resource<'a> {
    fn from(todo: &'a Todo) -> Self {
        Self {
            owner_id: todo.owner_id,
            owner_department: todo.owner_department.as_deref(),
            visibility: todo.visibility,
            clearance_level: todo.clearance_level,
        }
    }
}

/// The owner may do anything with a todo; anyone else may only read it,
/// and only when [`SharedReading`] admits it. Roles play no part: an admin
/// is no exception.
pub fn allows(subject: Subject<'_>, action: Action, resource: Resource<'_>) -> bool {
    if subject.id == resource.owner_id {
        return true;
    }
    action == Action::Read && shared_reading(subject).is_some_and(|shared| shared.admits(resource))
}

/// What a reader may read of other people's todos, as a value: the todos
/// whose owner (not the reader) is in the reader's department, marked for
/// the department, and needing at most the reader's clearance. [`allows`]
/// decides a single todo by it, and a listing of shared todos queries by
/// it (`db::query` renders it as SQL for every backend), so the rule is
/// written here once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedReading<'a> {
    pub reader_id: i64,
    pub department: Cow<'a, str>,
    pub visibility: Visibility,
    pub max_clearance: u8,
}

impl SharedReading<'_> {
    pub fn admits(&self, resource: Resource<'_>) -> bool {
        resource.owner_id != self.reader_id
            && resource.owner_department == Some(&*self.department)
            && resource.visibility == self.visibility
            && resource.clearance_level <= self.max_clearance
    }

    /// The same, owning its department, for a listing to carry.
    pub fn into_owned(self) -> SharedReading<'static> {
        SharedReading {
            department: Cow::Owned(self.department.into_owned()),
            ..self
        }
    }
}

/// What `subject` may read of others' todos; `None` without a department,
/// when nobody shares anything with them.
pub fn shared_reading<'a>(subject: Subject<'a>) -> Option<SharedReading<'a>> {
    subject.department.map(|department| SharedReading {
        reader_id: subject.id,
        department: Cow::Borrowed(department),
        visibility: Visibility::Department,
        max_clearance: subject.clearance_level,
    })
}

/// Only an active admin may manage users; the role is the one stored now.
pub fn may_manage_users(user: &User) -> bool {
    user.role == Role::Admin && !user.disabled
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: i64 = 1;
    const OWNER: i64 = 2;

    #[derive(Debug, Clone, Copy)]
    enum Dept {
        Same,
        Other,
        CallerHasNone,
        OwnerHasNone,
        NeitherHas,
    }

    fn departments(dept: Dept) -> (Option<&'static str>, Option<&'static str>) {
        match dept {
            Dept::Same => (Some("ops"), Some("ops")),
            Dept::Other => (Some("ops"), Some("sales")),
            Dept::CallerHasNone => (None, Some("ops")),
            Dept::OwnerHasNone => (Some("ops"), None),
            Dept::NeitherHas => (None, None),
        }
    }

    /// Every combination of the attributes the rule reads, against the rule
    /// written out as a table row by row.
    #[test]
    fn the_decision_table_holds_for_every_combination() {
        let depts = [
            Dept::Same,
            Dept::Other,
            Dept::CallerHasNone,
            Dept::OwnerHasNone,
            Dept::NeitherHas,
        ];
        let mut checked = 0;
        for is_owner in [true, false] {
            for dept in depts {
                for (caller_clearance, todo_clearance) in [(2, 3), (3, 3), (4, 3)] {
                    for visibility in [Visibility::Private, Visibility::Department] {
                        for action in [Action::Read, Action::Write] {
                            let (caller_dept, owner_dept) = departments(dept);
                            let subject = Subject {
                                id: if is_owner { OWNER } else { CALLER },
                                department: caller_dept,
                                clearance_level: caller_clearance,
                            };
                            let resource = Resource {
                                owner_id: OWNER,
                                owner_department: owner_dept,
                                visibility,
                                clearance_level: todo_clearance,
                            };
                            let expected = is_owner
                                || (action == Action::Read
                                    && visibility == Visibility::Department
                                    && matches!(dept, Dept::Same)
                                    && caller_clearance >= todo_clearance);
                            assert_eq!(
                                allows(subject, action, resource),
                                expected,
                                "owner={is_owner} dept={dept:?} clearance={caller_clearance}/{todo_clearance} {visibility:?} {action:?}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 5 * 3 * 2 * 2);
    }

    #[test]
    fn a_same_department_reader_with_enough_clearance_may_read_but_not_write() {
        let subject = Subject {
            id: CALLER,
            department: Some("ops"),
            clearance_level: 5,
        };
        let resource = Resource {
            owner_id: OWNER,
            owner_department: Some("ops"),
            visibility: Visibility::Department,
            clearance_level: 0,
        };
        assert!(allows(subject, Action::Read, resource));
        assert!(!allows(subject, Action::Write, resource));
    }

    fn user(role: Role, disabled: bool) -> User {
        User {
            id: 1,
            username: "u".into(),
            name: "U".into(),
            email: None,
            role,
            scopes: crate::users::Scopes::DEFAULT,
            disabled,
            department: None,
            clearance_level: 0,
            mfa_enabled: false,
        }
    }

    #[test]
    fn only_active_admins_manage_users() {
        assert!(may_manage_users(&user(Role::Admin, false)));
        assert!(!may_manage_users(&user(Role::Admin, true)));
        assert!(!may_manage_users(&user(Role::User, false)));
    }
}
