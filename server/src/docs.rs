//! Documents on the server: an in-memory cache of loaded Automerge documents (evicted when
//! idle), and the server's own changes (admin edits, imports, publication), each checked by
//! core's rules and stored with its projections and an audit event in one transaction.
//!
//! Every cached document sits in its own mutex. Whoever changes a document works on a fork,
//! commits the fork's bytes to storage, and only then swaps the fork in, so memory never holds a
//! state the database does not. Several documents are always locked in ascending id order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ChangeHash, LoadOptions, OnPartialLoad};
use autosurgeon::{Hydrate, hydrate};
use doorstep_core::doc::{CampaignDoc, DocId, DocKind, fresh_actor};
use doorstep_core::model::{Campaign, Millis};
use doorstep_core::rules::{self, Checked, Context, Violation, Writer};
use uuid::Uuid;

use crate::error::AppError;
use crate::live::Live;
use crate::state::Config;
use crate::storage::{Batch, DocContent, DocMeta, DocWrite, NewAuditEvent, Storage, StorageError};

/// What can go wrong with a server-side document operation.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no document {0}")]
    NotFound(DocId),
    #[error("document {0} already exists")]
    Exists(DocId),
    #[error("not allowed: {0}")]
    NotAllowed(#[from] Violation),
    #[error(transparent)]
    Core(#[from] doorstep_core::Error),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

impl From<DocError> for AppError {
    fn from(err: DocError) -> Self {
        match err {
            DocError::Storage(e) => e.into(),
            DocError::NotFound(id) => AppError::not_found(format!("no document {id}")),
            DocError::Exists(id) => {
                AppError::conflict("exists", format!("document {id} already exists"))
            }
            DocError::NotAllowed(v) => AppError::refused(v),
            DocError::Core(e) => e.into(),
            DocError::Automerge(e) => AppError::internal(e),
        }
    }
}

/// A document held in memory, with what storage knows about it.
#[derive(Debug)]
pub struct Loaded {
    pub doc: AutoCommit,
    pub meta: DocMeta,
}

/// One cache entry: the loaded document (or nothing yet) and when it was last used.
#[derive(Debug, Default)]
pub struct Slot {
    state: Mutex<Option<Loaded>>,
    last_used_ms: AtomicU64,
    /// Another server process changed the document: the copy is dropped at the next lock.
    stale: std::sync::atomic::AtomicBool,
}

impl Slot {
    pub fn lock(&self) -> Result<MutexGuard<'_, Option<Loaded>>, StorageError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StorageError::Unavailable("a document lock was poisoned".into()))?;
        if self.stale.swap(false, Ordering::AcqRel) {
            *guard = None;
        }
        Ok(guard)
    }
}

/// The cache of loaded documents and the server's document operations.
pub struct DocCache {
    storage: Arc<dyn Storage>,
    slots: Mutex<HashMap<DocId, Arc<Slot>>>,
    /// Campaign definitions by id, each with the heads it was read at: every sync of a field
    /// document needs its campaign, which changes only when an admin moves it on.
    campaigns: Mutex<HashMap<String, (Vec<ChangeHash>, Campaign)>>,
    started: Instant,
    config: Config,
    live: Live,
}

impl std::fmt::Debug for DocCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocCache").finish_non_exhaustive()
    }
}

fn poisoned<T>(_: T) -> StorageError {
    StorageError::Unavailable("the document cache lock was poisoned".into())
}

impl DocCache {
    pub fn new(storage: Arc<dyn Storage>, config: Config, live: Live) -> DocCache {
        DocCache {
            storage,
            slots: Mutex::new(HashMap::new()),
            campaigns: Mutex::new(HashMap::new()),
            started: Instant::now(),
            config,
            live,
        }
    }

    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The server's device id: the prefix of every actor the server writes with.
    pub fn server_device(&self) -> Uuid {
        self.storage.server_device()
    }

    fn now_tick(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The cache slot of `id` (created empty when missing), marked as used now.
    pub fn slot(&self, id: &DocId) -> Result<Arc<Slot>, StorageError> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        let slot = slots.entry(id.clone()).or_default().clone();
        slot.last_used_ms.store(self.now_tick(), Ordering::Relaxed);
        Ok(slot)
    }

