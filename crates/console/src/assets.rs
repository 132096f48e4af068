//! The NHS.UK frontend's stylesheet and icons, built into the binary (see
//! `vendor/nhsuk-frontend-10.6.1/SOURCE.md`), served with a long cache life: their paths carry
//! the version.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

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

/// The same stylesheet, compressed (`gzip -9n`): 29 KB on the wire instead of 271 KB.
const CSS_GZIP: &[u8] = vendored!("nhsuk-frontend.min.css.gz");

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

/// Whether the request's `Accept-Encoding` takes gzip: its own entry's weight, or else `*`'s,
/// above zero (RFC 9110 §12.5.3; a weight that does not read counts as zero).
fn accepts_gzip(req: &HttpRequest) -> bool {
    let mut gzip = None;
    let mut any = None;
    for coding in req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let weight = parts
            .find_map(|p| {
                let (key, value) = p.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok().filter(|q| q.is_finite()))
            })
            .map_or(1.0, |q| q.unwrap_or(0.0));
        if name.eq_ignore_ascii_case("gzip") {
            gzip = Some(weight);
        } else if name == "*" {
            any = Some(weight);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// The stylesheet, compressed for a browser that takes gzip.
pub(crate) async fn stylesheet(req: HttpRequest) -> HttpResponse {
    let (body, encoded) = if accepts_gzip(&req) {
        (CSS_GZIP, true)
    } else {
        (CSS, false)
    };
    let mut response = immutable("text/css; charset=utf-8", body);
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("accept-encoding"),
    );
    if encoded {
        headers.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    response
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_compressed_stylesheet_is_the_vendored_one() {
        let mut gzip = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        gzip.stdin
            .take()
            .expect("stdin")
            .write_all(CSS_GZIP)
            .expect("written");
        let out = gzip.wait_with_output().expect("gzip ran");
        assert!(out.status.success());
        assert!(out.stdout == CSS, "run gzip -9n on the stylesheet again");
    }

    #[test]
    fn gzip_is_sent_only_to_those_who_take_it() {
        let asks = |value: &str| {
            accepts_gzip(
                &TestRequest::default()
                    .insert_header((header::ACCEPT_ENCODING, value))
                    .to_http_request(),
            )
        };
        assert!(asks("gzip, deflate, br"));
        assert!(asks("br;q=1.0, GZIP;q=0.5"));
        assert!(asks("*"));
        assert!(!asks("br"));
        assert!(!asks("gzip;q=0"));
        assert!(!asks("gzip;Q=0"));
        assert!(!asks("gzip;q=0, *"), "gzip's own refusal wins over *");
        assert!(!asks("gzip;q=nan"));
        assert!(asks("gzip;q=0.001, br"));
        assert!(!asks("identity"));
        assert!(!accepts_gzip(&TestRequest::default().to_http_request()));
    }
}
