//! A document's new changes as they travel in a sync message: one automerge *bundle* (the
//! document format's column encoding over a set of changes, which the receiver loads like any
//! change chunk and whose every hash it recomputes) with its columns left uncompressed.
//!
//! automerge compresses each column of a bundle on its own (DEFLATE, above 256 bytes). The sync
//! request is gzip-compressed as a whole on its way (`sync::gzip`), and one stream over all the
//! columns finds what the columns repeat of each other — every record's UUID is a map key in one
//! column and its `id` field in another — where column-by-column compression pays for it twice.
//! So the phone sends the bundle inflated: the day-offline request of `bench_sync` went from
//! 3,280 to about 2,850 bytes on the wire (docs/perf.md, "Sync (server)").
//!
//! automerge 0.12 builds the uncompressed form but does not expose it, so [`inflate`] undoes the
//! compression of its output, following the chunk layout of automerge's `storage/bundle`
//! (header; dependencies and actors; the changes' columns and data; the operations' columns and
//! data). Its test loads the result with automerge itself, so a format change at a version bump
//! fails there and not on a phone.

use std::io::Read as _;

use automerge::sync::{ChunkList, Message};
use automerge::{AutoCommit, AutomergeError, Change, ChangeHash};
use sha2::{Digest, Sha256};

/// The chunk magic bytes every automerge storage chunk starts with.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// automerge's chunk type of a bundle.
const BUNDLE: u8 = 3;
/// The bit of a column's specification that says its data is DEFLATE-compressed.
const DEFLATE: u64 = 0b1000;

