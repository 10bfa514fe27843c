//! Phones and server processes for the multi-process tests on PostgreSQL: the demo
//! community on a fresh database, `doorstep-server serve` children, phones that enroll, record
//! visits and sync through one process or another, and the check that they all agree.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use doorstep_core::doc::{DocId, FieldDoc};
use doorstep_core::model::DoorOutcome;
use doorstep_core::replica::Replica;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, HttpTransport};
use doorstep_server::storage::PgStorage;
use doorstep_server::storage::postgres::PoolOptions;
use doorstep_server::{AppState, Config, auth, demo};

use super::{ADMIN_PASSWORD, fresh_postgres};

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `doorstep-server serve` on `db` (a SQLite file or a PostgreSQL address), once `/healthz`
/// answers.
pub fn start(db: impl AsRef<std::ffi::OsStr>, port: u16) -> Result<Child> {
    let child = Command::new(env!("CARGO_BIN_EXE_doorstep-server"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(db)
        .args(["--db-pool", "4"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            if reply.starts_with("HTTP/1.1 200") {
                return Ok(child);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One phone: a device of a building head's account.
pub struct Phone {
    pub replica: Replica,
    pub building: String,
    /// Visits recorded and acknowledged by a complete sync.
    pub acknowledged: Mutex<BTreeSet<String>>,
    /// Visits recorded, acknowledged or not.
    pub recorded: Mutex<Vec<String>>,
}

/// The demo community on a fresh PostgreSQL database, and `phones` enrollment codes spread
/// over its building heads (several devices per head: their documents are shared).
pub fn community(phones: usize) -> Result<(String, Vec<(String, String)>)> {
    let url = fresh_postgres()?;
    let state = AppState::new(
        PgStorage::open(&url, PoolOptions::default())?,
        Config::default(),
    );
    let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?;
    let accounts: Vec<(String, String)> = info
        .heads
        .iter()
        .map(|(login, building, _)| {
            let account = state
                .storage()
                .account_by_login(login)?
                .context("a head's account")?;
            Ok((account.id, building.clone()))
        })
        .collect::<Result<_>>()?;
    let mut codes = Vec::new();
    for i in 0..phones {
        let (account, building) = &accounts[i % accounts.len()];
        let (code, _) = auth::issue_enrollment_code(
            state.storage(),
            account,
            Config::default().enrollment_ttl_ms,
            "test",
        )?;
        codes.push((building.clone(), code));
    }
    Ok((url, codes))
}

pub fn enroll(url: &str, building: &str, code: &str) -> Result<Phone> {
    let enrollment = sync::enroll(url, code)?;
    let mut store = Store::open_in_memory()?;
    sync::save_enrollment(&mut store, url, &enrollment)?;
    let replica = Replica::from_store(store);
    let identity =
        sync::identity_of(enrollment.device_id, &enrollment.account).context("identity")?;
    replica.set_identity(&identity)?;
    Ok(Phone {
        replica,
        building: building.to_string(),
        acknowledged: Mutex::new(BTreeSet::new()),
        recorded: Mutex::new(Vec::new()),
    })
}

/// Sync until complete, through `transports` in turn from `first` (a refused or failed
/// request — 503 while another process holds the document, a dead process — moves on to the
/// next); how many attempts it took.
pub fn sync_through(phone: &Phone, transports: &[HttpTransport], first: usize) -> Result<usize> {
    let mut last = None;
    for attempt in 0..60 {
        let transport = &transports[(first + attempt) % transports.len()];
        match phone.replica.with_store(|s| sync::sync(s, transport)) {
            Ok(report) if report.complete => {
                anyhow::ensure!(report.rejected.is_empty(), "refused: {report:?}");
                return Ok(attempt + 1);
            }
            Ok(report) => last = Some(anyhow!("incomplete: {report:?}")),
            Err(e) => last = Some(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no attempt")))
}

/// Run `work` for every phone on a few threads (phones are many, cores two).
pub fn on_phones(
    phones: &[Arc<Phone>],
    threads: usize,
    work: impl Fn(usize, &Phone) -> Result<()> + Send + Sync + 'static,
) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let next = next.clone();
            let work = work.clone();
            let phones = phones.to_vec();
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(phone) = phones.get(i) else {
                        return Ok(());
                    };
                    work(i, phone)?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a phone thread panicked"))??;
    }
    Ok(())
}

pub fn record(phone: &Phone, round: usize) -> Result<()> {
    let units: Vec<String> = phone
        .replica
        .units(&phone.building, Some(demo::CAMPAIGN))?
        .into_iter()
        .map(|u| u.unit.code)
        .collect();
    let unit = &units[round % units.len()];
    let id = phone
        .replica
        .record_visit(demo::CAMPAIGN, unit, DoorOutcome::ComeBack, "")?;
    phone
        .recorded
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .push(id);
    Ok(())
}

pub fn acknowledge(phone: &Phone) -> Result<()> {
    let recorded = phone
        .recorded
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .clone();
    phone
        .acknowledged
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .extend(recorded);
    Ok(())
}

pub fn field_of(building: &str) -> DocId {
    DocId::Field {
        campaign: demo::CAMPAIGN.into(),
        building: building.into(),
    }
}

/// Every phone holds exactly the server's heads of its field document, every acknowledged
/// visit is stored once, and the projections equal a rebuild.
pub fn assert_one_server(url: &str, phones: &[Arc<Phone>]) -> Result<()> {
    let check = AppState::new(
        PgStorage::open(url, PoolOptions::default())?,
        Config::default(),
    );
    let mut by_building: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for phone in phones {
        let id = field_of(&phone.building);
        let on_server = check.storage().document_meta(&id)?.context("field")?.heads;
        let device = phone.replica.identity()?.context("identity")?.device;
        let mut on_phone = phone
            .replica
            .with_store(|s| Ok(s.load_document(&id, &device)?.map(|mut d| d.heads())))?
            .context("held")?;
        on_phone.sort();
        assert_eq!(
            on_phone, on_server,
            "building {}: phone and server differ",
            phone.building
        );
        by_building.entry(&phone.building).or_default().extend(
            phone
                .acknowledged
                .lock()
                .map_err(|_| anyhow!("poisoned"))?
                .iter()
                .cloned(),
        );
    }
    let mut stored_visits = 0;
    for (building, acknowledged) in &by_building {
        let field: FieldDoc = check
            .docs()
            .hydrate(&field_of(building))
            .map_err(|e| anyhow!("{e}"))?
            .context("field")?;
        for visit in acknowledged {
            assert!(
                field.visits.contains_key(visit),
                "building {building}: acknowledged visit {visit} lost"
            );
        }
        stored_visits += field.visits.len();
    }
    let projected = check.db().projection_rows()?;
    let visits = projected.get("p_visits").map(Vec::len).unwrap_or(0);
    assert_eq!(
        visits, stored_visits,
        "one visit row per visit in the documents, none twice"
    );
    check.db().rebuild_projections()?;
    assert_eq!(
        check.db().projection_rows()?,
        projected,
        "the projections written by two processes equal a rebuild"
    );
    check.storage().verify_audit_chain()?;
    Ok(())
}

/// `n` server processes on `db`: the children, their ports and their addresses.
pub fn processes(db: &str, n: usize) -> Result<(Vec<Child>, Vec<u16>, Vec<String>)> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_>>()?;
    let children = ports
        .iter()
        .map(|&port| start(db, port))
        .collect::<Result<_>>()?;
    let urls = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    Ok((children, ports, urls))
}

/// Enroll a phone with each code, phone `i` through `urls[i mod n]`.
pub fn enroll_through(urls: &[String], codes: &[(String, String)]) -> Result<Vec<Arc<Phone>>> {
    codes
        .iter()
        .enumerate()
        .map(|(i, (building, code))| Ok(Arc::new(enroll(&urls[i % urls.len()], building, code)?)))
        .collect()
}

/// Every phone syncs until complete, phone `i` starting with `urls[i mod n]`.
pub fn sync_all(phones: &[Arc<Phone>], urls: &[String], threads: usize) -> Result<()> {
    let urls = urls.to_vec();
    on_phones(phones, threads, move |i, phone| {
        let transports: Vec<HttpTransport> = urls.iter().map(|u| HttpTransport::new(u)).collect();
        sync_through(phone, &transports, i % transports.len()).map(|_| ())
    })
}

/// Stop every process (SIGKILL).
pub fn stop(children: &mut [Child]) -> Result<()> {
    for child in children {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}
