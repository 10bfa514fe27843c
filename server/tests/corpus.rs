//! The bad-input corpus: every file under `tests/corpus/` is sent to its endpoint as
//! `cases.json` says, and must get the expected status with a JSON error `code` (or, for inputs
//! that are well formed but name the wrong documents, the expected per-document status), with no
//! panic and nothing changed. A few inputs are made at run time: oversized bodies, expired and
//! used enrollment codes.

mod common;

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use doorstep_core::protocol::{self, ErrorBody};
use doorstep_server::auth;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    path: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    body: Option<String>,
    auth: String,
    #[serde(default)]
    content_type: Option<String>,
    status: u16,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    doc_status: Option<String>,
}

/// Everything a bad request must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    documents: Vec<(String, Vec<automerge::ChangeHash>)>,
    audit: usize,
    quarantine: usize,
    devices: Vec<(uuid::Uuid, i64, Option<i64>)>,
    codes: Vec<(String, Option<i64>)>,
}

fn fingerprint(server: &TestServer) -> Result<Fingerprint> {
    let storage = server.storage();
    Ok(Fingerprint {
        documents: storage
            .documents()?
            .into_iter()
            .map(|m| (m.id.to_string(), m.heads))
            .collect(),
        // A refused login is itself audited (`auth.login_failed`): everything else counts.
        audit: storage
            .audit_events(0, 1_000_000)?
            .iter()
            .filter(|e| e.kind != "auth.login_failed")
            .count(),
        quarantine: storage.quarantine(1_000_000)?.len(),
        devices: storage
            .devices()?
            .into_iter()
            .map(|d| (d.id, d.syncs, d.revoked_at))
            .collect(),
        codes: storage
            .enrollment_codes(None)?
            .into_iter()
            .map(|c| (c.handle, c.used_at))
            .collect(),
    })
}

struct Tokens {
    device: String,
    revoked: String,
    admin: String,
}

fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<(StatusCode, Vec<u8>)> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    if let Some(t) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    server.call(builder.body(Body::from(body))?)
}

fn error_code(bytes: &[u8]) -> Result<String> {
    let body: ErrorBody = serde_json::from_slice(bytes)
        .with_context(|| format!("not a JSON error: {:?}", String::from_utf8_lossy(bytes)))?;
    anyhow::ensure!(!body.error.message.is_empty(), "an empty error message");
    Ok(body.error.code)
}

fn run_case(server: &TestServer, tokens: &Tokens, case: &Case, dir: &Path) -> Result<()> {
    let body = match &case.body {
        Some(file) => std::fs::read(dir.join(file)).with_context(|| file.clone())?,
        None => Vec::new(),
    };
    let token = match case.auth.as_str() {
        "none" => None,
        "device" => Some(tokens.device.as_str()),
        "revoked" => Some(tokens.revoked.as_str()),
        "admin" => Some(tokens.admin.as_str()),
        "bogus" => Some("dt_0000000000000000000000000000000000000000000000000000000000000000"),
        other => bail!("unknown auth {other}"),
    };
    let method = match case.method.as_deref() {
        None | Some("POST") => Method::POST,
        Some("GET") => Method::GET,
        Some(other) => bail!("unknown method {other}"),
    };
    let before = fingerprint(server)?;
    let (status, bytes) = send(
        server,
        method,
        &case.path,
        case.content_type.as_deref(),
        token,
        body,
    )?;
    anyhow::ensure!(
        status.as_u16() == case.status,
        "expected {}, got {status}: {}",
        case.status,
        String::from_utf8_lossy(&bytes)
    );
    if let Some(code) = &case.code {
        let got = error_code(&bytes)?;
        anyhow::ensure!(&got == code, "expected code {code}, got {got}");
    }
    if let Some(doc_status) = &case.doc_status {
        let response = protocol::decode_response(&bytes)?;
        let statuses: Vec<String> = response
            .docs
            .iter()
            .map(|d| serde_json::to_value(d.status).map(|v| v.as_str().unwrap_or("").to_string()))
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(
            statuses.first() == Some(doc_status),
            "expected per-document status {doc_status}, got {statuses:?}"
        );
        anyhow::ensure!(
            response
                .docs
                .iter()
                .all(|d| d.reason.as_deref().is_some_and(|r| !r.is_empty())),
            "a refused document needs a reason"
        );
    }
    let after = fingerprint(server)?;
    if status.is_client_error() {
        anyhow::ensure!(before == after, "a refused request changed something");
    } else {
        anyhow::ensure!(
            before.documents == after.documents,
            "a refused document changed"
        );
    }
    Ok(())
}

