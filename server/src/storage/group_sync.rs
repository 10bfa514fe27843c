//! Group commit for SQLite in WAL mode: every write is on disk before it is acknowledged, and
//! concurrent writes share one fsync.
//!
//! Transactions commit with `synchronous=NORMAL`: SQLite appends their frames to the WAL with
//! `write()` and does not wait for the disk (it syncs the WAL only before a checkpoint, and the
//! database file after one). A write is durable once the WAL file is fsynced after its commit.
//! So the writer numbers each commit while it still holds the writer connection, and before a
//! write returns, [`GroupSync::wait`] makes sure an fsync of the WAL began after that commit
//! ended. Whoever finds no fsync running starts one, covering every commit made so far; the
//! others wait for it. Under load one fsync acknowledges every request that committed while the
//! previous one ran — the price of power-loss durability is paid per batch, not per request.
//!
//! Frames that a checkpoint moved into the database file are durable already (the checkpoint
//! synced it before the WAL could be reset), so syncing the WAL file as it is now is enough.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

/// Commits counted and fsyncs made since the storage opened, for `/metrics` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurabilityStats {
    pub commits: u64,
    pub fsyncs: u64,
    /// Commits that waited for another transaction's lock on one of their documents (several
    /// processes on PostgreSQL), and the time waited in all, in µs.
    pub document_lock_waits: u64,
    pub document_lock_wait_us: u64,
    /// The same for the audit chain's lock, which every audited commit takes at its end.
    pub audit_lock_waits: u64,
    pub audit_lock_wait_us: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Commits made (the number of the latest).
    committed: u64,
    /// Every commit up to this number is on disk.
    synced: u64,
    /// An fsync is running.
    syncing: bool,
    fsyncs: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct GroupSync {
    /// The database's `-wal` file.
    wal: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

impl GroupSync {
    /// For the database at `db` (its WAL is `db` + `-wal`).
    pub fn new(db: &std::path::Path) -> GroupSync {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        GroupSync {
            wal: PathBuf::from(wal),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// Count a commit that just ended; call it while still holding the writer connection, so
    /// numbers follow commit order. Returns its number for [`Self::wait`].
    pub fn committed(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.committed += 1;
        state.committed
    }

    /// Return once commit `n` is on disk: after an fsync of the WAL that began once it ended.
    pub fn wait(&self, n: u64) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.synced >= n {
                return Ok(());
            }
            if state.syncing {
                state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.syncing = true;
            let target = state.committed;
            drop(state);
            let result = self.fsync();
            state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.syncing = false;
            if result.is_ok() {
                state.synced = state.synced.max(target);
                state.fsyncs += 1;
            }
            self.done.notify_all();
            result?;
        }
    }

    /// Commits and fsyncs so far.
    pub fn stats(&self) -> DurabilityStats {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        DurabilityStats {
            commits: state.committed,
            fsyncs: state.fsyncs,
            ..DurabilityStats::default()
        }
    }

    /// fsync the WAL file as it is now. It is opened each time, so a WAL that SQLite removed
    /// and made again is never synced through a stale handle; it exists while the writer
    /// connection is open.
    fn fsync(&self) -> std::io::Result<()> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.wal)?
            .sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_waiter_returns_after_an_fsync_that_covers_its_commit() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("db.sqlite");
        std::fs::write(dir.path().join("db.sqlite-wal"), b"frames").expect("a WAL file");
        let group = Arc::new(GroupSync::new(&db));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let group = group.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let n = group.committed();
                        group.wait(n).expect("the WAL syncs");
                        let state = group.state.lock().expect("state");
                        assert!(state.synced >= n, "returned before its commit was synced");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a waiter");
        }
        let stats = group.stats();
        assert_eq!(stats.commits, 400);
        assert!(stats.fsyncs >= 1 && stats.fsyncs <= 400, "{stats:?}");
    }

    #[test]
    fn a_failed_fsync_is_an_error_and_acknowledges_nothing() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // No WAL file: the fsync cannot happen.
        let group = GroupSync::new(&dir.path().join("missing.sqlite"));
        let n = group.committed();
        assert!(group.wait(n).is_err());
        assert_eq!(group.stats().fsyncs, 0);
        let state = group.state.lock().expect("state");
        assert_eq!(state.synced, 0);
        assert!(!state.syncing, "the next writer may try again");
    }
}
