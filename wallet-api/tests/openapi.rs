//! The OpenAPI document (`wallet-api/openapi.json`) stays true to the API: every route that
//! `routes.rs` registers is documented and nothing else is; request schemas describe exactly
//! what the Rust types accept and response schemas exactly what they produce; and the docs
//! routes serve the document and Swagger UI.

use actix_web::App;
use actix_web::http::{StatusCode, header};
// Aliased: a plain `test` import would shadow the `#[test]` attribute.
use actix_web::test as web_test;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use wallet_api::model::{
    Balance, CreatePaymentRequest, Custody, HistoryEntry, HistoryPage, Limits, LoginRequest,
    NetworkInfo, OpenWalletRequest, PaymentRequest, PaymentRequestView, PaymentStatus, Problem,
    Receipt, SignedPaymentRequest, TokenResponse, Wallet, WalletClass, WalletList,
};

const SPEC: &str = include_str!("../openapi.json");
const ROUTES_RS: &str = include_str!("../src/routes.rs");

/// The routes `docs::routes` adds, documented alongside the API's (`/docs` only redirects).
const DOCS_ROUTES: [(&str, &str); 2] = [("get", "/v1/openapi/wallet.json"), ("get", "/docs/")];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("openapi.json is JSON")
}

/// A path's registration in `routes.rs`: `resource("<path>", "<Allow>")` followed by its
/// `.route(web::<method>()...)` calls, each on one line.
#[derive(Debug)]
struct Registered {
    path: String,
    allow: String,
    methods: Vec<String>,
}

fn registered(source: &str) -> Vec<Registered> {
    let mut out = Vec::new();
    let starts: Vec<usize> = source.match_indices("resource(\"").map(|(at, _)| at).collect();
    for (i, &start) in starts.iter().enumerate() {
        let text = &source[start..starts.get(i + 1).copied().unwrap_or(source.len())];
        let mut quoted = text.split('"');
        let path = quoted.nth(1).expect("a path").to_string();
        let allow = quoted.nth(1).expect("an Allow list").to_string();
        let methods: Vec<String> = text
            .match_indices(".route(web::")
            .map(|(at, _)| {
                let rest = &text[at + ".route(web::".len()..];
                let method = rest.split_once("()").expect("`web::<method>()`").0;
                assert!(METHODS.contains(&method), "{path}: unknown method {method}");
                method.to_string()
            })
            .collect();
        assert!(!methods.is_empty(), "{path}: no `.route(web::<method>()` on one line");
        out.push(Registered { path, allow, methods });
    }
    out
}

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
fn is_openapi_3_0() {
    let spec = spec();
    let version = spec["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.0."), "openapi is {version}, not 3.0.x");
}

#[test]
fn documents_exactly_the_registered_routes() {
    let resources = registered(ROUTES_RS);
    // Guards the scan itself: ten paths, eleven operations today.
    assert!(resources.len() >= 10, "only {} resources found in routes.rs", resources.len());
    let mut routes = BTreeSet::new();
    for resource in &resources {
        let allow: Vec<String> = resource.methods.iter().map(|m| m.to_uppercase()).collect();
        assert_eq!(resource.allow, allow.join(", "), "{}: Allow != its routes", resource.path);
        for method in &resource.methods {
            routes.insert((method.clone(), resource.path.clone()));
        }
    }
    assert!(routes.len() >= 11, "only {} routes found in routes.rs", routes.len());
    routes.extend(DOCS_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    let documented = documented_routes(&spec());
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unknown.is_empty(), "openapi.json documents routes routes.rs lacks: {unknown:?}");
}

