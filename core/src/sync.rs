//! The phone's sync client: enrollment, and `sync()`, which exchanges every document that has
//! news with the server over a [`Transport`] until neither side has anything left to send.
//!
//! The wire format is [`crate::protocol`] (described byte for byte in `docs/protocol.md`).
//! Each round trip is applied to the store in one transaction after the reply arrived, so a
//! network error, a lost reply or a crash leaves the store as it was before that round: the
//! next sync simply re-sends, and the server, which ignores changes it already has, stores
//! nothing twice.
//!
//! What the phone knows about the server is kept in two settings: the manifest (document id →
//! the server's heads, as last announced) and its digest, echoed in every request. A document
//! whose local heads equal the announced ones is not sent at all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::ChangeHash;
use automerge::sync::{self as am_sync, BloomFilter, Have, SyncDoc};
use serde::{Deserialize, Serialize};

use crate::doc::{DocId, Document, SCHEMA_VERSION, actor_device};
use crate::error::{Error, Result};
use crate::model::now_millis;
use crate::protocol::{
    self, AccountInfo, Bytes, DocRequest, DocStatus, EnrollRequest, EnrollResponse, ErrorBody,
    SyncRequest, heads_from_wire, heads_to_wire,
};
use crate::store::{self, ServerStatus, Store, Verdict, keys};

/// The peer name under which the server's sync states are kept in the store.
pub const SERVER_PEER: &str = "server";

/// Settings keys owned by the sync client.
pub mod sync_keys {
    /// JSON object: document id → the server's heads (hex), as last announced.
    pub const MANIFEST: &str = "sync.manifest";
    /// Hex digest of that manifest, echoed to the server.
    pub const MANIFEST_DIGEST: &str = "sync.manifest_digest";
}

/// A safety stop: a sync that has not gone quiet after this many round trips returns what it
/// did, and the next sync continues.
pub const MAX_ROUNDS: usize = 12;

/// Why a request did not get an answer the client can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer: no connection, DNS, TLS, timeout, a reset mid-body. Safe to retry.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error status and (usually) a JSON error body.
    #[error("server answered {status} {code}: {message}")]
    Http {
        status: u16,
        code: String,
        message: String,
    },
    /// The phone refused to send at all: e.g. `insecure_transport`, plain `http://` to a
    /// server that is not on this device. Not worth retrying until the address changes.
    #[error("refused on the phone ({code}): {message}")]
    Refused { code: String, message: String },
}

impl From<TransportError> for Error {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::Network(m) => Error::Network(m),
            // An overloaded or failing server (5xx) or rate limiting (429) is worth retrying
            // later, exactly like a dropped connection; other statuses are the server's refusal.
            e @ TransportError::Http { status, .. } if status == 429 || status >= 500 => {
                Error::Network(e.to_string())
            }
            TransportError::Http {
                status,
                code,
                message,
            } => Error::Server {
                message: format!("server answered {status} {code}: {message}"),
                code,
            },
            TransportError::Refused { code, message } => Error::Server { code, message },
        }
    }
}

/// How the client reaches the server. Blocking; call it off the UI thread.
pub trait Transport: Send + Sync {
    /// `POST /api/v1/sync` with the CBOR `body` and the device's bearer `token`; the reply body.
    fn post(&self, body: Vec<u8>, token: &str) -> std::result::Result<Vec<u8>, TransportError>;

    /// `POST /api/v1/enroll` with a JSON `body`; the reply body.
    fn enroll(&self, body: Vec<u8>) -> std::result::Result<Vec<u8>, TransportError>;
}

/// The default transport: blocking HTTPS through ureq with rustls (no OpenSSL), trusting the
/// Mozilla roots (or the roots given by [`HttpTransport::with_root_certificates`]).
///
/// Residents' names and phone numbers cross this connection, so plain `http://` is refused
/// (`insecure_transport`) unless the server is on this device (`localhost`, `127.0.0.0/8`,
/// `::1`: tests, an emulator's own server) or the app explicitly allows it
/// ([`HttpTransport::allow_plain_http`], e.g. a debug build against a LAN server).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base_url: String,
    agent: ureq::Agent,
    allow_plain_http: bool,
}

