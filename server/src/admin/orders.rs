//! 微心愿 work orders: list them (with their history), take a resident's request at the office,
//! and move an order along its lifecycle — review, publish, dispatch to a building head (派单),
//! confirm, close … — as a server change on behalf of the caller.
//!
//! Every step is one new event appended to the order in `orders/{community}/{building}`, written
//! through [`crate::docs::DocCache::change`] with the caller's own [`Writer`], so core's rules
//! decide whether it is allowed (only a dispatcher dispatches, only the assignee works on and
//! completes an order, closing without the resident's confirmation needs an admin and a reason)
//! and the building head's phone receives it on its next sync. The current status is never
//! stored: it is the latest event's, as [`WorkOrder::status`] derives it.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use doorstep_core::doc::{DocId, OrdersDoc};
use doorstep_core::model::{Millis, OrderEvent, OrderStatus, Role, WorkOrder, new_record_id};
use doorstep_core::rules::{self, Context, Writer, order_transition_allowed};
use serde::{Deserialize, Serialize};

use super::register::put_record;
use super::{blocking, writer_of};
use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::json::JsonBody;
use crate::projections::enum_name;
use crate::state::AppState;
use crate::storage::NewAuditEvent;

/// Who may use the work-order endpoints: admins and dispatchers (派单员).
pub(crate) const ORDER_ROLES: &[Role] = &[Role::Admin, Role::Dispatcher];

/// Every status, in lifecycle order.
pub const ALL_STATUSES: [OrderStatus; 13] = [
    OrderStatus::Submitted,
    OrderStatus::UnderReview,
    OrderStatus::Rejected,
    OrderStatus::Merged,
    OrderStatus::Published,
    OrderStatus::Dispatched,
    OrderStatus::Claimed,
    OrderStatus::InProgress,
    OrderStatus::Done,
    OrderStatus::Confirmed,
    OrderStatus::Disputed,
    OrderStatus::Unreachable,
    OrderStatus::Closed,
];

/// The statuses core's lifecycle lets an order in `from` move to.
pub fn next_statuses(from: OrderStatus) -> Vec<OrderStatus> {
    ALL_STATUSES
        .into_iter()
        .filter(|to| order_transition_allowed(from, *to))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Listing

/// `?community=&building=` filter of work orders.
#[derive(Debug, Deserialize)]
pub struct OrdersQuery {
    pub community: Option<String>,
    pub building: Option<String>,
}

pub use crate::storage::views::OrderRow;

/// `GET /orders[?community=&building=]`: 微心愿 work orders with their current status.
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<OrdersQuery>,
) -> AppResult<Json<Vec<OrderRow>>> {
    session.require_any(ORDER_ROLES)?;
    let rows = blocking(&state, move |st| {
        order_rows(
            st,
            &session,
            query.community.as_deref(),
            query.building.as_deref(),
        )
    })
    .await?;
    Ok(Json(rows))
}

/// The projected work orders of the communities `session` works in, oldest first: what
/// `GET /orders` lists.
pub(crate) fn order_rows(
    st: &AppState,
    session: &AdminSession,
    community: Option<&str>,
    building: Option<&str>,
) -> AppResult<Vec<OrderRow>> {
    let mut rows = all_order_rows(st, community, building)?;
    rows.retain(|r| session.can(ORDER_ROLES, &r.community));
    Ok(rows)
}

fn all_order_rows(
    st: &AppState,
    community: Option<&str>,
    building: Option<&str>,
) -> AppResult<Vec<OrderRow>> {
    Ok(st.views().order_rows(community, building)?)
}

/// One work order with its whole history, as its document holds it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderDetail {
    pub community: String,
    pub building: String,
    /// The latest event's status.
    pub status: OrderStatus,
    #[serde(flatten)]
    pub order: WorkOrder,
}

impl OrderDetail {
    fn of(community: &str, building: &str, order: WorkOrder) -> OrderDetail {
        OrderDetail {
            community: community.to_string(),
            building: building.to_string(),
            status: order.status(),
            order,
        }
    }

    /// The events oldest first (by time, then id — the order the status is derived in).
    pub fn history(&self) -> Vec<&OrderEvent> {
        let mut events: Vec<&OrderEvent> = self.order.events.values().collect();
        events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        events
    }
}

fn orders_doc_id(community: &str, building: &str) -> DocId {
    DocId::Orders {
        community: community.to_string(),
        building: building.to_string(),
    }
}

