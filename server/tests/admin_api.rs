//! The admin JSON API against the real router: projections equal a rebuild and the documents,
//! the campaign lifecycle only moves forward, a duplicate ballot is a conflict a counting
//! officer settles, accounts/assignments/enrollment/devices, masking, errors and exports.

mod common;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use doorstep_core::doc::FieldDoc;
use doorstep_core::model::DoorOutcome;
use doorstep_core::replica::HouseholdEdit;
use doorstep_server::demo;
use serde_json::json;

const ADMIN: &str = "/api/v1/admin";

#[test]
fn projections_equal_a_rebuild_and_the_documents_and_the_tally_matches() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let head = Phone::enroll(&server, &server.code("5"))?;
    let units = units_of(&server, "5")?;
    for (i, unit) in units.iter().take(6).enumerate() {
        head.replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::Collected, "")?;
        head.replica.record_delivery(demo::CAMPAIGN, unit)?;
        head.replica.record_ballot(
            demo::CAMPAIGN,
            unit,
            election_answers(&[1, 2, (i % 9) as u32 + 1]),
            None,
        )?;
    }
    head.replica.edit_household(
        &units[0],
        &HouseholdEdit {
            residents: Some(4),
            ..HouseholdEdit::default()
        },
    )?;
    head.replica.create_order(&units[1], "修灯", "楼道灯坏了")?;
    head.sync()?;

    let live = projections(&server)?;
    assert_eq!(live["p_units"].len(), 306);
    assert_eq!(live["p_voter_keys"].len(), 303);
    assert_eq!(live["p_ballots"].len(), 6);
    assert_eq!(live["p_visits"].len(), 6);
    assert_eq!(live["p_deliveries"].len(), 6);
    assert_eq!(live["p_orders"].len(), 1);
    assert_eq!(live["p_orders"][0][5], "submitted");
    assert_eq!(live["p_roll"].len(), 306);

    // The values the documents hold, computed directly.
    let field: FieldDoc = server.read(&field("5"))?;
    let mut ballot_ids: Vec<&String> = field.ballots.keys().collect();
    ballot_ids.sort();
    let projected: Vec<&String> = live["p_ballots"].iter().map(|r| &r[2]).collect();
    assert_eq!(projected, ballot_ids);
    let area: i64 = live["p_units"]
        .iter()
        .map(|r| r[6].parse::<i64>().unwrap_or(0))
        .sum();
    assert_eq!(area, 2_896_559, "28,965.59 m²");

    server.state.db().rebuild_projections()?;
    assert_eq!(
        projections(&server)?,
        live,
        "a rebuild reproduces every row"
    );

    let from_docs = tally_from_documents(&server, demo::CAMPAIGN)?;
    let from_tables = tally_from_api(&server, demo::CAMPAIGN, &token)?;
    assert_eq!(from_tables, from_docs);
    assert_eq!(from_tables.returned.headcount, 6);
    Ok(())
}

#[test]
fn a_campaign_moves_forward_only_and_each_step_reaches_the_phones() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let draft = json!({
        "id": "lift-3-2", "community": demo::COMMUNITY, "title": "3号楼2单元加装电梯",
        "kind": "resolution", "binding": true, "scope": { "kind": "entrance", "entrance": "3-2" },
        "questions": { "q1": { "id": "q1", "order": 1, "text": "同意加装电梯",
                               "kind": { "kind": "resolution", "matter": 8 } } }
    });
    let created = api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns"),
        Some(&draft),
        &token,
    )?;
    assert_eq!(created["status"], "draft");
    let mut edited = draft.clone();
    edited["title"] = json!("3号楼2单元加装电梯（修订）");
    api_ok(
        &server,
        "PUT",
        &format!("{ADMIN}/campaigns/lift-3-2"),
        Some(&edited),
        &token,
    )?;
    let (status, err) = api(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns/lift-3-2/actions/close"),
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "wrong_status");

    let published = api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns/lift-3-2/actions/publish"),
        None,
        &token,
    )?;
    assert_eq!(published["status"], "published");
    assert!(published["roll_hash"].is_string());
    let (status, err) = api(
        &server,
        "PUT",
        &format!("{ADMIN}/campaigns/lift-3-2"),
        Some(&edited),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");

    for action in ["open", "close", "tally", "publicise", "archive"] {
        api_ok(
            &server,
            "POST",
            &format!("{ADMIN}/campaigns/lift-3-2/actions/{action}"),
            None,
            &token,
        )?;
    }
    let (status, _) = api(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns/lift-3-2/actions/open"),
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::CONFLICT, "never backwards");

    head.sync()?;
    let on_phone = head
        .replica
        .campaigns()?
        .into_iter()
        .find(|c| c.id == "lift-3-2")
        .context("the phone holds the new campaign")?;
    assert_eq!(
        on_phone.status,
        doorstep_core::model::CampaignStatus::Archived
    );
    let rows = api_ok(&server, "GET", &format!("{ADMIN}/campaigns"), None, &token)?;
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    let events = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/audit?limit=1000"),
        None,
        &token,
    )?;
    let kinds: Vec<&str> = events
        .as_array()
        .context("events")?
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in ["campaign.publish", "campaign.close", "campaign.tally"] {
        assert!(kinds.contains(&kind), "{kind} audited");
    }
    Ok(())
}

