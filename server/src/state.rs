//! The shared state every handler sees: storage, the document cache, metrics and config.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use doorstep_core::model::Millis;

use crate::admin::figures::FiguresCache;
use crate::dashboard::push::CardPush;
use crate::docs::DocCache;
use crate::guard::{HashLimiter, Throttle};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::storage::{Backend, Remote, Storage};

/// Tunables, with defaults suited to one street office on one small machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a dashboard session lasts.
    pub session_ttl_ms: Millis,
    /// How long an enrollment code stays valid.
    pub enrollment_ttl_ms: Millis,
    /// Body limit of `POST /api/v1/sync`: a message may carry whole documents.
    pub sync_body_limit: usize,
    /// Body limit of every other endpoint.
    pub default_body_limit: usize,
    /// Body limit of register imports (CSV or XLSX files).
    pub import_body_limit: usize,
    /// Requests taking longer are answered 408 and their work is abandoned.
    pub request_timeout: Duration,
    /// Documents unused this long are dropped from memory.
    pub idle_document: Duration,
    /// Compact a document into one snapshot when it has this many chunks ...
    pub compact_after_chunks: i64,
    /// ... or when its chunks outweigh its snapshot.
    pub compact_when_chunks_exceed_snapshot: bool,
    /// Open overview pages get a changed campaign's card at most this often.
    pub card_push_interval: Duration,
    /// Bytes of refused payloads kept per device before it is stopped (`quarantine_full`).
    pub quarantine_budget: i64,
    /// Passwords hashed at once (argon2 takes ~19 MiB each); more logins wait ...
    pub hash_concurrency: usize,
    /// ... this long, then get `503 busy` with `Retry-After`.
    pub hash_wait: Duration,
    /// The server runs behind a reverse proxy: the client address is the last one in
    /// `X-Forwarded-For` (for throttling), and the proxy terminates TLS.
    pub behind_proxy: bool,
    /// Served over TLS (by the server itself or by the proxy): answers carry HSTS.
    pub tls: bool,
    /// `/metrics` answers only with `Authorization: Bearer <token>`; without a token it is not
    /// served on the main address at all (see `serve --metrics-listen`).
    pub metrics_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_ttl_ms: 12 * 3600 * 1000,
            enrollment_ttl_ms: 7 * 24 * 3600 * 1000,
            sync_body_limit: 16 * 1024 * 1024,
            default_body_limit: 64 * 1024,
            import_body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            idle_document: Duration::from_secs(300),
            compact_after_chunks: 64,
            compact_when_chunks_exceed_snapshot: true,
            card_push_interval: Duration::from_secs(2),
            quarantine_budget: 4 * 1024 * 1024,
            hash_concurrency: 4,
            hash_wait: Duration::from_secs(10),
            behind_proxy: false,
            tls: false,
            metrics_token: None,
        }
    }
}

/// Cheap to clone: everything sits behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: Arc<dyn Backend>,
    docs: DocCache,
    live: Live,
    figures: FiguresCache,
    cards: CardPush,
    metrics: Metrics,
    config: Config,
    dummy_hash: OnceLock<String>,
    throttle: Throttle,
    hashing: HashLimiter,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.0.db)
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(db: impl Backend, config: Config) -> AppState {
        Self::on(Arc::new(db), config)
    }

    /// The state over a backend chosen at run time (`serve --db sqlite:…|postgres://…`).
    pub fn on(db: Arc<dyn Backend>, config: Config) -> AppState {
        let storage: Arc<dyn Storage> = db.clone();
        let live = Live::default();
        let state = AppState(Arc::new(Inner {
            docs: DocCache::new(storage.clone(), config.clone(), live.clone()),
            live,
            db,
            figures: FiguresCache::default(),
            cards: CardPush::default(),
            metrics: Metrics::default(),
            throttle: Throttle::new(storage.clone()),
            hashing: HashLimiter::new(config.hash_concurrency, config.hash_wait),
            config,
            dummy_hash: OnceLock::new(),
        }));
        // Changes other server processes commit to the same database (PostgreSQL): their
        // documents are loaded again here, and open dashboard pages hear of them.
        let weak = Arc::downgrade(&state.0);
        state.0.db.watch(Box::new(move |remote| {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            match remote {
                Some(Remote::Document { id, source }) => {
                    inner.docs.changed_elsewhere(&id);
                    inner.live.document(&id, source);
                }
                Some(Remote::Device(device)) => inner.live.device(&device),
                Some(Remote::Missed) => inner.docs.all_changed_elsewhere(),
                None => {}
            }
            true
        }));
        state
    }

    /// The server's clock (the storage's: see [`Storage::now`]).
    pub fn now(&self) -> doorstep_core::model::Millis {
        self.0.db.now()
    }

    /// The storage seam (backend-independent calls).
    pub fn storage(&self) -> &dyn Storage {
        self.0.db.as_ref()
    }

    /// The backend itself: maintenance (rebuild, checkpoint) and raw statements for tools.
    pub fn db(&self) -> &dyn Backend {
        self.0.db.as_ref()
    }

    /// Reads over the projections (campaigns, work orders, field activity).
    pub fn views(&self) -> &dyn crate::storage::Views {
        self.0.db.as_ref()
    }

    /// The in-memory document cache and the server-side document operations.
    pub fn docs(&self) -> &DocCache {
        &self.0.docs
    }

    /// What changed, for open dashboard pages.
    pub fn live(&self) -> &Live {
        &self.0.live
    }

    /// Overview cards pushed to open pages.
    pub(crate) fn cards(&self) -> &CardPush {
        &self.0.cards
    }

    /// Campaign figures (tally, progress, conflicts) cached by campaign version.
    pub(crate) fn figures(&self) -> &FiguresCache {
        &self.0.figures
    }

    /// Failed logins and enrollment codes, per account and address.
    pub fn throttle(&self) -> &Throttle {
        &self.0.throttle
    }

    /// The bound on concurrent password hashing.
    pub fn hashing(&self) -> &HashLimiter {
        &self.0.hashing
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// A valid argon2 hash of a random password, verified against when a login is unknown so
    /// that unknown logins cost as much time as wrong passwords.
    pub fn dummy_password_hash(&self) -> &str {
        self.0.dummy_hash.get_or_init(|| {
            let secret = hex::encode(crate::auth::random_bytes(16));
            crate::auth::hash_password(&secret).unwrap_or_default()
        })
    }
}
