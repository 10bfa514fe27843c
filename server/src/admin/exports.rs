//! Exports of a campaign — the roll, the ballots, the tally, the visits and the community's
//! work orders, each as CSV and as XLSX, and the tally's canonical inputs as JSON — and the
//! audit log listing.
//!
//! [`export_file`] makes every file; the JSON API (`GET /campaigns/{id}/exports/{file}`) and the
//! dashboard (`GET /campaigns/{id}/exports/{file}` under the cookie session) both call it, so
//! the two can never differ. Every export is recorded in the audit log with the tally's inputs
//! hash, and every file is read from one snapshot of the projection tables, so the rows and the
//! hash belong together.
//!
//! Numbers are written as people count them: area in m² with two decimals (formatted from the
//! integer 0.01 m² without a float in the CSV; an XLSX number cell shows the same two decimals),
//! headcounts as integers, times in China Standard Time. A text cell that a spreadsheet could
//! take for a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is prefixed with `'`, in
//! CSV and XLSX alike, and XLSX text is always written as a string cell, never as a formula.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use doorstep_core::model::Millis;
use doorstep_core::tally::{QuestionOutcome, Tally, VoteCounts, format_area};
use serde::Deserialize;

use super::{READERS, blocking, no_campaign};
use crate::auth::AdminSession;
use crate::dashboard::format;
use crate::error::{AppError, AppResult};
use crate::projections::{self, TallyInputs};
use crate::state::AppState;
use crate::storage::views::{BallotRecordRow, ExportRows, ExportSnapshot, OrderRow, VisitRow};
use crate::storage::{AuditEvent, NewAuditEvent, StorageError};

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Roll,
    Ballots,
    Tally,
    Visits,
    Orders,
    TallyInputs,
}

/// How it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
    Json,
}

/// Every export, by file name.
const FILES: &[(&str, Kind, Format)] = &[
    ("roll.csv", Kind::Roll, Format::Csv),
    ("roll.xlsx", Kind::Roll, Format::Xlsx),
    ("ballots.csv", Kind::Ballots, Format::Csv),
    ("ballots.xlsx", Kind::Ballots, Format::Xlsx),
    ("tally.csv", Kind::Tally, Format::Csv),
    ("tally.xlsx", Kind::Tally, Format::Xlsx),
    ("visits.csv", Kind::Visits, Format::Csv),
    ("visits.xlsx", Kind::Visits, Format::Xlsx),
    ("orders.csv", Kind::Orders, Format::Csv),
    ("orders.xlsx", Kind::Orders, Format::Xlsx),
    ("tally-inputs.json", Kind::TallyInputs, Format::Json),
];

/// The file names [`export_file`] knows, in the order the dashboard offers them.
pub(crate) fn file_names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _, _)| *name)
}

impl Kind {
    /// The audit event's kind after `export.`.
    fn audit_name(self) -> &'static str {
        match self {
            Kind::Roll => "roll",
            Kind::Ballots => "ballots",
            Kind::Tally => "tally",
            Kind::Visits => "visits",
            Kind::Orders => "orders",
            Kind::TallyInputs => "tally_inputs",
        }
    }
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Json => "application/json",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Json => "json",
        }
    }
}

/// One cell of a CSV or XLSX export.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Int(i64),
    /// 0.01 m², shown as m² with two decimals.
    Area(i64),
    /// Milliseconds since the epoch, shown in China Standard Time.
    Time(Millis),
    Bool(bool),
    Empty,
}

impl Cell {
    fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    fn flag(b: Option<bool>) -> Cell {
        b.map_or(Cell::Empty, Cell::Bool)
    }
}

/// A column: its stable CSV name and the Chinese heading of the XLSX sheet.
type Column = (&'static str, &'static str);

/// One table of an export.
struct Sheet {
    /// The XLSX worksheet's name.
    name: &'static str,
    columns: &'static [Column],
    rows: Vec<Vec<Cell>>,
}

/// A text cell as a spreadsheet may safely read it: one that starts with a character a
/// spreadsheet takes for a formula (`=`, `+`, `-`, `@`, tab, carriage return) gets a leading `'`
/// (OWASP's advice against CSV injection), so `=HYPERLINK(…)` stays text.
pub(crate) fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in China Standard Time.
fn local_time(at: Millis) -> String {
    format!("{} {}", format::date(at), format::clock(at))
}

