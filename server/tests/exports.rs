//! Exports as the community office downloads them: every file of a campaign as CSV and XLSX
//! (and the tally's inputs as JSON) from the JSON API and from the dashboard's 导出 page, each
//! an audited attachment; the inputs file recomputes the tally's hash; areas in m² with two
//! decimals; no names or phone numbers; text that looks like a formula stays text.

mod common;

use std::io::Cursor;

use anyhow::{Context as _, Result, anyhow, ensure};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use calamine::{Data, Reader, Xlsx};
use common::*;
use doorstep_core::model::DoorOutcome;
use doorstep_server::dashboard::format;
use doorstep_server::demo;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const ADMIN: &str = "/api/v1/admin";

const FILES: [&str; 11] = [
    "roll.csv",
    "roll.xlsx",
    "ballots.csv",
    "ballots.xlsx",
    "tally.csv",
    "tally.xlsx",
    "visits.csv",
    "visits.xlsx",
    "orders.csv",
    "orders.xlsx",
    "tally-inputs.json",
];

/// How a request proves who sends it.
enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    Nobody,
}

/// `GET path`: status, headers, body.
fn get(
    server: &TestServer,
    path: &str,
    auth: Auth<'_>,
) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
    let mut builder = Request::get(path);
    builder = match auth {
        Auth::Bearer(t) => builder.header(header::AUTHORIZATION, format!("Bearer {t}")),
        Auth::Cookie(t) => builder.header(header::COOKIE, format!("doorstep_session={t}")),
        Auth::Nobody => builder,
    };
    let request = builder.body(Body::empty())?;
    let router = server.router.clone();
    server.rt.block_on(async move {
        let response = router.oneshot(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        Ok((status, headers, bytes.to_vec()))
    })
}

/// An export through the JSON API, which must succeed.
fn export(server: &TestServer, campaign: &str, file: &str, token: &str) -> Result<Vec<u8>> {
    let (status, _, bytes) = get(
        server,
        &format!("{ADMIN}/campaigns/{campaign}/exports/{file}"),
        Auth::Bearer(token),
    )?;
    ensure!(
        status == StatusCode::OK,
        "{file}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(bytes)
}

/// A CSV export as records (header first), after checking its byte-order mark.
fn csv_rows(bytes: &[u8]) -> Result<Vec<Vec<String>>> {
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .context("CSV starts with a UTF-8 byte-order mark")?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body);
    Ok(reader
        .records()
        .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
        .collect::<Result<_, _>>()?)
}

/// The only sheet of an XLSX export: its name, its cells, and every formula it holds.
fn xlsx_sheet(bytes: &[u8]) -> Result<(String, Vec<Vec<Data>>, Vec<String>)> {
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec()))?;
    let names = book.sheet_names();
    ensure!(names.len() == 1, "one sheet: {names:?}");
    let name = names[0].clone();
    let range = book.worksheet_range(&name)?;
    let formulas = book
        .worksheet_formula(&name)?
        .used_cells()
        .map(|(_, _, f)| f.clone())
        .filter(|f| !f.is_empty())
        .collect();
    Ok((name, range.rows().map(<[Data]>::to_vec).collect(), formulas))
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

fn column(header: &[String], name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("column {name} in {header:?}"))
}

/// `12345` (0.01 m²) from `"123.45"`, exactly.
fn cents(m2: &str) -> Result<i64> {
    let (whole, frac) = m2.split_once('.').context("two decimals")?;
    ensure!(frac.len() == 2, "two decimals: {m2}");
    Ok(whole.parse::<i64>()? * 100 + frac.parse::<i64>()?)
}

/// The owners' names and phone numbers of the demo register.
fn names_and_phones() -> Result<Vec<String>> {
    let mut reader = csv::Reader::from_reader(demo::SAMPLE_CSV);
    let header = reader.headers()?.clone();
    let name = header
        .iter()
        .position(|h| h == "owner_name")
        .context("owner_name")?;
    let phone = header.iter().position(|h| h == "phone").context("phone")?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record?;
        out.extend(record[name].split('、').map(str::to_string));
        out.push(record[phone].to_string());
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    Ok(out)
}

