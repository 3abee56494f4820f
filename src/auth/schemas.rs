//! Request and response bodies of the auth routes.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::NewAccount;
use super::repository::SessionInfo;
use super::service::IssuedTokens;
use super::two_step::TotpEnrolment;
use crate::users::{Role, User};
use crate::validation::{self, Fields, Invalid};

/// `POST /auth/register`. Fields it does not name (`role`, `scopes`, …) are
/// ignored, so nobody can register themselves into privileges.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// 3–32 ASCII letters, digits, `_`, `.` or `-`; unique in any case.
    #[schema(
        example = "jdoe",
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]+$"
    )]
    pub username: String,
    /// 8–256 characters, not a common password.
    #[schema(value_type = String, format = Password, example = "correct horse battery",
             min_length = 8, max_length = 256)]
    pub password: SecretString,
    #[schema(
        example = "John Doe",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(format = Email, max_length = 254,
             pattern = r"^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")]
    pub email: Option<String>,
}

impl RegisterRequest {
    pub fn validate(self) -> Result<NewAccount, Invalid> {
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredOut {
    pub username: String,
    pub name: String,
    #[schema(value_type = Role)]
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
/// A form has no `null`, so the schema says of each field only that it
/// may be left out.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    #[serde(default)]
    #[schema(value_type = String, example = "password")]
    pub grant_type: Option<String>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub username: Option<String>,
    #[serde(default)]
    #[schema(value_type = String, format = Password)]
    pub password: Option<SecretString>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub scope: Option<String>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub refresh_token: Option<String>,
    /// With two-step login on: the authenticator's 6-digit code…
    #[serde(default)]
    #[schema(value_type = String, pattern = "^[0-9]{6}$")]
    pub otp: Option<String>,
    /// …or one of the recovery codes.
    #[serde(default)]
    #[schema(value_type = String, format = Password)]
    pub recovery_code: Option<SecretString>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub client_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = String, format = Password)]
    pub client_secret: Option<SecretString>,
}

/// `POST /auth/logout`: the session to end; none means every session.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LogoutRequest {
    pub refresh_token: String,
}

/// `PUT /api/users/me/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// 8–256 characters, not a common password.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub new_password: SecretString,
}

impl PasswordChange {
    /// The change, once the new password meets the rules.
    pub fn validate(self) -> Result<Self, Invalid> {
        let mut fields = Fields::default();
        let new_ok = fields.check("new_password", validation::password(&self.new_password));
        fields.finish(|| new_ok.map(|()| self))
    }
}

/// The token response (RFC 6749 §5.1) with the contract's `info`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(value_type = String, example = "bearer")]
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: String,
    pub info: TokenInfo,
}

/// Who the tokens belong to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(tokens: IssuedTokens) -> Self {
        Self {
            access_token: tokens.access_token,
            token_type: "bearer",
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
            scope: tokens.scopes.to_string(),
            info: TokenInfo {
                name: tokens.name,
                email: tokens.email,
            },
        }
    }
}

/// `POST /api/users/me/mfa/totp`: the password, to start an enrolment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordConfirmation {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `201` answer to an enrolment: what to put in the authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolmentOut {
    /// Base32, 160 bits.
    pub secret: String,
    #[schema(
        example = "otpauth://totp/todo-api:jdoe?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=todo-api"
    )]
    pub otpauth_uri: String,
}

impl From<TotpEnrolment> for TotpEnrolmentOut {
    fn from(enrolment: TotpEnrolment) -> Self {
        Self {
            secret: enrolment.secret,
            otpauth_uri: enrolment.otpauth_uri,
        }
    }
}

/// `POST /api/users/me/mfa/totp/confirm`: a first code of the new secret.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TotpConfirmation {
    #[schema(example = "123456")]
    pub code: String,
}

/// The recovery codes, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesOut {
    pub recovery_codes: Vec<String>,
}

/// `DELETE /api/users/me/mfa`: the password and a TOTP or recovery code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MfaRemoval {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub code: SecretString,
}

/// A live session, as `GET …/sessions` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    /// The access tokens' `sid`.
    pub id: String,
    /// `password` or `oidc`.
    pub method: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    /// The client's address at login.
    pub address: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
    /// The session of the token making the request.
    pub current: bool,
}

impl SessionOut {
    /// `sessions` as shown to a caller whose own session is `current`.
    pub fn list(sessions: Vec<SessionInfo>, current: Option<&str>) -> Vec<Self> {
        sessions
            .into_iter()
            .map(|session| Self {
                current: current == Some(session.id.as_str()),
                id: session.id,
                method: session.method,
                created_at: session.created_at,
                last_used_at: rfc3339(session.last_used_at),
                expires_at: rfc3339(session.expires_at),
                address: session.address,
                user_agent: session.user_agent,
            })
            .collect()
    }
}

/// Unix seconds as RFC 3339 UTC (`…Z`).
fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
