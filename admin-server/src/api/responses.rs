//! Answers without a JSON body of their own: `201 Created` with the new object, `204`.

use salvo::http::StatusCode;
use salvo::oapi::{self, EndpointOutRegister, ToSchema};
use salvo::prelude::*;
use serde::Serialize;

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
