//! 投票/议题 draft editor: create a draft (`/campaigns/new`) or edit one (`/campaigns/{id}/edit`)
//! — a resolution with questions each tied to its 民法典 art 278 matter item, an election with
//! candidates and seats, or a survey / hearing with options; title, scope, binding flag and the
//! silence policy. The form is turned into the JSON API's [`DraftBody`] and stored through
//! [`create_draft_as`] / [`edit_draft_as`], the same functions as `POST /campaigns` and
//! `PUT /campaigns/{id}`, so core's `validate_definition` checks it. Refusals come back on the
//! form with everything the admin typed kept.
//!
//! Works without JavaScript: a fixed number of blank rows, and a "再加 3 行" submit button that
//! re-renders the form with more rows and stores nothing.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use doorstep_core::doc::{DocId, DocKind, RegisterDoc};
use doorstep_core::model::{
    Campaign, CampaignKind, CampaignStatus, Candidate, Question, QuestionKind, Role, Rules, Scope,
    SilencePolicy, SurveyOption, is_supermajority_matter,
};
use serde::Deserialize;

use super::results::kind_zh;
use super::session::Posted;
use super::{Chrome, DashUser, PageError, PageResult, blocking, render};
use crate::admin::campaigns::{DraftBody, create_draft_as, edit_draft_as};
use crate::auth::AdminSession;
use crate::error::AppError;
use crate::projections::enum_name;
use crate::state::AppState;

/// The nine matters of 民法典 art 278 (1–9), as the law words them.
pub const MATTERS: [&str; 9] = [
    "制定和修改业主大会议事规则",
    "制定和修改管理规约",
    "选举业主委员会或者更换业主委员会成员",
    "选聘和解聘物业服务企业或者其他管理人",
    "使用建筑物及其附属设施的维修资金",
    "筹集建筑物及其附属设施的维修资金",
    "改建、重建建筑物及其附属设施",
    "改变共有部分的用途或者利用共有部分从事经营活动",
    "有关共有和共同管理权利的其他重大事项",
];

/// The same nine matters in a few words, for the choice list (short enough for a phone).
const MATTERS_SHORT: [&str; 9] = [
    "议事规则",
    "管理规约",
    "选举、更换业委会",
    "选聘、解聘物业",
    "使用维修资金",
    "筹集维修资金",
    "改建、重建",
    "改变共有部分用途或经营",
    "其他重大事项",
];

/// Blank rows shown at least, and added by "再加 3 行".
const MIN_QUESTIONS: usize = 3;
const MIN_CANDIDATES: usize = 9;
const MIN_OPTIONS: usize = 4;
const ADD_ROWS: usize = 3;
/// The most rows the form takes of one list.
const MAX_ROWS: usize = 60;

/// One resolution question row.
#[derive(Debug, Clone, Default)]
pub struct QuestionRow {
    pub id: String,
    pub text: String,
    /// "1"–"9", or empty.
    pub matter: String,
}

/// One candidate or option row.
#[derive(Debug, Clone, Default)]
pub struct NameRow {
    pub id: String,
    pub name: String,
}

/// Messages next to the fields they concern.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    pub id: Option<String>,
    pub community: Option<String>,
    pub title: Option<String>,
    pub scope: Option<String>,
    pub silence: Option<String>,
    pub grace: Option<String>,
    pub questions: Option<String>,
    pub election_text: Option<String>,
    pub seats: Option<String>,
    pub candidates: Option<String>,
    pub survey_text: Option<String>,
    pub max_choices: Option<String>,
    pub options: Option<String>,
    /// Not about one field (e.g. the draft was published meanwhile).
    pub general: Option<String>,
    /// Resolution rows (0-based) that cannot be read, and why.
    pub bad_rows: Vec<(usize, &'static str)>,
}

impl FieldErrors {
    /// Why resolution row `index` (0-based) cannot be read, if it cannot.
    pub fn row_error(&self, index: &usize) -> Option<&'static str> {
        self.bad_rows
            .iter()
            .find(|(i, _)| i == index)
            .map(|(_, why)| *why)
    }

    fn any(&self) -> bool {
        [
            &self.id,
            &self.community,
            &self.title,
            &self.scope,
            &self.silence,
            &self.grace,
            &self.questions,
            &self.election_text,
            &self.seats,
            &self.candidates,
            &self.survey_text,
            &self.max_choices,
            &self.options,
            &self.general,
        ]
        .iter()
        .any(|e| e.is_some())
    }
}

