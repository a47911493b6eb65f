//! Authentication of the services' users (central-bank staff, bank operators, customers):
//! passwords hashed with argon2id, short-lived JWT access tokens signed with Ed25519 (`EdDSA`),
//! and roles. Each service signs with its own key and its own issuer and audience, so a token
//! of one bank is refused by every other service.
//!
//! Every token field the service relies on is set and checked explicitly: the algorithm is
//! pinned (a token naming another is refused before its signature is looked at), the key is
//! chosen by `kid` (so signing keys can rotate: old keys stay in the verifier until their
//! tokens expire), and `iss`, `aud`, `sub`, `exp`, `nbf` and `iat` are all required. Lifetimes
//! are short (default 15 minutes). Banks do not use tokens towards the central bank: they
//! authenticate with their client certificate (mutual TLS, see the central bank's `pki`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;
use thiserror::Error;

/// A staff member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Creates and approves (signs) issuance and policy requests.
    CbOfficer,
    /// Administers the network: admission and suspension of banks, staff accounts.
    CbAdmin,
    /// Reads supply, requests and the audit log; changes nothing.
    Regulator,
    /// A commercial bank's staff: onboards customers and administers their wallets.
    BankOperator,
    /// A retail customer or merchant of a commercial bank: sees and pays from their wallets.
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CbOfficer => "cb_officer",
            Role::CbAdmin => "cb_admin",
            Role::Regulator => "regulator",
            Role::BankOperator => "bank_operator",
            Role::Customer => "customer",
        }
    }
}

impl FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cb_officer" => Ok(Role::CbOfficer),
            "cb_admin" => Ok(Role::CbAdmin),
            "regulator" => Ok(Role::Regulator),
            "bank_operator" => Ok(Role::BankOperator),
            "customer" => Ok(Role::Customer),
            _ => Err(AuthError::UnknownRole),
        }
    }
}

/// The claims of an access token. All are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The username.
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// Why authentication failed. Messages are safe to show: they never echo a token or password.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token's algorithm is not EdDSA")]
    WrongAlgorithm,
    #[error("the token is invalid: {0}")]
    Invalid(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("unknown role")]
    UnknownRole,
    #[error("the signing key is not a valid Ed25519 PKCS#8 key")]
    BadKey,
    #[error("password hashing failed")]
    Hashing,
}

/// A JWT signing key: Ed25519 in PKCS#8, named by `kid`.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key (PKCS#8 bytes to store, mode 0600, by the caller).
    pub fn generate_pkcs8() -> Result<Vec<u8>, AuthError> {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| AuthError::BadKey)
    }

    /// Loads a key; its `kid` is derived from the public key, so it cannot be mislabelled.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| AuthError::BadKey)?;
        let public: [u8; 32] =
            pair.public_key().as_ref().try_into().map_err(|_| AuthError::BadKey)?;
        Ok(SigningKey { kid: kid_of(&public), encoding: EncodingKey::from_ed_der(pkcs8), public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }
}

/// The key id of a public key: the first 8 bytes of its SHA-256, hex.
pub fn kid_of(public: &[u8; 32]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    hex::encode(digest.as_ref().get(..8).unwrap_or_default())
}

/// Issues and validates access tokens for one issuer and audience.
pub struct Tokens {
    issuer: String,
    audience: String,
    lifetime_s: u64,
    signing: SigningKey,
    /// Every key whose tokens are still accepted, by `kid` (the signing key included).
    verifying: BTreeMap<String, DecodingKey>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.signing.kid)
            .finish_non_exhaustive()
    }
}

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_S: u64 = 5;

impl Tokens {
    pub fn new(issuer: &str, audience: &str, lifetime_s: u64, signing: SigningKey) -> Tokens {
        let mut verifying = BTreeMap::new();
        verifying.insert(signing.kid.clone(), DecodingKey::from_ed_der(&signing.public));
        Tokens {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            lifetime_s,
            signing,
            verifying,
        }
    }

    /// Keeps accepting tokens of a retired key (rotation) until they expire.
    pub fn also_accept(&mut self, public: &[u8; 32]) {
        self.verifying.insert(kid_of(public), DecodingKey::from_ed_der(public));
    }

