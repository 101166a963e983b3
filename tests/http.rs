//! Just enough HTTP/1.1 for the test harness's servers on loopback (the Runtime API player and
//! the fault-injecting proxy): one request or response at a time on a keep-alive connection,
//! bodies by `Content-Length` or chunked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A request or a response: the start line, the headers (names as sent) and the body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The method and path of a request.
    pub fn method_path(&self) -> (&str, &str) {
        let mut parts = self.start.split(' ');
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
    }

    /// The status code of a response.
    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Reads one message; `None` at the end of the stream. With `to_eof`, a body without a length
/// runs to the end of the stream (a response from a server that closes).
pub fn read_message(r: &mut BufReader<TcpStream>, to_eof: bool) -> Option<Message> {
    let mut start = String::new();
    loop {
        start.clear();
        if r.read_line(&mut start).ok()? == 0 {
            return None;
        }
        if !start.trim().is_empty() {
            break;
        }
    }
    let mut m = Message {
        start: start.trim_end().to_string(),
        ..Message::default()
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            m.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if let Some(n) = m
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        r.read_exact(&mut body).ok()?;
        m.body = body;
    } else if m
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            m.body.extend(chunk);
        }
        m.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"));
    } else if to_eof {
        r.read_to_end(&mut m.body).ok()?;
    }
    Some(m)
}

/// Writes a message with its headers (less its own framing ones) and a `Content-Length`.
pub fn write_message(w: &mut TcpStream, m: &Message) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(m.body.len() + 256);
    out.extend_from_slice(m.start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in &m.headers {
        let framing = ["content-length", "transfer-encoding"]
            .iter()
            .any(|f| k.eq_ignore_ascii_case(f));
        if !framing {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", m.body.len()).as_bytes());
    out.extend_from_slice(&m.body);
    w.write_all(&out)?;
    w.flush()
}

/// A response with a status, a content type and a body.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Message {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![("Content-Type".to_string(), content_type.to_string())],
        body: body.to_vec(),
    }
}