/// Everything the form shows, as text: built from a stored draft, from defaults, or from what
/// the admin posted (kept as typed).
#[derive(Debug, Clone, Default)]
pub struct DraftForm {
    pub id: String,
    pub community: String,
    /// `resolution`, `election`, `survey` or `hearing`.
    pub kind: String,
    pub title: String,
    /// `whole`, `building:3` or `entrance:3-2`.
    pub scope: String,
    pub binding: bool,
    pub silence: String,
    pub silence_announced: bool,
    pub grace_hours: String,
    pub questions: Vec<QuestionRow>,
    pub election_qid: String,
    pub election_text: String,
    pub seats: String,
    pub candidates: Vec<NameRow>,
    pub survey_qid: String,
    pub survey_text: String,
    pub max_choices: String,
    pub options: Vec<NameRow>,
}

fn parse_kind(kind: &str) -> Option<CampaignKind> {
    [
        CampaignKind::Resolution,
        CampaignKind::Election,
        CampaignKind::Survey,
        CampaignKind::Hearing,
    ]
    .into_iter()
    .find(|k| enum_name(k) == kind)
}

fn scope_value(scope: &Scope) -> String {
    match scope {
        Scope::Whole => "whole".to_string(),
        Scope::Building { building } => format!("building:{building}"),
        Scope::Entrance { entrance } => format!("entrance:{entrance}"),
    }
}

fn parse_scope(value: &str) -> Option<Scope> {
    match value.split_once(':') {
        None if value == "whole" => Some(Scope::Whole),
        Some(("building", b)) if !b.is_empty() => Some(Scope::Building {
            building: b.to_string(),
        }),
        Some(("entrance", e)) if !e.is_empty() => Some(Scope::Entrance {
            entrance: e.to_string(),
        }),
        _ => None,
    }
}

fn parse_silence(value: &str) -> Option<SilencePolicy> {
    [
        SilencePolicy::Strict,
        SilencePolicy::DeliveredCountsAsAbstain,
        SilencePolicy::FollowsMajority,
    ]
    .into_iter()
    .find(|p| enum_name(p) == value)
}

const HOUR_MS: i64 = 3600 * 1000;

impl DraftForm {
    /// A blank draft of `kind` in `community` with the defaults of [`Rules::default`].
    fn blank(kind: CampaignKind, community: &str) -> DraftForm {
        let rules = Rules::default();
        DraftForm {
            community: community.to_string(),
            kind: enum_name(&kind),
            scope: "whole".to_string(),
            binding: matches!(kind, CampaignKind::Resolution | CampaignKind::Election),
            silence: enum_name(&rules.silence),
            silence_announced: rules.silence_announced,
            grace_hours: (rules.grace_period_ms / HOUR_MS).to_string(),
            election_text: "选举业主委员会委员".to_string(),
            seats: "7".to_string(),
            max_choices: "1".to_string(),
            ..DraftForm::default()
        }
    }

