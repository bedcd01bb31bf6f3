//! `/dashboard`: the page, its assets, signing in and out, and the data it polls.
//! `GET /` redirects here. The page and its assets hold no data and are served to
//! anyone (the sign-in form must load); the data route needs a session opened with an
//! admin key, or an admin key on the request itself.

use axum::extract::{OriginalUri, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use utoipa::IntoParams;
use vigil_analytics::parse_window;
use vigil_telemetry::error_response;

use crate::dashboard::overview::Overview;
use crate::error::ApiError;
use crate::extract::{JsonBytes, PathName, parse_json};
use crate::state::AppState;

const SESSION_ROUTE: &str = "/dashboard/session";
const OVERVIEW_ROUTE: &str = "/dashboard/api/overview";

/// Headers every dashboard answer carries: nothing cached (it is live, and signed
/// in), nothing sniffed, no referrer.
fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the dashboard is the front page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 303, description = "Redirect to /dashboard")))]
pub async fn root() -> Redirect {
    Redirect::to("/dashboard")
}

/// The dashboard page (the sign-in form until a session exists).
#[utoipa::path(get, path = "/dashboard", tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html")))]
pub async fn page() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, mime::TEXT_HTML_UTF_8.as_ref())],
        vigil_dashboard::PAGE,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(vigil_dashboard::CONTENT_SECURITY_POLICY),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    harden(response)
}

/// `GET /dashboard/assets/{file}`: the page's script, styles and charting library.
#[utoipa::path(get, path = "/dashboard/assets/{file}", tag = "dashboard",
    params(("file" = String, Path, description = "dashboard.js, dashboard.css, uPlot.iife.min.js, uPlot.min.css, uPlot.LICENSE.txt, favicon.svg")),
    responses((status = 200, description = "The file"), (status = 404, body = vigil_telemetry::ErrorBody)))]
pub async fn asset(PathName(file): PathName) -> Result<Response, ApiError> {
    let asset = vigil_dashboard::asset(&file).ok_or(ApiError::NotFound)?;
    Ok(harden(
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// An admin key. Named like a secret so that even `log_payloads` redacts it.
    pub api_key: String,
}

/// Opens a dashboard session with an admin key: 204 with an `HttpOnly`,
/// `SameSite=Strict` session cookie scoped to `/dashboard`.
#[utoipa::path(post, path = "/dashboard/session", tag = "dashboard", request_body = SignIn,
    responses((status = 204, description = "Signed in; the session cookie is set"),
        (status = 401, body = vigil_telemetry::ErrorBody), (status = 403, body = vigil_telemetry::ErrorBody),
        (status = 415, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBytes,
) -> Result<Response, ApiError> {
    // The body carries a secret, and serde's messages quote what they refuse (`invalid
    // type: string "<key>"`): the refusals here say what is wrong without quoting it.
    let SignIn { api_key } = parse_json(&body.0).map_err(|e| match e {
        ApiError::MalformedJson(_) => ApiError::MalformedJson("the body is not valid JSON".into()),
        _ => ApiError::InvalidBody("the body must be {\"api_key\": \"<admin key>\"}".into()),
    })?;
    match state
        .auth
        .sign_in(api_key.as_bytes(), &headers, "POST", SESSION_ROUTE)
    {
        Ok(cookie) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(harden(response))
        }
        Err(refused) => Ok(harden(*refused)),
    }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionStatus {
    pub signed_in: bool,
    /// The name of the admin key the session was opened with.
    pub user: Option<String>,
}

/// Whether the request's session cookie is a live session (always 200: the page asks
/// this before deciding to show the sign-in form).
#[utoipa::path(get, path = "/dashboard/session", tag = "dashboard",
    responses((status = 200, body = SessionStatus)))]
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let user = state.auth.session_user(&headers);
    harden(
        axum::Json(SessionStatus {
            signed_in: user.is_some(),
            user: user.map(|u| u.to_string()),
        })
        .into_response(),
    )
}

/// Ends the session and clears its cookie (204 whether or not there was one).
#[utoipa::path(delete, path = "/dashboard/session", tag = "dashboard",
    responses((status = 204, description = "Signed out; the cookie is cleared")))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let cookie = state.auth.sign_out(&headers, "DELETE", SESSION_ROUTE);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    harden(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// Window of the per-route table: `30s`, `5m`, `1h` (10s to 1h; default 5m).
    pub window: Option<String>,
    /// Only samples taken after this time (ms since the Unix epoch; default: all).
    pub since: Option<u64>,
}

/// Everything the dashboard draws. A session cookie or an admin key is required.
#[utoipa::path(get, path = "/dashboard/api/overview", tag = "dashboard", params(OverviewQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Overview), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    if let Err(refused) = state.auth.admit_dashboard(&headers, "GET", OVERVIEW_ROUTE) {
        return harden(*refused);
    }
    let query: OverviewQuery = match Query::try_from_uri(&uri.0) {
        Ok(Query(q)) => q,
        Err(e) => return harden(invalid("invalid_query", e.body_text())),
    };
    let window = match parse_window(query.window.as_deref()) {
        Ok(w) => w,
        Err(e) => return harden(invalid("invalid_window", e.to_string())),
    };
    harden(axum::Json(Overview::build(&state, window, query.since.unwrap_or(0))).into_response())
}

fn invalid(code: &'static str, message: String) -> Response {
    error_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
        serde_json::Value::Null,
    )
}
