//! The dashboard's screens. Each handler checks the role, reads through the functions the JSON
//! API uses (`crate::admin::…`), shapes the numbers for people and renders a template.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect};
use doorstep_core::doc::{DocId, DocKind};
use doorstep_core::model::{Answer, CampaignStatus, Choice, Millis, Question, QuestionKind, Role};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::format::{self, Meter};
use super::push::CardUpdate;
use super::results::{TallyView, kind_zh, status_name_zh, status_zh};
use super::session::Posted;
use super::{Chrome, DashUser, PageError, PageResult, blocking, render};
use crate::admin::accounts::{DeviceRow, device_rows, issue_code_for};
use crate::admin::campaigns::{
    AdjudicateBody, CampaignRow, ConflictsReply, Progress, adjudicate_as, all_campaign_rows,
    campaign_rows, conflicts_of, progress_from, progress_of, run_action as admin_run_action,
};
use crate::admin::figures::figures;
use crate::admin::register::{BuildingRow, UnitRow, building_rows, household_rows, unit_rows};
use crate::admin::{READERS, campaign_of, no_campaign};
use crate::auth::AdminSession;
use crate::state::AppState;
use crate::storage::{Account, AuditEvent};

// ---------------------------------------------------------------------------------------------
// 总览

/// One campaign's card on the overview (also served alone, for live refresh).
#[derive(Debug, Clone)]
pub struct CardView {
    pub id: String,
    pub title: String,
    pub kind: &'static str,
    pub status: &'static str,
    /// By area, then by headcount.
    pub meters: Vec<Meter>,
    pub delivered: i64,
    pub returned: i64,
    pub conflicts: i64,
    pub late: i64,
}

fn card_of(row: &CampaignRow, progress: &Progress) -> CardView {
    CardView {
        id: row.campaign.clone(),
        title: row.title.clone(),
        kind: kind_name_zh(&row.kind),
        status: status_name_zh(&progress.status),
        meters: vec![
            Meter::area(progress.returned.area, progress.totals.area),
            Meter::headcount(progress.returned.headcount, progress.totals.headcount),
        ],
        delivered: progress.buildings.iter().map(|b| b.deliveries).sum(),
        returned: progress.returned.headcount,
        conflicts: progress.open_conflicts,
        late: progress.late_synced,
    }
}

fn kind_name_zh(kind: &str) -> &'static str {
    match kind {
        "election" => "选举",
        "resolution" => "表决",
        "survey" => "意见征集",
        "hearing" => "听证",
        _ => "其他",
    }
}

/// A building's line in a progress table.
#[derive(Debug, Clone)]
pub struct BuildingLine {
    pub community: String,
    pub building: String,
    pub label: String,
    pub units: i64,
    pub visited: i64,
    pub visited_share: String,
    pub ballots: i64,
    pub heads: String,
    pub last_sync: String,
    pub pending: i64,
    pub rejected: i64,
}