    /// The form of a stored draft, shown as `kind` (its own unless the admin switches), or
    /// why the form cannot hold it.
    fn of(campaign: &Campaign, kind: CampaignKind) -> Result<DraftForm, String> {
        let mut form = DraftForm::blank(kind, &campaign.community);
        form.id = campaign.id.clone();
        form.title = campaign.title.clone();
        form.scope = scope_value(&campaign.scope);
        form.binding = campaign.binding;
        form.silence = enum_name(&campaign.rules.silence);
        form.silence_announced = campaign.rules.silence_announced;
        form.grace_hours = if campaign.rules.grace_period_ms % HOUR_MS == 0 {
            (campaign.rules.grace_period_ms / HOUR_MS).to_string()
        } else {
            return Err("截止后宽限期不是整小时".to_string());
        };
        if kind != campaign.kind {
            // Switching the kind starts the questions afresh.
            return Ok(form);
        }
        let mut questions: Vec<&Question> = campaign.questions.values().collect();
        questions.sort_by_key(|q| (q.order, q.id.clone()));
        match kind {
            CampaignKind::Resolution => {
                for q in questions {
                    let QuestionKind::Resolution { matter } = q.kind else {
                        return Err("表决中含有非表决类问题".to_string());
                    };
                    form.questions.push(QuestionRow {
                        id: q.id.clone(),
                        text: q.text.clone(),
                        matter: matter.to_string(),
                    });
                }
            }
            CampaignKind::Election => {
                let [q] = questions.as_slice() else {
                    return Err("选举含有不止一个问题".to_string());
                };
                let QuestionKind::Election { seats, candidates } = &q.kind else {
                    return Err("选举中含有非选举类问题".to_string());
                };
                form.election_qid = q.id.clone();
                form.election_text = q.text.clone();
                form.seats = seats.to_string();
                let mut list: Vec<&Candidate> = candidates.values().collect();
                list.sort_by_key(|c| (c.order, c.id.clone()));
                form.candidates = list
                    .into_iter()
                    .map(|c| NameRow {
                        id: c.id.clone(),
                        name: c.name.clone(),
                    })
                    .collect();
            }
            CampaignKind::Survey | CampaignKind::Hearing => {
                let [q] = questions.as_slice() else {
                    return Err("意见征集含有不止一个问题".to_string());
                };
                let QuestionKind::Survey {
                    options,
                    max_choices,
                } = &q.kind
                else {
                    return Err("意见征集中含有非选项类问题".to_string());
                };
                form.survey_qid = q.id.clone();
                form.survey_text = q.text.clone();
                form.max_choices = max_choices.to_string();
                let mut list: Vec<&SurveyOption> = options.values().collect();
                list.sort_by_key(|o| (o.order, o.id.clone()));
                form.options = list
                    .into_iter()
                    .map(|o| NameRow {
                        id: o.id.clone(),
                        name: o.label.clone(),
                    })
                    .collect();
            }
        }
        Ok(form)
    }

    /// The form as posted: every field kept as typed, every row kept (blank ones too).
    fn posted(pairs: &[(String, String)]) -> DraftForm {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let rows = |prefix: &str, fields: &[&str]| -> Vec<Vec<String>> {
            let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
            for (k, v) in pairs {
                let Some(rest) = k.strip_prefix(prefix) else {
                    continue;
                };
                let Some((index, field)) = rest.split_once('_') else {
                    continue;
                };
                let (Ok(index), Some(at)) = (
                    index.parse::<usize>(),
                    fields.iter().position(|f| *f == field),
                ) else {
                    continue;
                };
                if index >= MAX_ROWS {
                    continue;
                }
                out.entry(index)
                    .or_insert_with(|| vec![String::new(); fields.len()])[at] = v.clone();
            }
            out.into_values().collect()
        };
        DraftForm {
            id: get("id").trim().to_string(),
            community: get("community"),
            kind: get("kind"),
            title: get("title"),
            scope: get("scope"),
            binding: !get("binding").is_empty(),
            silence: get("silence"),
            silence_announced: !get("silence_announced").is_empty(),
            grace_hours: get("grace_hours"),
            questions: rows("q", &["id", "text", "matter"])
                .into_iter()
                .map(|r| QuestionRow {
                    id: r[0].clone(),
                    text: r[1].clone(),
                    matter: r[2].clone(),
                })
                .collect(),
            election_qid: get("election_qid"),
            election_text: get("election_text"),
            seats: get("seats"),
            candidates: rows("c", &["id", "name"])
                .into_iter()
                .map(|r| NameRow {
                    id: r[0].clone(),
                    name: r[1].clone(),
                })
                .collect(),
            survey_qid: get("survey_qid"),
            survey_text: get("survey_text"),
            max_choices: get("max_choices"),
            options: rows("o", &["id", "label"])
                .into_iter()
                .map(|r| NameRow {
                    id: r[0].clone(),
                    name: r[1].clone(),
                })
                .collect(),
        }
    }

