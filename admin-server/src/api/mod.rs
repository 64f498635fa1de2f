//! The admin REST API (salvo). Every route but login and bootstrap needs a valid admin
//! session (`Authorization: Bearer <token>`). Errors are `{"error": {"type": …, "message": …}}`
//! with the matching status, never internals; the OpenAPI document is generated from the
//! handlers and served at `/admin/openapi.json`.

mod auth;
mod keys;
mod mappings;
mod reports;
mod users;
mod views;

use crate::login::{LoginService, SessionCheckError};
use crate::ops::{AdminOps, OpsError};
use ccp_core::domain::Admin;
use ccp_core::secret::SecretString;
use salvo::http::StatusCode;
use salvo::oapi::{self, EndpointOutRegister, ToSchema};
use salvo::prelude::*;
use serde::Serialize;
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

/// An error answer: `{"error": {"type": …, "message": …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiFailure {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or expired session",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the admin store is unavailable; try again",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            message,
        )
    }

    /// The shape every error status gets, whoever produced it (salvo's own 400/404/405
    /// included, through the catcher).
    fn for_status(status: StatusCode) -> Self {
        let (kind, message) = match status.as_u16() {
            400 => (
                "invalid_request_error",
                "the request could not be parsed: check the JSON body, path and query parameters",
            ),
            401 => ("authentication_error", "invalid or expired session"),
            403 => ("permission_error", "not allowed"),
            404 => ("not_found_error", "no such resource"),
            405 => ("invalid_request_error", "method not allowed on this path"),
            413 => ("request_too_large", "the request body is too large"),
            415 => (
                "invalid_request_error",
                "the body must be JSON (Content-Type: application/json)",
            ),
            429 => ("rate_limit_error", "too many requests"),
            s if s < 500 => ("invalid_request_error", "the request was refused"),
            503 => ("unavailable", "the admin store is unavailable; try again"),
            _ => ("api_error", "internal error"),
        };
        Self::new(status, kind, message)
    }
}

impl From<OpsError> for ApiFailure {
    fn from(err: OpsError) -> Self {
        match err {
            OpsError::Invalid(message) => Self::invalid(message),
            OpsError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("{what} not found"),
            ),
            OpsError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, "conflict_error", message)
            }
            OpsError::Unavailable { what, source } => {
                tracing::error!(error = %source, "{what} failed during an admin request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("{what} is unavailable; try again"),
                )
            }
        }
    }
}

impl From<ccp_core::store::StoreError> for ApiFailure {
    fn from(err: ccp_core::store::StoreError) -> Self {
        OpsError::from(err).into()
    }
}

#[async_trait]
impl Writer for ApiFailure {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(self.status);
        res.render(Json(ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
            },
        }));
    }
}

impl EndpointOutRegister for ApiFailure {
    fn register(components: &mut oapi::Components, operation: &mut oapi::Operation) {
        for (status, what) in [
            (
                StatusCode::BAD_REQUEST,
                "Malformed request (body, path or query)",
            ),
            (
                StatusCode::UNAUTHORIZED,
                "Not logged in, or the session ended",
            ),
            (StatusCode::FORBIDDEN, "Not allowed"),
            (StatusCode::NOT_FOUND, "No such resource"),
            (StatusCode::CONFLICT, "Clashes with the current state"),
            (StatusCode::UNPROCESSABLE_ENTITY, "Breaks a validation rule"),
            (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins"),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot answer",
            ),
        ] {
            operation.responses.insert(
                status.as_str(),
                oapi::Response::new(what)
                    .add_content("application/json", ErrorBody::to_schema(components)),
            );
        }
    }
}

/// A `201 Created` answer with a JSON body.
#[derive(Debug)]
pub struct Created<T>(pub T);

#[async_trait]
impl<T: Serialize + Send> Writer for Created<T> {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(StatusCode::CREATED);
        res.render(Json(self.0));
    }
}

impl<T: ToSchema> EndpointOutRegister for Created<T> {
    fn register(components: &mut oapi::Components, operation: &mut oapi::Operation) {
        operation.responses.insert(
            "201",
            oapi::Response::new("Created")
                .add_content("application/json", T::to_schema(components)),
        );
    }
}

/// A `204 No Content` answer.
#[derive(Debug)]
pub struct NoContent;

#[async_trait]
impl Writer for NoContent {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(StatusCode::NO_CONTENT);
    }
}

impl EndpointOutRegister for NoContent {
    fn register(_components: &mut oapi::Components, operation: &mut oapi::Operation) {
        operation
            .responses
            .insert("204", oapi::Response::new("Done; no content"));
    }
}

pub(crate) fn api(depot: &Depot) -> Result<Arc<AdminApi>, ApiFailure> {
    depot
        .obtain::<Arc<AdminApi>>()
        .cloned()
        .map_err(|_| ApiFailure::unavailable())
}

