//! HTTPS end to end (issue 11): `serve_tls` with a certificate, a phone that enrolls and syncs
//! over it trusting that certificate, HSTS on the answers, and the phone refusing plain
//! `http://` to anything but this device.

mod common;

use anyhow::{Context as _, Result};
use common::ADMIN_PASSWORD;
use doorstep_core::model::DoorOutcome;
use doorstep_core::replica::Replica;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, HttpTransport, Transport as _, TransportError};
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config, demo};

const CERT: &[u8] = include_bytes!("fixtures/tls/cert.pem");
const KEY: &[u8] = include_bytes!("fixtures/tls/key.pem");

#[test]
fn a_phone_enrolls_and_syncs_over_https_and_answers_carry_hsts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = SqliteStorage::open(dir.path().join("tls.sqlite"))?;
    let state = AppState::new(
        storage,
        Config {
            tls: true,
            ..Config::default()
        },
    );
    let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("https://localhost:{}", listener.local_addr()?.port());
    let tls = doorstep_server::tls::server_config(CERT, KEY)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let _guard = rt.enter();
    let server = rt.spawn(doorstep_server::serve_tls(
        state.clone(),
        listener,
        tls,
        async {
            let _ = stopped.await;
        },
    ));

    // Without the office's certificate the phone does not trust the server.
    let code = info
        .heads
        .iter()
        .find(|(_, b, _)| b == "4")
        .map(|(_, _, c)| c.clone())
        .context("code")?;
    let untrusting = HttpTransport::new(&url);
    let refused = untrusting
        .enroll(b"{}".to_vec())
        .expect_err("unknown certificate");
    assert!(matches!(refused, TransportError::Network(_)), "{refused}");

    let transport = HttpTransport::new(&url).with_root_certificates(CERT)?;
    let enrollment = sync::enroll_with(&transport, &code, "tls-phone", "0.1.0-test")?;
    let mut store = Store::open_in_memory()?;
    sync::save_enrollment(&mut store, &url, &enrollment)?;
    let replica = Replica::from_store(store);
    let identity = sync::identity_of(enrollment.device_id, &enrollment.account)
        .context("the account has no building")?;
    replica.set_identity(&identity)?;
    let report = replica.sync(&transport, "0.1.0-test")?;
    assert!(report.complete);
    let units = replica.units("4", Some(demo::CAMPAIGN))?;
    replica.record_visit(
        demo::CAMPAIGN,
        &units[0].unit.code,
        DoorOutcome::NotHome,
        "",
    )?;
    let report = replica.sync(&transport, "0.1.0-test")?;
    assert!(report.complete);
    assert_eq!(replica.pending_changes()?, 0, "delivered over HTTPS");

    // HSTS on an answer read over TLS.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                    ureq::tls::Certificate::from_pem(CERT)?,
                ]))
                .build(),
        )
        .build()
        .into();
    let response = agent.get(&format!("{url}/healthz")).call()?;
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .context("HSTS")?
        .to_str()?;
    assert!(hsts.starts_with("max-age="), "{hsts}");

    stop.send(()).ok();
    rt.block_on(server)??;
    Ok(())
}

#[test]
fn the_phone_refuses_plain_http_except_to_this_device() -> Result<()> {
    for url in [
        "http://10.0.0.1:8080",
        "http://doorstep.example.org",
        "HTTP://192.168.1.5",
        "ftp://x",
    ] {
        let err = HttpTransport::new(url)
            .enroll(b"{}".to_vec())
            .expect_err("refused before sending");
        assert!(
            matches!(&err, TransportError::Refused { code, .. } if code == "insecure_transport"),
            "{url}: {err}"
        );
        // The app sees the stable code, not a network error to retry.
        let app_err = doorstep_core::Error::from(err);
        assert_eq!(app_err.code(), "insecure_transport");
    }
    for url in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://10.0.0.1:9",
    ] {
        assert!(sync::is_secure_or_local(url), "{url}");
    }
    // An app that explicitly allows plain HTTP (a debug build on a LAN) gets to try.
    let err = HttpTransport::new("http://doorstep.invalid:9")
        .allow_plain_http()
        .enroll(b"{}".to_vec());
    assert!(matches!(err, Err(TransportError::Network(_))), "{err:?}");
    Ok(())
}
