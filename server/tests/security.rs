//! Credentials and abuse (issue 11): the password policy, changing and resetting a password,
//! the last admin, throttled logins and enrollment codes with `Retry-After`, bounded password
//! hashing under a burst of logins, the audit of failed logins, security headers on every
//! answer, and `/metrics` only for the operator.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::*;
use doorstep_server::Config;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A JSON request from the client address `from`, as a real socket would give it.
fn from_addr(
    server: &TestServer,
    from: &str,
    method: &str,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> Result<(StatusCode, Value, Option<u64>)> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut request = request.body(Body::from(serde_json::to_vec(body)?))?;
    let addr: SocketAddr = format!("{from}:40000").parse()?;
    request.extensions_mut().insert(ConnectInfo(addr));
    let router = server.router.clone();
    server.rt.block_on(async move {
        let response = router.oneshot(request).await?;
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json, retry))
    })
}

fn login(
    server: &TestServer,
    from: &str,
    login: &str,
    password: &str,
) -> Result<(StatusCode, Value, Option<u64>)> {
    from_addr(
        server,
        from,
        "POST",
        "/api/v1/auth/login",
        &json!({ "login": login, "password": password }),
        None,
    )
}

fn create_account(
    server: &TestServer,
    token: &str,
    login: &str,
    roles: &[&str],
    password: &str,
) -> Result<(StatusCode, Value)> {
    api(
        server,
        "POST",
        "/api/v1/admin/accounts",
        Some(
            &json!({ "login": login, "display_name": "测试", "roles": roles, "password": password }),
        ),
        Some(token),
    )
}

#[test]
fn weak_passwords_are_refused_wherever_a_password_is_set() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let long = "x1y2z3".repeat(10_000);
    for weak in [
        "12345678",
        "          ",
        "aaaaaaaaaaaa",
        "officer-a-secret",
        "qwertyuiop",
        "Password123",
        "woaini1314",
        long.as_str(),
    ] {
        let (status, body) =
            create_account(&server, &token, "officer-a", &["counting_officer"], weak)?;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{weak:.20}: {body}"
        );
        assert_eq!(body["error"]["code"], "weak_password", "{weak:.20}");
    }
    let (status, body) = create_account(
        &server,
        &token,
        "officer-a",
        &["counting_officer"],
        "tally under lamplight",
    )?;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // An admin's reset and a change of one's own password follow the same policy.
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = api(
        &server,
        "POST",
        &format!("/api/v1/admin/accounts/{id}/password"),
        Some(&json!({ "password": "1234567890" })),
        Some(&token),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password"))
    );
    let (status, body) = api(
        &server,
        "POST",
        "/api/v1/auth/password",
        Some(&json!({ "current_password": ADMIN_PASSWORD, "new_password": "admin-again-please" })),
        Some(&token),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password"))
    );
    Ok(())
}

#[test]
fn changing_a_password_ends_every_other_session_and_keeps_the_caller_logged_in() -> Result<()> {
    let server = TestServer::start()?;
    let elsewhere = server.admin_token()?;
    let here = server.admin_token()?;
    let (status, body) = api(
        &server,
        "POST",
        "/api/v1/auth/password",
        Some(
            &json!({ "current_password": "not the password", "new_password": "a brand new phrase" }),
        ),
        Some(&here),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );

    let (status, body) = api(
        &server,
        "POST",
        "/api/v1/auth/password",
        Some(&json!({ "current_password": ADMIN_PASSWORD, "new_password": "a brand new phrase" })),
        Some(&here),
    )?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap().to_string();
    for old in [&elsewhere, &here] {
        let (status, _) = api(&server, "GET", "/api/v1/auth/me", None, Some(old))?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an old session ended");
    }
    let (status, _) = api(&server, "GET", "/api/v1/auth/me", None, Some(&fresh))?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        login(&server, "10.1.0.1", "admin", ADMIN_PASSWORD)?.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server, "10.1.0.1", "admin", "a brand new phrase")?.0,
        StatusCode::OK
    );
    Ok(())
}