fn csv_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("writing CSV: {e}"))
}

fn xlsx_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("writing XLSX: {e}"))
}

/// Rows as CSV bytes, with a UTF-8 byte-order mark so spreadsheet programs read Chinese right.
fn to_csv(sheet: &Sheet) -> AppResult<Vec<u8>> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        writer
            .write_record(sheet.columns.iter().map(|(key, _)| *key))
            .map_err(csv_error)?;
        for row in &sheet.rows {
            let fields = row.iter().map(|cell| match cell {
                Cell::Text(s) => neutralise(s).into_owned(),
                Cell::Int(n) => n.to_string(),
                Cell::Area(a) => format_area(*a),
                Cell::Time(at) => local_time(*at),
                Cell::Bool(b) => b.to_string(),
                Cell::Empty => String::new(),
            });
            writer.write_record(fields).map_err(csv_error)?;
        }
        writer.flush().map_err(csv_error)?;
    }
    Ok(out)
}

/// Column widths (in characters) that fit each column's widest cell, counting a Chinese
/// character as two (the writer's own autofit counts it as one and cuts the headings off).
fn column_widths(sheet: &Sheet) -> Vec<f64> {
    let width = |s: &str| -> usize { s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum() };
    let mut widths: Vec<usize> = sheet.columns.iter().map(|(_, zh)| width(zh)).collect();
    for row in &sheet.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            let len = match cell {
                Cell::Text(s) => width(&neutralise(s)),
                Cell::Int(n) => n.to_string().len(),
                Cell::Area(a) => format_area(*a).len(),
                Cell::Time(_) => "yyyy-mm-dd hh:mm:ss".len(),
                Cell::Bool(_) => "FALSE".len(),
                Cell::Empty => 0,
            };
            *w = (*w).max(len);
        }
    }
    widths
        .into_iter()
        .map(|w| (w.clamp(6, 60) + 2) as f64)
        .collect()
}

/// The sheet as an XLSX workbook: Chinese headings in a frozen first row, text as string cells
/// (never formulas), counts as numbers, areas as numbers shown in m² with two decimals, times as
/// dates in China Standard Time.
fn to_xlsx(sheet: &Sheet) -> AppResult<Vec<u8>> {
    use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Workbook};
    const CST_OFFSET_SECS: i64 = 8 * 3600;
    let heading = XFormat::new().set_bold();
    let area = XFormat::new().set_num_format("0.00");
    let time = XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut workbook = Workbook::new();
    let ws = workbook.add_worksheet();
    ws.set_name(sheet.name).map_err(xlsx_error)?;
    for (col, (_, zh)) in sheet.columns.iter().enumerate() {
        let col = u16::try_from(col).map_err(xlsx_error)?;
        ws.write_string_with_format(0, col, *zh, &heading)
            .map_err(xlsx_error)?;
    }
    for (r, row) in sheet.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(xlsx_error)?;
        for (col, cell) in row.iter().enumerate() {
            let col = u16::try_from(col).map_err(xlsx_error)?;
            match cell {
                Cell::Text(s) => {
                    ws.write_string(r, col, neutralise(s)).map_err(xlsx_error)?;
                }
                Cell::Int(n) => {
                    ws.write_number(r, col, *n as f64).map_err(xlsx_error)?;
                }
                Cell::Area(a) => {
                    ws.write_number_with_format(r, col, *a as f64 / 100.0, &area)
                        .map_err(xlsx_error)?;
                }
                Cell::Time(at) => {
                    let local =
                        ExcelDateTime::from_timestamp(at.div_euclid(1000) + CST_OFFSET_SECS)
                            .map_err(xlsx_error)?;
                    ws.write_datetime_with_format(r, col, local, &time)
                        .map_err(xlsx_error)?;
                }
                Cell::Bool(b) => {
                    ws.write_boolean(r, col, *b).map_err(xlsx_error)?;
                }
                Cell::Empty => {}
            }
        }
    }
    ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
    for (col, width) in column_widths(sheet).into_iter().enumerate() {
        let col = u16::try_from(col).map_err(xlsx_error)?;
        ws.set_column_width(col, width).map_err(xlsx_error)?;
    }
    workbook.save_to_buffer().map_err(xlsx_error)
}