/// A login-able account with `roles`, and its session token.
fn account_token(server: &TestServer, admin: &str, login: &str, roles: &[&str]) -> Result<String> {
    let password = "field-passphrase-9".to_string();
    api_ok(
        server,
        "POST",
        &format!("{ADMIN}/accounts"),
        Some(
            &json!({ "login": login, "display_name": login, "roles": roles,
                      "password": password }),
        ),
        admin,
    )?;
    let (status, reply) = server.post_json(
        "/api/v1/auth/login",
        &json!({ "login": login, "password": password }),
        None,
    )?;
    ensure!(status == StatusCode::OK, "login {login}: {status} {reply}");
    reply["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no token"))
}

/// A head of building 4 visits, collects a ballot and files a work order, then syncs.
fn some_field_work(server: &TestServer) -> Result<Phone> {
    let head = Phone::enroll(server, &server.code("4"))?;
    let units = units_of(server, "4")?;
    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::Collected, "")?;
    head.replica
        .record_ballot(demo::CAMPAIGN, &units[0], election_answers(&[1, 3]), None)?;
    head.replica
        .create_order(&units[1], "修楼道灯", "三楼灯不亮")?;
    head.sync()?;
    Ok(head)
}

#[test]
fn every_export_is_an_audited_attachment_and_the_inputs_file_recomputes_the_tally_hash()
-> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    some_field_work(&server)?;
    let tally = tally_from_api(&server, demo::CAMPAIGN, &token)?;

    for file in FILES {
        let (status, headers, bytes) = get(
            &server,
            &format!("{ADMIN}/campaigns/{}/exports/{file}", demo::CAMPAIGN),
            Auth::Bearer(&token),
        )?;
        assert_eq!(status, StatusCode::OK, "{file}");
        let content_type = headers[header::CONTENT_TYPE].to_str()?;
        let expected = match file.rsplit('.').next() {
            Some("csv") => "text/csv; charset=utf-8",
            Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            _ => "application/json",
        };
        assert_eq!(content_type, expected, "{file}");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION].to_str()?,
            format!("attachment; filename=\"{}-{file}\"", demo::CAMPAIGN)
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{file}");
        if file.ends_with(".xlsx") {
            let (_, rows, formulas) = xlsx_sheet(&bytes)?;
            assert!(!rows.is_empty(), "{file} has its heading row");
            assert!(formulas.is_empty(), "{file}: {formulas:?}");
        }
    }

    // The inputs file is the exact bytes whose SHA-256 the tally and its CSV cite.
    let inputs = export(&server, demo::CAMPAIGN, "tally-inputs.json", &token)?;
    assert_eq!(hex::encode(Sha256::digest(&inputs)), tally.inputs_hash);
    let parsed: serde_json::Value = serde_json::from_slice(&inputs)?;
    assert!(parsed.is_object(), "the inputs file is JSON");
    let rows = csv_rows(&export(&server, demo::CAMPAIGN, "tally.csv", &token)?)?;
    let hash = column(&rows[0], "inputs_hash")?;
    assert_eq!(rows.len(), 1 + 9, "one row per candidate");
    assert!(rows[1..].iter().all(|r| r[hash] == tally.inputs_hash));

    // Each download is in the audit log, by kind, with the file and the inputs hash.
    let events = server.storage().audit_events(0, 10_000)?;
    for (kind, file) in [
        ("export.roll", "roll.xlsx"),
        ("export.ballots", "ballots.csv"),
        ("export.tally", "tally.xlsx"),
        ("export.visits", "visits.csv"),
        ("export.orders", "orders.xlsx"),
        ("export.tally_inputs", "tally-inputs.json"),
    ] {
        let event = events
            .iter()
            .find(|e| e.kind == kind && e.detail["file"] == file)
            .with_context(|| format!("{kind} {file} audited"))?;
        assert_eq!(event.subject, format!("campaign/{}", demo::CAMPAIGN));
        assert_eq!(event.detail["inputs_hash"], tally.inputs_hash.as_str());
    }
    Ok(())
}

