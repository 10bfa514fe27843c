//! `sync_envelope`: the CBOR envelope of `POST /api/v1/sync` from arbitrary bytes, as the server
//! decodes a request (`protocol::decode_request`) and a phone decodes a reply
//! (`protocol::decode_response`).
//!
//! Shared by the fuzz target and `core/tests/fuzz_crashers.rs` (included there with `#[path]`),
//! so it uses only doorstep-core and its dependencies.

use doorstep_core::doc::DocId;
use doorstep_core::protocol::{self, ProtocolError};

/// Decode `data` both ways. Panics (the fuzzer's crash) when a decoder panics, or when an
/// envelope it accepted does not survive its own encoding unchanged.
pub fn run(data: &[u8]) {
    if let Some(request) = outcome(protocol::decode_request(data)) {
        for doc in &request.docs {
            // Accepted ids are the canonical string of the id they parse to: the server keys
            // storage by that string.
            let id: DocId = doc.id.parse().expect("an accepted document id parses");
            assert_eq!(id.to_string(), doc.id, "a document id is not canonical");
        }
        let again = protocol::decode_request(&protocol::encode(&request));
        assert_eq!(
            again.as_ref(),
            Ok(&request),
            "a request does not round-trip"
        );
    }
    if let Some(response) = outcome(protocol::decode_response(data)) {
        let again = protocol::decode_response(&protocol::encode(&response));
        assert_eq!(
            again.as_ref(),
            Ok(&response),
            "a response does not round-trip"
        );
    }
}

/// The value, or `None` for a typed refusal (every error variant carries words for the peer).
fn outcome<T>(result: Result<T, ProtocolError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ProtocolError::Malformed(why) | ProtocolError::Invalid(why)) => {
            assert!(!why.is_empty(), "an envelope error without words");
            None
        }
        Err(ProtocolError::UnsupportedProtocol { found }) => {
            assert_ne!(found, protocol::PROTOCOL_VERSION);
            None
        }
    }
}
