//! The OpenAPI document, generated from the handlers and served at `/admin/openapi.json`.

use salvo::oapi::{self};
use salvo::prelude::*;
use std::sync::Arc;

/// The OpenAPI document of `routes`: short schema names, the bearer scheme on every
/// operation, request bodies marked required.
pub(super) fn document(routes: &Router) -> oapi::OpenApi {
    oapi::naming::set_namer(oapi::naming::FlexNamer::new().short_mode(true));
    let mut doc = oapi::OpenApi::new("ClaudeCodeProxy admin API", env!("CARGO_PKG_VERSION"))
        .add_security_scheme(
            "bearer",
            oapi::security::SecurityScheme::Http(oapi::security::Http::new(
                oapi::security::HttpAuthScheme::Bearer,
            )),
        )
        .security([oapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )])
        .merge_router(routes);
    for item in doc.paths.values_mut() {
        for operation in item.operations.values_mut() {
            if let Some(body) = operation.request_body.as_mut() {
                body.required = Some(oapi::Required::True);
            }
        }
    }
    doc
}

/// The document as served. Two repairs of what salvo generates: an optional field that
/// refers to a schema comes out as `allOf: [{type: null}, {$ref}]`, which nothing can match,
/// and becomes `anyOf`; login and bootstrap need no session, so their `security` is empty.
pub(super) fn published(doc: &oapi::OpenApi) -> serde_json::Value {
    fn repair(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let nullable_ref =
                    map.get("allOf")
                        .and_then(|all| all.as_array())
                        .is_some_and(|all| {
                            all.len() == 2 && all[0] == serde_json::json!({"type": "null"})
                        });
                if nullable_ref && let Some(all) = map.remove("allOf") {
                    map.insert("anyOf".to_owned(), all);
                }
                map.values_mut().for_each(repair);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(repair),
            _ => {}
        }
    }
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    repair(&mut json);
    for path in ["/admin/auth/login", "/admin/auth/bootstrap"] {
        if let Some(operation) = json
            .pointer_mut(&format!("/paths/{}/post", path.replace('/', "~1")))
            .and_then(|o| o.as_object_mut())
        {
            operation.insert("security".to_owned(), serde_json::json!([]));
        }
    }
    json
}

pub(super) struct ServeDoc(pub(super) Arc<serde_json::Value>);

#[async_trait]
impl Handler for ServeDoc {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        res.render(Json(&*self.0));
    }
}
