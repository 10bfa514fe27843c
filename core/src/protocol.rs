//! The sync wire format shared by the phone and the server: the CBOR envelope of
//! `POST /api/v1/sync`, with one Automerge sync message per document inside.
//!
//! `docs/protocol.md` describes these bytes exactly; keep the two in step. Every struct here is
//! encoded as a CBOR map with text keys in the declared field order, definite lengths, and byte
//! strings (major type 2) for change hashes, digests and Automerge messages. Receivers ignore
//! keys they do not know, so fields can be added without a protocol bump.

use std::fmt;

use automerge::ChangeHash;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The envelope version this build speaks. A different value is refused with a clear error.
pub const PROTOCOL_VERSION: u64 = 1;

/// The codes of per-document answers that are not a write rule's (`docs/protocol.md` §5.1).
pub const DOC_CODES: &[&str] = &[
    "malformed_message",
    "unapplicable_changes",
    "not_held",
    "held_for_review",
    "bad_doc_id",
    "no_such_document",
    "upgrade_required",
];

/// The codes of a refused enrollment or sync request (`docs/protocol.md` §10).
pub const REQUEST_CODES: &[&str] = &[
    "malformed_envelope",
    "unsupported_protocol",
    "invalid_envelope",
    "unsupported_schema",
    "missing_token",
    "invalid_token",
    "device_revoked",
    "invalid_enrollment_code",
    "forbidden",
    "quarantine_full",
    "method_not_allowed",
    "timeout",
    "body_too_large",
    "unsupported_media_type",
    "invalid_json",
    "invalid_input",
    "internal",
    "unavailable",
];

/// The oldest document schema a phone may write and still sync; older phones get
/// `upgrade_required` for every document and keep their local changes until they upgrade.
///
/// Schema 2 is required at once: an app of schema 1 cannot say how a ballot came back, and a
/// proxy's signature must be on record for every ballot collected from now on. What such an
/// app recorded before its update is accepted after it (docs/protocol.md §12.1).
pub const MIN_CLIENT_SCHEMA: u64 = 2;

/// The media type of both the request and the successful reply.
pub const CONTENT_TYPE: &str = "application/cbor";

/// The sync endpoint's path on the server.
pub const SYNC_PATH: &str = "/api/v1/sync";

/// The enrollment endpoint's path on the server (JSON, not CBOR).
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// How many documents one request may name; far above what one phone holds.
pub const MAX_DOCS_PER_REQUEST: usize = 4096;

/// The length of a change hash on the wire.
pub const HASH_LEN: usize = 32;

/// The length of a manifest digest on the wire.
pub const DIGEST_LEN: usize = 16;

/// Why bytes are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not CBOR of the expected shape (random bytes, truncation, wrong types).
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The envelope is well formed but speaks another protocol version.
    #[error("unsupported protocol version {found}; this server speaks {PROTOCOL_VERSION}")]
    UnsupportedProtocol { found: u64 },
    /// A field has an impossible value (a hash of the wrong length, too many documents).
    #[error("invalid envelope: {0}")]
    Invalid(String),
}

/// A CBOR byte string. `Vec<u8>` alone would be encoded by serde as an array of integers.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h'{}'", hex::encode(&self.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CBOR byte string")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }

        // `byte_buf` rather than `bytes`: ciborium only hands out borrowed bytes up to its
        // scratch size, and reads long byte strings incrementally (a forged length cannot make
        // it allocate more than the body actually holds).
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// What the phone sends: every document it has something to say about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Always [`PROTOCOL_VERSION`].
    pub protocol: u64,
    /// The document schema this phone reads and writes (`doc::SCHEMA_VERSION`).
    pub schema: u64,
    /// The app's version string, recorded per device for the dashboard.
    pub app_version: String,
    /// How many documents hold local changes the server has not acknowledged yet.
    #[serde(default)]
    pub pending: u64,
    /// The digest of the manifest the phone last received (from `SyncResponse::manifest`),
    /// or null when it has none. It tells the server what the phone believes the server holds.
    #[serde(default)]
    pub manifest: Option<Bytes>,
    pub docs: Vec<DocRequest>,
}

/// One document in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRequest {
    /// The document id, e.g. `field/c1/3` (see `doc::DocId`).
    pub id: String,
    /// The phone's current heads for this document, 32 bytes each; empty when it holds nothing.
    pub heads: Vec<Bytes>,
    /// An encoded Automerge sync message (`automerge::sync::Message::encode`), or null.
    #[serde(default)]
    pub msg: Option<Bytes>,
}

/// What the server decided about one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    /// Accepted (or nothing to accept); `msg` may carry the server's changes.
    Ok,
    /// The phone's changes broke a rule; nothing of them was stored. `reason` says why.
    Rejected,
    /// This device may not hold this document (not, or no longer, assigned).
    Forbidden,
    /// No such document on the server.
    Gone,
    /// The phone's schema is too old for this server; it must upgrade and keep its changes.
    UpgradeRequired,
}