#[test]
fn the_roll_gives_units_and_areas_in_square_metres_and_no_file_names_an_owner_or_a_phone()
-> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    some_field_work(&server)?;

    let rows = csv_rows(&export(&server, demo::CAMPAIGN, "roll.csv", &token)?)?;
    assert_eq!(
        rows[0],
        ["unit", "building", "entrance", "voter_key", "area_m2"]
    );
    assert_eq!(rows.len(), 1 + 306, "every unit of the frozen roll");
    assert_eq!(rows[1][0], "1-1-0101", "in the order people read the codes");
    let first_of = |b: &str| rows.iter().position(|r| r[1] == b).context("building");
    assert!(
        first_of("2")? < first_of("10")?,
        "building 2 before building 10"
    );
    let first = rows
        .iter()
        .find(|r| r[0] == "1-1-0101")
        .context("unit 1-1-0101")?;
    assert_eq!(first[3], "P0001");
    assert_eq!(first[4], "86.03", "m² with two decimals, as the register");
    let total: i64 = rows[1..].iter().map(|r| cents(&r[4])).sum::<Result<_>>()?;
    assert_eq!(total, 2_896_559, "28,965.59 m² in all");

    let (name, cells, _) = xlsx_sheet(&export(&server, demo::CAMPAIGN, "roll.xlsx", &token)?)?;
    assert_eq!(name, "名册");
    assert_eq!(
        cells[0].iter().map(text).collect::<Vec<_>>(),
        [
            "房屋编号",
            "楼栋",
            "单元",
            "表决权人编号",
            "专有部分面积（m²）"
        ]
    );
    assert_eq!(cells.len(), 1 + 306);
    let first = cells
        .iter()
        .find(|r| text(&r[0]) == "1-1-0101")
        .context("unit 1-1-0101 in XLSX")?;
    match first[4] {
        Data::Float(a) => assert!((a - 86.03).abs() < 1e-9, "{a}"),
        ref other => panic!("area is a number cell, got {other:?}"),
    }
    let total: f64 = cells[1..]
        .iter()
        .map(|r| match r[4] {
            Data::Float(a) => a,
            _ => f64::NAN,
        })
        .sum();
    assert_eq!((total * 100.0).round() as i64, 2_896_559);

    // Nothing any export holds names an owner or gives a phone number.
    let private = names_and_phones()?;
    assert!(
        private.len() > 300,
        "the demo register has names and phones"
    );
    for file in FILES {
        let bytes = export(&server, demo::CAMPAIGN, file, &token)?;
        let all_text = if file.ends_with(".xlsx") {
            let (_, cells, _) = xlsx_sheet(&bytes)?;
            cells
                .iter()
                .flatten()
                .map(text)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::from_utf8(bytes)?
        };
        for p in &private {
            assert!(!all_text.contains(p.as_str()), "{file} holds {p}");
        }
    }
    Ok(())
}

