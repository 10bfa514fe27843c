//! The `doorstep-server` binary: parses flags and environment, sets up logging, and runs one of
//! `demo`, `serve`, `create-admin`, `rebuild-projections` or `migrate-storage`. All logic lives
//! in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use doorstep_core::model::Role;
use std::sync::Arc;

use doorstep_server::storage::postgres::PoolOptions;
use doorstep_server::storage::{self, Backend, Communities, Grants};
use doorstep_server::{AppState, Config, auth, demo};

#[derive(Debug, Parser)]
#[command(
    name = "doorstep-server",
    version,
    about = "doorstep sync server and admin API"
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "DOORSTEP_LOG_JSON")]
    log_json: bool,
    /// PostgreSQL connections each server process may hold (all processes share the
    /// database's `max_connections`).
    #[arg(long, global = true, default_value_t = 16, env = "DOORSTEP_DB_POOL")]
    db_pool: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create (if missing) a database with the sample community, print logins and enrollment
    /// codes, and serve it.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080", env = "DOORSTEP_LISTEN")]
        listen: SocketAddr,
        /// A SQLite file (or `sqlite:PATH`), or a `postgres://` address.
        #[arg(long, default_value = "doorstep-demo.sqlite", env = "DOORSTEP_DB")]
        db: String,
        #[command(flatten)]
        exposure: Exposure,
    },
    /// Serve a database. The first admin comes from DOORSTEP_ADMIN_PASSWORD (login `admin`).
    Serve {
        #[arg(long, env = "DOORSTEP_LISTEN")]
        listen: SocketAddr,
        /// A SQLite file (or `sqlite:PATH`), or a `postgres://` address.
        #[arg(long, env = "DOORSTEP_DB")]
        db: String,
        /// Request timeout in seconds.
        #[arg(long, default_value_t = 60, env = "DOORSTEP_REQUEST_TIMEOUT")]
        timeout_secs: u64,
        /// Largest sync request body in MiB.
        #[arg(long, default_value_t = 16, env = "DOORSTEP_SYNC_LIMIT_MIB")]
        sync_limit_mib: usize,
        #[command(flatten)]
        exposure: Exposure,
        /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
        #[arg(long, env = "DOORSTEP_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "DOORSTEP_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create an admin account; the password comes from DOORSTEP_ADMIN_PASSWORD or is generated
    /// and printed once.
    CreateAdmin {
        /// A SQLite file (or `sqlite:PATH`), or a `postgres://` address.
        #[arg(long, env = "DOORSTEP_DB")]
        db: String,
        #[arg(long, default_value = "admin")]
        login: String,
        /// A community the admin administers (repeat for several); without it, every community
        /// on the server (a 街道's admin).
        #[arg(long = "community")]
        communities: Vec<String>,
    },
    /// Recreate every projection table from the stored documents.
    RebuildProjections {
        /// A SQLite file (or `sqlite:PATH`), or a `postgres://` address.
        #[arg(long, env = "DOORSTEP_DB")]
        db: String,
    },
    /// Copy a whole database into a new, empty one (SQLite to PostgreSQL or back), and verify
    /// the copy: documents' heads, the audit chain, the projections rebuilt. Stop the servers
    /// of both first.
    MigrateStorage {
        /// The database to copy: a SQLite file (or `sqlite:PATH`), or a `postgres://` address.
        #[arg(long)]
        from: String,
        /// The new database: created when missing, refused when it holds anything.
        #[arg(long)]
        to: String,
    },
}

/// How the server faces the network: metrics, a reverse proxy in front.
#[derive(Debug, clap::Args)]
struct Exposure {
    /// Serve `/metrics` on the main address to requests with `Authorization: Bearer TOKEN`.
    #[arg(long, env = "DOORSTEP_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// Serve `/metrics` without a token on this separate address (bind it where only the
    /// monitoring system reaches, e.g. 127.0.0.1:9090).
    #[arg(long, env = "DOORSTEP_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// The server runs behind a reverse proxy that terminates TLS and appends the client's
    /// address to `X-Forwarded-For` (used for throttling); answers carry HSTS.
    #[arg(long, env = "DOORSTEP_BEHIND_PROXY")]
    behind_proxy: bool,
}

