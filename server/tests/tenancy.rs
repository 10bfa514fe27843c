//! Tenancy: several communities (小区) on one server, as a 街道 runs them. An account's roles
//! apply only in its communities; an admin of community A can neither read, change, export
//! nor even learn the names of community B's households through any endpoint or page, and a
//! 街道-wide account sees both.

mod common;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use doorstep_server::demo;
use serde_json::json;

/// Community B: twenty units of the sample's building 1, their owners renamed so that any
/// leak of B's households shows in an answer.
const B: &str = "lhy";
const B_NAME: &str = "绿荷园";
const B_MARK: &str = "乙户";

fn b_register() -> String {
    let sample = String::from_utf8_lossy(demo::SAMPLE_CSV).to_string();
    let mut lines = sample.lines();
    let mut csv = format!("{}\n", lines.next().unwrap_or_default());
    for (i, line) in lines.take(20).enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        // Co-owners stay two names.
        cells[7] = if cells[10] == "co_owned" {
            format!("{B_MARK}{i:02}、{B_MARK}{i:02}乙")
        } else {
            format!("{B_MARK}{i:02}")
        };
        cells[8] = format!("1399999{i:04}");
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
    csv
}

fn login(server: &TestServer, login: &str, password: &str) -> Result<String> {
    let (status, json) = server.post_json(
        "/api/v1/auth/login",
        &json!({ "login": login, "password": password }),
        None,
    )?;
    anyhow::ensure!(status == StatusCode::OK, "login {login}: {status} {json}");
    json["token"]
        .as_str()
        .map(str::to_string)
        .context("a token")
}

/// A dashboard page as the session `token` sees it.
fn page(server: &TestServer, token: &str, path: &str) -> Result<(StatusCode, String)> {
    let request = Request::get(path)
        .header(header::COOKIE, format!("doorstep_session={token}"))
        .body(Body::empty())?;
    let (status, bytes) = server.call(request)?;
    Ok((status, String::from_utf8_lossy(&bytes).to_string()))
}

/// Nothing of community B in `text`: not its id, its name, nor its households.
fn assert_nothing_of_b(what: &str, text: &str) {
    for mark in [B, B_NAME, B_MARK, "1399999"] {
        assert!(!text.contains(mark), "{what} shows {mark:?}: {text:.600}");
    }
}

/// What the 街道 admin (the demo's first admin, every community) set up in community B.
struct CommunityB {
    building: String,
    unit: String,
    /// B's households as the 街道 admin reads them.
    households: serde_json::Value,
    campaign: &'static str,
    order: String,
    /// B's building head's account id.
    head: String,
}

/// Community B with a published campaign, a 微心愿 and a building head, added by the 街道 admin
/// whose session is `street`.
fn community_b(server: &TestServer, street: &str) -> Result<CommunityB> {
    // The 街道 admin (the demo's first admin, every community) adds community B with a
    // campaign and a 微心愿.
    let request = Request::post(format!(
        "/api/v1/admin/register/import?community={B}&name={}",
        urlencode(B_NAME)
    ))
    .header(header::AUTHORIZATION, format!("Bearer {street}"))
    .header(header::CONTENT_TYPE, "text/csv")
    .body(Body::from(b_register()))?;
    let (status, body) = server.call(request)?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let b_buildings = api_ok(
        server,
        "GET",
        &format!("/api/v1/admin/buildings?community={B}"),
        None,
        street,
    )?;
    let b_building = b_buildings[0]["building"]
        .as_str()
        .context("a building of B")?
        .to_string();
    let b_units = api_ok(
        server,
        "GET",
        &format!("/api/v1/admin/buildings/{B}/{b_building}/units"),
        None,
        street,
    )?;
    let b_unit = b_units[0]["unit"]
        .as_str()
        .context("a unit of B")?
        .to_string();
    let households = api_ok(
        server,
        "GET",
        &format!("/api/v1/admin/buildings/{B}/{b_building}/households"),
        None,
        street,
    )?;
    assert!(households.to_string().contains(B_MARK), "the street sees B");

    let mut campaign = api_ok(
        server,
        "GET",
        &format!("/api/v1/admin/campaigns/{}", demo::CAMPAIGN),
        None,
        street,
    )?;
    let b_campaign = "lhy-election";
    let draft = json!({
        "id": b_campaign,
        "community": B,
        "title": "绿荷园业委会选举",
        "kind": campaign["kind"].take(),
        "binding": campaign["binding"].take(),
        "scope": campaign["scope"].take(),
        "rules": campaign["rules"].take(),
        "questions": campaign["questions"].take(),
    });
    api_ok(
        server,
        "POST",
        "/api/v1/admin/campaigns",
        Some(&draft),
        street,
    )?;
    api_ok(
        server,
        "POST",
        &format!("/api/v1/admin/campaigns/{b_campaign}/actions/publish"),
        None,
        street,
    )?;
    let order = api_ok(
        server,
        "POST",
        "/api/v1/admin/orders",
        Some(&json!({ "community": B, "unit": b_unit, "title": "乙户楼道灯坏了" })),
        street,
    )?;
    let b_order = order["id"].as_str().context("an order id")?.to_string();
    let b_head = api_ok(
        server,
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({
            "login": "lhy-head", "display_name": "乙楼栋长", "roles": ["building_head"],
            "communities": [B],
        })),
        street,
    )?;
    let b_head = b_head["id"].as_str().context("an account id")?.to_string();

    Ok(CommunityB {
        building: b_building,
        unit: b_unit,
        households,
        campaign: b_campaign,
        order: b_order,
        head: b_head,
    })
}