/// True when `base_url` may be used: `https://`, or `http://` to this device.
pub fn is_secure_or_local(base_url: &str) -> bool {
    let lower = base_url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Request bodies above this size are sent gzip-compressed.
const GZIP_ABOVE: usize = 1024;

/// gzip `bytes` (the default level: fast, and most of the gain).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The largest reply the HTTP transport reads (a reply may carry whole documents).
const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

impl HttpTransport {
    /// A transport to the server at `base_url` (e.g. `https://doorstep.example.org`).
    pub fn new(base_url: &str) -> HttpTransport {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpTransport {
            base_url: base_url.trim_end_matches('/').to_string(),
            agent,
            allow_plain_http: false,
        }
    }

    /// The same transport, allowed to use plain `http://` to any host (the app must decide
    /// this explicitly; the default refuses it except to this device).
    pub fn allow_plain_http(mut self) -> HttpTransport {
        self.allow_plain_http = true;
        self
    }

    /// The same transport, trusting only the PEM certificates in `pem` as roots (a street
    /// office's own certificate authority, or a test's self-signed certificate).
    pub fn with_root_certificates(
        self,
        pem: &[u8],
    ) -> std::result::Result<HttpTransport, TransportError> {
        let certs = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| TransportError::Refused {
                code: "bad_certificate".into(),
                message: format!("the root certificates are not PEM: {e}"),
            })?;
        if certs.is_empty() {
            return Err(TransportError::Refused {
                code: "bad_certificate".into(),
                message: "no certificate in the given PEM".into(),
            });
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Ok(HttpTransport { agent, ..self })
    }

    fn call(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> std::result::Result<Vec<u8>, TransportError> {
        if !self.allow_plain_http && !is_secure_or_local(&self.base_url) {
            return Err(TransportError::Refused {
                code: "insecure_transport".into(),
                message: "the server address must start with https:// (plain http:// only \
                          reaches a server on this device)"
                    .into(),
            });
        }
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.post(&url).content_type(content_type);
        // Many small changes of one phone share actors and keys: gzip shrinks them several
        // times over. Tiny requests (the manifest check) are not worth the header.
        let body = if body.len() > GZIP_ABOVE {
            request = request.header("Content-Encoding", "gzip");
            gzip(&body).map_err(|e| TransportError::Network(format!("compressing: {e}")))?
        } else {
            body
        };
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response = request
            .send(&body[..])
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| TransportError::Network(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            Err(http_error(status, &bytes))
        }
    }
}

/// A transport error from an HTTP status and the server's JSON error body (if it is one).
pub fn http_error(status: u16, body: &[u8]) -> TransportError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => TransportError::Http {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => TransportError::Http {
            status,
            code: "http_error".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

impl Transport for HttpTransport {
    fn post(&self, body: Vec<u8>, token: &str) -> std::result::Result<Vec<u8>, TransportError> {
        self.call(
            protocol::SYNC_PATH,
            protocol::CONTENT_TYPE,
            body,
            Some(token),
        )
    }

    fn enroll(&self, body: Vec<u8>) -> std::result::Result<Vec<u8>, TransportError> {
        self.call(protocol::ENROLL_PATH, "application/json", body, None)
    }
}

// ---------------------------------------------------------------------------------------------
// Enrollment.
// ---------------------------------------------------------------------------------------------

/// What a successful enrollment gives the phone.
pub type Enrollment = EnrollResponse;

/// Enroll with the server at `server_url` using a one-time `code` (over HTTPS).
pub fn enroll(server_url: &str, code: &str) -> Result<Enrollment> {
    enroll_with(
        &HttpTransport::new(server_url),
        code,
        "",
        env!("CARGO_PKG_VERSION"),
    )
}

/// Enroll through any transport. `label` names the phone on the dashboard (a model name,
/// never a person's name).
pub fn enroll_with(
    transport: &dyn Transport,
    code: &str,
    label: &str,
    app_version: &str,
) -> Result<Enrollment> {
    let body = serde_json::to_vec(&EnrollRequest {
        code: code.to_string(),
        label: label.to_string(),
        app_version: app_version.to_string(),
    })
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let reply = transport.enroll(body)?;
    serde_json::from_slice(&reply)
        .map_err(|e| Error::bad_reply(format!("the enrollment reply is not understood: {e}")))
}

/// Keep an enrollment in the store: device id, token, server URL and account, and forget any
/// manifest from an earlier enrollment (the new device starts from a full manifest).
pub fn save_enrollment(store: &mut Store, server_url: &str, enrollment: &Enrollment) -> Result<()> {
    let tx = store.transaction()?;
    store::set_device_id(&tx, &enrollment.device_id)?;
    store::put_setting(&tx, keys::DEVICE_TOKEN, &enrollment.device_token)?;
    store::put_setting(&tx, keys::SERVER_URL, server_url)?;
    store::put_setting(&tx, keys::ACCOUNT, &enrollment.account_id)?;
    store::delete_setting(&tx, sync_keys::MANIFEST)?;
    store::delete_setting(&tx, sync_keys::MANIFEST_DIGEST)?;
    tx.commit([])?;
    Ok(())
}

/// The replica identity an enrollment (or a later sync's account info) describes: the account,
/// its roles and buildings, and the server-issued device id. The community is that of the first
/// assigned building; `None` when the account has no building yet.
pub fn identity_of(device: uuid::Uuid, account: &AccountInfo) -> Option<crate::replica::Identity> {
    let community = account.assignments.first()?.community.clone();
    Some(crate::replica::Identity {
        account: account.id.clone(),
        community: community.clone(),
        roles: account.roles.clone(),
        buildings: account
            .assignments
            .iter()
            .filter(|a| a.community == community)
            .map(|a| a.building.clone())
            .collect(),
        device,
    })
}

// ---------------------------------------------------------------------------------------------
// Sync.
// ---------------------------------------------------------------------------------------------

/// What one `sync()` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// HTTP requests made.
    pub round_trips: usize,
    /// Request body bytes sent.
    pub bytes_up: usize,
    /// Reply body bytes received.
    pub bytes_down: usize,
    /// Documents whose local content changed (server news applied, or created).
    pub docs_changed: usize,
    /// Documents the server refused, with its machine code and reason. Their other documents
    /// synced; the app shows these and can [`reset_document`] each.
    pub rejected: Vec<Rejection>,
    /// Documents this device no longer holds (reassigned, deleted on the server) and that had
    /// no undelivered changes, so they were removed from the phone.
    pub dropped: Vec<DocId>,
    /// The server needs a newer app; nothing was changed and local work is kept.
    pub upgrade_required: bool,
    /// True when the last round found nothing more to send on either side.
    pub complete: bool,
    /// The account as the server sees it now (roles, assigned buildings).
    pub account: Option<AccountInfo>,
}

/// One document the server refused in a sync (or that this phone keeps undelivered work of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub doc: DocId,
    /// The stable machine code: a rule's code ([`crate::rules::Rule::code`]) when the write
    /// rules refused the changes, otherwise one of the server's sync codes (see
    /// `docs/protocol.md`), or `not_held` when the device no longer holds the document.
    pub code: String,
    /// The server's words, for logs and admins.
    pub reason: String,
}

/// The manifest the phone knows: document id → the server's heads.
type Known = BTreeMap<DocId, Vec<ChangeHash>>;

#[derive(Serialize, Deserialize)]
struct KnownJson(BTreeMap<String, Vec<String>>);

fn load_known(store: &Store) -> Result<Known> {
    let Some(text) = store::setting(store.conn(), sync_keys::MANIFEST)? else {
        return Ok(Known::new());
    };
    let json: KnownJson = serde_json::from_str(&text)
        .map_err(|e| Error::Corrupt(format!("the stored manifest: {e}")))?;
    let mut known = Known::new();
    for (id, heads) in json.0 {
        let id: DocId = id.parse()?;
        let heads = heads
            .iter()
            .map(|h| h.parse::<ChangeHash>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Corrupt(format!("the stored manifest: {e}")))?;
        known.insert(id, sorted(heads));
    }
    Ok(known)
}

fn known_json(known: &Known) -> Result<String> {
    let json = KnownJson(
        known
            .iter()
            .map(|(id, heads)| {
                (
                    id.to_string(),
                    heads.iter().map(|h| h.to_string()).collect(),
                )
            })
            .collect(),
    );
    serde_json::to_string(&json).map_err(|e| Error::Invalid(e.to_string()))
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

/// The phone's open documents, by id: the replica's own cache, which the sync client reads and
/// receives into, so one owner holds each document.
pub type OpenDocs = BTreeMap<DocId, Document>;

/// A document in flight this round: the sync state its message was generated with.
struct Open {
    state: am_sync::State,
}

/// Access to the phone's store and its open documents for the length of one closure: the sync
/// client takes them to build each request and to apply each reply, and gives them back while it
/// waits for the network, so the app's reads and actions never wait on a slow server.
pub trait StoreAccess {
    fn with_docs<T>(&self, f: impl FnOnce(&mut Store, &mut OpenDocs) -> Result<T>) -> Result<T>;
}

/// A store the caller owns outright (no one else can act meanwhile), with its own open documents.
struct Exclusive<'a>(std::cell::RefCell<(&'a mut Store, OpenDocs)>);

impl StoreAccess for Exclusive<'_> {
    fn with_docs<T>(&self, f: impl FnOnce(&mut Store, &mut OpenDocs) -> Result<T>) -> Result<T> {
        let mut inner = self.0.borrow_mut();
        let (store, docs) = &mut *inner;
        f(store, docs)
    }
}

