//! The middleware every non-control request passes: record it (redacted), log it (redacted,
//! when `--log`), and apply a queued fault before the handler runs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::conn::ConnMeta;
use crate::fault::{Endpoint, Fault};
use crate::oauth_error::{json_response, OAuthError};
use crate::params::{Params, MAX_BODY};
use crate::record::RecordedRequest;
use crate::redact;
use crate::server::Shared;

/// A peer that sends its body slower than this is cut off.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

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
    let endpoint = Endpoint::classify(&path);
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return OAuthError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!("The request body is larger than {MAX_BODY} bytes"),
            )
            .into_response()
        }
        Err(_) => {
            return OAuthError::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                "The request body did not arrive in time",
            )
            .into_response()
        }
    };

    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = Params::from_query(parts.uri.query());
    let params = if bytes.is_empty() {
        Params::default()
    } else {
        Params::from_body(content_type.as_deref(), &bytes).unwrap_or_default()
    };
    let headers: Vec<(String, String)> = RECORDED_HEADERS
        .iter()
        .filter_map(|name| {
            parts
                .headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*name).to_owned(), redact::param(name, v)))
        })
        .collect();
    let redact_all = |p: &Params| -> Vec<(String, String)> {
        p.pairs()
            .iter()
            .map(|(k, v)| (k.clone(), redact::param(k, v)))
            .collect()
    };

    if shared.log {
        let shown: Vec<String> = query
            .pairs()
            .iter()
            .chain(params.pairs())
            .map(|(k, v)| format!("{k}={}", redact::param_for_log(k, v)))
            .collect();
        tracing::info!(
            "{} {} from {} {}",
            parts.method,
            path,
            conn.remote,
            shown.join(" ")
        );
    }

    let (seq, fault) = {
        let mut store = shared.lock();
        let seq = store.record(RecordedRequest {
            seq: 0,
            endpoint,
            method: parts.method.to_string(),
            path: path.clone(),
            query: redact_all(&query),
            content_type,
            params: redact_all(&params),
            headers,
            status: None,
            fault: None,
        });
        let fault = endpoint.and_then(|e| store.faults.take(e));
        (seq, fault)
    };

    let mut fault_note = None;
    if let Some(fault) = fault {
        fault_note = Some(fault.describe());
        if shared.log {
            tracing::info!(
                "{} {}: injecting fault {}",
                parts.method,
                path,
                fault.describe()
            );
        }
        let response = match fault {
            Fault::Delay { millis } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                None
            }
            Fault::Drop => {
                conn.kill();
                shared.lock().finish_record(seq, None, fault_note);
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Fault::MalformedJson => Some(json_response(
                StatusCode::OK,
                r#"{"access_token":"Atza|IwEBIA","token_type":"bea"#.to_owned(),
            )),
            Fault::Status {
                status,
                retry_after,
                body,
            } => Some(status_fault(status, retry_after, body)),
        };
        if let Some(response) = response {
            let status = response.status().as_u16();
            shared.lock().finish_record(seq, Some(status), fault_note);
            return response;
        }
    }

    let request = Request::from_parts(parts, Body::from(Bytes::clone(&bytes)));
    let response = next.run(request).await;
    let status = response.status().as_u16();
    shared.lock().finish_record(seq, Some(status), fault_note);
    if shared.log {
        tracing::info!("{path} -> {status}");
    }
    response
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
