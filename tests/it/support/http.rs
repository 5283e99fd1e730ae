//! One plain HTTP/1.1 GET over a TCP socket, as a browser or an SDMX client sends it, for the
//! tests of the metrics, dashboard and SDMX listeners: the answer read to the end (the request
//! asks the server to close) and a chunked (streamed) body joined again.

use std::io::{Read, Write};
use std::net::SocketAddr;

use super::DEADLINE;

/// One answer: the status line (`HTTP/1.1 200 OK`), its code, the header lines and the body.
pub struct Answer {
    pub status_line: String,
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), or "".
    pub fn header(&self, name: &str) -> String {
        self.head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    }
}

/// `GET path` to `addr` with the `Host` header `host` and the extra `headers` (`Name: value`).
pub fn get(addr: SocketAddr, path: &str, host: &str, headers: &[&str]) -> Answer {
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status_line = head.lines().next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Answer {
        status_line,
        status,
        head: head.to_string(),
        body: if chunked { dechunk(body) } else { body.to_string() },
    }
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).expect("a chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}
