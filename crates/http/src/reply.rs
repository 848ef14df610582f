//! The plain answer: a status, a content type and a whole body, with the headers every
//! answer of the project carries (`X-Content-Type-Options: nosniff`). It owns no body format
//! (JSON, text) and no header a route adds of its own (caching, `Retry-After`, `Allow`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// Every answer the servers give: a whole body, known before the first byte is sent.
pub type Reply = Response<Full<Bytes>>;

/// An answer of `status` with `body` as `content_type`.
#[inline]
pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_status_type_nosniff_and_body() {
        let r = reply(StatusCode::ACCEPTED, "text/plain; charset=utf-8", "ok\n");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers().len(), 2);
    }
}