/// What the server sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u64,
    /// The schema the server writes.
    pub schema: u64,
    /// One entry per requested document, then one per document the server pushes unasked.
    pub docs: Vec<DocResponse>,
    /// What this device should hold. Null when the request itself was refused as a whole
    /// (`upgrade_required`).
    pub manifest: Option<Manifest>,
    /// Who the device works for now: roles and assigned buildings (they can change between
    /// syncs, and the phone's own rule checks need them).
    #[serde(default)]
    pub account: Option<AccountInfo>,
}

/// The account a device acts for, as the server currently sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub id: String,
    pub roles: Vec<crate::model::Role>,
    pub assignments: Vec<BuildingRef>,
}

/// One assigned building.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BuildingRef {
    pub community: String,
    pub building: String,
}

/// The server's answer for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocResponse {
    pub id: String,
    pub status: DocStatus,
    /// Why, for `rejected`, `forbidden`, `gone` and `upgrade_required`; null for `ok`.
    pub reason: Option<String>,
    /// The machine code of `reason` (a write rule's code for `rejected` changes); null for `ok`
    /// and absent from servers older than the codes (and from `ok` answers, whose bytes are
    /// unchanged by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The server's heads for this document after handling the request; empty when it has none.
    pub heads: Vec<Bytes>,
    /// An encoded Automerge sync message for the phone, or null.
    pub msg: Option<Bytes>,
}

/// The documents a device should hold, with the server's heads.
///
/// When `full` is true, `docs` lists every document and replaces what the phone knew. Otherwise
/// it is a change list against the manifest whose digest the phone sent: `docs` are added or have
/// new heads, `removed` are no longer the device's. Per-document `heads` in `SyncResponse::docs`
/// also update what the phone knows. `digest` names the result, to be echoed next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub digest: Bytes,
    pub full: bool,
    pub docs: Vec<ManifestEntry>,
    pub removed: Vec<String>,
}

/// One document of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub id: String,
    pub heads: Vec<Bytes>,
}

/// The JSON body of `POST /api/v1/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code shown on the dashboard (dashes and case do not matter).
    pub code: String,
    /// A label for the dashboard's device list, e.g. the phone model. Never a person's name.
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub app_version: String,
}

/// The JSON reply of a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The server-issued device id: the 16-byte prefix of every actor this phone uses.
    pub device_id: uuid::Uuid,
    /// The bearer token for `POST /api/v1/sync`. Shown once; the server keeps only its hash.
    pub device_token: String,
    /// The account the device acts for (written as `by` on records).
    pub account_id: String,
    /// The account's roles and assigned buildings at enrollment.
    pub account: AccountInfo,
    /// The server's clock at enrollment, ms since the epoch, so the phone can warn about skew.
    pub server_time: i64,
}

/// The JSON error body every endpoint returns on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code` and a human-readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Encode any envelope as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail and every envelope type serializes without error, so an
    // error here would be a programming mistake; it yields an empty body the peer rejects.
    if ciborium::into_writer(value, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Decode one CBOR item of type `T` that must span all of `bytes`.
fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    let mut cursor = bytes;
    let value: T = ciborium::from_reader(&mut cursor)
        .map_err(|e| ProtocolError::Malformed(describe_cbor_error(&e)))?;
    if !cursor.is_empty() {
        return Err(ProtocolError::Malformed(format!(
            "{} trailing bytes after the envelope",
            cursor.len()
        )));
    }
    Ok(value)
}

/// Words for a CBOR decoding error, without echoing the peer's bytes back.
fn describe_cbor_error<E: fmt::Debug>(e: &ciborium::de::Error<E>) -> String {
    match e {
        ciborium::de::Error::Io(_) => "truncated CBOR".to_string(),
        ciborium::de::Error::Syntax(at) => format!("CBOR syntax error at byte {at}"),
        ciborium::de::Error::Semantic(at, msg) => match at {
            Some(at) => format!("{msg} (at byte {at})"),
            None => msg.clone(),
        },
        ciborium::de::Error::RecursionLimitExceeded => "CBOR nested too deeply".to_string(),
    }
}

/// Only the version field, to tell "another protocol" from "garbage".
#[derive(Deserialize)]
struct VersionProbe {
    protocol: u64,
}