/// A phone that has not synced today.
#[derive(Debug, Clone)]
pub struct StaleDevice {
    pub label: String,
    pub login: String,
    pub last_sync: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    cards: Vec<CardView>,
    stale: Vec<StaleDevice>,
    devices: usize,
    table_campaign: Option<String>,
    lines: Vec<BuildingLine>,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardFragment {
    card: CardView,
}

/// Campaigns worth a card: everything not archived (drafts have no roll to measure).
fn live_campaigns(
    st: &AppState,
    session: &AdminSession,
) -> Result<Vec<(CampaignRow, Progress)>, crate::AppError> {
    let mut out = Vec::new();
    for row in campaign_rows(st, session)? {
        if row.status == "archived" || row.status == "draft" {
            continue;
        }
        let progress = progress_of(st, session, &row.campaign)?;
        out.push((row, progress));
    }
    Ok(out)
}

/// The building lines of a campaign's progress with the heads' phones.
fn building_lines(
    st: &AppState,
    session: &AdminSession,
    progress: &Progress,
) -> Result<Vec<BuildingLine>, crate::AppError> {
    let buildings = building_rows(st, session, None)?;
    let accounts = crate::admin::accounts::visible_accounts(st, session)?;
    let devices = device_rows(st, session)?;
    let now = st.now();
    Ok(progress
        .buildings
        .iter()
        .map(|b| {
            let row = buildings.iter().find(|r| r.building == b.building);
            let assigned: Vec<&String> =
                row.map(|r| r.assigned.iter().collect()).unwrap_or_default();
            let phones: Vec<&DeviceRow> = devices
                .iter()
                .filter(|d| !d.revoked && assigned.contains(&&d.device.account_id))
                .collect();
            let last = phones.iter().filter_map(|d| d.device.last_sync_at).max();
            BuildingLine {
                community: row.map(|r| r.community.clone()).unwrap_or_default(),
                building: b.building.clone(),
                label: row
                    .map(|r| r.label.clone())
                    .unwrap_or_else(|| b.building.clone()),
                units: b.units,
                visited: b.visited_units,
                visited_share: format::share(b.visited_units, b.units),
                ballots: b.ballots_collected.headcount,
                heads: assigned
                    .iter()
                    .filter_map(|id| accounts.iter().find(|a| &&a.id == id))
                    .map(|a| a.display_name.clone())
                    .collect::<Vec<_>>()
                    .join("、"),
                last_sync: format::ago(last, now),
                pending: phones.iter().map(|d| d.device.pending).sum(),
                rejected: phones.iter().map(|d| d.device.rejected).sum(),
            }
        })
        .collect())
}

/// `GET /`: one card per campaign, phones that have not synced today, and the buildings of the
/// first campaign in the field.
pub async fn overview(State(state): State<AppState>, user: DashUser) -> PageResult {
    if user.is(Role::Dispatcher) && !READERS.iter().any(|r| user.is(*r)) {
        // A dispatcher's work is the 微心愿 queue.
        return Ok(Redirect::to("/orders").into_response());
    }
    user.require(READERS)?;
    let chrome = Chrome::new(&user, "总览", "/");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let campaigns = live_campaigns(st, &session)?;
        let cards = campaigns.iter().map(|(r, p)| card_of(r, p)).collect();
        let devices = device_rows(st, &session)?;
        let now = st.now();
        let today = format::start_of_day(now);
        let stale = devices
            .iter()
            .filter(|d| !d.revoked && d.device.last_sync_at.is_none_or(|t| t < today))
            .map(|d| StaleDevice {
                label: d.device.label.clone(),
                login: d.login.clone().unwrap_or_default(),
                last_sync: format::ago(d.device.last_sync_at, now),
            })
            .collect();
        let (table_campaign, lines) = match campaigns.first() {
            Some((row, progress)) => (
                Some(row.campaign.clone()),
                building_lines(st, &session, progress)?,
            ),
            None => (None, Vec::new()),
        };
        Ok(OverviewPage {
            chrome,
            cards,
            stale,
            devices: devices.iter().filter(|d| !d.revoked).count(),
            table_campaign,
            lines,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

/// `GET /campaigns/{id}/card`: one overview card, refetched when the live feed says so.
pub async fn campaign_card(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> PageResult {
    user.require(READERS)?;
    let session = user.session.clone();
    let card = blocking(&state, move |st| {
        let row = campaign_rows(st, &session)?
            .into_iter()
            .find(|r| r.campaign == id)
            .ok_or_else(|| no_campaign(&id))?;
        let progress = progress_of(st, &session, &id)?;
        Ok(card_of(&row, &progress))
    })
    .await?;
    Ok(render(StatusCode::OK, &CardFragment { card }))
}

/// The overview cards of `campaigns` (every live campaign when empty) as pushed to open pages;
/// campaigns without a card (drafts, archived, unknown) are left out.
pub(crate) fn render_cards(
    st: &AppState,
    campaigns: &[String],
) -> Result<Vec<CardUpdate>, crate::AppError> {
    let mut out = Vec::new();
    for row in all_campaign_rows(st)? {
        if row.status == "archived" || row.status == "draft" {
            continue;
        }
        if !campaigns.is_empty() && !campaigns.contains(&row.campaign) {
            continue;
        }
        let figures = crate::admin::figures::figures_unscoped(st, &row.campaign)?;
        let progress = progress_from(&row.campaign, &figures)?;
        let html = CardFragment {
            card: card_of(&row, &progress),
        }
        .render()
        .map_err(|e| crate::AppError::internal(format!("card template: {e}")))?;
        out.push(CardUpdate {
            campaign: row.campaign,
            html: html.into(),
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// `1` on pages showing overview cards: they also get `card` events.
    #[serde(default)]
    cards: Option<String>,
}

/// `GET /events`: the live feed as server-sent events, one `change` event per stored change;
/// with `?cards=1`, also one `card` event (the card's HTML) per changed campaign and interval
/// ([`super::push`]).
pub async fn events(
    State(state): State<AppState>,
    user: DashUser,
    Query(q): Query<EventsQuery>,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    user.require(&[Role::Admin, Role::CountingOfficer, Role::Dispatcher])?;
    // Only what concerns the communities this user works in reaches the page.
    let scope = Scope {
        st: state.clone(),
        session: user.session.clone(),
        seen: HashMap::new(),
    };
    let changes = stream::unfold(
        (state.live().subscribe(), scope),
        |(mut rx, mut scope)| async move {
            loop {
                let event = match rx.recv().await {
                    Ok(change) => match scope.change_visible(&change) {
                        Some(false) => continue,
                        Some(true) => Event::default()
                            .event("change")
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().event("reload").data("encode")),
                        // Storage could not say: the page reloads (and shows the error).
                        None => Event::default().event("reload").data("scope"),
                    },
                    // Fell behind: the page reloads its live parts rather than missing changes.
                    Err(RecvError::Lagged(n)) => {
                        Event::default().event("reload").data(n.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, scope)));
            }
        },
    );
    // Cards show figures: only for the roles that read them.
    let wants_cards = q.cards.as_deref() == Some("1") && READERS.iter().any(|r| user.is(*r));
    let cards = wants_cards.then(|| state.cards().subscribe(&state));
    let scope = Scope {
        st: state.clone(),
        session: user.session.clone(),
        seen: HashMap::new(),
    };
    let cards = stream::unfold((cards, scope), |(rx, mut scope)| async move {
        let mut rx = rx?;
        loop {
            let event = match rx.recv().await {
                Ok(card) => match scope.campaign_visible(&card.campaign) {
                    Some(false) => continue,
                    Some(true) => Event::default().event("card").data(&*card.html),
                    None => Event::default().event("reload").data("scope"),
                },
                Err(RecvError::Lagged(n)) => Event::default().event("reload").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), (Some(rx), scope)));
        }
    });
    let stream = stream::select(changes, cards);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What of the live feed one page may see: the changes and cards of the communities its user
/// works in, each looked up once.
struct Scope {
    st: AppState,
    session: AdminSession,
    /// Document, device or campaign id → whether it is visible.
    seen: HashMap<String, bool>,
}

impl Scope {
    /// Whether `change` concerns this user's communities; `None` when storage cannot say.
    fn change_visible(&mut self, change: &crate::live::Change) -> Option<bool> {
        if self.session.street_wide() {
            return Some(true);
        }
        if let Some(&known) = self.seen.get(&change.id) {
            return Some(known);
        }
        let storage = self.st.storage();
        let visible = if change.kind == "device" {
            let Ok(id) = uuid::Uuid::parse_str(&change.id) else {
                return Some(false);
            };
            match storage.device(&id).ok()? {
                Some(device) => storage
                    .account(&device.account_id)
                    .ok()?
                    .is_some_and(|a| self.session.sees_account(&a)),
                None => false,
            }
        } else {
            let Ok(id) = change.id.parse::<DocId>() else {
                return Some(false);
            };
            storage
                .document_meta(&id)
                .ok()?
                .is_some_and(|meta| self.session.works_in(&meta.community))
        };
        self.seen.insert(change.id.clone(), visible);
        Some(visible)
    }

    /// Whether campaign `id` is in this user's communities; `None` when storage cannot say.
    fn campaign_visible(&mut self, id: &str) -> Option<bool> {
        if let Some(&known) = self.seen.get(id) {
            return Some(known);
        }
        let visible = match crate::admin::require_campaign(&self.st, &self.session, READERS, id) {
            Ok(()) => true,
            Err(e) if e.status == StatusCode::NOT_FOUND => false,
            Err(_) => return None,
        };
        self.seen.insert(id.to_string(), visible);
        Some(visible)
    }
}

// ---------------------------------------------------------------------------------------------
// 投票/议题

#[derive(Debug, Clone)]
pub struct CampaignLine {
    pub id: String,
    pub title: String,
    pub kind: &'static str,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    chrome: Chrome,
    campaigns: Vec<CampaignLine>,
}

/// `GET /campaigns`.
pub async fn campaigns(State(state): State<AppState>, user: DashUser) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, "投票/议题", "/campaigns");
    let session = user.session.clone();
    let campaigns = blocking(&state, move |st| campaign_rows(st, &session)).await?;
    let campaigns = campaigns
        .into_iter()
        .map(|r| CampaignLine {
            kind: kind_name_zh(&r.kind),
            status: status_name_zh(&r.status),
            id: r.campaign,
            title: r.title,
        })
        .collect();
    Ok(render(StatusCode::OK, &CampaignsPage { chrome, campaigns }))
}

/// A lifecycle step as the campaign page offers it.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: &'static str,
    pub label: &'static str,
    pub explain: &'static str,
}

fn step_of(status: CampaignStatus) -> Option<Step> {
    let (action, label, explain) = match status.next()? {
        CampaignStatus::Published => (
            "publish",
            "发布",
            "发布后名册与规则冻结，楼栋长手机同步后可开始送达表决票。发布后不能再修改。",
        ),
        CampaignStatus::Open => ("open", "开始投票", "开始后楼栋长可以收集表决票。"),
        CampaignStatus::Closed => (
            "close",
            "截止投票",
            "截止后不再接受新的表决票（截止前收集、之后同步的票会标为迟到同步）。",
        ),
        CampaignStatus::Tallied => (
            "tally",
            "计票",
            "计票前所有重复票冲突须由计票人裁决。计票结果与输入哈希将被记录。",
        ),
        CampaignStatus::Publicised => ("publicise", "公示", "公示后结果对业主公开，可打印公示。"),
        CampaignStatus::Archived => ("archive", "归档", "归档后本次投票只读保存。"),
        CampaignStatus::Draft => return None,
    };
    Some(Step {
        action,
        label,
        explain,
    })
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage {
    chrome: Chrome,
    id: String,
    title: String,
    kind: &'static str,
    status: &'static str,
    binding: bool,
    times: Vec<(&'static str, String)>,
    next: Option<Step>,
    can_act: bool,
    results: Option<TallyView>,
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /campaigns/{id}`: the status, the next step, and the results on both dimensions.
pub async fn campaign(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, "投票/议题", "/campaigns");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let campaign = campaign_of(st, &session, READERS, &id)?;
        let can_act = session.can(&[Role::Admin], &campaign.community);
        let results = if campaign.status == CampaignStatus::Draft {
            None
        } else {
            Some(TallyView::of(&figures(st, &session, &id)?.tally))
        };
        let order = [
            CampaignStatus::Published,
            CampaignStatus::Open,
            CampaignStatus::Closed,
            CampaignStatus::Tallied,
            CampaignStatus::Publicised,
            CampaignStatus::Archived,
        ];
        let times = order
            .iter()
            .filter_map(|s| {
                let key = crate::projections::enum_name(s);
                campaign
                    .status_times
                    .get(&key)
                    .map(|t| (status_zh(*s), format::datetime(*t)))
            })
            .collect();
        let done = q
            .done
            .as_deref()
            .and_then(|a| super::pages::step_label(a).map(|l| format!("已完成：{l}")));
        Ok(CampaignPage {
            chrome,
            title: campaign.title.clone(),
            kind: kind_zh(campaign.kind),
            status: status_zh(campaign.status),
            binding: campaign.binding,
            times,
            next: step_of(campaign.status),
            can_act,
            results,
            done,
            id,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

fn step_label(action: &str) -> Option<&'static str> {
    [
        CampaignStatus::Draft,
        CampaignStatus::Published,
        CampaignStatus::Open,
        CampaignStatus::Closed,
        CampaignStatus::Tallied,
        CampaignStatus::Publicised,
    ]
    .into_iter()
    .filter_map(step_of)
    .find(|s| s.action == action)
    .map(|s| s.label)
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    id: String,
    title: String,
    step: Step,
}

/// `GET /campaigns/{id}/actions/{action}`: "are you sure?" before a step that cannot be undone.
pub async fn confirm_action(
    State(state): State<AppState>,
    user: DashUser,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let chrome = Chrome::new(&user, "确认操作", "/campaigns");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let campaign = campaign_of(st, &session, &[Role::Admin], &id)?;
        let step = step_of(campaign.status)
            .filter(|s| s.action == action)
            .ok_or_else(|| {
                crate::AppError::conflict(
                    "wrong_status",
                    format!(
                        "当前状态为「{}」，不能执行此操作",
                        status_zh(campaign.status)
                    ),
                )
            })?;
        Ok(ConfirmPage {
            chrome,
            title: campaign.title,
            id,
            step,
        })
    })
    .await
    .map_err(|e| e.with_back("/campaigns"))?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct Confirmed {
    #[serde(default)]
    confirm: String,
}

/// `POST /campaigns/{id}/actions/{action}`: the step, through the API's own implementation.
pub async fn run_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted<Confirmed>,
) -> PageResult {
    let back = format!("/campaigns/{id}");
    if posted.form.confirm != "yes" {
        return Err(PageError::from(crate::AppError::invalid("请先确认操作")).with_back(back));
    }
    let user = posted.user;
    let (id2, action2) = (id.clone(), action.clone());
    blocking(&state, move |st| {
        admin_run_action(st, &user.session, &id2, &action2)
    })
    .await
    .map_err(|e| e.with_back(back))?;
    Ok(Redirect::to(&format!("/campaigns/{id}?done={action}")).into_response())
}

// ---------------------------------------------------------------------------------------------
// 冲突

#[derive(Debug, Clone)]
pub struct BallotView {
    pub id: String,
    pub building: String,
    pub unit: String,
    pub collector: String,
    pub collected_at: String,
    pub synced_at: String,
    pub corrects: bool,
    pub answers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct ConflictView {
    pub voter_key: String,
    pub considered: String,
    pub ballots: Vec<BallotView>,
}

#[derive(Debug, Clone)]
pub struct DecidedView {
    pub voter_key: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "conflicts.html")]
struct ConflictsPage {
    chrome: Chrome,
    id: String,
    title: String,
    conflicts: Vec<ConflictView>,
    decided: Vec<DecidedView>,
    can_decide: bool,
    error: Option<(String, String)>,
    edits: Vec<EditConflictLine>,
}

fn choice_zh(choice: Choice) -> &'static str {
    match choice {
        Choice::Yes => "同意",
        Choice::No => "反对",
        Choice::Abstain => "弃权",
    }
}

/// One answer as an officer reads it: the choice, the candidates marked yes (by name), or the
/// options chosen (by label).
fn answer_zh(question: Option<&Question>, answer: &Answer) -> String {
    let mut parts = Vec::new();
    if let Some(choice) = answer.choice {
        parts.push(choice_zh(choice).to_string());
    }
    if !answer.candidates.is_empty() {
        let name = |id: &str| match question.map(|q| &q.kind) {
            Some(QuestionKind::Election { candidates, .. }) => candidates
                .get(id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| id.to_string()),
            _ => id.to_string(),
        };
        for choice in [Choice::Yes, Choice::No, Choice::Abstain] {
            let names: Vec<String> = answer
                .candidates
                .iter()
                .filter(|(_, c)| **c == choice)
                .map(|(id, _)| name(id))
                .collect();
            if !names.is_empty() {
                parts.push(format!("{}：{}", choice_zh(choice), names.join("、")));
            }
        }
    }
    if !answer.options.is_empty() {
        let label = |id: &String| match question.map(|q| &q.kind) {
            Some(QuestionKind::Survey { options, .. }) => options
                .get(id)
                .map(|o| o.label.clone())
                .unwrap_or_else(|| id.clone()),
            _ => id.clone(),
        };
        parts.push(format!(
            "选择：{}",
            answer
                .options
                .iter()
                .map(label)
                .collect::<Vec<_>>()
                .join("、")
        ));
    }
    if parts.is_empty() {
        "（未填）".to_string()
    } else {
        parts.join("；")
    }
}

fn conflicts_view(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    reply: &ConflictsReply,
) -> Result<(String, Vec<ConflictView>, Vec<DecidedView>), crate::AppError> {
    let campaign = campaign_of(st, session, READERS, id)?;
    let accounts = st.storage().accounts()?;
    let receipts = crate::admin::activity::ballot_receipts(st, id)?;
    let name = |account: &str| -> String {
        accounts
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| account.to_string())
    };
    let question_text = |qid: &str| -> String {
        campaign
            .questions
            .get(qid)
            .map(|q| q.text.clone())
            .unwrap_or_else(|| qid.to_string())
    };
    let question = |qid: &str| campaign.questions.get(qid);
    let conflicts = reply
        .conflicts
        .iter()
        .map(|c| ConflictView {
            voter_key: c.voter_key.clone(),
            considered: c
                .ballots
                .iter()
                .map(|b| b.id.clone())
                .collect::<Vec<_>>()
                .join(","),
            ballots: c
                .ballots
                .iter()
                .map(|b| BallotView {
                    id: b.id.clone(),
                    building: b.building.clone(),
                    unit: b.unit.clone(),
                    collector: name(&b.by),
                    collected_at: format::datetime(b.collected_at),
                    synced_at: receipts
                        .get(&b.id)
                        .map(|t| format::datetime(*t))
                        .unwrap_or_else(|| "—".to_string()),
                    corrects: b.supersedes.is_some(),
                    answers: b
                        .answers
                        .iter()
                        .map(|(q, a)| (question_text(q), answer_zh(question(q), a)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let decided = reply
        .adjudicated
        .iter()
        .map(|a| DecidedView {
            voter_key: a.voter_key.clone(),
            outcome: match &a.chosen {
                Some(b) => format!("采用选票 {b}"),
                None => "全部作废".to_string(),
            },
        })
        .collect();
    Ok((campaign.title, conflicts, decided))
}

async fn conflicts_page(
    state: &AppState,
    user: &DashUser,
    id: String,
    error: Option<(String, String)>,
    status: StatusCode,
) -> PageResult {
    let chrome = Chrome::new(user, "冲突", "/campaigns");
    let session = user.session.clone();
    let page = blocking(state, move |st| {
        let reply = conflicts_of(st, &session, &id)?;
        let (title, conflicts, decided) = conflicts_view(st, &session, &id, &reply)?;
        let community = campaign_of(st, &session, READERS, &id)?.community;
        let can_decide = session.can(&[Role::CountingOfficer], &community);
        let edits = edit_conflict_lines(crate::admin::register::household_conflict_rows(
            st,
            &session,
            Some(&community),
            None,
        )?);
        Ok(ConflictsPage {
            edits,
            chrome,
            id,
            title,
            conflicts,
            decided,
            can_decide,
            error,
        })
    })
    .await?;
    Ok(render(status, &page))
}

/// `GET /campaigns/{id}/conflicts`: the duplicate-ballot queue, ballots side by side.
pub async fn conflicts(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> PageResult {
    user.require(READERS)?;
    conflicts_page(&state, &user, id, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    voter_key: String,
    /// A ballot id, or `void` to void them all.
    chosen: String,
    reason: String,
    considered: String,
}

/// `POST /campaigns/{id}/conflicts`: a counting officer decides; a conflict decided meanwhile by
/// someone else is refused with who decided it, on the same page.
pub async fn adjudicate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<DecideForm>,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::CountingOfficer])?;
    let form = posted.form;
    let body = AdjudicateBody {
        voter_key: form.voter_key,
        chosen: (form.chosen != "void").then_some(form.chosen),
        reason: form.reason,
        considered: Some(
            form.considered
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
    };
    let session = user.session.clone();
    let id2 = id.clone();
    match crate::admin::blocking(&state, move |st| adjudicate_as(st, &session, &id2, body)).await {
        Ok(_) => Ok(Redirect::to(&format!("/campaigns/{id}/conflicts")).into_response()),
        Err(e) => {
            let status = e.status;
            conflicts_page(
                &state,
                &user,
                id,
                Some((e.code.to_string(), e.message)),
                status,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 楼栋

#[derive(Template)]
#[template(path = "buildings.html")]
struct BuildingsPage {
    chrome: Chrome,
    campaign: Option<(String, String)>,
    lines: Vec<BuildingLine>,
    plain: Vec<BuildingRow>,
}

/// `GET /buildings`: per building visited / total, ballots, the heads' last sync, pending and
/// rejected, for the first campaign in the field (or the register alone).
pub async fn buildings(State(state): State<AppState>, user: DashUser) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, "楼栋", "/buildings");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let campaigns = live_campaigns(st, &session)?;
        let (campaign, lines) = match campaigns.first() {
            Some((row, progress)) => (
                Some((row.campaign.clone(), row.title.clone())),
                building_lines(st, &session, progress)?,
            ),
            None => (None, Vec::new()),
        };
        Ok(BuildingsPage {
            chrome,
            campaign,
            lines,
            plain: building_rows(st, &session, None)?,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Clone)]
pub struct UnitLine {
    pub unit: String,
    pub contact: String,
    pub phone: String,
    pub entrance: String,
    pub floor: i64,
    pub room: String,
    pub area: String,
    pub sale_status: String,
    pub visits: usize,
    pub last_outcome: String,
}

#[derive(Template)]
#[template(path = "building.html")]
struct BuildingPage {
    chrome: Chrome,
    community: String,
    building: String,
    units: Vec<UnitLine>,
}

/// `GET /buildings/{community}/{building}`: its units with the visits recorded.
pub async fn building(
    State(state): State<AppState>,
    user: DashUser,
    Path((community, building)): Path<(String, String)>,
) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, format!("{building} 号楼"), "/buildings");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let units: Vec<UnitRow> = unit_rows(st, &session, &community, &building)?;
        let households = household_rows(st, &session, &community, &building)?;
        let visits = crate::admin::activity::unit_visits(st, &community, &building)?;
        let units = units
            .into_iter()
            .map(|u| {
                let mine: Vec<&(String, String, Millis)> =
                    visits.iter().filter(|v| v.0 == u.unit).collect();
                let household = households.iter().find(|h| h.unit == u.unit);
                UnitLine {
                    contact: household
                        .map(|h| h.contact_name.clone())
                        .unwrap_or_default(),
                    phone: household.map(|h| h.phone.clone()).unwrap_or_default(),
                    visits: mine.len(),
                    last_outcome: mine
                        .iter()
                        .max_by_key(|v| v.2)
                        .map(|v| format!("{}（{}）", outcome_zh(&v.1), format::datetime(v.2)))
                        .unwrap_or_else(|| "未走访".to_string()),
                    area: format::area(u.area),
                    sale_status: sale_zh(&u.sale_status),
                    entrance: u.entrance,
                    floor: u.floor,
                    room: u.room,
                    unit: u.unit,
                }
            })
            .collect();
        Ok(BuildingPage {
            chrome,
            community,
            building,
            units,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

/// One line of a household's timeline.
#[derive(Debug, Clone)]
pub struct EventLine {
    pub at: String,
    pub campaign: String,
    pub what: String,
    pub by: String,
}

/// A household field two phones (or a phone and the office) changed in parallel.
#[derive(Debug, Clone)]
pub struct EditConflictLine {
    pub unit: String,
    pub field: String,
    pub shown: String,
    pub values: String,
}

fn field_zh(field: &str) -> &str {
    match field {
        "contact_name" => "联系人",
        "phone" => "电话",
        "occupancy" => "居住情况",
        "residents" => "居住人数",
        "note" => "备注",
        other => other,
    }
}

fn edit_conflict_lines(
    conflicts: Vec<doorstep_core::conflicts::FieldConflict>,
) -> Vec<EditConflictLine> {
    conflicts
        .into_iter()
        .map(|c| EditConflictLine {
            field: field_zh(&c.field).to_string(),
            values: c.values.join(" ／ "),
            shown: c.shown,
            unit: c.unit,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "household.html")]
struct HouseholdPage {
    chrome: Chrome,
    community: String,
    building: String,
    unit: Option<UnitLine>,
    events: Vec<EventLine>,
    edits: Vec<EditConflictLine>,
}

/// A household field's name as the office says it.
fn household_field_zh(field: &str) -> &str {
    match field {
        "contact_name" => "联系人",
        "phone" => "电话",
        "occupancy" => "居住情况",
        "residents" => "常住人数",
        "note" => "备注",
        "unit" => "门牌",
        other => other,
    }
}

/// `GET /buildings/{community}/{building}/units/{unit}`: one household, its details, its
/// parallel edits and its timeline (visits, deliveries, ballots and corrections, decisions).
pub async fn household(
    State(state): State<AppState>,
    user: DashUser,
    Path((community, building, unit)): Path<(String, String, String)>,
) -> PageResult {
    user.require(READERS)?;
    let chrome = Chrome::new(&user, format!("住户 {unit}"), "/buildings");
    let session = user.session.clone();
    let page = blocking(&state, move |st| {
        let row = unit_rows(st, &session, &community, &building)?
            .into_iter()
            .find(|u| u.unit == unit)
            .ok_or_else(|| crate::AppError::not_found(format!("no unit {unit}")))?;
        let household = household_rows(st, &session, &community, &building)?
            .into_iter()
            .find(|h| h.unit == unit);
        let accounts = st.storage().accounts()?;
        let name = |id: &str| {
            accounts
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.display_name.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let events: Vec<(Millis, EventLine)> =
            crate::admin::activity::unit_timeline(st, &community, &unit)?
                .into_iter()
                .map(|e| {
                    (
                        e.at,
                        EventLine {
                            at: format::datetime(e.at),
                            what: match e.kind {
                                "visit" => format!("走访：{}", outcome_zh(&e.detail)),
                                "delivery" => "送达表决票".to_string(),
                                "ballot" => format!(
                                    "收回表决票{}（{}）",
                                    method_zh(e.method.as_deref()),
                                    e.detail
                                ),
                                "correction" => format!(
                                    "更正表决票{}（新票 {}）",
                                    method_zh(e.method.as_deref()),
                                    e.detail
                                ),
                                _ => format!("计票人裁决：{}", e.detail),
                            },
                            by: name(&e.by),
                            campaign: e.campaign,
                        },
                    )
                })
                .collect();
        let full = session.can(&[Role::Admin], &community);
        let devices = st.storage().devices()?;
        let mut events = events;
        for edit in crate::admin::activity::household_edits(st, &community, &building, &unit)? {
            use crate::admin::activity::EditedBy;
            let by = match &edit.by {
                EditedBy::Server => "管理端".to_string(),
                EditedBy::Device(d) => devices
                    .iter()
                    .find(|x| x.id == *d)
                    .map(|x| name(&x.account_id))
                    .unwrap_or_else(|| "未知设备".to_string()),
                EditedBy::Unknown => "未知".to_string(),
            };
            let fields: Vec<String> = edit
                .fields
                .iter()
                .map(|(field, value)| {
                    let label = household_field_zh(field);
                    let value = match (field.as_str(), value.as_str()) {
                        ("occupancy", "OwnerOccupied") => "自住",
                        ("occupancy", "Rented") => "出租",
                        ("occupancy", "Vacant") => "空置",
                        ("occupancy", "Unknown") => "未知",
                        (_, "") => "（空）",
                        (_, v) => v,
                    };
                    if full {
                        format!("{label}「{value}」")
                    } else {
                        label.to_string()
                    }
                })
                .collect();
            events.push((
                edit.at,
                EventLine {
                    at: format::datetime(edit.at),
                    what: format!("住户信息：{}", fields.join("，")),
                    by,
                    campaign: String::new(),
                },
            ));
        }
        events.sort_by_key(|(at, _)| *at);
        let events: Vec<EventLine> = events.into_iter().map(|(_, e)| e).collect();
        let edits = edit_conflict_lines(
            crate::admin::register::household_conflict_rows(
                st,
                &session,
                Some(&community),
                Some(&building),
            )?
            .into_iter()
            .filter(|c| c.unit == unit)
            .collect(),
        );
        Ok(HouseholdPage {
            chrome,
            unit: Some(UnitLine {
                contact: household
                    .as_ref()
                    .map(|h| h.contact_name.clone())
                    .unwrap_or_default(),
                phone: household
                    .as_ref()
                    .map(|h| h.phone.clone())
                    .unwrap_or_default(),
                visits: 0,
                last_outcome: String::new(),
                area: format::area(row.area),
                sale_status: sale_zh(&row.sale_status),
                entrance: row.entrance,
                floor: row.floor,
                room: row.room,
                unit: row.unit,
            }),
            community,
            building,
            events,
            edits,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

fn sale_zh(status: &str) -> String {
    match status {
        "sold" => "已售".to_string(),
        "developer_unsold" => "开发商未售".to_string(),
        "developer_undelivered" => "开发商未交付".to_string(),
        other => other.to_string(),
    }
}

/// How a ballot came back, as the unit page names it after 收回表决票 (nothing for the door,
/// the usual way).
fn method_zh(method: Option<&str>) -> &'static str {
    match method {
        Some("proxy") => "·委托代签",
        Some("station") => "·现场投票",
        Some("returned") => "·书面投回",
        _ => "",
    }
}

fn outcome_zh(outcome: &str) -> &str {
    match outcome {
        "not_home" => "无人应门",
        "refused" => "拒绝",
        "come_back" => "约改时间",
        "vacant" => "空置",
        "moved" => "已搬离",
        "tenant_only" => "仅租户在家",
        "owner_elsewhere" => "业主不在本地",
        "delivered" => "已送达",
        "collected" => "已回收",
        "barrier" => "语言或健康障碍",
        "do_not_contact" => "请勿打扰",
        "other" => "其他",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// 设备与楼栋长

#[derive(Debug, Clone)]
pub struct AccountLine {
    pub id: String,
    pub login: String,
    pub name: String,
    /// Each role where it is held: (scope, role, `管理员 · tpy`).
    pub grants: Vec<(String, String, String)>,
    /// (community, building) assigned, in natural order.
    pub buildings: Vec<(String, String)>,
    pub is_head: bool,
    pub pace: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeviceLine {
    pub id: String,
    pub label: String,
    pub login: String,
    pub app_version: String,
    pub last_sync: String,
    pub pending: i64,
    pub rejected: i64,
    pub revoked: bool,
    /// Stopped for sending more refused work than the server keeps (`quarantine_full`).
    pub stopped: bool,
}

/// A code just issued, shown once with its QR.
#[derive(Debug, Clone)]
pub struct IssuedView {
    pub name: String,
    pub code: String,
    pub qr: String,
    /// The same code as a PNG (base64) to download and send to the head's phone.
    pub qr_png: String,
    pub payload: String,
    pub expires: String,
}

/// Above this many buildings the assignment form suggests from one shared list instead of
/// a drop-down per row.
const MANY_BUILDINGS: usize = 60;

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    chrome: Chrome,
    accounts: Vec<AccountLine>,
    devices: Vec<DeviceLine>,
    issued: Option<IssuedView>,
    /// (community, building, label) of every building, for the assignment form.
    buildings: Vec<(String, String, String)>,
    /// Too many buildings for a drop-down in every row: one shared list the inputs suggest
    /// from (a district's 360 buildings × 360 heads made a 6.6 MB page).
    many_buildings: bool,
    /// A refusal to show above the forms: (code, message).
    error: Option<(String, String)>,
    /// A confirmation to show above the forms.
    notice: Option<String>,
    /// The new-account form as the admin filled it (kept on a refusal).
    draft: NewAccountForm,
    /// Offline work that could not be delivered as sent, waiting for an admin.
    held: Vec<HeldLine>,
    /// Where this admin may give roles: (scope, label), `*` last when they administer every
    /// community.
    scopes: Vec<(String, String)>,
    /// Every role, as (value, label), building heads first.
    roles: [(String, &'static str); 4],
}

/// One piece of held work on the 设备 page.
struct HeldLine {
    id: i64,
    at: String,
    why: &'static str,
    doc: String,
    login: String,
    accepted: Option<String>,
}

/// Which document held work belongs to, in the admin's words ("4号楼 · 业委会选举（走访与选票）").
fn held_doc_zh(st: &AppState, doc: &str) -> Result<String, crate::AppError> {
    use doorstep_core::doc::DocId;
    Ok(match doc.parse::<DocId>() {
        Ok(DocId::Field { campaign, building }) => {
            let title = st.docs().campaign(&campaign)?.map_or(campaign, |c| c.title);
            format!("{building}号楼 · {title}（走访与选票）")
        }
        Ok(DocId::Orders { building, .. }) => format!("{building}号楼 · 微心愿"),
        Ok(DocId::Building { building, .. }) => format!("{building}号楼 · 住户资料"),
        _ => doc.to_string(),
    })
}

/// Why work is held, in the admin's words.
fn held_reason_zh(code: &str) -> &'static str {
    match code {
        "held_for_review" => "楼栋已改派，手机上还有改派前的记录",
        "not_assigned" => "记录时已不负责这栋楼",
        "foreign_actor" => "这台手机重新加入过，记录来自加入前",
        _ => "未能送达",
    }
}

/// The 新建账号 form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewAccountForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Where the role applies: a community id, or `*`.
    #[serde(default)]
    community: String,
    #[serde(default)]
    password: String,
}

/// The 分配楼栋 / 取消 forms.
#[derive(Debug, Deserialize)]
pub struct AssignForm {
    account: String,
    /// `community/building`.
    building: String,
}

/// Visits this close together, this many at once, cannot be real door-to-door work: 20 doors
/// within 2 minutes (organisers expect 2–4 minutes per door).
const PACE_WINDOW_MS: Millis = 2 * 60 * 1000;
const PACE_DOORS: usize = 20;

/// The most visits an account recorded within any [`PACE_WINDOW_MS`].
fn busiest_window(times: &mut [Millis]) -> usize {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > PACE_WINDOW_MS {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

async fn devices_page(
    state: &AppState,
    user: &DashUser,
    issued: Option<IssuedView>,
    refused: Option<(crate::AppError, NewAccountForm)>,
) -> PageResult {
    devices_page_with(state, user, issued, refused, None).await
}

/// The devices page with a confirmation above the forms.
async fn devices_page_with(
    state: &AppState,
    user: &DashUser,
    issued: Option<IssuedView>,
    refused: Option<(crate::AppError, NewAccountForm)>,
    notice: Option<String>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let status = refused.as_ref().map_or(StatusCode::OK, |(e, _)| e.status);
    let (error, draft) = match refused {
        Some((e, form)) => (Some((e.code.to_string(), e.message)), form),
        None => (None, NewAccountForm::default()),
    };
    let chrome = Chrome::new(user, "设备与楼栋长", "/devices");
    let session = user.session.clone();
    let page = blocking(state, move |st| {
        let accounts = crate::admin::accounts::visible_accounts(st, &session)?;
        let assignments = crate::admin::accounts::visible_assignments(st, &session, None)?;
        let mut visit_times = crate::admin::activity::visit_times_by_account(st)?;
        let mut accounts = accounts;
        // Office accounts first, then heads as people count them: head-2 before head-10.
        accounts.sort_by_key(|a| (a.is(Role::BuildingHead), natural_key(&a.login)));
        let accounts = accounts
            .into_iter()
            .map(|a: Account| {
                let pace = visit_times.get_mut(&a.id).map(|t| busiest_window(t));
                AccountLine {
                    buildings: assignments
                        .iter()
                        .filter(|x| x.account_id == a.id)
                        .map(|x| (x.community.clone(), x.building.clone()))
                        .collect(),
                    grants: a
                        .grants
                        .scopes()
                        .flat_map(|(scope, roles)| {
                            roles.iter().map(move |r| {
                                (
                                    scope.to_string(),
                                    crate::projections::enum_name(r),
                                    format!("{} · {}", super::role_zh(*r), scope_zh(scope)),
                                )
                            })
                        })
                        .collect(),
                    is_head: a.is(Role::BuildingHead),
                    pace: pace
                        .filter(|n| *n >= PACE_DOORS)
                        .map(|n| format!("2 分钟内记录了 {n} 户走访，速度不合常理，请核实")),
                    id: a.id,
                    login: a.login,
                    name: a.display_name,
                }
            })
            .collect();
        let now = st.now();
        let devices = device_rows(st, &session)?
            .into_iter()
            .map(|d| DeviceLine {
                id: d.device.id.to_string(),
                label: d.device.label.clone(),
                login: d.login.clone().unwrap_or_default(),
                app_version: d.device.app_version.clone(),
                last_sync: format::ago(d.device.last_sync_at, now),
                pending: d.device.pending,
                rejected: d.device.rejected,
                revoked: d.revoked,
                stopped: d.device.quarantine_full_at.is_some(),
            })
            .collect();
        let buildings: Vec<(String, String, String)> = building_rows(st, &session, None)?
            .into_iter()
            .filter(|b| session.can(&[Role::Admin], &b.community))
            .map(|b| (b.community, b.building, b.label))
            .collect();
        let scopes = administered_scopes(st, &session)?;
        let logins: std::collections::HashMap<String, String> = st
            .storage()
            .accounts()?
            .into_iter()
            .map(|a| (a.id, a.login))
            .collect();
        let held = crate::admin::held::held_work(st, &session)?
            .into_iter()
            .map(|h| {
                Ok(HeldLine {
                    id: h.id,
                    at: format::ago(Some(h.at), now),
                    why: held_reason_zh(&h.code),
                    doc: held_doc_zh(st, &h.doc)?,
                    login: logins.get(&h.account_id).cloned().unwrap_or(h.account_id),
                    accepted: h.accepted_at.map(|at| {
                        format!(
                            "{} 由 {} 接收",
                            format::datetime(at),
                            h.accepted_by
                                .as_deref()
                                .map(|by| {
                                    let id = by.strip_prefix("account:").unwrap_or(by);
                                    logins.get(id).map_or(by, String::as_str).to_string()
                                })
                                .unwrap_or_default()
                        )
                    }),
                })
            })
            .collect::<Result<Vec<_>, crate::AppError>>()?;
        Ok(DevicesPage {
            scopes,
            roles: [
                Role::BuildingHead,
                Role::CountingOfficer,
                Role::Dispatcher,
                Role::Admin,
            ]
            .map(|r| (crate::projections::enum_name(&r), super::role_zh(r))),
            held,
            chrome,
            accounts,
            devices,
            issued,
            many_buildings: buildings.len() > MANY_BUILDINGS,
            buildings,
            error,
            notice,
            draft,
        })
    })
    .await?;
    Ok(render(status, &page))
}

/// A scope of grants as the dashboard says it: a community id, or 全部小区 for `*`.
fn scope_zh(scope: &str) -> String {
    if scope == crate::storage::EVERYWHERE {
        "全部小区".to_string()
    } else {
        scope.to_string()
    }
}

/// Where `session` may give roles: every community with a register when it administers them
/// all (and `*` itself, last: most accounts work in one community), else the communities it
/// administers.
fn administered_scopes(
    st: &AppState,
    session: &AdminSession,
) -> Result<Vec<(String, String)>, crate::AppError> {
    let mut communities: std::collections::BTreeSet<String> = st
        .storage()
        .documents()?
        .into_iter()
        .filter(|m| m.id.kind() == DocKind::Register)
        .map(|m| m.community)
        .collect();
    communities.extend(
        session
            .account
            .grants
            .scopes()
            .map(|(scope, _)| scope.to_string()),
    );
    let mut scopes: Vec<(String, String)> = communities
        .into_iter()
        .filter(|c| session.account.grants.administers(c))
        .map(|c| {
            let label = scope_zh(&c);
            (c, label)
        })
        .collect();
    // `*` sorts first ('*' < letters and digits): move it last.
    let everywhere_first = scopes
        .first()
        .is_some_and(|(s, _)| s == crate::storage::EVERYWHERE);
    scopes.rotate_left(usize::from(everywhere_first));
    Ok(scopes)
}

/// A sort key that orders the digits inside a text by their value (`head-2` < `head-10`).
fn natural_key(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            if !digits.is_empty() {
                out.push((
                    std::mem::take(&mut word),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            word.push(ch);
        }
    }
    out.push((word, digits.parse().unwrap_or(0)));
    out
}

/// The 添加角色 / × forms of an account's roles.
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    role: String,
    community: String,
}

/// `POST /accounts/{id}/grants` (add) and `/grants/remove`: give or take one role in one
/// community, through the API's own update; a refusal (the last admin, a community the admin
/// does not administer) shows on the page.
async fn change_grant(
    state: &AppState,
    id: String,
    posted: Posted<GrantForm>,
    add: bool,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let form = posted.form;
    let session = user.session.clone();
    let result = crate::admin::blocking(state, move |st| {
        let role = role_of(&form.role)
            .ok_or_else(|| crate::AppError::invalid(format!("no role {}", form.role)))?;
        let current = crate::admin::accounts::visible_account(st, &session, &id)?;
        let grants = if add {
            current.grants.with(&form.community, role)
        } else {
            current.grants.without(&form.community, role)
        }
        .ok_or_else(|| {
            crate::AppError::invalid(if add {
                "选择一个小区".to_string()
            } else {
                "账号至少要保留一个角色；不再使用的账号请停用".to_string()
            })
        })?;
        crate::admin::accounts::update_account_as(
            st,
            &session,
            &id,
            crate::admin::accounts::AccountPatch {
                grants: Some(grants),
                roles: None,
                communities: None,
                disabled: None,
            },
        )
    })
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/devices").into_response()),
        Err(e) => {
            let e = if e.code == "last_admin" {
                crate::AppError::new(
                    e.status,
                    e.code,
                    "这是该小区（或全部小区）最后一位能登录的管理员，不能取消其管理员角色",
                )
            } else {
                e
            };
            devices_page(state, &user, None, Some((e, NewAccountForm::default()))).await
        }
    }
}

/// `POST /accounts/{id}/grants`: give an account a role in a community.
pub async fn add_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<GrantForm>,
) -> PageResult {
    change_grant(&state, id, posted, true).await
}

/// `POST /accounts/{id}/grants/remove`: take a role in a community from an account.
pub async fn remove_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<GrantForm>,
) -> PageResult {
    change_grant(&state, id, posted, false).await
}

fn role_of(name: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    password: String,
}

/// `POST /accounts/{id}/password`: an admin sets an account's password through the API's own
/// implementation (policy, sessions ended, audited); the page says whose, or why not.
pub async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ResetForm>,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let session = user.session.clone();
    let st = state.clone();
    let result = state
        .hashing()
        .run(move || {
            crate::admin::accounts::reset_password_as(&st, &session, &id, &posted.form.password)
                .and_then(|()| {
                    st.storage()
                        .account(&id)?
                        .ok_or_else(|| crate::AppError::not_found(format!("no account {id}")))
                })
        })
        .await
        .and_then(|r| r);
    match result {
        Ok(account) => {
            let notice = format!(
                "已为 {}（{}）重设密码，其所有登录已退出。请当面或电话告知新密码。",
                account.display_name, account.login
            );
            devices_page_with(&state, &user, None, None, Some(notice)).await
        }
        Err(e) if e.code == "weak_password" => {
            let message = format!(
                "重设密码未成功：{}",
                super::session::password_rule_zh(&e.message)
            );
            let e = crate::AppError::new(e.status, e.code, message);
            devices_page(&state, &user, None, Some((e, NewAccountForm::default()))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /accounts`: a new building head, officer, dispatcher or admin, through the API's own
/// implementation; a refusal shows on the page with what was typed kept (but the password).
pub async fn create_account(
    State(state): State<AppState>,
    posted: Posted<NewAccountForm>,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let form = posted.form;
    let roles: Vec<Role> = role_of(&form.role).into_iter().collect();
    let body = crate::admin::accounts::NewAccountBody {
        login: form.login.trim().to_string(),
        display_name: form.name.trim().to_string(),
        // The chosen community; without one, each community the admin administers.
        grants: (!form.community.is_empty())
            .then(|| crate::storage::Grants::one(&form.community, &roles))
            .flatten(),
        roles: form.community.is_empty().then_some(roles),
        communities: None,
        password: (!form.password.is_empty()).then(|| form.password.clone()),
    };
    let session = user.session.clone();
    let created = if body.password.is_some() {
        let st = state.clone();
        state
            .hashing()
            .run(move || crate::admin::accounts::create_account_as(&st, &session, body))
            .await
            .and_then(|r| r)
    } else {
        crate::admin::blocking(&state, move |st| {
            crate::admin::accounts::create_account_as(st, &session, body)
        })
        .await
    };
    match created {
        Ok(_) => Ok(Redirect::to("/devices").into_response()),
        Err(e) => {
            let kept = NewAccountForm {
                password: String::new(),
                ..form
            };
            devices_page(&state, &user, None, Some((e, kept))).await
        }
    }
}

fn split_building(value: &str) -> Result<(String, String), crate::AppError> {
    value
        .split_once('/')
        .map(|(c, b)| (c.to_string(), b.to_string()))
        .ok_or_else(|| crate::AppError::invalid("请选择楼栋"))
}

/// `POST /assignments`: give a building to an account.
pub async fn assign(State(state): State<AppState>, posted: Posted<AssignForm>) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let session = user.session.clone();
    let form = posted.form;
    let result = crate::admin::blocking(&state, move |st| {
        let (community, building) = split_building(&form.building)?;
        crate::admin::accounts::assign_as(
            st,
            &session,
            crate::admin::accounts::AssignBody {
                account_id: form.account,
                community,
                building,
            },
        )
    })
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/devices").into_response()),
        Err(e) => devices_page(&state, &user, None, Some((e, NewAccountForm::default()))).await,
    }
}

/// `POST /assignments/remove`: take a building from an account.
pub async fn unassign(State(state): State<AppState>, posted: Posted<AssignForm>) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let session = user.session.clone();
    let form = posted.form;
    blocking(&state, move |st| {
        let (community, building) = split_building(&form.building)?;
        crate::admin::accounts::unassign_as(
            st,
            &session,
            &crate::storage::Assignment {
                account_id: form.account,
                community,
                building,
            },
        )
    })
    .await?;
    Ok(Redirect::to("/devices").into_response())
}

/// `GET /devices`: accounts with their buildings, phones with their last sync.
pub async fn devices(State(state): State<AppState>, user: DashUser) -> PageResult {
    devices_page(&state, &user, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /held/{id}/accept`: held offline work goes into its document under the rules.
pub async fn accept_held(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<NoFields>,
) -> PageResult {
    posted.user.require(&[Role::Admin])?;
    let session = posted.user.session.clone();
    let accepted = crate::admin::blocking(&state, move |st| {
        crate::admin::held::accept_held(st, &session, id)
    })
    .await;
    match accepted {
        Ok(_) => Ok(Redirect::to("/devices#h-held").into_response()),
        Err(e) => {
            devices_page(
                &state,
                &posted.user,
                None,
                Some((e, NewAccountForm::default())),
            )
            .await
        }
    }
}

/// `POST /devices/{id}/revoke`: the phone's token stops working; what it sent stays.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    posted.user.require(&[Role::Admin])?;
    let session = posted.user.session;
    blocking(&state, move |st| {
        let id = uuid::Uuid::parse_str(&id)
            .map_err(|_| crate::AppError::invalid("a device id is a UUID"))?;
        crate::admin::accounts::revoke_as(st, &session, &id)
    })
    .await?;
    Ok(Redirect::to("/devices").into_response())
}

/// `POST /devices/{id}/release`: a phone stopped for too much refused work syncs again.
pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    posted.user.require(&[Role::Admin])?;
    let session = posted.user.session;
    blocking(&state, move |st| {
        let id = uuid::Uuid::parse_str(&id)
            .map_err(|_| crate::AppError::invalid("a device id is a UUID"))?;
        crate::admin::accounts::release_as(st, &session, &id)
    })
    .await?;
    Ok(Redirect::to("/devices").into_response())
}

/// What an enrollment QR code holds: the server address and the one-time code, as a URI a
/// phone's scanner hands to the app (`docs/protocol.md`, "Enrollment by QR").
pub fn enrollment_uri(server: &str, code: &str) -> String {
    let query = serde_urlencoded::to_string([("server", server), ("code", code)])
        .expect("invariant: two string pairs always encode");
    format!("doorstep://enroll?{query}")
}

/// An inline SVG QR code of `payload`.
pub fn qr_svg(payload: &str) -> Result<String, crate::AppError> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(crate::AppError::internal)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The same QR code as a PNG (8 pixels per module, a 4-module quiet zone, black on white), the
/// image an admin sends to a building head whose phone then opens it (扫码加入).
pub fn qr_png(payload: &str) -> Result<Vec<u8>, crate::AppError> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(crate::AppError::internal)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![0xFFu8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    let size = u32::try_from(side).map_err(crate::AppError::internal)?;
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(crate::AppError::internal)?;
    writer
        .write_image_data(&pixels)
        .map_err(crate::AppError::internal)?;
    writer.finish().map_err(crate::AppError::internal)?;
    Ok(out)
}

/// [`qr_png`] as base64, for a `data:image/png` link and the admin API.
pub fn qr_png_base64(payload: &str) -> Result<String, crate::AppError> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.encode(qr_png(payload)?))
}

/// The address phones should use: the one the admin's browser reached.
pub fn server_address(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = if headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// `POST /accounts/{id}/code`: a fresh one-time code, shown once as text and QR.
pub async fn issue_code(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let user = posted.user;
    user.require(&[Role::Admin])?;
    let server = server_address(&headers);
    let session = user.session.clone();
    let issued = blocking(&state, move |st| {
        let issued = issue_code_for(st, &session, &id)?;
        let account = st
            .storage()
            .account(&id)?
            .ok_or_else(|| crate::AppError::not_found(format!("no account {id}")))?;
        let payload = enrollment_uri(&server, &issued.code);
        Ok(IssuedView {
            name: account.display_name,
            qr: qr_svg(&payload)?,
            qr_png: qr_png_base64(&payload)?,
            code: issued.code,
            payload,
            expires: format::datetime(issued.record.expires_at),
        })
    })
    .await?;
    devices_page(&state, &user, Some(issued), None).await
}

// ---------------------------------------------------------------------------------------------
// 审计

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Debug, Clone)]
pub struct AuditLine {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    chain: Result<i64, String>,
    kinds: Vec<String>,
    action: String,
    from: String,
    to: String,
    events: Vec<AuditLine>,
    shown_limit: usize,
}

/// At most this many events are listed at once (newest first).
const AUDIT_PAGE: usize = 500;

/// `GET /audit?action=&from=YYYY-MM-DD&to=YYYY-MM-DD`: the audit log filtered, with the chain
/// recomputed on every view.
pub async fn audit(
    State(state): State<AppState>,
    user: DashUser,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    user.require(READERS)?;
    crate::admin::exports::require_street_wide(&user.session)?;
    let chrome = Chrome::new(&user, "审计", "/audit");
    let page = blocking(&state, move |st| {
        let chain = match st.storage().verify_audit_chain() {
            Ok(n) => Ok(n),
            Err(crate::storage::StorageError::Corrupt(what)) => Err(what),
            Err(e) => return Err(e.into()),
        };
        let all: Vec<AuditEvent> = crate::admin::activity::all_audit_events(st)?;
        let mut kinds: Vec<String> = all.iter().map(|e| e.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        let events = all
            .iter()
            .rev()
            .filter(|e| q.action.is_empty() || e.kind == q.action)
            .filter(|e| q.from.is_empty() || format::date(e.at) >= q.from)
            .filter(|e| q.to.is_empty() || format::date(e.at) <= q.to)
            .take(AUDIT_PAGE)
            .map(|e| AuditLine {
                seq: e.seq,
                at: format!("{} {}", format::date(e.at), format::clock(e.at)),
                actor: e.actor.clone(),
                kind: e.kind.clone(),
                subject: e.subject.clone(),
            })
            .collect();
        Ok(AuditPage {
            chrome,
            chain,
            kinds,
            action: q.action,
            from: q.from,
            to: q.to,
            events,
            shown_limit: AUDIT_PAGE,
        })
    })
    .await?;
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(title: &str) -> CardView {
        CardView {
            id: "election-2025".into(),
            title: title.into(),
            kind: "选举",
            status: "投票中",
            meters: vec![
                Meter::area(1_931_040, 2_896_559),
                Meter::headcount(150, 303),
            ],
            delivered: 210,
            returned: 150,
            conflicts: 2,
            late: 1,
        }
    }

    #[test]
    fn an_overview_card_renders_both_meters_against_the_two_thirds_line() {
        let html = CardFragment {
            card: card("第一届业主委员会选举"),
        }
        .render()
        .expect("the card renders");
        insta::assert_snapshot!(html);
    }

    #[test]
    fn text_from_documents_is_escaped() {
        let html = CardFragment {
            card: card("<script>alert(1)</script>"),
        }
        .render()
        .expect("the card renders");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_busiest_two_minutes_count_doors() {
        let mut steady: Vec<Millis> = (0..30).map(|i| i * 180_000).collect();
        assert_eq!(busiest_window(&mut steady), 1);
        let mut burst: Vec<Millis> = (0..100).map(|i| i * 1_000).collect();
        assert_eq!(busiest_window(&mut burst), 100);
    }

    #[test]
    fn logins_sort_as_people_count() {
        let mut logins = vec!["head-10", "head-2", "admin", "head-1"];
        logins.sort_by_key(|l| natural_key(l));
        assert_eq!(logins, ["admin", "head-1", "head-2", "head-10"]);
    }

    #[test]
    fn enrollment_uris_carry_the_server_and_the_code() {
        assert_eq!(
            enrollment_uri("http://10.0.0.2:8080", "ABCD-EFGH-JKMN"),
            "doorstep://enroll?server=http%3A%2F%2F10.0.0.2%3A8080&code=ABCD-EFGH-JKMN"
        );
    }

    #[test]
    fn the_qr_png_is_a_black_on_white_image_with_a_quiet_zone() {
        let payload = enrollment_uri("http://10.0.0.2:8080", "ABCD-EFGH-JKMN");
        let bytes = qr_png(&payload).expect("png");
        let modules = qrcode::QrCode::with_error_correction_level(&payload, qrcode::EcLevel::M)
            .expect("qr")
            .width();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut pixels).expect("frame");
        assert_eq!(info.width as usize, (modules + 8) * 8);
        assert_eq!(info.width, info.height);
        let side = info.width as usize;
        let at = |x: usize, y: usize| pixels[y * side + x];
        // The quiet zone is white; the finder pattern's corner (module 0,0) is black.
        assert!((0..32).all(|x| at(x, 5) == 0xFF && at(5, x) == 0xFF));
        assert_eq!(at(32 + 3, 32 + 3), 0);
        assert!(pixels.iter().all(|&p| p == 0 || p == 0xFF));
    }
}