#[test]
fn a_duplicate_ballot_is_a_conflict_only_a_counting_officer_settles() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let officer = officer_token(&server)?;
    let head = Phone::enroll(&server, &server.code("7"))?;
    let deputy = deputy(&server, &token, "7")?;
    let unit = units_of(&server, "7")?.remove(0);
    let first = head
        .replica
        .record_ballot(demo::CAMPAIGN, &unit, election_answers(&[1]), None)?;
    let second =
        deputy
            .replica
            .record_ballot(demo::CAMPAIGN, &unit, election_answers(&[2]), None)?;
    head.sync()?;
    deputy.sync()?;

    let listed = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/{}/conflicts", demo::CAMPAIGN),
        None,
        &officer,
    )?;
    let conflicts = listed["conflicts"].as_array().context("conflicts")?;
    assert_eq!(conflicts.len(), 1);
    let voter_key = conflicts[0]["voter_key"]
        .as_str()
        .context("key")?
        .to_string();
    let mut ids: Vec<&str> = conflicts[0]["ballots"]
        .as_array()
        .context("ballots")?
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    ids.sort();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    let decision = json!({ "voter_key": voter_key, "chosen": second, "reason": "业主确认第二张" });
    let path = format!("{ADMIN}/campaigns/{}/adjudications", demo::CAMPAIGN);
    let (status, err) = api(&server, "POST", &path, Some(&decision), Some(&token))?;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins do not adjudicate");
    assert_eq!(err["error"]["code"], "forbidden");
    let adjudication = api_ok(&server, "POST", &path, Some(&decision), &officer)?;
    assert_eq!(adjudication["chosen"], json!(second));
    let (status, err) = api(&server, "POST", &path, Some(&decision), Some(&officer))?;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a decided conflict is not decided twice"
    );
    assert_eq!(err["error"]["code"], "already_adjudicated");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("计票人"),
        "the refusal names who decided: {message}"
    );

    let tally = tally_from_api(&server, demo::CAMPAIGN, &token)?;
    assert!(tally.conflicts.is_empty());
    assert_eq!(tally.adjudicated.len(), 1);
    assert_eq!(tally, tally_from_documents(&server, demo::CAMPAIGN)?);

    head.sync()?;
    let on_phone: FieldDoc = head.read(&field("7"))?;
    assert_eq!(
        on_phone.adjudications.len(),
        1,
        "the adjudication reached the phone"
    );

    // Every change so far was projected record by record (the officer's adjudication too);
    // so is a household both heads corrected at the same time. The rows equal a rebuild.
    let residents = |n| HouseholdEdit {
        residents: Some(n),
        ..HouseholdEdit::default()
    };
    head.replica.edit_household(&unit, &residents(41))?;
    deputy.replica.edit_household(&unit, &residents(42))?;
    head.sync()?;
    deputy.sync()?;
    let live = projections(&server)?;
    assert_eq!(live["p_adjudications"].len(), 1);
    assert_eq!(live["p_ballots"].len(), 2);
    assert_eq!(
        live["p_household_conflicts"].len(),
        1,
        "the parallel edit is listed: {:?}",
        live["p_household_conflicts"]
    );
    server.state.db().rebuild_projections()?;
    assert_eq!(
        projections(&server)?,
        live,
        "the incremental projections equal a rebuild"
    );
    Ok(())
}

