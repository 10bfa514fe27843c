//! 名册: upload a register (CSV or XLSX) from the browser. The file is checked by core's import
//! before anything is stored; every bad row is listed with its line and column, and nothing is
//! imported unless the whole file is good. A good file is stored through
//! [`crate::admin::register::import_register_as`], the same function as
//! `POST /api/v1/admin/register/import`.
//!
//! Core's import stops at the first bad row (all or nothing). To list every bad row the page asks
//! core again: each row on its own (under the header) for the row's own mistakes, then the rows
//! that passed together for mistakes between rows (a duplicate unit code, a building labelled
//! two ways), removing each reported row and asking again. Every message is core's; no rule is
//! written twice.

use askama::Template;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use doorstep_core::doc::{DocKind, RegisterDoc};
use doorstep_core::import::{self, ImportedRegister};
use doorstep_core::model::Role;

use super::format;
use super::{Chrome, DashUser, PageError, PageResult, blocking, render};
use crate::admin::register::{RegisterFormat, import_register_as, xlsx_rows};
use crate::auth::AdminSession;
use crate::error::AppError;
use crate::ops::ImportSummary;
use crate::state::AppState;

/// The XLSX media type (as `admin::register` names it).
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// At most this many problems are listed; the rest are counted.
const MAX_PROBLEMS: usize = 500;
/// At most this many passes over the whole file look for mistakes between rows.
const MAX_CROSS_PASSES: usize = 200;

/// One bad spot in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: String,
    /// Core's message, as the JSON API says it.
    pub message: String,
}

fn problem_of(e: doorstep_core::Error, line: u64) -> Problem {
    match e {
        doorstep_core::Error::Import {
            line: l,
            column,
            message,
        } => Problem {
            line: if line == 0 { l } else { line },
            column,
            message,
        },
        other => Problem {
            line,
            column: String::new(),
            message: other.to_string(),
        },
    }
}

/// The rows of a register file as core's CSV import reads them (BOM dropped, no header
/// handling, ragged rows kept), or the line that cannot be read.
fn csv_rows(bytes: &[u8]) -> Result<Vec<Vec<String>>, Problem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Problem {
            line: e.position().map(|p| p.line()).unwrap_or(i as u64 + 1),
            column: String::new(),
            message: format!("not readable as CSV: {e}"),
        })?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(rows)
}

/// Every problem core finds in `rows` (header first), by line; empty when the file imports.
/// `true` as well when the list was cut at [`MAX_PROBLEMS`] or the passes ran out.
pub fn all_problems(community: &str, name: &str, rows: &[Vec<String>]) -> (Vec<Problem>, bool) {
    let parse = |rows: Vec<Vec<String>>| -> Result<ImportedRegister, doorstep_core::Error> {
        import::parse_rows(community, name, rows)
    };
    let first = match parse(rows.to_vec()) {
        Ok(_) => return (Vec::new(), false),
        Err(e) => e,
    };
    // The header (or an empty file) is wrong: no row can be read against it.
    if rows.len() < 2 || matches!(first, doorstep_core::Error::Import { line: 1, .. }) {
        return (vec![problem_of(first, 0)], false);
    }
    let header = rows[0].clone();
    let mut problems = Vec::new();
    let mut good: Vec<(u64, Vec<String>)> = Vec::new();
    for (i, row) in rows[1..].iter().enumerate() {
        let line = i as u64 + 2;
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match parse(vec![header.clone(), row.clone()]) {
            Ok(_) => good.push((line, row.clone())),
            Err(e) => problems.push(problem_of(e, line)),
        }
    }
    let mut cut = false;
    for pass in 0.. {
        if good.is_empty() {
            break;
        }
        if pass == MAX_CROSS_PASSES || problems.len() >= MAX_PROBLEMS {
            cut = true;
            break;
        }
        let subset: Vec<Vec<String>> = std::iter::once(header.clone())
            .chain(good.iter().map(|(_, r)| r.clone()))
            .collect();
        match parse(subset) {
            Ok(_) => break,
            Err(doorstep_core::Error::Import {
                line,
                column,
                message,
            }) if line >= 2 && ((line - 2) as usize) < good.len() => {
                let (real, _) = good.remove((line - 2) as usize);
                problems.push(Problem {
                    line: real,
                    column,
                    message,
                });
            }
            Err(e) => {
                problems.push(problem_of(e, 0));
                break;
            }
        }
    }
    if problems.is_empty() {
        // Whatever failed the whole file (e.g. no units at all) is never lost.
        problems.push(problem_of(first, 0));
    }
    problems.sort_by_key(|p| p.line);
    if problems.len() > MAX_PROBLEMS {
        problems.truncate(MAX_PROBLEMS);
        cut = true;
    }
    (problems, cut)
}