/// Decode and check a request: shape, protocol version, limits, hash lengths.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, ProtocolError> {
    let request: SyncRequest = match decode_exact(bytes) {
        Ok(request) => request,
        Err(err) => {
            // A future protocol may change the shape; say so instead of "malformed".
            if let Ok(probe) = decode_exact::<VersionProbe>(bytes)
                && probe.protocol != PROTOCOL_VERSION
            {
                return Err(ProtocolError::UnsupportedProtocol {
                    found: probe.protocol,
                });
            }
            return Err(err);
        }
    };
    if request.protocol != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedProtocol {
            found: request.protocol,
        });
    }
    if request.docs.len() > MAX_DOCS_PER_REQUEST {
        return Err(ProtocolError::Invalid(format!(
            "{} documents in one request; at most {MAX_DOCS_PER_REQUEST}",
            request.docs.len()
        )));
    }
    if let Some(digest) = &request.manifest
        && digest.0.len() != DIGEST_LEN
    {
        return Err(ProtocolError::Invalid(format!(
            "manifest digest has {} bytes, expected {DIGEST_LEN}",
            digest.0.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for doc in &request.docs {
        if doc.id.parse::<crate::doc::DocId>().is_err() {
            return Err(ProtocolError::Invalid(format!(
                "{:?} is not a document id",
                truncate(&doc.id)
            )));
        }
        heads_from_wire(&doc.heads)?;
        if !seen.insert(doc.id.as_str()) {
            return Err(ProtocolError::Invalid(format!(
                "document {:?} named twice",
                truncate(&doc.id)
            )));
        }
    }
    Ok(request)
}

/// Decode a reply (the phone's side); the same checks as for requests.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, ProtocolError> {
    let response: SyncResponse = decode_exact(bytes)?;
    if response.protocol != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedProtocol {
            found: response.protocol,
        });
    }
    for doc in &response.docs {
        heads_from_wire(&doc.heads)?;
    }
    if let Some(manifest) = &response.manifest {
        for entry in &manifest.docs {
            heads_from_wire(&entry.heads)?;
        }
    }
    Ok(response)
}

/// At most 64 characters of a peer-supplied string, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Change hashes as wire byte strings.
pub fn heads_to_wire(heads: &[ChangeHash]) -> Vec<Bytes> {
    heads.iter().map(|h| Bytes(h.0.to_vec())).collect()
}

/// Wire byte strings as change hashes; each must be exactly 32 bytes.
pub fn heads_from_wire(heads: &[Bytes]) -> Result<Vec<ChangeHash>, ProtocolError> {
    heads
        .iter()
        .map(|h| {
            <[u8; HASH_LEN]>::try_from(h.0.as_slice())
                .map(ChangeHash)
                .map_err(|_| {
                    ProtocolError::Invalid(format!(
                        "a head has {} bytes, expected {HASH_LEN}",
                        h.0.len()
                    ))
                })
        })
        .collect()
}

/// The digest naming a manifest: the first 16 bytes of SHA-256 over, for each document in
/// ascending byte order of its id, `u32be(len(id)) || id || u32be(n) || n sorted 32-byte heads`.
///
/// Only the server computes it; phones store it and send it back unchanged.
pub fn manifest_digest<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a [ChangeHash])>,
) -> Bytes {
    let mut sorted: Vec<(&str, Vec<ChangeHash>)> = entries
        .into_iter()
        .map(|(id, heads)| {
            let mut heads = heads.to_vec();
            heads.sort();
            (id, heads)
        })
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    for (id, heads) in sorted {
        hasher.update((id.len() as u32).to_be_bytes());
        hasher.update(id.as_bytes());
        hasher.update((heads.len() as u32).to_be_bytes());
        for head in heads {
            hasher.update(head.0);
        }
    }
    Bytes(hasher.finalize()[..DIGEST_LEN].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> SyncRequest {
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            schema: 1,
            app_version: "0.1.0".into(),
            pending: 1,
            manifest: None,
            docs: vec![DocRequest {
                id: "field/c1/3".into(),
                heads: vec![Bytes(vec![7; 32])],
                msg: Some(Bytes(vec![0x42, 1, 2])),
            }],
        }
    }

    #[test]
    fn request_round_trips_and_uses_byte_strings() {
        let request = sample_request();
        let bytes = encode(&request);
        // The head is a 32-byte byte string: 0x58 0x20 then the bytes.
        let needle = [&[0x58, 0x20][..], &[7; 32][..]].concat();
        assert!(bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
        assert_eq!(decode_request(&bytes), Ok(request));
    }

    #[test]
    fn garbage_truncation_and_trailing_bytes_are_errors() {
        let bytes = encode(&sample_request());
        for cut in 0..bytes.len() {
            assert!(decode_request(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_request(&long).is_err());
        assert!(decode_request(b"\xff\xfe garbage").is_err());
    }

    #[test]
    fn another_protocol_version_is_named() {
        let mut request = sample_request();
        request.protocol = 2;
        let err = decode_request(&encode(&request)).unwrap_err();
        assert_eq!(err, ProtocolError::UnsupportedProtocol { found: 2 });
    }

    #[test]
    fn short_heads_and_duplicate_ids_are_refused() {
        let mut request = sample_request();
        request.docs[0].heads = vec![Bytes(vec![1; 31])];
        assert!(matches!(
            decode_request(&encode(&request)),
            Err(ProtocolError::Invalid(_))
        ));
        let mut request = sample_request();
        request.docs.push(request.docs[0].clone());
        assert!(matches!(
            decode_request(&encode(&request)),
            Err(ProtocolError::Invalid(_))
        ));
    }

    #[test]
    fn digest_ignores_order() {
        let a = ChangeHash([1; 32]);
        let b = ChangeHash([2; 32]);
        let one = manifest_digest([("x", &[a, b][..]), ("y", &[][..])]);
        let two = manifest_digest([("y", &[][..]), ("x", &[b, a][..])]);
        assert_eq!(one, two);
        assert_eq!(one.0.len(), DIGEST_LEN);
        assert_ne!(one, manifest_digest([("x", &[a][..])]));
    }
}
