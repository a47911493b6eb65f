//! The API's own documentation: the OpenAPI 3 document (`GET /v1/openapi.json`, the file
//! `central-bank/openapi.json` compiled in) and Swagger UI at `/docs/`.
//!
//! The document is written by hand next to the handlers in `api.rs`; `tests/openapi.rs` fails
//! when a route is added there without a path here. Swagger UI's assets are compiled in from the
//! `utoipa-swagger-ui-vendored` crate, so the page works with no internet access.
//! This module must never serve anything but documentation: no state, no authentication.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The OpenAPI 3.0.3 document, byte for byte as in the repository.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI_JSON)
}

async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
}

/// Registers the document, Swagger UI and the `/docs` redirect on an `App`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(OPENAPI_PATH, web::get().to(openapi))
        .route("/docs", web::get().to(docs_root))
        // The UI loads the document served above; SwaggerUi itself serves only its assets.
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new([OPENAPI_PATH])));
}
