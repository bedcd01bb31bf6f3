//! The dashboard page: one HTML document, its stylesheet and script, and the charting
//! library (uPlot, vendored from npm with its licence), all compiled into the binary.
//! Nothing is fetched from anywhere else, so the page works offline and its Content
//! Security Policy can allow only the server itself.
//!
//! The page holds no data: it signs in (`POST /dashboard/session`) and polls
//! `/dashboard/api/overview`, which the inference service answers.

/// A file the page loads.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

/// The page itself.
pub const PAGE: &str = include_str!("../assets/index.html");

/// The licence of the vendored charting library, served beside it.
pub const UPLOT_LICENSE: &str = include_str!("../assets/vendor/uplot/LICENSE");

/// Content Security Policy of the page: scripts, styles and data from the server only;
/// no inline script, no frames, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The file under `/dashboard/assets/` named `name`, if the page has one.
pub fn asset(name: &str) -> Option<Asset> {
    let (body, content_type): (&'static [u8], &'static str) = match name {
        "dashboard.js" => (
            include_bytes!("../assets/dashboard.js"),
            mime::APPLICATION_JAVASCRIPT_UTF_8.as_ref(),
        ),
        "dashboard.css" => (
            include_bytes!("../assets/dashboard.css"),
            mime::TEXT_CSS_UTF_8.as_ref(),
        ),
        "uPlot.iife.min.js" => (
            include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
            mime::APPLICATION_JAVASCRIPT_UTF_8.as_ref(),
        ),
        "uPlot.min.css" => (
            include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
            mime::TEXT_CSS_UTF_8.as_ref(),
        ),
        "favicon.svg" => (
            include_bytes!("../assets/favicon.svg"),
            mime::IMAGE_SVG.as_ref(),
        ),
        "uPlot.LICENSE.txt" => (UPLOT_LICENSE.as_bytes(), mime::TEXT_PLAIN_UTF_8.as_ref()),
        _ => return None,
    };
    Some(Asset { body, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        for name in [
            "dashboard.js",
            "dashboard.css",
            "uPlot.iife.min.js",
            "uPlot.min.css",
            "favicon.svg",
        ] {
            assert!(
                PAGE.contains(&format!("/dashboard/assets/{name}")),
                "{name} not linked"
            );
            assert!(!asset(name).unwrap().body.is_empty());
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(UPLOT_LICENSE.contains("MIT"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [
            PAGE,
            std::str::from_utf8(asset("dashboard.js").unwrap().body).unwrap(),
        ] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("<script>"), "inline script breaks the CSP");
        }
    }
}