#[test]
fn visits_and_ballots_show_china_time_and_their_counting_state() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    some_field_work(&server)?;
    let live = projections(&server)?;
    let visit_at: i64 = live["p_visits"][0][5].parse()?;

    let rows = csv_rows(&export(&server, demo::CAMPAIGN, "visits.csv", &token)?)?;
    assert_eq!(
        rows[0],
        ["visit", "building", "unit", "outcome", "at", "by"]
    );
    assert_eq!(rows.len(), 2);
    let expected = format!("{} {}", format::date(visit_at), format::clock(visit_at));
    assert_eq!(rows[1][4], expected, "北京时间");
    assert_eq!(rows[1][3], "collected");

    let (_, cells, _) = xlsx_sheet(&export(&server, demo::CAMPAIGN, "visits.xlsx", &token)?)?;
    match &cells[1][4] {
        Data::DateTime(t) => {
            let serial = (visit_at.div_euclid(1000) + 8 * 3600) as f64 / 86_400.0 + 25_569.0;
            assert!(
                (t.as_f64() - serial).abs() < 1e-6,
                "{} vs {serial}",
                t.as_f64()
            );
        }
        other => panic!("visit time is a date cell, got {other:?}"),
    }

    let rows = csv_rows(&export(&server, demo::CAMPAIGN, "ballots.csv", &token)?)?;
    let status = column(&rows[0], "status")?;
    let late = column(&rows[0], "late_synced")?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][status], "counted");
    assert_eq!(rows[1][late], "false");
    let (_, cells, _) = xlsx_sheet(&export(&server, demo::CAMPAIGN, "ballots.xlsx", &token)?)?;
    assert_eq!(text(&cells[0][status]), "计票状态");
    assert_eq!(cells[1][status], Data::String("counted".into()));
    assert_eq!(cells[1][late], Data::Bool(false));

    // The tally's counts are numbers: areas in m², headcounts as integers.
    let (name, cells, _) = xlsx_sheet(&export(&server, demo::CAMPAIGN, "tally.xlsx", &token)?)?;
    assert_eq!(name, "计票结果");
    let header: Vec<String> = cells[0].iter().map(text).collect();
    let area = column(&header, "参与面积（m²）")?;
    let heads = column(&header, "参与人数")?;
    let tally = tally_from_api(&server, demo::CAMPAIGN, &token)?;
    assert_eq!(tally.returned.headcount, 1);
    match (&cells[1][area], &cells[1][heads]) {
        (Data::Float(a), Data::Float(h)) => {
            assert_eq!((a * 100.0).round() as i64, tally.returned.area);
            assert_eq!(*h, 1.0);
        }
        other => panic!("counts are number cells, got {other:?}"),
    }
    Ok(())
}

#[test]
fn text_that_looks_like_a_formula_stays_text_in_csv_and_xlsx() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let hostile = ["=HYPERLINK(\"http://evil\",\"x\")", "+1", "-1", "@SUM(A1)"];
    let head = Phone::enroll(&server, &server.code("4"))?;
    let units = units_of(&server, "4")?;
    for title in hostile.iter().chain(&["修楼道灯"]) {
        head.replica.create_order(&units[0], title, "")?;
    }
    head.sync()?;

    let rows = csv_rows(&export(&server, demo::CAMPAIGN, "orders.csv", &token)?)?;
    let title = column(&rows[0], "title")?;
    let events = column(&rows[0], "events")?;
    let mut titles: Vec<&str> = rows[1..].iter().map(|r| r[title].as_str()).collect();
    titles.sort_unstable();
    let mut expected: Vec<String> = hostile.iter().map(|h| format!("'{h}")).collect();
    expected.push("修楼道灯".into());
    expected.sort();
    assert_eq!(titles, expected);

    let (name, cells, formulas) =
        xlsx_sheet(&export(&server, demo::CAMPAIGN, "orders.xlsx", &token)?)?;
    assert_eq!(name, "微心愿工单");
    assert!(formulas.is_empty(), "no formula cells: {formulas:?}");
    let mut titles: Vec<String> = cells[1..]
        .iter()
        .map(|r| match &r[title] {
            Data::String(s) => s.clone(),
            other => format!("not a string cell: {other:?}"),
        })
        .collect();
    titles.sort();
    assert_eq!(titles, expected);
    assert!(
        cells[1..]
            .iter()
            .all(|r| matches!(r[events], Data::Float(_))),
        "the event count is a number cell"
    );

    // A matter whose text is hostile, in the tally's CSV and XLSX.
    let questions: serde_json::Map<String, serde_json::Value> = hostile
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let id = format!("q{}", i + 1);
            (
                id.clone(),
                json!({ "id": id, "order": i + 1, "text": text,
                        "kind": { "kind": "resolution", "matter": 8 } }),
            )
        })
        .collect();
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns"),
        Some(
            &json!({ "id": "inject", "community": demo::COMMUNITY, "title": "=cmd|' /C calc'!A0",
                      "kind": "resolution", "binding": true, "scope": { "kind": "whole" },
                      "questions": questions }),
        ),
        &token,
    )?;
    let rows = csv_rows(&export(&server, "inject", "tally.csv", &token)?)?;
    let text_col = column(&rows[0], "question_text")?;
    let mut texts: Vec<&str> = rows[1..].iter().map(|r| r[text_col].as_str()).collect();
    texts.sort_unstable();
    let mut expected: Vec<String> = hostile.iter().map(|h| format!("'{h}")).collect();
    expected.sort();
    assert_eq!(texts, expected);
    let (_, cells, formulas) = xlsx_sheet(&export(&server, "inject", "tally.xlsx", &token)?)?;
    assert!(formulas.is_empty(), "no formula cells: {formulas:?}");
    let mut texts: Vec<String> = cells[1..].iter().map(|r| text(&r[text_col])).collect();
    texts.sort();
    assert_eq!(texts, expected);
    Ok(())
}