/// A sort key that orders the numbers inside a code by value, as people read them: building
/// 2 before building 10, `2-1-0901` before `2-1-1001`.
fn natural(code: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digits = c.is_ascii_digit();
        let mut part = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digits {
                break;
            }
            part.push(c);
            chars.next();
        }
        if digits {
            // Leading zeros and huge numbers still order by value, then by their text.
            let trimmed = part.trim_start_matches('0');
            key.push((trimmed.len() as u64, trimmed.to_string()));
        } else {
            key.push((u64::MAX, part));
        }
    }
    key
}

/// The frozen roll of the campaign: unit, building, entrance, voter key and area — no names,
/// no phone numbers.
fn roll_sheet(inputs: &TallyInputs) -> Sheet {
    const COLUMNS: &[Column] = &[
        ("unit", "房屋编号"),
        ("building", "楼栋"),
        ("entrance", "单元"),
        ("voter_key", "表决权人编号"),
        ("area_m2", "专有部分面积（m²）"),
    ];
    let mut roll: Vec<_> = inputs.roll.iter().collect();
    roll.sort_by_cached_key(|e| (natural(&e.building), natural(&e.unit)));
    Sheet {
        name: "名册",
        columns: COLUMNS,
        rows: roll
            .into_iter()
            .map(|e| {
                vec![
                    Cell::text(&e.unit),
                    Cell::text(&e.building),
                    Cell::text(&e.entrance),
                    Cell::text(&e.voter_key),
                    Cell::Area(e.area),
                ]
            })
            .collect(),
    }
}

/// The ballots of a campaign with the state the tally gives each one.
fn ballots_sheet(ballots: &[BallotRecordRow], tally: &Tally) -> Sheet {
    const COLUMNS: &[Column] = &[
        ("ballot", "选票编号"),
        ("building", "楼栋"),
        ("unit", "房屋编号"),
        ("voter_key", "表决权人编号"),
        ("collected_at", "收集时间"),
        ("collected_by", "收集人账号"),
        ("method", "收取方式"),
        ("supersedes", "更正的选票"),
        ("received_at", "服务器收到时间"),
        ("late_synced", "截止后同步"),
        ("status", "计票状态"),
        ("answers", "表决内容"),
    ];
    let superseded: BTreeSet<&str> = tally.superseded.iter().map(String::as_str).collect();
    let invalid: BTreeMap<&str, String> = tally
        .invalid
        .iter()
        .map(|i| (i.ballot.as_str(), i.reason.to_string()))
        .collect();
    let conflicted: BTreeSet<&str> = tally
        .conflicts
        .iter()
        .flat_map(|c| c.ballots.iter().map(String::as_str))
        .collect();
    let not_chosen: BTreeSet<&str> = tally
        .adjudicated
        .iter()
        .flat_map(|a| {
            a.ballots
                .iter()
                .map(String::as_str)
                .filter(|b| a.chosen.as_deref() != Some(*b))
        })
        .collect();
    let status = |id: &str| {
        if let Some(reason) = invalid.get(id) {
            format!("invalid: {reason}")
        } else if superseded.contains(id) {
            "superseded".to_string()
        } else if conflicted.contains(id) {
            "conflict".to_string()
        } else if not_chosen.contains(id) {
            "not chosen".to_string()
        } else {
            "counted".to_string()
        }
    };
    let rows: Vec<Vec<Cell>> = ballots
        .iter()
        .map(|b| {
            vec![
                Cell::text(status(&b.id)),
                Cell::Text(b.id.clone()),
                Cell::Text(b.building.clone()),
                Cell::Text(b.unit.clone()),
                Cell::Text(b.voter_key.clone()),
                Cell::Time(b.collected_at),
                Cell::Text(b.by.clone()),
                // Schema-1 ballots have no method: they were collected at the door.
                Cell::Text(b.method.clone()),
                Cell::Text(b.supersedes.clone()),
                Cell::Time(b.received_at),
                Cell::Bool(b.late_synced),
                Cell::Text(b.answers.clone()),
            ]
        })
        .collect();
    // The status was computed first (it needs the id); it belongs before the answers.
    let mut rows: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|mut row| {
            let status = row.remove(0);
            row.insert(10, status);
            row
        })
        .collect();
    rows.sort_by_cached_key(|row| {
        let text = |i: usize| match &row[i] {
            Cell::Text(s) => s.clone(),
            _ => String::new(),
        };
        (natural(&text(1)), natural(&text(2)), text(0))
    });
    Sheet {
        name: "选票",
        columns: COLUMNS,
        rows,
    }
}

