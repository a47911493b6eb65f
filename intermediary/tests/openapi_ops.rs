//! The operations API's OpenAPI document (`intermediary/openapi-ops.json`) stays true to
//! `src/ops.rs`: every route `ops::configure` registers is documented, nothing under `/v1/ops`
//! is documented that ops.rs lacks, and every operation documents a success and a 401. Reads
//! files only; no service runs.

use serde_json::Value;
use std::collections::BTreeSet;

const SPEC: &str = include_str!("../openapi-ops.json");
const OPS_RS: &str = include_str!("../src/ops.rs");

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("openapi-ops.json is JSON")
}

/// `/v1/x/{id:[0-9]+}` -> `/v1/x/{id}`: the placeholder's name only, as OpenAPI writes it.
fn placeholders(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push(c);
            }
            '}' if in_param => {
                in_param = false;
                skipping = false;
                out.push(c);
            }
            ':' if in_param => skipping = true,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

/// `(method, path)` of each `.route("<path>", web::<method>()` in `source`. Every `.route(`
/// must have that shape (one line each), so a route written otherwise fails loudly instead of
/// going unchecked.
fn registered_routes(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for line in source.lines() {
        let Some(at) = line.find(".route(") else { continue };
        let rest = &line[at + ".route(".len()..];
        let parsed =
            rest.strip_prefix('"').and_then(|r| r.split_once('"')).and_then(|(path, r)| {
                let method =
                    r.trim_start().strip_prefix(',')?.trim_start().strip_prefix("web::")?;
                let (method, _) = method.split_once("()")?;
                Some((method.to_string(), placeholders(path)))
            });
        let (method, path) =
            parsed.unwrap_or_else(|| panic!("not `.route(\"<path>\", web::<method>()`: {line}"));
        assert!(METHODS.contains(&method.as_str()), "{path}: unknown method {method}");
        assert!(routes.insert((method.clone(), path.clone())), "{method} {path} registered twice");
    }
    routes
}

/// `(method, path)` of every operation in the document.
fn documented_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_object().expect("paths is an object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item is an object").keys() {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn is_openapi_3_0_3() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(spec["info"]["title"], "CBDC commercial bank operations API");
    assert_eq!(spec["info"]["version"], "1");
}

#[test]
fn the_route_scan_finds_the_known_routes() {
    let routes = registered_routes(OPS_RS);
    for known in [
        ("post", "/v1/ops/customers"),
        ("get", "/v1/ops/wallets/{wallet_id}"),
        ("post", "/v1/ops/wallets/{wallet_id}/fund"),
        ("delete", "/v1/ops/wallets/{wallet_id}/link"),
    ] {
        let known = (known.0.to_string(), known.1.to_string());
        assert!(routes.contains(&known), "{known:?} not found in ops.rs: {routes:?}");
    }
}

#[test]
fn documents_exactly_the_routes_of_ops_rs() {
    let registered = registered_routes(OPS_RS);
    let documented: BTreeSet<_> = documented_routes(&spec())
        .into_iter()
        .filter(|(_, path)| path.starts_with("/v1/ops/") || path == "/v1/ops")
        .collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&registered).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi-ops.json: {undocumented:?}");
    assert!(unknown.is_empty(), "openapi-ops.json documents routes ops.rs lacks: {unknown:?}");
}

#[test]
fn every_operation_answers_a_success_and_a_401_and_errors_as_problems() {
    let spec = spec();
    for (method, path) in documented_routes(&spec) {
        let op = &spec["paths"][&path][&method];
        let responses =
            op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no 2xx");
        assert!(responses.contains_key("401"), "{method} {path}: no 401");
        for (status, response) in responses {
            if status.starts_with('2') {
                continue;
            }
            let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/Problem",
                "{method} {path} {status}: not a problem"
            );
        }
    }
}

#[test]
fn money_moving_routes_take_an_idempotency_key_and_answer_like_payments() {
    let spec = spec();
    for path in ["/v1/ops/wallets/{wallet_id}/fund", "/v1/ops/wallets/{wallet_id}/defund"] {
        let op = &spec["paths"][path]["post"];
        let parameters = op["parameters"].as_array().expect("parameters");
        let key = parameters
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path}: no Idempotency-Key"));
        assert_eq!(key["in"], "header", "{path}");
        assert_eq!(key["required"], true, "{path}");
        for status in ["200", "202", "422"] {
            assert!(op["responses"].get(status).is_some(), "{path}: no {status}");
        }
        let location = op["responses"]["202"]["headers"].get("Location");
        assert!(location.is_some(), "{path}: no Location on 202");
    }
}
