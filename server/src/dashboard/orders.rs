//! 微心愿: work orders by state, each with its unit, title, assignee and history; the dispatcher
//! (派单员) or admin dispatches an order to one of its building's heads (派单) and follows it
//! to done. Every button is one step through [`crate::admin::orders::move_order_as`], the same
//! function as the JSON API, so core's rules decide; the page offers only the steps those rules
//! would allow the user now (tried on a throwaway fork), and a refusal is shown on the order
//! with its code.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use doorstep_core::model::OrderStatus;
use serde::Deserialize;

use super::format;
use super::session::Posted;
use super::{Chrome, DashUser, PageResult, blocking, render};
use crate::admin::orders::{
    ALL_STATUSES, MoveBody, NewOrderBody, ORDER_ROLES, OrderDetail, building_heads,
    create_order_as, move_order_as, order_details, permitted_steps,
};
use crate::admin::register::building_rows;
use crate::admin::writer_of;
use crate::error::AppError;
use crate::projections::enum_name;
use crate::state::AppState;

/// At most this many orders are shown at once; the filters narrow the rest down.
const MAX_CARDS: usize = 80;

/// A work order's status as residents and staff say it.
pub fn order_status_zh(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Submitted => "待审核",
        OrderStatus::UnderReview => "审核中",
        OrderStatus::Rejected => "未通过",
        OrderStatus::Merged => "已合并",
        OrderStatus::Published => "待派单",
        OrderStatus::Dispatched => "已派单",
        OrderStatus::Claimed => "楼长已接单",
        OrderStatus::InProgress => "办理中",
        OrderStatus::Done => "已办结待确认",
        OrderStatus::Confirmed => "居民已确认",
        OrderStatus::Disputed => "居民有异议",
        OrderStatus::Unreachable => "联系不上居民",
        OrderStatus::Closed => "已关闭",
    }
}

/// The button that moves an order to `to`.
fn step_label(to: OrderStatus) -> &'static str {
    match to {
        OrderStatus::Submitted => "重新提交",
        OrderStatus::UnderReview => "开始审核",
        OrderStatus::Rejected => "不予受理",
        OrderStatus::Merged => "与其他心愿合并",
        OrderStatus::Published => "审核通过，待派单",
        OrderStatus::Dispatched => "派单",
        OrderStatus::Claimed => "我来接单",
        OrderStatus::InProgress => "开始办理",
        OrderStatus::Done => "标记办结",
        OrderStatus::Confirmed => "居民确认已办好",
        OrderStatus::Disputed => "居民有异议",
        OrderStatus::Unreachable => "联系不上居民",
        OrderStatus::Closed => "关闭",
    }
}

/// What happens next when the user has no step to take themselves.
fn waiting_for(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Dispatched | OrderStatus::Claimed => "等待接单的楼栋长在手机上开始办理。",
        OrderStatus::InProgress => "楼栋长办理中，办结后会在手机上标记。",
        OrderStatus::Closed => "已关闭，处理记录保留。",
        OrderStatus::Published => "本楼还没有可派单的楼栋长，请先在「设备与楼栋长」中分配楼栋。",
        _ => "您的账号暂时没有可执行的下一步。",
    }
}

/// Chinese words for the refusals this page can meet.
fn refusal_zh(code: &str) -> &'static str {
    match code {
        "order_changed" => "这条心愿在您查看后已被他人处理，下面显示的是最新状态，请确认后再操作。",
        "order_wrong_status" => "当前状态不能进行这一步。",
        "order_assignee_required" => "派单时请选择一位楼栋长。",
        "order_assignee_not_head" => "所选账号不是本楼的楼栋长。",
        "order_assignee_unexpected" => "只有派单时才指定接单人。",
        "order_reason_required" => "居民尚未确认办好就关闭，须填写关闭原因。",
        "forbidden" => "您的账号没有处理微心愿的权限。",
        "not_found" => "找不到这条心愿，可能已被删除或链接有误。",
        "invalid_input" => "提交的内容不完整或格式不对，请检查后重试。",
        code => format::rule_code_zh(code).unwrap_or("操作未完成，数据没有改动。"),
    }
}

/// One step offered as a button.
#[derive(Debug, Clone)]
pub struct StepButton {
    pub to: String,
    pub label: &'static str,
    pub danger: bool,
}

/// One line of an order's history.
#[derive(Debug, Clone)]
pub struct HistoryLine {
    pub at: String,
    pub status: &'static str,
    pub by: String,
    pub note: String,
}

/// A refusal shown on the page.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: String,
    pub words: &'static str,
    pub message: String,
    /// The order it concerns, if one.
    pub order: Option<String>,
}