#[test]
fn an_admin_reset_ends_the_accounts_sessions_and_is_audited() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (_, body) = create_account(
        &server,
        &token,
        "officer-b",
        &["counting_officer"],
        "ballots by candlelight",
    )?;
    let id = body["id"].as_str().unwrap().to_string();
    let (_, session, _) = login(&server, "10.2.0.1", "officer-b", "ballots by candlelight")?;
    let officer = session["token"].as_str().unwrap().to_string();

    // An officer may not reset anyone's password.
    let (status, _) = api(
        &server,
        "POST",
        &format!("/api/v1/admin/accounts/{id}/password"),
        Some(&json!({ "password": "my own new phrase" })),
        Some(&officer),
    )?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = api(
        &server,
        "POST",
        &format!("/api/v1/admin/accounts/{id}/password"),
        Some(&json!({ "password": "reset by the office" })),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = api(&server, "GET", "/api/v1/auth/me", None, Some(&officer))?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the officer's session ended"
    );
    assert_eq!(
        login(&server, "10.2.0.1", "officer-b", "reset by the office")?.0,
        StatusCode::OK
    );
    let events = server.storage().audit_events(0, 10_000)?;
    assert!(
        events
            .iter()
            .any(|e| e.kind == "account.password_set" && e.subject == format!("account:{id}"))
    );
    Ok(())
}

#[test]
fn the_last_active_admin_can_neither_be_demoted_nor_disabled() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (_, me) = api(&server, "GET", "/api/v1/auth/me", None, Some(&token))?;
    let me = me["id"].as_str().unwrap().to_string();
    let (status, body) = api(
        &server,
        "PATCH",
        &format!("/api/v1/admin/accounts/{me}"),
        Some(&json!({ "roles": ["counting_officer"] })),
        Some(&token),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin"))
    );

    // With a second admin, the first may step down; then the second is the last one.
    let (_, second) = create_account(
        &server,
        &token,
        "admin-two",
        &["admin"],
        "second office key",
    )?;
    let second = second["id"].as_str().unwrap().to_string();
    let (status, _) = api(
        &server,
        "PATCH",
        &format!("/api/v1/admin/accounts/{me}"),
        Some(&json!({ "roles": ["counting_officer"] })),
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::OK);
    let (_, session, _) = login(&server, "10.3.0.1", "admin-two", "second office key")?;
    let token_two = session["token"].as_str().unwrap().to_string();
    let (status, body) = api(
        &server,
        "PATCH",
        &format!("/api/v1/admin/accounts/{second}"),
        Some(&json!({ "roles": ["dispatcher"] })),
        Some(&token_two),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin"))
    );
    let events = server.storage().audit_events(0, 10_000)?;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "account.updated")
            .count(),
        1,
        "a refused change leaves no trace but its refusal"
    );
    Ok(())
}

#[test]
fn repeated_wrong_passwords_are_throttled_per_account_and_per_address() -> Result<()> {
    let server = TestServer::start()?;
    // Five wrong passwords for admin are answered; the sixth locks the account for 1 s.
    for _ in 0..6 {
        let (status, body, _) = login(&server, "10.4.0.1", "admin", "wrong password!")?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    // Locked: even the right password, from another address, waits.
    let (status, body, retry) = login(&server, "10.4.0.2", "admin", ADMIN_PASSWORD)?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    assert_eq!(retry, Some(1));
    server.clock.advance(1_000);
    let (status, _, _) = login(&server, "10.4.0.2", "admin", ADMIN_PASSWORD)?;
    assert_eq!(
        status,
        StatusCode::OK,
        "the lock ended when Retry-After said"
    );

    // One address trying many logins is stopped after 21 failures, other addresses are not.
    for i in 0..21 {
        let (status, _, _) = login(&server, "10.4.0.9", &format!("guess{i}"), "wrong password!")?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, retry) = login(&server, "10.4.0.9", "guess-next", "wrong password!")?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    assert_eq!(
        login(&server, "10.4.0.8", "admin", ADMIN_PASSWORD)?.0,
        StatusCode::OK
    );

    // Wrong passwords for a real account are audited with its id (never the password).
    let events = server.storage().audit_events(0, 10_000)?;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "auth.login_failed")
        .collect();
    assert_eq!(failed.len(), 6, "six wrong passwords for admin");
    assert!(
        failed
            .iter()
            .all(|e| !e.detail.to_string().contains("wrong password"))
    );
    Ok(())
}

#[test]
fn guessing_enrollment_codes_is_throttled_per_address() -> Result<()> {
    let server = TestServer::start()?;
    let enroll = |from: &str, code: &str| {
        from_addr(
            &server,
            from,
            "POST",
            "/api/v1/enroll",
            &json!({ "code": code, "label": "phone", "app_version": "1" }),
            None,
        )
    };
    for i in 0..11 {
        let (status, body, _) = enroll("10.5.0.1", &format!("AAAA-BBBB-{i:04}"))?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_enrollment_code"))
        );
    }
    let (status, body, retry) = enroll("10.5.0.1", "AAAA-BBBB-CCCC")?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    assert_eq!(retry, Some(1));
    // A real code from that address waits too; from another address it works at once.
    let (status, _, _) = enroll("10.5.0.1", &server.code("3"))?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, body, _) = enroll("10.5.0.2", &server.code("3"))?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

