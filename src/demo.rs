//! The demo accounts that `serve --demo` seeds into an empty database.

use secrecy::SecretString;

use crate::auth::password::{HashError, PasswordHasher};
use crate::repository::RepoError;
use crate::users::Role;
use crate::users::repository::{NewUser, UserRepository};

/// Why the demo accounts could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Storage(#[from] RepoError),
}

/// Seeds the demo accounts into an empty database; their passwords are the
/// lesson's, which registration would refuse as too common.
pub async fn seed_demo(
    users: &dyn UserRepository,
    passwords: &PasswordHasher,
) -> Result<bool, SeedError> {
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
