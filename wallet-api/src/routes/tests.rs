//! The HTTP layer against the in-memory backend: every refusal has its status and code and
//! never reaches the backend; good input reaches it in the documented shape.

use super::*;
use crate::testkit::{
    CUSTOMER_TOKEN, KNOWN_TX, OPERATOR_TOKEN, PAY_FAILED, PAY_PENDING, PAY_REJECTED, TestBank,
    WALLET,
};
use actix_web::App;
use actix_web::test::{self as web_test, TestRequest};
use cbdc_ledger::{BankId, Encode, Leg, SigningKey, TxBody};
use serde_json::{Value, json};

struct Answer {
    status: u16,
    headers: header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(&name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Sends `req` after `edit` changed its headers (what `TestRequest` cannot express).
async fn send_edited(
    bank: &web::Data<TestBank>,
    req: TestRequest,
    edit: impl FnOnce(&mut header::HeaderMap),
) -> Answer {
    let app =
        web_test::init_service(App::new().app_data(bank.clone()).configure(configure::<TestBank>))
            .await;
    let mut req = req.to_request();
    edit(req.headers_mut());
    let response = web_test::call_service(&app, req).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = web_test::read_body(response).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer { status, headers, body }
}

async fn send_to(bank: &web::Data<TestBank>, req: TestRequest) -> Answer {
    send_edited(bank, req, |_| {}).await
}

/// Sends to a fresh backend and checks that refused input never reached it.
async fn refused(req: TestRequest) -> Answer {
    let bank = web::Data::new(TestBank::new());
    let answer = send_to(&bank, req).await;
    assert_eq!(bank.calls().authorized, 0, "refused input reached the backend");
    answer
}

async fn send(req: TestRequest) -> Answer {
    send_to(&web::Data::new(TestBank::new()), req).await
}

#[track_caller]
fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (status, Some(code)),
        "{:?}",
        answer.body
    );
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/problem+json");
    assert_eq!(answer.body["status"], status);
    assert_eq!(answer.body["title"], code);
    assert_eq!(answer.body["type"], format!("https://cbdc.example/problems/{code}"));
    assert!(answer.body["detail"].is_string());
}

fn get(uri: &str) -> TestRequest {
    TestRequest::get()
        .uri(uri)
        .insert_header((header::AUTHORIZATION, format!("Bearer {CUSTOMER_TOKEN}")))
}

fn post(uri: &str, body: &str) -> TestRequest {
    TestRequest::post()
        .uri(uri)
        .insert_header((header::AUTHORIZATION, format!("Bearer {CUSTOMER_TOKEN}")))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_string())
}

fn with_key(req: TestRequest, key: &str) -> TestRequest {
    req.insert_header((IDEMPOTENCY_KEY_HEADER, key))
}

fn pay_uri() -> String {
    format!("/v1/wallets/{}/payments", WALLET.to_hex())
}