/// The register columns in Chinese.
fn column_zh(column: &str) -> &'static str {
    match column {
        "unit_code" => "房号",
        "building" => "楼栋",
        "entrance" => "单元",
        "floor" => "楼层",
        "room" => "房间",
        "area_m2" => "专有面积",
        "owner_key" => "业主编号",
        "owner_name" => "业主姓名",
        "phone" => "电话",
        "residents" => "居住人数",
        "note" => "备注",
        _ => "",
    }
}

/// Core's import messages in Chinese (the original is shown next to it).
fn message_zh(message: &str) -> String {
    let m = message;
    let known = [
        ("the file is empty", "文件是空的。"),
        ("missing column", "缺少这一列（列名须与模板一致）。"),
        ("duplicate unit code", "房号与前面的行重复。"),
        ("the file has no units", "文件中没有任何房屋。"),
        (
            "expected building-entrance-room",
            "房号格式应为“楼栋-单元-房间”（字母或数字，每段最多 16 个），如 3-2-0501。",
        ),
        ("does not match the unit code", "与房号中的房间号不一致。"),
        ("not a whole number from 0 to 99", "须为 0–99 的整数。"),
        ("not a whole number", "须为整数。"),
        ("must not be empty", "不能为空。"),
        ("only digits, + and - are allowed", "只能包含数字、+ 和 -。"),
        (
            "co_owned needs the co-owners",
            "共有（co_owned）须列出全部共有人，用“、”分隔。",
        ),
        (
            "unknown note",
            "备注只能为空，或 developer_unsold、developer_undelivered、co_owned、second_unit_of_owner。",
        ),
        (
            "not readable as CSV",
            "这一行无法按 CSV 读取（引号或编码有误）。",
        ),
        ("is labelled", "与前面行中同一编号的名称不一致。"),
        (
            "is not an area in m²",
            "面积须为平方米数，最多两位小数（如 89.53）。",
        ),
        ("is outside 0.01–10000 m²", "面积须在 0.01–10000 m² 之间。"),
        ("is too large", "数值太大。"),
    ];
    known
        .iter()
        .find(|(en, _)| m.contains(en))
        .map(|(_, zh)| (*zh).to_string())
        .unwrap_or_else(|| "无法导入这一行。".to_string())
}

/// One problem as the table shows it.
#[derive(Debug, Clone)]
pub struct ProblemLine {
    pub line: u64,
    pub column: String,
    pub column_zh: &'static str,
    pub words: String,
    pub message: String,
}

/// One register already stored.
#[derive(Debug, Clone)]
pub struct RegisterLine {
    pub community: String,
    pub name: String,
    pub buildings: usize,
    pub units: i64,
    pub area: String,
}

/// One building of a successful import.
#[derive(Debug, Clone)]
pub struct BuildingLine {
    pub label: String,
    pub entrances: usize,
    pub units: usize,
    pub area: String,
}

/// What a successful import stored.
#[derive(Debug, Clone)]
pub struct Imported {
    pub community: String,
    pub name: String,
    pub buildings: usize,
    pub units: usize,
    pub residents: i64,
    pub area: String,
    pub created: usize,
    pub changed: usize,
    pub lines: Vec<BuildingLine>,
}

