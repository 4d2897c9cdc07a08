//! Passwords: argon2id with the crate's defaults (19 MiB, two passes, the OWASP minimum), kept as PHC
//! strings so the parameters travel with each hash and can be raised without a migration.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::AuthError;
use crate::secret::random_b64;

/// Shorter passwords are refused; a generated one is longer.
pub const MIN_LEN: usize = 8;
/// Longer ones too: argon2 hashes any length, but a megabyte password is an attack, not a password.
const MAX_LEN: usize = 1024;

/// Refuses a password too short or too long to be one, naming `field`.
pub(crate) fn check(field: &'static str, password: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(AuthError::invalid(
            field,
            format!("a password needs at least {MIN_LEN} characters"),
        ));
    }
    if password.len() > MAX_LEN {
        return Err(AuthError::invalid(
            field,
            format!("a password may have at most {MAX_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A fresh random password: 15 bytes, 20 characters of base64url, 120 bits.
pub(crate) fn generate() -> Result<String, AuthError> {
    random_b64(15)
}

/// The PHC string of a new argon2id hash with a random salt.
pub(crate) fn hash(password: &str) -> Result<String, AuthError> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(AuthError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string of `name`.
pub(crate) fn verify(name: &str, phc: &str, password: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(|source| AuthError::CorruptHash {
        name: name.to_owned(),
        source,
    })?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(AuthError::Hash(e)),
    }
}

/// Spends the time of one verification without a user to check against, so a login for a name that
/// does not exist takes as long as one with a wrong password and timing does not tell who has an
/// account.
pub(crate) fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash("no account has this password").ok()) {
        // The answer is known (no), only the time matters.
        let _ = verify("", phc, password);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify("x", &phc, "correct horse").expect("verify"));
        assert!(!verify("x", &phc, "correct horsE").expect("verify"));
        assert_ne!(phc, hash("correct horse").expect("hash"), "salted");
    }

    #[test]
    fn a_broken_hash_is_data_loss_not_a_wrong_password() {
        let err = verify("ann", "not a phc string", "whatever").expect_err("corrupt");
        assert!(
            matches!(err, AuthError::CorruptHash { ref name, .. } if name == "ann"),
            "{err:?}"
        );
    }

    #[test]
    fn short_and_huge_passwords_are_refused_by_field() {
        let err = check("password", "seven77").expect_err("short");
        assert_eq!(
            err.to_string(),
            "invalid password: a password needs at least 8 characters"
        );
        assert!(check("password", &"x".repeat(2000)).is_err());
        check("password", "eight888").expect("long enough");
        let generated = generate().expect("generate");
        assert_eq!(generated.len(), 20);
        check("password", &generated).expect("a generated password passes");
    }
}