    /// How many documents are in memory.
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop documents unused for `idle` and not in use by anyone; returns how many.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let Ok(mut slots) = self.slots.lock() else {
            return 0;
        };
        let now = self.now_tick();
        let idle_ms = idle.as_millis() as u64;
        let before = slots.len();
        slots.retain(|_, slot| {
            let in_use = Arc::strong_count(slot) > 1;
            let recent = now.saturating_sub(slot.last_used_ms.load(Ordering::Relaxed)) < idle_ms;
            in_use || recent
        });
        before - slots.len()
    }

    /// Another server process committed a change to `id` (heard through the database): the
    /// copy in memory, if any, is loaded again before its next use. A request using it now
    /// finishes with it; its commit is refused as stale if it would miss that change.
    pub fn changed_elsewhere(&self, id: &DocId) {
        if let Ok(slots) = self.slots.lock()
            && let Some(slot) = slots.get(id)
        {
            slot.stale.store(true, Ordering::Release);
        }
    }

    /// Changes by other server processes may have been missed: every copy in memory is loaded
    /// again before its next use.
    pub fn all_changed_elsewhere(&self) {
        if let Ok(slots) = self.slots.lock() {
            for slot in slots.values() {
                slot.stale.store(true, Ordering::Release);
            }
        }
    }

    /// Forget a document's in-memory copy (after a failed commit, or a rebuild).
    pub fn invalidate(&self, id: &DocId) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(id);
        }
    }

    /// Make sure `guard` holds the document, loading it strictly from storage; `None` when the
    /// document does not exist.
    pub fn ensure_loaded<'g>(
        &self,
        id: &DocId,
        guard: &'g mut Option<Loaded>,
    ) -> Result<Option<&'g mut Loaded>, StorageError> {
        if guard.is_none() {
            let Some(stored) = self.storage.load_document(id)? else {
                return Ok(None);
            };
            let options = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
            let doc = AutoCommit::load_with_options(&stored.bytes, options)
                .map_err(|e| StorageError::Corrupt(format!("{id}: {e}")))?
                .with_actor(fresh_actor(&self.server_device()));
            *guard = Some(Loaded {
                doc,
                meta: stored.meta,
            });
        }
        Ok(guard.as_mut())
    }

    /// Drop the cached copy in `guard` when the stored heads moved past it: another server
    /// process (sharing one PostgreSQL) changed the document. One indexed read.
    pub fn forget_if_changed_elsewhere(
        &self,
        id: &DocId,
        guard: &mut Option<Loaded>,
    ) -> Result<(), StorageError> {
        if let Some(loaded) = guard.as_ref() {
            let stored = self.storage.document_meta(id)?.map(|m| m.heads);
            if !same_heads(stored.as_deref(), &loaded.meta.heads) {
                *guard = None;
            }
        }
        Ok(())
    }

    /// How to store `fork`'s changes since `before`: one more chunk, or a fresh snapshot when
    /// the chunks have grown too many or too heavy (automerge-repo's compaction rule).
    pub fn content_for(
        &self,
        meta: &DocMeta,
        fork: &mut AutoCommit,
        before: &[ChangeHash],
    ) -> DocContent {
        let chunk = fork.save_after(before);
        let many = meta.chunks + 1 >= self.config.compact_after_chunks;
        let heavy = self.config.compact_when_chunks_exceed_snapshot
            && meta.chunk_bytes + chunk.len() as i64 > meta.snapshot_bytes;
        if many || heavy {
            DocContent::Snapshot(fork.save())
        } else {
            DocContent::Chunk(chunk)
        }
    }

    /// Put a committed fork in place of the cached document, with updated bookkeeping.
    pub fn install(&self, loaded: &mut Loaded, fork: AutoCommit, content: &DocContent) {
        loaded.doc = fork;
        self.installed(loaded, content);
    }

    /// Update the bookkeeping of a cached document whose changes (received in place) were
    /// just committed as `content`.
    pub fn installed(&self, loaded: &mut Loaded, content: &DocContent) {
        let heads = loaded.doc.get_heads();
        let meta = &mut loaded.meta;
        match content {
            DocContent::Chunk(bytes) => {
                meta.chunks += 1;
                meta.chunk_bytes += bytes.len() as i64;
            }
            DocContent::Snapshot(bytes) => {
                meta.chunks = 0;
                meta.chunk_bytes = 0;
                meta.snapshot_bytes = bytes.len() as i64;
            }
        }
        meta.heads = heads;
        meta.updated_at = self.storage.now();
        loaded.doc.set_actor(fresh_actor(&self.server_device()));
    }

    /// Run `f` on a document (read-only use; changes made here are never stored).
    pub fn read<T>(
        &self,
        id: &DocId,
        f: impl FnOnce(&mut AutoCommit) -> T,
    ) -> Result<Option<T>, DocError> {
        let slot = self.slot(id)?;
        let mut guard = slot.lock()?;
        match self.ensure_loaded(id, &mut guard)? {
            Some(loaded) => Ok(Some(f(&mut loaded.doc))),
            None => Ok(None),
        }
    }

    /// Hydrate a whole document into its typed shape.
    pub fn hydrate<T: Hydrate>(&self, id: &DocId) -> Result<Option<T>, DocError> {
        self.read(id, |doc| {
            hydrate::<_, T>(&*doc).map_err(|e| doorstep_core::Error::Shape(format!("{id}: {e}")))
        })?
        .transpose()
        .map_err(DocError::from)
    }

    /// The campaign definition of `campaign/{id}`, if that document exists (read again only
    /// when the document changed).
    pub fn campaign(&self, campaign: &str) -> Result<Option<Campaign>, DocError> {
        let id = DocId::Campaign {
            campaign: campaign.to_string(),
        };
        let slot = self.slot(&id)?;
        let mut guard = slot.lock()?;
        let Some(loaded) = self.ensure_loaded(&id, &mut guard)? else {
            return Ok(None);
        };
        let heads = loaded.doc.get_heads();
        let mut cache = self.campaigns.lock().map_err(poisoned)?;
        if let Some((at, value)) = cache.get(campaign)
            && *at == heads
        {
            return Ok(Some(value.clone()));
        }
        let value = hydrate::<_, CampaignDoc>(&loaded.doc)
            .map_err(|e| doorstep_core::Error::Shape(format!("{id}: {e}")))?
            .campaign;
        cache.insert(campaign.to_string(), (heads, value.clone()));
        Ok(Some(value))
    }

    /// The campaign the rules need as context for changes to `id`.
    pub fn campaign_context(&self, id: &DocId) -> Result<Option<Campaign>, DocError> {
        match (id.kind(), id.campaign()) {
            (DocKind::Field | DocKind::Campaign, Some(c)) => self.campaign(c),
            _ => Ok(None),
        }
    }

    /// Create a document as the server on behalf of `writer` (checked by the rules), with
    /// `build` writing its initial content. Stored with its projections and an audit event.
    pub fn create(
        &self,
        id: &DocId,
        community: &str,
        writer: &Writer,
        actor: &str,
        build: impl FnOnce(&mut AutoCommit) -> Result<(), doorstep_core::Error>,
    ) -> Result<Vec<ChangeHash>, DocError> {
        let campaign = self.campaign_context(id)?;
        let slot = self.slot(id)?;
        let mut guard = slot.lock()?;
        if self.ensure_loaded(id, &mut guard)?.is_some() {
            return Err(DocError::Exists(id.clone()));
        }
        let mut doc = AutoCommit::new().with_actor(fresh_actor(&self.server_device()));
        build(&mut doc)?;
        let now = self.storage.now();
        commit(&mut doc, &format!("create {id}"), now);
        check(writer, id, campaign.as_ref(), &mut doc, &[], now)?;
        let heads = doc.get_heads();
        let snapshot = doc.save();
        let content = DocContent::Snapshot(snapshot);
        let batch = Batch {
            documents: vec![DocWrite {
                id: id.clone(),
                community: community.to_string(),
                content: content.clone(),
                heads: heads.clone(),
                base: None,
                doc: &doc,
                checked: None,
            }],
            audit: vec![NewAuditEvent::new(
                actor,
                "document.created",
                id.to_string(),
                serde_json::json!({ "heads": heads.iter().map(|h| h.to_string()).collect::<Vec<_>>() }),
            )],
            ..Batch::default()
        };
        match self.storage.commit(&batch) {
            Err(StorageError::Stale(_)) => return Err(DocError::Exists(id.clone())),
            other => other?,
        };
        self.live.document(id, "server");
        let now = self.storage.now();
        let bytes = match &content {
            DocContent::Snapshot(b) | DocContent::Chunk(b) => b.len() as i64,
        };
        doc.set_actor(fresh_actor(&self.server_device()));
        *guard = Some(Loaded {
            doc,
            meta: DocMeta {
                id: id.clone(),
                community: community.to_string(),
                heads: heads.clone(),
                snapshot_bytes: bytes,
                chunk_bytes: 0,
                chunks: 0,
                created_at: now,
                updated_at: now,
            },
        });
        Ok(heads)
    }

    /// Change a document as the server on behalf of `writer`: `f` edits a fork, the rules check
    /// the resulting change, and only then is it stored (with projections and an audit event)
    /// and swapped in. Returns the new heads (unchanged when `f` changed nothing).
    pub fn change(
        &self,
        id: &DocId,
        writer: &Writer,
        actor: &str,
        message: &str,
        f: impl FnOnce(&mut AutoCommit) -> Result<(), doorstep_core::Error>,
    ) -> Result<Vec<ChangeHash>, DocError> {
        let campaign = self.campaign_context(id)?;
        let slot = self.slot(id)?;
        let mut guard = slot.lock()?;
        self.forget_if_changed_elsewhere(id, &mut guard)?;
        let loaded = self
            .ensure_loaded(id, &mut guard)?
            .ok_or_else(|| DocError::NotFound(id.clone()))?;
        let before = loaded.doc.get_heads();
        let mut fork = loaded.doc.fork();
        fork.set_actor(fresh_actor(&self.server_device()));
        f(&mut fork)?;
        let now = self.storage.now();
        commit(&mut fork, message, now);
        let heads = fork.get_heads();
        if heads == before {
            return Ok(heads);
        }
        let checked = check(writer, id, campaign.as_ref(), &mut fork, &before, now)?;
        let changes = checked.changes;
        let content = self.content_for(&loaded.meta, &mut fork, &before);
        let batch = Batch {
            documents: vec![DocWrite {
                id: id.clone(),
                community: loaded.meta.community.clone(),
                content: content.clone(),
                heads: heads.clone(),
                base: Some(loaded.meta.heads.clone()),
                doc: &fork,
                checked: Some(checked),
            }],
            audit: vec![NewAuditEvent::new(
                actor,
                "document.changed",
                id.to_string(),
                serde_json::json!({ "message": message, "changes": changes }),
            )],
            ..Batch::default()
        };
        if let Err(e) = self.storage.commit(&batch) {
            drop(batch);
            if matches!(e, StorageError::Stale(_)) {
                // Changed by another server process meanwhile: loaded afresh next time.
                *guard = None;
            }
            return Err(e.into());
        }
        self.install(loaded, fork, &content);
        self.live.document(id, "server");
        Ok(heads)
    }
}

/// Whether `stored` (a document's heads in storage, if it exists) are `cached`, in any order.
pub fn same_heads(stored: Option<&[ChangeHash]>, cached: &[ChangeHash]) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let mut a = stored.to_vec();
    let mut b = cached.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// Commit pending operations with a message, stamped `now` (the server's clock).
fn commit(doc: &mut AutoCommit, message: &str, now: Millis) {
    doc.commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(message.to_string())
            .with_time(now / 1000),
    );
}

/// Run core's rules on every change after `before`.
fn check(
    writer: &Writer,
    id: &DocId,
    campaign: Option<&Campaign>,
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    now: Millis,
) -> Result<Checked, Violation> {
    let ctx = Context {
        writer,
        doc_id: id,
        campaign,
        now,
    };
    rules::check_changes(&ctx, doc, before)
}
