//! What stands between the public endpoints and abuse: throttling of failed logins and
//! enrollment codes (per account and per client address), a bound on concurrent password
//! hashing (argon2 is memory-hard: ~19 MiB each), and the client address itself.
//!
//! Throttling counts failures. On an account's key ([`Key::Login`]) an attempt counts as a
//! failure from the moment it starts, so a burst of concurrent guesses at one password cannot
//! all slip past the check before the first one fails; a success clears the key. On an
//! address, only failures count, after the fact: many heads enrolling at once behind one
//! office router must not lock each other out. The first few failures are free; each one after
//! that locks the key for twice as long as the last (1 s, 2 s, 4 s … at most [`MAX_LOCK_MS`]);
//! a key with no failure for [`FORGET_AFTER_MS`] starts over. A locked key is
//! refused before any password is hashed, with `429` and `Retry-After`. Times come from
//! the server's clock, so tests move it instead of sleeping. The counts live in the database
//! (`Storage::throttle`, one transaction per check), so several server processes share them;
//! keys are stored hashed, never as a login or an address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use doorstep_core::model::Millis;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use sha2::Digest as _;

use crate::error::AppError;
use crate::state::AppState;
use crate::storage::{Storage, ThrottleEntry};

/// The longest a key stays locked after repeated failures.
pub const MAX_LOCK_MS: Millis = 15 * 60 * 1000;
/// A key with no failure for this long is forgotten.
pub const FORGET_AFTER_MS: Millis = 60 * 60 * 1000;

/// What a throttled key is: an account's login, or a client address, per endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Failed logins for one login name (lower case), whether the account exists or not.
    Login(String),
    /// Failed logins from one client address.
    LoginFrom(IpAddr),
    /// Failed enrollment codes from one client address.
    EnrollFrom(IpAddr),
}

impl Key {
    /// An account's key (attempts count as they start) rather than an address's.
    fn is_account(&self) -> bool {
        matches!(self, Key::Login(_))
    }

    /// Failures allowed before the first lock.
    fn free_failures(&self) -> u32 {
        match self {
            Key::Login(_) => 5,
            // A street office's staff may share one address (NAT): more room per address.
            Key::LoginFrom(_) => 20,
            Key::EnrollFrom(_) => 10,
        }
    }
}