#[test]
fn accounts_assignments_enrollment_and_devices() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let phone = deputy(&server, &token, "2")?;
    assert!(phone.held()?.contains(&building_doc("2")));
    let account = phone.enrollment.account_id.clone();

    let devices = api_ok(&server, "GET", &format!("{ADMIN}/devices"), None, &token)?;
    let row = devices
        .as_array()
        .context("devices")?
        .iter()
        .find(|d| d["account_id"] == json!(account))
        .context("the new phone is listed")?;
    assert!(row["last_sync_at"].is_number());
    assert_eq!(row["rejected"], 0);
    assert_eq!(row["login"], "deputy-2");

    // Unassigning removes the building's documents on the next sync.
    api_ok(
        &server,
        "DELETE",
        &format!("{ADMIN}/assignments/{account}/{}/2", demo::COMMUNITY),
        None,
        &token,
    )?;
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/assignments"),
        Some(&json!({ "account_id": account, "community": demo::COMMUNITY, "building": "9" })),
        &token,
    )?;
    phone.sync()?;
    let held = phone.held()?;
    assert!(!held.contains(&building_doc("2")), "{held:?}");
    assert!(held.contains(&building_doc("9")), "{held:?}");

    // A role change is audited; a revoked device is shut out.
    api_ok(
        &server,
        "PATCH",
        &format!("{ADMIN}/accounts/{account}"),
        Some(&json!({ "roles": ["building_head", "dispatcher"] })),
        &token,
    )?;
    let id = phone.enrollment.device_id;
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/devices/{id}/revoke"),
        None,
        &token,
    )?;
    assert!(phone.sync().is_err());
    let events = server.storage().audit_events(0, 10_000)?;
    for kind in [
        "account.updated",
        "assignment.removed",
        "device.revoked",
        "enrollment.code_created",
    ] {
        assert!(events.iter().any(|e| e.kind == kind), "{kind} audited");
    }
    let (status, err) = api(
        &server,
        "POST",
        &format!("{ADMIN}/accounts"),
        Some(&json!({ "login": "deputy-2", "display_name": "x", "roles": ["admin"] })),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "login_taken");
    Ok(())
}

#[test]
fn phones_are_masked_for_officers_and_errors_have_one_shape() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let officer = officer_token(&server)?;
    let path = format!("{ADMIN}/buildings/{}/1/households", demo::COMMUNITY);
    let full = api_ok(&server, "GET", &path, None, &token)?;
    let masked = api_ok(&server, "GET", &path, None, &officer)?;
    let full_phone = full[0]["phone"].as_str().context("phone")?;
    let masked_phone = masked[0]["phone"].as_str().context("phone")?;
    assert_eq!(full_phone.len(), 11);
    assert_eq!(
        masked_phone,
        format!("{}****{}", &full_phone[..3], &full_phone[7..])
    );

    let buildings = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/buildings"),
        None,
        &officer,
    )?;
    assert_eq!(buildings.as_array().map(Vec::len), Some(11));
    let units = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/buildings/{}/1/units", demo::COMMUNITY),
        None,
        &officer,
    )?;
    assert!(units.as_array().is_some_and(|u| !u.is_empty()));

    // Malformed JSON, no token, a wrong role: the same `{"error":{"code","message"}}` shape.
    let (status, bytes) = server.call(
        Request::post(format!("{ADMIN}/accounts"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from("{\"login\": "))?,
    )?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(err["error"]["code"], "invalid_json");
    let (status, err) = api(&server, "GET", &format!("{ADMIN}/devices"), None, None)?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["code"], "missing_token");
    let (status, err) = api(
        &server,
        "GET",
        &format!("{ADMIN}/devices"),
        None,
        Some(&officer),
    )?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"]["code"], "forbidden");
    let (status, err) = api(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/nope/tally"),
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
    Ok(())
}

#[test]
fn exports_are_attachments_and_audited_and_a_register_imports_as_csv() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let head = Phone::enroll(&server, &server.code("4"))?;
    let unit = units_of(&server, "4")?.remove(0);
    head.replica
        .record_visit(demo::CAMPAIGN, &unit, DoorOutcome::Collected, "")?;
    head.replica
        .record_ballot(demo::CAMPAIGN, &unit, election_answers(&[1, 3]), None)?;
    head.sync()?;
    for file in ["ballots.csv", "tally.csv", "visits.csv"] {
        let (status, bytes) = server.call(
            Request::get(format!(
                "{ADMIN}/campaigns/{}/exports/{file}",
                demo::CAMPAIGN
            ))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())?,
        )?;
        assert_eq!(status, StatusCode::OK, "{file}");
        let text = String::from_utf8(bytes)?;
        let lines = text.lines().count();
        assert!(lines >= 2, "{file}: {text}");
    }
    let events = server.storage().audit_events(0, 10_000)?;
    for kind in ["export.ballots", "export.tally", "export.visits"] {
        assert!(events.iter().any(|e| e.kind == kind), "{kind} audited");
    }

    // Re-importing the same register as CSV changes nothing; a broken one is refused whole.
    let import = |body: &'static [u8]| {
        server.call(
            Request::post(format!(
                "{ADMIN}/register/import?community={}&name=x",
                demo::COMMUNITY
            ))
            .header(header::CONTENT_TYPE, "text/csv")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(body))
            .expect("request"),
        )
    };
    let (status, bytes) = import(demo::SAMPLE_CSV)?;
    assert_eq!(status, StatusCode::OK);
    let summary: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(summary["units"], 306);
    assert_eq!(summary["documents_created"], 0);
    let (status, bytes) = import(b"unit_code,building\n1-1-0101,1\n")?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let err: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(err["error"]["code"], "invalid_input");

    let progress = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/{}/progress", demo::CAMPAIGN),
        None,
        &token,
    )?;
    assert_eq!(progress["totals"]["headcount"], 303);
    assert_eq!(progress["quorum_line"]["headcount"], 202);
    assert_eq!(progress["returned"]["headcount"], 1);
    let b4 = progress["buildings"]
        .as_array()
        .context("buildings")?
        .iter()
        .find(|b| b["building"] == "4")
        .context("building 4")?;
    assert_eq!(b4["visited_units"], 1);
    assert_eq!(b4["ballots_collected"]["headcount"], 1);
    Ok(())
}

