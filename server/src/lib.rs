//! doorstep-server: the sync endpoint phones talk to, the admin JSON API, accounts and devices,
//! and storage on SQLite or PostgreSQL. `main.rs` only wires configuration; everything testable starts at
//! [`app`], which builds the whole router around an [`AppState`].
//!
//! Code map:
//! - [`storage`]: the `Storage` trait, written once in SQL for its SQLite backend (one writer,
//!   WAL, group commit) and its PostgreSQL backend (several server processes): documents,
//!   hash-chained audit log, quarantine, per-device sync rows, projections.
//! - [`docs`]: loaded documents in memory, and the server's own document changes.
//! - [`sync`]: `POST /api/v1/sync` — the wire envelope of `doorstep_core::protocol`.
//! - [`auth`]: passwords, sessions, device tokens, enrollment.
//! - [`admin`], [`projections`]: the dashboard's API and the tables it reads.
//! - [`demo`]: the sample community behind `doorstep-server demo`.

pub mod admin;
pub mod auth;
pub mod dashboard;
pub mod demo;
pub mod docs;
pub mod drain;
pub mod error;
pub mod guard;
pub mod json;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod projections;
pub mod state;
pub mod storage;
pub mod sync;
pub mod tls;
pub mod upgrade;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::{AppError, AppResult};
pub use state::{AppState, Config};

/// The whole HTTP surface of the server.
pub fn app(state: AppState) -> Router {
    let config = state.config().clone();
    let sync_routes = Router::new()
        .route(doorstep_core::protocol::SYNC_PATH, post(sync::sync_handler))
        .layer(DefaultBodyLimit::max(config.sync_body_limit))
        // Replies carrying documents compress well; phones ask with Accept-Encoding: gzip.
        .layer(CompressionLayer::new());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route(doorstep_core::protocol::ENROLL_PATH, post(auth::enroll))
        .nest("/api/v1/admin", admin::router(&config))
        .merge(dashboard::router())
        .layer(DefaultBodyLimit::max(config.default_body_limit))
        .merge(sync_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(json_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(config.tls, security_headers))
        .layer(middleware::from_fn(drain::drain_refused_bodies))
        .layer(
            // Method, path, status and latency only: paths carry ids, never names or phones.
            TraceLayer::new_for_http(),
        )
}

/// Serve `app(state)` on `listener` until `shutdown` resolves, then finish in-flight requests,
/// checkpoint the WAL and return. Idle documents are evicted from memory meanwhile.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(shutdown);
    run_serving(state, async move { server.await }).await
}

/// [`serve`] over HTTPS: the same router behind rustls with `tls` (see [`tls::load`]). The
/// state's `Config::tls` should be set, so that answers carry HSTS.
pub async fn serve_tls(
    state: AppState,
    listener: std::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    let grace = state.config().request_timeout;
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(Some(grace));
    });
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handle(handle)
    .serve(service);
    run_serving(state, server).await
}

/// Run `server` with the idle-document evictor beside it; checkpoint the WAL when it ends.
async fn run_serving(
    state: AppState,
    server: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let evictor = {
        let state = state.clone();
        tokio::spawn(async move {
            let idle = state.config().idle_document;
            let mut tick = tokio::time::interval(idle.max(Duration::from_secs(1)) / 2);
            loop {
                tick.tick().await;
                let evicted = state.docs().evict_idle(idle);
                if evicted > 0 {
                    state.metrics().evicted(evicted);
                    tracing::debug!(evicted, "idle documents dropped from memory");
                }
            }
        })
    };
    let result = server.await;
    evictor.abort();
    let st = state.clone();
    match tokio::task::spawn_blocking(move || st.db().checkpoint()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "WAL checkpoint at shutdown failed"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint task failed"),
    }
    result
}

async fn healthz(State(state): State<AppState>) -> AppResult<axum::Json<serde_json::Value>> {
    let st = state.clone();
    // A trivial read proves the database is reachable, not just the process.
    tokio::task::spawn_blocking(move || st.storage().ping()).await??;
    Ok(axum::Json(serde_json::json!({ "status": "ok" })))
}

/// `/metrics` on the main address: only with the operator's token (`--metrics-token`);
/// without one it is served only on `--metrics-listen`, never to anyone who asks.
async fn metrics_handler(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let expected = state.config().metrics_token.as_deref();
    let given = auth::bearer_of(&headers);
    match (expected, given) {
        // Compared as hashes, so the time taken reveals nothing of the token.
        (Some(expected), Some(given)) if auth::token_hash(given) == auth::token_hash(expected) => {
            metrics_text(&state).into_response()
        }
        (Some(_), _) => AppError::unauthorized(
            "invalid_token",
            "metrics need the operator's token (Authorization: Bearer …)",
        )
        .into_response(),
        (None, _) => AppError::not_found("no such endpoint").into_response(),
    }
}

/// The router of `--metrics-listen`: `/metrics` for whoever reaches that address (the
/// operator binds it where only the monitoring system can).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { metrics_text(&state) }),
        )
        .with_state(state)
}

fn metrics_text(state: &AppState) -> impl IntoResponse + use<> {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state
            .metrics()
            .render(state.docs().len(), state.storage().durability()),
    )
}

async fn not_found() -> AppError {
    AppError::not_found("no such endpoint")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    AppError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal server error",
    )
    .into_response()
}

/// Headers every answer carries: no MIME sniffing, no framing (clickjacking), no referrer
/// leaking ids in URLs to other sites, a content policy that allows only the server's own scripts and styles
/// (and `data:` images: the enrollment QR download), and HSTS when served over TLS.
async fn security_headers(State(tls): State<bool>, request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set =
        |headers: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
            headers
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    );
    if tls {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// Give every error response the JSON shape, including the plain ones axum and tower-http
/// produce themselves (413 body limits, 408 timeouts).
async fn json_errors(request: Request<Body>, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // Dashboard pages answer their refusals as HTML pages (with `x-error-code`); everything
    // else gets the JSON shape.
    if !(status.is_client_error() || status.is_server_error()) || is_shaped {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "wrong content type"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "not found"),
        s if s.is_client_error() => ("bad_request", "the request was refused"),
        _ => ("internal", "internal server error"),
    };
    AppError::new(status, code, message).into_response()
}
