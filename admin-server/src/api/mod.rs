//! The admin REST API (salvo). Every route but login and bootstrap needs a valid admin
//! session (`Authorization: Bearer <token>`). Errors are `{"error": {"type": …, "message": …}}`
//! with the matching status, never internals; the OpenAPI document is generated from the
//! handlers and served at `/admin/openapi.json`.

mod audit;
mod auth;
mod error;
mod guards;
mod keys;
mod mappings;
mod middleware;
mod openapi;
mod reports;
mod responses;
mod users;
mod views;

pub use error::{ApiFailure, ErrorBody, ErrorDetail};
pub(crate) use guards::known_params;
use guards::{AllowTable, ShapeErrors, well_formed_input};
use middleware::{Inject, require_admin};
pub(crate) use middleware::{actor, api, session};
use openapi::{ServeDoc, document, published};
pub use responses::{Created, NoContent};

use crate::login::LoginService;
use crate::ops::AdminOps;
use ccp_core::secret::SecretString;
use salvo::oapi::{self};
use salvo::prelude::*;
use std::sync::Arc;

/// What the handlers share.
#[derive(Debug)]
pub struct AdminApi {
    pub ops: AdminOps,
    pub login: LoginService,
    /// Lets `POST /admin/auth/bootstrap` create the first admin; `None` turns it off.
    pub bootstrap_secret: Option<SecretString>,
    /// Count login failures against the `X-Forwarded-For` address (behind a load balancer).
    pub trust_forwarded_for: bool,
}

/// The admin routes, with the OpenAPI document at `/admin/openapi.json`.
pub fn router(api: Arc<AdminApi>) -> Router {
    routes_and_doc(api).0
}

fn routes_and_doc(api: Arc<AdminApi>) -> (Router, oapi::OpenApi) {
    let routes = Router::with_path("admin").push(auth::public_routes()).push(
        Router::new()
            .hoop(require_admin)
            .push(auth::routes())
            .push(users::routes())
            .push(keys::routes())
            .push(mappings::routes())
            .push(reports::routes())
            .push(audit::routes()),
    );
    let doc = document(&routes);
    let router = Router::new()
        .hoop(Inject(api))
        .hoop(well_formed_input)
        .push(routes)
        .push(Router::with_path("admin/openapi.json").get(ServeDoc(Arc::new(published(&doc)))));
    (router, doc)
}

/// The whole service: routes, the error shape for every error, and CORS for the console
/// origin only (no CORS headers at all when none is configured).
pub fn service(api: Arc<AdminApi>, console_origin: Option<&str>) -> Service {
    let (router, doc) = routes_and_doc(api);
    let shape = ShapeErrors {
        allow: Arc::new(AllowTable::from_doc(&doc)),
    };
    let mut service = Service::new(router).catcher(salvo::catcher::Catcher::default().hoop(shape));
    if let Some(origin) = console_origin {
        let cors = salvo::cors::Cors::new()
            .allow_origin(vec![origin])
            .allow_methods(vec![
                salvo::http::Method::GET,
                salvo::http::Method::POST,
                salvo::http::Method::PATCH,
                salvo::http::Method::DELETE,
            ])
            .allow_headers(vec!["authorization", "content-type"])
            .max_age(600)
            .into_handler();
        service = service.hoop(cors);
    }
    service
}
