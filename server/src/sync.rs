//! `POST /api/v1/sync`: one request carries every document a phone has something to say about;
//! the reply carries the server's changes, a status per document, and the manifest of what the
//! phone should hold. The wire format is `doorstep_core::protocol`, described byte for byte in
//! `docs/protocol.md`.
//!
//! Per document the server receives the phone's Automerge sync message into a fork, checks every
//! new change with core's rules, and keeps the fork only if all pass; otherwise the payload is
//! quarantined and the phone told why. All documents, sync rows, quarantine rows, audit events
//! and projections of one request are stored in one transaction, before the reply is sent, so
//! a reply lost after the commit only costs a re-send (Automerge ignores changes it already has).
//!
//! The server remembers, per device, the heads it last announced for each document and the
//! digest of that manifest. When the phone echoes the digest, the server knows exactly what the
//! phone knows: documents the phone does not list are at the announced heads, so the server
//! can push their news in the same round trip, and unchanged documents cost no bytes and no
//! Automerge work at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use automerge::sync::{self as am_sync, BloomFilter, Have, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use doorstep_core::doc::{DocId, SCHEMA_VERSION};
use doorstep_core::model::Campaign;
use doorstep_core::protocol::{
    self, Bytes, DocResponse, DocStatus, Manifest, ManifestEntry, ProtocolError, SyncRequest,
    SyncResponse, heads_from_wire, heads_to_wire,
};
use doorstep_core::rules::{self, Checked, Context, Writer};

use crate::auth::DeviceAuth;
use crate::error::AppError;
use crate::metrics::SyncCounts;
use crate::state::AppState;
use crate::storage::{
    Announce, Batch, Device, DeviceSyncWrite, DocContent, DocMeta, DocWrite, NewAuditEvent,
    QuarantineWrite, SyncRow, SyncStateWrite,
};

/// The axum handler: authenticate, read the body within the limit, decode, run the engine off
/// the async runtime, answer CBOR (or a JSON error).
pub async fn sync_handler(
    State(state): State<AppState>,
    auth: DeviceAuth,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = handle_request(&state, auth.device, &headers, body).await;
    match result {
        Ok((bytes, up, counts)) => {
            state
                .metrics()
                .sync_done(up, bytes.len(), counts, started.elapsed());
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(protocol::CONTENT_TYPE),
                )],
                bytes,
            )
                .into_response()
        }
        Err((err, up)) => {
            state.metrics().sync_failed(up, started.elapsed());
            err.into_response()
        }
    }
}

type Handled = Result<(Vec<u8>, usize, SyncCounts), (AppError, usize)>;

async fn handle_request(
    state: &AppState,
    device: Device,
    headers: &HeaderMap,
    body: Body,
) -> Handled {
    // A phone that sent more refused work than the server keeps for one device is stopped
    // before its body is even read, until an admin has looked (the devices list flags it).
    if device.quarantine_full_at.is_some() {
        return Err((
            AppError::new(
                axum::http::StatusCode::FORBIDDEN,
                "quarantine_full",
                "this phone sent more refused work than the server keeps for one device; \
                 an admin must review it on the devices list and release it",
            ),
            0,
        ));
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ok = ct
            .to_str()
            .is_ok_and(|v| v.trim().starts_with(protocol::CONTENT_TYPE));
        if !ok {
            return Err((
                AppError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the sync envelope as application/cbor",
                ),
                0,
            ));
        }
    }
    let limit = state.config().sync_body_limit;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        (
            AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a sync request may carry at most {limit} bytes"),
            ),
            0,
        )
    })?;
    let up = body.len();
    // Inflated, a request is held to the same limit as on the wire: a small gzip bomb cannot
    // make the server hold more than one request's worth.
    let body = decode_content(headers, body, limit).map_err(|e| (e, up))?;
    let request = protocol::decode_request(&body).map_err(|e| (envelope_error(e), up))?;
    if request.schema > SCHEMA_VERSION {
        return Err((
            AppError::bad_request(
                "unsupported_schema",
                format!(
                    "the app writes schema {}, this server knows up to {SCHEMA_VERSION}; \
                     upgrade the server",
                    request.schema
                ),
            ),
            up,
        ));
    }
    let st = state.clone();
    let outcome = tokio::task::spawn_blocking(move || handle(&st, &device, request, up)).await;
    match outcome {
        Ok(Ok((bytes, counts))) => Ok((bytes, up, counts)),
        Ok(Err(e)) => Err((e, up)),
        Err(e) => Err((AppError::from(e), up)),
    }
}

