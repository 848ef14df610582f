//! A minimal keep-alive HTTP/1.1 client for the load generator: it writes pre-built request
//! bytes and reads back the status line, headers and `Content-Length` body, nothing more. The
//! load generator shares the machine with the ingress and RabbitMQ, so the less CPU it takes,
//! the more the figures say about the ingress.

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One keep-alive connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A complete request: `POST path` with `headers` and `body`, as bytes ready to send.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: bench\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(headers: &[u8]) -> usize {
    let text = String::from_utf8_lossy(headers);
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

impl Client {
    /// Opens a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and returns the response's status code once its body has arrived.
    pub async fn round_trip(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                continue;
            };
            let total = end + 4 + content_length(&self.buf[..end]);
            while self.buf.len() < total {
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            let status = std::str::from_utf8(self.buf.get(9..12).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("no status line"))?;
            return Ok(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_found_whatever_its_case() {
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 3"), 3);
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\ncontent-length:12"), 12);
        assert_eq!(content_length(b"HTTP/1.1 200 OK"), 0);
    }

    #[test]
    fn a_request_carries_its_length() {
        let r = request("POST", "/x", &[("a", "b")], b"hello");
        let text = String::from_utf8(r).unwrap_or_default();
        assert!(text.starts_with("POST /x HTTP/1.1\r\n"));
        assert!(text.contains("a: b\r\n"));
        assert!(text.ends_with("content-length: 5\r\n\r\nhello"));
    }
}
