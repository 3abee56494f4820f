//! Request and response bodies of the auth routes.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::users::User;
use crate::validation::{self, Fields};

/// `POST /auth/register`. Fields it does not name (`role`, `scopes`, …) are
/// ignored, so nobody can register themselves into privileges.
#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    pub username: String,
    pub password: SecretString,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// A registration that passed every rule.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub password: SecretString,
    pub name: String,
    pub email: Option<String>,
}

impl RegisterRequest {
    pub fn validate(self) -> Result<NewAccount, AppError> {
        let mut fields = Fields::default();
        let username = fields.check("username", validation::username(self.username));
        let password_ok = fields.check("password", validation::password(&self.password));
        let name = fields.check("name", validation::text(self.name, 1, 100));
        let email = fields.check_opt("email", self.email, validation::email);
        fields.finish(|| {
            password_ok?;
            Some(NewAccount {
                username: username?,
                password: self.password,
                name: name?,
                email: email?,
            })
        })
    }
}

/// `201` answer to a registration.
#[derive(Debug, Serialize)]
pub struct RegisteredOut {
    pub username: String,
    pub name: String,
    pub role: &'static str,
}

impl From<User> for RegisteredOut {
    fn from(user: User) -> Self {
        Self {
            username: user.username,
            name: user.name,
            role: user.role.as_str(),
        }
    }
}

/// The form of `POST /auth/token` (RFC 6749 §4.3.2). `client_id` and
/// `client_secret` are accepted and ignored: this is a first-party server.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
}

/// `POST /auth/logout`: the session to end; none means every session.
#[derive(Debug, Deserialize)]
pub struct LogoutRequest {
    pub refresh_token: String,
}

/// `PUT /api/users/me/password`.
#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    pub current_password: SecretString,
    pub new_password: SecretString,
}

/// The token response (RFC 6749 §5.1) with the contract's `info`.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: String,
    pub info: TokenInfo,
}

/// Who the tokens belong to.
#[derive(Debug, Serialize)]
pub struct TokenInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}
