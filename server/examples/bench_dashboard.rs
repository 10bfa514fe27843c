//! Dashboard benchmarks (numbers, not tests). The server always runs as its own process
//! (`target/release/doorstep-server`); this process builds the databases with the server
//! library beforehand, then plays the browsers and the phones over HTTP on loopback.
//!
//! `cargo run --release -p doorstep-server --example bench_dashboard -- [pages|storm|all] [flags]`
//!
//! - `pages`: time every dashboard page (and, to show where the time goes, the JSON API reads
//!   behind them) for the demo as `doorstep-server demo` ships it, the demo community with a
//!   campaign's field work, and a district of ~100,000 households in ~360 buildings. Writes
//!   `target/bench/dashboard_pages.json`.
//!   Flags: `--requests N` (timed requests per page, default 30; `--api-requests N` for the
//!   API reads, default 10), `--units N` (district size, default 100000), `--buildings N`
//!   (default 360), `--syncs K` (server changes per building field document, i.e. how many
//!   times a head's work reached the server; default 6), `--only demo|demo-field|district`
//!   and `--reuse` (serve the district database left by an earlier run in
//!   `target/bench/dashboard/` instead of building it again).
//! - `storm`: the reconnect storm of `bench_sync` (copies of the sample community, one phone per
//!   building head with a day of offline work), against a server in its own process, in rounds
//!   without and with open dashboards listening on `GET /events`. Writes
//!   `target/bench/dashboard_storm.json`.
//!   Flags: `--phones N` (per round, default 300), `--listeners N` (default 50), `--threads N`
//!   (phone client threads, default 16), `--rounds none,sse,…` (default `none,sse,none,sse`;
//!   `cards` is a round whose listeners open the overview's stream, `/events?cards=1`, which
//!   also carries the overview cards the server pushes, as `dashboard.js` does on 总览).
//!
//! Build first: `cargo build --release -p doorstep-server --examples --bins` (the server binary
//! is found next to this example, or at `DOORSTEP_SERVER_BIN`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, transaction::Transactable};
use doorstep_core::doc::{CampaignDoc, DocId, FieldDoc, SCHEMA_VERSION};
use doorstep_core::import;
use doorstep_core::model::{
    Answer, Ballot, Campaign, CampaignKind, CampaignStatus, Candidate, Choice, Delivery,
    DoorOutcome, Question, QuestionKind, Role, Rules, Scope, Visit, WorkOrder, now_millis,
};
use doorstep_core::replica::Replica;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, HttpTransport, SyncReport, Transport};
use doorstep_server::storage::{
    Account, Assignment, Batch, Communities, DeviceSyncWrite, Grants, NewAccount, NewDevice,
    SqliteStorage,
};
use doorstep_server::{AppState, Config, auth, demo, ops};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-passphrase-1";

// =============================================================================================
// Small tools: a deterministic random source, percentiles, the machine's load.
// =============================================================================================

/// splitmix64: deterministic, so every run builds the same district.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent` / 100 (in tenths of a percent: `permille`).
    fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn out_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::canonicalize(&target)
        .unwrap_or(target)
        .join("bench")
}

fn write_json(name: &str, value: &Value) -> Result<PathBuf> {
    let dir = out_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value)?)?;
    Ok(path)
}

// =============================================================================================
// A minimal HTTP/1.1 client over std (keep-alive, Content-Length or chunked bodies), so the
// timing includes nothing but the request, the server and loopback.
// =============================================================================================

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(r: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed before the status line");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("connection closed inside the headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn header_of<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Read one chunk of a chunked body; `None` at the last (empty) chunk.
fn read_chunk(r: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed inside a chunked body");
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
        .with_context(|| format!("bad chunk size {line:?}"))?;
    if size == 0 {
        // Trailers, then the final CRLF.
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
        }
        return Ok(None);
    }
    let mut chunk = vec![0; size];
    r.read_exact(&mut chunk)?;
    let mut crlf = [0; 2];
    r.read_exact(&mut crlf)?;
    Ok(Some(chunk))
}

struct Client {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            conn: None,
        }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let stream = TcpStream::connect(&self.addr)
                    .with_context(|| format!("connecting to {}", self.addr))?;
                stream.set_nodelay(true)?;
                self.conn = Some(BufReader::new(stream));
            }
            let conn = self.conn.as_mut().context("connection")?;
            let result = (|| -> Result<Reply> {
                let stream = conn.get_mut();
                stream.write_all(head.as_bytes())?;
                stream.write_all(body)?;
                let (status, headers) = read_head(conn)?;
                let body = if header_of(&headers, "transfer-encoding")
                    .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
                {
                    let mut body = Vec::new();
                    while let Some(chunk) = read_chunk(conn)? {
                        body.extend_from_slice(&chunk);
                    }
                    body
                } else if let Some(len) = header_of(&headers, "content-length") {
                    let mut body = vec![0; len.parse()?];
                    conn.read_exact(&mut body)?;
                    body
                } else {
                    let mut body = Vec::new();
                    conn.read_to_end(&mut body)?;
                    body
                };
                Ok(Reply {
                    status,
                    headers,
                    body,
                })
            })();
            match result {
                Ok(reply) => {
                    if reply
                        .header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    {
                        self.conn = None;
                    }
                    return Ok(reply);
                }
                Err(e) => {
                    self.conn = None;
                    // A kept-alive connection the server closed meanwhile: try once more.
                    if !(reused && attempt == 0) {
                        return Err(e);
                    }
                }
            }
        }
        bail!("unreachable: two attempts")
    }

    fn get(&mut self, path: &str, auth: &Auth) -> Result<Reply> {
        self.request("GET", path, &auth.headers(), &[])
    }
}

/// How a request proves who it is: the dashboard's cookie or the API's bearer token (the same
/// `ds_…` session token either way).
#[derive(Clone)]
enum Auth {
    Cookie(String),
    Bearer(String),
}

impl Auth {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Auth::Cookie(t) => vec![
                ("Cookie", format!("doorstep_session={t}")),
                ("Accept", "text/html".into()),
            ],
            Auth::Bearer(t) => vec![
                ("Authorization", format!("Bearer {t}")),
                ("Accept", "application/json".into()),
            ],
        }
    }
}