#[test]
fn an_admin_of_one_community_cannot_read_change_export_or_learn_anothers_households() -> Result<()>
{
    let server = TestServer::start()?;
    let street = server.admin_token()?;

    let CommunityB {
        building: b_building,
        unit: b_unit,
        households,
        campaign: b_campaign,
        order: b_order,
        head: b_head,
    } = community_b(&server, &street)?;

    // The admin of community A only.
    let a_admin = api_ok(
        &server,
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({
            "login": "tpy-admin", "display_name": "太平洋管理员", "roles": ["admin", "counting_officer"],
            "communities": [demo::COMMUNITY], "password": "tenancy-passphrase-7",
        })),
        &street,
    )?;
    assert_eq!(a_admin["communities"], json!([demo::COMMUNITY]));
    let a = login(&server, "tpy-admin", "tenancy-passphrase-7")?;

    // A's own community works as before.
    let buildings = api_ok(&server, "GET", "/api/v1/admin/buildings", None, &a)?;
    let buildings = buildings.as_array().context("a list")?;
    assert!(!buildings.is_empty());
    assert!(buildings.iter().all(|b| b["community"] == demo::COMMUNITY));
    api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/campaigns/{}/tally", demo::CAMPAIGN),
        None,
        &a,
    )?;

    // Every listing leaves B out.
    for path in [
        "/api/v1/admin/buildings".to_string(),
        format!("/api/v1/admin/buildings?community={B}"),
        "/api/v1/admin/campaigns".into(),
        "/api/v1/admin/orders".into(),
        format!("/api/v1/admin/orders?community={B}"),
        "/api/v1/admin/accounts".into(),
        "/api/v1/admin/assignments".into(),
        "/api/v1/admin/enrollment-codes".into(),
        "/api/v1/admin/devices".into(),
        "/api/v1/admin/held".into(),
        "/api/v1/admin/conflicts/households".into(),
        format!("/api/v1/admin/conflicts/households?community={B}"),
    ] {
        let listed = api_ok(&server, "GET", &path, None, &a)?;
        assert_nothing_of_b(&path, &listed.to_string());
        assert!(
            !listed.to_string().contains(&b_head),
            "{path} lists B's head"
        );
    }

    // Every read, change and export of B's things answers exactly as for things that do not
    // exist (404), or 403 where A asks to act as B's admin.
    let not_found = [
        (
            "GET",
            format!("/api/v1/admin/buildings/{B}/{b_building}/units"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/buildings/{B}/{b_building}/households"),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/admin/households/{B}/{b_unit}"),
            Some(json!({ "phone": "13700000000" })),
        ),
        ("GET", format!("/api/v1/admin/campaigns/{b_campaign}"), None),
        (
            "GET",
            format!("/api/v1/admin/campaigns/{b_campaign}/tally"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/campaigns/{b_campaign}/progress"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/campaigns/{b_campaign}/conflicts"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/admin/campaigns/{b_campaign}/actions/open"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/campaigns/{b_campaign}/exports/roll.csv"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/campaigns/{b_campaign}/exports/ballots.xlsx"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/admin/orders/{B}/{b_building}/{b_order}"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/admin/orders/{B}/{b_building}/{b_order}/transitions"),
            Some(json!({ "to": "under_review" })),
        ),
        (
            "POST",
            "/api/v1/admin/orders".into(),
            Some(json!({ "community": B, "unit": b_unit, "title": "x" })),
        ),
        (
            "PATCH",
            format!("/api/v1/admin/accounts/{b_head}"),
            Some(json!({ "disabled": true })),
        ),
        (
            "POST",
            format!("/api/v1/admin/accounts/{b_head}/password"),
            Some(json!({ "password": "another-passphrase-3" })),
        ),
        (
            "POST",
            format!("/api/v1/admin/accounts/{b_head}/enrollment-codes"),
            None,
        ),
        (
            "POST",
            "/api/v1/admin/assignments".into(),
            Some(json!({ "account_id": b_head, "community": B, "building": b_building })),
        ),
    ];
    for (method, path, body) in &not_found {
        if *method == "GET" {
            let (status, json) = api(&server, method, path, None, Some(&street))?;
            assert_ne!(
                status,
                StatusCode::NOT_FOUND,
                "{path} exists for the street: {json}"
            );
        }
        let (status, json) = api(&server, method, path, body.as_ref(), Some(&a))?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {json}");
        assert_nothing_of_b(path, &json["error"]["message"].to_string().replace(B, ""));
    }
    let forbidden = [
        (
            "POST",
            "/api/v1/admin/accounts",
            json!({ "login": "sneaky", "display_name": "", "roles": ["admin"], "communities": [B] }),
        ),
        (
            "POST",
            "/api/v1/admin/accounts",
            json!({ "login": "sneaky", "display_name": "", "roles": ["admin"], "communities": ["*"] }),
        ),
    ];
    for (method, path, body) in &forbidden {
        let (status, json) = api(&server, method, path, Some(body), Some(&a))?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {json}");
    }
    let request = Request::post(format!(
        "/api/v1/admin/register/import?community={B}&name=x"
    ))
    .header(header::AUTHORIZATION, format!("Bearer {a}"))
    .header(header::CONTENT_TYPE, "text/csv")
    .body(Body::from(b_register()))?;
    assert_eq!(
        server.call(request)?.0,
        StatusCode::FORBIDDEN,
        "importing into B"
    );
    let (status, _) = api(&server, "GET", "/api/v1/admin/audit", None, Some(&a))?;
    assert_eq!(status, StatusCode::FORBIDDEN, "the server-wide audit log");

    // B's things are unchanged.
    let households_after = api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/buildings/{B}/{b_building}/households"),
        None,
        &street,
    )?;
    assert_eq!(households_after, households);
    let head = api_ok(&server, "GET", "/api/v1/admin/accounts", None, &street)?;
    let head = head
        .as_array()
        .context("a list")?
        .iter()
        .find(|x| x["id"] == b_head.as_str())
        .context("B's head")?;
    assert_eq!(head["disabled"], false);

    // The dashboard's screens show A only; B's pages answer 404.
    for path in [
        "/",
        "/buildings",
        "/campaigns",
        "/orders",
        "/register",
        "/devices",
        "/exports",
        "/campaigns/new",
    ] {
        let (status, html) = page(&server, &a, path)?;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_nothing_of_b(path, &html);
        assert!(!html.contains("/audit"), "{path} offers the audit log");
    }
    for path in [
        format!("/buildings/{B}/{b_building}"),
        format!("/buildings/{B}/{b_building}/units/{b_unit}"),
        format!("/campaigns/{b_campaign}"),
        format!("/campaigns/{b_campaign}/conflicts"),
        format!("/campaigns/{b_campaign}/notice/announcement"),
        format!("/campaigns/{b_campaign}/exports/roll.csv"),
    ] {
        let (status, _) = page(&server, &street, &path)?;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{path} exists for the street"
        );
        let (status, html) = page(&server, &a, &path)?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        // The page may repeat what was asked for (B's id), as for an id that does not exist.
        assert_nothing_of_b(&path, &html.replace(B, ""));
    }
    let (status, _) = page(&server, &a, "/audit")?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The 街道 admin sees both communities.
    let all = api_ok(&server, "GET", "/api/v1/admin/buildings", None, &street)?;
    let communities: std::collections::BTreeSet<&str> = all
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|b| b["community"].as_str())
        .collect();
    assert_eq!(communities, [B, demo::COMMUNITY].into_iter().collect());
    let (status, html) = page(&server, &street, "/buildings")?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(B_NAME) || html.contains(B),
        "the street's 楼栋 lists B"
    );
    Ok(())
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Roles are held per community: one account, admin of A and counting officer of B, acts as an
/// admin in A only and as an officer in B only; and no community (nor the server) loses its
/// last admin.
#[test]
fn an_account_acts_in_each_community_with_the_roles_it_holds_there() -> Result<()> {
    let server = TestServer::start()?;
    let street = server.admin_token()?;
    let b = community_b(&server, &street)?;
    let a_building = "3";
    let a_unit = units_of(&server, a_building)?[0].clone();

    let grants = json!({ demo::COMMUNITY: ["admin"], B: ["counting_officer"] });
    let mixed = api_ok(
        &server,
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({
            "login": "mixed", "display_name": "两个小区", "grants": grants,
            "password": "tenancy-passphrase-7",
        })),
        &street,
    )?;
    assert_eq!(mixed["grants"], grants, "{mixed}");
    assert_eq!(mixed["roles"], json!(["admin", "counting_officer"]));
    assert_eq!(mixed["communities"], json!([B, demo::COMMUNITY]));
    let mixed_id = mixed["id"].as_str().context("an account id")?.to_string();
    let token = login(&server, "mixed", "tenancy-passphrase-7")?;

    // Both forms together are refused, and so are grants naming no role or a bad community.
    for body in [
        json!({ "login": "x1", "display_name": "", "grants": grants, "roles": ["admin"] }),
        json!({ "login": "x2", "display_name": "", "grants": { B: [] } }),
        json!({ "login": "x3", "display_name": "", "grants": { "a b": ["admin"] } }),
        json!({ "login": "x4", "display_name": "", "grants": {} }),
    ] {
        let (status, json) = api(
            &server,
            "POST",
            "/api/v1/admin/accounts",
            Some(&body),
            Some(&street),
        )?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {json}");
        assert_eq!(json["error"]["code"], "invalid_input", "{json}");
    }

    // As B's counting officer: reads B's campaign and its tally; B's households masked.
    let campaigns = api_ok(&server, "GET", "/api/v1/admin/campaigns", None, &token)?;
    let listed: Vec<&str> = campaigns
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|c| c["campaign"].as_str())
        .collect();
    assert!(listed.contains(&b.campaign) && listed.contains(&demo::CAMPAIGN));
    api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/campaigns/{}/tally", b.campaign),
        None,
        &token,
    )?;
    let b_households = api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/buildings/{B}/{}/households", b.building),
        None,
        &token,
    )?
    .to_string();
    assert!(
        !b_households.contains("13999990") && b_households.contains("139****"),
        "an officer sees B's phones masked: {b_households:.300}"
    );
    let a_households = api_ok(
        &server,
        "GET",
        &format!(
            "/api/v1/admin/buildings/{}/{a_building}/households",
            demo::COMMUNITY
        ),
        None,
        &token,
    )?
    .to_string();
    assert!(
        !a_households.contains("****"),
        "A's admin sees A's phones whole: {a_households:.300}"
    );

    // An admin's acts in B are refused with 403 (the account works there, in another role),
    // and change nothing.
    let forbidden_in_b = [
        (
            "POST",
            format!("/api/v1/admin/campaigns/{}/actions/open", b.campaign),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/admin/households/{B}/{}", b.unit),
            Some(json!({ "phone": "13700000000" })),
        ),
        (
            "POST",
            "/api/v1/admin/accounts".to_string(),
            Some(
                json!({ "login": "b-head-2", "display_name": "", "grants": { B: ["building_head"] } }),
            ),
        ),
        (
            "PATCH",
            format!("/api/v1/admin/accounts/{mixed_id}"),
            Some(json!({ "grants": { demo::COMMUNITY: ["admin"], B: ["admin"] } })),
        ),
        (
            "POST",
            "/api/v1/admin/assignments".to_string(),
            Some(json!({ "account_id": mixed_id, "community": B, "building": b.building })),
        ),
        (
            "POST",
            "/api/v1/admin/orders".to_string(),
            Some(json!({ "community": B, "unit": b.unit, "title": "x" })),
        ),
    ];
    for (method, path, body) in &forbidden_in_b {
        let (status, json) = api(&server, method, path, body.as_ref(), Some(&token))?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], "forbidden", "{json}");
    }
    let request = Request::post(format!(
        "/api/v1/admin/register/import?community={B}&name=x"
    ))
    .header(header::AUTHORIZATION, format!("Bearer {token}"))
    .header(header::CONTENT_TYPE, "text/csv")
    .body(Body::from(b_register()))?;
    assert_eq!(server.call(request)?.0, StatusCode::FORBIDDEN);
    let after = api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/buildings/{B}/{}/households", b.building),
        None,
        &street,
    )?;
    assert_eq!(after, b.households, "B's households are unchanged");
    let campaign = api_ok(
        &server,
        "GET",
        &format!("/api/v1/admin/campaigns/{}", b.campaign),
        None,
        &street,
    )?;
    assert_eq!(campaign["status"], "published");
    // B's 微心愿 are a dispatcher's or an admin's: not listed for B's officer.
    let orders = api_ok(&server, "GET", "/api/v1/admin/orders", None, &token)?;
    assert!(!orders.to_string().contains(&b.order), "{orders}");

    // In A the same account is an admin, and not a counting officer.
    api_ok(
        &server,
        "PATCH",
        &format!("/api/v1/admin/households/{}/{a_unit}", demo::COMMUNITY),
        Some(&json!({ "note": "管理员核实" })),
        &token,
    )?;
    let (status, json) = api(
        &server,
        "POST",
        &format!("/api/v1/admin/campaigns/{}/adjudications", demo::CAMPAIGN),
        Some(&json!({ "voter_key": "x", "chosen": null, "reason": "核实" })),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::FORBIDDEN, "adjudicating in A: {json}");

    // The dashboard says where each role is held.
    let (status, html) = page(&server, &token, "/")?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("管理员 · {B}").replace(B, demo::COMMUNITY))
            && html.contains(&format!("计票人 · {B}")),
        "the header names each community's role"
    );

    // The last admin: A has the 街道 admin and `mixed`; the 街道 admin is the server's only
    // 街道-wide admin and cannot step down to a community's, nor be disabled.
    let me = api_ok(&server, "GET", "/api/v1/auth/me", None, &street)?;
    let street_id = me["id"].as_str().context("an id")?.to_string();
    let (status, json) = api(
        &server,
        "PATCH",
        &format!("/api/v1/admin/accounts/{street_id}"),
        Some(&json!({ "grants": { demo::COMMUNITY: ["admin"] } })),
        Some(&street),
    )?;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert_eq!(json["error"]["code"], "last_admin");
    // `mixed` may lose A's admin role: the 街道 admin still administers A.
    let demoted = api_ok(
        &server,
        "PATCH",
        &format!("/api/v1/admin/accounts/{mixed_id}"),
        Some(&json!({ "grants": { B: ["counting_officer"] } })),
        &street,
    )?;
    assert_eq!(demoted["grants"], json!({ B: ["counting_officer"] }));
    let (status, _) = api(
        &server,
        "PATCH",
        &format!("/api/v1/admin/households/{}/{a_unit}", demo::COMMUNITY),
        Some(&json!({ "note": "再改" })),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::FORBIDDEN, "no longer A's admin");
    Ok(())
}