#[test]
fn the_exports_page_offers_every_file_per_campaign_and_downloads_with_the_cookie() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    some_field_work(&server)?;

    let (status, _, html) = get(&server, "/exports", Auth::Cookie(&token))?;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(html)?;
    assert!(html.contains("<h1>导出</h1>"), "{html}");
    assert!(html.contains("href=\"/exports\" aria-current=\"page\">导出</a>"));
    for label in [
        "名册",
        "选票",
        "计票结果",
        "走访记录",
        "微心愿工单",
        "计票输入",
    ] {
        assert!(html.contains(&format!("<h3>{label}</h3>")), "{label}");
    }
    for file in FILES {
        let href = format!("href=\"/campaigns/{}/exports/{file}\"", demo::CAMPAIGN);
        assert!(html.contains(&href), "{href}");
    }

    // A download from the page is the API's file, as an attachment, and audited.
    let before = server.storage().audit_events(0, 10_000)?.len();
    let path = format!("/campaigns/{}/exports/roll.csv", demo::CAMPAIGN);
    let (status, headers, bytes) = get(&server, &path, Auth::Cookie(&token))?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION].to_str()?,
        format!("attachment; filename=\"{}-roll.csv\"", demo::CAMPAIGN)
    );
    assert_eq!(bytes, export(&server, demo::CAMPAIGN, "roll.csv", &token)?);
    let events = server.storage().audit_events(0, 10_000)?;
    assert_eq!(
        events[before..]
            .iter()
            .filter(|e| e.kind == "export.roll")
            .count(),
        2,
        "the page's download and the API's"
    );
    let xlsx = format!("/campaigns/{}/exports/orders.xlsx", demo::CAMPAIGN);
    let (status, _, bytes) = get(&server, &xlsx, Auth::Cookie(&token))?;
    assert_eq!(status, StatusCode::OK);
    let (_, cells, _) = xlsx_sheet(&bytes)?;
    assert_eq!(text(&cells[1][3]), "修楼道灯");

    // A counting officer may export; a dispatcher gets the 403 page; nobody goes to login.
    let officer = officer_token(&server)?;
    assert_eq!(
        get(&server, "/exports", Auth::Cookie(&officer))?.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&server, &path, Auth::Cookie(&officer))?.0,
        StatusCode::OK
    );
    let dispatcher = account_token(&server, &token, "branch-1", &["dispatcher"])?;
    for p in ["/exports", path.as_str()] {
        let (status, headers, _) = get(&server, p, Auth::Cookie(&dispatcher))?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
        assert_eq!(headers["x-error-code"], "forbidden");
    }
    let (status, headers, _) = get(
        &server,
        &format!("{ADMIN}{path}"),
        Auth::Bearer(&dispatcher),
    )?;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the API refuses a dispatcher too"
    );
    assert!(!headers.contains_key(header::CONTENT_DISPOSITION));
    let (status, headers, _) = get(&server, &path, Auth::Nobody)?;
    assert!(status.is_redirection(), "{status}");
    assert!(
        headers[header::LOCATION]
            .to_str()?
            .starts_with("/login?next="),
        "back to the file after logging in"
    );
    let (status, headers, _) = get(&server, "/exports", Auth::Nobody)?;
    assert!(status.is_redirection(), "{status}");
    assert!(headers[header::LOCATION].to_str()?.starts_with("/login"));
    Ok(())
}