#[test]
fn a_register_imports_from_an_xlsx_workbook() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    // The first 30 rows of the sample register, numbers stored as numbers, strings inline.
    let workbook: &[u8] = include_bytes!("fixtures/register-30.xlsx");
    let (status, bytes) = server.call(
        Request::post(format!("{ADMIN}/register/import?community=xl&name=xlsx"))
            .header(
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(workbook))?,
    )?;
    let summary: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["units"], 30);
    let csv = String::from_utf8(demo::SAMPLE_CSV.to_vec())?;
    let first_unit = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .context("a unit")?
        .to_string();
    let building = first_unit
        .split('-')
        .next()
        .context("building")?
        .to_string();
    let units = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/buildings/xl/{building}/units"),
        None,
        &token,
    )?;
    let sample = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/buildings/{}/{building}/units", demo::COMMUNITY),
        None,
        &token,
    )?;
    let row = |list: &serde_json::Value| {
        list.as_array()
            .and_then(|l| l.iter().find(|u| u["unit"] == json!(first_unit)).cloned())
    };
    assert_eq!(row(&units), row(&sample), "XLSX and CSV read the same");

    let (status, err) = server.call(
        Request::post(format!("{ADMIN}/register/import?community=xl&name=x"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from("not a register"))?,
    )?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let err: serde_json::Value = serde_json::from_slice(&err)?;
    assert_eq!(err["error"]["code"], "unsupported_media_type");
    Ok(())
}

#[test]
fn a_ballot_collected_before_the_close_and_synced_after_is_listed_as_late() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let head = Phone::enroll(&server, &server.code("6"))?;
    let units = units_of(&server, "6")?;
    let on_time =
        head.replica
            .record_ballot(demo::CAMPAIGN, &units[0], election_answers(&[1]), None)?;
    head.sync()?;
    let late =
        head.replica
            .record_ballot(demo::CAMPAIGN, &units[1], election_answers(&[2]), None)?;
    for action in ["open", "close"] {
        api_ok(
            &server,
            "POST",
            &format!("{ADMIN}/campaigns/{}/actions/{action}", demo::CAMPAIGN),
            None,
            &token,
        )?;
    }
    // The server's clock moves on: the ballot arrives unambiguously after the close.
    server.clock.advance(5);
    let report = head.sync()?;
    assert!(report.rejected.is_empty(), "within the grace period");
    let flags = |server: &TestServer| -> Result<Vec<(String, String)>> {
        Ok(projections(server)?["p_ballots"]
            .iter()
            .map(|r| (r[2].clone(), r[10].clone()))
            .collect())
    };
    let mut expected = vec![(on_time, "0".to_string()), (late, "1".to_string())];
    expected.sort();
    assert_eq!(flags(&server)?, expected);
    server.state.db().rebuild_projections()?;
    assert_eq!(
        flags(&server)?,
        expected,
        "a rebuild keeps when ballots arrived"
    );
    let progress = api_ok(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/{}/progress", demo::CAMPAIGN),
        None,
        &token,
    )?;
    assert_eq!(progress["late_synced"], 1);
    assert_eq!(progress["status"], "closed");
    Ok(())
}

