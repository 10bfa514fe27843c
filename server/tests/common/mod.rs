//! Test harness shared by the server's integration tests: a demo server on a temporary
//! database, an in-process transport that drives the real router with `oneshot`, and phones
//! (a core `Replica` over an in-memory store) that enroll and sync through it.

#![allow(dead_code)]

pub mod fleet;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use doorstep_core::doc::DocId;
use doorstep_core::replica::Replica;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, Enrollment, SyncReport, Transport, TransportError};
use doorstep_server::demo::{self, DemoInfo};
use doorstep_server::storage::{SqliteStorage, Storage};
use doorstep_server::{AppState, Config};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "server-tests-passphrase";

/// A server with the demo community on a temporary database.
pub struct TestServer {
    pub state: AppState,
    /// The server's clock: the system's, moved ahead when a test needs "later".
    pub clock: Arc<doorstep_core::clock::OffsetClock>,
    pub router: Router,
    pub rt: Arc<tokio::runtime::Runtime>,
    pub info: DemoInfo,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Result<TestServer> {
        Self::start_with(Config::default())
    }

    pub fn start_with(config: Config) -> Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let (state, clock) = Self::state_on(&dir, config)?;
        let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?;
        Self::serving(state, clock, info, dir)
    }

    /// A server on a copy of the database file `fixture` and its WAL (never changed
    /// themselves), as a server started on that file would be: opening it migrates it, and
    /// the stored documents are lifted to the current schema.
    pub fn open_copy(fixture: &std::path::Path) -> Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("server.sqlite");
        std::fs::copy(fixture, &db).with_context(|| format!("copying {}", fixture.display()))?;
        // A database a killed process left has its last transactions in the WAL beside it.
        let wal = std::path::PathBuf::from(format!("{}-wal", fixture.display()));
        if wal.exists() {
            std::fs::copy(&wal, dir.path().join("server.sqlite-wal"))?;
        }
        let (state, clock) = Self::state_on(&dir, Config::default())?;
        doorstep_server::upgrade::upgrade_documents(&state).map_err(|e| anyhow!("{e}"))?;
        let info = DemoInfo {
            admin_login: demo::ADMIN_LOGIN.into(),
            generated_admin_password: None,
            officer_login: demo::OFFICER_LOGIN.into(),
            generated_officer_password: None,
            heads: Vec::new(),
            campaign: demo::CAMPAIGN.into(),
        };
        Self::serving(state, clock, info, dir)
    }

    /// A server with the demo community on a new PostgreSQL database of the test cluster.
    pub fn start_postgres() -> Result<TestServer> {
        Self::start_postgres_with(Config::default())
    }

    pub fn start_postgres_with(config: Config) -> Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let clock = doorstep_core::clock::OffsetClock::new();
        let storage = doorstep_server::storage::PgStorage::open(
            &fresh_postgres()?,
            doorstep_server::storage::postgres::PoolOptions::default(),
        )?
        .with_clock(clock.clone());
        let state = AppState::new(storage, config);
        let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?;
        Self::serving(state, clock, info, dir)
    }

    /// The server's state on `dir/server.sqlite`, with a clock tests can move.
    fn state_on(
        dir: &tempfile::TempDir,
        config: Config,
    ) -> Result<(AppState, Arc<doorstep_core::clock::OffsetClock>)> {
        let clock = doorstep_core::clock::OffsetClock::new();
        let storage =
            SqliteStorage::open(dir.path().join("server.sqlite"))?.with_clock(clock.clone());
        Ok((AppState::new(storage, config), clock))
    }

    /// The router over `state` and a runtime to drive it.
    fn serving(
        state: AppState,
        clock: Arc<doorstep_core::clock::OffsetClock>,
        info: DemoInfo,
        dir: tempfile::TempDir,
    ) -> Result<TestServer> {
        let router = doorstep_server::app(state.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(TestServer {
            state,
            clock,
            router,
            rt: Arc::new(rt),
            info,
            dir,
        })
    }

    pub fn storage(&self) -> &dyn Storage {
        self.state.storage()
    }

    /// The enrollment code printed for building `building`'s head.
    pub fn code(&self, building: &str) -> String {
        self.info
            .heads
            .iter()
            .find(|(_, b, _)| b == building)
            .map(|(_, _, c)| c.clone())
            .unwrap_or_default()
    }

    pub fn transport(&self) -> Arc<InProcess> {
        Arc::new(InProcess {
            router: self.router.clone(),
            rt: self.rt.clone(),
            lose_next_reply: AtomicBool::new(false),
            last_request: Mutex::new(None),
            last_reply: Mutex::new(None),
            requests: AtomicUsize::new(0),
        })
    }

    /// Send any request through the router; returns status and body bytes.
    pub fn call(&self, request: Request<Body>) -> Result<(StatusCode, Vec<u8>)> {
        let router = self.router.clone();
        self.rt.block_on(async move {
            let response = router.oneshot(request).await?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            Ok((status, bytes.to_vec()))
        })
    }

    /// POST JSON to `path` with an optional bearer token.
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> Result<(StatusCode, serde_json::Value)> {
        let mut builder = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let (status, bytes) = self.call(builder.body(Body::from(serde_json::to_vec(body)?))?)?;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }

    /// A dashboard session token for the demo admin.
    pub fn admin_token(&self) -> Result<String> {
        let (status, json) = self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({ "login": "admin", "password": ADMIN_PASSWORD }),
            None,
        )?;
        anyhow::ensure!(status == StatusCode::OK, "login failed: {status} {json}");
        json["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no token"))
    }

    /// A server-side document's heads (sorted), or empty when it does not exist.
    pub fn heads(&self, id: &DocId) -> Result<Vec<automerge::ChangeHash>> {
        Ok(self
            .storage()
            .document_meta(id)?
            .map(|m| m.heads)
            .unwrap_or_default())
    }

    /// Hydrate a server-side document.
    pub fn read<T: autosurgeon::Hydrate>(&self, id: &DocId) -> Result<T> {
        self.state
            .docs()
            .hydrate::<T>(id)
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("no document {id}"))
    }
}

