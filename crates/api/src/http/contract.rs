//! What the OpenAPI document says each route takes, held for the requests that do not fit it:
//! a path it has with other methods (405 with `Allow`), and query parameters it does not name
//! for that operation (400 naming each). The document is generated from the same
//! registrations that serve, so a route cannot take a parameter the contract does not show.

use std::collections::HashMap;

use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

use super::problem::{ApiError, FieldError};

/// The routes of the OpenAPI document.
pub struct Routes {
    /// Each path, with the methods it has.
    paths: Vec<(ResourceDef, Vec<Method>)>,
    /// The query parameters of each operation, by method and path as written in the document
    /// (and so as actix names the matched pattern).
    query: HashMap<(Method, String), Vec<String>>,
}

impl Routes {
    /// The routes of `api`.
    pub fn of(api: &OpenApi) -> Routes {
        let mut paths = Vec::new();
        let mut query = HashMap::new();
        for (path, item) in &api.paths.paths {
            let mut methods = Vec::new();
            for (method, operation) in operations(item) {
                let names = operation
                    .parameters
                    .iter()
                    .chain(&item.parameters)
                    .flatten()
                    .filter_map(|parameter| match parameter {
                        RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
                        _ => None,
                    })
                    .collect();
                query.insert((method.clone(), path.clone()), names);
                methods.push(method);
            }
            paths.push((ResourceDef::new(path.as_str()), methods));
        }
        Routes { paths, query }
    }

    /// The methods the document has for `path` (none: it has no such path).
    pub fn methods(&self, path: &str) -> Vec<&Method> {
        self.paths
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .flat_map(|(_, methods)| methods)
            .collect()
    }

    /// Whether the query string of a request for `method` on the operation at `pattern` (the
    /// path as the document writes it) names only the parameters that operation takes.
    /// An operation the document does not have is not checked.
    ///
    /// # Errors
    /// 400 naming every parameter (`query.<name>`) it does not take, with those it does.
    pub fn check_query(&self, method: &Method, pattern: &str, query: &str) -> Result<(), ApiError> {
        let Some(known) = self.query.get(&(method.clone(), pattern.to_owned())) else {
            return Ok(());
        };
        let mut errors: Vec<FieldError> = Vec::new();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            let field = format!("query.{name}");
            if !known.iter().any(|k| *k == name) && !errors.iter().any(|e| e.field == field) {
                let message = if known.is_empty() {
                    "this operation takes no query parameters".to_owned()
                } else {
                    format!(
                        "not a parameter of this operation, which takes {}",
                        known.join(", ")
                    )
                };
                errors.push(FieldError { field, message });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(errors))
        }
    }
}

/// The operations of a path, with their methods.
fn operations(item: &PathItem) -> impl Iterator<Item = (Method, &Operation)> {
    [
        (Method::GET, &item.get),
        (Method::PUT, &item.put),
        (Method::POST, &item.post),
        (Method::DELETE, &item.delete),
        (Method::PATCH, &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_the_document_does_not_name_is_refused_naming_each_parameter_once() {
        let routes = Routes::of(&super::super::openapi());
        let caseload = "/api/v1/caseload";
        assert!(routes.check_query(&Method::GET, caseload, "").is_ok());
        assert!(
            routes
                .check_query(&Method::GET, caseload, "limit=5&tag=x&comments=false")
                .is_ok()
        );
        let Err(ApiError::BadRequest { errors, .. }) =
            routes.check_query(&Method::GET, caseload, "limt=5&limt=6&stauts=open&limit=2")
        else {
            panic!("a misspelt parameter was taken");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["query.limt", "query.stauts"]);
        assert!(errors[0].message.contains("limit"), "{}", errors[0].message);
        // An operation with no query parameters names that it has none.
        let Err(ApiError::BadRequest { errors, .. }) =
            routes.check_query(&Method::GET, "/api/v1/me", "x=1")
        else {
            panic!("a parameter of an operation that takes none was taken");
        };
        assert_eq!(
            errors[0].message,
            "this operation takes no query parameters"
        );
        // A path the document does not have is not this check's to refuse.
        assert!(routes.check_query(&Method::GET, "/console", "x=1").is_ok());
        assert_eq!(routes.methods("/api/v1/caseload"), [&Method::GET]);
    }
}