/// The open document `id`, loaded from the store on first use; `None` when it is not held.
pub fn open_document<'d>(
    store: &Store,
    docs: &'d mut OpenDocs,
    id: &DocId,
    device: &uuid::Uuid,
) -> Result<Option<&'d mut Document>> {
    if !docs.contains_key(id) {
        match store.load_document(id, device)? {
            Some(doc) => {
                docs.insert(id.clone(), doc);
            }
            None => return Ok(None),
        }
    }
    Ok(docs.get_mut(id))
}

/// Sync every document with news until quiet, applying each round trip in one transaction.
///
/// Network and server errors return `Err` and leave the store exactly as the last completed
/// round left it. A document the server rejects does not stop the others.
pub fn sync(store: &mut Store, transport: &dyn Transport) -> Result<SyncReport> {
    sync_with(store, transport, env!("CARGO_PKG_VERSION"))
}

/// [`sync`] reporting `app_version` to the server (the app's own version string).
pub fn sync_with(
    store: &mut Store,
    transport: &dyn Transport,
    app_version: &str,
) -> Result<SyncReport> {
    sync_shared(
        &Exclusive(std::cell::RefCell::new((store, OpenDocs::new()))),
        transport,
        app_version,
    )
}

/// [`sync_with`] over a store others use meanwhile: the store is taken to build each request
/// (prepare) and to apply each reply (apply), never across the network. Actions recorded while
/// a request is in flight are kept: the reply is received into the same open document they were
/// recorded in, and their changes go out in the next round.
pub fn sync_shared(
    access: &impl StoreAccess,
    transport: &dyn Transport,
    app_version: &str,
) -> Result<SyncReport> {
    let (token, device) = access.with_docs(|store, _| {
        let token = store::setting(store.conn(), keys::DEVICE_TOKEN)?.ok_or(Error::NotEnrolled)?;
        Ok((token, store.device_id()?))
    })?;
    let mut report = SyncReport::default();
    // Documents the server refused this time are not offered again until the next sync.
    let mut settled: BTreeSet<DocId> = BTreeSet::new();

    for round in 0..MAX_ROUNDS {
        let Some((body, known, mut open)) = access
            .with_docs(|store, docs| prepare(store, docs, &device, &settled, round, app_version))?
        else {
            report.complete = true;
            break;
        };
        report.bytes_up += body.len();
        report.round_trips += 1;
        let reply = transport.post(body, &token)?;
        report.bytes_down += reply.len();
        let response = protocol::decode_response(&reply)
            .map_err(|e| Error::bad_reply(format!("the sync reply is not understood: {e}")))?;
        let quiet = access.with_docs(|store, docs| {
            apply(
                store,
                docs,
                &device,
                response,
                known,
                &mut open,
                &mut settled,
                &mut report,
            )
        })?;
        if report.upgrade_required {
            break;
        }
        if quiet && round > 0 {
            report.complete = true;
            break;
        }
    }
    Ok(report)
}