fn payment_body(amount: &str) -> String {
    format!(r#"{{"to_wallet":"{}","amount_minor":{amount}}}"#, "99".repeat(16))
}

fn signed(kind: TxKind) -> String {
    let key = SigningKey::from_seed(&[7; 32]).unwrap();
    let body = TxBody { id: TxId([5; 16]), expiry_height: 100, kind };
    let tx = body.sign(crate::testkit::CHAIN_ID, &[&key]);
    json!({ "transaction": hex::encode(tx.encode()) }).to_string()
}

fn transfer(legs: usize, amount_minor: u64) -> TxKind {
    let leg = Leg {
        from: WALLET,
        to: WalletId([0x99; 16]),
        amount: Amount::from_minor(amount_minor).unwrap(),
    };
    TxKind::Transfer { legs: vec![leg; legs] }
}

#[actix_web::test]
async fn login_needs_no_token_and_bounds_its_input() {
    let login = |body: &str| {
        TestRequest::post()
            .uri("/v1/auth/token")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body.to_string())
    };
    let ok = send(login(r#"{"username":"alice","password":"alice-password"}"#)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["access_token"], CUSTOMER_TOKEN);
    assert_eq!(ok.header(header::CACHE_CONTROL), "no-store");
    assert_problem(
        &send(login(r#"{"username":"alice","password":"nope"}"#)).await,
        401,
        "invalid_credentials",
    );
    assert_problem(&refused(login(r#"{"username":"","password":"x"}"#)).await, 400, "invalid_body");
    let long =
        format!(r#"{{"username":"alice","password":"{}"}}"#, "p".repeat(MAX_PASSWORD_BYTES + 1));
    assert_problem(&refused(login(&long)).await, 400, "invalid_body");
    assert_problem(&refused(login(r#"{"username":"alice"}"#)).await, 400, "invalid_body");
    assert_problem(
        &refused(login(r#"{"username":"a","password":"b","otp":1}"#)).await,
        400,
        "unknown_field",
    );
}

#[actix_web::test]
async fn every_other_route_needs_a_customer_token() {
    let routes = [
        ("GET", "/v1/network".to_string()),
        ("GET", "/v1/wallets".to_string()),
        ("POST", "/v1/wallets".to_string()),
        ("GET", format!("/v1/wallets/{}", WALLET.to_hex())),
        ("POST", pay_uri()),
        ("POST", "/v1/payments".to_string()),
        ("GET", format!("/v1/payments/{}", KNOWN_TX.to_hex())),
        ("GET", format!("/v1/wallets/{}/history", WALLET.to_hex())),
        ("POST", format!("/v1/wallets/{}/payment-requests", WALLET.to_hex())),
        ("GET", format!("/v1/payment-requests/{}", "44".repeat(16))),
    ];
    let authorizations = [
        (None, 401, "unauthorized"),
        (Some("Bearer wrong-token".to_string()), 401, "unauthorized"),
        (Some(format!("Basic {CUSTOMER_TOKEN}")), 401, "unauthorized"),
        (Some("Bearer ".to_string()), 401, "unauthorized"),
        (Some(format!("Bearer {OPERATOR_TOKEN}")), 403, "forbidden"),
    ];
    for (method, uri) in &routes {
        for (authorization, status, code) in &authorizations {
            let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = TestRequest::default()
                .method(method)
                .uri(uri)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header((IDEMPOTENCY_KEY_HEADER, "k"))
                .set_payload(payment_body("1"));
            if let Some(value) = authorization {
                req = req.insert_header((header::AUTHORIZATION, value.as_str()));
            }
            let answer = refused(req).await;
            assert_problem(&answer, *status, code);
        }
    }
    // The scheme is case-insensitive (RFC 7235).
    let lower = TestRequest::get()
        .uri("/v1/wallets")
        .insert_header((header::AUTHORIZATION, format!("bearer {CUSTOMER_TOKEN}")));
    assert_eq!(send(lower).await.status, 200);
}

#[actix_web::test]
async fn unknown_paths_and_methods_are_problems() {
    assert_problem(&refused(get("/v1/nothing")).await, 404, "not_found");
    assert_problem(&refused(get("/v1/wallets/")).await, 404, "not_found");
    let delete = TestRequest::delete().uri("/v1/wallets");
    let answer = refused(delete).await;
    assert_problem(&answer, 405, "method_not_allowed");
    assert_eq!(answer.header(header::ALLOW), "GET, POST");
    let answer = refused(get("/v1/payments")).await;
    assert_problem(&answer, 405, "method_not_allowed");
    assert_eq!(answer.header(header::ALLOW), "POST");
}

#[actix_web::test]
async fn bodies_are_checked_before_anything_else() {
    let cases = [
        ("{", 400, "malformed_json"),
        ("", 400, "malformed_json"),
        (r#"{"to_wallet":"x","amount_minor":1,}"#, 400, "malformed_json"),
        (r#"{"to_wallet":"99","amount_minor":1,"memo":"x"}"#, 400, "unknown_field"),
        (&payment_body(r#""10""#), 400, "invalid_body"),
        (&payment_body("-1"), 400, "invalid_body"),
        (&payment_body("1.5"), 400, "invalid_body"),
        (&payment_body("18446744073709551616"), 400, "invalid_body"),
        (&payment_body("1e3"), 400, "invalid_body"),
        ("[]", 400, "invalid_body"),
        ("null", 400, "invalid_body"),
        (&payment_body("0"), 400, "invalid_amount"),
        (&payment_body("9223372036854775808"), 400, "invalid_amount"),
        (r#"{"to_wallet":"zz","amount_minor":1}"#, 400, "invalid_id"),
        (r#"{"to_wallet":"9999","amount_minor":1}"#, 400, "invalid_id"),
        (&format!(r#"{{"to_wallet":"{}","amount_minor":1}}"#, "9".repeat(34)), 400, "invalid_id"),
        (
            &format!(
                r#"{{"to_wallet":"{}","amount_minor":1,"payment_request_id":"x"}}"#,
                "99".repeat(16)
            ),
            400,
            "invalid_id",
        ),
        (
            &format!(
                r#"{{"to_wallet":"{}","amount_minor":1,"reference":"{}"}}"#,
                "99".repeat(16),
                "r".repeat(141)
            ),
            400,
            "invalid_reference",
        ),
        (
            &format!(
                r#"{{"to_wallet":"{}","amount_minor":1,"reference":"a\nb"}}"#,
                "99".repeat(16)
            ),
            400,
            "invalid_reference",
        ),
    ];
    for (body, status, code) in cases {
        let answer = refused(with_key(post(&pay_uri(), body), "key-1")).await;
        assert_problem(&answer, status, code);
    }
    // The path's wallet id.
    let bad_path = with_key(post("/v1/wallets/not-hex/payments", &payment_body("1")), "k");
    assert_problem(&refused(bad_path).await, 400, "invalid_id");
    assert_problem(&refused(get("/v1/wallets/abcd")).await, 400, "invalid_id");
    assert_problem(&refused(get("/v1/payments/zz")).await, 400, "invalid_id");
    assert_problem(&refused(get("/v1/payment-requests/1234")).await, 400, "invalid_id");
}

#[actix_web::test]
async fn content_types_other_than_json_are_refused() {
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "not a mime"] {
        let req = with_key(post(&pay_uri(), &payment_body("1")), "k")
            .insert_header((header::CONTENT_TYPE, content_type));
        assert_problem(&refused(req).await, 415, "unsupported_media_type");
    }
    let req = with_key(post(&pay_uri(), &payment_body("1")), "k");
    let bank = web::Data::new(TestBank::new());
    let answer = send_edited(&bank, req, |h| drop(h.remove(header::CONTENT_TYPE))).await;
    assert_problem(&answer, 415, "unsupported_media_type");
    // `application/json; charset=utf-8` is JSON.
    let req = with_key(post(&pay_uri(), &payment_body("1")), "k")
        .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"));
    assert_eq!(send(req).await.status, 200);
}

#[actix_web::test]
async fn large_bodies_are_refused_whether_announced_or_streamed() {
    let ten_megabytes = format!(r#"{{"transaction":"{}"}}"#, "0".repeat(10 * 1024 * 1024));
    let announced = with_key(post("/v1/payments", &ten_megabytes), "k");
    assert_problem(&refused(announced).await, 413, "body_too_large");
    let streamed = with_key(post("/v1/payments", &ten_megabytes), "k");
    let bank = web::Data::new(TestBank::new());
    let answer = send_edited(&bank, streamed, |h| drop(h.remove(header::CONTENT_LENGTH))).await;
    assert_problem(&answer, 413, "body_too_large");
    assert_eq!(bank.calls().authorized, 0);
    // Just over the limit, on another route.
    let over = format!(r#"{{"custody":"custodial","x":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
    assert_problem(&refused(post("/v1/wallets", &over)).await, 413, "body_too_large");
}

#[actix_web::test]
async fn payments_need_a_well_formed_idempotency_key() {
    for uri in [pay_uri(), "/v1/payments".to_string()] {
        let body = if uri == "/v1/payments" { signed(transfer(1, 5)) } else { payment_body("1") };
        assert_problem(&refused(post(&uri, &body)).await, 400, "idempotency_key_required");
        let too_long = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
        for key in ["", too_long.as_str(), "tab\there"] {
            let answer = refused(with_key(post(&uri, &body), key)).await;
            assert_problem(&answer, 400, "invalid_idempotency_key");
        }
        let non_ascii = post(&uri, &body).insert_header((
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        ));
        assert_problem(&refused(non_ascii).await, 400, "invalid_idempotency_key");
        let bank = web::Data::new(TestBank::new());
        let twice = send_edited(&bank, with_key(post(&uri, &body), "a"), |h| {
            h.append(
                header::HeaderName::from_static("idempotency-key"),
                header::HeaderValue::from_static("b"),
            );
        })
        .await;
        assert_problem(&twice, 400, "invalid_idempotency_key");
        let longest = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES);
        assert_eq!(send(with_key(post(&uri, &body), &longest)).await.status, 200);
    }
}

#[actix_web::test]
async fn payment_outcomes_map_to_statuses() {
    let committed = send(with_key(post(&pay_uri(), &payment_body("1")), "k")).await;
    assert_eq!(committed.status, 200, "{:?}", committed.body);
    assert_eq!(committed.body["status"], "committed");
    assert_eq!(committed.body["from_wallet"], WALLET.to_hex());

    let pending =
        send(with_key(post(&pay_uri(), &payment_body(&PAY_PENDING.to_string())), "k")).await;
    assert_eq!(pending.status, 202);
    assert_eq!(pending.body["status"], "pending");
    let status_url = pending.body["status_url"].as_str().unwrap();
    assert!(status_url.starts_with("/v1/payments/"));
    assert_eq!(pending.header(header::LOCATION), status_url);

    let rejected =
        send(with_key(post(&pay_uri(), &payment_body(&PAY_REJECTED.to_string())), "k")).await;
    assert_problem(&rejected, 422, "insufficient_funds");
    let failed =
        send(with_key(post(&pay_uri(), &payment_body(&PAY_FAILED.to_string())), "k")).await;
    assert_problem(&failed, 422, "payment_failed");

    // Backend errors keep their status and code.
    let other = format!("/v1/wallets/{}/payments", "77".repeat(16));
    assert_problem(&send(with_key(post(&other, &payment_body("1")), "k")).await, 404, "not_found");
}

#[actix_web::test]
async fn the_body_hash_ignores_formatting_but_not_content() {
    let bank = web::Data::new(TestBank::new());
    let to = "99".repeat(16);
    let bodies = [
        format!(r#"{{"to_wallet":"{to}","amount_minor":10}}"#),
        format!("{{\n  \"amount_minor\" : 10,\n  \"to_wallet\": \"{to}\"\n}}"),
        format!(r#"{{"to_wallet":"{to}","amount_minor":11}}"#),
    ];
    for body in &bodies {
        let answer = send_to(&bank, with_key(post(&pay_uri(), body), "same-key")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let payments = bank.calls().payments;
    let hashes: Vec<_> = payments.iter().map(|(i, _)| i.body_hash).collect();
    assert!(payments.iter().all(|(i, _)| i.key == "same-key"));
    assert_eq!(hashes[0], hashes[1], "formatting changed the hash");
    assert_ne!(hashes[0], hashes[2], "a different amount kept the hash");
    let expected = body_hash(&PaymentRequest {
        to_wallet: to.clone(),
        amount_minor: 10,
        reference: None,
        payment_request_id: None,
    })
    .unwrap();
    assert_eq!(hashes[0], expected);
    let (_, payment) = &payments[0];
    assert_eq!(
        (payment.from, payment.to, payment.amount_minor),
        (WALLET, WalletId([0x99; 16]), 10)
    );
}

#[actix_web::test]
async fn signed_payments_must_decode_to_one_leg_transfers() {
    let garbage = [
        json!({ "transaction": "zz" }).to_string(),
        json!({ "transaction": "abc" }).to_string(),
        json!({ "transaction": "" }).to_string(),
        json!({ "transaction": "00".repeat(40) }).to_string(),
        signed(TxKind::Mint { bank: BankId(1), amount: Amount::from_minor(5).unwrap() }),
        signed(transfer(2, 5)),
        signed(transfer(0, 5)),
    ];
    for body in &garbage {
        let answer = refused(with_key(post("/v1/payments", body), "k")).await;
        assert_problem(&answer, 400, "invalid_transaction");
    }
    // A trailing byte after a valid encoding.
    let mut valid: Value = serde_json::from_str(&signed(transfer(1, 5))).unwrap();
    let trailing = format!("{}00", valid["transaction"].as_str().unwrap());
    valid["transaction"] = Value::String(trailing);
    let answer = refused(with_key(post("/v1/payments", &valid.to_string()), "k")).await;
    assert_problem(&answer, 400, "invalid_transaction");
    let zero = refused(with_key(post("/v1/payments", &signed(transfer(1, 0))), "k")).await;
    assert_problem(&zero, 400, "invalid_amount");
    assert_problem(
        &refused(with_key(post("/v1/payments", r#"{"tx":"00"}"#), "k")).await,
        400,
        "unknown_field",
    );

    let bank = web::Data::new(TestBank::new());
    let body = signed(transfer(1, 5));
    let answer = send_to(&bank, with_key(post("/v1/payments", &body), "signed-1")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["tx_id"], TxId([5; 16]).to_hex());
    let (idempotency, tx) = bank.calls().signed.pop().unwrap();
    assert_eq!(idempotency.key, "signed-1");
    let request: SignedPaymentRequest = serde_json::from_str(&body).unwrap();
    assert_eq!(idempotency.body_hash, body_hash(&request).unwrap());
    assert_eq!(tx.body.kind, transfer(1, 5));
}

#[actix_web::test]
async fn history_pages_are_bounded() {
    let uri = format!("/v1/wallets/{}/history", WALLET.to_hex());
    for query in [
        "limit=0",
        "limit=101",
        "limit=1000000",
        "limit=abc",
        "limit=-1",
        "limit=",
        "limit=99999999999999",
    ] {
        let answer = refused(get(&format!("{uri}?{query}"))).await;
        assert_problem(&answer, 400, "invalid_page_size");
    }
    for query in ["cursor=abc", "cursor=-1", "cursor=", "cursor=+5", "cursor=99999999999999999999"]
    {
        let answer = refused(get(&format!("{uri}?{query}"))).await;
        assert_problem(&answer, 400, "invalid_cursor");
    }
    assert_problem(&refused(get(&format!("{uri}?limt=5"))).await, 400, "invalid_query");

    let bank = web::Data::new(TestBank::new());
    let first = send_to(&bank, get(&uri)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["entries"].as_array().unwrap().len(), 10);
    assert_eq!(first.body["next_cursor"], Value::Null);
    let page = send_to(&bank, get(&format!("{uri}?limit=3&cursor=8"))).await;
    assert_eq!(page.body["entries"][0]["height"], 7);
    assert_eq!(page.body["next_cursor"], "5");
    let largest = send_to(&bank, get(&format!("{uri}?limit={MAX_PAGE}"))).await;
    assert_eq!(largest.status, 200);
    assert_eq!(
        bank.calls().history,
        vec![(WALLET, None, DEFAULT_PAGE), (WALLET, Some(8), 3), (WALLET, None, MAX_PAGE)]
    );
}

#[actix_web::test]
async fn wallets_open_with_the_right_keys() {
    let key = "AB".repeat(32);
    let cases = [
        (r#"{"custody":"self_custody"}"#.to_string(), "invalid_public_key"),
        (format!(r#"{{"custody":"custodial","public_key":"{key}"}}"#), "invalid_public_key"),
        (r#"{"custody":"self_custody","public_key":"abcd"}"#.to_string(), "invalid_public_key"),
        (r#"{"custody":"other"}"#.to_string(), "invalid_body"),
        (r#"{"custody":"custodial","class":"bank"}"#.to_string(), "invalid_body"),
    ];
    for (body, code) in &cases {
        assert_problem(&refused(post("/v1/wallets", body)).await, 400, code);
    }
    let bank = web::Data::new(TestBank::new());
    let body = format!(r#"{{"custody":"self_custody","public_key":"{key}","class":"retail"}}"#);
    let answer = send_to(&bank, post("/v1/wallets", &body)).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let id = answer.body["wallet_id"].as_str().unwrap();
    assert_eq!(answer.header(header::LOCATION), format!("/v1/wallets/{id}"));
    assert_eq!(bank.calls().opened[0].public_key, Some(key.to_lowercase()));
    let list = send_to(&bank, get("/v1/wallets")).await;
    assert_eq!(list.body["wallets"].as_array().unwrap().len(), 2);
    let balance = send_to(&bank, get(&format!("/v1/wallets/{id}"))).await;
    assert_eq!(balance.status, 200);
    assert_eq!(balance.body["wallet"]["custody"], "self_custody");
}

#[actix_web::test]
async fn receipts_requests_and_network_are_readable() {
    let network = send(get("/v1/network")).await;
    assert_eq!(
        (network.status, network.body["chain_id"].as_str()),
        (200, Some(crate::testkit::CHAIN_ID))
    );
    let receipt = send(get(&format!("/v1/payments/{}", KNOWN_TX.to_hex().to_uppercase()))).await;
    assert_eq!(receipt.status, 200);
    assert_eq!(receipt.body["tx_id"], KNOWN_TX.to_hex());
    assert_problem(
        &send(get(&format!("/v1/payments/{}", "01".repeat(16)))).await,
        404,
        "not_found",
    );

    let uri = format!("/v1/wallets/{}/payment-requests", WALLET.to_hex());
    let created = send(post(&uri, r#"{"amount_minor":1250,"reference":"invoice-7"}"#)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["payment_request_id"].as_str().unwrap();
    assert_eq!(created.header(header::LOCATION), format!("/v1/payment-requests/{id}"));
    let view = send(get(&format!("/v1/payment-requests/{id}"))).await;
    assert_eq!((view.status, view.body["reference"].as_str()), (200, Some("invoice-7")));
    let bad = [
        (r#"{"amount_minor":0,"reference":"r"}"#.to_string(), "invalid_amount"),
        (r#"{"amount_minor":1,"reference":""}"#.to_string(), "invalid_reference"),
        (format!(r#"{{"amount_minor":1,"reference":"{}"}}"#, "é".repeat(71)), "invalid_reference"),
        (r#"{"amount_minor":1}"#.to_string(), "invalid_body"),
    ];
    for (body, code) in &bad {
        assert_problem(&refused(post(&uri, body)).await, 400, code);
    }
}

#[test]
fn problems_render_like_every_other_service() {
    let response = problem(&ApiError::new(200, "odd", "a backend bug"));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = problem(&ApiError::unavailable("the node is down"));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn json_config_answers_the_same_problems() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code, reason = "only parsed")]
        n: u32,
    }
    async fn handler(_: web::Json<Body>) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }
    let app = web_test::init_service(
        App::new()
            .app_data(json_config())
            .app_data(payload_config())
            .route("/x", web::post().to(handler)),
    )
    .await;
    let cases = [
        (r#"{"n":1}"#.to_string(), "application/json", 204, None),
        ("{".to_string(), "application/json", 400, Some("malformed_json")),
        (r#"{"n":1,"m":2}"#.to_string(), "application/json", 400, Some("unknown_field")),
        (r#"{"n":-1}"#.to_string(), "application/json", 400, Some("invalid_body")),
        (r#"{"n":1}"#.to_string(), "text/plain", 415, Some("unsupported_media_type")),
        ("1".repeat(MAX_BODY_BYTES + 1), "application/json", 413, Some("body_too_large")),
    ];
    for (body, content_type, status, code) in cases {
        let req = TestRequest::post()
            .uri("/x")
            .insert_header((header::CONTENT_TYPE, content_type))
            .set_payload(body)
            .to_request();
        let response = web_test::call_service(&app, req).await;
        assert_eq!(response.status().as_u16(), status);
        let body: Value =
            serde_json::from_slice(&web_test::read_body(response).await).unwrap_or_default();
        assert_eq!(body["code"].as_str(), code);
    }
}

#[actix_web::test]
async fn query_and_path_configs_answer_problems() {
    #[derive(serde::Deserialize)]
    struct Query {
        #[allow(dead_code, reason = "only parsed")]
        n: u32,
    }
    async fn handler(_: web::Path<u64>, _: web::Query<Query>) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }
    let app = web_test::init_service(
        App::new()
            .app_data(query_config())
            .app_data(path_config())
            .route("/x/{id}", web::get().to(handler)),
    )
    .await;
    let cases = [
        ("/x/1?n=2", 204, None),
        ("/x/a?n=2", 400, Some("invalid_id")),
        ("/x/1?n=-2", 400, Some("invalid_query")),
    ];
    for (uri, status, code) in cases {
        let response = web_test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(response.status().as_u16(), status, "{uri}");
        let body: Value =
            serde_json::from_slice(&web_test::read_body(response).await).unwrap_or_default();
        assert_eq!(body["code"].as_str(), code, "{uri}");
    }
}
