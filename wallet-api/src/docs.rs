//! The wallet API's documentation: its OpenAPI 3 document (`GET /v1/openapi/wallet.json`, the
//! file `wallet-api/openapi.json` compiled in) and Swagger UI at `/docs/`, which can list other
//! documents of the same server too (the bank adds its operator API's).
//!
//! The document is written by hand next to the handlers in `routes.rs`; `tests/openapi.rs`
//! fails when a route is added there without a path here, or the other way round. Swagger UI's
//! assets are compiled in from the `utoipa-swagger-ui-vendored` crate, so the page works with
//! no internet access. This module must never serve anything but documentation: no state, no
//! authentication.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::{Config, SwaggerUi, Url};

/// The OpenAPI 3.0.3 document, byte for byte as in the repository.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi/wallet.json";

/// The document's name in Swagger UI's selector.
pub const OPENAPI_NAME: &str = "wallet";

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI_JSON)
}

async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}

/// Registers the document, Swagger UI (listing the wallet document first, then each
/// `(name, url)` of `extra`) and the `/docs` redirect.
pub fn routes(cfg: &mut web::ServiceConfig, extra: &[(&'static str, &'static str)]) {
    let urls = std::iter::once(Url::new(OPENAPI_NAME, OPENAPI_PATH))
        .chain(extra.iter().map(|(name, url)| Url::new(name, url)));
    cfg.route(OPENAPI_PATH, web::get().to(openapi))
        .route("/docs", web::get().to(docs_root))
        // The UI loads the documents served elsewhere; SwaggerUi itself serves only its assets.
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new(urls)));
}
