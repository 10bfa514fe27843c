//! 导出: for each campaign, the roll, ballots, tally, visits and work orders as CSV and XLSX,
//! and the tally's canonical inputs as JSON — downloaded with the cookie session through the
//! same [`crate::admin::exports::export_file`] the JSON API calls, and audited the same way.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::results::status_name_zh;
use super::{Chrome, DashUser, PageResult, blocking, render};
use crate::admin::READERS;
use crate::admin::campaigns::campaign_rows;
use crate::admin::exports::{attachment, export_file};
use crate::state::AppState;

/// The page and the downloads.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exports", get(page))
        .route("/campaigns/{id}/exports/{file}", get(download))
}

/// The files of one campaign, as the page lists them: label, what it holds, file names.
const FILES: &[(&str, &str, &[&str])] = &[
    (
        "名册",
        "发布时冻结的表决权名册：房屋编号、楼栋、单元、表决权人编号、专有部分面积。不含姓名和电话。",
        &["roll.csv", "roll.xlsx"],
    ),
    (
        "选票",
        "每张选票的收集人、时间、更正关系和计票状态（计入、冲突、被更正、未被选中、无效）。",
        &["ballots.csv", "ballots.xlsx"],
    ),
    (
        "计票结果",
        "每个议题、候选人或选项的参与、同意、反对、弃权（面积和人数），是否达到法定比例，输入哈希。",
        &["tally.csv", "tally.xlsx"],
    ),
    (
        "走访记录",
        "每次上门：房屋编号、结果、时间、楼栋长账号。",
        &["visits.csv", "visits.xlsx"],
    ),
    (
        "微心愿工单",
        "本社区的微心愿工单：心愿、状态、承接人、提交时间。",
        &["orders.csv", "orders.xlsx"],
    ),
    (
        "计票输入",
        "计票所用的全部输入（名册、规则、选票、送达、裁决）的规范字节；其 SHA-256 就是计票结果中的输入哈希，任何人都可以用它复算。",
        &["tally-inputs.json"],
    ),
];

#[derive(Debug, Clone)]
struct Download {
    href: String,
    format: &'static str,
    /// The link's accessible name: campaign, file and format.
    name: String,
}

#[derive(Debug, Clone)]
struct FileLine {
    label: &'static str,
    about: &'static str,
    downloads: Vec<Download>,
}

#[derive(Debug, Clone)]
struct CampaignExports {
    id: String,
    title: String,
    status: &'static str,
    files: Vec<FileLine>,
}

#[derive(Template)]
#[template(path = "exports.html")]
struct ExportsPage {
    chrome: Chrome,
    campaigns: Vec<CampaignExports>,
}

fn format_of(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("xlsx") => "XLSX",
        Some("json") => "JSON",
        _ => "CSV",
    }
}

/// `GET /exports`: a row of downloads per campaign.
async fn page(State(state): State<AppState>, user: DashUser) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, "导出", "/exports");
    let session = user.session.clone();
    let rows = blocking(&state, move |st| campaign_rows(st, &session)).await?;
    let campaigns = rows
        .into_iter()
        .map(|r| {
            let files = FILES
                .iter()
                .map(|(label, about, names)| FileLine {
                    label,
                    about,
                    downloads: names
                        .iter()
                        .map(|file| Download {
                            href: format!("/campaigns/{}/exports/{file}", r.campaign),
                            format: format_of(file),
                            name: format!("{} {label} {}", r.title, format_of(file)),
                        })
                        .collect(),
                })
                .collect();
            CampaignExports {
                status: status_name_zh(&r.status),
                id: r.campaign,
                title: r.title,
                files,
            }
        })
        .collect();
    Ok(render(StatusCode::OK, &ExportsPage { chrome, campaigns }))
}

/// `GET /campaigns/{id}/exports/{file}`: the file as an attachment, audited like the API's.
async fn download(
    State(state): State<AppState>,
    user: DashUser,
    Path((id, file)): Path<(String, String)>,
) -> PageResult {
    user.require(READERS)?;
    let session = user.session.clone();
    let (campaign, name) = (id.clone(), file.clone());
    let (content_type, bytes) = blocking(&state, move |st| {
        export_file(st, &session, &campaign, &name)
    })
    .await
    .map_err(|e| e.with_back("/exports"))?;
    Ok(attachment(&id, &file, content_type, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_offers_every_export_and_only_those() {
        let offered: Vec<&str> = FILES
            .iter()
            .flat_map(|(_, _, f)| f.iter().copied())
            .collect();
        let known: Vec<&str> = crate::admin::exports::file_names().collect();
        assert_eq!(offered, known);
    }
}
