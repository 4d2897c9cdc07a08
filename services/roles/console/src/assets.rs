//! The web console's files, compiled into the binary from `web/` so the process serves its own UI
//! with nothing to install beside it, and the Content-Security-Policy every console answer carries.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the console lives.
pub const PREFIX: &str = "/console/";

/// One embedded file: its path under [`PREFIX`], its media type and its bytes.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub media_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $media_type:expr),* $(,)?) => {
        /// Every file the console is made of, `index.html` first. A test checks that `web/` holds
        /// no file missing here.
        pub const ASSETS: &[Asset] = &[$(Asset {
            path: $path,
            media_type: $media_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }),*];
    };
}

const JS: &str = "text/javascript; charset=utf-8";

assets! {
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/i18n.js" => JS,
    "js/lang/en.js" => JS,
    "js/lang/zh.js" => JS,
    "js/session.js" => JS,
    "js/live.js" => JS,
    "js/explain.js" => JS,
    "js/format.js" => JS,
    "js/chart.js" => JS,
    "js/screens/login.js" => JS,
    "js/screens/board.js" => JS,
    "js/screens/detail.js" => JS,
    "js/screens/correction.js" => JS,
    "js/screens/review.js" => JS,
    "js/screens/cockpit.js" => JS,
    "js/screens/rules.js" => JS,
    "js/screens/departments.js" => JS,
    "js/screens/accounts.js" => JS,
    "js/screens/agents.js" => JS,
    "js/screens/workload.js" => JS,
}

/// Scripts and styles only from the console's own files (no inline code, so an injected tag does
/// nothing), requests only to this origin, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The paths anyone may fetch: the files hold no data, and the login page must load first.
pub fn public_paths() -> Vec<String> {
    let mut paths = vec!["/console".to_owned(), PREFIX.to_owned()];
    paths.extend(ASSETS.iter().map(|a| format!("{PREFIX}{}", a.path)));
    paths
}

/// A route per file, `/console/` answering `index.html`.
pub fn routes() -> Router {
    let mut router = Router::new()
        .route("/console", get(|| async { Redirect::permanent(PREFIX) }))
        .route(PREFIX, get(|| async { serve(&ASSETS[0]) }));
    for asset in ASSETS {
        router = router.route(
            &format!("{PREFIX}{}", asset.path),
            get(|| async { serve(asset) }),
        );
    }
    router
}

fn serve(asset: &'static Asset) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, asset.media_type),
            // The files change with the binary; a browser asks again rather than run a stale one.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.body,
    )
        .into_response()
}

/// Adds the policy and its companions to an answer of the console role.
pub async fn secure(response: Response) -> Response {
    let mut response = response;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn files(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("web/ is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                files(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("under web/");
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_file_in_web_is_served_and_nothing_else() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = BTreeSet::new();
        files(&root, &root, &mut on_disk);
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        assert_eq!(on_disk, served);
        assert_eq!(ASSETS[0].path, "index.html");
    }

    #[test]
    fn the_page_preloads_every_module() {
        let index = std::str::from_utf8(ASSETS[0].body).expect("UTF-8");
        for asset in ASSETS
            .iter()
            .filter(|a| a.path.ends_with(".js") && a.path != "js/main.js")
        {
            let link = format!(
                "<link rel=\"modulepreload\" href=\"{PREFIX}{}\">",
                asset.path
            );
            assert!(index.contains(&link), "index.html lacks {link}");
        }
    }

    #[test]
    fn no_file_carries_inline_script_or_style() {
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("text files");
            for banned in ["<script>", "style=", "innerHTML", "onclick=", "javascript:"] {
                assert!(
                    !text.contains(banned),
                    "{} contains {banned:?}, which the policy refuses or the console forbids",
                    asset.path
                );
            }
        }
    }
}