    /// Pad each list with blank rows (at least its minimum, and `extra` more after the filled
    /// ones when asked).
    fn padded(mut self, extra: usize) -> DraftForm {
        fn pad<T: Default>(rows: &mut Vec<T>, min: usize, extra: usize, filled: usize) {
            let want = min.max(filled + 1).max(rows.len()) + extra;
            while rows.len() < want.min(MAX_ROWS) {
                rows.push(T::default());
            }
        }
        let q = self
            .questions
            .iter()
            .filter(|r| !r.text.trim().is_empty())
            .count();
        let c = self
            .candidates
            .iter()
            .filter(|r| !r.name.trim().is_empty())
            .count();
        let o = self
            .options
            .iter()
            .filter(|r| !r.name.trim().is_empty())
            .count();
        let kind = parse_kind(&self.kind);
        let extra_for = |k: CampaignKind| if kind == Some(k) { extra } else { 0 };
        pad(
            &mut self.questions,
            MIN_QUESTIONS,
            extra_for(CampaignKind::Resolution),
            q,
        );
        pad(
            &mut self.candidates,
            MIN_CANDIDATES,
            extra_for(CampaignKind::Election),
            c,
        );
        let survey_extra = extra_for(CampaignKind::Survey) + extra_for(CampaignKind::Hearing);
        pad(&mut self.options, MIN_OPTIONS, survey_extra, o);
        self
    }

    /// The JSON API's body for this form, or the fields that cannot be read.
    fn to_body(&self) -> Result<DraftBody, Box<FieldErrors>> {
        let mut errors = FieldErrors::default();
        let kind = parse_kind(&self.kind);
        if kind.is_none() {
            errors.general = Some("请选择投票/议题的类型".to_string());
        }
        let scope = parse_scope(&self.scope);
        if scope.is_none() {
            errors.scope = Some("请选择投票范围".to_string());
        }
        let silence = parse_silence(&self.silence);
        if silence.is_none() {
            errors.silence = Some("请选择未投票业主的计算方式".to_string());
        }
        let grace = self
            .grace_hours
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|h| (0..=720).contains(h));
        if grace.is_none() {
            errors.grace = Some("宽限期须为 0–720 之间的整数小时".to_string());
        }
        let mut questions = BTreeMap::new();
        match kind {
            Some(CampaignKind::Resolution) => {
                let mut taken: BTreeSet<String> = self
                    .questions
                    .iter()
                    .map(|r| r.id.clone())
                    .filter(|i| !i.is_empty())
                    .collect();
                let mut order = 0;
                for (index, row) in self.questions.iter().enumerate() {
                    let text = row.text.trim();
                    if text.is_empty() {
                        if !row.matter.is_empty() {
                            errors
                                .bad_rows
                                .push((index, "选了事项，但没有填写表决内容"));
                        }
                        continue;
                    }
                    let Some(matter) = row
                        .matter
                        .parse::<u8>()
                        .ok()
                        .filter(|m| (1..=9).contains(m))
                    else {
                        errors
                            .bad_rows
                            .push((index, "请选择对应的民法典第二百七十八条第几项"));
                        continue;
                    };
                    order += 1;
                    let id = row_id(&row.id, "q", order, &mut taken);
                    questions.insert(
                        id.clone(),
                        Question {
                            id,
                            order,
                            text: text.to_string(),
                            kind: QuestionKind::Resolution { matter },
                        },
                    );
                }
                if !errors.bad_rows.is_empty() {
                    let rows: Vec<String> = errors
                        .bad_rows
                        .iter()
                        .map(|(i, why)| format!("第 {} 项{why}", i + 1))
                        .collect();
                    errors.questions = Some(rows.join("；"));
                }
            }
            Some(CampaignKind::Election) => {
                let seats = self.seats.trim().parse::<i64>().ok();
                if seats.is_none() {
                    errors.seats = Some("请选择应选名额".to_string());
                }
                if self.election_text.trim().is_empty() {
                    errors.election_text = Some("请填写选举事项".to_string());
                }
                let mut taken = self
                    .candidates
                    .iter()
                    .map(|r| r.id.clone())
                    .filter(|i| !i.is_empty())
                    .collect();
                let mut candidates = BTreeMap::new();
                let mut order = 0;
                for row in &self.candidates {
                    let name = row.name.trim();
                    if name.is_empty() {
                        continue;
                    }
                    order += 1;
                    let id = row_id(&row.id, "cand-", order, &mut taken);
                    candidates.insert(
                        id.clone(),
                        Candidate {
                            id,
                            name: name.to_string(),
                            order,
                        },
                    );
                }
                let qid = nonempty_or(&self.election_qid, "q1");
                questions.insert(
                    qid.clone(),
                    Question {
                        id: qid,
                        order: 1,
                        text: self.election_text.trim().to_string(),
                        kind: QuestionKind::Election {
                            seats: seats.unwrap_or(0),
                            candidates,
                        },
                    },
                );
            }
            Some(CampaignKind::Survey | CampaignKind::Hearing) => {
                let max_choices = self.max_choices.trim().parse::<i64>().ok();
                if max_choices.is_none() {
                    errors.max_choices = Some("最多可选数须为整数".to_string());
                }
                if self.survey_text.trim().is_empty() {
                    errors.survey_text = Some("请填写征询的问题".to_string());
                }
                let mut taken = self
                    .options
                    .iter()
                    .map(|r| r.id.clone())
                    .filter(|i| !i.is_empty())
                    .collect();
                let mut options = BTreeMap::new();
                let mut order = 0;
                for row in &self.options {
                    let label = row.name.trim();
                    if label.is_empty() {
                        continue;
                    }
                    order += 1;
                    let id = row_id(&row.id, "opt-", order, &mut taken);
                    options.insert(
                        id.clone(),
                        SurveyOption {
                            id,
                            label: label.to_string(),
                            order,
                        },
                    );
                }
                let qid = nonempty_or(&self.survey_qid, "q1");
                questions.insert(
                    qid.clone(),
                    Question {
                        id: qid,
                        order: 1,
                        text: self.survey_text.trim().to_string(),
                        kind: QuestionKind::Survey {
                            options,
                            max_choices: max_choices.unwrap_or(0),
                        },
                    },
                );
            }
            None => {}
        }
        match (kind, scope, silence, grace) {
            (Some(kind), Some(scope), Some(silence), Some(grace)) if !errors.any() => {
                Ok(DraftBody {
                    id: self.id.clone(),
                    community: self.community.clone(),
                    title: self.title.trim().to_string(),
                    kind,
                    binding: self.binding,
                    scope,
                    rules: Rules {
                        silence,
                        grace_period_ms: grace * HOUR_MS,
                        silence_announced: self.silence_announced,
                    },
                    questions,
                })
            }
            _ => Err(Box::new(errors)),
        }
    }
}