#[test]
fn a_burst_of_logins_hashes_only_a_few_passwords_at_once() -> Result<()> {
    let server = TestServer::start_with(Config {
        hash_concurrency: 2,
        hash_wait: Duration::from_secs(600),
        ..Config::default()
    })?;
    let router = server.router.clone();
    let statuses = server.rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..40u32 {
            let router = router.clone();
            tasks.push(tokio::spawn(async move {
                let mut request = Request::post("/api/v1/auth/login")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({ "login": format!("nobody{i}"), "password": "wrong password!" })
                            .to_string(),
                    ))
                    .expect("request");
                let addr: SocketAddr = format!("10.6.{}.{}:1", i / 200, i % 200 + 1)
                    .parse()
                    .expect("addr");
                request.extensions_mut().insert(ConnectInfo(addr));
                router.oneshot(request).await.expect("answer").status()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task"));
        }
        statuses
    });
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        server.state.hashing().peak(),
        2,
        "never more than two argon2 hashes at once"
    );

    // When the wait runs out, a login is told to come back instead of queueing forever.
    let server = TestServer::start_with(Config {
        hash_concurrency: 1,
        hash_wait: Duration::ZERO,
        ..Config::default()
    })?;
    let _hold = server
        .rt
        .block_on(server.state.hashing().permit())
        .expect("permit");
    let (status, body, retry) = login(&server, "10.6.9.9", "admin", ADMIN_PASSWORD)?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("busy"))
    );
    assert_eq!(retry, Some(1));
    Ok(())
}

#[test]
fn every_answer_carries_the_security_headers() -> Result<()> {
    let server = TestServer::start()?;
    for path in [
        "/login",
        "/api/v1/auth/me",
        "/healthz",
        "/no/such/page",
        "/assets/dashboard.css",
    ] {
        let response = server.rt.block_on(
            server
                .router
                .clone()
                .oneshot(Request::get(path).body(Body::empty())?),
        )?;
        let h = response.headers();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{path}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str()?;
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(
            h.get(header::STRICT_TRANSPORT_SECURITY).is_none(),
            "no HSTS over plain HTTP"
        );
    }
    let server = TestServer::start_with(Config {
        tls: true,
        ..Config::default()
    })?;
    let response = server.rt.block_on(
        server
            .router
            .clone()
            .oneshot(Request::get("/login").body(Body::empty())?),
    )?;
    assert!(
        response.headers()[header::STRICT_TRANSPORT_SECURITY]
            .to_str()?
            .starts_with("max-age=")
    );
    Ok(())
}

#[test]
fn metrics_answer_only_the_operator() -> Result<()> {
    let server = TestServer::start()?;
    let (status, _) = api(&server, "GET", "/metrics", None, None)?;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no token configured: not on the main address"
    );

    let server = TestServer::start_with(Config {
        metrics_token: Some("scrape-me-please".into()),
        ..Config::default()
    })?;
    let (status, body) = api(&server, "GET", "/metrics", None, None)?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, _) = api(&server, "GET", "/metrics", None, Some("guess"))?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.call(
        Request::get("/metrics")
            .header(header::AUTHORIZATION, "Bearer scrape-me-please")
            .body(Body::empty())?,
    )?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[test]
fn logout_accepts_the_bearer_scheme_in_any_case() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (status, _) = server.call(
        Request::post("/api/v1/auth/logout")
            .header(header::AUTHORIZATION, format!("bearer {token}"))
            .body(Body::empty())?,
    )?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(&server, "GET", "/api/v1/auth/me", None, Some(&token))?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[test]
fn an_oversized_admin_body_is_answered_413() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let big = "x".repeat(200 * 1024);
    let (status, body) = api(
        &server,
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({ "login": "big", "display_name": big, "roles": ["dispatcher"] })),
        Some(&token),
    )?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    Ok(())
}

/// POST a register file to the import endpoint.
fn import(
    server: &TestServer,
    token: &str,
    community: &str,
    csv: &[u8],
) -> Result<(StatusCode, Value)> {
    let path = format!(
        "/api/v1/admin/register/import?community={}&name=%E6%B5%8B%E8%AF%95",
        community.replace(' ', "%20")
    );
    let (status, bytes) = server.call(
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(csv.to_vec()))?,
    )?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[test]
