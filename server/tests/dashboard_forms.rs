//! The dashboard's forms through the real router (cookie session, CSRF token scraped from the
//! page, plain form posts and a multipart upload, no JavaScript): the draft editor stores the
//! same draft as the JSON API; the 名册 upload lists every bad row by line and column and stores
//! nothing; the 微心愿 page dispatches an order to a head's phone and shows a refused step's code.

mod common;

use anyhow::{Context as _, Result, anyhow, ensure};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use common::*;
use doorstep_core::doc::DocId;
use doorstep_core::model::OrderStatus;
use doorstep_server::demo;
use serde_json::json;

const ADMIN: &str = "/api/v1/admin";
const SAMPLE: &[u8] = include_bytes!("../data/taipingyang-garden.csv");
const XLSX_30: &[u8] = include_bytes!("fixtures/register-30.xlsx");

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: String,
}

impl Page {
    fn code(&self) -> &str {
        self.headers
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> Result<String> {
        let at = self
            .html
            .find("name=\"_csrf\" value=\"")
            .context("the page has a form with a CSRF token")?;
        let rest = &self.html[at + "name=\"_csrf\" value=\"".len()..];
        Ok(rest[..rest.find('"').unwrap_or(0)].to_string())
    }
}

/// Send a dashboard request with the session cookie of `token`.
fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Result<Page> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("doorstep_session={token}"));
    let request = match body {
        Some((content_type, bytes)) => builder
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))?,
        None => builder.body(Body::empty())?,
    };
    let router = server.router.clone();
    let (status, headers, bytes) = server.rt.block_on(async move {
        use tower::ServiceExt;
        let response = router.oneshot(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        Ok::<_, anyhow::Error>((status, headers, bytes.to_vec()))
    })?;
    Ok(Page {
        status,
        headers,
        html: String::from_utf8(bytes)?,
    })
}

fn get(server: &TestServer, path: &str, token: &str) -> Result<Page> {
    send(server, "GET", path, token, None)
}

fn post_form(
    server: &TestServer,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
) -> Result<Page> {
    let body = serde_urlencoded::to_string(fields)?;
    send(
        server,
        "POST",
        path,
        token,
        Some(("application/x-www-form-urlencoded", body.into_bytes())),
    )
}