/// Undo a `Content-Encoding: gzip` (phones compress large requests), refusing anything that
/// inflates beyond `max` bytes, so a small bomb cannot exhaust memory.
fn decode_content(
    headers: &HeaderMap,
    body: axum::body::Bytes,
    max: usize,
) -> Result<axum::body::Bytes, AppError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body),
        Some("gzip") => {
            use std::io::Read as _;
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&body[..]).take(max as u64 + 1);
            reader.read_to_end(&mut out).map_err(|_| {
                AppError::bad_request("malformed_envelope", "the gzip body does not inflate")
            })?;
            if out.len() > max {
                return Err(AppError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request inflates beyond {max} bytes"),
                ));
            }
            Ok(out.into())
        }
        Some(_) => Err(AppError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the only content encoding accepted is gzip",
        )),
    }
}

/// The JSON error for an envelope that cannot be decoded.
pub fn envelope_error(err: ProtocolError) -> AppError {
    match err {
        ProtocolError::Malformed(m) => AppError::bad_request("malformed_envelope", m),
        e @ ProtocolError::UnsupportedProtocol { .. } => {
            AppError::bad_request("unsupported_protocol", e.to_string())
        }
        ProtocolError::Invalid(m) => AppError::bad_request("invalid_envelope", m),
    }
}

/// One document the engine works on in this request.
#[derive(Debug)]
struct Work {
    /// The phone's heads (listed) or the announced heads (pushed).
    client_heads: Vec<ChangeHash>,
    msg: Option<Vec<u8>>,
    /// Index in the request's `docs`, or `None` for a document the server pushes unasked.
    listed: Option<usize>,
}

