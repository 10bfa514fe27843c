//! Sync benchmarks (numbers, not tests): a building head reconnecting after a day offline, the
//! cost of unchanged documents, and a reconnect storm of many phones against one server on
//! loopback. Prints a summary and writes JSON to `target/bench_sync.json`.
//!
//! `cargo run --release -p doorstep-server --example bench_sync -- [communities] [threads]`
//! (defaults: 10 communities of 11 buildings = 110 phones, 16 client threads). Each community is
//! a copy of the sample register with its own published election.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use automerge::sync as am_sync;
use doorstep_core::doc::{DocId, FieldDoc, OrdersDoc};
use doorstep_core::protocol;
use doorstep_core::sync::{self, HttpTransport, Transport, TransportError};
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config, demo};
use serde_json::json;

#[path = "support/phones.rs"]
mod phones;

use phones::{Phone, day_of_work, enroll, percentile, setup};

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    Ok(sync::gzip(bytes)?.len())
}

/// Wraps the HTTP transport to count the bytes that actually cross the network: requests above
/// 1 KiB and replies above 32 bytes travel gzip-compressed (the CBOR lengths are in the report).
struct Measured {
    inner: HttpTransport,
    wire_up: AtomicUsize,
    wire_down: AtomicUsize,
    /// The last request's body (CBOR, before compression), for [`anatomy`].
    last_up: Mutex<Vec<u8>>,
}

impl Measured {
    fn new(url: &str) -> Measured {
        Measured {
            inner: HttpTransport::new(url),
            wire_up: AtomicUsize::new(0),
            wire_down: AtomicUsize::new(0),
            last_up: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> (usize, usize) {
        (
            self.wire_up.swap(0, Ordering::SeqCst),
            self.wire_down.swap(0, Ordering::SeqCst),
        )
    }
}

impl Transport for Measured {
    fn post(&self, body: Vec<u8>, token: &str) -> Result<Vec<u8>, TransportError> {
        let up = if body.len() > 1024 {
            sync::gzip(&body).map(|g| g.len()).unwrap_or(body.len())
        } else {
            body.len()
        };
        self.wire_up.fetch_add(up, Ordering::SeqCst);
        if let Ok(mut last) = self.last_up.lock() {
            last.clone_from(&body);
        }
        let reply = self.inner.post(body, token)?;
        let down = if reply.len() > 32 {
            sync::gzip(&reply).map(|g| g.len()).unwrap_or(reply.len())
        } else {
            reply.len()
        };
        self.wire_down.fetch_add(down, Ordering::SeqCst);
        Ok(reply)
    }

    fn enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        self.inner.enroll(body)
    }
}

/// Where a sync request's bytes go: its Automerge change chunks (bundles), the 32-byte hashes
/// (the phone's heads, and each message's heads, need and have), and the rest of the envelope;
/// each gzip-compressed alone, and the request gzipped without its chunks.
fn anatomy(body: &[u8]) -> Result<serde_json::Value> {
    let mut request = protocol::decode_request(body).map_err(|e| anyhow!("{e}"))?;
    let mut chunks = Vec::new();
    let mut hashes = Vec::new();
    let mut docs = Vec::new();
    for doc in &mut request.docs {
        for h in &doc.heads {
            hashes.extend_from_slice(&h.0);
        }
        let Some(msg) = &mut doc.msg else { continue };
        let mut message = am_sync::Message::decode(&msg.0)?;
        for h in message.heads.iter().chain(&message.need) {
            hashes.extend_from_slice(&h.0);
        }
        for have in &message.have {
            for h in &have.last_sync {
                hashes.extend_from_slice(&h.0);
            }
        }
        let own: Vec<u8> = message.changes.iter().flatten().copied().collect();
        docs.push(json!({
            "id": doc.id,
            "message_bytes": msg.0.len(),
            "chunks": message.changes.len(),
            "chunk_bytes": own.len(),
            "chunk_gzip_bytes": gzip_len(&own)?,
        }));
        chunks.extend_from_slice(&own);
        message.changes = am_sync::ChunkList::from(Vec::<Vec<u8>>::new());
        msg.0 = message.encode();
    }
    let without_chunks = protocol::encode(&request);
    Ok(json!({
        "request_bytes": body.len(),
        "request_gzip_bytes": gzip_len(body)?,
        "chunk_bytes": chunks.len(),
        "chunk_gzip_bytes": gzip_len(&chunks)?,
        "hash_bytes": hashes.len(),
        "request_without_chunks_bytes": without_chunks.len(),
        "request_without_chunks_gzip_bytes": gzip_len(&without_chunks)?,
        "docs": docs,
    }))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let communities: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);

    let dir = tempfile::tempdir()?;
    let state = AppState::new(
        SqliteStorage::open(dir.path().join("bench.sqlite"))?,
        Config::default(),
    );
    let t = Instant::now();
    let codes = setup(&state, communities)?;
    let setup_secs = t.elapsed().as_secs_f64();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(doorstep_server::serve(state.clone(), listener, async {
        let _ = stopped.await;
    }));