/// A transport that drives the router in-process; it can lose the next reply (after the
/// server committed) and remembers the last request body.
pub struct InProcess {
    router: Router,
    rt: Arc<tokio::runtime::Runtime>,
    pub lose_next_reply: AtomicBool,
    pub last_request: Mutex<Option<(Vec<u8>, String)>>,
    pub last_reply: Mutex<Option<Vec<u8>>>,
    pub requests: AtomicUsize,
}

impl InProcess {
    fn send(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<Vec<u8>, TransportError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut builder = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let request = builder
            .body(Body::from(body))
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let router = self.router.clone();
        let (status, bytes) = self
            .rt
            .block_on(async move {
                let response = router.oneshot(request).await?;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                Ok::<_, anyhow::Error>((status, bytes.to_vec()))
            })
            .map_err(|e| TransportError::Network(e.to_string()))?;
        if let Ok(mut last) = self.last_reply.lock() {
            *last = Some(bytes.clone());
        }
        if self.lose_next_reply.swap(false, Ordering::SeqCst) {
            return Err(TransportError::Network("the reply was lost".into()));
        }
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(sync::http_error(status.as_u16(), &bytes))
        }
    }
}

impl Transport for InProcess {
    fn post(&self, body: Vec<u8>, token: &str) -> Result<Vec<u8>, TransportError> {
        if let Ok(mut last) = self.last_request.lock() {
            *last = Some((body.clone(), token.to_string()));
        }
        self.send(
            doorstep_core::protocol::SYNC_PATH,
            doorstep_core::protocol::CONTENT_TYPE,
            body,
            Some(token),
        )
    }

    fn enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        self.send(
            doorstep_core::protocol::ENROLL_PATH,
            "application/json",
            body,
            None,
        )
    }
}

/// A building head's phone: a replica over an in-memory store, enrolled with the server.
pub struct Phone {
    pub replica: Replica,
    pub transport: Arc<InProcess>,
    pub enrollment: Enrollment,
}