/// One order as a card.
#[derive(Debug, Clone)]
pub struct OrderCard {
    pub id: String,
    pub community: String,
    pub building: String,
    pub place: String,
    pub unit: String,
    pub title: String,
    pub detail: String,
    pub status_key: String,
    pub status: &'static str,
    pub assignee: String,
    pub created: String,
    pub history: Vec<HistoryLine>,
    /// The building's heads (id, name) when dispatching is a step the user may take.
    pub dispatch_to: Vec<(String, String)>,
    pub steps: Vec<StepButton>,
    /// Closing is offered without the resident's confirmation: the note is the reason.
    pub reason_needed: bool,
    pub waiting: &'static str,
    pub error: Option<Refusal>,
}

/// A group of cards with one status.
#[derive(Debug, Clone)]
pub struct Group {
    pub key: String,
    pub label: &'static str,
    pub cards: Vec<OrderCard>,
}

/// A filter link with its count.
#[derive(Debug, Clone)]
pub struct Tab {
    pub key: String,
    pub label: &'static str,
    pub count: usize,
    pub current: bool,
}

/// The 登记 form's fields, kept after a refusal.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewOrderForm {
    #[serde(default)]
    pub community: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    state: String,
    building: String,
    buildings: Vec<(String, String)>,
    communities: Vec<String>,
    groups: Vec<Group>,
    shown: usize,
    /// Orders matching the filter (more than `shown` when the list was cut).
    matching: usize,
    notice: Option<String>,
    error: Option<Refusal>,
    draft: NewOrderForm,
}

/// `?state=&building=` filter and the `done` notice after a step.
#[derive(Debug, Default, Deserialize)]
pub struct OrdersQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    building: String,
    #[serde(default)]
    done: String,
    #[serde(default)]
    order: String,
}

fn parse_status(key: &str) -> Option<OrderStatus> {
    ALL_STATUSES.into_iter().find(|s| enum_name(s) == key)
}

/// One building's heads (id, name) and, per order, the steps the user may take now.
struct BuildingSteps {
    heads: Vec<(String, String)>,
    steps: BTreeMap<String, Vec<OrderStatus>>,
}

