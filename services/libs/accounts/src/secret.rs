//! Random secrets and how they are kept: drawn from the operating system's generator, sent as
//! base64url, stored only as their SHA-256 so a copy of the bucket logs nobody in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::AuthError;

/// `n` bytes from the OS generator, base64url without padding.
pub(crate) fn random_b64(n: usize) -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(n)?))
}

/// `n` bytes from the OS generator, lower-case hex: for ids that go into KV keys, where base64url's
/// `-` and `_` would be allowed but hex reads better in a listing.
pub(crate) fn random_hex(n: usize) -> Result<String, AuthError> {
    Ok(hex(&random_bytes(n)?))
}

fn random_bytes(n: usize) -> Result<Vec<u8>, AuthError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(AuthError::Random)?;
    Ok(bytes)
}

/// The SHA-256 of a secret, lower-case hex. A plain hash (not argon2) is enough here: these secrets
/// are 256 random bits, which no dictionary holds, and they are checked on every request.
pub(crate) fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_and_hash_to_hex() {
        let a = random_b64(32).expect("random");
        let b = random_b64(32).expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes of base64url without padding");
        assert_eq!(random_hex(8).expect("random").len(), 16);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
