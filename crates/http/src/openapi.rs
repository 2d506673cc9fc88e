//! The OpenAPI document's frame: title, security scheme and tags. The paths and
//! schemas come from the handlers' annotations (see routes.rs).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailbridge",
        description = "Server-side synchronization of business applications with Exchange Online, Exchange Server, IMAP/SMTP and CalDAV/CardDAV. Every error answer is {\"error\": {\"code\", \"message\", \"field\"}}."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::ErrorBody, mailbridge_domain::FieldError))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (mbt_...): the system administrator's from <data-dir>/admin.token, or one issued by POST /api/v1/orgs/{org_id}/tokens"))
                    .build(),
            ),
        );
    }
}

/// Prefixes each operation id (the handler's name) with its tag, so that ids are
/// unique across resources as OpenAPI requires: `users_list`, `contacts_list_contacts`.
pub fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default()
                .replace('-', "_");
            if let Some(id) = &op.operation_id
                && !id.starts_with(&tag)
            {
                op.operation_id = Some(format!("{tag}_{id}"));
            }
        }
    }
}