/// A round's encoded request, the manifest it was built from, and its documents in flight.
type Prepared = (Vec<u8>, Known, BTreeMap<DocId, Open>);

/// One round's request: every document whose local heads differ from what the server
/// announced, encoded, with what is needed to apply the reply; `None` when a later round has
/// nothing to offer.
fn prepare(
    store: &mut Store,
    docs: &mut OpenDocs,
    device: &uuid::Uuid,
    settled: &BTreeSet<DocId>,
    round: usize,
    app_version: &str,
) -> Result<Option<Prepared>> {
    let device = *device;
    let known = load_known(store)?;
    let digest = store::setting(store.conn(), sync_keys::MANIFEST_DIGEST)?
        .and_then(|h| hex::decode(h).ok())
        .filter(|d| d.len() == protocol::DIGEST_LEN);
    let held: BTreeSet<DocId> = store.document_ids()?.into_iter().collect();

    // Offer every document whose local heads differ from what the server announced.
    let mut open: BTreeMap<DocId, Open> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut pending = 0u64;
    for id in held.iter().chain(known.keys()) {
        if settled.contains(id) || open.contains_key(id) {
            continue;
        }
        let announced = known.get(id);
        // A held document whose heads equal the announced ones has nothing to send: its heads
        // come from the open copy or the store's heads column, and it is never loaded.
        if held.contains(id) {
            let local = match docs.get_mut(id) {
                Some(doc) => sorted(doc.heads()),
                None => sorted(store::stored_heads(store.conn(), id)?.unwrap_or_default()),
            };
            if announced == Some(&local) {
                continue;
            }
        }
        let mut fresh;
        let doc = match open_document(store, docs, id, &device)? {
            Some(doc) => doc,
            None => {
                fresh = Document::new(id.clone(), &device);
                &mut fresh
            }
        };
        let local = sorted(doc.heads());
        let mut state = match store::sync_state(store.conn(), id, SERVER_PEER)? {
            Some(bytes) => am_sync::State::decode(&bytes).unwrap_or_default(),
            None => am_sync::State::new(),
        };
        // Send at once everything after what the server is known to have: its announced
        // heads when this phone has them all, else the heads both last shared.
        let base = match announced {
            Some(h)
                if h.iter()
                    .all(|c| doc.automerge().get_change_by_hash(c).is_some()) =>
            {
                h.clone()
            }
            _ => state.shared_heads.clone(),
        };
        if let Some(h) = announced {
            state.their_heads = Some(h.clone());
        }
        state.their_have = Some(vec![Have {
            last_sync: base,
            bloom: BloomFilter::default(),
        }]);
        state.their_need = Some(Vec::new());
        let msg = doc.automerge().sync().generate_sync_message(&mut state);
        let msg = msg
            .map(|m| bundled(doc, m).map(|m| Bytes(m.encode())))
            .transpose()?;
        if has_own_changes(doc, announced.map(Vec::as_slice).unwrap_or(&[]), &device) {
            pending += 1;
        }
        entries.push(DocRequest {
            id: id.to_string(),
            heads: heads_to_wire(&local),
            msg,
        });
        open.insert(id.clone(), Open { state });
    }
    if entries.is_empty() && round > 0 {
        return Ok(None);
    }

    let request = SyncRequest {
        protocol: protocol::PROTOCOL_VERSION,
        schema: SCHEMA_VERSION,
        app_version: app_version.to_string(),
        pending,
        manifest: digest.map(Bytes),
        docs: entries,
    };
    Ok(Some((protocol::encode(&request), known, open)))
}