/// Log in through the JSON API; the token is also the dashboard's session cookie.
fn login(addr: &str, login: &str, password: &str) -> Result<String> {
    let body = serde_json::to_vec(&json!({ "login": login, "password": password }))?;
    let reply = Client::new(addr).request(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json".into())],
        &body,
    )?;
    if reply.status != 200 {
        bail!(
            "login {login}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let v: Value = serde_json::from_slice(&reply.body)?;
    Ok(v["token"].as_str().context("token")?.to_string())
}

// =============================================================================================
// The server as its own process.
// =============================================================================================

fn server_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("DOORSTEP_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/release/examples/bench_dashboard → target/release/doorstep-server
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("doorstep-server"))
        .context("no parent directory")?;
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p doorstep-server --examples --bins`",
            bin.display()
        );
    }
    Ok(bin)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// `doorstep-server <command> --db <db> --listen 127.0.0.1:<free port>`, logging to `log`,
    /// waited for until `/healthz` answers.
    fn start(command: &str, db: &Path, log: &Path) -> Result<Server> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let out = std::fs::File::create(log)?;
        let child = Command::new(server_bin()?)
            .arg(command)
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(&addr)
            .env("DOORSTEP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting doorstep-server")?;
        let mut server = Server { child, addr };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "doorstep-server exited with {status}; see {}",
                    log.display()
                );
            }
            if let Ok(r) = Client::new(&server.addr).request("GET", "/healthz", &[], &[])
                && r.status == 200
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("doorstep-server did not answer /healthz within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the server settle.
        std::thread::sleep(Duration::from_millis(200));
        let _ = &mut server;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// CPU time (user + system, all threads) the server process used so far, in ms.
    fn cpu_ms(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name;
        // Linux reports them in 1/100 s (USER_HZ).
        (ticks(11) + ticks(12)) * 10.0
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// =============================================================================================
// Building databases with the server library (before the server starts).
// =============================================================================================

fn election(id: &str, community: &str) -> Campaign {
    let candidates: BTreeMap<String, Candidate> = (1..=9)
        .map(|i| {
            let id = format!("cand-{i}");
            (
                id.clone(),
                Candidate {
                    id,
                    name: format!("候选人{i}"),
                    order: i,
                },
            )
        })
        .collect();
    Campaign {
        id: id.into(),
        community: community.into(),
        title: "第一届业主委员会选举".into(),
        kind: CampaignKind::Election,
        binding: true,
        scope: Scope::Whole,
        rules: Rules::default(),
        questions: BTreeMap::from([(
            "q1".to_string(),
            Question {
                id: "q1".into(),
                order: 1,
                text: "选举业主委员会委员（7名）".into(),
                kind: QuestionKind::Election {
                    seats: 7,
                    candidates,
                },
            },
        )]),
        status: CampaignStatus::Draft,
        status_times: BTreeMap::new(),
        roll_hash: None,
        rules_hash: None,
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "华", "建国", "志强", "桂英", "玉兰", "德华",
];

fn name(rng: &mut Rng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.below(SURNAMES.len() as u64) as usize],
        GIVEN[rng.below(GIVEN.len() as u64) as usize]
    )
}

/// A register CSV of `units` units in `buildings` buildings (2 entrances × 4 rooms a floor),
/// with co-owners (≈10 %), owners of a second unit (≈2 %) and a few unsold developer units.
fn district_csv(units: usize, buildings: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = String::from(
        "unit_code,building,entrance,floor,room,area_m2,owner_key,owner_name,phone,residents,note\n",
    );
    let base = units / buildings;
    let extra = units % buildings;
    let mut owner = 0usize;
    for b in 1..=buildings {
        let n = base + usize::from(b <= extra);
        let mut last_owner: Option<(String, String)> = None;
        for i in 0..n {
            let entrance = 1 + (i / 4) % 2;
            let floor = 1 + i / 8;
            let room = format!("{floor:02}{:02}", 1 + i % 4);
            let area = 6000 + rng.below(8000);
            let (key, owner_name, note) = match rng.below(1000) {
                0..=2 => ("DEV".to_string(), "开发商".to_string(), "developer_unsold"),
                3..=22 if last_owner.is_some() => {
                    let (k, n) = last_owner.clone().unwrap_or_default();
                    (k, n, "second_unit_of_owner")
                }
                23..=122 => {
                    owner += 1;
                    (
                        format!("D{owner:06}"),
                        format!("{}、{}", name(rng), name(rng)),
                        "co_owned",
                    )
                }
                _ => {
                    owner += 1;
                    (format!("D{owner:06}"), name(rng), "")
                }
            };
            if note != "developer_unsold" {
                last_owner = Some((key.clone(), owner_name.clone()));
            }
            out.push_str(&format!(
                "{b}-{entrance}-{room},{b}号楼,{entrance}单元,{floor},{room},{}.{:02},{key},{owner_name},138{:08},{},{note}\n",
                area / 100,
                area % 100,
                rng.below(100_000_000),
                rng.below(5),
            ));
        }
    }
    out.into_bytes()
}

/// Write one record under `collection/key` of a document root.
fn put_record<R: autosurgeon::Reconcile>(
    doc: &mut AutoCommit,
    collection: &str,
    key: &str,
    value: &R,
) -> Result<(), doorstep_core::Error> {
    let coll = match doc.get(ROOT, collection)? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, collection, ObjType::Map)?,
    };
    autosurgeon::reconcile_prop(doc, coll, key, value)
        .map_err(|e| doorstep_core::Error::Shape(e.to_string()))
}

enum Record {
    Visit(Visit),
    Delivery(Delivery),
    Ballot(Ballot),
}

impl Record {
    fn at(&self) -> i64 {
        match self {
            Record::Visit(v) => v.at,
            Record::Delivery(d) => d.at,
            Record::Ballot(b) => b.collected_at,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct FieldStats {
    visits: usize,
    deliveries: usize,
    ballots: usize,
    corrections: usize,
    conflicts: usize,
    orders: usize,
    changes: usize,
}

impl FieldStats {
    fn add(&mut self, o: FieldStats) {
        self.visits += o.visits;
        self.deliveries += o.deliveries;
        self.ballots += o.ballots;
        self.corrections += o.corrections;
        self.conflicts += o.conflicts;
        self.orders += o.orders;
        self.changes += o.changes;
    }

    fn json(&self) -> Value {
        json!({
            "visits": self.visits, "deliveries": self.deliveries, "ballots": self.ballots,
            "corrections": self.corrections, "conflicts": self.conflicts, "orders": self.orders,
            "server_changes": self.changes,
        })
    }
}

fn answers(rng: &mut Rng) -> BTreeMap<String, Answer> {
    // An election ballot approves at most as many candidates as there are seats (7 of 9).
    let mut yes_left = 7;
    let candidates = (1..=9)
        .map(|c| {
            let yes = if c <= 7 { 850 } else { 300 };
            let choice = if yes_left > 0 && rng.permille(yes) {
                yes_left -= 1;
                Choice::Yes
            } else if rng.permille(500) {
                Choice::No
            } else {
                Choice::Abstain
            };
            (format!("cand-{c}"), choice)
        })
        .collect();
    BTreeMap::from([(
        "q1".to_string(),
        Answer {
            candidates,
            ..Answer::default()
        },
    )])
}

/// A campaign's field work in one building, written by its head as `syncs` server changes
/// (one per sync of the head's phone): every unit visited once or more, ≈85 % of owners handed
/// a ballot, ≈60 % returned, ≈1 % corrected, ≈0.2 % with two competing ballots; plus three
/// work orders. Records are stamped 2.5 minutes apart, ending an hour ago.
fn building_field_work(
    state: &AppState,
    campaign: &str,
    community: &str,
    building: &str,
    head: &Account,
    syncs: usize,
    seed: u64,
) -> Result<FieldStats> {
    let mut rng = Rng(seed);
    let field_id = DocId::Field {
        campaign: campaign.into(),
        building: building.into(),
    };
    let field: FieldDoc = state
        .docs()
        .hydrate(&field_id)
        .map_err(|e| anyhow!("{e}"))?
        .context("field document")?;
    let by = head.id.clone();
    let mut records = Vec::new();
    let mut stats = FieldStats::default();
    let mut seen_keys = BTreeSet::new();
    for (unit, entry) in &field.roll {
        let key = entry.voter_key.clone();
        let first_of_owner =
            key != doorstep_core::model::DEVELOPER_VOTER_KEY && seen_keys.insert(key.clone());
        let delivered = first_of_owner && rng.permille(850);
        let returned = delivered && rng.permille(706);
        let visits = 1 + usize::from(rng.permille(400)) + usize::from(rng.permille(150));
        for v in 0..visits {
            let last = v + 1 == visits;
            let outcome = match (last, returned, delivered) {
                (true, true, _) => DoorOutcome::Collected,
                (true, false, true) => DoorOutcome::Delivered,
                _ => [
                    DoorOutcome::NotHome,
                    DoorOutcome::ComeBack,
                    DoorOutcome::Refused,
                    DoorOutcome::TenantOnly,
                ][rng.below(4) as usize],
            };
            records.push(Record::Visit(Visit {
                id: doorstep_core::model::new_record_id(),
                unit: unit.clone(),
                outcome,
                note: String::new(),
                at: 0,
                by: by.clone(),
            }));
        }
        if delivered {
            records.push(Record::Delivery(Delivery {
                id: doorstep_core::model::new_record_id(),
                voter_key: key.clone(),
                unit: unit.clone(),
                at: 0,
                by: by.clone(),
            }));
        }
        if returned {
            let first = Ballot {
                id: doorstep_core::model::new_record_id(),
                voter_key: key.clone(),
                unit: unit.clone(),
                answers: answers(&mut rng),
                collected_at: 0,
                by: by.clone(),
                supersedes: None,
                method: None,
            };
            let first_id = first.id.clone();
            records.push(Record::Ballot(first));
            if rng.permille(10) {
                stats.corrections += 1;
                records.push(Record::Ballot(Ballot {
                    id: doorstep_core::model::new_record_id(),
                    voter_key: key.clone(),
                    unit: unit.clone(),
                    answers: answers(&mut rng),
                    collected_at: 0,
                    by: by.clone(),
                    supersedes: Some(first_id),
                    method: None,
                }));
            } else if rng.permille(2) {
                stats.conflicts += 1;
                records.push(Record::Ballot(Ballot {
                    id: doorstep_core::model::new_record_id(),
                    voter_key: key.clone(),
                    unit: unit.clone(),
                    answers: answers(&mut rng),
                    collected_at: 0,
                    by: by.clone(),
                    supersedes: None,
                    method: None,
                }));
            }
        }
    }
    let step = 150_000;
    let start = now_millis() - 3_600_000 - step * records.len() as i64;
    for (i, r) in records.iter_mut().enumerate() {
        let at = start + step * i as i64;
        match r {
            Record::Visit(v) => v.at = at,
            Record::Delivery(d) => d.at = at,
            Record::Ballot(b) => b.collected_at = at,
        }
    }
    let mut buildings = BTreeSet::new();
    buildings.insert(building.to_string());
    let writer = ops::account_writer(head, community, buildings);
    let actor = format!("account:{}", head.id);
    let per = records.len().div_ceil(syncs.max(1)).max(1);
    for chunk in records.chunks(per) {
        debug_assert!(chunk.windows(2).all(|w| w[0].at() <= w[1].at()));
        state
            .docs()
            .change(&field_id, &writer, &actor, "field work", |d| {
                for r in chunk {
                    match r {
                        Record::Visit(v) => put_record(d, "visits", &v.id, v)?,
                        Record::Delivery(x) => put_record(d, "deliveries", &x.id, x)?,
                        Record::Ballot(b) => put_record(d, "ballots", &b.id, b)?,
                    }
                }
                Ok(())
            })
            .map_err(|e| anyhow!("{field_id}: {e}"))?;
        stats.changes += 1;
        for r in chunk {
            match r {
                Record::Visit(_) => stats.visits += 1,
                Record::Delivery(_) => stats.deliveries += 1,
                Record::Ballot(_) => stats.ballots += 1,
            }
        }
    }
    // Three 微心愿 work orders, as the head's phone creates them.
    let orders_id = DocId::Orders {
        community: community.into(),
        building: building.into(),
    };
    let units: Vec<&String> = field.roll.keys().collect();
    state
        .docs()
        .change(&orders_id, &writer, &actor, "create work orders", |d| {
            for k in 0..3 {
                let order = WorkOrder {
                    id: doorstep_core::model::new_record_id(),
                    unit: units[(k * 37) % units.len()].clone(),
                    title: ["楼道灯不亮", "电梯异响", "垃圾清运不及时"][k].to_string(),
                    detail: "居民反映".to_string(),
                    created_at: now_millis() - 86_400_000,
                    created_by: by.clone(),
                    assignee: None,
                    events: BTreeMap::new(),
                };
                put_record(d, "orders", &order.id, &order)?;
            }
            Ok(())
        })
        .map_err(|e| anyhow!("{orders_id}: {e}"))?;
    stats.orders += 3;
    stats.changes += 1;
    Ok(stats)
}

/// A head account per building (assigned, with an enrolled phone whose last sync is set as a
/// sync would set it: most today, one in five earlier). Returns building → account.
fn heads_with_phones(
    state: &AppState,
    community: &str,
    buildings: &[String],
    admin_actor: &str,
    existing_login: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, Account>> {
    let storage = state.storage();
    let mut heads = BTreeMap::new();
    let now = now_millis();
    for (i, building) in buildings.iter().enumerate() {
        let login = existing_login(building);
        let account = match storage.account_by_login(&login)? {
            Some(a) => a,
            None => {
                let a = storage.create_account(
                    &NewAccount {
                        login: login.clone(),
                        display_name: format!("{building}号楼楼栋长"),
                        grants: Grants::uniform(&[Role::BuildingHead], &Communities::All)
                            .expect("a role"),
                        password_hash: None,
                    },
                    admin_actor,
                )?;
                storage.assign(
                    &Assignment {
                        account_id: a.id.clone(),
                        community: community.to_string(),
                        building: building.clone(),
                    },
                    admin_actor,
                )?;
                a
            }
        };
        let (code, _) = auth::issue_enrollment_code(storage, &account.id, 3_600_000, admin_actor)?;
        let device = storage.redeem_enrollment_code(
            &auth::token_hash(&auth::normalize_code(&code)),
            now,
            &NewDevice {
                id: uuid::Uuid::new_v4(),
                label: format!("{building}号楼楼栋长的手机"),
                app_version: "0.1.0".into(),
                token_hash: auth::token_hash(&auth::new_token("dt_")),
            },
        )?;
        let at = if i % 5 == 4 {
            now - 3 * 86_400_000
        } else {
            now - 600_000
        };
        storage.commit(&Batch {
            device: Some(DeviceSyncWrite {
                device: device.id,
                account_id: account.id.clone(),
                at,
                app_version: "0.1.0".into(),
                pending: 0,
                bytes_up: 6_000,
                bytes_down: 400,
                reset_announced: false,
                manifest_digest: None,
                quarantine_budget: 0,
            }),
            ..Batch::default()
        })?;
        heads.insert(building.clone(), account);
    }
    Ok(heads)
}

/// The audit trail of a campaign's phone syncs that the field work above (a few server
/// changes per building) does not leave: `syncs` accepted syncs per head (two a day for two
/// weeks), each one `sync.accepted` event as `sync.rs` writes it. Returns how many.
fn pad_audit(
    state: &AppState,
    campaign: &str,
    heads: &BTreeMap<String, Account>,
    syncs: usize,
) -> Result<usize> {
    let devices = state.storage().devices()?;
    let mut events = Vec::new();
    for (building, head) in heads {
        let Some(device) = devices.iter().find(|d| d.account_id == head.id) else {
            continue;
        };
        for _ in 0..syncs {
            events.push(doorstep_server::storage::NewAuditEvent::new(
                format!("device:{}", device.id),
                "sync.accepted",
                format!("field/{campaign}/{building}"),
                json!({ "account": head.id, "changes": 12 }),
            ));
        }
    }
    for chunk in events.chunks(1000) {
        state.storage().append_audit(chunk)?;
    }
    Ok(events.len())
}

/// Move a published campaign to open, as the admin does on the dashboard.
fn open_campaign(state: &AppState, id: &str, admin: &Account) -> Result<()> {
    let writer = ops::account_writer(admin, doorstep_server::storage::EVERYWHERE, BTreeSet::new());
    let current = state
        .docs()
        .campaign(id)
        .map_err(|e| anyhow!("{e}"))?
        .context("campaign")?;
    let next = doorstep_core::campaign::advance(&current, CampaignStatus::Open, now_millis())?;
    let value = CampaignDoc {
        schema: SCHEMA_VERSION,
        campaign: next,
    };
    state
        .docs()
        .change(
            &DocId::Campaign {
                campaign: id.to_string(),
            },
            &writer,
            &format!("account:{}", admin.id),
            "campaign open",
            |d| ops::write_all(d, &value),
        )
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Field work in every building, on `threads` threads (the rules and projections run in
/// parallel; the single writer serialises the commits).
fn field_work_everywhere(
    state: &AppState,
    campaign: &str,
    community: &str,
    heads: &BTreeMap<String, Account>,
    syncs: usize,
    threads: usize,
) -> Result<FieldStats> {
    let queue: Mutex<Vec<(usize, &String, &Account)>> = Mutex::new(
        heads
            .iter()
            .enumerate()
            .map(|(i, (b, a))| (i, b, a))
            .rev()
            .collect(),
    );
    let total = Mutex::new(FieldStats::default());
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some((i, building, head)) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    match building_field_work(
                        state,
                        campaign,
                        community,
                        building,
                        head,
                        syncs,
                        0xD00F_0000 + i as u64,
                    ) {
                        Ok(stats) => {
                            if let Ok(mut t) = total.lock() {
                                t.add(stats);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                    }
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if n.is_multiple_of(40) || n == heads.len() {
                        eprintln!(
                            "  field work: {n}/{} buildings, {:.0} s",
                            heads.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().map_err(|_| anyhow!("poisoned"))? {
        return Err(e);
    }
    total.into_inner().map_err(|_| anyhow!("poisoned"))
}

/// What a page benchmark needs to know about a database.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Facts {
    name: String,
    campaign: String,
    community: String,
    building: String,
    unit: String,
    units: usize,
    buildings: usize,
    description: Value,
}

fn build_demo_field(db: &Path, syncs: usize) -> Result<Facts> {
    let state = AppState::new(SqliteStorage::open(db)?, Config::default());
    let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?;
    let admin = state
        .storage()
        .account_by_login(&info.admin_login)?
        .context("admin")?;
    let buildings: Vec<String> = info.heads.iter().map(|(_, b, _)| b.clone()).collect();
    let heads = heads_with_phones(
        &state,
        demo::COMMUNITY,
        &buildings,
        &format!("account:{}", admin.id),
        |b| format!("head-{b}"),
    )?;
    open_campaign(&state, demo::CAMPAIGN, &admin)?;
    let stats = field_work_everywhere(&state, demo::CAMPAIGN, demo::COMMUNITY, &heads, syncs, 2)?;
    state.db().checkpoint()?;
    Ok(Facts {
        name: "demo-field".into(),
        campaign: demo::CAMPAIGN.into(),
        community: demo::COMMUNITY.into(),
        building: "3".into(),
        unit: first_unit(&state, demo::CAMPAIGN, "3")?,
        units: 306,
        buildings: buildings.len(),
        description: json!({
            "register": "the sample community of `doorstep-server demo` (306 units, 11 buildings)",
            "campaign": "its election, opened",
            "field_work": stats.json(),
            "syncs_per_building": syncs,
        }),
    })
}

fn first_unit(state: &AppState, campaign: &str, building: &str) -> Result<String> {
    let field: FieldDoc = state
        .docs()
        .hydrate(&DocId::Field {
            campaign: campaign.into(),
            building: building.into(),
        })
        .map_err(|e| anyhow!("{e}"))?
        .context("field")?;
    // The unit with the most records: the longest timeline.
    let mut count: HashMap<&str, usize> = HashMap::new();
    for v in field.visits.values() {
        *count.entry(&v.unit).or_default() += 1;
    }
    for b in field.ballots.values() {
        *count.entry(&b.unit).or_default() += 1;
    }
    count
        .into_iter()
        .max_by_key(|(u, n)| (*n, std::cmp::Reverse(u.to_string())))
        .map(|(u, _)| u.to_string())
        .or_else(|| field.roll.keys().next().cloned())
        .context("no unit")
}

fn build_district(db: &Path, units: usize, buildings: usize, syncs: usize) -> Result<Facts> {
    let t = Instant::now();
    let state = AppState::new(SqliteStorage::open(db)?, Config::default());
    let storage = state.storage();
    let community = "district";
    let campaign_id = "district-election";
    let admin = auth::create_password_account(
        storage,
        "admin",
        "街道管理员",
        Grants::uniform(&[Role::Admin], &Communities::All).expect("a role"),
        ADMIN_PASSWORD,
        "server",
    )
    .map_err(|e| anyhow!("{e}"))?;
    let actor = format!("account:{}", admin.id);
    auth::create_password_account(
        storage,
        "officer",
        "计票人",
        Grants::uniform(&[Role::CountingOfficer], &Communities::All).expect("a role"),
        ADMIN_PASSWORD,
        &actor,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let writer = ops::account_writer(&admin, community, BTreeSet::new());
    let csv = district_csv(units, buildings, &mut Rng(20_250_601));
    let imported = import::parse_csv(community, "百园街道", &csv)?;
    ops::import_register(state.docs(), &imported, &writer, &actor).map_err(|e| anyhow!("{e}"))?;
    let import_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "  district: imported {} units in {} buildings ({import_secs:.0} s)",
        imported.unit_count(),
        imported.buildings.len()
    );
    ops::create_draft(
        state.docs(),
        &election(campaign_id, community),
        &writer,
        &actor,
    )
    .map_err(|e| anyhow!("{e}"))?;
    ops::publish_campaign(state.docs(), campaign_id, &writer, &actor)
        .map_err(|e| anyhow!("{e}"))?;
    open_campaign(&state, campaign_id, &admin)?;
    let publish_secs = t.elapsed().as_secs_f64() - import_secs;
    eprintln!("  district: published and opened the election ({publish_secs:.0} s)");
    let mut ids: Vec<String> = imported.register.buildings.keys().cloned().collect();
    ids.sort_by_key(|b| b.parse::<u32>().unwrap_or(u32::MAX));
    let heads = heads_with_phones(&state, community, &ids, &actor, |b| format!("head-{b}"))?;
    let t_field = Instant::now();
    let stats = field_work_everywhere(&state, campaign_id, community, &heads, syncs, 2)?;
    let field_secs = t_field.elapsed().as_secs_f64();
    let padding = pad_audit(&state, campaign_id, &heads, 28)?;
    let middle = ids[ids.len() / 2].clone();
    let unit = first_unit(&state, campaign_id, &middle)?;
    state.db().checkpoint()?;
    Ok(Facts {
        name: "district".into(),
        campaign: campaign_id.into(),
        community: community.into(),
        building: middle,
        unit,
        units: imported.unit_count(),
        buildings: imported.buildings.len(),
        description: json!({
            "register": format!(
                "generated: {} units in {} buildings (2 entrances × 4 rooms a floor), ≈10 % co-owned, ≈2 % second units of one owner, ≈0.3 % unsold developer units",
                imported.unit_count(), imported.buildings.len()),
            "campaign": "a whole-scope election (7 of 9 candidates), published and opened",
            "heads": format!("{} building heads, each assigned and with an enrolled phone (one in five last synced 3 days ago)", heads.len()),
            "field_work": stats.json(),
            "syncs_per_building": syncs,
            "audit_events_added_for_phone_syncs": padding,
            "build_seconds": { "import": round2(import_secs), "publish": round2(publish_secs), "field_work": round2(field_secs), "total": round2(t.elapsed().as_secs_f64()) },
        }),
    })
}

// =============================================================================================
// Part 1: pages.
// =============================================================================================

fn page_list(f: &Facts) -> Vec<(String, String)> {
    let (c, b, u, id) = (&f.community, &f.building, &f.unit, &f.campaign);
    vec![
        ("/".into(), "/".into()),
        ("/buildings".into(), "/buildings".into()),
        ("/buildings/{c}/{b}".into(), format!("/buildings/{c}/{b}")),
        (
            "/buildings/{c}/{b}/units/{u}".into(),
            format!("/buildings/{c}/{b}/units/{u}"),
        ),
        ("/campaigns".into(), "/campaigns".into()),
        ("/campaigns/{id}".into(), format!("/campaigns/{id}")),
        (
            "/campaigns/{id}/conflicts".into(),
            format!("/campaigns/{id}/conflicts"),
        ),
        (
            "/campaigns/{id}/notice/preliminary".into(),
            format!("/campaigns/{id}/notice/preliminary"),
        ),
        (
            "/campaigns/{id}/card".into(),
            format!("/campaigns/{id}/card"),
        ),
        ("/devices".into(), "/devices".into()),
        ("/audit".into(), "/audit".into()),
        ("/orders".into(), "/orders".into()),
        ("/register".into(), "/register".into()),
        ("/exports".into(), "/exports".into()),
    ]
}

/// The JSON API reads the pages are built from, timed the same way to show where a page's
/// time goes.
fn api_list(f: &Facts) -> Vec<(String, String)> {
    let (c, b, id) = (&f.community, &f.building, &f.campaign);
    let a = "/api/v1/admin";
    vec![
        ("campaigns".into(), format!("{a}/campaigns")),
        ("progress".into(), format!("{a}/campaigns/{id}/progress")),
        ("tally".into(), format!("{a}/campaigns/{id}/tally")),
        ("conflicts".into(), format!("{a}/campaigns/{id}/conflicts")),
        ("buildings".into(), format!("{a}/buildings")),
        ("units".into(), format!("{a}/buildings/{c}/{b}/units")),
        (
            "households".into(),
            format!("{a}/buildings/{c}/{b}/households"),
        ),
        (
            "household conflicts".into(),
            format!("{a}/conflicts/households"),
        ),
        ("accounts".into(), format!("{a}/accounts")),
        ("devices".into(), format!("{a}/devices")),
        ("orders".into(), format!("{a}/orders")),
        ("audit (100 events)".into(), format!("{a}/audit")),
    ]
}

fn time_paths(
    server: &Server,
    auth: &Auth,
    paths: &[(String, String)],
    requests: usize,
) -> Result<Vec<Value>> {
    let mut client = Client::new(&server.addr);
    let mut out = Vec::new();
    for (label, path) in paths {
        let t = Instant::now();
        let first = client.get(path, auth)?;
        let first_ms = t.elapsed().as_secs_f64() * 1000.0;
        if first.status != 200 {
            eprintln!(
                "  {label:<40} {} {}",
                first.status,
                first.header("x-error-code").unwrap_or("")
            );
            out.push(json!({
                "page": label, "path": path, "status": first.status,
                "error": first.header("x-error-code"),
            }));
            continue;
        }
        client.get(path, auth)?;
        let load = loadavg();
        let cpu0 = server.cpu_ms();
        let mut times = Vec::with_capacity(requests);
        let mut bytes = 0;
        // A request the server gave up on (408 after its 60 s timeout) still counts with the
        // time it took; the count is reported.
        let mut failed: BTreeMap<u16, usize> = BTreeMap::new();
        for _ in 0..requests {
            let t = Instant::now();
            let r = client.get(path, auth)?;
            times.push(t.elapsed());
            if r.status == 200 {
                bytes = r.body.len();
            } else {
                *failed.entry(r.status).or_default() += 1;
            }
        }
        let cpu = (server.cpu_ms() - cpu0) / requests as f64;
        times.sort();
        let (p50, p95, max) = (
            percentile_ms(&times, 0.5),
            percentile_ms(&times, 0.95),
            percentile_ms(&times, 1.0),
        );
        eprintln!(
            "  {label:<40} p50 {p50:>8.2}  p95 {p95:>8.2}  max {max:>8.2} ms   first {first_ms:>8.1} ms  server cpu {cpu:>7.2} ms  {bytes:>8} B"
        );
        out.push(json!({
            "page": label, "path": path, "status": 200, "requests": requests,
            "p50_ms": round2(p50), "p95_ms": round2(p95), "max_ms": round2(max),
            "first_ms": round2(first_ms), "server_cpu_ms_per_request": round2(cpu),
            "bytes": bytes, "non_200": failed.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "load_before": load,
        }));
        if !failed.is_empty() {
            eprintln!("  {label:<40} answers other than 200: {failed:?}");
        }
    }
    Ok(out)
}

fn measure_dataset(
    facts: &Facts,
    command: &str,
    db: &Path,
    (requests, api_requests): (usize, usize),
    target_p95_ms: f64,
) -> Result<Value> {
    let log = db.with_extension("log");
    let server = Server::start(command, db, &log)?;
    let token = login(&server.addr, "admin", ADMIN_PASSWORD)?;
    eprintln!(
        "{}: {} ({} units) served by `doorstep-server {command}` at {}; load {}",
        facts.name,
        db.display(),
        facts.units,
        server.url(),
        loadavg()
    );
    let load_before = loadavg();
    let pages = time_paths(
        &server,
        &Auth::Cookie(token.clone()),
        &page_list(facts),
        requests,
    )?;
    eprintln!("  -- JSON API reads behind the pages --");
    let api = time_paths(
        &server,
        &Auth::Bearer(token),
        &api_list(facts),
        api_requests,
    )?;
    let misses: Vec<Value> = pages
        .iter()
        .filter(|p| p["p95_ms"].as_f64().is_some_and(|v| v > target_p95_ms))
        .map(|p| json!({ "page": p["page"], "p95_ms": p["p95_ms"] }))
        .collect();
    Ok(json!({
        "dataset": facts,
        "server": format!("doorstep-server {command} --db {}", db.display()),
        "target_p95_ms": target_p95_ms,
        "load_before": load_before,
        "load_after": loadavg(),
        "server_peak_rss_kib": server.peak_rss_kib(),
        "pages": pages,
        "api": api,
        "pages_missing_target": misses,
    }))
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_pages(args: &[String]) -> Result<Value> {
    let requests: usize = arg(args, "--requests", 30);
    let api_requests: usize = arg(args, "--api-requests", 10);
    let units: usize = arg(args, "--units", 100_000);
    let buildings: usize = arg(args, "--buildings", 360);
    let syncs: usize = arg(args, "--syncs", 6);
    let only: String = arg(args, "--only", String::new());
    let reuse = args.iter().any(|a| a == "--reuse");
    let dir = out_dir().join("dashboard");
    std::fs::create_dir_all(&dir)?;
    let wanted = |n: &str| only.is_empty() || only == n;
    let mut results = Vec::new();

    if wanted("demo") {
        // Exactly what the README's first command serves: a fresh `doorstep-server demo`.
        let db = dir.join("demo.sqlite");
        remove_db(&db)?;
        let imported = import::parse_csv(demo::COMMUNITY, demo::COMMUNITY_NAME, demo::SAMPLE_CSV)?;
        let unit = imported
            .units()
            .find(|u| u.building == "3")
            .map(|u| u.code.clone())
            .context("building 3")?;
        let facts = Facts {
            name: "demo".into(),
            campaign: demo::CAMPAIGN.into(),
            community: demo::COMMUNITY.into(),
            building: "3".into(),
            unit,
            units: imported.unit_count(),
            buildings: imported.buildings.len(),
            description: json!({
                "register": "`doorstep-server demo` as shipped: the sample community, its published election, no field work yet",
            }),
        };
        results.push(measure_dataset(
            &facts,
            "demo",
            &db,
            (requests, api_requests),
            50.0,
        )?);
    }
    if wanted("demo-field") {
        let db = dir.join("demo-field.sqlite");
        remove_db(&db)?;
        let t = Instant::now();
        let facts = build_demo_field(&db, syncs)?;
        eprintln!("demo-field: built in {:.1} s", t.elapsed().as_secs_f64());
        results.push(measure_dataset(
            &facts,
            "serve",
            &db,
            (requests, api_requests),
            50.0,
        )?);
    }
    if wanted("district") {
        let db = dir.join("district.sqlite");
        let facts_path = dir.join("district.json");
        let facts = if reuse && db.exists() && facts_path.exists() {
            eprintln!("district: reusing {}", db.display());
            serde_json::from_slice(&std::fs::read(&facts_path)?)?
        } else {
            remove_db(&db)?;
            eprintln!("district: building {units} units in {buildings} buildings …");
            let facts = build_district(&db, units, buildings, syncs)?;
            std::fs::write(&facts_path, serde_json::to_vec_pretty(&facts)?)?;
            facts
        };
        eprintln!("district: {}", serde_json::to_string(&facts.description)?);
        results.push(measure_dataset(
            &facts,
            "serve",
            &db,
            (requests, api_requests),
            300.0,
        )?);
    }
    let result = json!({
        "command": format!("cargo run --release -p doorstep-server --example bench_dashboard -- {}", args.join(" ")),
        "timing": "wall time per GET on loopback from this process (request written → body read), keep-alive, after 2 untimed requests (the first is reported as first_ms); server CPU is the server process's user+system time per request",
        "datasets": results,
    });
    Ok(result)
}

fn remove_db(db: &Path) -> Result<()> {
    for ext in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{ext}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

// =============================================================================================
// Part 2: the reconnect storm with open dashboards.
// =============================================================================================

const VISITS: usize = 28;
const BALLOTS: usize = 25;
const ORDERS: usize = 5;

/// One building head's phone (as in `bench_sync`).
struct Phone {
    replica: Replica,
    building: String,
}

impl Phone {
    fn sync(&self, transport: &dyn Transport) -> Result<SyncReport> {
        Ok(self.replica.with_store(|s| sync::sync(s, transport))?)
    }
}

/// `n` copies of the sample register, each with a published election and a head account per
/// building (as in `bench_sync`); returns (community, building, enrollment code) per head.
fn storm_setup(state: &AppState, n: usize) -> Result<Vec<(String, String, String)>> {
    let info = demo::setup(state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?;
    let storage = state.storage();
    let admin = storage
        .account_by_login(&info.admin_login)?
        .context("admin")?;
    let writer = ops::account_writer(
        &admin,
        doorstep_server::storage::EVERYWHERE,
        Default::default(),
    );
    let actor = format!("account:{}", admin.id);
    let mut codes = Vec::new();
    for c in 0..n {
        let community = format!("c{c:03}");
        let imported = import::parse_csv(&community, "bench", demo::SAMPLE_CSV)?;
        ops::import_register(state.docs(), &imported, &writer, &actor)
            .map_err(|e| anyhow!("{e}"))?;
        let campaign_id = format!("{community}-election");
        ops::create_draft(
            state.docs(),
            &election(&campaign_id, &community),
            &writer,
            &actor,
        )
        .map_err(|e| anyhow!("{e}"))?;
        ops::publish_campaign(state.docs(), &campaign_id, &writer, &actor)
            .map_err(|e| anyhow!("{e}"))?;
        for building in imported.register.buildings.keys() {
            let account = storage.create_account(
                &NewAccount {
                    login: format!("{community}-head-{building}"),
                    display_name: String::new(),
                    grants: Grants::one(&community, &[Role::BuildingHead]).expect("a role"),
                    password_hash: None,
                },
                &actor,
            )?;
            storage.assign(
                &Assignment {
                    account_id: account.id.clone(),
                    community: community.clone(),
                    building: building.clone(),
                },
                &actor,
            )?;
            let (code, _) = auth::issue_enrollment_code(storage, &account.id, 86_400_000, &actor)?;
            codes.push((community.clone(), building.clone(), code));
        }
    }
    Ok(codes)
}

fn enroll(url: &str, code: &str, building: &str) -> Result<Phone> {
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
    })
}

/// A day of work (as in `bench_sync`): visits, ballots and work orders, each a checked action.
fn day_of_work(phone: &Phone, campaign: &str) -> Result<()> {
    let units: Vec<String> = phone
        .replica
        .units(&phone.building, Some(campaign))?
        .into_iter()
        .map(|u| u.unit.code)
        .collect();
    let mut seen_keys = BTreeSet::new();
    for (i, unit) in units.iter().cycle().take(VISITS).enumerate() {
        let outcome = if i % 3 == 0 {
            DoorOutcome::NotHome
        } else {
            DoorOutcome::Collected
        };
        phone.replica.record_visit(campaign, unit, outcome, "")?;
    }
    let mut ballots = 0;
    for view in phone.replica.units(&phone.building, Some(campaign))? {
        if ballots == BALLOTS {
            break;
        }
        if !seen_keys.insert(view.unit.voter_key()) {
            continue;
        }
        let answers = BTreeMap::from([(
            "q1".to_string(),
            Answer {
                candidates: (1..=7)
                    .map(|c| (format!("cand-{c}"), Choice::Yes))
                    .collect(),
                ..Answer::default()
            },
        )]);
        phone
            .replica
            .record_ballot(campaign, &view.unit.code, answers, None)?;
        ballots += 1;
    }
    phone.replica.orders(&phone.building)?;
    for unit in units.iter().take(ORDERS) {
        phone
            .replica
            .create_order(unit, "楼道灯不亮", "三楼到四楼")?;
    }
    Ok(())
}

/// Enroll, first-sync and give a day of offline work to each head, on `threads` threads.
fn prepare_phones(
    url: &str,
    codes: &[(String, String, String)],
    threads: usize,
) -> Result<Vec<Phone>> {
    let queue = Mutex::new(codes.iter().enumerate().collect::<Vec<_>>());
    let phones: Mutex<Vec<(usize, Phone)>> = Mutex::new(Vec::new());
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let transport = HttpTransport::new(url);
                while let Some((i, (c, b, code))) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let made = (|| -> Result<Phone> {
                        let p = enroll(url, code, b)?;
                        p.sync(&transport)?;
                        day_of_work(&p, &format!("{c}-election"))?;
                        Ok(p)
                    })();
                    match made {
                        Ok(p) => {
                            if let Ok(mut v) = phones.lock() {
                                v.push((i, p));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().map_err(|_| anyhow!("poisoned"))? {
        return Err(e);
    }
    let mut phones = phones.into_inner().map_err(|_| anyhow!("poisoned"))?;
    phones.sort_by_key(|(i, _)| *i);
    Ok(phones.into_iter().map(|(_, p)| p).collect())
}

/// What one open dashboard heard on `GET /events`.
#[derive(Default)]
struct Heard {
    device: AtomicUsize,
    changes: AtomicUsize,
    reloads: AtomicUsize,
    /// `card` events (a campaign's overview card pushed by the server).
    cards: AtomicUsize,
    card_bytes: AtomicUsize,
    error: Mutex<Option<String>>,
}

/// One open dashboard page: its event stream; in a `cards` round, the overview's stream
/// (`/events?cards=1`), which also carries the cards the server pushes, as `dashboard.js` opens
/// it on the 总览 page.
struct Dashboard {
    stream: TcpStream,
    heard: Arc<Heard>,
    thread: std::thread::JoinHandle<()>,
}

fn open_dashboard(addr: &str, token: &str, cards: bool) -> Result<Dashboard> {
    let stream = TcpStream::connect(addr)?;
    let mut w = stream.try_clone()?;
    let path = if cards { "/events?cards=1" } else { "/events" };
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: doorstep_session={token}\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (status, headers) = read_head(&mut reader)?;
    if status != 200
        || !header_of(&headers, "content-type").is_some_and(|v| v.starts_with("text/event-stream"))
    {
        bail!("GET {path} answered {status} {headers:?}");
    }
    let chunked =
        header_of(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let heard = Arc::new(Heard::default());
    let thread = {
        let heard = heard.clone();
        std::thread::spawn(move || {
            let mut buf = String::new();
            let mut event = String::new();
            let mut data = String::new();
            let result = (|| -> Result<()> {
                loop {
                    let bytes = if chunked {
                        match read_chunk(&mut reader)? {
                            Some(b) => b,
                            None => return Ok(()),
                        }
                    } else {
                        let mut b = vec![0; 4096];
                        let n = reader.read(&mut b)?;
                        if n == 0 {
                            return Ok(());
                        }
                        b.truncate(n);
                        b
                    };
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(pos) = buf.find('\n') {
                        let line = buf[..pos].trim_end_matches('\r').to_string();
                        buf.drain(..=pos);
                        if line.is_empty() {
                            match event.as_str() {
                                "change" => {
                                    let v: Value = serde_json::from_str(&data).unwrap_or_default();
                                    if v["kind"] == "device" {
                                        heard.device.fetch_add(1, Ordering::SeqCst);
                                    } else {
                                        heard.changes.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                                "card" => {
                                    if !data.starts_with("<article class=\"card\"") {
                                        bail!("a card event that is not a card: {data:.80}");
                                    }
                                    heard.cards.fetch_add(1, Ordering::SeqCst);
                                    heard.card_bytes.fetch_add(data.len(), Ordering::SeqCst);
                                }
                                "reload" => {
                                    heard.reloads.fetch_add(1, Ordering::SeqCst);
                                }
                                _ => {}
                            }
                            event.clear();
                            data.clear();
                        } else if let Some(e) = line.strip_prefix("event:") {
                            event = e.trim().to_string();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            if !data.is_empty() {
                                data.push('\n');
                            }
                            data.push_str(d.strip_prefix(' ').unwrap_or(d));
                        }
                    }
                }
            })();
            if let Err(e) = result
                && let Ok(mut slot) = heard.error.lock()
            {
                *slot = Some(e.to_string());
            }
        })
    };
    Ok(Dashboard {
        stream,
        heard,
        thread,
    })
}

impl Dashboard {
    fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        let _ = self.thread.join();
    }
}

/// Every phone syncs once, `threads` at a time; returns (seconds, latencies, round trips of
/// the successful syncs, failures).
fn storm(
    url: &str,
    phones: Vec<Phone>,
    threads: usize,
) -> (f64, Vec<Duration>, usize, Vec<String>) {
    let queue = Arc::new(Mutex::new(phones));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let round_trips = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let queue = queue.clone();
            let latencies = latencies.clone();
            let failures = failures.clone();
            let round_trips = round_trips.clone();
            scope.spawn(move || {
                let transport = HttpTransport::new(url);
                loop {
                    let Some(phone) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let started = Instant::now();
                    match phone.sync(&transport) {
                        Ok(r) if r.rejected.is_empty() && r.complete => {
                            round_trips.fetch_add(r.round_trips, Ordering::SeqCst);
                            if let Ok(mut l) = latencies.lock() {
                                l.push(started.elapsed());
                            }
                        }
                        Ok(r) => {
                            round_trips.fetch_add(r.round_trips, Ordering::SeqCst);
                            if let Ok(mut f) = failures.lock() {
                                f.push(format!("{r:?}"));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failures.lock() {
                                f.push(e.to_string());
                            }
                        }
                    }
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort();
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    (secs, lat, round_trips.load(Ordering::SeqCst), failures)
}

fn run_storm(args: &[String]) -> Result<Value> {
    let per_round: usize = arg(args, "--phones", 300);
    let listeners: usize = arg(args, "--listeners", 50);
    let threads: usize = arg(args, "--threads", 16);
    let rounds: String = arg(args, "--rounds", "none,sse,none,sse".to_string());
    let rounds: Vec<String> = rounds.split(',').map(str::to_string).collect();
    for r in &rounds {
        if !["none", "sse", "cards"].contains(&r.as_str()) {
            bail!("unknown round {r:?}: use none, sse or cards");
        }
    }
    let phones_total = per_round * rounds.len();
    let communities = phones_total.div_ceil(11);

    let dir = out_dir().join("dashboard");
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("storm.sqlite");
    remove_db(&db)?;
    let t = Instant::now();
    let codes = {
        let state = AppState::new(SqliteStorage::open(&db)?, Config::default());
        let codes = storm_setup(&state, communities)?;
        state.db().checkpoint()?;
        codes
    };
    let setup_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "storm: {communities} communities, {} heads set up in {setup_secs:.0} s",
        codes.len()
    );

    let server = Server::start("serve", &db, &db.with_extension("log"))?;
    let url = server.url();
    let t = Instant::now();
    let mut batches = Vec::new();
    for (r, chunk) in codes.chunks(per_round).take(rounds.len()).enumerate() {
        let phones = prepare_phones(&url, chunk, 4)?;
        eprintln!(
            "  round {r}: {} phones enrolled, synced and given a day of work ({:.0} s so far)",
            phones.len(),
            t.elapsed().as_secs_f64()
        );
        batches.push(phones);
    }
    let prepare_secs = t.elapsed().as_secs_f64();
    let tokens: Vec<String> = (0..listeners)
        .map(|_| login(&server.addr, "admin", ADMIN_PASSWORD))
        .collect::<Result<_>>()?;

    let mut results = Vec::new();
    for (kind, phones) in rounds.iter().zip(batches) {
        std::thread::sleep(Duration::from_secs(2));
        let load = loadavg();
        let dashboards: Vec<Dashboard> = if kind == "none" {
            Vec::new()
        } else {
            tokens
                .iter()
                .map(|t| open_dashboard(&server.addr, t, kind == "cards"))
                .collect::<Result<_>>()?
        };
        let cpu0 = server.cpu_ms();
        let n = phones.len();
        let (secs, lat, round_trips, failures) = storm(&url, phones, threads);
        let cpu = server.cpu_ms() - cpu0;
        // Wait until every dashboard heard every sync (or 15 s).
        let waited = Instant::now();
        while dashboards
            .iter()
            .any(|d| d.heard.device.load(Ordering::SeqCst) < round_trips)
            && waited.elapsed() < Duration::from_secs(15)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let heard_after_ms = waited.elapsed().as_secs_f64() * 1000.0;
        if kind == "cards" {
            // Let the cards of the storm's last changes (pushed at most 2 s later) arrive.
            std::thread::sleep(Duration::from_millis(2500));
        }
        let device_counts: Vec<usize> = dashboards
            .iter()
            .map(|d| d.heard.device.load(Ordering::SeqCst))
            .collect();
        let change_counts: Vec<usize> = dashboards
            .iter()
            .map(|d| d.heard.changes.load(Ordering::SeqCst))
            .collect();
        let reloads: usize = dashboards
            .iter()
            .map(|d| d.heard.reloads.load(Ordering::SeqCst))
            .sum();
        let card_counts: Vec<usize> = dashboards
            .iter()
            .map(|d| d.heard.cards.load(Ordering::SeqCst))
            .collect();
        let card_bytes: usize = dashboards
            .iter()
            .map(|d| d.heard.card_bytes.load(Ordering::SeqCst))
            .sum();
        let errors: Vec<String> = dashboards
            .iter()
            .filter_map(|d| d.heard.error.lock().ok().and_then(|e| e.clone()))
            .collect();
        let all_heard = device_counts.iter().all(|c| *c == round_trips);
        for d in dashboards {
            d.close();
        }
        let rate = lat.len() as f64 / secs;
        eprintln!(
            "  storm [{kind:<5}] {} of {n} phones in {secs:.2} s: {rate:.1} syncs/s, p50 {:.0} ms, p99 {:.0} ms; server cpu {:.1} s; load {load}{}",
            lat.len(),
            percentile_ms(&lat, 0.5),
            percentile_ms(&lat, 0.99),
            cpu / 1000.0,
            if kind == "none" {
                String::new()
            } else {
                format!(
                    "; {} dashboards heard {}..{} of {round_trips} device events ({} reloads{})",
                    device_counts.len(),
                    device_counts.iter().min().unwrap_or(&0),
                    device_counts.iter().max().unwrap_or(&0),
                    reloads,
                    if kind == "cards" {
                        format!(
                            ", {}..{} pushed cards each",
                            card_counts.iter().min().unwrap_or(&0),
                            card_counts.iter().max().unwrap_or(&0)
                        )
                    } else {
                        String::new()
                    }
                )
            }
        );
        results.push(json!({
            "round": kind,
            "listeners": device_counts.len(),
            "phones": n,
            "succeeded": lat.len(),
            "failures": failures.iter().take(5).collect::<Vec<_>>(),
            "seconds": round2(secs),
            "syncs_per_second": round2(rate),
            "p50_ms": round2(percentile_ms(&lat, 0.5)),
            "p99_ms": round2(percentile_ms(&lat, 0.99)),
            "max_ms": round2(percentile_ms(&lat, 1.0)),
            "server_cpu_seconds": round2(cpu / 1000.0),
            "server_cpu_ms_per_sync": round2(cpu / round_trips.max(1) as f64),
            "sync_requests": round_trips,
            "every_dashboard_heard_every_sync": if kind == "none" { Value::Null } else { json!(all_heard) },
            "device_events_heard_min": device_counts.iter().min(),
            "device_events_heard_max": device_counts.iter().max(),
            "document_change_events_heard_min": change_counts.iter().min(),
            "document_change_events_heard_max": change_counts.iter().max(),
            "reload_events": reloads,
            "heard_all_within_ms_after_storm": if kind == "none" { Value::Null } else { json!(round2(heard_after_ms)) },
            "pushed_cards_heard_min": card_counts.iter().min(),
            "pushed_cards_heard_max": card_counts.iter().max(),
            "pushed_card_bytes_all_listeners": card_bytes,
            "listener_errors": errors.iter().take(5).collect::<Vec<_>>(),
            "load_before": load,
        }));
    }
    let mean = |kind: &str| -> Option<f64> {
        let v: Vec<f64> = results
            .iter()
            .filter(|r| r["round"] == kind)
            .filter_map(|r| r["syncs_per_second"].as_f64())
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let base = mean("none");
    let drop = |kind: &str| -> Value {
        match (base, mean(kind)) {
            (Some(b), Some(w)) if b > 0.0 => json!(round2((1.0 - w / b) * 100.0)),
            _ => Value::Null,
        }
    };
    let mean_cpu = |kind: &str| -> Option<f64> {
        let v: Vec<f64> = results
            .iter()
            .filter(|r| r["round"] == kind)
            .filter_map(|r| r["server_cpu_ms_per_sync"].as_f64())
            .collect();
        (!v.is_empty()).then(|| round2(v.iter().sum::<f64>() / v.len() as f64))
    };
    let summary = json!({
        "server_cpu_ms_per_sync_without_dashboards": mean_cpu("none"),
        "server_cpu_ms_per_sync_with_sse_dashboards": mean_cpu("sse"),
        "server_cpu_ms_per_sync_with_card_dashboards": mean_cpu("cards"),
        "syncs_per_second_without_dashboards": base.map(round2),
        "syncs_per_second_with_sse_dashboards": mean("sse").map(round2),
        "syncs_per_second_with_card_dashboards": mean("cards").map(round2),
        "throughput_drop_percent_sse": drop("sse"),
        "throughput_drop_percent_cards": drop("cards"),
        "target_drop_percent": 10,
    });
    eprintln!("storm summary: {summary}");
    Ok(json!({
        "command": format!("cargo run --release -p doorstep-server --example bench_dashboard -- {}", args.join(" ")),
        "server": format!("doorstep-server serve --db {} (its own process)", db.display()),
        "phones_per_round": per_round,
        "client_threads": threads,
        "communities": communities,
        "setup_seconds": round2(setup_secs),
        "prepare_seconds": round2(prepare_secs),
        "rounds": results,
        "summary": summary,
        "server_peak_rss_kib": server.peak_rss_kib(),
    }))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let rest: Vec<String> = args
        .iter()
        .skip(usize::from(
            args.first().is_some_and(|a| !a.starts_with("--")),
        ))
        .cloned()
        .collect();
    eprintln!("machine: {} cores, load {}", num_cpus(), loadavg());
    if mode == "pages" || mode == "all" {
        let mut result = run_pages(&rest)?;
        result["machine"] = machine();
        let path = write_json("dashboard_pages.json", &result)?;
        eprintln!("wrote {}", path.display());
    }
    if mode == "storm" || mode == "all" {
        let mut result = run_storm(&rest)?;
        result["machine"] = machine();
        let path = write_json("dashboard_storm.json", &result)?;
        eprintln!("wrote {}", path.display());
    }
    if !["pages", "storm", "all"].contains(&mode.as_str()) {
        bail!("usage: bench_dashboard [pages|storm|all] [flags] (see the file's header)");
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn machine() -> Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no", "--", "."]);
    json!({
        "cores": num_cpus(), "cpu": model, "load_at_end": loadavg(),
        "commit": git(&["rev-parse", "--short", "HEAD"]),
        "server_sources_modified_in_work_tree": dirty.lines().count(),
    })
}
