//! Signing and checking JWTs: HS256 only, with our own claims policy.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::users::{Scopes, User};

/// Who issues the tokens and who they are for; both are checked on decode.
const ISSUER: &str = "todo-api";
const AUDIENCE: &str = "todo-api";

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 4096;

/// How many verified tokens are remembered (a few MiB at most).
const VERIFIED_TOKENS: usize = 4096;

/// The shortest signing secret accepted, in bytes (RFC 7518 §3.2 for HS256).
pub const MIN_SECRET_LEN: usize = 32;

/// What a token may be used for; an access token is never a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// The claims of every token we issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub uid: i64,
    pub sid: String,
    pub scopes: Vec<String>,
    /// For display only: authorization reads the role from the database.
    pub role: String,
    #[serde(rename = "type")]
    pub kind: TokenKind,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
}

/// Token lifetimes and clock tolerance.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub refresh: Duration,
    /// The absolute lifetime of a login session: refreshing never extends it.
    pub session: Duration,
    pub leeway: Duration,
}

/// Whom a token is for: a user, in a login session, with granted scopes.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    pub user: &'a User,
    pub session: &'a str,
    pub scopes: Scopes,
}

/// The current time as a Unix timestamp in seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Adds a duration to a Unix timestamp, saturating.
pub fn unix_after(now: i64, duration: Duration) -> i64 {
    now.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

/// A fresh random identifier of 128 bits, for sessions and token ids.
pub fn random_id() -> String {
    uuid::Uuid::from_bytes(rand::random()).simple().to_string()
}

/// The signing key and the validation policy, built once at start-up.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetimes: TokenLifetimes,
    /// Tokens whose signature and claims passed, by their exact text: a
    /// client sends the same token with every request, and checking it
    /// again would parse and hash it again for the same answer. Only the
    /// expiry changes with time, so it is checked on every use.
    verified: quick_cache::sync::Cache<String, Arc<Claims>>,
}

/// Why a secret cannot sign tokens.
#[derive(Debug, thiserror::Error)]
#[error("TODO_API_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes (it has {0})")]
pub struct WeakSecret(pub usize);

