//! Two-step login's pieces without storage: TOTP secrets and codes
//! (RFC 6238 through totp-rs, with the window and replay rule here), the
//! otpauth URI authenticator apps read, recovery codes, and the sealing of
//! secrets at rest (AES-256-GCM under a key from configuration).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds of one TOTP step, and the digits of a code: what authenticator
/// apps expect.
pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// 160 bits, RFC 4226's recommended length for SHA-1.
const SECRET_BYTES: usize = 20;
/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Letters and digits that cannot be mistaken for one another (no 0/O,
/// 1/I/L): 31 symbols, so 16 of them carry 79 bits.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const RECOVERY_GROUPS: usize = 4;
const RECOVERY_GROUP_LEN: usize = 4;
/// The issuer and label prefix in the otpauth URI.
const ISSUER: &str = "todo-api";
const NONCE_BYTES: usize = 12;

/// A fresh random TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0; SECRET_BYTES];
    rand::rng().fill(&mut secret[..]);
    secret
}

/// The secret as authenticator apps take it: base32, no padding.
pub fn encoded(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// `otpauth://totp/todo-api:<username>?secret=…&issuer=todo-api`. Usernames
/// hold only characters that need no escaping in a URI path.
pub fn otpauth_uri(username: &str, encoded_secret: &str) -> String {
    format!("otpauth://totp/{ISSUER}:{username}?secret={encoded_secret}&issuer={ISSUER}")
}

fn generator(secret: &[u8], digits: usize) -> TOTP {
    // Unchecked: the label is ours to write (`otpauth_uri`), and every
    // secret is 160 bits (the RFC's test secret included).
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        0,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    )
}

/// The code of `secret` for the step that holds `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    generator(secret, DIGITS).generate(unix_seconds)
}

/// The step of the previous, current or next 30 s whose code `code` is, if
/// any: the caller accepts it only when that step is later than the last
/// one used, so a code (or an earlier one) works once.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = generator(secret, DIGITS);
    let now = unix_seconds / STEP_SECONDS;
    (now.saturating_sub(1)..=now + 1).find(|step| {
        let expected = totp.generate(step * STEP_SECONDS);
        constant_time_eq(expected.as_bytes(), code.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Ten fresh recovery codes, `XXXX-XXXX-XXXX-XXXX`.
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let groups: Vec<String> = (0..RECOVERY_GROUPS)
                .map(|_| {
                    (0..RECOVERY_GROUP_LEN)
                        .map(|_| {
                            let index = rng.random_range(0..RECOVERY_ALPHABET.len());
                            char::from(RECOVERY_ALPHABET[index])
                        })
                        .collect()
                })
                .collect();
            groups.join("-")
        })
        .collect()
}

/// What is stored of a recovery code: the SHA-256 of its symbols, in
/// upper case, without dashes or spaces. A code is random and long, so a
/// fast hash suffices (as for refresh tokens); a slow one would make each
/// attempt cost ten argon2 runs.
pub fn recovery_code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let digest = Sha256::digest(normalized.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the sealing keys could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadKey(String);

/// The keys TOTP secrets are sealed under: the current one seals, every
/// one opens (by the id each sealed value names), so that a key can be
/// replaced while secrets sealed under the old one still open.
pub struct SecretKeys {
    current: (String, Aes256Gcm),
    previous: Vec<(String, Aes256Gcm)>,
}

impl SecretKeys {
    /// From base64 (standard alphabet) 32-byte keys.
    pub fn new(current: &SecretString, previous: &[SecretString]) -> Result<Self, BadKey> {
        Ok(Self {
            current: key_from_base64(current)?,
            previous: previous
                .iter()
                .map(key_from_base64)
                .collect::<Result<_, _>>()?,
        })
    }

    /// A random key, for a run that keeps nothing (`--demo` without a key).
    pub fn throwaway() -> Self {
        let mut bytes = [0; 32];
        rand::rng().fill(&mut bytes[..]);
        Self {
            current: key_from_bytes(&bytes),
            previous: Vec::new(),
        }
    }

    /// `v1.<key id>.<nonce and ciphertext, base64url>`.
    pub fn seal(&self, plaintext: &[u8]) -> Option<String> {
        let (id, cipher) = &self.current;
        let mut nonce = [0; NONCE_BYTES];
        rand::rng().fill(&mut nonce[..]);
        let sealed = cipher.encrypt(&Nonce::from(nonce), plaintext).ok()?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Some(format!("v1.{id}.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The plaintext of a sealed value, when one of the keys opens it.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let bytes = URL_SAFE_NO_PAD.decode(data).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce = Nonce::from(<[u8; NONCE_BYTES]>::try_from(nonce).ok()?);
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(key_id, _)| key_id == id)?
            .1
            .decrypt(&nonce, ciphertext)
            .ok()
    }
}

fn key_from_base64(encoded: &SecretString) -> Result<(String, Aes256Gcm), BadKey> {
    let bytes = STANDARD
        .decode(encoded.expose_secret().trim())
        .map_err(|_| BadKey("a two-step login key is not base64".into()))?;
    let length = bytes.len();
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        BadKey(format!(
            "a two-step login key must be 32 bytes, this one is {length}"
        ))
    })?;
    Ok(key_from_bytes(&bytes))
}

/// The cipher of a key, and the key's id: the start of its SHA-256, which
/// names the key without revealing it.
fn key_from_bytes(bytes: &[u8; 32]) -> (String, Aes256Gcm) {
    let digest = Sha256::digest(bytes);
    let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    (id, Aes256Gcm::new(&(*bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret and its 8-digit codes.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        let totp = generator(secret, 8);
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_step_and_the_two_beside_it_only() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let step = now / STEP_SECONDS;
        for offset in [-1_i64, 0, 1] {
            let then = now.checked_add_signed(offset * 30).unwrap();
            let code = code_at(&secret, then);
            assert_eq!(
                matching_step(&secret, &code, now),
                Some(step.checked_add_signed(offset).unwrap())
            );
        }
        for far in [now - 90, now + 90] {
            let code = code_at(&secret, far);
            assert_eq!(matching_step(&secret, &code, now), None);
        }
        for malformed in ["", "12345", "1234567", "12345a", " 12345"] {
            assert_eq!(matching_step(&secret, malformed, now), None);
        }
    }

    #[test]
    fn the_uri_is_what_authenticator_apps_read() {
        let encoded = encoded(b"12345678901234567890");
        assert_eq!(encoded, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            otpauth_uri("jdoe", &encoded),
            "otpauth://totp/todo-api:jdoe?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=todo-api"
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_unambiguous_codes_hashed_loosely() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 19);
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b))
            );
        }
        let code = &codes[0];
        let typed = code.to_ascii_lowercase().replace('-', " ");
        assert_eq!(recovery_code_hash(code), recovery_code_hash(&typed));
        assert_ne!(recovery_code_hash(code), recovery_code_hash(&codes[1]));
    }

    #[test]
    fn sealed_secrets_open_under_the_current_and_previous_keys_only() {
        let key = |byte: u8| SecretString::from(STANDARD.encode([byte; 32]));
        let old = SecretKeys::new(&key(1), &[]).unwrap();
        let sealed = old.seal(b"secret").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(old.open(&sealed).unwrap(), b"secret");
        let rotated = SecretKeys::new(&key(2), &[key(1)]).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), b"secret");
        assert_eq!(SecretKeys::new(&key(2), &[]).unwrap().open(&sealed), None);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(old.open(&tampered), None);
        assert!(SecretKeys::new(&SecretString::from("c2hvcnQ="), &[]).is_err());
    }
}