#[test]
fn every_bad_input_in_the_corpus_gets_a_clear_error_and_changes_nothing() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(dir.join("cases.json"))?)?;
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("3"))?;
    let revoked = Phone::enroll(&server, &server.code("5"))?;
    server
        .storage()
        .revoke_device(&revoked.enrollment.device_id, "server")?;
    let tokens = Tokens {
        device: phone.enrollment.device_token.clone(),
        revoked: revoked.enrollment.device_token.clone(),
        admin: server.admin_token()?,
    };
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run_case(&server, &tokens, case, &dir) {
            failures.push(format!("{}: {e:#}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The revoked phone's own sync reports the refusal as a server error, not a crash.
    let err = revoked.sync().expect_err("revoked");
    assert!(err.to_string().contains("device_revoked"), "{err}");
    server.storage().verify_audit_chain()?;
    Ok(())
}

#[test]
fn oversized_bodies_are_refused_before_they_are_read() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("3"))?;
    let before = fingerprint(&server)?;
    let limit = server.state.config().sync_body_limit;
    let (status, bytes) = send(
        &server,
        Method::POST,
        protocol::SYNC_PATH,
        Some(protocol::CONTENT_TYPE),
        Some(&phone.enrollment.device_token),
        vec![0x42; limit + 1],
    )?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&bytes)?, "body_too_large");
    let (status, bytes) = send(
        &server,
        Method::POST,
        "/api/v1/auth/login",
        Some("application/json"),
        None,
        format!("{{\"login\":\"{}\"}}", "a".repeat(200_000)).into_bytes(),
    )?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&bytes)?, "body_too_large");
    assert_eq!(fingerprint(&server)?, before);
    Ok(())
}

#[test]
fn enrollment_codes_are_one_time_and_expire() -> Result<()> {
    let server = TestServer::start()?;
    let code = server.code("2");
    let first = server.post_json("/api/v1/enroll", &serde_json::json!({ "code": code }), None)?;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    let again = server.post_json("/api/v1/enroll", &serde_json::json!({ "code": code }), None)?;
    assert_eq!(again.0, StatusCode::UNAUTHORIZED);
    assert_eq!(again.1["error"]["code"], "invalid_enrollment_code");

    let account = server
        .storage()
        .account_by_login("head-2")?
        .context("head-2")?;
    let (expired, _) = auth::issue_enrollment_code(server.storage(), &account.id, -1, "server")?;
    let before = fingerprint(&server)?;
    let late = server.post_json(
        "/api/v1/enroll",
        &serde_json::json!({ "code": expired.to_lowercase() }),
        None,
    )?;
    assert_eq!(late.0, StatusCode::UNAUTHORIZED);
    assert_eq!(late.1["error"]["code"], "invalid_enrollment_code");
    assert_eq!(fingerprint(&server)?, before);
    Ok(())
}

#[test]
fn gzip_requests_inflate_within_a_cap_and_other_encodings_are_refused() -> Result<()> {
    use std::io::Write as _;
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("3"))?;
    let token = phone.enrollment.device_token.clone();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let valid = std::fs::read(dir.join("sync/valid_empty.cbor"))?;
    let with_encoding = |encoding: &str, body: Vec<u8>| -> Result<(StatusCode, Vec<u8>)> {
        server.call(
            Request::post(protocol::SYNC_PATH)
                .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
                .header(header::CONTENT_ENCODING, encoding)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(body))?,
        )
    };
    let (status, _) = with_encoding("gzip", doorstep_core::sync::gzip(&valid)?)?;
    assert_eq!(status, StatusCode::OK);

    let before = fingerprint(&server)?;
    let (status, bytes) = with_encoding("gzip", valid.clone())?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&bytes)?, "malformed_envelope");
    let (status, bytes) = with_encoding("br", valid)?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&bytes)?, "unsupported_media_type");

    // A small body that inflates beyond four times the sync limit is cut off, not inflated.
    let cap = server.state.config().sync_body_limit * 4;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(cap >> 20) + 1 {
        encoder.write_all(&zeros)?;
    }
    let bomb = encoder.finish()?;
    assert!(bomb.len() < server.state.config().sync_body_limit);
    let (status, bytes) = with_encoding("gzip", bomb)?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&bytes)?, "body_too_large");
    assert_eq!(fingerprint(&server)?, before);
    Ok(())
}
