//! Which representation a report or caseload answers with: JSON, or CSV (`text/csv`) when the
//! `Accept` header prefers it or the path ends in `.csv`. Errors are problem+json whatever was
//! asked for. The CSV file itself is made by `app::export`; this module only chooses, and sends
//! the file with its headers.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use app::AppError;
use app::export::{CsvFile, CsvOptions};

/// The media type of every CSV answer.
pub const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// What a route answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// What a route offers: JSON or CSV by `Accept` (JSON when both are as welcome), or CSV only
/// (a `.csv` path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    JsonOrCsv,
    Csv,
}

/// How much `accept` (an `Accept` header's value) welcomes `media` (`type/subtype`), 0 to 1:
/// the quality of the most specific range that matches (RFC 9110, section 12.5.1); 1 when
/// there is no header. A range that cannot be read is passed over.
fn quality(accept: Option<&str>, media: &str) -> f32 {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return 1.0;
    };
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if name == media {
            3
        } else if name == format!("{kind}/*") {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        let mut q = Some(1.0);
        for parameter in parts {
            if let Some((key, value)) = parameter.split_once('=')
                && key.trim().eq_ignore_ascii_case("q")
            {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q));
            }
        }
        let Some(q) = q else { continue };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The format `offer` answers a request with `accept` in.
///
/// # Errors
/// 406 when the header welcomes nothing the route offers.
fn choose(accept: Option<&str>, offer: Offer) -> Result<Format, ApiError> {
    let csv = quality(accept, "text/csv");
    match offer {
        Offer::Csv if csv > 0.0 => Ok(Format::Csv),
        Offer::Csv => Err(ApiError::NotAcceptable(
            "this path answers with text/csv, which the Accept header does not allow; \
             ask without the .csv suffix for JSON"
                .to_owned(),
        )),
        Offer::JsonOrCsv => {
            let json = quality(accept, "application/json");
            if json == 0.0 && csv == 0.0 {
                Err(ApiError::NotAcceptable(
                    "this answers with application/json or text/csv, and the Accept header \
                     allows neither"
                        .to_owned(),
                ))
            } else if csv > json {
                Ok(Format::Csv)
            } else {
                Ok(Format::Json)
            }
        }
    }
}

/// The format a request is answered in: a path ending in `.csv` offers CSV only, any other
/// JSON or CSV.
///
/// # Errors
/// 406 when its `Accept` header welcomes nothing the route offers.
pub fn negotiate(req: &HttpRequest) -> Result<Format, ApiError> {
    let offer = if req.path().ends_with(".csv") {
        Offer::Csv
    } else {
        Offer::JsonOrCsv
    };
    let values: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect();
    let accept = (!values.is_empty()).then(|| values.join(","));
    choose(accept.as_deref(), offer)
}

/// The answer in the format [`negotiate`] chooses: the JSON of `json` or the file of `csv`,
/// whichever is awaited (the other is never started).
///
/// # Errors
/// 406 as [`negotiate`] says; the application layer's refusal of the read.
pub async fn answer<T: Serialize>(
    req: &HttpRequest,
    json: impl Future<Output = Result<T, AppError>>,
    csv: impl Future<Output = Result<CsvFile, AppError>>,
) -> Result<HttpResponse, ApiError> {
    Ok(match negotiate(req)? {
        Format::Json => json_response(&json.await.map_err(ApiError::query)?),
        Format::Csv => csv_response(csv.await.map_err(ApiError::query)?),
    })
}

/// Declares a read that answers JSON or CSV: the route (its documentation, name, path and JSON
/// body type) and its `.csv` twin (documentation, name, path), which answers CSV only; the
/// tag, parameters and problem responses both document; and how both are served: given the
/// state, the caller and the routes' other extractors (named, with their types), some `let`s,
/// then the application layer's calls for the JSON and the CSV file, answered through
/// [`answer`].
macro_rules! negotiated_get {
    (
        tag = $tag:literal,
        $(#[doc = $doc:literal])*
        $name:ident, $path:literal, $body:ty,
        $(#[doc = $csv_doc:literal])*
        $csv_name:ident, $csv_path:literal,
        params($($params:tt)*),
        errors = $errors:ident,
        $serve:tt
    ) => {
        negotiated_get!(@route
            [$(#[doc = $doc])*] $name, $path, $tag, [$($params)*],
            (status = 200, content(($body = "application/json"), (String = "text/csv"))), $errors,
            $serve
        );
        negotiated_get!(@route
            [$(#[doc = $csv_doc])*] $csv_name, $csv_path, $tag, [$($params)*],
            (status = 200, content_type = "text/csv", body = String), $errors,
            $serve
        );
    };
    (@route
        [$($doc:tt)*] $name:ident, $path:literal, $tag:literal, [$($params:tt)*],
        $ok:tt, $errors:ident,
        {
            serve($state:ident, $caller:ident, $($arg:ident: $ty:ty),* $(,)?);
            $(let $pat:pat = $init:expr;)*
            json: $json:expr,
            csv: $csv:expr $(,)?
        }
    ) => {
        $($doc)*
        #[utoipa::path(
            tag = $tag,
            security(("bearer" = [])),
            params($($params)*),
            responses($ok, $errors)
        )]
        #[get($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            req: HttpRequest,
            $($arg: $ty),*
        ) -> Result<HttpResponse, ApiError> {
            let $state: &AppState = &state;
            let $caller: &Principal = &caller.0;
            $(let $pat = $init;)*
            answer(&req, $json, $csv).await
        }
    };
}
pub(super) use negotiated_get;

/// How a CSV answer is written.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CsvParams {
    /// For a CSV answer: `false` leaves out the `#` lines at the top of the file (what the
    /// figures are: rule versions, period, filters, as of which log position) and the empty
    /// line after them, leaving a plain RFC 4180 table. The same facts are always given in
    /// the `Casebook-*` headers. Default `true`.
    comments: Option<bool>,
}

impl CsvParams {
    /// The options for `app::export`.
    pub fn options(&self) -> CsvOptions {
        CsvOptions {
            comments: self.comments.unwrap_or(CsvOptions::default().comments),
        }
    }
}

/// The header that carries a note of a CSV file: `rules_version` is `Casebook-Rules-Version`.
pub fn header_name(note: &str) -> String {
    let words: Vec<String> = note
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    format!("Casebook-{}", words.join("-"))
}

/// A CSV file as the answer: `text/csv; charset=utf-8`, to be saved under its name, with each
/// of its notes as a `Casebook-*` header.
pub fn csv_response(file: CsvFile) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, TEXT_CSV))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.filename),
        ))
        .insert_header((header::VARY, "Accept"));
    for (note, value) in &file.metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(header_name(note)),
            HeaderValue::from_str(value),
        ) {
            response.insert_header((name, value));
        }
    }
    response.body(file.bytes)
}

