//! Reports and caseloads as CSV files that a spreadsheet opens cleanly and an analyst can pivot:
//! one row per cell, the same figures as the JSON answer, and what they are (rule versions,
//! period and filters, the log position they are as of) stated with them.
//!
//! The file is RFC 4180: fields quoted where they hold a comma, a quote or a line break, CRLF
//! line ends, UTF-8. It starts with a byte order mark, which is what makes Excel read UTF-8
//! (without it, an area named "Ynys Môn" opens garbled); LibreOffice, pandas, R and the `csv`
//! crate skip it. Unless asked not to ([`CsvOptions::comments`]), the table is preceded by
//! `# name: value` lines saying what the figures are, then one empty line, so that a file kept
//! or sent on still says which rules made it and how far the log had been applied; in a
//! spreadsheet the empty line keeps the notes out of the table's range, so a pivot table or a
//! filter picks up the table alone. The same facts are in [`CsvFile::metadata`] (HTTP gives
//! them as `Casebook-*` headers), for tools that cannot skip comment lines.
//!
//! A text cell that a spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, a
//! tab or a carriage return: free text such as an area, a service's or a worker's name) is
//! written with a `'` in front, as OWASP advises against CSV injection. Numbers are written as
//! numbers (a negative mean change stays `-1.5`), a suppressed count as an empty cell.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use uuid::Uuid;

use crate::AppError;
use crate::caseload::{CaseloadItem, WorkerLoad};
use crate::freshness::AsOf;
use crate::reports::{BreakdownReport, Comparison, GapReport, OutcomeReport, Share, Suppression};
use crate::snapshots::{ExplainedComparison, ExplainedDifference, SnapshotReport};

/// How a CSV file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Start with `#` lines saying what the figures are, and an empty line (the default).
    pub comments: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { comments: true }
    }
}

/// A CSV file, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvFile {
    /// A name to save it under: ASCII letters, digits, `.` and `-` only.
    pub filename: String,
    /// What the figures are, by name (`rules_version`, `as_of_position`, ...): the comment
    /// lines of the file, in their order. Only names with a value are listed.
    pub metadata: Vec<(&'static str, String)>,
    /// The file itself: UTF-8 with a byte order mark, CRLF line ends.
    pub bytes: Vec<u8>,
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// A cell: text (neutralised against formulas), a number, a truth value, or nothing.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Empty,
}

