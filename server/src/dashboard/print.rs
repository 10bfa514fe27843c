//! Pages made for paper: the three 公示 a community posts (投票通知公告, 初步统计结果公示, and the
//! result after the objection period), and the A4 sheet of enrollment QR cards, one per building
//! head. Printed from Chromium with `@page` rules (A4, "第 N 页 / 共 M 页"), no browser header.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use doorstep_core::model::{CampaignStatus, Role, now_millis};

use super::pages::{enrollment_uri, qr_svg, server_address};
use super::results::{TallyView, kind_zh, scope_zh, status_zh};
use super::session::Posted;
use super::{DashUser, PageError, PageResult, assets, blocking, format, render};
use crate::admin::accounts::issue_code_for;
use crate::admin::figures::figures;
use crate::admin::{READERS, campaign_of};
use crate::state::AppState;

/// Which of the three notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// 投票通知公告: before voting.
    Announcement,
    /// 初步统计结果公示: after the tally.
    Preliminary,
    /// 表决结果公告: after the objection period (publicised).
    Final,
}

impl Form {
    fn parse(s: &str) -> Option<Form> {
        Some(match s {
            "announcement" => Form::Announcement,
            "preliminary" => Form::Preliminary,
            "final" => Form::Final,
            _ => return None,
        })
    }

    fn heading(self) -> &'static str {
        match self {
            Form::Announcement => "投票通知公告",
            Form::Preliminary => "初步统计结果公示",
            Form::Final => "表决结果公告",
        }
    }
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    css: &'static str,
    heading: &'static str,
    community: String,
    title: String,
    kind: &'static str,
    scope: String,
    status: &'static str,
    announcement: bool,
    period: Vec<(&'static str, String)>,
    results: TallyView,
    draft_warning: Option<&'static str>,
    campaign: String,
    printed: String,
}

/// `GET /campaigns/{id}/notice/{announcement|preliminary|final}`.
pub async fn notice(
    State(state): State<AppState>,
    user: DashUser,
    Path((id, form)): Path<(String, String)>,
) -> PageResult {
    user.require(READERS)?;
    let form = Form::parse(&form)
        .ok_or_else(|| PageError::from(crate::AppError::not_found("没有这种公示")))?;
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let campaign = campaign_of(st, &session, READERS, &id)?;
        if campaign.status == CampaignStatus::Draft {
            return Err(crate::AppError::conflict(
                "wrong_status",
                "草稿尚未发布，没有可公示的内容",
            ));
        }
        let figures = figures(st, &session, &id)?;
        let tally = &figures.tally;
        let community = st
            .docs()
            .hydrate::<doorstep_core::doc::RegisterDoc>(&doorstep_core::doc::DocId::Register {
                community: campaign.community.clone(),
            })?
            .map(|r| r.name)
            .unwrap_or_else(|| campaign.community.clone());
        let times = &campaign.status_times;
        let at = |s: CampaignStatus| {
            times
                .get(&crate::projections::enum_name(&s))
                .map(|t| format::datetime(*t))
        };
        let period = vec![
            (
                "发布时间",
                at(CampaignStatus::Published).unwrap_or_else(|| "—".into()),
            ),
            (
                "投票开始",
                at(CampaignStatus::Open).unwrap_or_else(|| "以社区另行通知为准".into()),
            ),
            (
                "投票截止",
                at(CampaignStatus::Closed).unwrap_or_else(|| "以社区另行通知为准".into()),
            ),
        ];
        let reached = |s: CampaignStatus| campaign.status >= s;
        let draft_warning = match form {
            Form::Announcement => None,
            Form::Preliminary if !reached(CampaignStatus::Tallied) => {
                Some("尚未计票：以下为实时统计，不是正式结果，不得张贴。")
            }
            Form::Final if !reached(CampaignStatus::Publicised) => {
                Some("尚未完成公示：询异期结束并公示后方为最终结果，不得张贴。")
            }
            _ => None,
        };
        Ok(NoticePage {
            css: assets::name("dashboard.css"),
            heading: form.heading(),
            community,
            title: campaign.title.clone(),
            kind: kind_zh(campaign.kind),
            scope: scope_zh(&campaign.scope),
            status: status_zh(campaign.status),
            announcement: form == Form::Announcement,
            period,
            results: TallyView::of(tally),
            draft_warning,
            campaign: id,
            printed: format::date_zh(now_millis()),
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

/// One enrollment card.
#[derive(Debug, Clone)]
pub struct Card {
    pub name: String,
    pub login: String,
    pub buildings: String,
    pub code: String,
    pub qr: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "cards.html")]
struct CardSheet {
    css: &'static str,
    server: String,
    cards: Vec<Card>,
}

#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

/// `POST /cards`: a fresh one-time code for every building head with a building, printed as an
/// A4 sheet of cards (a POST: issuing codes changes state and is audited).
pub async fn card_sheet(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    posted: Posted<NoFields>,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let server = server_address(&headers);
    let session = user.session.clone();
    let address = server.clone();
    let cards = blocking(&state, move |st| {
        let assignments = crate::admin::accounts::visible_assignments(st, &session, None)?;
        let mut cards = Vec::new();
        for account in crate::admin::accounts::visible_accounts(st, &session)? {
            let mine: Vec<String> = assignments
                .iter()
                .filter(|a| a.account_id == account.id)
                .map(|a| format!("{} 号楼", a.building))
                .collect();
            if account.disabled || !account.is(Role::BuildingHead) || mine.is_empty() {
                continue;
            }
            let issued = issue_code_for(st, &session, &account.id)?;
            let payload = enrollment_uri(&address, &issued.code);
            cards.push(Card {
                name: account.display_name.clone(),
                login: account.login.clone(),
                buildings: mine.join("、"),
                qr: qr_svg(&payload)?,
                code: issued.code,
                expires: format::datetime(issued.record.expires_at),
            });
        }
        Ok(cards)
    })
    .await?;
    Ok(render(
        StatusCode::OK,
        &CardSheet {
            css: assets::name("dashboard.css"),
            server,
            cards,
        },
    ))
}