impl Imported {
    fn of(summary: &ImportSummary, register: &ImportedRegister) -> Imported {
        Imported {
            community: summary.community.clone(),
            name: register.register.name.clone(),
            buildings: summary.buildings,
            units: summary.units,
            residents: register.residents,
            area: format::area(register.register.total_area),
            created: summary.documents_created,
            changed: summary.documents_changed,
            lines: {
                let mut buildings: Vec<_> = register.buildings.iter().collect();
                buildings.sort_by_key(|b| {
                    (
                        b.building.id.parse::<u64>().unwrap_or(u64::MAX),
                        b.building.id.clone(),
                    )
                });
                buildings
            }
            .into_iter()
            .map(|b| BuildingLine {
                label: b.building.label.clone(),
                entrances: b.building.entrances.len(),
                units: b.units.len(),
                area: format::area(b.units.values().map(|u| u.area).sum()),
            })
            .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    registers: Vec<RegisterLine>,
    community: String,
    name: String,
    file_name: String,
    problems: Vec<ProblemLine>,
    cut: bool,
    imported: Option<Imported>,
    /// A refusal that is not about rows: (code, words, message).
    error: Option<(String, String, String)>,
}

/// The registers of the communities `session` works in.
fn stored_registers(st: &AppState, session: &AdminSession) -> Result<Vec<RegisterLine>, AppError> {
    let mut out = Vec::new();
    for meta in st.storage().documents()? {
        if meta.id.kind() != DocKind::Register || !session.can(&[Role::Admin], &meta.community) {
            continue;
        }
        if let Some(r) = st.docs().hydrate::<RegisterDoc>(&meta.id)? {
            out.push(RegisterLine {
                community: r.community,
                name: r.name,
                buildings: r.buildings.len(),
                units: r.total_units,
                area: format::area(r.total_area),
            });
        }
    }
    out.sort_by(|a, b| a.community.cmp(&b.community));
    Ok(out)
}

/// What the page shows besides the stored registers.
#[derive(Debug, Default)]
struct Outcome {
    community: String,
    name: String,
    file_name: String,
    problems: Vec<ProblemLine>,
    cut: bool,
    imported: Option<Imported>,
    error: Option<(String, String, String)>,
}

async fn register_page(
    state: &AppState,
    user: &DashUser,
    outcome: Outcome,
    status: StatusCode,
) -> PageResult {
    let chrome = Chrome::new(user, "名册", "/register");
    let session = user.session.clone();
    let page = blocking(state, move |st| {
        let registers = stored_registers(st, &session)?;
        let mut outcome = outcome;
        if outcome.community.is_empty()
            && let Some(r) = registers.first()
        {
            outcome.community = r.community.clone();
            outcome.name = r.name.clone();
        }
        Ok(RegisterPage {
            chrome,
            registers,
            community: outcome.community,
            name: outcome.name,
            file_name: outcome.file_name,
            problems: outcome.problems,
            cut: outcome.cut,
            imported: outcome.imported,
            error: outcome.error,
        })
    })
    .await?;
    Ok(render(status, &page))
}

/// `GET /register`: the stored registers and the upload form.
pub async fn page(State(state): State<AppState>, user: DashUser) -> PageResult {
    user.require(&[Role::Admin])?;
    register_page(&state, &user, Outcome::default(), StatusCode::OK).await
}

/// The fields of the upload form.
#[derive(Debug, Default)]
struct Upload {
    csrf: String,
    community: String,
    name: String,
    file_name: String,
    file_type: String,
    bytes: Vec<u8>,
}

fn too_large(limit: usize) -> PageError {
    PageError::from(AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("文件太大：名册最大 {} MB", limit / (1024 * 1024)),
    ))
    .with_back("/register")
}

/// Read every field of the form, the file at most `limit` bytes.
async fn read_upload(mut multipart: Multipart, limit: usize) -> Result<Upload, PageError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            PageError::from(AppError::bad_request(
                "bad_body",
                format!("上传的表单无法读取：{e}"),
            ))
            .with_back("/register")
        }
    };
    let mut upload = Upload::default();
    let mut total = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            upload.file_name = field.file_name().unwrap_or("").to_string();
            upload.file_type = field.content_type().unwrap_or("").to_string();
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            total += chunk.len();
            if total > limit {
                return Err(too_large(limit));
            }
            value.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8_lossy(&value).trim().to_string();
        match name.as_str() {
            "_csrf" => upload.csrf = text(),
            "community" => upload.community = text(),
            "name" => upload.name = text(),
            "file" => upload.bytes = value,
            _ => {}
        }
    }
    Ok(upload)
}

/// The media type to judge the file by: the file name's extension first (browsers send `.csv`
/// as `text/csv`, `application/vnd.ms-excel` or nothing at all), then what the browser said.
fn declared_type(upload: &Upload) -> String {
    let lower = upload.file_name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        "text/csv".to_string()
    } else if lower.ends_with(".xlsx") {
        XLSX.to_string()
    } else {
        upload.file_type.clone()
    }
}

fn refusal_zh(code: &str) -> &'static str {
    match code {
        "unsupported_media_type" => "请上传 CSV 文件（.csv）或 Excel 工作簿（.xlsx）。",
        "invalid_xlsx" => "这个文件不是可读取的 Excel 工作簿（.xlsx）。",
        "invalid_input" => "提交的内容不完整或格式不对，请检查后重试。",
        "forbidden" => "规则不允许您的账号修改名册。",
        code => format::rule_code_zh(code).unwrap_or("导入未完成，名册没有改动。"),
    }
}