/// A multipart body: text fields, then the file.
fn multipart(
    fields: &[(&str, &str)],
    file_name: &str,
    file_type: &str,
    file: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "doorstep-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {file_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

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
            &json!({ "login": login, "display_name": format!("{login} 账号"),
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

fn campaign(server: &TestServer, id: &str) -> Result<Option<doorstep_core::model::Campaign>> {
    server.state.docs().campaign(id).map_err(|e| anyhow!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// 投票/议题 draft editor

#[test]
fn a_draft_made_on_the_form_equals_the_same_draft_made_through_the_api() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;

    let list = get(&server, "/campaigns", &token)?;
    assert!(
        list.html.contains("href=\"/campaigns/new\""),
        "the list links the editor"
    );
    let blank = get(&server, "/campaigns/new?kind=resolution", &token)?;
    assert_eq!(blank.status, StatusCode::OK);
    assert!(blank.html.contains("<h1>新建投票/议题</h1>"));
    for field in [
        "f-id",
        "f-title",
        "f-scope",
        "f-silence",
        "f-grace",
        "q0_text",
        "q0_matter",
    ] {
        assert!(
            blank.html.contains(&format!("<label for=\"{field}\"")),
            "{field} is labelled"
        );
    }
    assert!(
        blank.html.contains("value=\"entrance:3-2\""),
        "entrances are offered as scopes"
    );
    let csrf = blank.csrf()?;

    let mut fields: Vec<(&str, &str)> = vec![
        ("_csrf", csrf.as_str()),
        ("kind", "resolution"),
        ("id", "lift-form"),
        ("community", "tpy"),
        ("title", "3号楼2单元加装电梯"),
        ("scope", "entrance:3-2"),
        ("binding", "on"),
        ("silence", "delivered_counts_as_abstain"),
        ("silence_announced", "on"),
        ("grace_hours", "48"),
        ("q0_id", ""),
        ("q0_text", "同意加装电梯"),
        ("q0_matter", "8"),
        ("q1_id", ""),
        ("q1_text", ""),
        ("q1_matter", ""),
        ("q2_id", ""),
        ("q2_text", "同意使用维修资金"),
        ("q2_matter", ""),
    ];

    // "再加 3 行" re-renders with more rows, keeps the input and stores nothing.
    let mut more = fields.clone();
    more.push(("add", "rows"));
    let page = post_form(&server, "/campaigns/new", &token, &more)?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("name=\"q5_text\""), "three more rows");
    assert!(page.html.contains(">同意使用维修资金</textarea>"));
    assert!(campaign(&server, "lift-form")?.is_none());

    // A question without its matter item: the form comes back with the input kept.
    let page = post_form(&server, "/campaigns/new", &token, &fields)?;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.code(), "invalid_input");
    assert!(
        page.html.contains("民法典第二百七十八条第几项"),
        "says what is missing"
    );
    assert!(page.html.contains("value=\"3号楼2单元加装电梯\""));
    assert!(
        page.html
            .contains("<option value=\"delivered_counts_as_abstain\" selected>")
    );
    assert!(campaign(&server, "lift-form")?.is_none(), "nothing stored");

    fields[18] = ("q2_matter", "5");
    let page = post_form(&server, "/campaigns/new", &token, &fields)?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), "/campaigns/lift-form");

    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns"),
        Some(&json!({
            "id": "lift-api", "community": "tpy", "title": "3号楼2单元加装电梯",
            "kind": "resolution", "binding": true,
            "scope": { "kind": "entrance", "entrance": "3-2" },
            "rules": { "silence": "delivered_counts_as_abstain", "grace_period_ms": 172_800_000,
                       "silence_announced": true },
            "questions": {
                "q1": { "id": "q1", "order": 1, "text": "同意加装电梯",
                        "kind": { "kind": "resolution", "matter": 8 } },
                "q2": { "id": "q2", "order": 2, "text": "同意使用维修资金",
                        "kind": { "kind": "resolution", "matter": 5 } }
            }
        })),
        &token,
    )?;
    let mut from_form = campaign(&server, "lift-form")?.context("stored")?;
    let from_api = campaign(&server, "lift-api")?.context("stored")?;
    from_form.id = from_api.id.clone();
    assert_eq!(from_form, from_api);

    // The same id again is refused on the form, next to the id, with the input kept.
    let page = post_form(&server, "/campaigns/new", &token, &fields)?;
    assert_eq!((page.status, page.code()), (StatusCode::CONFLICT, "exists"));
    assert!(page.html.contains("这个编号已被使用"));
    assert!(page.html.contains("value=\"lift-form\""));

    // An election through the form equals the API's too.
    let page = get(&server, "/campaigns/new?kind=election", &token)?;
    assert!(
        page.html.contains("name=\"c8_name\""),
        "nine candidate rows"
    );
    let csrf = page.csrf()?;
    let page = post_form(
        &server,
        "/campaigns/new",
        &token,
        &[
            ("_csrf", csrf.as_str()),
            ("kind", "election"),
            ("id", "committee-form"),
            ("community", "tpy"),
            ("title", "第二届业主委员会选举"),
            ("scope", "whole"),
            ("binding", "on"),
            ("silence", "strict"),
            ("grace_hours", "24"),
            ("election_text", "选举业主委员会委员（5名）"),
            ("seats", "5"),
            ("c0_name", "张三"),
            ("c1_name", ""),
            ("c2_name", "李四"),
            ("c3_name", "王五"),
        ],
    )?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let candidates = json!({
        "cand-1": { "id": "cand-1", "name": "张三", "order": 1 },
        "cand-2": { "id": "cand-2", "name": "李四", "order": 2 },
        "cand-3": { "id": "cand-3", "name": "王五", "order": 3 }
    });
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/campaigns"),
        Some(&json!({
            "id": "committee-api", "community": "tpy", "title": "第二届业主委员会选举",
            "kind": "election", "binding": true, "scope": { "kind": "whole" },
            "questions": { "q1": { "id": "q1", "order": 1, "text": "选举业主委员会委员（5名）",
                "kind": { "kind": "election", "seats": 5, "candidates": candidates } } }
        })),
        &token,
    )?;
    let mut from_form = campaign(&server, "committee-form")?.context("stored")?;
    from_form.id = "committee-api".into();
    assert_eq!(Some(from_form), campaign(&server, "committee-api")?);

    // Editing: the draft's page links the editor; the form holds the draft; a save replaces it.
    let page = get(&server, "/campaigns/lift-form", &token)?;
    assert!(page.html.contains("href=\"/campaigns/lift-form/edit\""));
    let page = get(&server, "/campaigns/lift-form/edit", &token)?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(">同意使用维修资金</textarea>"));
    assert!(
        page.html.contains("name=\"q1_id\" value=\"q2\""),
        "rows keep their question ids"
    );
    let csrf = page.csrf()?;
    let mut edited = fields.clone();
    edited[0] = ("_csrf", csrf.as_str());
    edited[4] = ("title", "3号楼2单元加装电梯（第二次）");
    edited.retain(|(k, _)| *k != "id");
    let page = post_form(&server, "/campaigns/lift-form/edit", &token, &edited)?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let stored = campaign(&server, "lift-form")?.context("stored")?;
    assert_eq!(stored.title, "3号楼2单元加装电梯（第二次）");
    assert_eq!(stored.questions, from_api.questions);

    // A published campaign has no editor: the page says why, with the API's code.
    let page = get(&server, &format!("/campaigns/{}", demo::CAMPAIGN), &token)?;
    assert!(!page.html.contains("/edit\""));
    let page = get(
        &server,
        &format!("/campaigns/{}/edit", demo::CAMPAIGN),
        &token,
    )?;
    assert_eq!(
        (page.status, page.code()),
        (StatusCode::CONFLICT, "not_a_draft")
    );

    // Only admins edit drafts; a form post without the token changes nothing.
    let officer = officer_token(&server)?;
    assert_eq!(
        get(&server, "/campaigns/new", &officer)?.status,
        StatusCode::FORBIDDEN
    );
    let mut no_token = fields.clone();
    no_token[0] = ("_csrf", "forged");
    no_token[2] = ("id", "forged-draft");
    let page = post_form(&server, "/campaigns/new", &token, &no_token)?;
    assert_eq!((page.status, page.code()), (StatusCode::FORBIDDEN, "csrf"));
    assert!(campaign(&server, "forged-draft")?.is_none());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 名册 upload

