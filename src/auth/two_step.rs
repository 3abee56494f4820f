//! Two-step login's rules, without HTTP: enrolment with the password,
//! confirmation with a first code, the second factor of the password
//! grant, turning it off, and an admin's reset for a lost device.

use secrecy::{ExposeSecret, SecretString};

use super::jwt::unix_now;
use super::service::{Accounts, AuthError, SecondFactor};
use super::totp::{self, SecretKeys};
use crate::users::User;

/// A pending enrolment: what the authenticator app needs.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// Base32, as apps take it.
    pub secret: String,
    pub otpauth_uri: String,
}

fn now_seconds() -> u64 {
    u64::try_from(unix_now()).unwrap_or(0)
}

impl Accounts<'_> {
    fn totp_keys(&self) -> Result<&SecretKeys, AuthError> {
        self.totp_keys.ok_or(AuthError::MfaUnconfigured)
    }

    /// Starts an enrolment (replacing a pending one) once the password is
    /// confirmed; refused while two-step login is on.
    pub async fn start_totp(
        &self,
        caller: &User,
        password: SecretString,
    ) -> Result<TotpEnrolment, AuthError> {
        let keys = self.totp_keys()?;
        if !self.confirm_password(caller, password).await? {
            return Err(AuthError::IncorrectPassword);
        }
        if caller.mfa_enabled {
            return Err(AuthError::MfaAlreadyOn);
        }
        let secret = totp::new_secret();
        let sealed = keys.seal(&secret).ok_or(AuthError::Sealing)?;
        if !self.mfa.set_pending(caller.id, sealed).await? {
            return Err(AuthError::MfaAlreadyOn);
        }
        let secret = totp::encoded(&secret);
        tracing::info!(user = %caller.username, "two-step login enrolment started");
        Ok(TotpEnrolment {
            otpauth_uri: totp::otpauth_uri(&caller.username, &secret),
            secret,
        })
    }

    /// Turns two-step login on with a first code of the pending secret;
    /// every other session ends. Returns the recovery codes, shown once.
    pub async fn confirm_totp(
        &self,
        caller: &User,
        session: &str,
        code: &str,
    ) -> Result<Vec<String>, AuthError> {
        // Without a key nothing could be confirmed: say so before anything else.
        self.totp_keys()?;
        let pending = self
            .mfa
            .totp(caller.id)
            .await?
            .filter(|stored| !stored.confirmed)
            .ok_or(AuthError::NothingPending)?;
        let step = self
            .step_of(&pending.sealed, code)?
            .ok_or(AuthError::CodeRejected)?;
        let codes = totp::new_recovery_codes();
        let hashes = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
        if !self
            .mfa
            .enable(caller.id, step, hashes, session.to_owned())
            .await?
        {
            return Err(AuthError::NothingPending);
        }
        tracing::info!(user = %caller.username, "two-step login turned on; other sessions ended");
        Ok(codes)
    }

    /// Turns the caller's two-step login off with the password and a code
    /// (TOTP or recovery); every other session ends.
    pub async fn disable_mfa(
        &self,
        caller: &User,
        session: &str,
        password: SecretString,
        code: SecretString,
    ) -> Result<(), AuthError> {
        if !self.confirm_password(caller, password).await? {
            return Err(AuthError::IncorrectPassword);
        }
        if !caller.mfa_enabled {
            return Err(AuthError::MfaOff);
        }
        let code = code.expose_secret();
        let factor = match code.len() {
            6 => SecondFactor {
                otp: Some(code.to_owned()),
                recovery_code: None,
            },
            _ => SecondFactor {
                otp: None,
                recovery_code: Some(SecretString::from(code)),
            },
        };
        if !self.second_factor_holds(caller, factor).await? {
            self.count_failure_of(caller).await?;
            return Err(AuthError::CodeRejected);
        }
        self.mfa
            .disable(caller.id, Some(session.to_owned()))
            .await?;
        tracing::info!(user = %caller.username, "two-step login turned off; other sessions ended");
        Ok(())
    }

    /// An admin turns a user's two-step login off (a lost device); every
    /// session of that user ends.
    pub async fn reset_mfa(&self, admin: &User, user_id: i64) -> Result<(), AuthError> {
        let user = self.existing_user(user_id).await?;
        self.mfa.disable(user.id, None).await?;
        tracing::info!(admin = %admin.username, user = %user.username,
            "two-step login reset; every session ended");
        Ok(())
    }

    /// Whether `factor` is a code of the user's that has not been used:
    /// a TOTP code of a step later than the last one used, or an unused
    /// recovery code. Either is spent by being accepted.
    pub(super) async fn second_factor_holds(
        &self,
        user: &User,
        factor: SecondFactor,
    ) -> Result<bool, AuthError> {
        if let Some(code) = factor.otp {
            return self.spend_totp_code(user, &code).await;
        }
        let Some(code) = factor.recovery_code else {
            return Err(AuthError::MfaRequired);
        };
        let hash = totp::recovery_code_hash(code.expose_secret());
        let spent = self.mfa.spend_recovery_code(user.id, hash).await?;
        if spent {
            tracing::warn!(user = %user.username, "recovery code used");
        }
        Ok(spent)
    }

    async fn spend_totp_code(&self, user: &User, code: &str) -> Result<bool, AuthError> {
        let Some(stored) = self.mfa.totp(user.id).await?.filter(|s| s.confirmed) else {
            return Ok(false);
        };
        let Some(step) = self.step_of(&stored.sealed, code)? else {
            return Ok(false);
        };
        Ok(step > stored.last_step && self.mfa.spend_step(user.id, step).await?)
    }

    /// The step (previous, current or next) whose code `code` is, for the
    /// secret sealed in `sealed`; `None` when it is none of them.
    fn step_of(&self, sealed: &str, code: &str) -> Result<Option<i64>, AuthError> {
        let secret = self.totp_keys()?.open(sealed).ok_or(AuthError::Sealing)?;
        Ok(totp::matching_step(&secret, code, now_seconds()).and_then(|s| i64::try_from(s).ok()))
    }
}