impl Cell {
    fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }

    fn int(n: Option<i64>) -> Cell {
        n.map_or(Cell::Empty, Cell::Int)
    }

    fn float(x: Option<f64>) -> Cell {
        x.map_or(Cell::Empty, Cell::Float)
    }

    fn opt<T: ToString>(value: Option<T>) -> Cell {
        value.map_or(Cell::Empty, |v| Cell::Text(v.to_string()))
    }

    fn render(&self) -> String {
        match self {
            Cell::Text(text) => neutralise(text),
            Cell::Int(n) => n.to_string(),
            // Rust writes the shortest digits that read back as the same number, never an
            // exponent: what a spreadsheet takes as a number in any English locale.
            Cell::Float(x) => x.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// `text` as a spreadsheet will show it, never as a formula: a `'` in front of a text that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP, "CSV Injection").
pub fn neutralise(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// A file's notes: a title, then named values.
struct Notes {
    title: &'static str,
    metadata: Vec<(&'static str, String)>,
}

impl Notes {
    fn new(title: &'static str) -> Notes {
        Notes {
            title,
            metadata: Vec::new(),
        }
    }

    fn add(&mut self, name: &'static str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.metadata.push((name, value.to_string()));
        }
    }

    fn as_of(&mut self, as_of: &AsOf) {
        self.add("as_of_position", Some(as_of.position));
        self.add("as_of_recorded_at", as_of.recorded_at.map(timestamp));
        self.add("as_of_behind", Some(as_of.behind));
    }

    fn period(&mut self, from: Option<NaiveDate>, to: Option<NaiveDate>) {
        self.add("from", from);
        self.add("to", to);
    }

    fn suppression(&mut self, prefix: Prefix, suppression: &Suppression) {
        let [rules, below, cells] = prefix.names();
        self.add(rules, suppression.rules_version);
        self.add(below, Some(suppression.below));
        self.add(cells, Some(suppression.cells));
    }
}

/// Which report of a comparison notes are about.
#[derive(Clone, Copy)]
enum Prefix {
    None,
    A,
    B,
}

impl Prefix {
    fn names(self) -> [&'static str; 3] {
        match self {
            Prefix::None => [
                "suppression_rules_version",
                "suppression_below",
                "suppression_cells",
            ],
            Prefix::A => [
                "a_suppression_rules_version",
                "a_suppression_below",
                "a_suppression_cells",
            ],
            Prefix::B => [
                "b_suppression_rules_version",
                "b_suppression_below",
                "b_suppression_cells",
            ],
        }
    }
}

/// A time as in the JSON answers: RFC 3339 in UTC.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// When a file was computed, RFC 3339 in UTC to the second (the clock's nanoseconds would only
/// clutter the note).
fn to_the_second(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A note's value on one line of its own that no CSV reader splits (the values are numbers,
/// dates, codes and ids; this is a guard, not an escape).
fn note_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, ',' | '"' | '\r' | '\n') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Writes the file: the byte order mark, the notes (when asked for) and an empty line, the
/// header row, the rows.
fn write(
    notes: Notes,
    header: &[&str],
    rows: &[Vec<Cell>],
    filename: String,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let mut bytes = BOM.to_vec();
    if options.comments {
        bytes.extend_from_slice(format!("# Casebook {}\r\n", notes.title).as_bytes());
        for (name, value) in &notes.metadata {
            bytes.extend_from_slice(format!("# {name}: {}\r\n", note_value(value)).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
    }
    // Every row must have the header's length (the writer refuses one that has not).
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(&mut bytes);
    let written = writer.write_record(header).and_then(|()| {
        rows.iter()
            .try_for_each(|row| writer.write_record(row.iter().map(Cell::render)))
    });
    written
        .and_then(|()| writer.flush().map_err(csv::Error::from))
        .map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("writing a CSV file")))?;
    drop(writer);
    Ok(CsvFile {
        filename: safe_filename(&filename),
        metadata: notes.metadata,
        bytes,
    })
}

/// `name` with anything but ASCII letters, digits, `.` and `-` made a `-`.
fn safe_filename(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The period in a file name: `2025-01-01-2025-12-31`, `from-2025-01-01`, `to-2025-12-31` or
/// `all-time`.
fn period_name(from: Option<NaiveDate>, to: Option<NaiveDate>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => format!("{from}-{to}"),
        (Some(from), None) => format!("from-{from}"),
        (None, Some(to)) => format!("to-{to}"),
        (None, None) => "all-time".to_owned(),
    }
}

/// The columns of the outcome report: one row per figure (and per code of a breakdown).
pub const OUTCOME_COLUMNS: [&str; 6] = ["section", "figure", "code", "band", "value", "suppressed"];

/// One cell of the outcome report.
#[derive(Clone, Debug, PartialEq)]
struct Figure {
    /// Where the JSON has it, as the comparisons name figures (`referrals.by_source.gp.count`,
    /// `measures.wemwbs.paired`).
    path: String,
    section: &'static str,
    figure: String,
    code: String,
    band: String,
    value: Cell,
    suppressed: bool,
}

/// The figures of a report, as they are added.
#[derive(Default)]
struct Figures(Vec<Figure>);

impl Figures {
    /// A figure of the whole (`code` empty), or of a measure (`code` the measure).
    fn push(&mut self, section: &'static str, figure: &str, code: &str, cell: (Cell, bool)) {
        let path = if code.is_empty() {
            format!("{section}.{figure}")
        } else {
            format!("{section}.{code}.{figure}")
        };
        self.push_at(path, section, figure, code, "", cell);
    }

    fn push_at(
        &mut self,
        path: String,
        section: &'static str,
        figure: &str,
        code: &str,
        band: &str,
        cell: (Cell, bool),
    ) {
        let (value, suppressed) = cell;
        self.0.push(Figure {
            path,
            section,
            figure: figure.to_owned(),
            code: code.to_owned(),
            band: band.to_owned(),
            value,
            suppressed,
        });
    }

    /// A measure's band figure: `band_<key>`.
    fn band(&mut self, measure: &str, band: &str, key: &str, cell: (Cell, bool)) {
        let path = format!("measures.{measure}.bands.{band}.{key}");
        let figure = format!("band_{key}");
        self.push_at(path, "measures", &figure, measure, band, cell);
    }

    /// A breakdown: each code's count, then each code's percentage (`<figure>_percent`).
    fn shares(&mut self, section: &'static str, figure: &str, shares: &[Share]) {
        for share in shares {
            let cell = (Cell::int(share.count), share.suppressed);
            let path = format!("{section}.{figure}.{}.count", share.code);
            self.push_at(path, section, figure, &share.code, "", cell);
        }
        let percent = format!("{figure}_percent");
        for share in shares {
            let cell = (Cell::float(share.percent), share.suppressed);
            let path = format!("{section}.{figure}.{}.percent", share.code);
            self.push_at(path, section, &percent, &share.code, "", cell);
        }
    }
}

/// A count's cell: a count is null only when suppressed.
fn count(n: Option<i64>) -> (Cell, bool) {
    (Cell::int(n), n.is_none())
}

/// A count that the rule version may not keep: null because suppressed only where it is
/// `counted`.
fn count_if(n: Option<i64>, counted: bool) -> (Cell, bool) {
    (Cell::int(n), n.is_none() && counted)
}

/// A word among the figures (which way a measure runs, whose scores count): never suppressed.
fn word(text: &str) -> (Cell, bool) {
    (Cell::text(text), false)
}

/// A mean's or percentage's cell: null when suppressed with one of the counts it comes
/// `from`, or when there was nothing to take it over (not suppressed).
fn derived(x: Option<f64>, from: &[Option<i64>]) -> (Cell, bool) {
    (
        Cell::float(x),
        x.is_none() && from.iter().any(Option::is_none),
    )
}

/// The figures of an outcome report, in the order of its JSON.
fn outcome_figures(report: &OutcomeReport) -> Vec<Figure> {
    let mut out = Figures::default();
    let r = &report.referrals;
    out.push("referrals", "total", "", count(r.total));
    out.push("referrals", "people", "", count(r.people));
    out.push("referrals", "accepted", "", count(r.accepted));
    out.push("referrals", "declined", "", count(r.declined));
    out.push("referrals", "redirected", "", count(r.redirected));
    match &r.by_destination {
        Some(by_destination) => out.shares("referrals", "by_destination", by_destination),
        // Not counted under these rules: one empty cell, as the JSON's null.
        None => out.push("referrals", "by_destination", "", (Cell::int(None), false)),
    }
    out.shares("referrals", "by_source", &r.by_source);
    out.shares("referrals", "by_reason", &r.by_reason);
    out.push("referrals", "contacted", "", count(r.contacted));
    let from = [r.total, r.contacted];
    let mean = derived(r.mean_days_to_first_contact, &from);
    out.push("referrals", "mean_days_to_first_contact", "", mean);
    let median = derived(r.median_days_to_first_contact, &from);
    out.push("referrals", "median_days_to_first_contact", "", median);
    let e = &report.episodes;
    out.push("episodes", "episodes", "", count(e.episodes));
    out.push("episodes", "started", "", count(e.started));
    out.push("episodes", "active", "", count(e.active));
    out.push("episodes", "people", "", count(e.people));
    out.push("episodes", "contacts", "", count(e.contacts));
    let mean = derived(e.mean_contacts, &[e.contacts, e.started, e.active]);
    out.push("episodes", "mean_contacts", "", mean);
    let (attended, not_attended) = (e.appointments_attended, e.appointments_not_attended);
    out.push("episodes", "appointments_attended", "", count(attended));
    out.push(
        "episodes",
        "appointments_not_attended",
        "",
        count(not_attended),
    );
    let dna = derived(e.did_not_attend_percent, &[attended, not_attended]);
    out.push("episodes", "did_not_attend_percent", "", dna);
    out.push("episodes", "closed", "", count(e.closed));
    out.shares("episodes", "closed_by_reason", &e.closed_by_reason);
    // Rule versions before baselines were kept leave their figures null, not suppressed.
    let baselines_kept = projector::rules::Rules::load(report.rules_version)
        .is_ok_and(|rules| rules.figures.baselines);
    for m in &report.measures {
        let code = m.measure.as_str();
        out.push("measures", "direction", code, word(&m.direction));
        out.push("measures", "paired", code, count(m.paired));
        let means = [
            ("mean_baseline", m.mean_baseline),
            ("mean_follow_up", m.mean_follow_up),
            ("mean_change", m.mean_change),
            ("mean_improvement", m.mean_improvement),
        ];
        for (figure, mean) in means {
            out.push("measures", figure, code, derived(mean, &[m.paired]));
        }
        let categories = [
            ("improved", m.improved, m.improved_percent),
            ("no_change", m.no_change, m.no_change_percent),
            ("worse", m.worse, m.worse_percent),
        ];
        for (figure, n, _) in categories {
            out.push("measures", figure, code, count(n));
        }
        for (figure, n, percent) in categories {
            let cell = derived(percent, &[m.paired, n]);
            out.push("measures", &format!("{figure}_percent"), code, cell);
        }
        for (figure, n) in [
            ("baselines", m.baselines),
            ("no_follow_up", m.no_follow_up),
            ("awaiting_follow_up", m.awaiting_follow_up),
        ] {
            out.push("measures", figure, code, count_if(n, baselines_kept));
        }
        for band in &m.bands {
            let b = band.code.as_str();
            out.band(code, b, "baseline", count(band.baseline));
            out.band(code, b, "follow_up", count(band.follow_up));
            let percent = derived(band.follow_up_percent, &[m.paired, band.follow_up]);
            out.band(code, b, "follow_up_percent", percent);
        }
    }
    let p = &report.people;
    out.push("people", "paired", "", count(p.paired));
    out.push("people", "improved_on_any", "", count(p.improved_on_any));
    let percent = derived(p.improved_on_any_percent, &[p.paired, p.improved_on_any]);
    out.push("people", "improved_on_any_percent", "", percent);
    out.push(
        "people",
        "evaluation_consent",
        "",
        word(&p.evaluation_consent),
    );
    let excluded = count(p.excluded_without_evaluation_consent);
    out.push(
        "people",
        "excluded_without_evaluation_consent",
        "",
        excluded,
    );
    out.0
}

fn outcome_notes(notes: &mut Notes, report: &OutcomeReport) {
    notes.add("rules_version", Some(report.rules_version));
    notes.suppression(Prefix::None, &report.suppression);
    notes.add(
        "evaluation_consent",
        Some(&report.people.evaluation_consent),
    );
    notes.period(report.from, report.to);
    notes.add("team_id", report.team_id);
    notes.add("source", report.source.as_ref());
    notes.add("reason", report.reason.as_ref());
    notes.as_of(&report.as_of);
}

/// An outcome report's rows: one per figure.
fn outcome_rows(report: &OutcomeReport) -> Vec<Vec<Cell>> {
    outcome_figures(report)
        .into_iter()
        .map(|f| {
            vec![
                Cell::text(f.section),
                Cell::text(f.figure),
                Cell::text(f.code),
                Cell::text(f.band),
                f.value,
                Cell::Bool(f.suppressed),
            ]
        })
        .collect()
}

/// The outcome report as CSV: `section,figure,code,band,value,suppressed`, one row per
/// figure.
///
/// `section` is `referrals`, `episodes`, `measures` or `people`; `figure` is the JSON field's
/// name (`total`, `by_source`, `mean_change`, ...), with `_percent` after a breakdown's name
/// for its shares (`by_source_percent`) and `band_` before a measure's band figures
/// (`band_baseline`, `band_follow_up`, `band_follow_up_percent`); `code` is what a breakdown
/// is by (a source, a reason, a closure reason) or the measure (`wemwbs`), and empty for a
/// figure of the whole; `band` is the band's code for a band figure, else empty; `value` is
/// the number (or, for `direction` and `evaluation_consent`, the word), empty when suppressed,
/// when there was nothing to take a mean or share over, or when the rule version does not keep
/// the figure; `suppressed` is `true` for a figure withheld under the small-number rule.
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn outcome_report(report: &OutcomeReport, options: CsvOptions) -> Result<CsvFile, AppError> {
    let mut notes = Notes::new("outcome report");
    outcome_notes(&mut notes, report);
    let rows = outcome_rows(report);
    let filename = format!("outcomes-{}.csv", period_name(report.from, report.to));
    write(notes, &OUTCOME_COLUMNS, &rows, filename, options)
}

/// The columns of the outcome report broken down by group: the group, then the outcome
/// report's.
pub const BREAKDOWN_COLUMNS: [&str; 8] = [
    "group",
    "group_label",
    "section",
    "figure",
    "code",
    "band",
    "value",
    "suppressed",
];

/// The outcome report broken down by a demographic as CSV:
/// `group,group_label,section,figure,code,band,value,suppressed`, one row per figure of each
/// group, the groups in the report's order (`not_recorded` last).
///
/// `group` is the group's code (`75_84`, `female`, `2`, `L85016`, `not_recorded`) and
/// `group_label` its words; the other columns are the outcome report's (see
/// [`outcome_report`]), with every group's suppression as the JSON has it (the small-number
/// rule, and the complementary rule across the groups).
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn breakdown(report: &BreakdownReport, options: CsvOptions) -> Result<CsvFile, AppError> {
    let by = serde_json::to_value(report.by)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut notes = Notes::new("outcome report by group");
    notes.add("by", Some(&by));
    notes.add("rules_version", Some(report.rules_version));
    notes.suppression(Prefix::None, &report.suppression);
    let first = report.groups.first().map(|g| &g.report);
    let (from, to) = first.map_or((None, None), |r| (r.from, r.to));
    notes.period(from, to);
    if let Some(r) = first {
        notes.add("team_id", r.team_id);
        notes.add("source", r.source.as_ref());
        notes.add("reason", r.reason.as_ref());
    }
    notes.add("groups", Some(report.groups.len()));
    notes.as_of(&report.as_of);
    let mut rows = Vec::new();
    for group in &report.groups {
        for row in outcome_rows(&group.report) {
            let mut cells = vec![Cell::text(&group.code), Cell::text(&group.label)];
            cells.extend(row);
            rows.push(cells);
        }
    }
    let filename = format!("outcomes-by-{by}-{}.csv", period_name(from, to));
    write(notes, &BREAKDOWN_COLUMNS, &rows, filename, options)
}

/// The columns of the outcome comparison: one row per figure of either report.
pub const COMPARISON_COLUMNS: [&str; 9] = [
    "section",
    "figure",
    "code",
    "band",
    "a_value",
    "a_suppressed",
    "b_value",
    "b_suppressed",
    "differs",
];

/// The comparison of two rule versions as CSV: the outcome report's cells side by side,
/// `section,figure,code,band,a_value,a_suppressed,b_value,b_suppressed,differs`.
///
/// The first four columns are the outcome report's; `a_*` and `b_*` are the figure under
/// rule versions `a` and `b` (both empty when the figure is not in that report, such as a
/// closure reason one version does not count); `differs` is `true` when the two values differ
/// (as the JSON's `differences` lists them).
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn comparison(comparison: &Comparison, options: CsvOptions) -> Result<CsvFile, AppError> {
    let (a, b) = (&comparison.a, &comparison.b);
    let mut notes = Notes::new("outcome comparison");
    notes.add("a_rules_version", Some(a.rules_version));
    notes.add("b_rules_version", Some(b.rules_version));
    notes.suppression(Prefix::A, &a.suppression);
    notes.suppression(Prefix::B, &b.suppression);
    notes.period(a.from, a.to);
    notes.add("team_id", a.team_id);
    notes.add("source", a.source.as_ref());
    notes.add("reason", a.reason.as_ref());
    notes.add("differences", Some(comparison.differences.len()));
    notes.as_of(&comparison.as_of);
    let rows = side_by_side(a, b, |_| Vec::new());
    let filename = format!(
        "outcomes-comparison-rules-{}-{}-{}.csv",
        a.rules_version,
        b.rules_version,
        period_name(a.from, a.to)
    );
    write(notes, &COMPARISON_COLUMNS, &rows, filename, options)
}

/// Two reports' figures side by side, one row per figure of either (those of `a` in their
/// order, then those only `b` has): the place, each side's value and suppression (empty where
/// a report has no such figure), whether they differ, and the cells `more` adds for the
/// figure's JSON path.
fn side_by_side(
    a: &OutcomeReport,
    b: &OutcomeReport,
    more: impl Fn(&str) -> Vec<Cell>,
) -> Vec<Vec<Cell>> {
    let left = outcome_figures(a);
    let right = outcome_figures(b);
    let by_path = |side: &[Figure]| -> HashMap<String, Figure> {
        side.iter().map(|f| (f.path.clone(), f.clone())).collect()
    };
    let (by_a, by_b) = (by_path(&left), by_path(&right));
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for f in left.iter().chain(&right) {
        if !seen.insert(f.path.clone()) {
            continue;
        }
        let (x, y) = (by_a.get(&f.path), by_b.get(&f.path));
        let value = |g: Option<&Figure>| g.map_or(Cell::Empty, |g| g.value.clone());
        let suppressed = |g: Option<&Figure>| g.map_or(Cell::Empty, |g| Cell::Bool(g.suppressed));
        let differs = value(x) != value(y);
        let mut row = vec![
            Cell::text(f.section),
            Cell::text(f.figure.clone()),
            Cell::text(f.code.clone()),
            Cell::text(f.band.clone()),
            value(x),
            suppressed(x),
            value(y),
            suppressed(y),
            Cell::Bool(differs),
        ];
        row.extend(more(&f.path));
        rows.push(row);
    }
    rows
}

/// The columns of a snapshot's outcome report: the outcome report's.
pub const SNAPSHOT_COLUMNS: [&str; 6] = OUTCOME_COLUMNS;

/// A snapshot's outcome report (a report as it was known at a moment) as CSV: the columns of
/// [`outcome_report`], with the snapshot's rule version and the moments it is known at among
/// the notes instead of `as_of`.
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn snapshot_report(report: &SnapshotReport, options: CsvOptions) -> Result<CsvFile, AppError> {
    let (snapshot, figures) = (&report.snapshot, &report.report);
    let mut notes = Notes::new("outcome report as it was known");
    notes.add("snapshot_id", Some(snapshot.id));
    notes.add("rules_version", Some(snapshot.rules_version));
    notes.add("known_at", Some(timestamp(snapshot.known_at)));
    notes.add(
        "corrections_known_at",
        Some(timestamp(snapshot.corrections_known_at)),
    );
    notes.suppression(Prefix::None, &figures.suppression);
    notes.add(
        "evaluation_consent",
        Some(&figures.people.evaluation_consent),
    );
    notes.period(figures.from, figures.to);
    notes.add("team_id", figures.team_id);
    notes.add("source", figures.source.as_ref());
    notes.add("reason", figures.reason.as_ref());
    let filename = format!(
        "outcomes-{}-known-at-{}.csv",
        period_name(figures.from, figures.to),
        snapshot.known_at.date_naive()
    );
    write(
        notes,
        &SNAPSHOT_COLUMNS,
        &outcome_rows(figures),
        filename,
        options,
    )
}

/// The columns of an explained comparison: the comparison's, as published and now, and the
/// causes of a difference.
pub const EXPLANATION_COLUMNS: [&str; 12] = [
    "section",
    "figure",
    "code",
    "band",
    "published_value",
    "published_suppressed",
    "now_value",
    "now_suppressed",
    "differs",
    "late_entries",
    "corrections",
    "rule_change",
];

/// An explained comparison as CSV: the report as published and the report now side by side
/// as in [`comparison`], and for a figure that differs the part of the difference due to facts
/// recorded late, to corrections and to the change of rule version (they add up to `now_value`
/// minus `published_value`; a part is empty when a figure it is worked out from is
/// suppressed).
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn explanation(
    explained: &ExplainedComparison,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let (published, now) = (&explained.published, &explained.now);
    let e = &explained.explanation;
    let mut notes = Notes::new("explained comparison");
    notes.add("explanation_id", Some(e.id));
    notes.add("published_rules_version", Some(e.published.rules_version));
    notes.add("published_known_at", Some(timestamp(e.published.known_at)));
    notes.add("now_rules_version", Some(e.current.rules_version));
    notes.add("now_known_at", Some(timestamp(e.current.known_at)));
    notes.suppression(Prefix::A, &published.suppression);
    notes.suppression(Prefix::B, &now.suppression);
    notes.period(published.from, published.to);
    notes.add("team_id", published.team_id);
    notes.add("source", published.source.as_ref());
    notes.add("reason", published.reason.as_ref());
    notes.add("differences", Some(explained.differences.len()));
    let causes: HashMap<&str, &ExplainedDifference> = explained
        .differences
        .iter()
        .map(|d| (d.figure.as_str(), d))
        .collect();
    let rows = side_by_side(published, now, |path| match causes.get(path) {
        Some(d) => vec![
            Cell::float(d.late_entries),
            Cell::float(d.corrections),
            Cell::float(d.rule_change),
        ],
        None => vec![Cell::Empty, Cell::Empty, Cell::Empty],
    });
    let filename = format!(
        "outcomes-explained-{}-{}.csv",
        e.published.known_at.date_naive(),
        period_name(published.from, published.to)
    );
    write(notes, &EXPLANATION_COLUMNS, &rows, filename, options)
}

/// The columns of the service-gap report: one row per figure of a gap, connection or capacity
/// cell.
pub const GAP_COLUMNS: [&str; 11] = [
    "section",
    "figure",
    "need",
    "area",
    "area_name",
    "month",
    "reason",
    "service_id",
    "service_name",
    "value",
    "suppressed",
];

/// The service-gap report as CSV:
/// `section,figure,need,area,area_name,month,reason,service_id,service_name,value,suppressed`.
///
/// `area` is the area's code under rules that code areas (as typed otherwise), `area_name` its
/// name. `section` is `gaps` (figure `count`, by need, area, month and reason), `connections`
/// (figures `made`, `not_taken_up`, `waiting_list`, `declined`, `mean_waiting_weeks`,
/// `accepted_by_service`, `declined_by_service`, `started_with_service`, by service and need) or `capacity` (figures `services`, `open`, `waiting_list`,
/// `not_taking_referrals`, `mean_waiting_weeks`, by need and area: the directory now, never
/// suppressed); the columns a section is not broken down by are empty. `value` and `suppressed`
/// are as in the outcome report. `team_id` is the team the report was asked for, if one.
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn gap_report(
    report: &GapReport,
    team_id: Option<Uuid>,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let mut notes = Notes::new("service gap report");
    notes.add("rules_version", Some(report.rules_version));
    notes.suppression(Prefix::None, &report.suppression);
    notes.period(report.from, report.to);
    notes.add("team_id", team_id);
    notes.as_of(&report.as_of);
    let mut rows = Vec::new();
    for gap in &report.gaps {
        rows.push(vec![
            Cell::text("gaps"),
            Cell::text("count"),
            Cell::text(gap.need.clone()),
            Cell::text(gap.area.clone()),
            Cell::opt(gap.area_name.as_ref()),
            Cell::text(gap.month.to_string()),
            Cell::text(gap.reason.clone()),
            Cell::Empty,
            Cell::Empty,
            Cell::int(gap.count),
            Cell::Bool(gap.count.is_none()),
        ]);
    }
    for c in &report.connections {
        for (figure, value, suppressed) in [
            ("made", Cell::int(c.made), c.made.is_none()),
            (
                "not_taken_up",
                Cell::int(c.not_taken_up),
                c.not_taken_up.is_none(),
            ),
            (
                "waiting_list",
                Cell::int(c.waiting_list),
                c.waiting_list.is_none(),
            ),
            ("declined", Cell::int(c.declined), c.declined.is_none()),
            (
                "mean_waiting_weeks",
                Cell::float(c.mean_waiting_weeks),
                c.mean_waiting_weeks.is_none() && c.waiting_list.is_none(),
            ),
            (
                "accepted_by_service",
                Cell::int(c.accepted_by_service),
                c.accepted_by_service.is_none(),
            ),
            (
                "declined_by_service",
                Cell::int(c.declined_by_service),
                c.declined_by_service.is_none(),
            ),
            (
                "started_with_service",
                Cell::int(c.started_with_service),
                c.started_with_service.is_none(),
            ),
        ] {
            rows.push(vec![
                Cell::text("connections"),
                Cell::text(figure),
                Cell::text(c.need.clone()),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::text(c.service_id.to_string()),
                Cell::opt(c.service_name.as_ref()),
                value,
                Cell::Bool(suppressed),
            ]);
        }
    }
    for c in &report.capacity {
        for (figure, value) in [
            ("services", Cell::Int(c.services)),
            ("open", Cell::Int(c.open)),
            ("waiting_list", Cell::Int(c.waiting_list)),
            ("not_taking_referrals", Cell::Int(c.not_taking_referrals)),
            ("mean_waiting_weeks", Cell::float(c.mean_waiting_weeks)),
        ] {
            rows.push(vec![
                Cell::text("capacity"),
                Cell::text(figure),
                Cell::text(c.need.clone()),
                Cell::text(c.area.clone()),
                Cell::opt(c.area_name.as_ref()),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                value,
                Cell::Bool(false),
            ]);
        }
    }
    let filename = format!("service-gaps-{}.csv", period_name(report.from, report.to));
    write(notes, &GAP_COLUMNS, &rows, filename, options)
}

/// The columns of a caseload: the JSON item's fields, one row per case.
pub const CASELOAD_COLUMNS: [&str; 18] = [
    "client_id",
    "status",
    "link_worker_id",
    "team_id",
    "area",
    "referred_on",
    "referral_source",
    "days_since_referral",
    "last_contact_at",
    "days_since_contact",
    "next_appointment_at",
    "contacts",
    "did_not_attend",
    "baselines",
    "follow_ups",
    "flags",
    "stream_version",
    "tags",
];

/// What a caseload file is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseloadFile {
    /// The team, for a team's caseload or a team lead's own.
    pub team_id: Option<Uuid>,
    /// One link worker's cases.
    pub link_worker_id: Option<Uuid>,
    /// The caseload rules the flags were computed under.
    pub rules_version: i32,
    /// When the flags and the days since were computed.
    pub computed_at: DateTime<Utc>,
    /// Where the next part starts, when the file holds one part of the caseload.
    pub next_cursor: Option<Uuid>,
    /// What the caseload read model had applied.
    pub as_of: AsOf,
}

/// Several codes in one cell, `;` between them.
fn joined<T: AsRef<str>>(codes: &[T]) -> Cell {
    Cell::text(
        codes
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(";"),
    )
}

/// A caseload as CSV: one row per case, with the JSON item's fields as columns (see
/// [`CASELOAD_COLUMNS`]). Times are RFC 3339 in UTC, as in the JSON; `baselines`,
/// `follow_ups` and `flags` hold their codes with `;` between them.
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn caseload(
    items: &[CaseloadItem],
    file: &CaseloadFile,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let mut notes = Notes::new("caseload");
    notes.add("caseload_rules_version", Some(file.rules_version));
    notes.add("computed_at", Some(to_the_second(file.computed_at)));
    notes.add("team_id", file.team_id);
    notes.add("link_worker_id", file.link_worker_id);
    notes.add("cases", Some(items.len()));
    notes.add("next_cursor", file.next_cursor);
    notes.as_of(&file.as_of);
    let rows: Vec<Vec<Cell>> = items
        .iter()
        .map(|item| {
            let flags: Vec<String> = item.flags.iter().map(domain::code).collect();
            vec![
                Cell::text(item.client_id.to_string()),
                Cell::text(item.status.code()),
                Cell::opt(item.link_worker_id),
                Cell::opt(item.team_id),
                Cell::text(item.area.clone()),
                Cell::opt(item.referred_on),
                Cell::opt(item.referral_source.as_ref()),
                Cell::int(item.days_since_referral),
                Cell::opt(item.last_contact_at.map(timestamp)),
                Cell::int(item.days_since_contact),
                Cell::opt(item.next_appointment_at.map(timestamp)),
                Cell::Int(item.contacts.into()),
                Cell::Int(item.did_not_attend.into()),
                joined(&item.baselines),
                joined(&item.follow_ups),
                joined(&flags),
                Cell::Int(item.stream_version),
                joined(&item.tags),
            ]
        })
        .collect();
    let what = if file.team_id.is_some() && file.link_worker_id.is_none() {
        "team-caseload"
    } else {
        "caseload"
    };
    let filename = format!("{what}-{}.csv", file.computed_at.date_naive());
    write(notes, &CASELOAD_COLUMNS, &rows, filename, options)
}

/// The columns of a team's workload: the JSON item's fields, one row per link worker.
pub const WORKLOAD_COLUMNS: [&str; 7] = [
    "link_worker_id",
    "name",
    "open",
    "referred",
    "people_this_year",
    "capacity",
    "percent_of_capacity",
];

/// What a workload file is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadFile {
    pub team_id: Uuid,
    /// The caseload rules the default capacity comes from.
    pub rules_version: i32,
    /// When the year of work was counted back from.
    pub computed_at: DateTime<Utc>,
    /// What the caseload read model had applied.
    pub as_of: AsOf,
}

/// A team's workload as CSV: one row per link worker (see [`WORKLOAD_COLUMNS`]).
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn workload(
    loads: &[WorkerLoad],
    file: &WorkloadFile,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let mut notes = Notes::new("team workload");
    notes.add("caseload_rules_version", Some(file.rules_version));
    notes.add("computed_at", Some(to_the_second(file.computed_at)));
    notes.add("team_id", Some(file.team_id));
    notes.as_of(&file.as_of);
    let rows: Vec<Vec<Cell>> = loads
        .iter()
        .map(|load| {
            vec![
                Cell::text(load.link_worker_id.to_string()),
                Cell::text(load.name.clone()),
                Cell::Int(load.open),
                Cell::Int(load.referred),
                Cell::Int(load.people_this_year),
                Cell::Int(load.capacity.into()),
                Cell::Float(load.percent_of_capacity),
            ]
        })
        .collect();
    let filename = format!("team-workload-{}.csv", file.computed_at.date_naive());
    write(notes, &WORKLOAD_COLUMNS, &rows, filename, options)
}

#[cfg(test)]
pub(crate) mod tests;