/// What the engine decided for one worked document.
struct Outcome {
    status: DocStatus,
    reason: Option<String>,
    /// The machine code of `reason`.
    code: Option<&'static str>,
    heads: Vec<ChangeHash>,
    msg: Option<Vec<u8>>,
    /// The accepted changes (already received into the cached document): their storage
    /// content, their count and the paths they wrote.
    accepted: Option<(DocContent, Checked)>,
    /// The cached document holds changes that were not accepted: drop it, so the next user
    /// loads what storage holds.
    evict: bool,
    state: Option<Vec<u8>>,
    quarantine: Option<QuarantineWrite>,
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

fn simple(
    id: &str,
    status: DocStatus,
    code: &'static str,
    reason: impl Into<String>,
    heads: &[ChangeHash],
) -> DocResponse {
    DocResponse {
        id: id.to_string(),
        status,
        reason: Some(reason.into()),
        code: Some(code.to_string()),
        heads: heads_to_wire(heads),
        msg: None,
    }
}

/// The blocking engine: everything between a decoded request and the encoded reply, ending
/// with one storage commit.
pub fn handle(
    state: &AppState,
    device: &Device,
    request: SyncRequest,
    bytes_up: usize,
) -> Result<(Vec<u8>, SyncCounts), AppError> {
    let storage = state.storage();
    let now = state.now();
    let account = storage
        .account(&device.account_id)?
        .filter(|a| !a.disabled)
        .ok_or_else(|| AppError::forbidden("the device's account is disabled"))?;
    let assignments = storage.assignments(Some(&account.id))?;
    let account_info = protocol::AccountInfo {
        id: account.id.clone(),
        roles: account
            .grants
            .phone_roles(assignments.iter().map(|a| a.community.as_str())),
        assignments: assignments
            .iter()
            .map(|a| protocol::BuildingRef {
                community: a.community.clone(),
                building: a.building.clone(),
            })
            .collect(),
    };
    let device_actor = format!("device:{}", device.id);
    let mut device_write = DeviceSyncWrite {
        device: device.id,
        account_id: account.id.clone(),
        at: now,
        app_version: request.app_version.chars().take(64).collect(),
        pending: i64::try_from(request.pending).unwrap_or(i64::MAX),
        bytes_up: bytes_up as i64,
        bytes_down: 0,
        reset_announced: false,
        manifest_digest: None,
        quarantine_budget: state.config().quarantine_budget,
    };

    // An app too old for this server keeps everything and is told to upgrade; nothing else.
    if request.schema < protocol::MIN_CLIENT_SCHEMA {
        let reason = format!(
            "this app writes schema {}, the server needs at least {}; upgrade the app \
             (your local changes are kept)",
            request.schema,
            protocol::MIN_CLIENT_SCHEMA
        );
        let response = SyncResponse {
            protocol: protocol::PROTOCOL_VERSION,
            schema: SCHEMA_VERSION,
            docs: request
                .docs
                .iter()
                .map(|d| {
                    simple(
                        &d.id,
                        DocStatus::UpgradeRequired,
                        "upgrade_required",
                        reason.clone(),
                        &[],
                    )
                })
                .collect(),
            manifest: None,
            account: Some(account_info),
        };
        let bytes = protocol::encode(&response);
        device_write.bytes_down = bytes.len() as i64;
        storage.commit(&Batch {
            device: Some(device_write),
            ..Batch::default()
        })?;
        return Ok((bytes, SyncCounts::default()));
    }

    let allowed: BTreeMap<DocId, DocMeta> = storage
        .account_documents(&account.id)?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    // The rules see the account as it is in each document's community: its roles there and its
    // buildings there.
    let writers: HashMap<&str, Writer> = allowed
        .values()
        .map(|meta| {
            let community = meta.community.as_str();
            let writer = Writer {
                account: account.id.clone(),
                roles: account.grants.roles_in(community),
                buildings: assignments
                    .iter()
                    .filter(|a| a.community == community)
                    .map(|a| a.building.clone())
                    .collect(),
                device: Some(device.id),
            };
            (community, writer)
        })
        .collect();
    let rows: HashMap<DocId, SyncRow> = storage
        .sync_rows(&device.id)?
        .into_iter()
        .map(|r| (r.doc.clone(), r))
        .collect();
    let known_valid = matches!(
        (&request.manifest, &device.manifest_digest),
        (Some(sent), Some(stored)) if sent.0 == *stored
    );

    let mut counts = SyncCounts::default();
    let mut listed_responses: Vec<Option<DocResponse>> = vec![None; request.docs.len()];
    // Undeliverable work held for an admin (documents this device no longer holds).
    let mut held: Vec<QuarantineWrite> = Vec::new();
    let mut work: BTreeMap<DocId, Work> = BTreeMap::new();
    for (i, entry) in request.docs.iter().enumerate() {
        let Ok(id) = entry.id.parse::<DocId>() else {
            listed_responses[i] = Some(simple(
                &entry.id,
                DocStatus::Gone,
                "bad_doc_id",
                "not a document id",
                &[],
            ));
            continue;
        };
        if !allowed.contains_key(&id) {
            let exists = storage.document_meta(&id)?.is_some();
            listed_responses[i] = Some(if exists {
                counts.forbidden += 1;
                let client_heads = sorted(
                    heads_from_wire(&entry.heads)
                        .map_err(|e| AppError::bad_request("invalid_envelope", e.to_string()))?,
                );
                let has_all = !client_heads.is_empty()
                    && state
                        .docs()
                        .read(&id, |doc| {
                            client_heads
                                .iter()
                                .all(|h| doc.get_change_by_hash(h).is_some())
                        })?
                        .unwrap_or(false);
                match &entry.msg {
                    // Everything this phone holds of it is here (delivered earlier, or held
                    // work an admin accepted): the phone may let the document go.
                    _ if has_all => simple(
                        &entry.id,
                        DocStatus::Forbidden,
                        "not_held",
                        "this device may not hold this document; the server has all of its changes",
                        &client_heads,
                    ),
                    // Work recorded while this phone held the document (before a reassignment)
                    // that never arrived: kept for an admin to accept, never applied unseen. A
                    // document this device never held (no sync row) is not offered to an admin.
                    Some(msg) if rows.contains_key(&id) => {
                        held.push(QuarantineWrite {
                            doc: id.clone(),
                            code: "held_for_review",
                            reason: "work this device may no longer deliver; held for an admin"
                                .into(),
                            payload: msg.0.clone(),
                            keep_whole: true,
                            audit: NewAuditEvent::new(
                                device_actor.clone(),
                                "sync.held",
                                id.to_string(),
                                serde_json::json!({ "account": account.id }),
                            ),
                        });
                        simple(
                            &entry.id,
                            DocStatus::Forbidden,
                            "held_for_review",
                            "this device may not hold this document; its changes are held for an admin",
                            &[],
                        )
                    }
                    _ => simple(
                        &entry.id,
                        DocStatus::Forbidden,
                        "not_held",
                        "this device may not hold this document",
                        &[],
                    ),
                }
            } else {
                simple(
                    &entry.id,
                    DocStatus::Gone,
                    "no_such_document",
                    "no such document",
                    &[],
                )
            });
            continue;
        }
        let client_heads = heads_from_wire(&entry.heads)
            .map_err(|e| AppError::bad_request("invalid_envelope", e.to_string()))?;
        work.insert(
            id,
            Work {
                client_heads: sorted(client_heads),
                msg: entry.msg.as_ref().map(|b| b.0.clone()),
                listed: Some(i),
            },
        );
    }
    if known_valid {
        // The phone holds every announced document at its announced heads; push the news.
        for (id, meta) in &allowed {
            if work.contains_key(id) {
                continue;
            }
            let announced = rows.get(id).and_then(|r| r.announced.clone());
            match announced {
                Some(heads) if sorted(heads.clone()) == sorted(meta.heads.clone()) => {}
                Some(heads) => {
                    work.insert(
                        id.clone(),
                        Work {
                            client_heads: sorted(heads),
                            msg: None,
                            listed: None,
                        },
                    );
                }
                None => {
                    work.insert(
                        id.clone(),
                        Work {
                            client_heads: Vec::new(),
                            msg: None,
                            listed: None,
                        },
                    );
                }
            }
        }
    }

    // Campaign definitions the rules need, read before any document of this request is locked.
    let mut campaigns: HashMap<String, Option<Campaign>> = HashMap::new();
    for (id, w) in &work {
        if w.msg.is_some()
            && let Some(c) = id.campaign()
            && !campaigns.contains_key(c)
        {
            campaigns.insert(c.to_string(), state.docs().campaign(c)?);
        }
    }

    // Lock every worked document, in ascending id order (the BTreeMap's), for the whole
    // request: the commit below must see the same documents the checks saw.
    let slots = work
        .keys()
        .map(|id| state.docs().slot(id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut guards = slots
        .iter()
        .map(|s| s.lock())
        .collect::<Result<Vec<_>, _>>()?;

    // Several server processes may share one PostgreSQL: a cached copy whose heads are not
    // the ones stored when this request began was changed by another process, and is loaded
    // again. (A change committed after that read is caught by the commit: `Stale`.)
    for ((id, _), guard) in work.iter().zip(guards.iter_mut()) {
        if let (Some(loaded), Some(meta)) = (guard.as_ref(), allowed.get(id))
            && !crate::docs::same_heads(Some(&meta.heads), &loaded.meta.heads)
        {
            **guard = None;
        }
    }

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(work.len());
    for ((id, w), guard) in work.iter().zip(guards.iter_mut()) {
        let loaded = match state.docs().ensure_loaded(id, guard) {
            Ok(loaded) => loaded,
            Err(e) => {
                // A document that cannot be loaded ends the request. The documents already
                // worked on may hold changes storage does not: drop them before unlocking.
                for (outcome, guard) in outcomes.iter().zip(guards.iter_mut()) {
                    if outcome.evict || outcome.accepted.is_some() {
                        **guard = None;
                    }
                }
                return Err(AppError::from(e));
            }
        };
        let outcome = match loaded {
            None => Outcome {
                status: DocStatus::Gone,
                reason: Some("no such document".into()),
                code: Some("no_such_document"),
                heads: Vec::new(),
                msg: None,
                accepted: None,
                evict: false,
                state: None,
                quarantine: None,
            },
            Some(loaded) => {
                let campaign = id
                    .campaign()
                    .and_then(|c| campaigns.get(c))
                    .and_then(|c| c.as_ref());
                let writer = allowed
                    .get(id)
                    .and_then(|meta| writers.get(meta.community.as_str()))
                    .expect("invariant: only documents the account may hold are worked on");
                let ctx = Context {
                    writer,
                    doc_id: id,
                    campaign,
                    now,
                };
                let stored_state = rows.get(id).and_then(|r| r.state.as_deref());
                work_one(state, &ctx, &device_actor, loaded, w, stored_state)
            }
        };
        match outcome.status {
            DocStatus::Rejected => counts.rejected += 1,
            DocStatus::Ok if outcome.accepted.is_some() => counts.changed += 1,
            _ => {}
        }
        if outcome.msg.is_some() {
            counts.pushed += 1;
        }
        outcomes.push(outcome);
    }

    // The reply's document entries: listed ones in request order, then pushed ones.
    let mut pushed_responses = Vec::new();
    let mut after_heads: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
    for ((id, w), outcome) in work.iter().zip(&outcomes) {
        if matches!(outcome.status, DocStatus::Ok | DocStatus::Rejected) {
            after_heads.insert(id.clone(), outcome.heads.clone());
        }
        let response = DocResponse {
            id: id.to_string(),
            status: outcome.status,
            reason: outcome.reason.clone(),
            code: outcome.code.map(str::to_string),
            heads: heads_to_wire(&outcome.heads),
            msg: outcome.msg.clone().map(Bytes),
        };
        match w.listed {
            Some(i) => listed_responses[i] = Some(response),
            None => pushed_responses.push(response),
        }
    }
    let mut doc_responses: Vec<DocResponse> = listed_responses.into_iter().flatten().collect();
    doc_responses.extend(pushed_responses);

    // The manifest, and what the device will know once it has read this reply.
    let mut sync_states: Vec<SyncStateWrite> = Vec::new();
    let mut announced_after: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
    let manifest = if known_valid {
        let mut removed = Vec::new();
        for (id, row) in &rows {
            let Some(heads) = &row.announced else {
                continue;
            };
            if allowed.contains_key(id) {
                announced_after.insert(id.clone(), heads.clone());
            } else {
                removed.push(id.to_string());
                sync_states.push(SyncStateWrite {
                    doc: id.clone(),
                    state: None,
                    announced: Announce::Clear,
                });
            }
        }
        removed.sort();
        for (id, heads) in &after_heads {
            announced_after.insert(id.clone(), heads.clone());
        }
        Manifest {
            digest: Bytes(Vec::new()),
            full: false,
            docs: Vec::new(),
            removed,
        }
    } else {
        device_write.reset_announced = true;
        for (id, meta) in &allowed {
            let heads = after_heads
                .get(id)
                .cloned()
                .unwrap_or_else(|| meta.heads.clone());
            announced_after.insert(id.clone(), heads);
        }
        Manifest {
            digest: Bytes(Vec::new()),
            full: true,
            docs: announced_after
                .iter()
                .map(|(id, heads)| ManifestEntry {
                    id: id.to_string(),
                    heads: heads_to_wire(heads),
                })
                .collect(),
            removed: Vec::new(),
        }
    };
    let id_strings: Vec<(String, Vec<ChangeHash>)> = announced_after
        .iter()
        .map(|(id, h)| (id.to_string(), h.clone()))
        .collect();
    let digest =
        protocol::manifest_digest(id_strings.iter().map(|(id, h)| (id.as_str(), h.as_slice())));
    let manifest = Manifest {
        digest: digest.clone(),
        ..manifest
    };
    device_write.manifest_digest = Some(digest.0.clone());

    // Sync rows: the new Automerge state where it changed, and the announced heads.
    let worked: BTreeSet<&DocId> = work.keys().collect();
    for ((id, _), outcome) in work.iter().zip(&outcomes) {
        let announced = match announced_after.get(id) {
            Some(heads) => Announce::Set(heads.clone()),
            None => Announce::Keep,
        };
        sync_states.push(SyncStateWrite {
            doc: id.clone(),
            state: outcome.state.clone(),
            announced,
        });
    }
    if !known_valid {
        for (id, heads) in &announced_after {
            if !worked.contains(id) {
                sync_states.push(SyncStateWrite {
                    doc: id.clone(),
                    state: None,
                    announced: Announce::Set(heads.clone()),
                });
            }
        }
    }

    let response = SyncResponse {
        protocol: protocol::PROTOCOL_VERSION,
        schema: SCHEMA_VERSION,
        docs: doc_responses,
        manifest: Some(manifest),
        account: Some(account_info),
    };
    let bytes = protocol::encode(&response);
    device_write.bytes_down = bytes.len() as i64;

    // One transaction for everything; memory changes only after it committed.
    let mut batch = Batch {
        device: Some(device_write),
        sync_states,
        ..Batch::default()
    };
    for ((id, _), (outcome, guard)) in work.iter().zip(outcomes.iter_mut().zip(guards.iter())) {
        if let (Some((content, checked)), Some(loaded)) = (&mut outcome.accepted, guard.as_ref()) {
            let changes = checked.changes;
            batch.documents.push(DocWrite {
                id: id.clone(),
                community: loaded.meta.community.clone(),
                content: content.clone(),
                heads: outcome.heads.clone(),
                base: Some(loaded.meta.heads.clone()),
                doc: &loaded.doc,
                checked: Some(std::mem::take(checked)),
            });
            batch.audit.push(NewAuditEvent::new(
                device_actor.clone(),
                "sync.accepted",
                id.to_string(),
                serde_json::json!({ "account": account.id, "changes": changes }),
            ));
        }
        if let Some(q) = &outcome.quarantine {
            batch.quarantine.push(q.clone());
        }
    }
    batch.quarantine.append(&mut held);
    let committed = storage.commit(&batch);
    drop(batch);
    // Documents holding changes that storage does not hold leave memory before their locks
    // are released: refused changes always, accepted ones when the commit failed.
    for (outcome, guard) in outcomes.iter().zip(guards.iter_mut()) {
        if outcome.evict || (committed.is_err() && outcome.accepted.is_some()) {
            **guard = None;
        }
    }
    if let Err(e) = committed {
        return Err(AppError::from(e));
    }
    for ((id, _), (outcome, guard)) in work.iter().zip(outcomes.into_iter().zip(guards.iter_mut()))
    {
        if let (Some((content, _)), Some(loaded)) = (outcome.accepted, guard.as_mut()) {
            state.docs().installed(loaded, &content);
            state.live().document(id, "sync");
        }
    }
    drop(guards);
    state.live().device(&device.id);
    tracing::info!(
        device = %device.id,
        docs = request.docs.len(),
        changed = counts.changed,
        rejected = counts.rejected,
        pushed = counts.pushed,
        bytes_up,
        bytes_down = bytes.len(),
        "sync"
    );
    Ok((bytes, counts))
}

/// Receive, check and answer one document.
///
/// automerge can panic on crafted input where doorstep does not call it guarded (core's
/// `doc::receive_sync_message` and `rules::check_changes` catch what the fuzzers found). Any
/// other panic while this document is worked on is refused like unapplicable changes and the
/// document leaves memory, so that it can never take down the request's thread while it holds
/// the document's lock, nor keep a half-received document cached.
fn work_one(
    state: &AppState,
    ctx: &Context<'_>,
    device_actor: &str,
    loaded: &mut crate::docs::Loaded,
    w: &Work,
    stored_state: Option<&[u8]>,
) -> Outcome {
    let before = loaded.doc.get_heads();
    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work_one_unguarded(state, ctx, device_actor, loaded, w, stored_state)
    }));
    worked.unwrap_or_else(|_| {
        let reason = "the changes cannot be applied: automerge failed on them".to_string();
        let payload = w.msg.clone().unwrap_or_default();
        rejected(
            ctx,
            device_actor,
            before,
            &payload,
            "unapplicable_changes",
            reason,
        )
    })
}