    pub fn lifetime_s(&self) -> u64 {
        self.lifetime_s
    }

    /// A token for `username` in `role`, valid from `now_s` for the configured lifetime.
    pub fn issue(&self, username: &str, role: Role, now_s: u64) -> Result<String, AuthError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: username.to_string(),
            role,
            iat: now_s,
            nbf: now_s,
            exp: now_s.saturating_add(self.lifetime_s),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing.encoding)
            .map_err(|_| AuthError::BadKey)
    }

    /// Validates a token at `now_s`: algorithm, key, signature, issuer, audience, times.
    pub fn validate(&self, token: &str, now_s: u64) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(AuthError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against the injected clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature"),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer"),
                ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience"),
                ErrorKind::MissingRequiredClaim(_) => {
                    AuthError::Invalid("a required claim is missing")
                }
                ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
                _ => AuthError::Malformed,
            }
        })?;
        let claims = data.claims;
        if now_s >= claims.exp.saturating_add(LEEWAY_S) {
            return Err(AuthError::Expired);
        }
        if now_s.saturating_add(LEEWAY_S) < claims.nbf {
            return Err(AuthError::NotYetValid);
        }
        if claims.exp <= claims.nbf || claims.exp.saturating_sub(claims.iat) > self.lifetime_s {
            return Err(AuthError::Invalid("lifetime out of bounds"));
        }
        Ok(claims)
    }
}

/// argon2id with explicit parameters (19 MiB, 2 passes, 1 lane: OWASP's minimum for argon2id).
fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| AuthError::Hashing)?;
    Ok(Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (`$argon2id$...`), with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| AuthError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| AuthError::Hashing)?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hashing)
}

/// Whether `password` matches a stored PHC hash (only argon2id hashes are accepted).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("key")).expect("key");
        Tokens::new("cbdc-central-bank", "cbdc-api", 900, key)
    }

    #[test]
    fn a_token_round_trips_with_its_role() {
        let t = tokens();
        let token = t.issue("olga", Role::CbOfficer, 1_000).expect("issue");
        let claims = t.validate(&token, 1_100).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.role), ("olga", Role::CbOfficer));
    }

    #[test]
    fn expired_not_yet_valid_and_foreign_tokens_are_refused() {
        let t = tokens();
        let token = t.issue("olga", Role::Regulator, 1_000).expect("issue");
        assert_eq!(t.validate(&token, 1_000 + 900 + LEEWAY_S), Err(AuthError::Expired));
        assert_eq!(t.validate(&token, 1_000 - LEEWAY_S - 1), Err(AuthError::NotYetValid));
        let other = tokens();
        assert_eq!(other.validate(&token, 1_100), Err(AuthError::UnknownKey));
        let wrong_audience = Tokens::new(
            "cbdc-central-bank",
            "another-api",
            900,
            SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("k")).expect("k"),
        );
        let mut t2 = tokens();
        t2.also_accept(&wrong_audience.signing.public);
        let foreign = wrong_audience.issue("olga", Role::CbAdmin, 1_000).expect("issue");
        assert_eq!(t2.validate(&foreign, 1_100), Err(AuthError::Invalid("wrong audience")));
    }

    #[test]
    fn tampered_and_unsigned_tokens_are_refused() {
        let t = tokens();
        let token = t.issue("olga", Role::Regulator, 1_000).expect("issue");
        // Swap the payload for one claiming a stronger role, keeping the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = token.replace(parts[1], &{
            use base64::Engine as _;
            let json = serde_json::json!({
                "iss": "cbdc-central-bank", "aud": "cbdc-api", "sub": "olga",
                "role": "cb_admin", "iat": 1000, "nbf": 1000, "exp": 1900
            });
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
        });
        assert_eq!(t.validate(&forged_claims, 1_100), Err(AuthError::Invalid("bad signature")));
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert!(t.validate(&none, 1_100).is_err(), "alg=none must be refused");
        assert_eq!(t.validate("not a token", 1_100), Err(AuthError::Malformed));
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(phc, hash_password("correct horse battery staple").expect("hash"), "salted");
    }
}