/// Every work order of one community (or all) and one building (or all), read from the
/// documents with its history, oldest first.
pub(crate) fn order_details(
    st: &AppState,
    session: &AdminSession,
    community: Option<&str>,
    building: Option<&str>,
) -> AppResult<Vec<OrderDetail>> {
    let mut out = Vec::new();
    for meta in st.storage().documents()? {
        let DocId::Orders {
            community: c,
            building: b,
        } = &meta.id
        else {
            continue;
        };
        if !session.can(ORDER_ROLES, c)
            || community.is_some_and(|x| x != c)
            || building.is_some_and(|x| x != b)
        {
            continue;
        }
        if let Some(doc) = st.docs().hydrate::<OrdersDoc>(&meta.id)? {
            out.extend(doc.orders.into_values().map(|o| OrderDetail::of(c, b, o)));
        }
    }
    out.sort_by(|a, b| (a.order.created_at, &a.order.id).cmp(&(b.order.created_at, &b.order.id)));
    Ok(out)
}

/// One work order with its history (404 outside the communities `session` works in).
pub(crate) fn order_detail(
    st: &AppState,
    session: &AdminSession,
    community: &str,
    building: &str,
    id: &str,
) -> AppResult<OrderDetail> {
    if !session.can(ORDER_ROLES, community) {
        return Err(no_order(id));
    }
    let doc = st
        .docs()
        .hydrate::<OrdersDoc>(&orders_doc_id(community, building))?
        .ok_or_else(|| no_order(id))?;
    let order = doc.orders.get(id).cloned().ok_or_else(|| no_order(id))?;
    Ok(OrderDetail::of(community, building, order))
}

fn no_order(id: &str) -> AppError {
    AppError::not_found(format!("no work order {id}"))
}

/// `GET /orders/{community}/{building}/{id}`: one order with its history.
pub async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    Path((community, building, id)): Path<(String, String, String)>,
) -> AppResult<Json<OrderDetail>> {
    session.require_any(ORDER_ROLES)?;
    Ok(Json(
        blocking(&state, move |st| {
            order_detail(st, &session, &community, &building, &id)
        })
        .await?,
    ))
}

/// The building heads assigned to a building who can take a work order (enabled accounts with
/// the building-head role), by display name.
pub(crate) fn building_heads(
    st: &AppState,
    community: &str,
    building: &str,
) -> AppResult<Vec<crate::storage::Account>> {
    let assigned: BTreeSet<String> = st
        .storage()
        .assignments(None)?
        .into_iter()
        .filter(|a| a.community == community && a.building == building)
        .map(|a| a.account_id)
        .collect();
    let mut heads: Vec<_> = st
        .storage()
        .accounts()?
        .into_iter()
        .filter(|a| assigned.contains(&a.id) && a.is(Role::BuildingHead) && !a.disabled)
        .collect();
    heads.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    Ok(heads)
}

// ---------------------------------------------------------------------------------------------
// Taking a request at the office

/// The body of `POST /orders`: a resident's request taken at the community office.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrderBody {
    pub community: String,
    pub unit: String,
    pub title: String,
    #[serde(default)]
    pub detail: String,
}

