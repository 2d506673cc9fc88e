//! SMTP AUTH passwords: only their Argon2id hashes (PHC strings, as
//! `mailbridge hash-password` prints them) are configured, and a password is
//! checked against its hash on a blocking thread, since Argon2 is slow by design.

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params};
use mailbridge_domain::secret::Secret;
use rand::RngCore;

/// An SMTP AUTH user's password as its Argon2id PHC string
/// (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// Hashes `password` with Argon2id's default parameters and a random salt
    /// (slow by design: call it off the runtime's worker threads).
    pub fn hash(password: &str) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("Argon2id with default parameters hashes any password")
            .to_string();
        PasswordHashString(phc)
    }

    /// A PHC string checked to be an Argon2id hash that can be verified; the
    /// error says what is wrong with it.
    pub fn parse(phc: &str) -> Result<Self, String> {
        let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string ({e})"))?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(format!(
                "the hash is {}, not argon2id",
                hash.algorithm.as_str()
            ));
        }
        Params::try_from(&hash).map_err(|e| format!("invalid Argon2 parameters ({e})"))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err("the hash has no salt or no output".into());
        }
        Ok(PasswordHashString(phc.to_owned()))
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the hashed one (slow: blocking).
    pub fn matches(&self, password: &str) -> bool {
        PasswordHash::new(&self.0).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

impl std::fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashString(redacted)")
    }
}

/// Checked against when the user is unknown, so that an unknown user costs the
/// same verification as a known one. It has the default parameters `hash` uses;
/// its salt and output are arbitrary, so no known password matches it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$q1hq2y6Yl7JdHUl8mCL9Aw$0mPAyHYXCNZrLzvUhsHLDKDnB6FhVRQF7rHpHK7q7Ak";

/// Whether `user` is one of `users` and `password` theirs. The verification runs
/// on a blocking thread, and takes as long for an unknown user.
pub async fn verify(
    users: &BTreeMap<String, PasswordHashString>,
    user: &str,
    password: &Secret,
) -> bool {
    let (known, hash) = match users.get(user) {
        Some(h) => (true, h.clone()),
        None => (false, PasswordHashString(DUMMY_HASH.to_owned())),
    };
    let password = password.clone();
    let matches = tokio::task::spawn_blocking(move || hash.matches(password.expose()))
        .await
        .unwrap_or(false);
    known && matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_parses_back() {
        let h = PasswordHashString::hash("s3cret pass");
        assert!(h.as_str().starts_with("$argon2id$v=19$"), "{}", h.as_str());
        assert!(h.matches("s3cret pass"));
        assert!(!h.matches("s3cret pas"));
        assert_eq!(PasswordHashString::parse(h.as_str()).unwrap(), h);
        assert_ne!(PasswordHashString::hash("s3cret pass"), h, "a new salt");
        assert!(format!("{h:?}").contains("redacted"));
    }

    #[test]
    fn only_argon2id_phc_strings_parse() {
        for bad in [
            "s3cret",
            "",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$argon2i$v=19$m=19456,t=2,p=1$q1hq2y6Yl7JdHUl8mCL9Aw$0mPAyHYXCNZrLzvUhsHLDKDnB6FhVRQF7rHpHK7q7Ak",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
        ] {
            assert!(PasswordHashString::parse(bad).is_err(), "{bad:?} parsed");
        }
        PasswordHashString::parse(DUMMY_HASH).expect("the dummy hash is valid");
        // The same parameters as a hash `hash` makes, so the same cost.
        let made = PasswordHashString::hash("x");
        let made = PasswordHash::new(made.as_str()).unwrap();
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(dummy.params, made.params);
        assert_eq!(dummy.version, made.version);
        assert_eq!(
            dummy.hash.unwrap().len(),
            made.hash.unwrap().len(),
            "the same output length"
        );
    }

    #[tokio::test]
    async fn verify_needs_a_known_user_and_the_right_password() {
        let users = BTreeMap::from([("relay".to_owned(), PasswordHashString::hash("right"))]);
        assert!(verify(&users, "relay", &Secret::new("right")).await);
        assert!(!verify(&users, "relay", &Secret::new("wrong")).await);
        assert!(!verify(&users, "other", &Secret::new("right")).await);
    }
}