impl Exposure {
    fn apply(&self, config: Config) -> Config {
        Config {
            metrics_token: self.metrics_token.clone().filter(|t| !t.is_empty()),
            behind_proxy: self.behind_proxy,
            tls: config.tls || self.behind_proxy,
            ..config
        }
    }

    /// Start the separate metrics listener when one is configured.
    async fn spawn_metrics(&self, state: &AppState) -> Result<()> {
        if let Some(addr) = self.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for metrics on {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
            let app = doorstep_server::metrics_app(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        Ok(())
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn admin_password_from_env() -> Option<String> {
    std::env::var("DOORSTEP_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let pool = PoolOptions {
        max_connections: cli.db_pool,
        ..PoolOptions::default()
    };
    match cli.command {
        Command::Demo {
            listen,
            db,
            exposure,
        } => run_demo(listen, db, pool, exposure).await,
        Command::Serve {
            listen,
            db,
            timeout_secs,
            sync_limit_mib,
            exposure,
            tls_cert,
            tls_key,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(
                    doorstep_server::tls::load(cert, key).context("loading the TLS certificate")?,
                ),
                _ => None,
            };
            let config = exposure.apply(Config {
                request_timeout: std::time::Duration::from_secs(timeout_secs),
                sync_body_limit: sync_limit_mib * 1024 * 1024,
                tls: tls.is_some(),
                ..Config::default()
            });
            run_serve(listen, db, pool, config, exposure, tls).await
        }
        Command::CreateAdmin {
            db,
            login,
            communities,
        } => {
            let communities = if communities.is_empty() {
                Communities::All
            } else {
                Communities::from_list(&communities)
                    .context("--community takes community ids (no '*', spaces or '/')")?
            };
            let storage = open_db(&db, pool).await?;
            let (password, generated) = match admin_password_from_env() {
                Some(p) => (p, false),
                None => (hex::encode(auth::random_bytes(9)), true),
            };
            let grants = Grants::uniform(&[Role::Admin], &communities)
                .expect("invariant: one role is given");
            let secret = password.clone();
            let account = tokio::task::spawn_blocking(move || {
                auth::create_password_account(
                    storage.as_ref(),
                    &login,
                    "管理员",
                    grants,
                    &secret,
                    "server",
                )
            })
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created admin {} ({})", account.login, account.id);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::MigrateStorage { from, to } => {
            if !storage::postgres::is_postgres_url(&from) {
                let path = from.strip_prefix("sqlite:").unwrap_or(&from);
                if !std::path::Path::new(path).is_file() {
                    bail!("no SQLite database at {path}: --from names the database to copy");
                }
            }
            let source = open_db(&from, pool).await?;
            let target = open_db(&to, pool).await?;
            let migrated = tokio::task::spawn_blocking(move || {
                let now = doorstep_core::clock::Clock::now(&doorstep_core::clock::SystemClock);
                storage::migrate::migrate(source.as_ref(), target.as_ref(), now)
            })
            .await?
            .with_context(|| {
                format!(
                    "copying {} into {}",
                    storage::describe(&from),
                    storage::describe(&to)
                )
            })?;
            for (table, rows) in &migrated.rows {
                println!("{table:>20}: {rows} rows");
            }
            println!(
                "copied and verified: {} documents (heads equal), {} audit events (chain \
                 recomputed), projections rebuilt equal",
                migrated.documents, migrated.audit_events
            );
            Ok(())
        }
        Command::RebuildProjections { db } => {
            let storage = open_db(&db, pool).await?;
            let n = tokio::task::spawn_blocking(move || storage.rebuild_projections())
                .await?
                .context("rebuilding projections")?;
            println!("rebuilt projections from {n} documents");
            Ok(())
        }
    }
}

/// Lift stored documents to the current schema before serving (`doorstep_server::upgrade`).
async fn upgrade(state: &AppState) -> Result<()> {
    let st = state.clone();
    let done = tokio::task::spawn_blocking(move || {
        doorstep_server::upgrade::upgrade_documents(&st)
            .map_err(|e| anyhow::anyhow!("upgrading the stored documents: {e}"))
    })
    .await??;
    if done.documents > 0 {
        tracing::info!(
            documents = done.documents,
            schema = doorstep_core::doc::SCHEMA_VERSION,
            "stored documents upgraded"
        );
    }
    Ok(())
}

/// Open the database `db` names (SQLite file or `postgres://` address) off the runtime.
async fn open_db(db: &str, pool: PoolOptions) -> Result<Arc<dyn Backend>> {
    let target = db.to_string();
    tokio::task::spawn_blocking(move || storage::open(&target, pool))
        .await?
        .with_context(|| format!("opening the database ({})", storage::describe(db)))
}

async fn run_demo(
    listen: SocketAddr,
    db: String,
    pool: PoolOptions,
    exposure: Exposure,
) -> Result<()> {
    let storage = open_db(&db, pool).await?;
    let state = AppState::on(storage, exposure.apply(Config::default()));
    upgrade(&state).await?;
    exposure.spawn_metrics(&state).await?;
    let password = admin_password_from_env();
    let st = state.clone();
    let info = tokio::task::spawn_blocking(move || demo::setup(&st, password.as_deref()))
        .await?
        .map_err(|e| anyhow::anyhow!("setting up the demo: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    println!(
        "doorstep demo: {} ({})",
        demo::COMMUNITY_NAME,
        storage::describe(&db)
    );
    println!("  server:   {url}");
    println!("  dashboard: {url}/  (open it in a browser and log in as below)");
    println!("  admin:    login {:?}", info.admin_login);
    match &info.generated_admin_password {
        Some(p) => println!("            password (generated, shown once): {p}"),
        None => println!("            password: DOORSTEP_ADMIN_PASSWORD or as set at first run"),
    }
    if let Some(p) = &info.generated_officer_password {
        println!(
            "  counting officer: login {:?}, password (shown once): {p}",
            info.officer_login
        );
    }
    println!("  campaign: {} (published)", info.campaign);
    println!("  enrollment codes (one-time, valid 7 days):");
    for (login, building, code) in &info.heads {
        println!("    building {building:>3}  {login:<10} {code}");
    }
    doorstep_server::serve(state, listener, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

async fn run_serve(
    listen: SocketAddr,
    db: String,
    pool: PoolOptions,
    config: Config,
    exposure: Exposure,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<()> {
    let storage = open_db(&db, pool).await?;
    let first = storage.clone();
    tokio::task::spawn_blocking(move || first_admin(first.as_ref())).await??;
    let state = AppState::on(storage, config);
    upgrade(&state).await?;
    exposure.spawn_metrics(&state).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    match tls {
        Some(tls) => {
            tracing::info!(addr = %listener.local_addr()?, "serving HTTPS");
            let listener = listener.into_std()?;
            doorstep_server::serve_tls(state, listener, tls, shutdown_signal())
                .await
                .context("serving")?;
        }
        None => {
            tracing::info!(addr = %listener.local_addr()?, "serving");
            doorstep_server::serve(state, listener, shutdown_signal())
                .await
                .context("serving")?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Make sure an admin exists: the first one comes from DOORSTEP_ADMIN_PASSWORD.
fn first_admin(storage: &dyn Backend) -> Result<()> {
    let has_admin = storage
        .accounts()?
        .iter()
        .any(|a| a.is(Role::Admin) && !a.disabled);
    if has_admin {
        return Ok(());
    }
    match admin_password_from_env() {
        Some(password) => {
            auth::create_password_account(
                storage,
                "admin",
                "管理员",
                Grants::uniform(&[Role::Admin], &Communities::All)
                    .expect("invariant: one role is given"),
                &password,
                "server",
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            tracing::info!("created the first admin (login \"admin\")");
            Ok(())
        }
        None => bail!(
            "no admin account: set DOORSTEP_ADMIN_PASSWORD or run `doorstep-server create-admin`"
        ),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