impl Phone {
    /// Enroll a fresh phone with `code` and sync it once.
    pub fn enroll(server: &TestServer, code: &str) -> Result<Phone> {
        let transport = server.transport();
        let enrollment = sync::enroll_with(transport.as_ref(), code, "test phone", "0.1.0-test")?;
        let mut store = Store::open_in_memory()?;
        sync::save_enrollment(&mut store, "http://in-process", &enrollment)?;
        let replica = Replica::from_store(store);
        let identity = sync::identity_of(enrollment.device_id, &enrollment.account)
            .context("the account has no building")?;
        replica.set_identity(&identity)?;
        let phone = Phone {
            replica,
            transport,
            enrollment,
        };
        phone.sync()?;
        Ok(phone)
    }

    pub fn sync(&self) -> Result<SyncReport> {
        Ok(self
            .replica
            .sync(self.transport.as_ref(), env!("CARGO_PKG_VERSION"))?)
    }

    /// Heads of a document on the phone (sorted), empty when not held.
    pub fn heads(&self, id: &DocId) -> Result<Vec<automerge::ChangeHash>> {
        let device = self.enrollment.device_id;
        Ok(self.replica.with_store(|store| {
            let mut heads = match store.load_document(id, &device)? {
                Some(mut doc) => doc.heads(),
                None => Vec::new(),
            };
            heads.sort();
            Ok(heads)
        })?)
    }

    /// Hydrate a document held by the phone.
    pub fn read<T: autosurgeon::Hydrate>(&self, id: &DocId) -> Result<T> {
        let device = self.enrollment.device_id;
        Ok(self.replica.with_store(|store| {
            store
                .load_document(id, &device)?
                .ok_or_else(|| doorstep_core::Error::NotFound(id.to_string()))?
                .read::<T>()
        })?)
    }

    pub fn held(&self) -> Result<Vec<DocId>> {
        Ok(self.replica.with_store(|store| store.document_ids())?)
    }
}

pub fn field(building: &str) -> DocId {
    DocId::Field {
        campaign: demo::CAMPAIGN.into(),
        building: building.into(),
    }
}

pub fn building_doc(building: &str) -> DocId {
    DocId::Building {
        community: demo::COMMUNITY.into(),
        building: building.into(),
    }
}

pub fn orders(building: &str) -> DocId {
    DocId::Orders {
        community: demo::COMMUNITY.into(),
        building: building.into(),
    }
}

/// The first units of a building, from the server's building document.
pub fn units_of(server: &TestServer, building: &str) -> Result<Vec<String>> {
    let doc: doorstep_core::doc::BuildingDoc = server.read(&building_doc(building))?;
    Ok(doc.units.keys().cloned().collect())
}

/// Send `method path` with an optional JSON body and bearer token; returns status and JSON.
pub fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> Result<(StatusCode, serde_json::Value)> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = match body {
        Some(b) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(b)?))?,
        None => builder.body(Body::empty())?,
    };
    let (status, bytes) = server.call(request)?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// Like [`api`], but fails unless the status is 2xx.
pub fn api_ok(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    token: &str,
) -> Result<serde_json::Value> {
    let (status, json) = api(server, method, path, body, Some(token))?;
    anyhow::ensure!(status.is_success(), "{method} {path}: {status} {json}");
    Ok(json)
}

/// A dashboard session for the demo counting officer.
pub fn officer_token(server: &TestServer) -> Result<String> {
    let password = server
        .info
        .generated_officer_password
        .clone()
        .context("the demo created the officer")?;
    let (status, json) = server.post_json(
        "/api/v1/auth/login",
        &serde_json::json!({ "login": demo::OFFICER_LOGIN, "password": password }),
        None,
    )?;
    anyhow::ensure!(status == StatusCode::OK, "officer login: {status} {json}");
    json["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no token"))
}

