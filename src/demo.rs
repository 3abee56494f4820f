//! The demo accounts that `serve --demo` seeds into an empty database.

use secrecy::SecretString;

use crate::auth::password::PasswordHasher;
use crate::error::AppError;
use crate::users::Role;
use crate::users::repository::{NewUser, UserRepository};

/// Seeds the demo accounts into an empty database; their passwords are the
/// lesson's, which registration would refuse as too common. Its errors
/// are the hasher's and the database's.
pub async fn seed_demo(
    users: &dyn UserRepository,
    passwords: &PasswordHasher,
) -> Result<bool, AppError> {
    if users.count().await? > 0 {
        return Ok(false);
    }
    let demo = [
        (
            "alice",
            "wonderland",
            "Alice Wonderson",
            "alice@example.com",
            Role::User,
        ),
        ("admin", "secret", "Admin", "admin@example.com", Role::Admin),
    ];
    for (username, password, name, email, role) in demo {
        let password_hash = passwords.hash(SecretString::from(password)).await?;
        users
            .insert(NewUser {
                username: username.into(),
                password_hash,
                name: name.into(),
                email: Some(email.into()),
                role,
            })
            .await?;
    }
    Ok(true)
}