/// Build the page: every order (filtered), grouped by status in lifecycle order, each with the
/// steps core's rules allow this user now.
fn page_of(
    st: &AppState,
    user: &DashUser,
    chrome: Chrome,
    q: &OrdersQuery,
    error: Option<Refusal>,
    draft: NewOrderForm,
) -> Result<OrdersPage, AppError> {
    let all = order_details(st, &user.session, None, None)?;
    let building_list = building_rows(st, &user.session, None)?;
    let accounts = st.storage().accounts()?;
    let name = |id: &str| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let label = |community: &str, building: &str| {
        building_list
            .iter()
            .find(|b| b.community == community && b.building == building)
            .map(|b| b.label.clone())
            .unwrap_or_else(|| format!("{building} 号楼"))
    };
    let filter = parse_status(&q.state);
    // `3`, or `tpy/3` when several communities share building ids.
    let in_building = |o: &OrderDetail| match q.building.split_once('/') {
        Some((c, b)) => o.community == c && o.building == b,
        None => q.building.is_empty() || o.building == q.building,
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for o in all.iter().filter(|o| in_building(o)) {
        *counts.entry(enum_name(&o.status)).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut tabs = vec![Tab {
        key: String::new(),
        label: "全部",
        count: total,
        current: filter.is_none(),
    }];
    tabs.extend(ALL_STATUSES.iter().filter_map(|s| {
        let key = enum_name(s);
        let count = counts.get(&key).copied().unwrap_or(0);
        (count > 0 || filter == Some(*s)).then(|| Tab {
            current: filter == Some(*s),
            key,
            label: order_status_zh(*s),
            count,
        })
    }));

    let mut matching: Vec<&OrderDetail> = all
        .iter()
        .filter(|o| in_building(o) && filter.is_none_or(|f| o.status == f))
        .collect();
    // In lifecycle order (the groups' order), oldest first within a status.
    matching.sort_by_key(|o| ALL_STATUSES.iter().position(|s| *s == o.status));
    let matching_count = matching.len();
    let shown: Vec<&OrderDetail> = matching.into_iter().take(MAX_CARDS).collect();
    // Heads and permitted steps per building, tried once per building document.
    let mut per_building: BTreeMap<(String, String), BuildingSteps> = BTreeMap::new();
    for o in &shown {
        let key = (o.community.clone(), o.building.clone());
        if per_building.contains_key(&key) {
            continue;
        }
        let heads: Vec<(String, String)> = building_heads(st, &o.community, &o.building)?
            .into_iter()
            .map(|a| (a.id, a.display_name))
            .collect();
        let writer = writer_of(st, &user.session, &o.community)?;
        let steps = permitted_steps(
            st,
            &writer,
            &o.community,
            &o.building,
            heads.first().map(|h| h.0.as_str()),
        )?;
        per_building.insert(key, BuildingSteps { heads, steps });
    }
    let mut groups: Vec<Group> = Vec::new();
    for status in ALL_STATUSES {
        let cards: Vec<OrderCard> = shown
            .iter()
            .filter(|o| o.status == status)
            .map(|o| {
                let BuildingSteps { heads, steps } =
                    &per_building[&(o.community.clone(), o.building.clone())];
                let allowed = steps.get(&o.order.id).cloned().unwrap_or_default();
                let dispatch_to = if allowed.contains(&OrderStatus::Dispatched) {
                    heads.clone()
                } else {
                    Vec::new()
                };
                // Claiming (楼长接单) is a building head's step: the rules let a dispatcher
                // claim for themselves too, but the page offers it only to the building's heads.
                let is_head = heads.iter().any(|h| h.0 == user.session.account.id);
                let buttons: Vec<StepButton> = allowed
                    .iter()
                    .filter(|s| **s != OrderStatus::Dispatched)
                    .filter(|s| **s != OrderStatus::Claimed || is_head)
                    .map(|s| StepButton {
                        to: enum_name(s),
                        label: step_label(*s),
                        danger: matches!(
                            s,
                            OrderStatus::Rejected | OrderStatus::Closed | OrderStatus::Disputed
                        ),
                    })
                    .collect();
                let reason_needed =
                    allowed.contains(&OrderStatus::Closed) && o.status != OrderStatus::Confirmed;
                OrderCard {
                    id: o.order.id.clone(),
                    community: o.community.clone(),
                    building: o.building.clone(),
                    place: label(&o.community, &o.building),
                    unit: o.order.unit.clone(),
                    title: o.order.title.clone(),
                    detail: o.order.detail.clone(),
                    status_key: enum_name(&o.status),
                    status: order_status_zh(o.status),
                    assignee: o
                        .order
                        .assignee
                        .as_deref()
                        .map(name)
                        .unwrap_or_else(|| "未指派".to_string()),
                    created: format!(
                        "{} · {}",
                        format::datetime(o.order.created_at),
                        name(&o.order.created_by)
                    ),
                    history: o
                        .history()
                        .into_iter()
                        .map(|e| HistoryLine {
                            at: format::datetime(e.at),
                            status: order_status_zh(e.to),
                            by: name(&e.by),
                            note: e.note.clone(),
                        })
                        .collect(),
                    waiting: waiting_for(o.status),
                    error: error
                        .as_ref()
                        .filter(|r| r.order.as_deref() == Some(o.order.id.as_str()))
                        .cloned(),
                    dispatch_to,
                    steps: buttons,
                    reason_needed,
                }
            })
            .collect();
        if !cards.is_empty() {
            groups.push(Group {
                key: enum_name(&status),
                label: order_status_zh(status),
                cards,
            });
        }
    }
    let notice = parse_status(&q.done).and_then(|to| {
        all.iter().find(|o| o.order.id == q.order).map(|o| {
            if to == OrderStatus::Submitted {
                format!("已登记「{}」，等待审核。", o.order.title)
            } else {
                format!("「{}」已改为「{}」。", o.order.title, order_status_zh(to))
            }
        })
    });
    let mut communities: Vec<String> = building_list.iter().map(|b| b.community.clone()).collect();
    communities.dedup();
    let mut draft = draft;
    if draft.community.is_empty()
        && let Some(c) = communities.first()
    {
        draft.community = c.clone();
    }
    Ok(OrdersPage {
        chrome,
        tabs,
        state: filter.map(|f| enum_name(&f)).unwrap_or_default(),
        building: q.building.clone(),
        buildings: building_list
            .iter()
            .map(|b| {
                if communities.len() > 1 {
                    (
                        format!("{}/{}", b.community, b.building),
                        format!("{} · {}", b.community, b.label),
                    )
                } else {
                    (b.building.clone(), b.label.clone())
                }
            })
            .collect(),
        communities,
        shown: shown.len(),
        matching: matching_count,
        groups,
        notice,
        // A refusal about one order is shown on its card; the banner points there.
        error,
        draft,
    })
}

/// Render the page, with the refusal's status and code when there is one.
async fn orders_page(
    state: &AppState,
    user: &DashUser,
    q: OrdersQuery,
    error: Option<Refusal>,
    draft: NewOrderForm,
    status: StatusCode,
) -> PageResult {
    user.require(ORDER_ROLES)?;
    let chrome = Chrome::new(user, "微心愿", "/orders");
    let u = user.clone();
    let code = error.as_ref().map(|e| e.code.clone());
    let page = blocking(state, move |st| page_of(st, &u, chrome, &q, error, draft)).await?;
    let mut response = render(status, &page);
    if let Some(code) = code
        && let Ok(v) = HeaderValue::from_str(&code)
    {
        response.headers_mut().insert("x-error-code", v);
    }
    Ok(response)
}

/// `GET /orders?state=&building=`: work orders by state.
pub async fn page(
    State(state): State<AppState>,
    user: DashUser,
    Query(q): Query<OrdersQuery>,
) -> PageResult {
    orders_page(
        &state,
        &user,
        q,
        None,
        NewOrderForm::default(),
        StatusCode::OK,
    )
    .await
}

/// The fields of one step's form.
#[derive(Debug, Deserialize)]
pub struct MoveForm {
    community: String,
    building: String,
    order: String,
    /// The status the user saw.
    from: String,
    to: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    note: String,
    /// The filter to come back to.
    #[serde(default)]
    state: String,
    #[serde(default)]
    filter_building: String,
}

fn back_to(state: &str, building: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if !state.is_empty() {
        pairs.push(("state", state));
    }
    if !building.is_empty() {
        pairs.push(("building", building));
    }
    pairs.extend_from_slice(extra);
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/orders".to_string()
    } else {
        format!("/orders?{query}")
    }
}

fn refusal(e: AppError, order: Option<String>) -> (StatusCode, Refusal) {
    (
        e.status,
        Refusal {
            words: refusal_zh(e.code),
            code: e.code.to_string(),
            message: e.message,
            order,
        },
    )
}

/// `POST /orders/step`: one step of one order (派单, 开始审核, 关闭 …); back to the list, or the
/// list with the refusal shown on the order.
pub async fn step(State(state): State<AppState>, posted: Posted<MoveForm>) -> PageResult {
    let user = posted.user;
    user.require(ORDER_ROLES)?;
    let form = posted.form;
    let q = OrdersQuery {
        state: form.state.clone(),
        building: form.filter_building.clone(),
        ..OrdersQuery::default()
    };
    let parsed = match (parse_status(&form.to), parse_status(&form.from)) {
        (Some(to), Some(from)) => Ok(MoveBody {
            to,
            from: Some(from),
            assignee: (!form.assignee.trim().is_empty()).then(|| form.assignee.clone()),
            note: form.note.clone(),
        }),
        _ => Err(AppError::invalid("unknown work-order status")),
    };
    let session = user.session.clone();
    let (community, building, order) = (
        form.community.clone(),
        form.building.clone(),
        form.order.clone(),
    );
    let result = match parsed {
        Ok(body) => {
            crate::admin::blocking(&state, move |st| {
                move_order_as(st, &session, &community, &building, &order, body)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(moved) => {
            let target = back_to(
                &form.state,
                &form.filter_building,
                &[("done", &form.to), ("order", &moved.order.id)],
            );
            Ok(Redirect::to(&format!("{target}#order-{}", moved.order.id)).into_response())
        }
        Err(e) => {
            let (status, refusal) = refusal(e, Some(form.order));
            orders_page(
                &state,
                &user,
                q,
                Some(refusal),
                NewOrderForm::default(),
                status,
            )
            .await
        }
    }
}

/// `POST /orders`: take a resident's request at the office (登记); back to the list of
/// submitted orders, or the form with the input kept and the refusal shown.
pub async fn create(State(state): State<AppState>, posted: Posted<NewOrderForm>) -> PageResult {
    let user = posted.user;
    user.require(ORDER_ROLES)?;
    let form = posted.form;
    let body = NewOrderBody {
        community: form.community.clone(),
        unit: form.unit.clone(),
        title: form.title.clone(),
        detail: form.detail.clone(),
    };
    let session = user.session.clone();
    match crate::admin::blocking(&state, move |st| create_order_as(st, &session, body)).await {
        Ok(created) => Ok(created_redirect(&created)),
        Err(e) => {
            let (status, refusal) = refusal(e, None);
            orders_page(
                &state,
                &user,
                OrdersQuery::default(),
                Some(refusal),
                form,
                status,
            )
            .await
        }
    }
}

fn created_redirect(created: &OrderDetail) -> Response {
    let target = back_to(
        "submitted",
        "",
        &[("done", "submitted"), ("order", &created.order.id)],
    );
    Redirect::to(&format!("{target}#order-{}", created.order.id)).into_response()
}