/// A JSON answer of a route that could also have answered CSV.
pub fn json_response(value: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::VARY, "Accept"))
        .json(value)
}

/// The headers every CSV answer carries, documented on each operation that can give one.
const CSV_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Disposition",
        "CSV answers: `attachment` with a file name made of the report and its period.",
    ),
    (
        "Casebook-As-Of-Position",
        "CSV answers: the log position the figures are as of (`as_of.position` in JSON). Every \
         `# name: value` note at the top of the file is also a `Casebook-*` header: \
         `rules_version` is `Casebook-Rules-Version`, `from` is `Casebook-From`.",
    ),
    (
        "Casebook-As-Of-Recorded-At",
        "CSV answers: when that event was recorded (RFC 3339), when the figures have applied one.",
    ),
    (
        "Casebook-As-Of-Behind",
        "CSV answers: how many events of the log the figures have still to apply.",
    ),
];

/// Documents the CSV answers' headers on every operation whose 200 answer can be CSV.
pub fn document_csv_headers(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, Type, header::HeaderBuilder, schema::Object};
    for item in api.paths.paths.values_mut() {
        let Some(operation) = item.get.as_mut() else {
            continue;
        };
        let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") else {
            continue;
        };
        if !ok.content.contains_key("text/csv") {
            continue;
        }
        for (name, description) in CSV_HEADERS {
            let header = HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::String)))
                .description(Some(*description))
                .build();
            ok.headers.insert((*name).to_owned(), RefOr::T(header));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_default_and_csv_is_chosen_when_preferred() {
        let choose = |accept: Option<&str>| choose(accept, Offer::JsonOrCsv).ok();
        assert_eq!(choose(None), Some(Format::Json));
        assert_eq!(choose(Some("")), Some(Format::Json));
        assert_eq!(choose(Some("*/*")), Some(Format::Json));
        assert_eq!(choose(Some("application/json")), Some(Format::Json));
        assert_eq!(choose(Some("text/csv")), Some(Format::Csv));
        assert_eq!(choose(Some("TEXT/CSV; charset=utf-8")), Some(Format::Csv));
        assert_eq!(choose(Some("text/*")), Some(Format::Csv));
        assert_eq!(
            choose(Some("application/json;q=0.5, text/csv")),
            Some(Format::Csv)
        );
        assert_eq!(
            choose(Some("text/csv;q=0.4, application/json")),
            Some(Format::Json)
        );
        // A browser's: both only through */*, as welcome, so JSON.
        assert_eq!(
            choose(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Some(Format::Json)
        );
        // The most specific range decides: text/csv is refused though */* is welcome.
        assert_eq!(choose(Some("*/*, text/csv;q=0")), Some(Format::Json));
        assert_eq!(
            choose(Some("*/*;q=0.1, text/*;q=0, text/csv")),
            Some(Format::Csv)
        );
    }

    #[test]
    fn an_accept_that_allows_neither_is_not_acceptable() {
        for accept in [
            "application/xml",
            "text/html",
            "application/problem+json",
            "application/json;q=0, text/csv;q=0",
            "*/*;q=0",
            "text/csv;q=2",
        ] {
            assert!(
                matches!(
                    choose(Some(accept), Offer::JsonOrCsv),
                    Err(ApiError::NotAcceptable(_))
                ),
                "{accept}"
            );
        }
    }

    #[test]
    fn a_csv_path_answers_csv_unless_the_accept_header_refuses_it() {
        let choose = |accept: Option<&str>| choose(accept, Offer::Csv).ok();
        assert_eq!(choose(None), Some(Format::Csv));
        assert_eq!(choose(Some("*/*")), Some(Format::Csv));
        assert_eq!(choose(Some("text/csv")), Some(Format::Csv));
        assert_eq!(choose(Some("application/json")), None);
        assert_eq!(choose(Some("text/csv;q=0, */*")), None);
    }

    #[test]
    fn a_note_is_carried_by_a_header_of_its_own() {
        assert_eq!(header_name("rules_version"), "Casebook-Rules-Version");
        assert_eq!(header_name("as_of_position"), "Casebook-As-Of-Position");
        assert_eq!(header_name("from"), "Casebook-From");
    }
}