/// One row of the tally sheet.
struct CountsRow<'a> {
    question: &'a str,
    text: &'a str,
    subject: &'a str,
    counts: &'a VoteCounts,
    quorum: Option<bool>,
    threshold: Option<bool>,
    passed: Option<bool>,
    seat: &'a str,
}

impl CountsRow<'_> {
    fn cells(&self, inputs_hash: &str) -> Vec<Cell> {
        let c = self.counts;
        vec![
            Cell::text(self.question),
            Cell::text(self.text),
            Cell::text(self.subject),
            Cell::Area(c.participating.area),
            Cell::Int(c.participating.headcount),
            Cell::Area(c.yes.area),
            Cell::Int(c.yes.headcount),
            Cell::Area(c.no.area),
            Cell::Int(c.no.headcount),
            Cell::Area(c.abstain.area),
            Cell::Int(c.abstain.headcount),
            Cell::flag(self.quorum),
            Cell::flag(self.threshold),
            Cell::flag(self.passed),
            Cell::text(self.seat),
            Cell::text(inputs_hash),
        ]
    }
}

/// One row per resolution question, election candidate and survey option.
fn tally_sheet(tally: &Tally) -> Sheet {
    const COLUMNS: &[Column] = &[
        ("question", "议题编号"),
        ("question_text", "议题"),
        ("candidate_or_option", "候选人或选项"),
        ("participating_area_m2", "参与面积（m²）"),
        ("participating_headcount", "参与人数"),
        ("yes_area_m2", "同意面积（m²）"),
        ("yes_headcount", "同意人数"),
        ("no_area_m2", "反对面积（m²）"),
        ("no_headcount", "反对人数"),
        ("abstain_area_m2", "弃权面积（m²）"),
        ("abstain_headcount", "弃权人数"),
        ("quorum_met", "参与达到三分之二"),
        ("threshold_met", "同意达到法定比例"),
        ("passed", "通过"),
        ("seat", "当选"),
        ("inputs_hash", "计票输入哈希"),
    ];
    let mut rows = Vec::new();
    for q in &tally.questions {
        let row = |subject: &str, counts: &VoteCounts, quorum, threshold, passed, seat: &str| {
            CountsRow {
                question: &q.question,
                text: &q.text,
                subject,
                counts,
                quorum,
                threshold,
                passed,
                seat,
            }
            .cells(&tally.inputs_hash)
        };
        match &q.outcome {
            QuestionOutcome::Resolution(r) => rows.push(row(
                "",
                &r.counts,
                Some(r.quorum.met),
                Some(r.threshold.met),
                r.passed,
                "",
            )),
            QuestionOutcome::Election(e) => {
                for c in &e.candidates {
                    let seat = e.seating.as_ref().map_or("", |s| {
                        if s.elected.contains(&c.candidate) {
                            "elected"
                        } else if s
                            .tie
                            .as_ref()
                            .is_some_and(|t| t.candidates.contains(&c.candidate))
                        {
                            // A tie at the last seat: the 议事规则 decide (re-vote or lot).
                            "tied"
                        } else if s.alternates.contains(&c.candidate) {
                            "alternate"
                        } else {
                            ""
                        }
                    });
                    rows.push(row(
                        &c.candidate,
                        &c.counts,
                        Some(e.quorum.met),
                        Some(c.threshold.met),
                        c.passed,
                        seat,
                    ));
                }
            }
            QuestionOutcome::Survey(s) => {
                for o in &s.options {
                    let counts = VoteCounts {
                        yes: o.chosen,
                        participating: s.respondents,
                        ..VoteCounts::default()
                    };
                    rows.push(row(&o.option, &counts, None, None, None, ""));
                }
            }
        }
    }
    Sheet {
        name: "计票结果",
        columns: COLUMNS,
        rows,
    }
}