/// `POST /orders`: record a 微心愿 for a unit as the caller (admin or dispatcher); it starts
/// `submitted`, and the building's head sees it after their next sync.
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    JsonBody(body): JsonBody<NewOrderBody>,
) -> AppResult<(StatusCode, Json<OrderDetail>)> {
    let order = blocking(&state, move |st| create_order_as(st, &session, body)).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// Longest title and detail of a work order, in characters.
const TITLE_MAX: usize = 100;
const DETAIL_MAX: usize = 2000;

/// Record a resident's request for `body.unit` as `session`: the one implementation behind
/// `POST /orders` and the dashboard's 登记 form.
pub(crate) fn create_order_as(
    st: &AppState,
    session: &AdminSession,
    body: NewOrderBody,
) -> AppResult<OrderDetail> {
    session.require_any(ORDER_ROLES)?;
    session.require_in(ORDER_ROLES, &body.community)?;
    let title = body.title.trim().to_string();
    if title.is_empty() {
        return Err(AppError::invalid("a work order needs a title"));
    }
    if title.chars().count() > TITLE_MAX || body.detail.chars().count() > DETAIL_MAX {
        return Err(AppError::invalid(format!(
            "a title is at most {TITLE_MAX} and a detail at most {DETAIL_MAX} characters"
        )));
    }
    let unit = body.unit.trim().to_string();
    let building = st.views().building_of_unit(&body.community, &unit)?;
    let building = building.ok_or_else(|| {
        AppError::invalid(format!(
            "unit {unit} is not in the register of {}",
            body.community
        ))
    })?;
    let order = WorkOrder {
        id: new_record_id(),
        unit,
        title,
        detail: body.detail.trim().to_string(),
        created_at: st.now(),
        created_by: session.account.id.clone(),
        assignee: None,
        events: BTreeMap::new(),
    };
    let id = orders_doc_id(&body.community, &building);
    let writer = writer_of(st, session, &body.community)?;
    let value = order.clone();
    st.docs()
        .change(&id, &writer, &session.actor(), "create work order", |d| {
            put_record(d, "orders", &value.id, &value)
        })
        .map_err(AppError::from)?;
    st.storage().append_audit(&[NewAuditEvent::new(
        session.actor(),
        "order.created",
        id.to_string(),
        serde_json::json!({ "order": order.id, "unit": order.unit }),
    )])?;
    Ok(OrderDetail::of(&body.community, &building, order))
}

// ---------------------------------------------------------------------------------------------
// Moving an order along its lifecycle

/// The body of `POST /orders/{community}/{building}/{id}/transitions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The status to move to, e.g. `dispatched`.
    pub to: OrderStatus,
    /// The status the caller saw; when given and the order has moved on meanwhile, the step is
    /// refused with `order_changed` instead of being applied to a state nobody looked at.
    #[serde(default)]
    pub from: Option<OrderStatus>,
    /// The building head to dispatch to (account id); only with `to: dispatched`.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Why (shown in the history); required to close an order the resident has not confirmed.
    #[serde(default)]
    pub note: String,
}

/// `POST /orders/{community}/{building}/{id}/transitions`: one step of the order's lifecycle
/// as the caller. Refusals carry their own code (see `docs/api.md`).
pub async fn transition(
    State(state): State<AppState>,
    session: AdminSession,
    Path((community, building, id)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<MoveBody>,
) -> AppResult<Json<OrderDetail>> {
    let order = blocking(&state, move |st| {
        move_order_as(st, &session, &community, &building, &id, body)
    })
    .await?;
    Ok(Json(order))
}

/// `order` after one more step to `to` by `account` at (no earlier than) `now`: a new event
/// appended, and the assignee set when dispatching (the named head) or claiming (oneself). The
/// same shape the phone's `Replica::move_order` writes.
fn stepped(
    order: &WorkOrder,
    to: OrderStatus,
    account: &str,
    assignee: Option<&str>,
    note: &str,
    now: Millis,
) -> WorkOrder {
    let mut next = order.clone();
    let at = now.max(order.events.values().map(|e| e.at + 1).max().unwrap_or(0));
    let event = OrderEvent {
        id: new_record_id(),
        to,
        at,
        by: account.to_string(),
        note: note.to_string(),
    };
    next.events.insert(event.id.clone(), event);
    match to {
        OrderStatus::Claimed => next.assignee = Some(account.to_string()),
        OrderStatus::Dispatched => next.assignee = assignee.map(str::to_string),
        _ => {}
    }
    next
}

/// Move work order `id` of `community`/`building` one step as `session`: the one implementation
/// behind the JSON API and the dashboard's 微心愿 forms.
///
/// Refusals: `order_changed` (409, the order moved on since the caller looked), `order_wrong_status`
/// (409, core's lifecycle has no such step), `order_assignee_required` / `order_assignee_not_head`
/// / `order_assignee_unexpected` (422), `order_reason_required` (422, closing an unconfirmed
/// order), or 403 with the code of the write rule that refused it for this caller (e.g.
/// `assignee_only`: only the assignee marks an order done).
pub(crate) fn move_order_as(
    st: &AppState,
    session: &AdminSession,
    community: &str,
    building: &str,
    id: &str,
    body: MoveBody,
) -> AppResult<OrderDetail> {
    session.require_any(ORDER_ROLES)?;
    let current = order_detail(st, session, community, building, id)?;
    let from = current.status;
    if let Some(seen) = body.from
        && seen != from
    {
        return Err(AppError::conflict(
            "order_changed",
            format!(
                "the work order is {} now, not {}; look at it again before deciding",
                enum_name(&from),
                enum_name(&seen)
            ),
        ));
    }
    if !order_transition_allowed(from, body.to) {
        return Err(AppError::conflict(
            "order_wrong_status",
            format!(
                "a {} work order cannot become {}",
                enum_name(&from),
                enum_name(&body.to)
            ),
        ));
    }
    let note = body.note.trim().to_string();
    if note.chars().count() > DETAIL_MAX {
        return Err(AppError::invalid(format!(
            "a note is at most {DETAIL_MAX} characters"
        )));
    }
    let assignee = body
        .assignee
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    match (body.to, assignee) {
        (OrderStatus::Dispatched, None) => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "order_assignee_required",
                "dispatching a work order names the building head who takes it",
            ));
        }
        (OrderStatus::Dispatched, Some(a)) => {
            if !building_heads(st, community, building)?
                .iter()
                .any(|h| h.id == a)
            {
                return Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "order_assignee_not_head",
                    format!("account {a} is not a building head of building {building}"),
                ));
            }
        }
        (_, Some(_)) => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "order_assignee_unexpected",
                "only dispatching names an assignee",
            ));
        }
        (_, None) => {}
    }
    if body.to == OrderStatus::Closed && from != OrderStatus::Confirmed && note.is_empty() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_reason_required",
            "closing a work order the resident has not confirmed needs a reason",
        ));
    }
    let writer = writer_of(st, session, community)?;
    let next = stepped(
        &current.order,
        body.to,
        &writer.account,
        assignee,
        &note,
        st.now(),
    );
    let doc_id = orders_doc_id(community, building);
    let value = next.clone();
    st.docs()
        .change(
            &doc_id,
            &writer,
            &session.actor(),
            &format!("work order {}", enum_name(&body.to)),
            |d| put_record(d, "orders", &value.id, &value),
        )
        .map_err(AppError::from)?;
    st.storage().append_audit(&[NewAuditEvent::new(
        session.actor(),
        "order.moved",
        doc_id.to_string(),
        serde_json::json!({
            "order": id,
            "from": enum_name(&from),
            "to": enum_name(&body.to),
            "assignee": next.assignee,
        }),
    )])?;
    Ok(OrderDetail::of(community, building, next))
}

