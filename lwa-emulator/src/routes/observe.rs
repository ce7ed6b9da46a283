//! The middleware every non-control request passes: record it (redacted), log it (redacted,
//! when `--log`), and apply a queued fault before the handler runs.
//!
//! The steps, in an order that matters:
//! 1. The control API (`/_emulator/…`) passes untouched: a test steers the emulator through it
//!    while faults are queued, and its calls are not part of the traffic under test.
//! 2. [`read_body`]: the whole body, bounded in size and time, before anything else. A body too
//!    large or too slow is refused here, so it is neither logged nor recorded (the record holds
//!    parameters, and such a request has none that can be trusted).
//! 3. [`log_arrival`], then [`record`]: the record entry and the fault queued for the endpoint
//!    are taken under one lock, so the record's order is the order faults are used up.
//! 4. [`inject`]: a fault acts after the record, so a faulted request is still recorded (with
//!    its fault). A delay then lets the request through; the others answer instead of the handler.
//! 5. The handler, with the body read in step 2, and its status in the record and the log.
//!
//! The log lines are written from this module, so their target (`lwa_emulator::routes::observe`,
//! what `RUST_LOG` filters on) stays the same.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::content_type;
use crate::conn::ConnMeta;
use crate::fault::{Endpoint, Fault};
use crate::oauth_error::{json_response, OAuthError};
use crate::params::{Params, MAX_BODY};
use crate::record::RecordedRequest;
use crate::redact;
use crate::server::Shared;

/// The [`Fault::MalformedJson`] body: a token response cut off mid-field.
const TRUNCATED_TOKEN: &str = r#"{"access_token":"Atza|IwEBIA","token_type":"bea"#;

/// Headers kept in the request record.
const RECORDED_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-access-token",
    "accept-language",
    "user-agent",
    "cookie",
];

pub(crate) async fn observe(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/_emulator/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, shared.body_timeout).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.into_response(),
    };
    let query = Params::from_query(parts.uri.query());
    let params = body_params(&parts, &bytes);
    if shared.log {
        log_arrival(&parts, &conn, &query, &params);
    }
    let (seq, fault) = record(&shared, &parts, &query, &params);
    let fault_note = fault.as_ref().map(Fault::describe);
    if let Some(fault) = fault {
        if let Some(answer) = inject(&shared, &conn, &parts, seq, fault).await {
            return answer;
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status().as_u16();
    shared.lock().finish_record(seq, Some(status), fault_note);
    if shared.log {
        tracing::info!("{path} -> {status}");
    }
    response
}

/// The whole body: at most [`MAX_BODY`] bytes, within `deadline` (the configured
/// [`crate::EmulatorConfig::body_timeout`]).
async fn read_body(body: Body, deadline: Duration) -> Result<Bytes, OAuthError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(OAuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("The request body is larger than {MAX_BODY} bytes"),
        )),
        Err(_) => Err(OAuthError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "The request body did not arrive in time",
        )),
    }
}

/// The body's parameters (form or JSON); a body that cannot be read as parameters has none.
fn body_params(parts: &Parts, bytes: &[u8]) -> Params {
    if bytes.is_empty() {
        return Params::default();
    }
    Params::from_body(content_type(&parts.headers), bytes).unwrap_or_default()
}

/// `METHOD /path from PEER name=value …`, secrets shortened for a log.
fn log_arrival(parts: &Parts, conn: &ConnMeta, query: &Params, params: &Params) {
    let shown: Vec<String> = query
        .pairs()
        .iter()
        .chain(params.pairs())
        .map(|(k, v)| format!("{k}={}", redact::param_for_log(k, v)))
        .collect();
    tracing::info!(
        "{} {} from {} {}",
        parts.method,
        parts.uri.path(),
        conn.remote,
        shown.join(" ")
    );
}

/// Records the request (secrets redacted) and takes the fault queued for its endpoint, under
/// one lock; returns the record's sequence number and the fault.
fn record(shared: &Shared, parts: &Parts, query: &Params, params: &Params) -> (u64, Option<Fault>) {
    let path = parts.uri.path();
    let endpoint = Endpoint::classify(path);
    let headers = RECORDED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), redact::param(name, value)))
        })
        .collect();
    let entry = RecordedRequest {
        seq: 0,
        endpoint,
        method: parts.method.to_string(),
        path: path.to_owned(),
        query: redacted(query),
        content_type: content_type(&parts.headers).map(str::to_owned),
        params: redacted(params),
        headers,
        status: None,
        fault: None,
    };
    let mut store = shared.lock();
    let seq = store.record(entry);
    (seq, endpoint.and_then(|e| store.faults.take(e)))
}

/// Every pair of `params`, its value redacted for the record.
fn redacted(params: &Params) -> Vec<(String, String)> {
    params
        .pairs()
        .iter()
        .map(|(k, v)| (k.clone(), redact::param(k, v)))
        .collect()
}

/// Applies `fault` to request `seq`: a delay holds it, then lets it through (`None`); a drop
/// cuts the connection; the others answer instead of the handler. Whatever answers here is
/// recorded here.
async fn inject(
    shared: &Shared,
    conn: &ConnMeta,
    parts: &Parts,
    seq: u64,
    fault: Fault,
) -> Option<Response> {
    let note = fault.describe();
    if shared.log {
        tracing::info!(
            "{} {}: injecting fault {note}",
            parts.method,
            parts.uri.path()
        );
    }
    let response = match fault {
        Fault::Delay { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            return None;
        }
        Fault::Drop => {
            conn.kill();
            shared.lock().finish_record(seq, None, Some(note));
            return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Fault::MalformedJson => json_response(StatusCode::OK, TRUNCATED_TOKEN.to_owned()),
        Fault::Status {
            status,
            retry_after,
            body,
        } => status_fault(status, retry_after, body),
    };
    let status = response.status().as_u16();
    shared.lock().finish_record(seq, Some(status), Some(note));
    Some(response)
}

fn status_fault(status: u16, retry_after: Option<u64>, body: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = body.unwrap_or_else(|| {
        let error = if status.is_server_error() {
            OAuthError::new(
                status,
                "servererror",
                "The server encountered an internal error",
            )
        } else {
            OAuthError::new(status, "too_many_requests", "The request was throttled")
        };
        serde_json::to_string(&error.body()).unwrap_or_default()
    });
    let mut response = json_response(status, body);
    if let Some(secs) = retry_after {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}
