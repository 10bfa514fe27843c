//! Lifting what the server stores to the current document schema when it starts
//! (docs/protocol.md §12.1).
//!
//! A schema step only adds what older documents may lack (optional fields read as their
//! documented default), so upgrading a document is one server change setting its root
//! `schema` to [`SCHEMA_VERSION`]: checked by the rules like any change, stored with its audit
//! event, and synced to the phones like any other. Each document is its own transaction and
//! the step is decided by the document's own `schema`, so an upgrade that stops halfway (the
//! process killed) simply continues at the next start, and an upgraded document is never
//! touched again.

use automerge::ROOT;
use automerge::transaction::Transactable as _;
use autosurgeon::hydrate_prop;
use doorstep_core::doc::SCHEMA_VERSION;
use doorstep_core::model::Role;
use doorstep_core::rules::Writer;

use crate::docs::DocError;
use crate::state::AppState;

/// Who the audit log names for an upgrade.
pub const ACTOR: &str = "server:upgrade";

/// What an upgrade did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upgraded {
    /// Documents lifted to [`SCHEMA_VERSION`].
    pub documents: usize,
    /// Documents already there.
    pub current: usize,
}

/// Lift every stored document below [`SCHEMA_VERSION`] to it. Blocking.
pub fn upgrade_documents(state: &AppState) -> Result<Upgraded, DocError> {
    upgrade_at_most(state, usize::MAX)
}

/// [`upgrade_documents`], stopping after `limit` documents were lifted: what a process killed
/// during the upgrade leaves behind (each document is its own transaction).
pub fn upgrade_at_most(state: &AppState, limit: usize) -> Result<Upgraded, DocError> {
    let writer = Writer {
        account: ACTOR.to_string(),
        roles: vec![Role::Admin],
        buildings: Default::default(),
        device: None,
    };
    let mut done = Upgraded::default();
    for meta in state.storage().documents()? {
        let schema = state.docs().read(&meta.id, |doc| {
            hydrate_prop::<_, u64, _, _>(&*doc, ROOT, "schema")
                .map_err(|e| doorstep_core::Error::Shape(format!("{}: schema: {e}", meta.id)))
        })?;
        match schema {
            Some(Ok(s)) if s >= SCHEMA_VERSION => done.current += 1,
            Some(Ok(_)) if done.documents >= limit => break,
            Some(Ok(_)) => {
                state.docs().change(
                    &meta.id,
                    &writer,
                    ACTOR,
                    &format!("upgrade to schema {SCHEMA_VERSION}"),
                    |doc| {
                        doc.put(ROOT, "schema", SCHEMA_VERSION)
                            .map_err(|e| doorstep_core::Error::Shape(e.to_string()))
                    },
                )?;
                done.documents += 1;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        // Read at start, before any phone: each document leaves memory once looked at, so a
        // server of thousands of documents does not start with all of them loaded.
        state.docs().invalidate(&meta.id);
    }
    Ok(done)
}