/// The logged-in admin and the shared state.
pub(crate) fn session(depot: &Depot) -> Result<(Arc<AdminApi>, Admin), ApiFailure> {
    let admin = depot
        .obtain::<Admin>()
        .cloned()
        .map_err(|_| ApiFailure::unauthorized())?;
    Ok((api(depot)?, admin))
}

/// Refuses query parameters a listing does not know (a typo would otherwise silently widen
/// the result).
pub(crate) fn known_params(req: &Request, known: &[&str]) -> Result<(), ApiFailure> {
    match req.queries().keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!(
                "unknown query parameter {:?}; known: {}",
                unknown.chars().take(64).collect::<String>(),
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The audit actor of an admin.
pub(crate) fn actor(admin: &Admin) -> String {
    format!("admin:{}", admin.id)
}

/// Puts the shared state into every request's depot.
struct Inject(Arc<AdminApi>);

#[async_trait]
impl Handler for Inject {
    async fn handle(
        &self,
        _req: &mut Request,
        depot: &mut Depot,
        _res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        depot.inject(Arc::clone(&self.0));
    }
}

/// Lets a request through only with a valid session; the admin goes into the depot.
#[handler]
async fn require_admin(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let outcome = match (api(depot), token) {
        (Ok(api), Some(token)) => api.login.authenticate(&token).await.map_err(|e| match e {
            SessionCheckError::Unauthorized => ApiFailure::unauthorized(),
            SessionCheckError::Unavailable(_) => ApiFailure::unavailable(),
        }),
        (Err(e), _) => Err(e),
        (_, None) => Err(ApiFailure::unauthorized()),
    };
    match outcome {
        Ok((admin, _claims)) => {
            depot.inject(admin);
        }
        Err(failure) => {
            failure.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

/// Gives every error answer that has no body yet (salvo's own 400, 404, 405, 415) the
/// error shape, and a 405 its `Allow` header.
struct ShapeErrors {
    allow: Arc<AllowTable>,
}

#[async_trait]
impl Handler for ShapeErrors {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if status == StatusCode::METHOD_NOT_ALLOWED
            && let Some(methods) = self.allow.methods(req.uri().path())
            && let Ok(value) = salvo::http::HeaderValue::from_str(methods)
        {
            res.headers_mut().insert(salvo::http::header::ALLOW, value);
        }
        ApiFailure::for_status(status).write(req, depot, res).await;
        ctrl.skip_rest();
    }
}

/// The methods each documented path template answers, for `Allow` headers.
#[derive(Debug, Default)]
struct AllowTable(Vec<(Vec<String>, String)>);

impl AllowTable {
    fn from_doc(doc: &oapi::OpenApi) -> Self {
        let rows = doc
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods: Vec<String> = item
                    .operations
                    .keys()
                    .map(|m| format!("{m:?}").to_uppercase())
                    .collect();
                (segments, methods.join(", "))
            })
            .collect();
        Self(rows)
    }

    /// The methods of the template `path` matches (`{…}` matches any one segment).
    fn methods(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')));
            matches.then_some(methods.as_str())
        })
    }
}

/// The OpenAPI document of `routes`: short schema names, the bearer scheme on every
/// operation, request bodies marked required.
fn document(routes: &Router) -> oapi::OpenApi {
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
fn published(doc: &oapi::OpenApi) -> serde_json::Value {
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

struct ServeDoc(Arc<serde_json::Value>);

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

/// Refuses input no handler should see: a JSON body that is not an object (serde would read
/// a struct from an array too), and NUL characters in the query or anywhere in the body
/// (PostgreSQL cannot store them in text, so they would surface as a database error).
#[handler]
async fn well_formed_input(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let refuse =
        |message: &str| ApiFailure::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
    let mut problem = None;
    if req
        .queries()
        .iter_all()
        .any(|(k, vs)| k.contains('\0') || vs.iter().any(|v| v.contains('\0')))
    {
        problem = Some(refuse("query parameters must not contain NUL (U+0000)"));
    }
    let is_json = req
        .content_type()
        .is_some_and(|m| m.subtype() == salvo::http::mime::JSON);
    if problem.is_none() && is_json {
        let body = req.payload().await.cloned().unwrap_or_default();
        let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| b != b'{') {
            problem = Some(refuse("the body must be a JSON object"));
        } else if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
            && holds_nul(&value)
        {
            problem = Some(refuse("the body must not contain NUL (U+0000)"));
        }
    }
    if let Some(failure) = problem {
        failure.write(req, depot, res).await;
        ctrl.skip_rest();
    }
}

/// Whether any string or key in a JSON value holds a NUL character.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
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
            .push(reports::routes()),
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
