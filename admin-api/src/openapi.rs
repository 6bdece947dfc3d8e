//! The OpenAPI 3.1 document of the admin API, generated from the handlers' `#[utoipa::path]`
//! annotations and the shapes' `ToSchema` derives, and served without a password at
//! `GET /api/openapi.json` (the UI's typed client is checked against it).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::routes::{info, keys, reports, settings, teams, upstreams};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "llm-quota admin API",
        description = "Keys, quotas, runtime settings, usage and upstreams of an llm-quota \
            gateway. Every route except /api/health and /api/openapi.json needs \
            `Authorization: Bearer <ADMIN_PASSWORD>`. Errors are `{\"error\": \"message\"}`."
    ),
    paths(
        keys::list,
        keys::create,
        keys::show,
        keys::activate,
        keys::deactivate,
        keys::set_quota,
        keys::edit,
        keys::remove,
        keys::usage,
        keys::rotate,
        teams::list,
        teams::create,
        teams::show,
        teams::edit,
        teams::remove,
        reports::usage,
        reports::audit_page,
        settings::show,
        settings::update,
        upstreams::list,
        upstreams::models,
        upstreams::queue,
        info::proxy_info,
        info::health,
    ),
    components(schemas(crate::ErrorBody)),
    modifiers(&AdminPassword),
    tags(
        (name = "keys", description = "API keys, their limits and usage"),
        (name = "teams", description = "teams: one budget shared by several keys"),
        (name = "usage", description = "usage reports over a range of days"),
        (name = "audit", description = "the audit trail of admin changes and alerts"),
        (name = "settings", description = "runtime overrides of the configuration"),
        (name = "upstreams", description = "the Ollama hosts behind the proxy"),
        (name = "info", description = "health and connection help"),
    )
)]
pub struct ApiDoc;

/// Declares the `admin_password` bearer scheme the paths refer to.
struct AdminPassword;

impl Modify for AdminPassword {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_password",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the ADMIN_PASSWORD"))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json`.
pub async fn document_handler() -> Json<Document> {
    Json(document())
}