    // --- 1. One building head, a day offline. -------------------------------------------
    let (_, _, code) = &demo::setup(&state, None)
        .map_err(|e| anyhow!("{e}"))?
        .heads
        .into_iter()
        .find(|(_, b, _)| b == "3")
        .context("building 3")?;
    let transport = Measured::new(&url);
    let phone = enroll(&url, code, demo::COMMUNITY, "3")?;
    let first = phone.sync(&transport)?;
    let field_id = DocId::Field {
        campaign: demo::CAMPAIGN.into(),
        building: "3".into(),
    };
    let orders_id = DocId::Orders {
        community: demo::COMMUNITY.into(),
        building: "3".into(),
    };
    let before_field: FieldDoc = state
        .docs()
        .hydrate(&field_id)
        .map_err(|e| anyhow!("{e}"))?
        .context("field")?;
    day_of_work(&phone, demo::CAMPAIGN, phones::Day::SYNC)?;
    let metrics_before = state.metrics().render(0, Default::default());
    let t = Instant::now();
    transport.take();
    let day = phone.sync(&transport)?;
    let (wire_up, wire_down) = transport.take();
    let day_request = anatomy(&transport.last_up.lock().map_err(|_| anyhow!("poisoned"))?)?;
    let day_ms = t.elapsed().as_secs_f64() * 1000.0;
    let server_ms = server_seconds(&state.metrics().render(0, Default::default()))? * 1000.0
        - server_seconds(&metrics_before)? * 1000.0;
    let after_field: FieldDoc = state
        .docs()
        .hydrate(&field_id)
        .map_err(|e| anyhow!("{e}"))?
        .context("field")?;
    let orders: OrdersDoc = state
        .docs()
        .hydrate(&orders_id)
        .map_err(|e| anyhow!("{e}"))?
        .context("orders")?;
    let new_visits: Vec<_> = after_field
        .visits
        .iter()
        .filter(|(k, _)| !before_field.visits.contains_key(*k))
        .collect();
    let new_ballots: Vec<_> = after_field
        .ballots
        .iter()
        .filter(|(k, _)| !before_field.ballots.contains_key(*k))
        .collect();
    let records = serde_json::to_vec(&json!({
        "visits": new_visits, "ballots": new_ballots, "orders": orders.orders,
    }))?;
    let gzip_json = gzip_len(&records)?;
    let wire = wire_up + wire_down;

    // --- 2. Unchanged documents. ---------------------------------------------------------
    let idle = phone.sync(&transport)?;
    let held = phone.replica.with_store(|s| s.document_ids())?.len();

    // --- 3. The storm. -------------------------------------------------------------------
    let t = Instant::now();
    let phones: Vec<Phone> = codes
        .iter()
        .map(|(c, b, code)| enroll(&url, code, c, b))
        .collect::<Result<_>>()?;
    let enroll_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for p in &phones {
        p.sync(&transport)?;
        day_of_work(p, &format!("{}-election", p.community), phones::Day::SYNC)?;
    }
    let prepare_secs = t.elapsed().as_secs_f64();

    let queue = Arc::new(Mutex::new(phones));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let queue = queue.clone();
            let latencies = latencies.clone();
            let failures = failures.clone();
            let url = url.clone();
            scope.spawn(move || {
                let transport = HttpTransport::new(&url);
                loop {
                    let Some(phone) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let started = Instant::now();
                    match phone.sync(&transport) {
                        Ok(r) if r.rejected.is_empty() && r.complete => {
                            if let Ok(mut l) = latencies.lock() {
                                l.push(started.elapsed());
                            }
                        }
                        Ok(r) => {
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
    let storm_secs = t.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    lat.sort();
    let failures = failures.lock().map_err(|_| anyhow!("poisoned"))?.clone();

    stop.send(()).ok();
    rt.block_on(server)??;

    let result = json!({
        "setup_seconds": setup_secs,
        "day_offline": {
            "records": { "visits": new_visits.len(), "ballots": new_ballots.len(), "orders": orders.orders.len() },
            "first_sync_round_trips": first.round_trips,
            "first_sync_bytes_down": first.bytes_down,
            "round_trips": day.round_trips,
            "bytes_up": day.bytes_up,
            "bytes_down": day.bytes_down,
            "wire_bytes_up_gzip": wire_up,
            "wire_bytes_down_gzip": wire_down,
            "json_bytes": records.len(),
            "gzip_json_bytes": gzip_json,
            "wire_over_gzip_json": wire as f64 / gzip_json as f64,
            "request": day_request,
            "client_ms": day_ms,
            "server_ms": server_ms,
        },
        "unchanged": {
            "documents": held,
            "round_trips": idle.round_trips,
            "bytes_up": idle.bytes_up,
            "bytes_down": idle.bytes_down,
            "bytes_per_document": (idle.bytes_up + idle.bytes_down) as f64 / held as f64,
        },
        "storm": {
            "phones": lat.len() + failures.len(),
            "succeeded": lat.len(),
            "failures": failures.iter().take(5).collect::<Vec<_>>(),
            "client_threads": threads,
            "enroll_seconds": enroll_secs,
            "prepare_seconds": prepare_secs,
            "seconds": storm_secs,
            "syncs_per_second": lat.len() as f64 / storm_secs,
            "p50_ms": percentile(&lat, 0.5),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": percentile(&lat, 1.0),
        },
        "process_peak_rss_kib": peak_rss_kib(),
    });
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench_sync.json");
    std::fs::write(out, text)?;
    Ok(())
}

/// The server-side sync time so far, from the `/metrics` histogram sum.
fn server_seconds(metrics: &str) -> Result<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("doorstep_sync_duration_seconds_sum "))
        .context("no histogram sum")?
        .trim()
        .parse()
        .context("histogram sum")
}
