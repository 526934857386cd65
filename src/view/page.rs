//! The status page: one HTML file, a script and a style sheet, all compiled into the binary so
//! the page works from a machine with no internet. The script draws the board it polls from
//! `/status/board` with DOM text nodes only (never markup from data), and the policy in the
//! header forbids every request but to the daemon itself.

/// The page's Content-Security-Policy: nothing from elsewhere, no inline script or style.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub const INDEX: &str = include_str!("page/index.html");

/// A file of the page under `/assets/`: its content type and body.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.js" => Some(("text/javascript; charset=utf-8", include_str!("page/app.js"))),
        "style.css" => Some(("text/css; charset=utf-8", include_str!("page/style.css"))),
        _ => None,
    }
}