/// `POST /register` (multipart): check the uploaded register; list every problem and store
/// nothing, or store it all and show what was imported.
pub async fn upload(
    State(state): State<AppState>,
    user: DashUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let multipart = multipart.map_err(|e| {
        PageError::from(AppError::bad_request(
            "bad_body",
            format!("请用页面上的表单上传文件：{e}"),
        ))
        .with_back("/register")
    })?;
    let limit = state.config().import_body_limit;
    let upload = read_upload(multipart, limit).await?;
    if !super::session::csrf_ok(&upload.csrf, &user, &headers) {
        tracing::warn!("register upload refused: CSRF token or origin");
        return Err(super::session::csrf_refused(Some("/register".to_string())));
    }
    let mut outcome = Outcome {
        community: upload.community.clone(),
        name: upload.name.clone(),
        file_name: upload.file_name.clone(),
        ..Outcome::default()
    };
    let fail = |outcome: &mut Outcome, e: AppError| {
        outcome.error = Some((
            e.code.to_string(),
            refusal_zh(e.code).to_string(),
            e.message.clone(),
        ));
        e.status
    };
    if upload.bytes.is_empty() {
        let status = fail(
            &mut outcome,
            AppError::invalid("choose a register file (CSV or XLSX) to upload"),
        );
        return register_page(&state, &user, outcome, status).await;
    }
    if upload.name.is_empty() || upload.community.is_empty() {
        let status = fail(
            &mut outcome,
            AppError::invalid("the community id and name are both needed"),
        );
        return register_page(&state, &user, outcome, status).await;
    }
    let format = match RegisterFormat::of(&declared_type(&upload), &upload.bytes) {
        Ok(f) => f,
        Err(e) => {
            let status = fail(&mut outcome, e);
            return register_page(&state, &user, outcome, status).await;
        }
    };
    let session = user.session.clone();
    let result = crate::admin::blocking(&state, move |st| {
        let rows = match format {
            RegisterFormat::Xlsx => Ok(xlsx_rows(&upload.bytes)?),
            RegisterFormat::Csv => csv_rows(&upload.bytes),
        };
        let (problems, cut) = match rows {
            Ok(rows) => all_problems(&upload.community, &upload.name, &rows),
            Err(problem) => (vec![problem], false),
        };
        if !problems.is_empty() {
            return Ok(Err((problems, cut)));
        }
        let (summary, register) = import_register_as(
            st,
            &session,
            &upload.community,
            &upload.name,
            &upload.bytes,
            format,
        )?;
        Ok(Ok(Imported::of(&summary, &register)))
    })
    .await;
    let status = match result {
        Ok(Ok(imported)) => {
            outcome.imported = Some(imported);
            StatusCode::OK
        }
        Ok(Err((problems, cut))) => {
            outcome.problems = problems
                .into_iter()
                .map(|p| ProblemLine {
                    line: p.line,
                    column_zh: column_zh(&p.column),
                    words: message_zh(&p.message),
                    column: p.column,
                    message: p.message,
                })
                .collect();
            outcome.cut = cut;
            outcome.error = Some((
                "invalid_input".to_string(),
                "名册有错误，没有导入任何内容。请按下表逐行改正后重新上传。".to_string(),
                format!("{} 处错误", outcome.problems.len()),
            ));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e) => fail(&mut outcome, e),
    };
    let mut response = register_page(&state, &user, outcome, status).await?;
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        response.headers_mut().insert(
            "x-error-code",
            header::HeaderValue::from_static("invalid_input"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../data/taipingyang-garden.csv");

    fn rows_with(changes: &[(usize, &str)]) -> Vec<Vec<String>> {
        let mut rows = csv_rows(SAMPLE).expect("sample reads");
        for (line, text) in changes {
            rows[line - 1] = text.split(',').map(str::to_string).collect();
        }
        rows
    }

    #[test]
    fn a_good_register_has_no_problems() {
        let rows = csv_rows(SAMPLE).expect("sample reads");
        assert_eq!(all_problems("tpy", "x", &rows), (Vec::new(), false));
    }

    #[test]
    fn every_bad_row_is_listed_with_its_line_and_column() {
        let rows = csv_rows(SAMPLE).expect("sample reads");
        let line5 = rows[4].join(",");
        let line3 = rows[2].join(",");
        let bad_area = line5.replacen(&rows[4][5], "ninety", 1);
        let rows = rows_with(&[
            (5, &bad_area),
            (7, &line3),
            (9, "1-1-0999,1号楼,1单元,two,0999,80.00,P9999,某某,138,1,"),
        ]);
        let (problems, cut) = all_problems("tpy", "x", &rows);
        assert!(!cut);
        let found: Vec<(u64, &str)> = problems
            .iter()
            .map(|p| (p.line, p.column.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![(5, "area_m2"), (7, "unit_code"), (9, "floor")],
            "{problems:?}"
        );
        assert_eq!(problems[1].message, "duplicate unit code");
    }

    #[test]
    fn a_missing_column_is_the_only_problem() {
        let text = std::str::from_utf8(SAMPLE)
            .expect("utf-8")
            .replace("area_m2", "area");
        let rows = csv_rows(text.as_bytes()).expect("reads");
        let (problems, _) = all_problems("tpy", "x", &rows);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].line, problems[0].column.as_str()),
            (1, "area_m2")
        );
        assert!(all_problems("tpy", "x", &[]).0.len() == 1);
    }
}
