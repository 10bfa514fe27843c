//! The admin JSON API under `/api/v1/admin/...` (documented in `docs/api.md`). Every handler
//! takes an [`crate::auth::AdminSession`] and answers errors as [`crate::error::AppError`].

use axum::Router;

use crate::state::AppState;

/// The admin routes; mounted by [`crate::app`] at `/api/v1/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
}