impl Key {
    /// How the key is stored: a hash salted with this server's id, so the table never holds a
    /// login or an address, nor a hash that a table of all addresses would reverse.
    fn stored(&self, salt: &uuid::Uuid) -> String {
        let text = match self {
            Key::Login(login) => format!("login:{login}"),
            Key::LoginFrom(addr) => format!("login-from:{addr}"),
            Key::EnrollFrom(addr) => format!("enroll-from:{addr}"),
        };
        let mut hasher = sha2::Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update(text.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// The stored entries of the keys being checked, by stored (hashed) key.
type Entries = BTreeMap<String, ThrottleEntry>;

/// A change to the entries of keys, given each key with its stored form.
type Update<'a> = dyn FnMut(&mut Entries, &[(Key, String)]) + 'a;

/// Failure counts per key, kept by the storage. Cheap to clone.
#[derive(Clone)]
pub struct Throttle {
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

impl Throttle {
    pub fn new(storage: Arc<dyn Storage>) -> Throttle {
        Throttle { storage }
    }

    /// Start an attempt: `Err(429)` when any of `keys` is locked at `now` (with the longest
    /// remaining wait, nothing counted); otherwise the account keys among them count the
    /// attempt as a failure until [`Throttle::succeeded`].
    pub async fn attempt(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        self.run(keys, move |t, keys| t.attempt_blocking(keys, now))
            .await
    }

    /// The attempt on `keys` failed: the address keys among them count it.
    pub async fn failed(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        self.run(keys, move |t, keys| t.failed_blocking(keys, now))
            .await
    }

    /// The attempt on `keys` succeeded: the account keys among them are cleared.
    pub async fn succeeded(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        self.run(keys, move |t, keys| t.succeeded_blocking(keys, now))
            .await
    }

    async fn run(
        &self,
        keys: &[Key],
        f: impl FnOnce(&Throttle, &[Key]) -> Result<(), AppError> + Send + 'static,
    ) -> Result<(), AppError> {
        let t = self.clone();
        let keys = keys.to_vec();
        tokio::task::spawn_blocking(move || f(&t, &keys)).await?
    }

    /// [`Throttle::attempt`], blocking.
    pub fn attempt_blocking(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        let mut wait = 0;
        self.update(keys, now, &mut |entries, stored| {
            wait = stored
                .iter()
                .filter_map(|(_, s)| entries.get(s))
                .map(|e| e.locked_until.saturating_sub(now))
                .max()
                .unwrap_or(0)
                .max(0);
            if wait == 0 {
                count(entries, stored, now, Key::is_account);
            }
        })?;
        if wait > 0 {
            return Err(too_many(wait));
        }
        Ok(())
    }

    /// [`Throttle::failed`], blocking.
    pub fn failed_blocking(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        self.update(keys, now, &mut |entries, stored| {
            count(entries, stored, now, |k| !k.is_account());
        })
    }

    /// [`Throttle::succeeded`], blocking.
    pub fn succeeded_blocking(&self, keys: &[Key], now: Millis) -> Result<(), AppError> {
        self.update(keys, now, &mut |entries, stored| {
            for (key, s) in stored {
                if key.is_account() {
                    entries.remove(s);
                }
            }
        })
    }

    fn update(&self, keys: &[Key], now: Millis, f: &mut Update<'_>) -> Result<(), AppError> {
        let salt = self.storage.server_device();
        let stored: Vec<(Key, String)> =
            keys.iter().map(|k| (k.clone(), k.stored(&salt))).collect();
        let names: Vec<String> = stored.iter().map(|(_, s)| s.clone()).collect();
        self.storage.throttle(
            &names,
            now.saturating_sub(FORGET_AFTER_MS),
            &mut |entries| f(entries, &stored),
        )?;
        Ok(())
    }
}

/// Count one failure on each key of `stored` that `which` picks; a key past its free failures
/// is locked for twice as long as the last time.
fn count(
    entries: &mut Entries,
    stored: &[(Key, String)],
    now: Millis,
    which: impl Fn(&Key) -> bool,
) {
    for (key, s) in stored.iter().filter(|(k, _)| which(k)) {
        let entry = entries.entry(s.clone()).or_insert(ThrottleEntry {
            failures: 0,
            last_failure: now,
            locked_until: 0,
        });
        if now.saturating_sub(entry.last_failure) >= FORGET_AFTER_MS {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let over = entry.failures.saturating_sub(key.free_failures());
        if over > 0 {
            let lock = 1000i64
                .saturating_mul(1i64 << over.min(20).saturating_sub(1))
                .min(MAX_LOCK_MS);
            entry.locked_until = now.saturating_add(lock);
        }
    }
}

/// `429 too_many_attempts` with `Retry-After` in whole seconds (at least 1).
pub fn too_many(wait_ms: Millis) -> AppError {
    let seconds = u64::try_from(wait_ms.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1);
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed attempts; try again in {seconds} s"),
    )
    .with_retry_after(seconds)
}

/// A bound on concurrent password hashing. A caller beyond it waits up to `wait`, then gets
/// `503 busy` with `Retry-After`, so memory stays bounded however many logins arrive at once.
///
/// Hashes run on the limiter's own few threads, not on tokio's blocking pool: argon2 takes
/// ~19 MiB per hash, and the C allocator keeps a freed block in the arena of the thread that
/// used it, so hashes spread over the blocking pool's dozens of threads kept ~850 MiB after a
/// burst of 200 logins; on a fixed set of threads each keeps one block at most.
#[derive(Debug, Clone)]
pub struct HashLimiter {
    permits: Arc<Semaphore>,
    total: usize,
    wait: Duration,
    peak: Arc<AtomicUsize>,
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl HashLimiter {
    /// `concurrent` worker threads (at least one), named `hash-N`.
    pub fn new(concurrent: usize, wait: Duration) -> HashLimiter {
        let total = concurrent.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..total {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hash-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job; the workers end when
                        // the limiter (the sender) is dropped.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job answers its caller with an error (its result
                        // channel is dropped) and the worker lives on.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        HashLimiter {
            permits: Arc::new(Semaphore::new(total)),
            total,
            wait,
            peak: Arc::default(),
            jobs,
        }
    }

    /// The most hashes that ever ran at once (for metrics and tests).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// A permit to hash one password (held, no other hash starts).
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                let running = self.total - self.permits.available_permits();
                self.peak.fetch_max(running, Ordering::Relaxed);
                Ok(permit)
            }
            Ok(Err(_)) => Err(AppError::internal(
                "invariant: the hashing semaphore is never closed",
            )),
            Err(_) => Err(AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy checking other passwords; try again shortly",
            )
            .with_retry_after(1)),
        }
    }

    /// Run `job` (which hashes or verifies a password, and may use storage) on one of the
    /// hashing threads once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self.permit().await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(job());
                drop(permit);
            }))
            .map_err(|_| AppError::internal("the password hashing threads have stopped"))?;
        answer
            .await
            .map_err(|_| AppError::internal("a password hashing job failed"))
    }
}