fn a_register_whose_ids_documents_cannot_carry_is_refused_with_its_place() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let before = server.storage().documents()?.len();
    let long = "c".repeat(100);
    for community in ["tpy x", long.as_str()] {
        let (status, body) = import(
            &server,
            &token,
            community,
            doorstep_server::demo::SAMPLE_CSV,
        )?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{body}"
        );
    }
    // A unit code whose building part is too long for a document id: refused at its line.
    let csv = String::from_utf8(doorstep_server::demo::SAMPLE_CSV.to_vec())?;
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let building = "9".repeat(20);
    lines[3] = lines[3].replacen("1-1-", &format!("{building}-1-"), 1);
    let (status, body) = import(&server, &token, "tpz", lines.join("\n").as_bytes())?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 4") && message.contains("unit_code"),
        "{message}"
    );
    assert_eq!(
        server.storage().documents()?.len(),
        before,
        "nothing stored"
    );
    Ok(())
}

#[test]
fn a_stored_bad_id_never_makes_a_listing_fail() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (status, body) = import(&server, &token, "tpz", doorstep_server::demo::SAMPLE_CSV)?;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What an earlier release let through: a community id with a space, in documents and in
    // every projection.
    let conn = rusqlite::Connection::open(server.dir.path().join("server.sqlite"))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         UPDATE document_chunks SET doc_id = replace(doc_id, '/tpz', '/tpz x') WHERE doc_id LIKE '%/tpz%';
         UPDATE documents SET id = replace(id, '/tpz', '/tpz x'), community = 'tpz x' WHERE community = 'tpz';",
    )?;
    let tables: Vec<String> = conn
        .prepare("SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND m.name LIKE 'p\\_%' ESCAPE '\\'
                  AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'community')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(!tables.is_empty());
    for table in &tables {
        conn.execute(
            &format!("UPDATE {table} SET community = 'tpz x' WHERE community = 'tpz'"),
            [],
        )?;
    }
    drop(conn);
    server.state.docs().evict_idle(Duration::ZERO);

    let campaign = doorstep_server::demo::CAMPAIGN;
    for path in [
        "/api/v1/admin/buildings".to_string(),
        "/api/v1/admin/conflicts/households".to_string(),
        format!("/api/v1/admin/campaigns/{campaign}/conflicts"),
        "/api/v1/admin/campaigns".to_string(),
        format!("/api/v1/admin/campaigns/{campaign}/tally"),
        "/api/v1/admin/devices".to_string(),
        "/api/v1/admin/audit".to_string(),
    ] {
        let (status, body) = api(&server, "GET", &path, None, Some(&token))?;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    // The sample community's phones still sync, and projections rebuild.
    let phone = Phone::enroll(&server, &server.code("2"))?;
    phone.sync()?;
    server.state.db().rebuild_projections()?;
    let (status, _) = api(
        &server,
        "GET",
        "/api/v1/admin/buildings",
        None,
        Some(&token),
    )?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

/// Send `body` to `path` over a real socket the way a naive client does (no `Expect:
/// 100-continue`: write everything, then read), and return the status line and the body.
fn over_tcp(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(String, Value)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // Every byte is written before anything is read: before the fix the server answered after
    // 64 KiB or 16 MiB and reset the connection, and this write failed.
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or_default().to_string();
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    Ok((status, json))
}

#[test]
fn a_client_that_sends_an_oversized_body_without_waiting_reads_the_413() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("3"))?;
    let listener = server
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = server.rt.spawn(doorstep_server::serve(
        server.state.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let limit = server.state.config().sync_body_limit;
    let (status, body) = over_tcp(
        addr,
        doorstep_core::protocol::SYNC_PATH,
        doorstep_core::protocol::CONTENT_TYPE,
        Some(&phone.enrollment.device_token),
        &vec![0x42; limit + 4 * 1024 * 1024],
    )?;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(body["error"]["code"], "body_too_large");
    let (status, body) = over_tcp(
        addr,
        "/api/v1/auth/login",
        "application/json",
        None,
        &vec![b' '; 20 * 1024 * 1024],
    )?;
    assert!(status.contains(" 413 "), "{status}");
    assert_eq!(body["error"]["code"], "body_too_large");
    let _ = stop.send(());
    server.rt.block_on(serving)??;
    Ok(())
}
