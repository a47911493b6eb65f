//! The OpenAPI document (`central-bank/openapi.json`) stays true to the API: every route that
//! `api.rs` registers is documented and nothing else is, every kind of request has a schema that
//! the service's own deserializer accepts, and the docs routes serve the document and Swagger UI.

use actix_web::App;
use actix_web::http::{StatusCode, header};
// Aliased: a plain `test` import would shadow the `#[test]` attribute.
use actix_web::test as web_test;
use central_bank::workflow::NewRequest;
use serde_json::Value;
use std::collections::BTreeSet;

const SPEC: &str = include_str!("../openapi.json");
const API_RS: &str = include_str!("../src/api.rs");
const WORKFLOW_RS: &str = include_str!("../src/workflow.rs");

/// The routes `docs::routes` adds, documented alongside the API's (`/docs` only redirects).
const DOCS_ROUTES: [(&str, &str); 2] = [("get", "/v1/openapi.json"), ("get", "/docs/")];

/// `NewRequest` kinds that must always be there (guards the scan of `workflow.rs`).
const KNOWN_KINDS: [&str; 7] = [
    "mint",
    "burn",
    "set_supply_cap",
    "set_bank_quota",
    "set_officers",
    "admit_bank",
    "suspend_bank",
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("openapi.json is JSON")
}

/// `(method, path)` for each `.route("<path>", web::<method>()...)` in `source`.
fn registered_routes(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (at, _) in source.match_indices(".route(\"") {
        let rest = &source[at + ".route(\"".len()..];
        let end = rest.find('"').expect("a closing quote after the route's path");
        let path = &rest[..end];
        let rest = rest[end + 1..].trim_start_matches([',', ' ', '\n']);
        let method = rest
            .strip_prefix("web::")
            .and_then(|r| r.split_once("()"))
            .map(|(m, _)| m)
            .unwrap_or_else(|| panic!("route {path}: expected `web::<method>()`"));
        assert!(METHODS.contains(&method), "route {path}: unknown method {method}");
        routes.insert((method.to_string(), path.to_string()));
    }
    routes
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

/// `SetBankQuota` -> `set_bank_quota`, as `rename_all = "snake_case"` does.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The variants of `enum NewRequest` in `workflow.rs`, snake_cased.
fn new_request_variants() -> BTreeSet<String> {
    let start = WORKFLOW_RS.find("pub enum NewRequest {").expect("NewRequest in workflow.rs");
    let body = &WORKFLOW_RS[start..];
    let body = &body[..body.find("\n}").expect("the end of NewRequest")];
    body.lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter_map(|line| line.split([' ', '{', ',']).next())
        .map(snake_case)
        .collect()
}

/// A value for a schema property, good enough for serde (which checks shapes, not contents).
fn sample(property: &Value) -> Value {
    match property["type"].as_str() {
        Some("integer") => Value::from(1),
        Some("string") => property["enum"].get(0).cloned().unwrap_or_else(|| Value::from("x")),
        Some("array") => Value::Array(vec![sample(&property["items"])]),
        other => panic!("no sample for a property of type {other:?}"),
    }
}

#[test]
fn is_openapi_3_0() {
    let spec = spec();
    let version = spec["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.0."), "openapi is {version}, not 3.0.x");
}

#[test]
fn documents_exactly_the_registered_routes() {
    let mut registered = registered_routes(API_RS);
    // Guards the scan itself: `spawn` registers ten routes today.
    assert!(registered.len() >= 10, "only {} routes found in api.rs", registered.len());
    registered.extend(DOCS_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    let documented = documented_routes(&spec());
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&registered).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unknown.is_empty(), "openapi.json documents routes api.rs lacks: {unknown:?}");
}

#[test]
fn every_operation_answers_errors_as_problems() {
    let spec = spec();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(op.get("security").is_some(), "{method} {path}: no security");
            for (status, response) in op["responses"].as_object().expect("responses") {
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
}

#[test]
fn every_request_kind_has_a_schema_the_service_accepts() {
    let spec = spec();
    let new_request = &spec["components"]["schemas"]["NewRequest"];
    assert_eq!(new_request["discriminator"]["propertyName"], "kind");
    let mapping = new_request["discriminator"]["mapping"].as_object().expect("a mapping");
    let kinds = new_request_variants();
    for known in KNOWN_KINDS {
        assert!(kinds.contains(known), "{known} not found in NewRequest: {kinds:?}");
    }
    assert_eq!(mapping.keys().cloned().collect::<BTreeSet<_>>(), kinds, "mapping != NewRequest");
    let one_of = new_request["oneOf"].as_array().expect("oneOf");
    assert_eq!(one_of.len(), kinds.len(), "one oneOf schema per kind");
    for kind in &kinds {
        let reference = mapping[kind].as_str().expect("a $ref");
        assert!(one_of.iter().any(|s| s["$ref"] == reference), "{kind}: {reference} not in oneOf");
        let name = reference.strip_prefix("#/components/schemas/").expect("a local $ref");
        let schema = &spec["components"]["schemas"][name];
        assert_eq!(schema["properties"]["kind"]["enum"], serde_json::json!([kind.as_str()]));
        // The required fields alone must make a request the service parses (every field is
        // required in Rust, and `deny_unknown_fields` refuses any the schema adds).
        let mut example = serde_json::Map::new();
        for field in schema["required"].as_array().expect("required fields") {
            let field = field.as_str().expect("a field name");
            example.insert(field.to_string(), sample(&schema["properties"][field]));
        }
        let parsed: NewRequest = serde_json::from_value(Value::Object(example))
            .unwrap_or_else(|e| panic!("{kind}: the schema's required fields do not parse: {e}"));
        assert_eq!(parsed.kind_name(), kind);
    }
}

fn header_of<B>(response: &actix_web::dev::ServiceResponse<B>, name: header::HeaderName) -> String {
    let value = response.headers().get(&name).unwrap_or_else(|| panic!("no {name} header"));
    value.to_str().expect("an ASCII header").to_string()
}

#[actix_web::test]
async fn serves_the_document_and_swagger_ui() {
    let app = web_test::init_service(App::new().configure(central_bank::docs::routes)).await;

    let response = web_test::call_service(
        &app,
        web_test::TestRequest::get().uri("/v1/openapi.json").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CONTENT_TYPE), "application/json");
    let served: Value = serde_json::from_slice(&web_test::read_body(response).await).expect("JSON");
    assert_eq!(served, spec());

    let response =
        web_test::call_service(&app, web_test::TestRequest::get().uri("/docs/").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header_of(&response, header::CONTENT_TYPE);
    assert!(content_type.starts_with("text/html"), "content type {content_type}");
    let page = String::from_utf8(web_test::read_body(response).await.to_vec()).expect("UTF-8");
    assert!(page.to_lowercase().contains("swagger"), "not Swagger UI: {page}");

    // The page's initializer points Swagger UI at the document served above.
    let response = web_test::call_service(
        &app,
        web_test::TestRequest::get().uri("/docs/swagger-initializer.js").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let script = String::from_utf8(web_test::read_body(response).await.to_vec()).expect("UTF-8");
    assert!(script.contains("/v1/openapi.json"), "initializer: {script}");

    let response =
        web_test::call_service(&app, web_test::TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header_of(&response, header::LOCATION), "/docs/");
}