/// The address a request came from: the TCP peer, or — when the operator said the server
/// runs behind a reverse proxy — the address that proxy appended to `X-Forwarded-For`.
/// `None` in-process (tests drive the router without a socket).
pub fn client_addr(parts: &Parts, behind_proxy: bool) -> Option<IpAddr> {
    if behind_proxy {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client address of a request as an extractor (see [`client_addr`]); the unspecified
/// address when there is none, so in-process callers share one throttling key.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            client_addr(parts, state.config().behind_proxy)
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throttle over a real (SQLite) storage, as the server has.
    fn throttle() -> (Throttle, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage =
            crate::storage::SqliteStorage::open(dir.path().join("t.sqlite")).expect("a database");
        (Throttle::new(Arc::new(storage)), dir)
    }

    #[test]
    fn failures_lock_a_key_for_doubling_times_and_a_success_clears_it() {
        let (t, _dir) = throttle();
        let key = [Key::Login("admin".into())];
        // Five free failures; the sixth attempt is allowed and locks for 1 s, then 2 s.
        for _ in 0..6 {
            t.attempt_blocking(&key, 0).unwrap();
        }
        let err = t.attempt_blocking(&key, 0).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code, "too_many_attempts");
        assert_eq!(err.retry_after, Some(1));
        t.attempt_blocking(&key, 1000).unwrap();
        assert_eq!(
            t.attempt_blocking(&key, 1000).unwrap_err().retry_after,
            Some(2)
        );
        // Never longer than the cap.
        let mut now = 1000;
        for _ in 0..40 {
            while let Err(e) = t.attempt_blocking(&key, now) {
                assert!(e.retry_after.unwrap() <= 15 * 60, "{e:?}");
                now += 1000 * i64::try_from(e.retry_after.unwrap()).unwrap();
            }
        }
        let wait = t.attempt_blocking(&key, now).unwrap_err();
        assert_eq!(wait.retry_after, Some(15 * 60));
        t.succeeded_blocking(&key, now).unwrap();
        t.attempt_blocking(&key, now).unwrap();
    }

    #[test]
    fn an_address_counts_only_failures() {
        let (t, _dir) = throttle();
        let addr = [Key::LoginFrom("10.0.0.2".parse().unwrap())];
        // Many attempts at once from one address, all succeeding: nothing is counted.
        for _ in 0..100 {
            t.attempt_blocking(&addr, 0).unwrap();
        }
        t.succeeded_blocking(&addr, 0).unwrap();
        for _ in 0..21 {
            t.attempt_blocking(&addr, 0).unwrap();
            t.failed_blocking(&addr, 0).unwrap();
        }
        assert!(
            t.attempt_blocking(&addr, 0).is_err(),
            "21 failures from one address"
        );
    }

    #[test]
    fn a_key_quiet_for_an_hour_starts_over() {
        let (t, _dir) = throttle();
        let key = [Key::EnrollFrom("10.0.0.1".parse().unwrap())];
        for _ in 0..11 {
            t.attempt_blocking(&key, 0).unwrap();
            t.failed_blocking(&key, 0).unwrap();
        }
        assert!(t.attempt_blocking(&key, 0).is_err());
        t.failed_blocking(&key, FORGET_AFTER_MS).unwrap();
        t.attempt_blocking(&key, FORGET_AFTER_MS).unwrap();
    }
}