#[test]
fn figures_read_before_a_sync_are_never_served_after_it() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let officer = officer_token(&server)?;
    let head = Phone::enroll(&server, &server.code("4"))?;
    let deputy = deputy(&server, &token, "4")?;
    let units = units_of(&server, "4")?;
    let progress_path = format!("{ADMIN}/campaigns/{}/progress", demo::CAMPAIGN);
    let conflicts_path = format!("{ADMIN}/campaigns/{}/conflicts", demo::CAMPAIGN);
    let building = |progress: &serde_json::Value| -> Result<serde_json::Value> {
        Ok(progress["buildings"]
            .as_array()
            .context("buildings")?
            .iter()
            .find(|b| b["building"] == "4")
            .context("building 4")?
            .clone())
    };

    // Read everything once (the figures are now computed and kept) and once more unchanged.
    let before = api_ok(&server, "GET", &progress_path, None, &token)?;
    assert_eq!(
        before,
        api_ok(&server, "GET", &progress_path, None, &token)?
    );
    assert_eq!(before["returned"]["headcount"], 0);
    assert_eq!(building(&before)?["visits"], 0);

    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::Collected, "")?;
    head.replica
        .record_ballot(demo::CAMPAIGN, &units[0], election_answers(&[1]), None)?;
    head.replica
        .record_ballot(demo::CAMPAIGN, &units[1], election_answers(&[3]), None)?;
    deputy
        .replica
        .record_ballot(demo::CAMPAIGN, &units[1], election_answers(&[2]), None)?;
    head.sync()?;
    let after_head = api_ok(&server, "GET", &progress_path, None, &token)?;
    assert_eq!(after_head["returned"]["headcount"], 2);
    assert_eq!(building(&after_head)?["visits"], 1);
    assert_eq!(building(&after_head)?["ballots_collected"]["headcount"], 2);
    let listed = api_ok(&server, "GET", &conflicts_path, None, &officer)?;
    assert_eq!(listed["conflicts"], json!([]));

    deputy.sync()?;
    let after_deputy = api_ok(&server, "GET", &progress_path, None, &token)?;
    assert_eq!(
        after_deputy["returned"]["headcount"], 1,
        "the owner with two ballots counts for nobody until an officer decides"
    );
    assert_eq!(after_deputy["open_conflicts"], 1);
    let listed = api_ok(&server, "GET", &conflicts_path, None, &officer)?;
    let conflict = &listed["conflicts"][0];
    assert_eq!(conflict["ballots"].as_array().context("ballots")?.len(), 2);
    assert!(
        conflict["ballots"]
            .as_array()
            .context("ballots")?
            .iter()
            .all(|b| b["building"] == "4")
    );
    assert_eq!(
        tally_from_api(&server, demo::CAMPAIGN, &token)?,
        tally_from_documents(&server, demo::CAMPAIGN)?
    );

    let decision = json!({ "voter_key": conflict["voter_key"], "chosen": conflict["ballots"][0]["id"],
                           "reason": "业主当面确认" });
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns/{}/adjudications", demo::CAMPAIGN),
        Some(&decision),
        &officer,
    )?;
    let decided = api_ok(&server, "GET", &progress_path, None, &token)?;
    assert_eq!(decided["returned"]["headcount"], 2);
    assert_eq!(decided["open_conflicts"], 0);
    assert_eq!(
        tally_from_api(&server, demo::CAMPAIGN, &token)?,
        tally_from_documents(&server, demo::CAMPAIGN)?
    );
    Ok(())
}

#[test]
fn a_database_projected_by_another_version_is_reprojected_when_opened() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("6"))?;
    let unit = units_of(&server, "6")?.remove(0);
    head.replica
        .record_visit(demo::CAMPAIGN, &unit, DoorOutcome::NotHome, "")?;
    head.sync()?;
    let expected = projections(&server)?;
    let path = server.dir.path().join("server.sqlite");
    {
        // What an older server left: an index-less, partly empty projection, version 1.
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "DELETE FROM p_visits; DELETE FROM p_units; DROP INDEX p_visits_unit;
             UPDATE p_meta SET value = 1 WHERE key = 'version';",
        )?;
    }
    let reopened = doorstep_server::storage::SqliteStorage::open(&path)?;
    let rows = reopened.read(|c| {
        doorstep_server::projections::dump(&mut doorstep_server::storage::sql::Lite(c))
            .map_err(|e| doorstep_server::storage::StorageError::Projection(e.to_string()))
    })?;
    assert_eq!(rows, expected, "every projection row is back");
    let indexed: i64 = reopened.read(|c| {
        Ok(c.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'p_visits_unit'",
            [],
            |r| r.get(0),
        )?)
    })?;
    assert_eq!(indexed, 1);
    Ok(())
}
