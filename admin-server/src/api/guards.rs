//! Input guards in front of every handler (well-formed JSON bodies, no NUL, known query
//! parameters) and the error shape for salvo's own errors (400, 404, 405 with `Allow`, 415).

use super::ApiFailure;
use salvo::http::StatusCode;
use salvo::oapi::{self};
use salvo::prelude::*;
use std::sync::Arc;

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

/// Gives every error answer that has no body yet (salvo's own 400, 404, 405, 415) the
/// error shape, and a 405 its `Allow` header.
pub(super) struct ShapeErrors {
    pub(super) allow: Arc<AllowTable>,
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
pub(super) struct AllowTable(Vec<(Vec<String>, String)>);

impl AllowTable {
    pub(super) fn from_doc(doc: &oapi::OpenApi) -> Self {
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

/// Refuses input no handler should see: a JSON body that is not an object (serde would read
/// a struct from an array too), and NUL characters in the query or anywhere in the body
/// (PostgreSQL cannot store them in text, so they would surface as a database error).
#[handler]
pub(super) async fn well_formed_input(
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