fn sample_with(changes: &[(usize, &str)]) -> Vec<u8> {
    let text = std::str::from_utf8(SAMPLE).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (line, replacement) in changes {
        lines[line - 1] = replacement.to_string();
    }
    lines.join("\n").into_bytes()
}

#[test]
fn a_bad_register_lists_every_error_by_line_and_column_and_stores_nothing() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let page = get(&server, "/register", &token)?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("enctype=\"multipart/form-data\""));
    assert!(
        page.html.contains("28965.59"),
        "the stored register with its area"
    );
    for field in ["community", "name", "file"] {
        assert!(
            page.html.contains(&format!("<label for=\"{field}\"")),
            "{field} is labelled"
        );
    }
    let csrf = page.csrf()?;

    let bad = sample_with(&[
        (
            5,
            "1-1-0202,1号楼,1单元,2,0202,ninety,P0004,莫志志,13807387217,3,",
        ),
        (
            7,
            "1-1-0102,1号楼,1单元,1,0102,88.52,P0002,彭洋静,13801786786,1,",
        ),
        (
            9,
            "1-1-0999,1号楼,1单元,two,0999,80.00,P9999,某某,138,1,weird",
        ),
        (
            12,
            "1-1-0601,一号楼,1单元,6,0601,71.56,P0011,罗红芳,13809876473,3,",
        ),
    ]);
    let documents = server.storage().documents()?.len();
    let audit = server.storage().audit_events(0, 100_000)?.len();
    let (content_type, body) = multipart(
        &[
            ("_csrf", csrf.as_str()),
            ("community", "tpy2"),
            ("name", "第二小区"),
        ],
        "register.csv",
        "text/csv",
        &bad,
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.html
    );
    assert_eq!(page.code(), "invalid_input");
    for (line, column) in [
        (5, "area_m2"),
        (7, "unit_code"),
        (9, "floor"),
        (12, "building"),
    ] {
        assert!(
            page.html
                .contains(&format!("data-line=\"{line}\" data-column=\"{column}\"")),
            "line {line}, column {column}: {}",
            page.html
        );
    }
    assert_eq!(
        page.html.matches("<tr data-line=").count(),
        4,
        "one row per bad line"
    );
    assert!(page.html.contains("房号与前面的行重复"));
    assert!(page.html.contains("没有导入任何内容"));
    assert!(
        page.html.contains("value=\"第二小区\""),
        "the form keeps what was typed"
    );
    let register = DocId::Register {
        community: "tpy2".into(),
    };
    assert!(
        server.storage().document_meta(&register)?.is_none(),
        "nothing stored"
    );
    assert_eq!(server.storage().documents()?.len(), documents);
    assert_eq!(server.storage().audit_events(0, 100_000)?.len(), audit);

    // The JSON API refuses the same file with the first of those positions.
    let (status, reply) = {
        let request = Request::post(format!("{ADMIN}/register/import?community=tpy2&name=x"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(bad.clone()))?;
        server.call(request)?
    };
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(String::from_utf8(reply)?.contains("line 5, column area_m2"));

    // A missing header column is the one problem, on line 1.
    let header_bad = sample_with(&[(
        1,
        "unit_code,building,entrance,floor,room,area,owner_key,owner_name,phone,residents,note",
    )]);
    let (content_type, body) = multipart(
        &[
            ("_csrf", csrf.as_str()),
            ("community", "tpy2"),
            ("name", "第二小区"),
        ],
        "register.csv",
        "text/csv",
        &header_bad,
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html
            .contains("data-line=\"1\" data-column=\"area_m2\"")
    );

    // Without the form's token nothing is read or stored.
    let (content_type, body) = multipart(
        &[
            ("_csrf", "forged"),
            ("community", "tpy2"),
            ("name", "第二小区"),
        ],
        "register.csv",
        "text/csv",
        SAMPLE,
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!((page.status, page.code()), (StatusCode::FORBIDDEN, "csrf"));
    assert!(server.storage().document_meta(&register)?.is_none());

    // A good file is imported whole, and the page says what: buildings, units, area.
    let (content_type, body) = multipart(
        &[
            ("_csrf", csrf.as_str()),
            ("community", "tpy2"),
            ("name", "第二小区"),
        ],
        "register.csv",
        "application/vnd.ms-excel",
        SAMPLE,
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html
            .contains("<strong id=\"imported-buildings\">11</strong>")
    );
    assert!(
        page.html
            .contains("<strong id=\"imported-units\">306</strong>")
    );
    assert!(
        page.html
            .contains("<strong id=\"imported-area\">28965.59</strong>")
    );
    assert!(server.storage().document_meta(&register)?.is_some());

    // An XLSX workbook goes through the same import.
    let (content_type, body) = multipart(
        &[
            ("_csrf", csrf.as_str()),
            ("community", "x30"),
            ("name", "三十户"),
        ],
        "register-30.xlsx",
        "application/octet-stream",
        XLSX_30,
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html
            .contains("<strong id=\"imported-units\">30</strong>")
    );

    // Neither CSV nor XLSX: refused by its code, nothing stored.
    let (content_type, body) = multipart(
        &[
            ("_csrf", csrf.as_str()),
            ("community", "img"),
            ("name", "x"),
        ],
        "photo.png",
        "image/png",
        b"\x89PNG\r\n",
    );
    let page = send(
        &server,
        "POST",
        "/register",
        &token,
        Some((&content_type, body)),
    )?;
    assert_eq!(page.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(page.html.contains("data-code=\"unsupported_media_type\""));

    // Admins only.
    let officer = officer_token(&server)?;
    assert_eq!(
        get(&server, "/register", &officer)?.status,
        StatusCode::FORBIDDEN
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 微心愿 page

#[test]
fn a_dispatcher_dispatches_from_the_orders_page_and_a_refused_step_shows_its_code() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let (_, dispatcher) = account(&server, &admin, "branch-1", &["dispatcher"])?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let unit = units_of(&server, "3")?[2].clone();
    let order = head.replica.create_order(&unit, "楼道灯不亮", "三楼")?;
    head.sync()?;

    let page = get(&server, "/orders", &dispatcher)?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html
            .contains("href=\"/orders\" aria-current=\"page\">微心愿</a>")
    );
    assert!(page.html.contains("楼道灯不亮"));
    assert!(page.html.contains(&unit));
    assert!(page.html.contains("待审核（1）"));
    let csrf = page.csrf()?;
    let form = |from: &'static str, to: &'static str, assignee: &str| -> Vec<(String, String)> {
        [
            ("_csrf", csrf.as_str()),
            ("community", "tpy"),
            ("building", "3"),
            ("order", order.as_str()),
            ("from", from),
            ("to", to),
            ("assignee", assignee),
            ("note", ""),
            ("state", ""),
            ("filter_building", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let post = |fields: Vec<(String, String)>| -> Result<Page> {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post_form(&server, "/orders/step", &dispatcher, &pairs)
    };
    for (from, to) in [("submitted", "under_review"), ("under_review", "published")] {
        let page = post(form(from, to, ""))?;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{to}: {}", page.html);
    }
    let page = get(&server, "/orders?state=published", &dispatcher)?;
    let head_account = head.enrollment.account_id.clone();
    assert!(
        page.html
            .contains(&format!("<option value=\"{head_account}\">")),
        "the head is offered"
    );
    assert!(page.html.contains(">派单</button>"));
    assert!(
        !page.html.contains(">我来接单</button>"),
        "claiming is the heads' step"
    );

    let page = post(form("published", "dispatched", &head_account))?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(
        page.location().contains("done=dispatched"),
        "{}",
        page.location()
    );
    let page = get(&server, page.location(), &dispatcher)?;
    assert!(page.html.contains("「楼道灯不亮」已改为「已派单」"));

    head.sync()?;
    let on_phone = head
        .replica
        .orders("3")?
        .into_iter()
        .find(|o| o.id == order)
        .context("the phone holds the order")?;
    assert_eq!(on_phone.status(), OrderStatus::Dispatched);
    assert_eq!(on_phone.assignee.as_deref(), Some(head_account.as_str()));

    // The page offers no step core's rules refuse; posting one anyway shows its code.
    let page = get(&server, "/orders?state=dispatched", &dispatcher)?;
    assert!(
        !page.html.contains("value=\"in_progress\""),
        "only the assignee starts work"
    );
    assert!(page.html.contains("等待接单的楼栋长在手机上开始办理"));
    let page = post(form("dispatched", "in_progress", ""))?;
    assert_eq!(
        (page.status, page.code()),
        (StatusCode::FORBIDDEN, "assignee_only")
    );
    assert!(page.html.contains("data-code=\"assignee_only\""));
    assert!(page.html.contains("只有接单的楼栋长可以开始办理"));
    let page = post(form("submitted", "under_review", ""))?;
    assert_eq!(
        (page.status, page.code()),
        (StatusCode::CONFLICT, "order_changed")
    );

    // A forged post changes nothing; other roles have no 微心愿 page.
    let mut forged = form("dispatched", "closed", "");
    forged[0].1 = "forged".into();
    let before = server.heads(&orders("3"))?;
    assert_eq!(post(forged)?.code(), "csrf");
    assert_eq!(server.heads(&orders("3"))?, before);
    let officer = officer_token(&server)?;
    assert_eq!(
        get(&server, "/orders", &officer)?.status,
        StatusCode::FORBIDDEN
    );

    // Taking a request at the office from the same page.
    let page = post_form(
        &server,
        "/orders",
        &dispatcher,
        &[
            ("_csrf", csrf.as_str()),
            ("community", "tpy"),
            ("unit", "99-9-9999"),
            ("title", "不存在的房号"),
            ("detail", ""),
        ],
    )?;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.html.contains("value=\"99-9-9999\""),
        "the input is kept"
    );
    let page = post_form(
        &server,
        "/orders",
        &dispatcher,
        &[
            ("_csrf", csrf.as_str()),
            ("community", "tpy"),
            ("unit", unit.as_str()),
            ("title", "想加装扶手"),
            ("detail", "老人上楼难"),
        ],
    )?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    head.sync()?;
    assert!(
        head.replica
            .orders("3")?
            .iter()
            .any(|o| o.title == "想加装扶手")
    );
    Ok(())
}

#[test]
fn a_household_page_lists_its_edits_with_who_made_them_and_hides_values_from_officers() -> Result<()>
{
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let (_, officer) = account(&server, &admin, "officer-h", &["counting_officer"])?;
    let head = Phone::enroll(&server, &server.code("5"))?;
    let unit = units_of(&server, "5")?.remove(0);
    head.replica.edit_household(
        &unit,
        &doorstep_core::replica::HouseholdEdit {
            residents: Some(7),
            phone: Some("13900001111".into()),
            ..Default::default()
        },
    )?;
    head.sync()?;
    let head_name = api_ok(&server, "GET", &format!("{ADMIN}/accounts"), None, &admin)?
        .as_array()
        .context("accounts")?
        .iter()
        .find(|a| a["id"] == json!(head.enrollment.account_id))
        .and_then(|a| a["display_name"].as_str().map(str::to_string))
        .context("the head's account")?;
    let path = format!("/buildings/{}/5/units/{unit}", demo::COMMUNITY);

    let page = get(&server, &path, &admin)?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    let row = page
        .html
        .lines()
        .flat_map(|l| l.split("<tr>"))
        .find(|r| r.contains("常住人数「7」"))
        .context("the edit is on the timeline with its value")?;
    ensure!(row.contains("电话「13900001111」"), "{row}");
    ensure!(row.contains(&head_name), "the edit names its author: {row}");
    let first = page
        .html
        .split("<tr>")
        .find(|r| r.contains("住户信息："))
        .context("household edits are listed")?;
    ensure!(
        first.contains("管理端")
            && !first.contains("常住人数「7」")
            && first.contains("居住情况「"),
        "the register import comes first, made by the office: {first}"
    );

    let page = get(&server, &path, &officer)?;
    ensure!(page.status == StatusCode::OK, "{}", page.status);
    let row = page
        .html
        .split("<tr>")
        .find(|r| r.contains("住户信息：") && r.contains(&head_name))
        .context("the officer sees the edit")?;
    ensure!(
        row.contains("常住人数") && row.contains("电话") && !row.contains('「'),
        "field names only: {row}"
    );
    ensure!(
        !page.html.contains("13900001111"),
        "an officer never sees the phone number"
    );
    Ok(())
}

#[test]
fn an_admin_changes_their_password_on_the_page_and_stays_logged_in_here_only() -> Result<()> {
    let server = TestServer::start()?;
    let here = server.admin_token()?;
    let elsewhere = server.admin_token()?;
    let page = get(&server, "/password", &here)?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("修改我的密码"));
    let csrf = page.csrf()?;

    let refused = post_form(
        &server,
        "/password",
        &here,
        &[
            ("_csrf", &csrf),
            ("current", ADMIN_PASSWORD),
            ("new", "qwertyuiop"),
            ("repeat", "qwertyuiop"),
        ],
    )?;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "weak_password")
    );
    assert!(refused.html.contains("常见密码"), "the reason in Chinese");
    let mismatch = post_form(
        &server,
        "/password",
        &here,
        &[
            ("_csrf", &csrf),
            ("current", ADMIN_PASSWORD),
            ("new", "a long new phrase"),
            ("repeat", "a long new phrase!"),
        ],
    )?;
    assert!(mismatch.html.contains("两次输入的新密码不一致"));

    let done = post_form(
        &server,
        "/password",
        &here,
        &[
            ("_csrf", &csrf),
            ("current", ADMIN_PASSWORD),
            ("new", "a long new phrase"),
            ("repeat", "a long new phrase"),
        ],
    )?;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.html.contains("密码已修改"));
    let cookie = done
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .context("a fresh session cookie")?;
    let fresh = cookie
        .strip_prefix("doorstep_session=")
        .and_then(|v| v.split(';').next())
        .context("cookie value")?
        .to_string();
    assert_eq!(
        get(&server, "/devices", &fresh)?.status,
        StatusCode::OK,
        "still logged in here"
    );
    for old in [&here, &elsewhere] {
        let page = get(&server, "/devices", old)?;
        assert!(
            page.status.is_redirection(),
            "the old session ended: {}",
            page.status
        );
    }
    Ok(())
}