fn nonempty_or(value: &str, fallback: &str) -> String {
    if value.trim().is_empty() {
        fallback.to_string()
    } else {
        value.trim().to_string()
    }
}

/// The row's own id when it has one, else `{prefix}{n}` with the least `n ≥ order` not taken.
fn row_id(own: &str, prefix: &str, order: i64, taken: &mut BTreeSet<String>) -> String {
    if !own.trim().is_empty() {
        return own.trim().to_string();
    }
    let mut n = order;
    loop {
        let id = format!("{prefix}{n}");
        if taken.insert(id.clone()) {
            return id;
        }
        n += 1;
    }
}

/// Where a refusal of the create/edit functions belongs on the form, in Chinese.
fn place_refusal(e: &AppError, errors: &mut FieldErrors) {
    let m = e.message.as_str();
    let slot = match e.code {
        "exists" => Some((&mut errors.id, "这个编号已被使用，请换一个。")),
        "not_a_draft" => Some((
            &mut errors.general,
            "这项投票已经发布，不能再修改（发布时名册和规则已冻结）。",
        )),
        "forbidden" => Some((&mut errors.general, "只有管理员可以创建和修改投票/议题。")),
        "not_found" if m.contains("register") => Some((
            &mut errors.community,
            "这个社区还没有导入名册，请先在「名册」页导入。",
        )),
        _ if m.contains("campaign id") => Some((
            &mut errors.id,
            "编号须为 1–64 个英文字母、数字或 - _ .（如 lift-3-2）。",
        )),
        _ if m.contains("needs a title") => Some((&mut errors.title, "请填写标题。")),
        _ if m.contains("at least one question") => {
            Some((&mut errors.questions, "至少填写一个表决事项。"))
        }
        _ if m.contains("matter item") => Some((
            &mut errors.questions,
            "事项须为民法典第二百七十八条第 1–9 项之一。",
        )),
        _ if m.contains("seats must be odd") => {
            Some((&mut errors.seats, "应选名额须为 5–11 之间的奇数。"))
        }
        _ if m.contains("no candidates") => Some((&mut errors.candidates, "至少填写一名候选人。")),
        _ if m.contains("a survey needs options") => Some((
            &mut errors.options,
            "至少填写一个选项，且最多可选数不小于 1。",
        )),
        _ if m.contains("stays in its community") => {
            Some((&mut errors.community, "投票创建后不能换到其他社区。"))
        }
        _ => None,
    };
    let words = match slot {
        Some((field, words)) => {
            *field = Some(words.to_string());
            None
        }
        None => Some("保存未完成，数据没有改动。".to_string()),
    };
    // The server's own words stay visible next to the Chinese, for the record.
    errors.general = match (errors.general.take(), words) {
        (Some(g), _) => Some(format!("{g}（{} · {}）", e.code, e.message)),
        (None, Some(w)) => Some(format!("{w}（{} · {}）", e.code, e.message)),
        (None, None) => Some(format!("草稿未保存（{} · {}）", e.code, e.message)),
    };
}

