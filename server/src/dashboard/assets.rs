//! Static files compiled into the binary and served under a content-hashed name
//! (`/assets/dashboard.3f2a9c1d.css`), so browsers cache them forever and a new release is
//! fetched at once.
//!
//! - `htmx.min.js`: htmx 2.0.11 from npm `htmx.org` (BSD Zero Clause licence, `htmx-LICENSE.txt`
//!   beside it); pinned to the 2.0 line, whose defaults the pages rely on.
//! - `dashboard.js`: the live-update glue (server-sent events → refresh a fragment, or the
//!   "N 条新同步 · 刷新" badge on a table being read).
//! - `dashboard.css`: screen and print styles (A4 公示, the QR card sheet).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// The logical name templates ask for.
    logical: &'static str,
    /// `stem.hash8.ext`.
    served: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx-2.0.11.min.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard.css"),
    ),
    (
        "htmx-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/htmx-LICENSE.txt"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(logical, content_type, bytes)| {
            let hash = hex::encode(&Sha256::digest(bytes)[..4]);
            let (stem, ext) = logical
                .split_once('.')
                .expect("invariant: asset names have an extension");
            Asset {
                logical,
                served: format!("{stem}.{hash}.{ext}"),
                content_type,
                bytes,
            }
        })
        .collect()
});

/// The served (hashed) file name of a logical asset name.
pub fn name(logical: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.logical == logical)
        .map(|a| a.served.as_str())
        .expect("invariant: templates only name assets listed in FILES")
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.served == name) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_names_carry_a_content_hash() {
        let css = name("dashboard.css");
        assert!(css.starts_with("dashboard.") && css.ends_with(".css") && css.len() == 22);
        assert_ne!(name("htmx.min.js"), "htmx.min.js");
    }
}
