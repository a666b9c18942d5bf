//! Batches POSTed as a JSON array to an HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{AuditSinkError, BatchWriter, WriteError};

/// POSTs `[record, record, ...]` with `Content-Type: application/json`.
#[derive(Debug, Clone)]
pub struct HttpWriter {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    timeout: Duration,
    authorization: Option<HeaderValue>,
}

impl HttpWriter {
    /// `endpoint` must be an `http://` URL. TLS is left to the mesh or a
    /// sidecar: the in-cluster audit services this targets speak plain HTTP.
    /// `timeout` bounds each attempt (connect, send, and read the answer).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, AuditSinkError> {
        let bad = |why: &str| AuditSinkError::Endpoint(endpoint.to_string(), why.to_string());
        let uri: Uri = endpoint.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(bad(&format!(
                    "scheme {other:?} is not supported (use http://)"
                )))
            }
            None => return Err(bad("missing scheme (use http://host:port/path)")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("missing host"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpWriter {
            client,
            uri,
            timeout,
            authorization: None,
        })
    }

    /// Send `Authorization: Bearer <token>` with every batch.
    pub fn with_bearer_token(mut self, token: &str) -> Result<Self, AuditSinkError> {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
            AuditSinkError::Endpoint(
                self.uri.to_string(),
                "the bearer token contains characters not allowed in a header".into(),
            )
        })?;
        self.authorization = Some(value);
        Ok(self)
    }

    async fn post(&self, body: Bytes) -> Result<(), WriteError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| WriteError::Permanent(format!("building the request: {e}")))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| WriteError::Retryable(format!("POST {}: {e}", self.uri)))?;
        let status = resp.status();
        // Read the body so the connection can be reused; its text explains a refusal.
        let text = match resp.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes())
                .chars()
                .take(200)
                .collect(),
            Err(_) => String::new(),
        };
        classify(status, &text, &self.uri)
    }
}

/// 2xx is success; 408, 429 and 5xx are worth retrying; any other answer
/// will not change on a retry.
fn classify(status: StatusCode, text: &str, uri: &Uri) -> Result<(), WriteError> {
    if status.is_success() {
        return Ok(());
    }
    let msg = format!("POST {uri}: {status} {text}");
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Err(WriteError::Retryable(msg))
    } else {
        Err(WriteError::Permanent(msg))
    }
}

impl BatchWriter for HttpWriter {
    async fn write(&mut self, lines: &[Arc<str>]) -> Result<(), WriteError> {
        let mut body = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(l.as_bytes());
        }
        body.push(b']');
        match tokio::time::timeout(self.timeout, self.post(Bytes::from(body))).await {
            Ok(r) => r,
            Err(_) => Err(WriteError::Retryable(format!(
                "POST {}: no answer within {:?}",
                self.uri, self.timeout
            ))),
        }
    }

    fn target(&self) -> String {
        self.uri.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_up_front() {
        let t = Duration::from_secs(1);
        assert!(HttpWriter::new("http://audit:8080/api/v1/audit/events/batch", t).is_ok());
        for bad in ["https://audit/x", "audit:8080", "not a url", "http:///x"] {
            let e = HttpWriter::new(bad, t).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_timeouts_throttling_and_server_errors_are_retried() {
        let uri: Uri = "http://a/b".parse().unwrap();
        let retry = |s: u16| {
            matches!(
                classify(StatusCode::from_u16(s).unwrap(), "", &uri),
                Err(WriteError::Retryable(_))
            )
        };
        assert!(classify(StatusCode::OK, "", &uri).is_ok());
        assert!(classify(StatusCode::ACCEPTED, "", &uri).is_ok());
        for s in [408, 429, 500, 502, 503] {
            assert!(retry(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 301] {
            assert!(!retry(s), "{s}");
        }
    }
}