/// A scope choice.
#[derive(Debug, Clone)]
pub struct ScopeChoice {
    pub value: String,
    pub label: String,
}

/// A matter choice: the short label of the list, and the law's words.
#[derive(Debug, Clone)]
pub struct MatterChoice {
    pub value: String,
    pub label: String,
    pub full: &'static str,
    pub supermajority: bool,
}

#[derive(Template)]
#[template(path = "draft.html")]
struct DraftPage {
    chrome: Chrome,
    /// `/campaigns/new` or `/campaigns/{id}/edit`.
    action: String,
    editing: bool,
    form: DraftForm,
    kind_label: &'static str,
    kinds: Vec<(String, &'static str, bool)>,
    communities: Vec<String>,
    scopes: Vec<ScopeChoice>,
    matters: Vec<MatterChoice>,
    seat_choices: Vec<String>,
    errors: FieldErrors,
    has_errors: bool,
    /// Why a stored draft cannot be edited here.
    unfit: Option<String>,
}

/// The registers of the communities `session` works in.
fn registers(st: &AppState, session: &AdminSession) -> Result<Vec<RegisterDoc>, AppError> {
    let mut out = Vec::new();
    for meta in st.storage().documents()? {
        if meta.id.kind() == DocKind::Register
            && session.can(&[Role::Admin], &meta.community)
            && let Some(r) = st.docs().hydrate::<RegisterDoc>(&meta.id)?
        {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.community.cmp(&b.community));
    Ok(out)
}

fn natural(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

/// Whole, each building, each entrance of `community`'s register.
fn scope_choices(st: &AppState, community: &str) -> Result<Vec<ScopeChoice>, AppError> {
    let mut out = vec![ScopeChoice {
        value: "whole".to_string(),
        label: "全体业主（整个物业管理区域）".to_string(),
    }];
    let id = DocId::Register {
        community: community.to_string(),
    };
    if let Some(register) = st.docs().hydrate::<RegisterDoc>(&id)? {
        let mut buildings: Vec<_> = register.buildings.values().collect();
        buildings.sort_by_key(|b| natural(&b.id));
        for b in &buildings {
            out.push(ScopeChoice {
                value: format!("building:{}", b.id),
                label: format!("{}全体业主", b.label),
            });
        }
        for b in &buildings {
            for (entrance, label) in &b.entrances {
                out.push(ScopeChoice {
                    value: format!("entrance:{entrance}"),
                    label: format!("{} {}业主", b.label, label),
                });
            }
        }
    }
    Ok(out)
}

fn matter_choices() -> Vec<MatterChoice> {
    MATTERS_SHORT
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let n = i as u8 + 1;
            let rule = if is_supermajority_matter(n) {
                "（¾）"
            } else {
                ""
            };
            MatterChoice {
                value: n.to_string(),
                label: format!("第{n}项 {text}{rule}"),
                full: MATTERS[i],
                supermajority: is_supermajority_matter(n),
            }
        })
        .collect()
}

struct Rendered {
    form: DraftForm,
    errors: FieldErrors,
    unfit: Option<String>,
    /// The refusal's code, for the `x-error-code` header.
    code: Option<&'static str>,
}

async fn draft_page(
    state: &AppState,
    user: &DashUser,
    editing: Option<String>,
    rendered: Rendered,
    status: StatusCode,
) -> PageResult {
    let title = match &editing {
        Some(_) => "编辑草稿",
        None => "新建投票/议题",
    };
    let chrome = Chrome::new(user, title, "/campaigns");
    let code = rendered.code;
    let session = user.session.clone();
    let page = blocking(state, move |st| {
        let registers = registers(st, &session)?;
        let mut form = rendered.form;
        if form.community.is_empty()
            && let Some(r) = registers.first()
        {
            form.community = r.community.clone();
        }
        let current = parse_kind(&form.kind);
        Ok(DraftPage {
            chrome,
            action: match &editing {
                Some(id) => format!("/campaigns/{id}/edit"),
                None => "/campaigns/new".to_string(),
            },
            editing: editing.is_some(),
            kind_label: current.map(kind_zh).unwrap_or("未选择"),
            kinds: [
                CampaignKind::Resolution,
                CampaignKind::Election,
                CampaignKind::Survey,
                CampaignKind::Hearing,
            ]
            .into_iter()
            .map(|k| (enum_name(&k), kind_zh(k), current == Some(k)))
            .collect(),
            communities: registers.iter().map(|r| r.community.clone()).collect(),
            scopes: scope_choices(st, &form.community)?,
            matters: matter_choices(),
            seat_choices: ["5", "7", "9", "11"].map(str::to_string).to_vec(),
            has_errors: rendered.errors.any(),
            errors: rendered.errors,
            unfit: rendered.unfit,
            form,
        })
    })
    .await?;
    let mut response = render(status, &page);
    if let Some(code) = code {
        response
            .headers_mut()
            .insert("x-error-code", axum::http::HeaderValue::from_static(code));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

/// `GET /campaigns/new?kind=resolution|election|survey|hearing`: a blank draft.
pub async fn new_page(
    State(state): State<AppState>,
    user: DashUser,
    Query(q): Query<KindQuery>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let kind = parse_kind(&q.kind).unwrap_or(CampaignKind::Resolution);
    let rendered = Rendered {
        form: DraftForm::blank(kind, "").padded(0),
        errors: FieldErrors::default(),
        unfit: None,
        code: None,
    };
    draft_page(&state, &user, None, rendered, StatusCode::OK).await
}

/// `GET /campaigns/{id}/edit[?kind=]`: a stored draft in the form (switching its kind when
/// asked); a published campaign is refused with `not_a_draft`.
pub async fn edit_page(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    Query(q): Query<KindQuery>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let id2 = id.clone();
    let session = user.session.clone();
    let campaign = blocking(&state, move |st| {
        crate::admin::campaign_of(st, &session, &[Role::Admin], &id2)
    })
    .await?;
    if campaign.status != CampaignStatus::Draft {
        return Err(PageError::from(AppError::conflict(
            "not_a_draft",
            "这项投票已经发布，不能再修改（发布时名册和规则已冻结）。",
        ))
        .with_back(format!("/campaigns/{id}")));
    }
    let kind = parse_kind(&q.kind).unwrap_or(campaign.kind);
    let rendered = match DraftForm::of(&campaign, kind) {
        Ok(form) => Rendered {
            form: form.padded(0),
            errors: FieldErrors::default(),
            unfit: None,
            code: None,
        },
        Err(why) => Rendered {
            form: DraftForm::blank(campaign.kind, &campaign.community),
            errors: FieldErrors::default(),
            unfit: Some(why),
            code: Some("draft_not_editable_here"),
        },
    };
    draft_page(&state, &user, Some(id), rendered, StatusCode::OK).await
}

/// Handle a posted form: more rows, or store through `save` and go to the campaign.
async fn posted(
    state: &AppState,
    user: DashUser,
    pairs: Vec<(String, String)>,
    editing: Option<String>,
) -> PageResult {
    user.require(&[Role::Admin])?;
    let mut form = DraftForm::posted(&pairs);
    if let Some(id) = &editing {
        form.id = id.clone();
    }
    // "再加 3 行" and "按所选类型更新表单" re-render the form and store nothing.
    if let Some((_, add)) = pairs.iter().find(|(k, _)| k == "add") {
        let extra = if add == "rows" { ADD_ROWS } else { 0 };
        let rendered = Rendered {
            form: form.padded(extra),
            errors: FieldErrors::default(),
            unfit: None,
            code: None,
        };
        return draft_page(state, &user, editing, rendered, StatusCode::OK).await;
    }
    let body = match form.to_body() {
        Ok(body) => body,
        Err(errors) => {
            let rendered = Rendered {
                form: form.padded(0),
                errors: *errors,
                unfit: None,
                code: Some("invalid_input"),
            };
            return draft_page(
                state,
                &user,
                editing,
                rendered,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let session = user.session.clone();
    let target = editing.clone();
    let saved = crate::admin::blocking(state, move |st| match &target {
        Some(id) => edit_draft_as(st, &session, id, body),
        None => create_draft_as(st, &session, body),
    })
    .await;
    match saved {
        Ok(campaign) => Ok(Redirect::to(&format!("/campaigns/{}", campaign.id)).into_response()),
        Err(e) => {
            let mut errors = FieldErrors::default();
            place_refusal(&e, &mut errors);
            let rendered = Rendered {
                form: form.padded(0),
                errors,
                unfit: None,
                code: Some(e.code),
            };
            draft_page(state, &user, editing, rendered, e.status).await
        }
    }
}

/// `POST /campaigns/new`: store a new draft (or add rows).
pub async fn create(
    State(state): State<AppState>,
    posted_form: Posted<Vec<(String, String)>>,
) -> PageResult {
    posted(&state, posted_form.user, posted_form.form, None).await
}

/// `POST /campaigns/{id}/edit`: replace a draft's definition (or add rows).
pub async fn edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted_form: Posted<Vec<(String, String)>>,
) -> PageResult {
    posted(&state, posted_form.user, posted_form.form, Some(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_posted_resolution_becomes_the_api_body() {
        let form = DraftForm::posted(&pairs(&[
            ("id", "lift-3-2"),
            ("community", "tpy"),
            ("kind", "resolution"),
            ("title", " 3号楼2单元加装电梯 "),
            ("scope", "entrance:3-2"),
            ("binding", "on"),
            ("silence", "strict"),
            ("grace_hours", "24"),
            ("q0_id", ""),
            ("q0_text", "同意加装电梯"),
            ("q0_matter", "8"),
            ("q1_id", ""),
            ("q1_text", ""),
            ("q1_matter", ""),
            ("q2_id", ""),
            ("q2_text", "同意使用维修资金"),
            ("q2_matter", "5"),
        ]));
        let body = form.to_body().expect("reads");
        assert_eq!(body.title, "3号楼2单元加装电梯");
        assert_eq!(
            body.scope,
            Scope::Entrance {
                entrance: "3-2".into()
            }
        );
        let ids: Vec<_> = body.questions.keys().cloned().collect();
        assert_eq!(ids, vec!["q1", "q2"]);
        assert_eq!(
            body.questions["q2"].kind,
            QuestionKind::Resolution { matter: 5 }
        );
        assert_eq!(body.rules, Rules::default());
    }

    #[test]
    fn a_question_without_its_matter_is_an_error_on_the_form() {
        let form = DraftForm::posted(&pairs(&[
            ("kind", "resolution"),
            ("scope", "whole"),
            ("silence", "strict"),
            ("grace_hours", "24"),
            ("q0_text", "同意"),
        ]));
        let errors = form.to_body().expect_err("needs a matter");
        assert!(errors.questions.is_some());
    }

    #[test]
    fn a_stored_election_round_trips_through_the_form() {
        let body = DraftForm::posted(&pairs(&[
            ("id", "e1"),
            ("community", "tpy"),
            ("kind", "election"),
            ("title", "选举"),
            ("scope", "whole"),
            ("binding", "on"),
            ("silence", "strict"),
            ("grace_hours", "24"),
            ("election_text", "选举业主委员会委员"),
            ("seats", "5"),
            ("c0_name", "甲"),
            ("c1_name", ""),
            ("c2_name", "乙"),
        ]))
        .to_body()
        .expect("reads");
        let campaign = body.clone().into_campaign().expect("valid");
        let again = DraftForm::of(&campaign, CampaignKind::Election)
            .expect("fits")
            .to_body()
            .expect("reads");
        assert_eq!(again.questions, body.questions);
        let QuestionKind::Election { candidates, .. } = &body.questions["q1"].kind else {
            panic!("an election");
        };
        assert_eq!(
            candidates.keys().cloned().collect::<Vec<_>>(),
            vec!["cand-1", "cand-2"]
        );
    }
}