/// A ballot for the demo election voting yes for the candidates numbered in `yes`.
pub fn election_answers(
    yes: &[u32],
) -> std::collections::BTreeMap<String, doorstep_core::model::Answer> {
    use doorstep_core::model::{Answer, Choice};
    let candidates = (1..=9)
        .map(|i| {
            let choice = if yes.contains(&i) {
                Choice::Yes
            } else {
                Choice::No
            };
            (format!("cand-{i}"), choice)
        })
        .collect();
    std::collections::BTreeMap::from([(
        "q1".to_string(),
        Answer {
            candidates,
            ..Answer::default()
        },
    )])
}

/// Every projection row.
pub fn projections(
    server: &TestServer,
) -> Result<std::collections::BTreeMap<String, Vec<Vec<String>>>> {
    Ok(server.state.db().projection_rows()?)
}

/// The tally of a campaign computed directly from the server's documents.
pub fn tally_from_documents(
    server: &TestServer,
    campaign: &str,
) -> Result<doorstep_core::tally::Tally> {
    use doorstep_core::doc::{DocKind, FieldDoc};
    let definition = server
        .state
        .docs()
        .campaign(campaign)
        .map_err(|e| anyhow!("{e}"))?
        .context("campaign")?;
    let mut slices = Vec::new();
    let (mut ballots, mut deliveries, mut adjudications) = (Vec::new(), Vec::new(), Vec::new());
    for meta in server.storage().documents()? {
        if meta.id.kind() == DocKind::Field && meta.id.campaign() == Some(campaign) {
            let field: FieldDoc = server.read(&meta.id)?;
            ballots.extend(field.ballots.values().cloned());
            deliveries.extend(field.deliveries.values().cloned());
            adjudications.extend(field.adjudications.values().cloned());
            slices.push(field.roll);
        }
    }
    let roll = doorstep_core::roll::Roll::from_slices(slices.iter())?;
    Ok(doorstep_core::tally::tally(
        &roll,
        &definition,
        &ballots,
        &deliveries,
        &adjudications,
    ))
}

/// The tally as the admin API serves it (from the projection tables).
pub fn tally_from_api(
    server: &TestServer,
    campaign: &str,
    token: &str,
) -> Result<doorstep_core::tally::Tally> {
    let json = api_ok(
        server,
        "GET",
        &format!("/api/v1/admin/campaigns/{campaign}/tally"),
        None,
        token,
    )?;
    Ok(serde_json::from_value(json)?)
}

/// A second account assigned to `building` (a deputy), with its phone enrolled through the API.
pub fn deputy(server: &TestServer, token: &str, building: &str) -> Result<Phone> {
    let account = api_ok(
        server,
        "POST",
        "/api/v1/admin/accounts",
        Some(
            &serde_json::json!({ "login": format!("deputy-{building}"), "display_name": "副楼长",
                      "roles": ["building_head"] }),
        ),
        token,
    )?;
    let id = account["id"].as_str().context("account id")?.to_string();
    api_ok(
        server,
        "POST",
        "/api/v1/admin/assignments",
        Some(
            &serde_json::json!({ "account_id": id, "community": demo::COMMUNITY, "building": building }),
        ),
        token,
    )?;
    let code = api_ok(
        server,
        "POST",
        &format!("/api/v1/admin/accounts/{id}/enrollment-codes"),
        None,
        token,
    )?;
    Phone::enroll(server, code["code"].as_str().context("code")?)
}

/// A new, empty database on the test PostgreSQL cluster (`scripts/postgres-test.sh`, started
/// by the README's test command), named uniquely; its address.
pub fn fresh_postgres() -> Result<String> {
    let admin = std::env::var("DOORSTEP_TEST_POSTGRES").context(
        "DOORSTEP_TEST_POSTGRES is not set: the PostgreSQL tests need the cluster that \
         scripts/test-all.sh starts (or run `eval \"$(scripts/postgres-test.sh start)\"` first)",
    )?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .with_context(|| format!("connecting to the test cluster at {admin}"))?;
    client.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let (base, _) = admin
        .rsplit_once('/')
        .context("DOORSTEP_TEST_POSTGRES ends with /DATABASE")?;
    Ok(format!("{base}/{name}"))
}