/// Every visit of a campaign (no personal data: units, outcomes, times, account ids).
fn visits_sheet(visits: &[VisitRow]) -> Sheet {
    const COLUMNS: &[Column] = &[
        ("visit", "走访编号"),
        ("building", "楼栋"),
        ("unit", "房屋编号"),
        ("outcome", "走访结果"),
        ("at", "走访时间"),
        ("by", "走访人账号"),
    ];
    let rows = visits
        .iter()
        .map(|v| {
            vec![
                Cell::Text(v.id.clone()),
                Cell::Text(v.building.clone()),
                Cell::Text(v.unit.clone()),
                Cell::Text(v.outcome.clone()),
                Cell::Time(v.at),
                Cell::Text(v.by.clone()),
            ]
        })
        .collect();
    Sheet {
        name: "走访记录",
        columns: COLUMNS,
        rows,
    }
}

/// The 微心愿 work orders of the campaign's community (title, state, who holds it — the
/// resident's description stays in the orders documents).
fn orders_sheet(orders: &[OrderRow]) -> Sheet {
    const COLUMNS: &[Column] = &[
        ("order", "工单编号"),
        ("building", "楼栋"),
        ("unit", "房屋编号"),
        ("title", "心愿"),
        ("status", "状态"),
        ("assignee", "承接人账号"),
        ("created_at", "提交时间"),
        ("created_by", "提交人账号"),
        ("events", "处理记录数"),
    ];
    let rows = orders
        .iter()
        .map(|o| {
            vec![
                Cell::Text(o.id.clone()),
                Cell::Text(o.building.clone()),
                Cell::Text(o.unit.clone()),
                Cell::Text(o.title.clone()),
                Cell::Text(o.status.clone()),
                o.assignee.clone().map_or(Cell::Empty, Cell::Text),
                Cell::Time(o.created_at),
                Cell::Text(o.created_by.clone()),
                Cell::Int(o.events),
            ]
        })
        .collect();
    Sheet {
        name: "微心愿工单",
        columns: COLUMNS,
        rows,
    }
}

/// The bytes of one export and what it is, read from one snapshot of the tables.
struct Made {
    bytes: Vec<u8>,
    inputs_hash: String,
}

/// The rows an export of `kind` needs besides the tally inputs.
fn rows_for(kind: Kind) -> ExportRows {
    match kind {
        Kind::Ballots => ExportRows::Ballots,
        Kind::Visits => ExportRows::Visits,
        Kind::Orders => ExportRows::Orders,
        Kind::TallyInputs | Kind::Roll | Kind::Tally => ExportRows::None,
    }
}

fn make(snapshot: ExportSnapshot, kind: Kind, format: Format) -> AppResult<Made> {
    let ExportSnapshot {
        inputs,
        ballots,
        visits,
        orders,
    } = snapshot;
    let (tally, canonical) = projections::tally_and_inputs_of(&inputs)
        .map_err(|e| StorageError::Projection(e.to_string()))?;
    let sheet = match kind {
        Kind::TallyInputs => {
            return Ok(Made {
                bytes: canonical,
                inputs_hash: tally.inputs_hash,
            });
        }
        Kind::Roll => roll_sheet(&inputs),
        Kind::Ballots => ballots_sheet(&ballots, &tally),
        Kind::Tally => tally_sheet(&tally),
        Kind::Visits => visits_sheet(&visits),
        Kind::Orders => orders_sheet(&orders),
    };
    let bytes = match format {
        Format::Xlsx => to_xlsx(&sheet)?,
        _ => to_csv(&sheet)?,
    };
    Ok(Made {
        bytes,
        inputs_hash: tally.inputs_hash,
    })
}