#[test]
fn an_admin_resets_an_officers_password_from_the_accounts_table() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let (id, officer) = account(&server, &admin, "officer-c", &["counting_officer"])?;
    let page = get(&server, "/devices", &admin)?;
    assert!(
        page.html
            .contains(&format!("action=\"/accounts/{id}/password\""))
    );
    let csrf = page.csrf()?;
    let weak = post_form(
        &server,
        &format!("/accounts/{id}/password"),
        &admin,
        &[("_csrf", &csrf), ("password", "officer-c-123")],
    )?;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.html.contains("不能包含登录名"),
        "the reason in Chinese"
    );
    let done = post_form(
        &server,
        &format!("/accounts/{id}/password"),
        &admin,
        &[("_csrf", &csrf), ("password", "counted twice, signed once")],
    )?;
    assert_eq!(done.status, StatusCode::OK);
    assert!(
        done.html
            .contains("已为 officer-c 账号（officer-c）重设密码"),
        "{}",
        done.html.len()
    );
    let (status, _) = api(&server, "GET", "/api/v1/auth/me", None, Some(&officer))?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the officer's sessions ended"
    );
    let (status, _) = server.post_json(
        "/api/v1/auth/login",
        &json!({ "login": "officer-c", "password": "counted twice, signed once" }),
        None,
    )?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[test]
