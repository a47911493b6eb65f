//! The central bank API's authorization matrix and JWT negative cases, over real TLS against a
//! running network: every endpoint against every role and no token (forbidden ones answer 401
//! or 403, never 2xx), and forged or stale tokens (all 401).

use crate::harness::Network;
use anyhow::{Result, bail};
use base64::Engine as _;
use central_bank::auth::{Role, SigningKey, Tokens, kid_of};
use central_bank::client::ApiClient;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn port_base() -> u16 {
    21_000 + 5 * 600 + (std::process::id() % 20) as u16 * 10
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Who calls: no token, or a role's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Officer,
    Admin,
    Regulator,
}

#[test]
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn every_endpoint_against_every_role_and_forged_tokens() -> Result<()> {
    let net = Network::start(4, port_base(), "sqlite")?;
    let addr = cbdc_service::init::central_bank_api(port_base() + 50)?;
    let ca = std::fs::read_to_string(net.net_dir().join("central-bank/pki/ca.pem"))?;
    let client = ApiClient::new(addr, "localhost", &ca, None)?;
    let start = Instant::now();
    while client.call("GET", "/health", None, None).map(|a| a.status).unwrap_or(0) != 200 {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the central bank API did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let login = |user: &str| -> Result<String> {
        let password =
            std::fs::read_to_string(net.net_dir().join(format!("credentials/{user}.password")))?;
        let a = client.call(
            "POST",
            "/v1/auth/token",
            None,
            Some(&json!({ "username": user, "password": password })),
        )?;
        Ok(a.json()?["access_token"].as_str().unwrap_or_default().to_string())
    };
    let officer = login("officer-0")?;
    let admin = login("admin")?;
    let regulator = login("regulator")?;
    let token = |c: Caller| match c {
        Caller::Anonymous => None,
        Caller::Officer => Some(officer.as_str()),
        Caller::Admin => Some(admin.as_str()),
        Caller::Regulator => Some(regulator.as_str()),
    };

    // A request to read, made by the officer.
    let made = client.call(
        "POST",
        "/v1/requests",
        Some(&officer),
        Some(&json!({ "kind": "mint", "bank": 1, "amount_minor": 10, "reason": "matrix" })),
    )?;
    let id = made.json()?["id"].as_str().unwrap_or_default().to_string();
    let mint = json!({ "kind": "mint", "bank": 1, "amount_minor": 10, "reason": "matrix" });
    let suspend = json!({ "kind": "suspend_bank", "bank": 4, "reason": "matrix" });
    let officer_key = hex::encode(net.key("officers/officer-0.key").public_key().0);
    let approval = json!({ "officer_key": officer_key, "signature": "00".repeat(64) });
    let cert = json!({ "kind": "client" });
    use Caller::{Admin, Anonymous, Officer, Regulator};
    // (method, path, body, the callers allowed; everyone else must get 401 or 403).
    let matrix: Vec<(&str, String, Option<Value>, Vec<Caller>)> = vec![
        ("GET", "/v1/supply".into(), None, vec![Officer, Admin, Regulator]),
        ("GET", "/v1/policy".into(), None, vec![Officer, Admin, Regulator]),
        ("GET", "/v1/requests".into(), None, vec![Officer, Admin, Regulator]),
        ("GET", format!("/v1/requests/{id}"), None, vec![Officer, Admin, Regulator]),
        ("POST", "/v1/requests".into(), Some(mint), vec![Officer]),
        ("POST", "/v1/requests".into(), Some(suspend), vec![Admin]),
        // Officers reach the signature check (422): the others must be refused before it.
        ("POST", format!("/v1/requests/{id}/approvals"), Some(approval), vec![Officer]),
        ("GET", "/v1/audit".into(), None, vec![Admin, Regulator]),
        ("POST", "/v1/banks/1/certificates".into(), Some(cert), vec![Admin]),
        ("POST", "/v1/certificates/ff/revocation".into(), None, vec![Admin]),
    ];
    for (method, path, body, allowed) in &matrix {
        for caller in [Anonymous, Officer, Admin, Regulator] {
            let a = client.call(method, path, token(caller), body.as_ref())?;
            let ok = allowed.contains(&caller);
            if ok {
                assert!(
                    ![401, 403].contains(&a.status),
                    "{caller:?} {method} {path} refused: {} {}",
                    a.status,
                    a.body
                );
            } else {
                let expected = if caller == Anonymous { 401 } else { 403 };
                assert_eq!(a.status, expected, "{caller:?} {method} {path}: {}", a.body);
            }
        }
    }
    // Public and certificate-only endpoints.
    assert_eq!(client.call("GET", "/health", None, None)?.status, 200);
    assert_eq!(client.call("GET", "/v1/crl", None, None)?.status, 200);
    assert_eq!(
        client.call("GET", "/v1/banks/me", Some(&admin), None)?.status,
        401,
        "tokens are not certificates"
    );

    // JWT negatives, all 401: forged with the real signing key where that is the point.
    let pkcs8 =
        hex::decode(std::fs::read_to_string(net.net_dir().join("central-bank/jwt.key"))?.trim())?;
    let real = SigningKey::from_pkcs8(&pkcs8)?;
    let public = real.public_key();
    let now_s = central_bank::now_ms() / 1_000;
    let issuer = format!("cbdc-central-bank/{}", net.genesis.chain_id);
    let audience = "cbdc-central-bank-api";
    let with = |iss: &str, aud: &str, at: u64| -> Result<String> {
        let key = SigningKey::from_pkcs8(&pkcs8)?;
        Ok(Tokens::new(iss, aud, 900, key).issue("admin", Role::CbAdmin, at)?)
    };
    let claims = json!({
        "iss": issuer, "aud": audience, "sub": "admin", "role": "cb_admin",
        "iat": now_s, "nbf": now_s, "exp": now_s + 600,
    });
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT", "kid": kid_of(&public) }).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    // HS256 "signed" with the public key as the HMAC secret (algorithm confusion).
    let hs_input = format!(
        "{}.{}",
        b64(json!({ "alg": "HS256", "typ": "JWT", "kid": kid_of(&public) }).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        hs_input.as_bytes(),
    );
    let hmac = format!("{hs_input}.{}", b64(mac.as_ref()));
    let valid = with(&issuer, audience, now_s)?;
    let parts: Vec<&str> = valid.split('.').collect();
    let mut escalated = claims.clone();
    escalated["sub"] = json!("officer-0");
    let tampered = format!("{}.{}.{}", parts[0], b64(escalated.to_string().as_bytes()), parts[2]);
    let stranger = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()?)?;
    let unknown_kid =
        Tokens::new(&issuer, audience, 900, stranger).issue("admin", Role::CbAdmin, now_s)?;
    let cases = [
        ("alg none", unsigned),
        ("HS256 with the public key", hmac),
        ("expired", with(&issuer, audience, now_s - 3_600)?),
        ("not yet valid", with(&issuer, audience, now_s + 3_600)?),
        ("wrong aud", with(&issuer, "another-api", now_s)?),
        ("wrong iss", with("someone-else", audience, now_s)?),
        ("unknown kid", unknown_kid),
        ("tampered payload", tampered),
    ];
    for (what, bad) in &cases {
        let a = client.call("GET", "/v1/audit", Some(bad), None)?;
        assert_eq!(a.status, 401, "{what}: {} {}", a.status, a.body);
    }
    // The control: the same construction with the right fields is accepted.
    assert_eq!(client.call("GET", "/v1/audit", Some(&valid), None)?.status, 200);
    Ok(())
}