#[test]
fn operations_declare_security_problems_and_idempotency() {
    let spec = spec();
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let security = op["security"].as_array().expect("every operation states security");
            let open =
                path == "/v1/auth/token" || path.starts_with("/docs") || path.contains("openapi");
            assert_eq!(security.is_empty(), open, "{method} {path}: security {security:?}");
            for (status, response) in op["responses"].as_object().expect("responses") {
                let response = resolve(&spec, response);
                if status.starts_with('2') {
                    continue;
                }
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{method} {path} {status}: not a problem"
                );
            }
            let moves_money = method == "post" && path.ends_with("payments");
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            let idempotent = parameters.iter().any(|p| {
                let p = resolve(&spec, p);
                p["in"] == "header" && p["name"] == "Idempotency-Key" && p["required"] == true
            });
            assert_eq!(idempotent, moves_money, "{method} {path}: Idempotency-Key");
            if !open {
                assert!(op["responses"]["401"].is_object(), "{method} {path}: no 401");
                assert!(op["responses"]["403"].is_object(), "{method} {path}: no 403");
            }
            if method == "post" && !open {
                assert!(op["responses"]["413"].is_object(), "{method} {path}: no 413");
                assert!(op["responses"]["415"].is_object(), "{method} {path}: no 415");
            }
            for parameter in &parameters {
                let parameter = resolve(&spec, parameter);
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().expect("a name");
                    assert!(path.contains(&format!("{{{name}}}")), "{path}: no {{{name}}}");
                }
            }
        }
    }
}

