//! Rules for input fields, shared by every route and command that takes
//! them, reported together as one 422.

use std::sync::LazyLock;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 256;
/// Clearance levels run from 0 (public) to 5.
pub const MAX_CLEARANCE: i64 = 5;

/// One invalid input field, reported in a 422's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Input that broke the rules: every failed field, answered as one 422.
#[derive(Debug, thiserror::Error)]
#[error("validation failed")]
pub struct Invalid(pub Vec<FieldError>);

/// Collects the field errors of one request.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Keeps the value of a passed check, records the message of a failed one.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError::new(field, message)))
            .ok()
    }

    /// Like [`Fields::check`] for an optional field.
    pub fn check_opt<T, U>(
        &mut self,
        field: &str,
        value: Option<T>,
        rule: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<Option<U>> {
        match value {
            None => Some(None),
            Some(value) => self.check(field, rule(value)).map(Some),
        }
    }

    /// The built value when every check passed, else a 422 with all failures.
    /// `build` runs only when there were no failures, so it may rely on every
    /// checked value being present.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Invalid> {
        if !self.0.is_empty() {
            return Err(Invalid(self.0));
        }
        build().ok_or_else(|| Invalid(vec![FieldError::new("body", "is incomplete")]))
    }
}

/// 3–32 ASCII letters, digits, `_`, `.` or `-`.
pub fn username(value: String) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if !(3..=32).contains(&value.len()) || !value.chars().all(allowed) {
        return Err("must be 3 to 32 characters: ASCII letters, digits, '_', '.' or '-'".into());
    }
    Ok(value)
}

/// 8–256 characters counted as code points, and not a common password.
pub fn password(value: &SecretString) -> Result<(), String> {
    let password = value.expose_secret();
    let chars = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(format!(
            "must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters long"
        ));
    }
    if is_common_password(password) {
        return Err("is too common: it appears on a list of frequently used passwords".into());
    }
    Ok(())
}

/// True when `password`, ignoring case, is one of the ~30,000 most common
/// passwords that zxcvbn ships.
pub fn is_common_password(password: &str) -> bool {
    // No listed password is this long; the cap also bounds zxcvbn's work.
    if password.chars().count() > 40 {
        return false;
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    matches!(estimate.sequence(), [only] if only.token.chars().count() == password.chars().count()
        && matches!(&only.pattern, zxcvbn::matching::patterns::MatchPattern::Dictionary(word)
            // zxcvbn does not export the dictionary type, only its name.
            if format!("{:?}", word.dictionary_name) == "Passwords"
                && !word.reversed && !word.l33t))
}

/// Text of `min..=max` characters without NUL, which PostgreSQL cannot store.
pub fn text(value: String, min: usize, max: usize) -> Result<String, String> {
    if value.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(match min {
            0 => format!("must be at most {max} characters long"),
            _ => format!("must be {min} to {max} characters long"),
        });
    }
    Ok(value)
}

/// What an email address must look like: a dot-atom of ASCII characters
/// (RFC 5322), `@` and a host name; [`email`] also holds the part before
/// the `@` to 64 characters, which the schema's `format: email` implies. `/openapi.json` states the same pattern
/// on every email field (a test holds the two together), so that a client
/// that checks the schema and the server never disagree.
pub const EMAIL_PATTERN: &str = r"^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$";
/// The longest email address taken (RFC 5321's path limit, less the brackets).
pub const EMAIL_MAX_LEN: usize = 254;
const EMAIL_LOCAL_MAX_LEN: usize = 64;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(EMAIL_PATTERN).expect("the email pattern is a valid regex"));

/// An email address that matches [`EMAIL_PATTERN`].
pub fn email(value: String) -> Result<String, String> {
    let local_part = value.rsplit_once('@').map_or(0, |(local, _)| local.len());
    if value.len() > EMAIL_MAX_LEN || local_part > EMAIL_LOCAL_MAX_LEN || !EMAIL.is_match(&value) {
        return Err("must be a valid email address".into());
    }
    Ok(value)
}

/// A clearance level, 0 to 5.
pub fn clearance(value: i64) -> Result<u8, String> {
    u8::try_from(value)
        .ok()
        .filter(|level| i64::from(*level) <= MAX_CLEARANCE)
        .ok_or_else(|| format!("must be between 0 and {MAX_CLEARANCE}"))
}

