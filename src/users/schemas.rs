//! Request and response bodies of the user routes.

use serde::{Deserialize, Serialize};

use super::repository::UserChanges;
use super::{Role, Scope, Scopes, User};
use crate::validation::{self, Fields, Invalid};

/// A user as clients see it: exactly these keys, never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: Option<String>,
    #[schema(value_type = Role)]
    pub role: &'static str,
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<&'static str>,
    pub disabled: bool,
    pub department: Option<String>,
    pub clearance_level: u8,
    pub mfa_enabled: bool,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            name: user.name,
            email: user.email,
            role: user.role.as_str(),
            scopes: user.scopes.iter().map(|s| s.as_str()).collect(),
            disabled: user.disabled,
            department: user.department,
            clearance_level: user.clearance_level,
            mfa_enabled: user.mfa_enabled,
        }
    }
}

/// `PATCH /api/users/{id}`: any subset of the fields an admin may change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = "^[^\\x00]*$")]
    pub name: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "validation::nullable")]
    #[schema(value_type = Option<String>, format = Email, max_length = 254,
             pattern = r"^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = Role)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "validation::non_null")]
    #[schema(value_type = bool)]
    pub disabled: Option<bool>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "validation::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = "^[^\\x00]*$")]
    pub department: Option<Option<String>>,
    #[serde(default, deserialize_with = "validation::whole_number")]
    #[schema(value_type = i64, minimum = 0, maximum = 5)]
    pub clearance_level: Option<i64>,
}

impl UserPatch {
    pub fn validate(self) -> Result<UserChanges, Invalid> {
        let mut fields = Fields::default();
        let name = fields.check_opt("name", self.name, |n| validation::text(n, 1, 100));
        let email = fields.check_opt("email", self.email, |email| {
            email.map(validation::email).transpose()
        });
        let role = fields.check_opt("role", self.role, |r| {
            r.parse::<Role>()
                .map_err(|_| "must be \"user\" or \"admin\"".to_string())
        });
        let scopes = fields.check_opt("scopes", self.scopes, |names| {
            names
                .join(" ")
                .parse::<Scopes>()
                .map_err(|_| "may only hold \"read\" and \"write\"".to_string())
        });
        let department = fields.check_opt("department", self.department, |dept| {
            dept.map(|d| validation::text(d, 1, 100)).transpose()
        });
        let clearance_level = fields.check_opt(
            "clearance_level",
            self.clearance_level,
            validation::clearance,
        );
        fields.finish(|| {
            Some(UserChanges {
                name: name?,
                email: email?,
                role: role?,
                scopes: scopes?,
                disabled: self.disabled,
                department: department?,
                clearance_level: clearance_level?,
            })
        })
    }
}
