//! The HTTP API over the application layer (`app`): routes registered through utoipa-actix-web,
//! so the OpenAPI contract in `api-spec/openapi.json` is generated from the routes that serve.
//! Handlers parse a request, call `app`, and render its answer or its error as problem details.

pub mod http;