/// Deserializes a field that may be absent (`None`), null (`Some(None)`) or
/// set (`Some(Some(v))`); use with `#[serde(default)]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// Deserializes a field that may be absent (`None`) but, when present,
/// never null: `null` is refused like any other value of the wrong type.
/// Use with `#[serde(default)]`.
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Like [`non_null`] for an integer field, which also takes a number
/// written with a zero fraction (`3.0`): JSON Schema counts it an integer,
/// so clients that check a body against `/openapi.json` may send it.
/// Values beyond `i64` saturate, for the field's range check to refuse.
pub fn whole_number<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    deserializer.deserialize_any(WholeNumber).map(Some)
}

struct WholeNumber;

impl serde::de::Visitor<'_> for WholeNumber {
    type Value = i64;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an integer")
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<i64, E> {
        Ok(i64::try_from(value).unwrap_or(i64::MAX))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<i64, E> {
        if value.is_finite() && value.fract() == 0.0 {
            // `as` saturates at the ends of i64, as wanted here.
            Ok(value as i64)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(value), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn usernames_follow_the_contract() {
        for good in ["abc", "jdoe", "a.b-c_d", &"x".repeat(32)] {
            assert!(username(good.to_string()).is_ok(), "{good}");
        }
        for bad in ["ab", &"x".repeat(33), "a b", "a/b", "émile", "", "a\0b"] {
            assert!(username(bad.to_string()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_length_counts_code_points() {
        assert!(password(&secret("short12")).is_err());
        assert!(password(&secret("🔒🔑🗝🔐🛡🧱🚪🪪")).is_ok());
        assert!(password(&secret(&"é".repeat(256))).is_ok());
        assert!(password(&secret(&"é".repeat(257))).is_err());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in [
            "password",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "PASSWORD",
            "Iloveyou",
        ] {
            assert!(password(&secret(common)).is_err(), "{common}");
        }
    }

    #[test]
    fn uncommon_passwords_pass_without_composition_rules() {
        for fine in [
            "correct horse battery",
            "wonderland rabbit hole",
            "p4ss-w0rd-long-enough",
        ] {
            assert!(password(&secret(fine)).is_ok(), "{fine}");
        }
    }

    #[test]
    fn text_limits_count_characters_and_refuse_nul() {
        assert!(text("é".repeat(100), 1, 100).is_ok());
        assert!(text("é".repeat(101), 1, 100).is_err());
        assert!(text(String::new(), 1, 100).is_err());
        assert!(text("a\0b".into(), 1, 100).is_err());
    }

    #[test]
    fn clearance_runs_from_zero_to_five() {
        assert_eq!(clearance(0), Ok(0));
        assert_eq!(clearance(5), Ok(5));
        assert!(clearance(6).is_err());
        assert!(clearance(-1).is_err());
    }

    #[test]
    fn emails_are_checked() {
        for good in [
            "jdoe@example.com",
            "a.b+tag@sub.example-1.org",
            "x@localhost",
        ] {
            assert!(email(good.into()).is_ok(), "{good}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let too_long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "not-an-email",
            "@example.com",
            "a@",
            "a@-example.com",
            ".a@example.com",
            "a..b@example.com",
            "a.@example.com",
            "a@example..com",
            "a b@example.com",
            "a@example.com\n",
            &long_local,
            &too_long,
        ] {
            assert!(email(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "non_null")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "whole_number")]
        level: Option<i64>,
    }

    fn sample(json: &str) -> Result<Sample, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_non_null_field_may_be_left_out_but_not_null() {
        assert_eq!(sample("{}").unwrap().flag, None);
        assert_eq!(sample(r#"{"flag":true}"#).unwrap().flag, Some(true));
        assert!(sample(r#"{"flag":null}"#).is_err());
        assert!(sample(r#"{"level":null}"#).is_err());
    }

    #[test]
    fn an_integer_may_be_written_with_a_zero_fraction() {
        assert_eq!(sample(r#"{"level":3}"#).unwrap().level, Some(3));
        assert_eq!(sample(r#"{"level":3.0}"#).unwrap().level, Some(3));
        assert_eq!(sample(r#"{"level":-0.0}"#).unwrap().level, Some(0));
        assert_eq!(sample(r#"{"level":1e300}"#).unwrap().level, Some(i64::MAX));
        assert_eq!(
            sample(r#"{"level":18446744073709551615}"#).unwrap().level,
            Some(i64::MAX)
        );
        for bad in [r#"{"level":2.5}"#, r#"{"level":"3"}"#, r#"{"level":true}"#] {
            assert!(sample(bad).is_err(), "{bad}");
        }
    }
}
