//! The NHS.UK frontend's stylesheet and icons, built into the binary (see
//! `vendor/nhsuk-frontend-10.6.1/SOURCE.md`), served with a long cache life: their paths carry
//! the version.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// The frontend's version, in the stylesheet's path.
pub const FRONTEND_VERSION: &str = "10.6.1";

/// Where pages link the stylesheet.
pub const STYLESHEET: &str = "/console/assets/10.6.1/nhsuk-frontend.min.css";

macro_rules! vendored {
    ($file:literal) => {
        include_bytes!(concat!("../vendor/nhsuk-frontend-10.6.1/", $file))
    };
}

const CSS: &[u8] = vendored!("nhsuk-frontend.min.css");

/// The icons the stylesheet refers to as `/assets/images/<name>`, and the favicon.
const IMAGES: &[(&str, &[u8], &str)] = &[
    (
        "nhsuk-icon-arrow-down.svg",
        vendored!("images/nhsuk-icon-arrow-down.svg"),
        "image/svg+xml",
    ),
    (
        "nhsuk-icon-arrow-up.svg",
        vendored!("images/nhsuk-icon-arrow-up.svg"),
        "image/svg+xml",
    ),
    (
        "nhsuk-icon-arrow-up-down.svg",
        vendored!("images/nhsuk-icon-arrow-up-down.svg"),
        "image/svg+xml",
    ),
    (
        "nhsuk-icon-cross.svg",
        vendored!("images/nhsuk-icon-cross.svg"),
        "image/svg+xml",
    ),
    (
        "favicon.svg",
        vendored!("images/favicon.svg"),
        "image/svg+xml",
    ),
    (
        "favicon.ico",
        vendored!("images/favicon.ico"),
        "image/x-icon",
    ),
];

fn immutable(content_type: &str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

pub(crate) async fn stylesheet() -> HttpResponse {
    immutable("text/css; charset=utf-8", CSS)
}

pub(crate) async fn image(name: web::Path<String>) -> HttpResponse {
    match IMAGES.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, body, content_type)) => immutable(content_type, body),
        None => HttpResponse::NotFound().finish(),
    }
}

pub(crate) async fn favicon() -> HttpResponse {
    image(web::Path::from("favicon.ico".to_owned())).await
}
