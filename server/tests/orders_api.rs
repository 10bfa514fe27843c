//! 微心愿 work orders through the admin API: a head takes a request on the phone, a dispatcher
//! reviews, publishes and dispatches it (派单) as a server change checked by core's rules, the
//! head's phone sees the dispatch after its next sync and works it to done, and the office
//! follows it to closed. Every refused step answers its own code and stores nothing.

mod common;

use anyhow::{Result, ensure};
use axum::http::StatusCode;
use common::*;
use doorstep_core::doc::OrdersDoc;
use doorstep_core::model::OrderStatus;
use serde_json::{Value, json};

const ADMIN: &str = "/api/v1/admin";

/// A login-able account with `roles`: its id and a session token.
fn account(
    server: &TestServer,
    admin: &str,
    login: &str,
    roles: &[&str],
) -> Result<(String, String)> {
    let password = "field-passphrase-9".to_string();
    let created = api_ok(
        server,
        "POST",
        &format!("{ADMIN}/accounts"),
        Some(
            &json!({ "login": login, "display_name": format!("{login} 派单员"),
                      "roles": roles, "password": password }),
        ),
        admin,
    )?;
    let (status, reply) = server.post_json(
        "/api/v1/auth/login",
        &json!({ "login": login, "password": password }),
        None,
    )?;
    ensure!(status == StatusCode::OK, "login {login}: {status} {reply}");
    Ok((
        created["id"].as_str().unwrap_or_default().to_string(),
        reply["token"].as_str().unwrap_or_default().to_string(),
    ))
}

fn step(
    server: &TestServer,
    token: &str,
    building: &str,
    order: &str,
    body: Value,
) -> Result<(StatusCode, Value)> {
    api(
        server,
        "POST",
        &format!("{ADMIN}/orders/tpy/{building}/{order}/transitions"),
        Some(&body),
        Some(token),
    )
}

fn status_on_phone(
    phone: &Phone,
    building: &str,
    order: &str,
) -> Result<(OrderStatus, Option<String>)> {
    let order = phone
        .replica
        .orders(building)?
        .into_iter()
        .find(|o| o.id == order)
        .ok_or_else(|| anyhow::anyhow!("the phone does not hold order {order}"))?;
    Ok((order.status(), order.assignee.clone()))
}

#[test]
fn a_dispatcher_dispatches_a_heads_request_and_the_phone_sees_it_after_sync() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let (dispatcher_id, dispatcher) = account(&server, &admin, "branch-1", &["dispatcher"])?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let unit = units_of(&server, "3")?[4].clone();

    // 居民点单: the head takes the request offline and syncs.
    let order = head
        .replica
        .create_order(&unit, "楼道灯不亮", "三楼声控灯")?;
    head.sync()?;
    let listed = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/orders?building=3"),
        None,
        &dispatcher,
    )?;
    assert_eq!(listed[0]["id"], order.as_str());
    assert_eq!(listed[0]["status"], "submitted");

    // 支部派单: review, publish, dispatch to the building's head.
    for (to, note) in [("under_review", ""), ("published", "同意办理")] {
        let (status, reply) = step(
            &server,
            &dispatcher,
            "3",
            &order,
            json!({ "to": to, "note": note }),
        )?;
        assert_eq!(status, StatusCode::OK, "{to}: {reply}");
        assert_eq!(reply["status"], to);
    }
    let head_account = head.enrollment.account_id.clone();
    let (status, reply) = step(
        &server,
        &dispatcher,
        "3",
        &order,
        json!({ "to": "dispatched", "from": "published", "assignee": head_account,
                "note": "请本周内处理" }),
    )?;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["status"], "dispatched");
    assert_eq!(reply["assignee"], head_account.as_str());
    let events = reply["events"].as_object().expect("events by id");
    assert_eq!(events.len(), 3);
    assert!(
        events.values().all(|e| e["by"] == dispatcher_id.as_str()),
        "every step names the dispatcher: {reply}"
    );

    // 楼长接单: the phone sees the dispatch after its sync and works the order to done.
    assert_eq!(
        status_on_phone(&head, "3", &order)?.0,
        OrderStatus::Submitted,
        "not before the sync"
    );
    head.sync()?;
    assert_eq!(
        status_on_phone(&head, "3", &order)?,
        (OrderStatus::Dispatched, Some(head_account.clone()))
    );
    head.replica
        .move_order("3", &order, OrderStatus::InProgress, "", None)?;
    head.replica
        .move_order("3", &order, OrderStatus::Done, "换了灯泡", None)?;
    let report = head.sync()?;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let shown = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/orders/tpy/3/{order}"),
        None,
        &dispatcher,
    )?;
    assert_eq!(shown["status"], "done");

    // The office follows it to closed with the resident's confirmation.
    for to in ["confirmed", "closed"] {
        let (status, reply) = step(&server, &dispatcher, "3", &order, json!({ "to": to }))?;
        assert_eq!(status, StatusCode::OK, "{to}: {reply}");
    }
    head.sync()?;
    assert_eq!(status_on_phone(&head, "3", &order)?.0, OrderStatus::Closed);
    let doc: OrdersDoc = server.read(&orders("3"))?;
    let stored = &doc.orders[&order];
    assert_eq!(stored.events.len(), 7);
    assert_eq!(stored.status(), OrderStatus::Closed);
    let listed = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/orders?building=3"),
        None,
        &admin,
    )?;
    assert_eq!(listed[0]["status"], "closed");
    assert_eq!(listed[0]["events"], 7);
    let audit = server.storage().audit_events(0, 100_000)?;
    assert_eq!(
        audit.iter().filter(|e| e.kind == "order.moved").count(),
        5,
        "every server-side step is audited"
    );
    Ok(())
}

