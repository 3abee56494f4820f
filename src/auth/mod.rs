//! Registration, login and the checks every protected route relies on.

pub mod extract;
pub mod jwt;
pub mod limit;
pub mod password;
pub mod policy;
pub mod repository;
pub mod router;
pub mod schemas;
pub mod service;
pub mod sessions;
pub mod sessions_router;
pub mod totp;
pub mod two_step;
pub mod two_step_router;

/// A registration that passed every rule.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub password: secrecy::SecretString,
    pub name: String,
    pub email: Option<String>,
}