/// One export of `campaign` for a reader: its content type and bytes, audited as
/// `export.{kind}` with the tally's inputs hash. An unknown file is `not_found` naming the
/// files there are; an unknown campaign is `not_found`.
pub(crate) fn export_file(
    st: &AppState,
    session: &AdminSession,
    campaign: &str,
    file: &str,
) -> AppResult<(&'static str, Vec<u8>)> {
    session.require_any(READERS)?;
    super::require_campaign(st, session, READERS, campaign)?;
    let Some(&(_, kind, format)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return Err(AppError::not_found(format!(
            "no such export; use one of {}",
            file_names().collect::<Vec<_>>().join(", ")
        )));
    };
    // One snapshot: the rows and the inputs hash agree.
    let snapshot = st
        .views()
        .export_snapshot(campaign, rows_for(kind))?
        .ok_or_else(|| no_campaign(campaign))?;
    let made = make(snapshot, kind, format)?;
    st.storage().append_audit(&[NewAuditEvent::new(
        session.actor(),
        format!("export.{}", kind.audit_name()),
        format!("campaign/{campaign}"),
        serde_json::json!({
            "file": file,
            "format": format.name(),
            "bytes": made.bytes.len(),
            "inputs_hash": made.inputs_hash,
        }),
    )])?;
    Ok((format.content_type(), made.bytes))
}

/// An export as a download: `Content-Disposition: attachment; filename="{campaign}-{file}"`
/// (characters outside `A-Za-z0-9._-` become `_`), never cached.
pub(crate) fn attachment(
    campaign: &str,
    file: &str,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> AppResult<Response> {
    let name: String = format!("{campaign}-{file}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(AppError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /campaigns/{id}/exports/{file}`: an attachment, audited.
pub async fn export(
    State(state): State<AppState>,
    session: AdminSession,
    Path((id, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let (campaign, name) = (id.clone(), file.clone());
    let (content_type, bytes) = blocking(&state, move |st| {
        export_file(st, &session, &campaign, &name)
    })
    .await?;
    attachment(&id, &file, content_type, bytes)
}

/// `?after=&limit=` of the audit listing.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub after: i64,
    pub limit: Option<usize>,
}

/// Whether `session` reads the dashboard across every community (an admin or counting officer
/// of the 街道): who may read the audit chain, which is one for the whole server and whose
/// entries name accounts, documents and devices of every community.
pub(crate) fn reads_street_wide(session: &AdminSession) -> bool {
    session.can(READERS, crate::storage::EVERYWHERE)
}

/// 403 unless [`reads_street_wide`].
pub(crate) fn require_street_wide(session: &AdminSession) -> AppResult<()> {
    if reads_street_wide(session) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "审计日志涵盖全部小区，只有街道级账号可以查看（the audit log covers every community; \
             only a 街道-wide account reads it）",
        ))
    }
}

/// `GET /audit?after=0&limit=100`: audit events oldest first, with their chain hashes.
pub async fn audit(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<AuditQuery>,
) -> AppResult<Json<Vec<AuditEvent>>> {
    session.require_any(READERS)?;
    require_street_wide(&session)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        blocking(&state, move |st| {
            Ok(st.storage().audit_events(query.after, limit)?)
        })
        .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_neutralised_and_other_text_is_kept() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(bad), format!("'{bad}"));
        }
        for good in ["", "1-1-0101", "修灯", "a=b", "'quoted"] {
            assert_eq!(neutralise(good), good);
        }
    }

    #[test]
    fn codes_sort_by_the_numbers_in_them() {
        let mut codes = vec![
            "10-1-0101",
            "2-1-1001",
            "2-1-0901",
            "1-2-0101",
            "B",
            "1-1-0101",
        ];
        codes.sort_by_cached_key(|c| natural(c));
        assert_eq!(
            codes,
            [
                "1-1-0101",
                "1-2-0101",
                "2-1-0901",
                "2-1-1001",
                "10-1-0101",
                "B"
            ]
        );
    }

    #[test]
    fn csv_writes_areas_in_square_metres_and_times_in_china_time() -> AppResult<()> {
        let sheet = Sheet {
            name: "t",
            columns: &[("a", "甲"), ("b", "乙"), ("c", "丙"), ("d", "丁")],
            rows: vec![vec![
                Cell::Area(2_896_559),
                Cell::Time(0),
                Cell::text("=HYPERLINK(\"http://evil\",\"x\")"),
                Cell::Int(-1),
            ]],
        };
        let text = String::from_utf8(to_csv(&sheet)?).map_err(AppError::internal)?;
        assert_eq!(
            text,
            "\u{feff}a,b,c,d\n28965.59,1970-01-01 08:00:00,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",-1\n"
        );
        Ok(())
    }
}