#[test]
fn refused_steps_carry_their_codes_and_store_nothing() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let (_, dispatcher) = account(&server, &admin, "branch-1", &["dispatcher"])?;
    let officer = officer_token(&server)?;
    let head = Phone::enroll(&server, &server.code("5"))?;
    let unit = units_of(&server, "5")?[0].clone();

    // The office takes a request for a unit (the head's phone receives it like any other).
    let (status, created) = api(
        &server,
        "POST",
        &format!("{ADMIN}/orders"),
        Some(&json!({ "community": "tpy", "unit": unit, "title": "门禁坏了" })),
        Some(&dispatcher),
    )?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "submitted");
    let order = created["id"].as_str().unwrap_or_default().to_string();
    head.sync()?;
    assert_eq!(
        status_on_phone(&head, "5", &order)?.0,
        OrderStatus::Submitted
    );

    let refuse = |token: &str, body: Value, code: &str, http: StatusCode| -> Result<()> {
        let before = server.heads(&orders("5"))?;
        let (status, reply) = step(&server, token, "5", &order, body.clone())?;
        assert_eq!(status, http, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
        assert_eq!(
            server.heads(&orders("5"))?,
            before,
            "{body}: nothing stored"
        );
        Ok(())
    };
    // Out of the lifecycle: a submitted order cannot be done.
    refuse(
        &dispatcher,
        json!({ "to": "done" }),
        "order_wrong_status",
        StatusCode::CONFLICT,
    )?;
    // Only admins and dispatchers use these endpoints.
    refuse(
        &officer,
        json!({ "to": "under_review" }),
        "forbidden",
        StatusCode::FORBIDDEN,
    )?;
    step(
        &server,
        &dispatcher,
        "5",
        &order,
        json!({ "to": "under_review" }),
    )?;
    // Decided on a state that is gone.
    refuse(
        &dispatcher,
        json!({ "to": "under_review", "from": "submitted" }),
        "order_changed",
        StatusCode::CONFLICT,
    )?;
    step(
        &server,
        &dispatcher,
        "5",
        &order,
        json!({ "to": "published" }),
    )?;
    // Dispatching names a head of this building.
    refuse(
        &dispatcher,
        json!({ "to": "dispatched" }),
        "order_assignee_required",
        StatusCode::UNPROCESSABLE_ENTITY,
    )?;
    let other_head = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/assignments"),
        None,
        &admin,
    )?
    .as_array()
    .and_then(|a| a.iter().find(|x| x["building"] == "6").cloned())
    .map(|x| x["account_id"].as_str().unwrap_or_default().to_string())
    .unwrap_or_default();
    refuse(
        &dispatcher,
        json!({ "to": "dispatched", "assignee": other_head }),
        "order_assignee_not_head",
        StatusCode::UNPROCESSABLE_ENTITY,
    )?;
    refuse(
        &dispatcher,
        json!({ "to": "published", "assignee": head.enrollment.account_id }),
        "order_wrong_status",
        StatusCode::CONFLICT,
    )?;
    let (status, _) = step(
        &server,
        &dispatcher,
        "5",
        &order,
        json!({ "to": "dispatched", "assignee": head.enrollment.account_id }),
    )?;
    assert_eq!(status, StatusCode::OK);
    // Core's rules: only the assignee works on and completes an order.
    refuse(
        &dispatcher,
        json!({ "to": "in_progress" }),
        "assignee_only",
        StatusCode::FORBIDDEN,
    )?;
    refuse(
        &admin,
        json!({ "to": "in_progress" }),
        "assignee_only",
        StatusCode::FORBIDDEN,
    )?;
    head.sync()?;
    head.replica
        .move_order("5", &order, OrderStatus::InProgress, "", None)?;
    head.replica
        .move_order("5", &order, OrderStatus::Done, "", None)?;
    head.sync()?;
    step(
        &server,
        &dispatcher,
        "5",
        &order,
        json!({ "to": "unreachable", "note": "三次电话未接" }),
    )?;
    // Closing what the resident never confirmed: a reason, and an admin.
    refuse(
        &admin,
        json!({ "to": "closed" }),
        "order_reason_required",
        StatusCode::UNPROCESSABLE_ENTITY,
    )?;
    refuse(
        &dispatcher,
        json!({ "to": "closed", "note": "联系不上" }),
        "confirmation_required",
        StatusCode::FORBIDDEN,
    )?;
    let (status, reply) = step(
        &server,
        &admin,
        "5",
        &order,
        json!({ "to": "closed", "note": "联系不上，社区关闭" }),
    )?;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["status"], "closed");
    // Unknown statuses and orders.
    let (status, reply) = step(&server, &admin, "5", &order, json!({ "to": "finished" }))?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    let (status, reply) = step(
        &server,
        &admin,
        "5",
        "no-such-order",
        json!({ "to": "closed" }),
    )?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // A request for a unit the register does not have.
    let (status, reply) = api(
        &server,
        "POST",
        &format!("{ADMIN}/orders"),
        Some(&json!({ "community": "tpy", "unit": "99-1-0101", "title": "x" })),
        Some(&dispatcher),
    )?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input"))
    );
    Ok(())
}