/// The message with its changes as one uncompressed bundle when it carries several
/// (`bundle::bundle_changes`): the many one-action changes of a day share their actors, keys and
/// dependency hashes, and the request's gzip compresses all their columns as one stream. The
/// receiver loads it like any change chunk and recomputes every change's hash; nothing is stored
/// in this form, so the bundle format only has to be shared by the phone and the server at the
/// same automerge pin.
fn bundled(doc: &mut Document, message: am_sync::Message) -> Result<am_sync::Message> {
    let id = doc.id().clone();
    crate::bundle::bundle_changes(doc.automerge(), message)
        .map_err(|e| Error::Corrupt(format!("{id}: {e}")))
}

/// True when `doc` holds changes made on this device after `base`: work not yet delivered.
fn has_own_changes(doc: &mut Document, base: &[ChangeHash], device: &uuid::Uuid) -> bool {
    doc.automerge()
        .get_changes(base)
        .iter()
        .any(|c| actor_device(c.actor_id()) == Some(*device))
}

/// Apply one reply: receive the server's messages into the documents (in memory), then store
/// documents, sync states, statuses and the manifest in one transaction. Returns true when the
/// reply carried no message at all (the server had nothing to send).
#[allow(clippy::too_many_arguments)]
fn apply(
    store: &mut Store,
    docs: &mut OpenDocs,
    device: &uuid::Uuid,
    response: protocol::SyncResponse,
    known: Known,
    open: &mut BTreeMap<DocId, Open>,
    settled: &mut BTreeSet<DocId>,
    report: &mut SyncReport,
) -> Result<bool> {
    let mut touched: BTreeSet<DocId> = BTreeSet::new();
    let outcome = apply_reply(
        store,
        docs,
        device,
        response,
        known,
        open,
        settled,
        report,
        &mut touched,
    );
    // Open documents that received news the store did not keep are read again from the store;
    // an empty one (nothing arrived) is not a document this phone holds.
    for id in &touched {
        if outcome.is_err() || docs.get_mut(id).is_some_and(|d| d.heads().is_empty()) {
            docs.remove(id);
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
fn apply_reply(
    store: &mut Store,
    docs: &mut OpenDocs,
    device: &uuid::Uuid,
    response: protocol::SyncResponse,
    mut known: Known,
    open: &mut BTreeMap<DocId, Open>,
    settled: &mut BTreeSet<DocId>,
    report: &mut SyncReport,
    touched: &mut BTreeSet<DocId>,
) -> Result<bool> {
    let now = now_millis();
    let mut quiet = true;
    let mut statuses: Vec<(DocId, ServerStatus)> = Vec::new();
    let mut to_drop: Vec<DocId> = Vec::new();

    // First pass, in memory only: receive every message.
    for entry in &response.docs {
        let Ok(id) = entry.id.parse::<DocId>() else {
            continue;
        };
        let heads =
            sorted(heads_from_wire(&entry.heads).map_err(|e| Error::bad_reply(e.to_string()))?);
        let status = |verdict| ServerStatus {
            verdict,
            reason: entry.reason.clone(),
            code: entry.code.clone(),
            server_heads: heads.clone(),
            at: now,
        };
        match entry.status {
            DocStatus::Ok => {
                if let Some(msg) = &entry.msg {
                    quiet = false;
                    if !open.contains_key(&id) {
                        let state = match store::sync_state(store.conn(), &id, SERVER_PEER)? {
                            Some(b) => am_sync::State::decode(&b).unwrap_or_default(),
                            None => am_sync::State::new(),
                        };
                        open.insert(id.clone(), Open { state });
                    }
                    let slot = open
                        .get_mut(&id)
                        .ok_or_else(|| Error::NotFound(id.to_string()))?;
                    let message = am_sync::Message::decode(&msg.0).map_err(|e| {
                        Error::bad_reply(format!("{id}: the server's message is malformed: {e}"))
                    })?;
                    if open_document(store, docs, &id, device)?.is_none() {
                        docs.insert(id.clone(), Document::new(id.clone(), device));
                    }
                    touched.insert(id.clone());
                    let doc = docs
                        .get_mut(&id)
                        .ok_or_else(|| Error::NotFound(id.to_string()))?;
                    let before = doc.heads();
                    crate::doc::receive_sync_message(doc.automerge(), &mut slot.state, message)?;
                    if doc.heads() != before {
                        report.docs_changed += 1;
                    }
                }
                known.insert(id.clone(), heads.clone());
                statuses.push((id, status(Verdict::Ok)));
            }
            DocStatus::Rejected => {
                report.rejected.push(Rejection {
                    doc: id.clone(),
                    // A server older than the codes sent only words.
                    code: entry.code.clone().unwrap_or_else(|| "rejected".into()),
                    reason: entry.reason.clone().unwrap_or_default(),
                });
                known.insert(id.clone(), heads.clone());
                settled.insert(id.clone());
                statuses.push((id, status(Verdict::Rejected)));
            }
            DocStatus::Forbidden | DocStatus::Gone => {
                let verdict = match entry.status {
                    DocStatus::Forbidden => Verdict::Forbidden,
                    _ => Verdict::Gone,
                };
                known.remove(&id);
                settled.insert(id.clone());
                to_drop.push(id.clone());
                statuses.push((id, status(verdict)));
            }
            DocStatus::UpgradeRequired => {
                report.upgrade_required = true;
                settled.insert(id.clone());
                // The server applied nothing and said nothing of its heads: what it had before
                // stays what this phone has delivered (its pending count does not jump).
                let had = store::server_status(store.conn(), &id)?
                    .map(|s| s.server_heads)
                    .unwrap_or_default();
                statuses.push((
                    id,
                    ServerStatus {
                        server_heads: had,
                        ..status(Verdict::UpgradeRequired)
                    },
                ));
            }
        }
    }

    // The manifest: what the device should hold now.
    let mut digest = None;
    if let Some(manifest) = &response.manifest {
        if manifest.full {
            let mut fresh = Known::new();
            for entry in &manifest.docs {
                let Ok(id) = entry.id.parse::<DocId>() else {
                    continue;
                };
                let heads = sorted(
                    heads_from_wire(&entry.heads).map_err(|e| Error::bad_reply(e.to_string()))?,
                );
                fresh.insert(id, heads);
            }
            for id in known.keys().chain(store.document_ids()?.iter()) {
                if !fresh.contains_key(id) && !settled.contains(id) {
                    to_drop.push(id.clone());
                }
            }
            known = fresh;
        } else {
            for entry in &manifest.docs {
                let Ok(id) = entry.id.parse::<DocId>() else {
                    continue;
                };
                let heads = sorted(
                    heads_from_wire(&entry.heads).map_err(|e| Error::bad_reply(e.to_string()))?,
                );
                known.insert(id, heads);
            }
            for removed in &manifest.removed {
                if let Ok(id) = removed.parse::<DocId>() {
                    known.remove(&id);
                    to_drop.push(id);
                }
            }
        }
        digest = Some(hex::encode(&manifest.digest.0));
    }
    if response.account.is_some() {
        report.account.clone_from(&response.account);
    }

    // Which of the documents to drop can go: only those without undelivered local work.
    let mut dropping = Vec::new();
    let mut looked_at = BTreeSet::new();
    for id in to_drop {
        if !looked_at.insert(id.clone()) {
            continue;
        }
        let Some(doc) = open_document(store, docs, &id, device)? else {
            continue;
        };
        if doc.heads().is_empty() {
            continue;
        }
        // What the server has: the heads it answered with now (a server that holds all of this
        // phone's changes to a document it may no longer hold says so), else the last known.
        let answered = statuses
            .iter()
            .find(|(s, _)| s == &id)
            .map(|(_, st)| st.server_heads.clone());
        let base = match answered {
            Some(heads) if !heads.is_empty() => heads,
            _ => store::server_status(store.conn(), &id)?
                .map(|s| s.server_heads)
                .unwrap_or_default(),
        };
        if has_own_changes(doc, &base, device) {
            let held = statuses
                .iter()
                .any(|(s, st)| s == &id && st.code.as_deref() == Some("held_for_review"));
            report.rejected.push(Rejection {
                doc: id.clone(),
                code: if held { "held_for_review" } else { "not_held" }.into(),
                reason: if held {
                    "this device no longer holds this document; its undelivered changes wait for an admin"
                } else {
                    "this device no longer holds this document; its undelivered changes are kept"
                }
                .into(),
            });
        } else {
            dropping.push(id);
        }
    }

    // Second pass: one transaction for everything.
    let tx = store.transaction()?;
    let mut saved = Vec::new();
    let mut states = Vec::new();
    for (id, doc) in docs.iter_mut() {
        if !touched.contains(id) || dropping.contains(id) {
            continue;
        }
        if doc.heads().is_empty() {
            continue;
        }
        if let Some(slot) = open.get(id) {
            states.push((id.clone(), slot.state.encode()));
        }
        saved.push(tx.save(doc)?);
    }
    for (id, state) in &states {
        store::put_sync_state(&tx, id, SERVER_PEER, state)?;
    }
    for (id, status) in &statuses {
        store::put_server_status(&tx, id, status)?;
    }
    for (id, heads) in &known {
        if !statuses.iter().any(|(s, _)| s == id) {
            store::put_server_status(
                &tx,
                id,
                &ServerStatus {
                    verdict: Verdict::Ok,
                    reason: None,
                    code: None,
                    server_heads: heads.clone(),
                    at: now,
                },
            )?;
        }
    }
    for id in &dropping {
        if store::delete_document(&tx, id)? {
            report.dropped.push(id.clone());
        }
    }
    if let Some(digest) = digest {
        store::put_setting(&tx, sync_keys::MANIFEST, &known_json(&known)?)?;
        store::put_setting(&tx, sync_keys::MANIFEST_DIGEST, &digest)?;
    }
    tx.commit(saved)?;
    for id in &dropping {
        docs.remove(id);
    }
    Ok(quiet)
}

/// Forget one document the server refused, so the next sync fetches the server's state. The
/// other documents and their undelivered changes are untouched. The document stays in the
/// known manifest, so the next sync asks for it even though it is no longer held.
pub fn reset_document(store: &mut Store, id: &DocId) -> Result<()> {
    let tx = store.transaction()?;
    store::delete_document(&tx, id)?;
    tx.commit([])?;
    Ok(())
}

#[cfg(test)]
mod transport_error_tests {
    use super::*;

    #[test]
    fn busy_or_failing_servers_mean_retry_later_and_refusals_do_not() {
        let http = |status: u16| TransportError::Http {
            status,
            code: "x".into(),
            message: String::new(),
        };
        assert!(matches!(Error::from(http(503)), Error::Network(_)));
        assert!(matches!(Error::from(http(429)), Error::Network(_)));
        // A refusal keeps the server's code: the app matches on it.
        assert!(matches!(Error::from(http(401)), Error::Server { code, .. } if code == "x"));
        assert_eq!(Error::from(http(422)).code(), "x");
    }
}