#[test]
fn an_unknown_file_or_campaign_is_not_found_and_names_the_files_there_are() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (status, reply) = api(
        &server,
        "GET",
        &format!(
            "{ADMIN}/campaigns/{}/exports/households.csv",
            demo::CAMPAIGN
        ),
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"]["code"], "not_found");
    let message = reply["error"]["message"].as_str().context("message")?;
    for file in FILES {
        assert!(message.contains(file), "{message} names {file}");
    }
    let (status, reply) = api(
        &server,
        "GET",
        &format!("{ADMIN}/campaigns/nope/exports/roll.csv"),
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"]["code"], "not_found");

    let path = format!("/campaigns/{}/exports/households.csv", demo::CAMPAIGN);
    let (status, headers, html) = get(&server, &path, Auth::Cookie(&token))?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-error-code"], "not_found");
    let html = String::from_utf8(html)?;
    assert!(
        html.contains("roll.xlsx"),
        "the page names the files: {html}"
    );
    assert!(html.contains("href=\"/exports\""), "and leads back to 导出");
    let events = server.storage().audit_events(0, 10_000)?;
    assert!(
        !events.iter().any(|e| e.kind.starts_with("export.")),
        "nothing was exported, nothing audited"
    );
    Ok(())
}

#[test]
fn a_ballot_signed_by_a_proxy_says_so_in_the_export_and_on_the_units_page() -> Result<()> {
    use doorstep_core::model::CollectionMethod;
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let units = units_of(&server, "3")?;
    head.replica
        .record_ballot(demo::CAMPAIGN, &units[0], election_answers(&[1, 2]), None)?;
    head.replica.record_ballot_by(
        demo::CAMPAIGN,
        &units[1],
        election_answers(&[1, 3]),
        None,
        CollectionMethod::Proxy,
    )?;
    head.sync()?;

    let csv = String::from_utf8(export(&server, demo::CAMPAIGN, "ballots.csv", &token)?)?;
    let header = csv.lines().next().context("a header")?;
    ensure!(header.contains(",method,"), "{header}");
    let method_of = |unit: &str| {
        csv.lines()
            .find(|l| l.contains(&format!(",{unit},")))
            .map(|l| l.contains(",proxy,"))
    };
    ensure!(method_of(&units[0]) == Some(false), "{csv}");
    ensure!(method_of(&units[1]) == Some(true), "{csv}");

    let path = |unit: &str| format!("/buildings/{}/3/units/{unit}", demo::COMMUNITY);
    let (status, _, page) = get(&server, &path(&units[1]), Auth::Cookie(&token))?;
    ensure!(status == StatusCode::OK, "{status}");
    ensure!(String::from_utf8(page)?.contains("收回表决票·委托代签"));
    let (_, _, page) = get(&server, &path(&units[0]), Auth::Cookie(&token))?;
    let page = String::from_utf8(page)?;
    ensure!(page.contains("收回表决票（") && !page.contains("委托代签"));
    Ok(())
}