impl TokenKeys {
    pub fn new(secret: &SecretString, lifetimes: TokenLifetimes) -> Result<Self, WeakSecret> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(bytes.len()));
        }
        // Pinned to HS256 whatever the token's header says, and every claim
        // we rely on must be present.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = lifetimes.leeway.as_secs();
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            lifetimes,
            verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
        })
    }

    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// Signs an access token issued at `now`, valid for the access lifetime
    /// but never past `not_after`.
    pub fn access_token(
        &self,
        subject: &TokenSubject<'_>,
        now: i64,
        not_after: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let exp = unix_after(now, self.lifetimes.access).min(not_after);
        self.sign(TokenKind::Access, subject, &random_id(), now, exp)
    }

    /// Signs the refresh token `jti`, expiring at `exp`.
    pub fn refresh_token(
        &self,
        subject: &TokenSubject<'_>,
        jti: &str,
        now: i64,
        exp: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(TokenKind::Refresh, subject, jti, now, exp)
    }

    fn sign(
        &self,
        kind: TokenKind,
        subject: &TokenSubject<'_>,
        jti: &str,
        now: i64,
        exp: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: subject.user.username.clone(),
            uid: subject.user.id,
            sid: subject.session.to_string(),
            scopes: subject
                .scopes
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            role: subject.user.role.as_str().to_string(),
            kind,
            iat: now,
            exp,
            jti: jti.to_string(),
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a genuine, unexpired token of `kind`, or `None`.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Option<Arc<Claims>> {
        self.verify_at(token, kind, unix_now())
    }

    fn verify_at(&self, token: &str, kind: TokenKind, now: i64) -> Option<Arc<Claims>> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims =
                    jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                        .ok()
                        .map(|data| Arc::new(data.claims))?;
                self.verified.insert(token.to_owned(), Arc::clone(&claims));
                claims
            }
        };
        (claims.kind == kind && !self.expired(&claims, now)).then_some(claims)
    }

    /// The expiry rule of the validation, with its leeway.
    fn expired(&self, claims: &Claims, now: i64) -> bool {
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
        claims.exp < now.saturating_sub(leeway)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::users::Role;

    const SECRET: &str = "an-unguessable-test-secret-of-more-than-32-bytes";

    fn keys(access_secs: u64, leeway_secs: u64) -> TokenKeys {
        let lifetimes = TokenLifetimes {
            access: Duration::from_secs(access_secs),
            refresh: Duration::from_secs(3600),
            session: Duration::from_secs(7200),
            leeway: Duration::from_secs(leeway_secs),
        };
        TokenKeys::new(&SecretString::from(SECRET), lifetimes).unwrap()
    }

    fn alice() -> User {
        User {
            id: 1,
            username: "alice".into(),
            name: "Alice".into(),
            email: None,
            role: Role::User,
            scopes: Scopes::DEFAULT,
            disabled: false,
            department: None,
            clearance_level: 0,
            mfa_enabled: false,
        }
    }

    fn subject(user: &User) -> TokenSubject<'_> {
        TokenSubject {
            user,
            session: "s1",
            scopes: Scopes::DEFAULT,
        }
    }

    fn access_token(keys: &TokenKeys) -> String {
        keys.access_token(&subject(&alice()), unix_now(), i64::MAX)
            .unwrap()
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn with_header(token: &str, header: &serde_json::Value) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        let encoded = URL_SAFE_NO_PAD.encode(header.to_string());
        parts[0] = &encoded;
        parts.join(".")
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let keys = keys(60, 0);
        let claims = keys
            .verify(&access_token(&keys), TokenKind::Access)
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.uid, 1);
        assert_eq!(claims.scopes, ["read", "write"]);
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn an_access_token_never_outlives_its_session() {
        let keys = keys(60, 0);
        let now = unix_now();
        let token = keys
            .access_token(&subject(&alice()), now, now + 10)
            .unwrap();
        assert_eq!(payload(&token)["exp"], now + 10);
    }

    #[test]
    fn a_short_secret_is_refused() {
        let lifetimes = keys(1, 0).lifetimes();
        assert!(TokenKeys::new(&SecretString::from("x".repeat(31)), lifetimes).is_err());
        assert!(TokenKeys::new(&SecretString::from("x".repeat(32)), lifetimes).is_ok());
    }

    #[test]
    fn a_token_of_the_other_kind_is_refused() {
        let keys = keys(60, 0);
        let now = unix_now();
        let refresh = keys
            .refresh_token(&subject(&alice()), "r1", now, now + 60)
            .unwrap();
        assert!(keys.verify(&refresh, TokenKind::Access).is_none());
        assert!(
            keys.verify(&access_token(&keys), TokenKind::Refresh)
                .is_none()
        );
    }

    #[test]
    fn other_algorithms_in_the_header_are_refused() {
        let keys = keys(60, 0);
        let token = access_token(&keys);
        for alg in ["none", "None", "NONE", "HS384", "HS512", "RS256"] {
            let forged = with_header(&token, &serde_json::json!({"alg": alg, "typ": "JWT"}));
            assert!(keys.verify(&forged, TokenKind::Access).is_none(), "{alg}");
        }
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let keys = keys(60, 0);
        let token = access_token(&keys);
        let parts: Vec<&str> = token.split('.').collect();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{header}.{}.", parts[1]);
        assert!(keys.verify(&unsigned, TokenKind::Access).is_none());
    }

    #[test]
    fn an_edited_payload_breaks_the_signature() {
        let keys = keys(60, 0);
        let token = access_token(&keys);
        let mut claims = payload(&token);
        claims["role"] = "admin".into();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(keys.verify(&parts.join("."), TokenKind::Access).is_none());
    }

    /// Keys that sign with a different secret.
    fn other_keys() -> TokenKeys {
        TokenKeys::new(
            &SecretString::from("another-secret-that-is-long-enough-too"),
            keys(60, 0).lifetimes(),
        )
        .unwrap()
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = access_token(&other_keys());
        assert!(keys(60, 0).verify(&token, TokenKind::Access).is_none());
    }

    #[test]
    fn an_expired_token_is_refused_once_the_leeway_is_over() {
        let keys = keys(60, 0);
        let mut claims = payload(&access_token(&keys));
        claims["exp"] = (time::OffsetDateTime::now_utc().unix_timestamp() - 1).into();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token, TokenKind::Access).is_none());
    }

    #[test]
    fn a_token_without_expiry_or_type_is_refused() {
        let keys = keys(60, 0);
        for missing in ["exp", "type", "sub", "aud", "iss"] {
            let mut claims = payload(&access_token(&keys));
            claims.as_object_mut().unwrap().remove(missing);
            let token =
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
                    .unwrap();
            assert!(
                keys.verify(&token, TokenKind::Access).is_none(),
                "{missing}"
            );
        }
    }

    #[test]
    fn a_foreign_audience_is_refused() {
        let keys = keys(60, 0);
        let mut claims = payload(&access_token(&keys));
        claims["aud"] = "another-service".into();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token, TokenKind::Access).is_none());
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let keys = keys(60, 0);
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.???.***",
            "é.é.é",
            &"a".repeat(16_384),
        ] {
            assert!(keys.verify(token, TokenKind::Access).is_none());
        }
    }

    #[test]
    fn a_remembered_token_still_expires_with_the_same_leeway() {
        let keys = keys(60, 5);
        let token = access_token(&keys);
        let exp = keys.verify(&token, TokenKind::Access).unwrap().exp;
        assert!(keys.verified.get(token.as_str()).is_some(), "remembered");
        assert!(keys.verify_at(&token, TokenKind::Access, exp + 5).is_some());
        assert!(keys.verify_at(&token, TokenKind::Access, exp + 6).is_none());
    }

    #[test]
    fn a_remembered_token_is_still_refused_as_the_other_kind() {
        let keys = keys(60, 0);
        let token = access_token(&keys);
        assert!(keys.verify(&token, TokenKind::Access).is_some());
        assert!(keys.verify(&token, TokenKind::Refresh).is_none());
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let keys = keys(60, 0);
        let token = access_token(&keys);
        // One character of the signature changed (all of its six bits count).
        let mut forged = token.into_bytes();
        let at = forged.len() - 10;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for refused in [forged.as_str(), "a.b.c", &access_token(&other_keys())] {
            assert!(keys.verify(refused, TokenKind::Access).is_none());
        }
        assert_eq!(keys.verified.len(), 0);
    }
}