/// Follows a local `$ref` (and the first `allOf` member) to the object it names.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    if let Some(reference) = value["$ref"].as_str() {
        let mut target = spec;
        for part in reference.strip_prefix("#/").expect("a local $ref").split('/') {
            target = &target[part];
        }
        assert!(!target.is_null(), "dangling {reference}");
        return resolve(spec, target);
    }
    if let Some(first) = value["allOf"].get(0) {
        return resolve(spec, first);
    }
    value
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// A value of a schema, good enough for serde (which checks shapes, and ids' hex).
fn sample(spec: &Value, property: &Value, all: bool) -> Value {
    let property = resolve(spec, property);
    match property["type"].as_str() {
        Some("integer") => Value::from(1),
        Some("boolean") => Value::from(true),
        Some("string") => match (property["enum"].get(0), property["pattern"].as_str()) {
            (Some(first), _) => first.clone(),
            (None, Some("^[0-9a-fA-F]{32}$")) => Value::from("11".repeat(16)),
            (None, Some("^[0-9a-fA-F]{64}$")) => Value::from("ab".repeat(32)),
            (None, Some(_)) => Value::from("00"),
            (None, None) => Value::from("x"),
        },
        Some("array") => Value::Array(vec![sample(spec, &property["items"], all)]),
        Some("object") => {
            let properties = property["properties"].as_object().expect("properties");
            let required: BTreeSet<&str> = property["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut object = serde_json::Map::new();
            for (name, value) in properties {
                if all || required.contains(name.as_str()) {
                    object.insert(name.clone(), sample(spec, value, all));
                }
            }
            Value::Object(object)
        }
        other => panic!("no sample for a property of type {other:?}"),
    }
}

fn parses<T: DeserializeOwned>(spec: &Value, name: &str) {
    let schema = schema(spec, name);
    assert_eq!(schema["additionalProperties"], false, "{name}: requests refuse unknown fields");
    for all in [false, true] {
        let example = sample(spec, schema, all);
        if let Err(e) = serde_json::from_value::<T>(example.clone()) {
            panic!("{name}: the schema's sample {example} does not parse: {e}");
        }
    }
}

#[test]
fn request_schemas_are_what_the_routes_accept() {
    let spec = spec();
    parses::<LoginRequest>(&spec, "LoginRequest");
    parses::<OpenWalletRequest>(&spec, "OpenWalletRequest");
    parses::<PaymentRequest>(&spec, "PaymentRequest");
    parses::<SignedPaymentRequest>(&spec, "SignedPaymentRequest");
    parses::<CreatePaymentRequest>(&spec, "CreatePaymentRequest");
}

/// Every property of `value` (what Rust serializes) is in `schema`, and the other way round,
/// recursively; every field is always present (`null` when empty), so all are required.
fn matches_schema(spec: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(spec, schema);
    match value {
        Value::Object(object) => {
            let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{at}"));
            let documented: BTreeSet<&String> = properties.keys().collect();
            let produced: BTreeSet<&String> = object.keys().collect();
            assert_eq!(documented, produced, "{at}: properties");
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let produced: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(required, produced, "{at}: required");
            for (name, field) in object {
                let property = &properties[name];
                if field.is_null() {
                    let nullable = property["nullable"] == true;
                    assert!(nullable, "{at}.{name}: null but not nullable");
                } else {
                    matches_schema(spec, property, field, &format!("{at}.{name}"));
                }
            }
        }
        Value::Array(items) => {
            assert_eq!(schema["type"], "array", "{at}");
            for item in items {
                matches_schema(spec, &schema["items"], item, &format!("{at}[]"));
            }
        }
        Value::String(text) => {
            assert_eq!(schema["type"], "string", "{at}");
            if let Some(options) = schema["enum"].as_array() {
                assert!(options.contains(value), "{at}: {text} not in {options:?}");
            }
        }
        Value::Number(_) => assert_eq!(schema["type"], "integer", "{at}"),
        Value::Bool(_) => assert_eq!(schema["type"], "boolean", "{at}"),
        Value::Null => unreachable!("nulls are checked by their parent"),
    }
}

fn produces<T: Serialize>(spec: &Value, name: &str, values: &[T]) {
    for value in values {
        let json = serde_json::to_value(value).expect("serializable");
        matches_schema(spec, schema(spec, name), &json, name);
    }
}

fn wallet(custody: Custody, class: WalletClass) -> Wallet {
    Wallet {
        wallet_id: "11".repeat(16),
        bank_id: 1,
        class,
        custody,
        public_key: "ab".repeat(32),
        tier: 1,
        status: "active".to_string(),
        linked: true,
        balance_minor: 5,
    }
}

fn receipt(status: PaymentStatus, committed: bool) -> Receipt {
    Receipt {
        tx_id: "22".repeat(16),
        status,
        from_wallet: "11".repeat(16),
        to_wallet: "33".repeat(16),
        amount_minor: 5,
        height: committed.then_some(3),
        timestamp_ms: committed.then_some(1_700_000_000_000),
        rejection: (status == PaymentStatus::Failed).then(|| "insufficient_funds".to_string()),
        status_url: format!("/v1/payments/{}", "22".repeat(16)),
    }
}

#[test]
fn response_schemas_are_what_the_routes_answer() {
    let spec = spec();
    let token = TokenResponse {
        access_token: "t".to_string(),
        token_type: "Bearer".to_string(),
        expires_in: 900,
        role: "customer".to_string(),
    };
    produces(&spec, "TokenResponse", &[token]);
    let wallets = [
        wallet(Custody::Custodial, WalletClass::Retail),
        wallet(Custody::SelfCustody, WalletClass::Merchant),
    ];
    produces(&spec, "Wallet", &wallets);
    produces(&spec, "WalletList", &[WalletList { wallets: wallets.to_vec() }]);
    let limits = Limits {
        holding_limit_minor: 1,
        holdings_minor: 1,
        holding_remaining_minor: 1,
        per_payment_limit_minor: 1,
        daily_outflow_limit_minor: 1,
        outflow_today_minor: 1,
        outflow_remaining_minor: 1,
    };
    let balances = [
        Balance { wallet: wallets[0].clone(), limits: Some(limits), height: 3 },
        Balance { wallet: wallets[1].clone(), limits: None, height: 3 },
    ];
    produces(&spec, "Balance", &balances);
    produces(
        &spec,
        "Receipt",
        &[
            receipt(PaymentStatus::Committed, true),
            receipt(PaymentStatus::Pending, false),
            receipt(PaymentStatus::Failed, false),
        ],
    );
    let network = NetworkInfo {
        chain_id: "c".to_string(),
        bank_id: 1,
        height: 2,
        recommended_expiry_height: 102,
    };
    produces(&spec, "NetworkInfo", &[network]);
    let entry = |direction: &str, counterparty: Option<String>| HistoryEntry {
        tx_id: "22".repeat(16),
        height: 3,
        timestamp_ms: 1,
        direction: direction.to_string(),
        amount_minor: 5,
        counterparty_wallet: counterparty,
        kind: "transfer".to_string(),
    };
    let pages = [
        HistoryPage {
            entries: vec![entry("credit", Some("33".repeat(16))), entry("debit", None)],
            next_cursor: Some("3".to_string()),
        },
        HistoryPage { entries: vec![], next_cursor: None },
    ];
    produces(&spec, "HistoryPage", &pages);
    let view = |paid: Option<String>| PaymentRequestView {
        payment_request_id: "44".repeat(16),
        payee_wallet: "11".repeat(16),
        amount_minor: 5,
        reference: "r".to_string(),
        status: if paid.is_some() { "paid" } else { "open" }.to_string(),
        paid_tx_id: paid,
        qr_payload: "cbdc:pay?".to_string(),
    };
    produces(&spec, "PaymentRequestView", &[view(None), view(Some("22".repeat(16)))]);
    let problem = Problem {
        kind: "https://cbdc.example/problems/x".to_string(),
        title: "x".to_string(),
        status: 400,
        code: "x".to_string(),
        detail: "d".to_string(),
    };
    produces(&spec, "Problem", &[problem]);
}

#[test]
fn enums_match_the_serde_names() {
    let spec = spec();
    let custody = vec![json!(Custody::Custodial), json!(Custody::SelfCustody)];
    assert_eq!(schema(&spec, "Custody")["enum"], Value::Array(custody));
    let class = vec![json!(WalletClass::Retail), json!(WalletClass::Merchant)];
    assert_eq!(schema(&spec, "WalletClass")["enum"], Value::Array(class));
    let status = vec![
        json!(PaymentStatus::Pending),
        json!(PaymentStatus::Committed),
        json!(PaymentStatus::Failed),
    ];
    assert_eq!(schema(&spec, "PaymentStatus")["enum"], Value::Array(status));
}

fn header_of<B>(response: &actix_web::dev::ServiceResponse<B>, name: header::HeaderName) -> String {
    let value = response.headers().get(&name).unwrap_or_else(|| panic!("no {name} header"));
    value.to_str().expect("an ASCII header").to_string()
}

/// The body of a 200 answer to `GET uri`, as text.
macro_rules! get_text {
    ($app:expr, $uri:expr) => {{
        let request = web_test::TestRequest::get().uri($uri).to_request();
        let response = web_test::call_service($app, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", $uri);
        String::from_utf8(web_test::read_body(response).await.to_vec()).expect("UTF-8")
    }};
}

#[actix_web::test]
async fn serves_the_document_and_swagger_ui() {
    let extra = [("operator", "/v1/openapi/operator.json")];
    let app =
        web_test::init_service(App::new().configure(|cfg| wallet_api::docs::routes(cfg, &extra)))
            .await;

    let response = web_test::call_service(
        &app,
        web_test::TestRequest::get().uri("/v1/openapi/wallet.json").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CONTENT_TYPE), "application/json");
    let served: Value = serde_json::from_slice(&web_test::read_body(response).await).expect("JSON");
    assert_eq!(served, spec());

    let page = get_text!(&app, "/docs/");
    assert!(page.to_lowercase().contains("swagger"), "not Swagger UI: {page}");
    // The page's initializer lists the wallet document first, then the extra ones.
    let script = get_text!(&app, "/docs/swagger-initializer.js");
    let wallet = script.find("/v1/openapi/wallet.json").expect("the wallet document");
    let operator = script.find("/v1/openapi/operator.json").expect("the extra document");
    assert!(wallet < operator, "initializer: {script}");

    let response =
        web_test::call_service(&app, web_test::TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header_of(&response, header::LOCATION), "/docs/");
}
