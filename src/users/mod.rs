//! Accounts: the user entity, its storage and the admin routes that edit it.

pub mod repository;
pub mod router;
pub mod schemas;
pub mod service;

use std::fmt;
use std::str::FromStr;

/// A user as the services see it: never holds the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub scopes: Scopes,
    pub disabled: bool,
    pub department: Option<String>,
    pub clearance_level: u8,
    /// Two-step login is on: the password grant also needs a code.
    pub mfa_enabled: bool,
}

/// What a user may manage: admins manage users, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// An OAuth2 scope the service knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    const ALL: [Scope; 2] = [Scope::Read, Scope::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}"))
    }
}

/// A set of scopes, written as the space-separated list OAuth2 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const DEFAULT: Scopes = Scopes(3);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn intersection(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Parses names, ignoring those the service does not know; OAuth2 lets
    /// a server grant less than was asked for.
    pub fn from_known<'a>(names: impl IntoIterator<Item = &'a str>) -> Scopes {
        names
            .into_iter()
            .filter_map(|name| name.parse::<Scope>().ok())
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl FromStr for Scopes {
    type Err = String;

    /// Strict: every name must be known.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split_whitespace().map(str::parse::<Scope>).collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_oauth_spelling() {
        let scopes: Scopes = "write read".parse().unwrap();
        assert_eq!(scopes, Scopes::DEFAULT);
        assert_eq!(scopes.to_string(), "read write");
        assert_eq!("".parse::<Scopes>().unwrap().to_string(), "");
    }

    #[test]
    fn unknown_scope_names_are_refused_when_strict_and_dropped_when_not() {
        assert!("read admin".parse::<Scopes>().is_err());
        assert_eq!(
            Scopes::from_known(["read", "admin"]),
            [Scope::Read].into_iter().collect()
        );
    }

    #[test]
    fn intersection_keeps_only_common_scopes() {
        let read: Scopes = "read".parse().unwrap();
        assert_eq!(Scopes::DEFAULT.intersection(read), read);
        assert!(read.intersection("write".parse().unwrap()).is_empty());
    }
}