/// Why a message's changes could not be bundled.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("a change of its own does not parse: {0}")]
    Change(String),
    #[error("automerge could not bundle the changes: {0}")]
    Automerge(#[from] AutomergeError),
    #[error("automerge's bundle is not in the layout doorstep reads: {0}")]
    Layout(&'static str),
}

/// `message` with its changes (the sender's own, as `generate_sync_message` put them) as one
/// uncompressed bundle when it carries several; as it is otherwise.
pub fn bundle_changes(doc: &AutoCommit, mut message: Message) -> Result<Message, BundleError> {
    if message.changes.len() < 2 {
        return Ok(message);
    }
    let hashes = message
        .changes
        .iter()
        .map(|chunk| Change::from_bytes(chunk.to_vec()).map(|c| c.hash()))
        .collect::<Result<Vec<ChangeHash>, _>>()
        .map_err(|e| BundleError::Change(e.to_string()))?;
    let bundle = doc.bundle(hashes)?;
    message.changes = ChunkList::from(vec![inflate(bundle.bytes())?]);
    Ok(message)
}

/// A bundle chunk with every compressed column inflated (and its checksum recomputed); a chunk
/// with none is returned as it was.
pub fn inflate(chunk: &[u8]) -> Result<Vec<u8>, BundleError> {
    let mut r = Reader { bytes: chunk };
    if r.take(4)? != MAGIC {
        return Err(BundleError::Layout("no chunk magic"));
    }
    r.take(4)?; // the checksum, recomputed below
    if r.take(1)? != [BUNDLE] {
        return Err(BundleError::Layout("not a bundle chunk"));
    }
    let len = usize::try_from(r.leb()?).map_err(|_| BundleError::Layout("chunk length"))?;
    let data = r.take(len)?;
    if !r.bytes.is_empty() {
        return Err(BundleError::Layout("bytes after the chunk"));
    }

    let mut r = Reader { bytes: data };
    // Dependencies (32-byte hashes), then actors (length-prefixed), copied as they are.
    let deps = r.leb()?;
    for _ in 0..deps {
        r.take(32)?;
    }
    for _ in 0..r.leb()? {
        let n = usize::try_from(r.leb()?).map_err(|_| BundleError::Layout("actor length"))?;
        r.take(n)?;
    }
    let mut out = data[..data.len() - r.bytes.len()].to_vec();
    let mut inflated_any = false;
    // The changes' columns, then the operations': a count, (specification, length) pairs, then
    // the columns' data one after another.
    for _ in 0..2 {
        let count = r.leb()?;
        let mut columns = Vec::new();
        for _ in 0..count {
            columns.push((r.leb()?, r.leb()?));
        }
        let mut meta = Vec::new();
        let mut body = Vec::new();
        write_leb(&mut meta, count);
        for (spec, len) in columns {
            let len = usize::try_from(len).map_err(|_| BundleError::Layout("column length"))?;
            let stored = r.take(len)?;
            let before = body.len();
            if spec & DEFLATE != 0 {
                flate2::read::DeflateDecoder::new(stored)
                    .read_to_end(&mut body)
                    .map_err(|_| BundleError::Layout("a column does not inflate"))?;
                inflated_any = true;
            } else {
                body.extend_from_slice(stored);
            }
            write_leb(&mut meta, spec & !DEFLATE);
            write_leb(&mut meta, (body.len() - before) as u64);
        }
        out.extend_from_slice(&meta);
        out.extend_from_slice(&body);
    }
    if !r.bytes.is_empty() {
        return Err(BundleError::Layout("bytes after the operations' columns"));
    }
    if !inflated_any {
        return Ok(chunk.to_vec());
    }
    let mut typed = vec![BUNDLE];
    write_leb(&mut typed, out.len() as u64);
    let hash = Sha256::new()
        .chain_update(&typed)
        .chain_update(&out)
        .finalize();
    let mut inflated = Vec::with_capacity(8 + typed.len() + out.len());
    inflated.extend_from_slice(&MAGIC);
    inflated.extend_from_slice(&hash[..4]);
    inflated.extend_from_slice(&typed);
    inflated.extend_from_slice(&out);
    Ok(inflated)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if n > self.bytes.len() {
            return Err(BundleError::Layout("the chunk ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn leb(&mut self) -> Result<u64, BundleError> {
        leb128::read::unsigned(&mut self.bytes).map_err(|_| BundleError::Layout("a number"))
    }
}

fn write_leb(out: &mut Vec<u8>, n: u64) {
    leb128::write::unsigned(out, n).expect("invariant: writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc as _;
    use automerge::transaction::Transactable as _;
    use automerge::{ROOT, ReadDoc as _};

    /// A document with many one-record changes, each record under a UUID-like key that its `id`
    /// field repeats (as doorstep's records are), whose columns pass automerge's 256-byte
    /// threshold, so its bundle has compressed columns.
    fn busy_doc() -> (AutoCommit, Vec<ChangeHash>) {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "schema", 1).unwrap();
        let base = doc.get_heads();
        for i in 0..60u64 {
            // Unpredictable like a UUID's random bits, but the same in every run.
            let h = hex::encode(Sha256::digest(i.to_le_bytes()));
            let id = format!(
                "0190b000-{}-7{}-8{}-{}",
                &h[..4],
                &h[4..7],
                &h[7..10],
                &h[10..22]
            );
            let record = doc
                .put_object(ROOT, id.as_str(), automerge::ObjType::Map)
                .unwrap();
            doc.put(&record, "id", id.as_str()).unwrap();
            doc.put(&record, "unit", format!("3-1-{}", 101 + i % 14))
                .unwrap();
            doc.put(&record, "at", 1_790_000_000_000i64 + i as i64 * 61_000)
                .unwrap();
            doc.commit();
        }
        (doc, base)
    }

    #[test]
    fn an_inflated_bundle_loads_as_the_same_changes_and_compresses_better_whole() {
        let (mut doc, base) = busy_doc();
        let hashes: Vec<ChangeHash> = doc.get_changes(&base).iter().map(|c| c.hash()).collect();
        let bundle = doc.bundle(hashes.clone()).unwrap();
        let inflated = inflate(bundle.bytes()).unwrap();
        assert!(
            inflated.len() > bundle.bytes().len(),
            "columns were compressed"
        );
        // Inflating again changes nothing.
        assert_eq!(inflate(&inflated).unwrap(), inflated);

        // automerge loads it on a copy of the document before the changes: same heads, same
        // records.
        let mut receiver = doc.fork_at(&base).unwrap();
        receiver.load_incremental(&inflated).unwrap();
        assert_eq!(receiver.get_heads(), doc.get_heads());
        assert_eq!(receiver.save(), doc.save());

        let gz = |b: &[u8]| crate::sync::gzip(b).unwrap().len();
        assert!(
            gz(&inflated) < gz(bundle.bytes()),
            "gzip of the inflated bundle {} against the compressed one's {}",
            gz(&inflated),
            gz(bundle.bytes())
        );
    }

    #[test]
    fn a_sync_message_carries_one_inflated_bundle_the_receiver_applies() {
        let (mut doc, base) = busy_doc();
        let mut receiver = doc.fork_at(&base).unwrap();
        let mut state = automerge::sync::State::new();
        state.their_heads = Some(base.clone());
        state.their_have = Some(vec![automerge::sync::Have {
            last_sync: base.clone(),
            bloom: automerge::sync::BloomFilter::default(),
        }]);
        state.their_need = Some(Vec::new());
        let message = doc.sync().generate_sync_message(&mut state).unwrap();
        assert!(message.changes.len() > 1);
        let message = bundle_changes(&doc, message).unwrap();
        assert_eq!(message.changes.len(), 1);
        let mut theirs = automerge::sync::State::new();
        receiver
            .sync()
            .receive_sync_message(&mut theirs, Message::decode(&message.encode()).unwrap())
            .unwrap();
        assert_eq!(receiver.get_heads(), doc.get_heads());
        assert_eq!(receiver.length(ROOT), doc.length(ROOT));
    }

    #[test]
    fn what_is_not_a_bundle_is_refused_by_name() {
        let (mut doc, base) = busy_doc();
        let changes = doc.get_changes(&base);
        let change = changes[0].raw_bytes().to_vec();
        let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
        assert!(matches!(
            inflate(&change),
            Err(BundleError::Layout("not a bundle chunk"))
        ));
        let bundle = doc.bundle(hashes).unwrap();
        let bytes = bundle.bytes();
        assert!(matches!(
            inflate(&bytes[..bytes.len() - 1]),
            Err(BundleError::Layout(_))
        ));
        assert!(matches!(inflate(&[1, 2, 3]), Err(BundleError::Layout(_))));
    }
}