/// A refused document: its heads unchanged, the payload quarantined, the refusal audited, the
/// document dropped from memory.
fn rejected(
    ctx: &Context<'_>,
    device_actor: &str,
    before: Vec<ChangeHash>,
    payload: &[u8],
    code: &'static str,
    reason: String,
) -> Outcome {
    tracing::warn!(doc = %ctx.doc_id, device = %device_actor, code, %reason, "sync rejected");
    Outcome {
        status: DocStatus::Rejected,
        reason: Some(reason.clone()),
        code: Some(code),
        heads: sorted(before),
        msg: None,
        accepted: None,
        evict: true,
        state: None,
        quarantine: Some(QuarantineWrite {
            doc: ctx.doc_id.clone(),
            code,
            reason: reason.clone(),
            payload: payload.to_vec(),
            keep_whole: crate::admin::held::ACCEPTABLE.contains(&code),
            audit: NewAuditEvent::new(
                device_actor,
                "sync.rejected",
                ctx.doc_id.to_string(),
                serde_json::json!({ "account": ctx.writer.account, "code": code, "reason": reason }),
            ),
        }),
    }
}

fn work_one_unguarded(
    state: &AppState,
    ctx: &Context<'_>,
    device_actor: &str,
    loaded: &mut crate::docs::Loaded,
    w: &Work,
    stored_state: Option<&[u8]>,
) -> Outcome {
    let before = loaded.doc.get_heads();
    let mut sync_state = stored_state
        .and_then(|b| am_sync::State::decode(b).ok())
        .unwrap_or_default();
    let mut state_changed = false;
    let mut accepted: Option<(DocContent, Checked)> = None;
    let mut evict = false;

    if let Some(bytes) = &w.msg {
        // Optimistic: the changes are received into the cached document itself (no copy of
        // it); when they are refused, the document is dropped from memory before its lock is
        // released and the next user loads it from storage.
        let rejection = match am_sync::Message::decode(bytes) {
            Err(e) => Some((
                "malformed_message",
                format!("the sync message is malformed: {e}"),
            )),
            Ok(message) => {
                let mut received = sync_state.clone();
                let applied = doorstep_core::doc::receive_sync_message(
                    &mut loaded.doc,
                    &mut received,
                    message,
                );
                match applied {
                    Err(e) => {
                        evict = true;
                        Some((
                            "unapplicable_changes",
                            format!("the changes cannot be applied: {e}"),
                        ))
                    }
                    Ok(()) => {
                        // Changes waiting for dependencies the phone has not sent stay queued
                        // inside the document: never keep such a document in memory.
                        if !loaded.doc.get_missing_deps(&[]).is_empty() {
                            evict = true;
                        }
                        let after = loaded.doc.get_heads();
                        if after == before {
                            sync_state = received;
                            state_changed = true;
                            None
                        } else {
                            match rules::check_changes(ctx, &mut loaded.doc, &before) {
                                Ok(checked) => {
                                    let content = state.docs().content_for(
                                        &loaded.meta,
                                        &mut loaded.doc,
                                        &before,
                                    );
                                    accepted = Some((content, checked));
                                    sync_state = received;
                                    state_changed = true;
                                    None
                                }
                                Err(v) => {
                                    evict = true;
                                    Some((v.code(), v.detail))
                                }
                            }
                        }
                    }
                }
            }
        };
        if let Some((code, reason)) = rejection {
            let mut outcome = rejected(ctx, device_actor, before, bytes, code, reason);
            outcome.evict = evict;
            return outcome;
        }
    }

    let current: &mut AutoCommit = &mut loaded.doc;
    let heads = sorted(current.get_heads());
    let msg = if w.client_heads == heads {
        None
    } else {
        // When every head the phone reported is known here, the phone has exactly their
        // ancestors: send everything after them at once instead of negotiating with Bloom
        // filters over several round trips.
        let all_known = w
            .client_heads
            .iter()
            .all(|h| current.get_change_by_hash(h).is_some());
        if all_known {
            sync_state.their_heads = Some(w.client_heads.clone());
            sync_state.their_have = Some(vec![Have {
                last_sync: w.client_heads.clone(),
                bloom: BloomFilter::default(),
            }]);
            sync_state.their_need = Some(Vec::new());
        }
        state_changed = true;
        current
            .sync()
            .generate_sync_message(&mut sync_state)
            .map(|m| m.encode())
    };
    Outcome {
        status: DocStatus::Ok,
        reason: None,
        code: None,
        heads,
        msg,
        accepted,
        evict,
        state: state_changed.then(|| sync_state.encode()),
        quarantine: None,
    }
}