fn an_admin_gives_and_takes_roles_per_community_from_the_accounts_table() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let page = get(&server, "/devices", &admin)?;
    let csrf = page.csrf()?;

    // A new account, admin of tpy only, made on the form.
    let created = post_form(
        &server,
        "/accounts",
        &admin,
        &[
            ("_csrf", &csrf),
            ("login", "wang"),
            ("name", "王主任"),
            ("role", "admin"),
            ("community", "tpy"),
            ("password", "street passphrase 1"),
        ],
    )?;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let accounts = api_ok(&server, "GET", &format!("{ADMIN}/accounts"), None, &admin)?;
    let wang = accounts
        .as_array()
        .context("a list")?
        .iter()
        .find(|a| a["login"] == "wang")
        .context("the new account")?
        .clone();
    assert_eq!(wang["grants"], json!({ "tpy": ["admin"] }));
    let id = wang["id"].as_str().context("an id")?.to_string();

    // A second role, counting officer of every community; the table shows both.
    let added = post_form(
        &server,
        &format!("/accounts/{id}/grants"),
        &admin,
        &[
            ("_csrf", &csrf),
            ("role", "counting_officer"),
            ("community", "*"),
        ],
    )?;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let page = get(&server, "/devices", &admin)?;
    assert!(page.html.contains("计票人 · 全部小区") && page.html.contains("管理员 · tpy"));
    let me = api_ok(&server, "GET", &format!("{ADMIN}/accounts"), None, &admin)?;
    assert!(
        me.to_string()
            .contains(r#""grants":{"*":["counting_officer"],"tpy":["admin"]}"#)
    );

    // Taking the 街道 admin's only role is refused with the reason on the page.
    let admin_id = api_ok(&server, "GET", "/api/v1/auth/me", None, &admin)?["id"]
        .as_str()
        .context("an id")?
        .to_string();
    let refused = post_form(
        &server,
        &format!("/accounts/{admin_id}/grants/remove"),
        &admin,
        &[("_csrf", &csrf), ("role", "admin"), ("community", "*")],
    )?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains("至少要保留一个角色"),
        "{}",
        refused.html.len()
    );
    // Nor may the 街道 admin become tpy's admin only: nobody would administer every community.
    let grant = post_form(
        &server,
        &format!("/accounts/{admin_id}/grants"),
        &admin,
        &[("_csrf", &csrf), ("role", "admin"), ("community", "tpy")],
    )?;
    assert_eq!(grant.status, StatusCode::SEE_OTHER);
    let refused = post_form(
        &server,
        &format!("/accounts/{admin_id}/grants/remove"),
        &admin,
        &[("_csrf", &csrf), ("role", "admin"), ("community", "*")],
    )?;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.html.contains("data-code=\"last_admin\""));
    assert!(refused.html.contains("最后一位能登录的管理员"));

    // Taking wang's tpy admin role leaves the officer role.
    let taken = post_form(
        &server,
        &format!("/accounts/{id}/grants/remove"),
        &admin,
        &[("_csrf", &csrf), ("role", "admin"), ("community", "tpy")],
    )?;
    assert_eq!(taken.status, StatusCode::SEE_OTHER);
    let accounts = api_ok(&server, "GET", &format!("{ADMIN}/accounts"), None, &admin)?;
    assert!(
        accounts
            .to_string()
            .contains(r#""grants":{"*":["counting_officer"]}"#)
    );
    Ok(())
}