/// For each order of one building, the steps core's rules would let `writer` take now: every
/// lifecycle successor of its status, tried on a fork of the document with the real rules and
/// thrown away. Dispatching is tried with `dispatch_to` (none: not offered); closing an
/// unconfirmed order with a placeholder reason (the form asks for the real one).
///
/// Core's work-order rules decide a step by the order's status, the target, the writer's roles
/// and buildings, and whether the writer is the order's assignee, so one trial per such class
/// answers for every order in it (a building with hundreds of open orders costs a handful of
/// trials). This is only what the page offers: every posted step is checked again by the rules
/// on the real document.
pub(crate) fn permitted_steps(
    st: &AppState,
    writer: &Writer,
    community: &str,
    building: &str,
    dispatch_to: Option<&str>,
) -> AppResult<BTreeMap<String, Vec<OrderStatus>>> {
    let id = orders_doc_id(community, building);
    let tried = st.docs().read(&id, |doc| {
        let orders: OrdersDoc = autosurgeon::hydrate(&*doc)
            .map_err(|e| doorstep_core::Error::Shape(format!("{id}: {e}")))?;
        let now = st.now();
        let before = doc.get_heads();
        let mut verdicts: BTreeMap<(String, bool, String), bool> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for order in orders.orders.values() {
            let from = order.status();
            let mine = order.assignee.as_deref() == Some(writer.account.as_str());
            let mut steps = Vec::new();
            for to in next_statuses(from) {
                let assignee = match to {
                    OrderStatus::Dispatched => match dispatch_to {
                        Some(a) => Some(a),
                        None => continue,
                    },
                    _ => None,
                };
                let class = (enum_name(&from), mine, enum_name(&to));
                let allowed = match verdicts.get(&class) {
                    Some(v) => *v,
                    None => {
                        let next = stepped(order, to, &writer.account, assignee, "—", now);
                        let mut fork = doc.fork();
                        put_record(&mut fork, "orders", &next.id, &next)?;
                        fork.commit();
                        let ctx = Context {
                            writer,
                            doc_id: &id,
                            campaign: None,
                            now,
                        };
                        let v = rules::check_changes(&ctx, &mut fork, &before).is_ok();
                        verdicts.insert(class, v);
                        v
                    }
                };
                if allowed {
                    steps.push(to);
                }
            }
            out.insert(order.id.clone(), steps);
        }
        Ok::<_, doorstep_core::Error>(out)
    })?;
    Ok(tried.transpose()?.unwrap_or_default())
}
