//! A minimal HTTP/1.1 client connection for the load generator.
//!
//! Why not reqwest or hyper: at tens of thousands of requests per second on the same two cores as
//! the server, the generator's own cost per request decides the figure. This connection writes a
//! pre-built request with one `write` and parses the answer in place in a reused buffer, in the
//! worker's own task (no connection task, no channel, no header map, no allocation). It supports
//! what a load test meets: keep-alive, `Content-Length` and chunked bodies, `Connection: close`,
//! interim 1xx answers. One request is in flight per connection (no pipelining).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers larger than this are refused as malformed (batch answers of 500 results are ~50 KiB).
const MAX_RESPONSE: usize = 16 << 20;
const INITIAL_BUFFER: usize = 16 << 10;

/// Why a request got no answer. Kinds, not messages: they are counted per kind in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportError {
    /// The TCP connection could not be opened (server down, port wrong).
    Connect,
    /// The connection broke while sending or receiving.
    Io,
    /// The server closed the connection before the answer was complete.
    Closed,
    /// The bytes received were not an HTTP/1.x answer this client understands.
    Malformed,
    /// No complete answer within --timeout.
    Timeout,
}

impl TransportError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Io => "io",
            Self::Closed => "closed",
            Self::Malformed => "malformed",
            Self::Timeout => "timeout",
        }
    }
}

/// A parsed answer; `body` borrows the connection's buffer until the next request.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` that hold received data.
    filled: usize,
    /// False once the server said `Connection: close` (or spoke HTTP/1.0): drop after this answer.
    pub reusable: bool,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are written whole; Nagle would only add delay.
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            filled: 0,
            reusable: true,
        })
    }

    /// Sends a complete request and reads its answer.
    pub async fn round_trip(&mut self, request: &[u8]) -> Result<Response<'_>, TransportError> {
        // Without pipelining nothing may be left over; stale bytes would only confuse parsing.
        self.filled = 0;
        self.stream
            .write_all(request)
            .await
            .map_err(|_| TransportError::Io)?;
        let (status, head_len, framing) = loop {
            let head_len = loop {
                if let Some(end) = find(&self.buf[..self.filled], b"\r\n\r\n") {
                    break end + 4;
                }
                self.read_more().await?;
            };
            let head = parse_head(&self.buf[..head_len])?;
            if (100..200).contains(&head.status) {
                // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                self.buf.copy_within(head_len..self.filled, 0);
                self.filled -= head_len;
                continue;
            }
            if !head.keep_alive {
                self.reusable = false;
            }
            break (head.status, head_len, head.framing);
        };
        let body_end = match framing {
            _ if status == 204 || status == 304 => head_len,
            Framing::Length(len) => {
                let end = head_len.checked_add(len).ok_or(TransportError::Malformed)?;
                while self.filled < end {
                    self.read_more().await?;
                }
                end
            }
            Framing::Chunked => self.read_chunked(head_len).await?,
            Framing::UntilClose => {
                self.reusable = false;
                while self.read_more_or_eof().await? {}
                self.filled
            }
        };
        Ok(Response {
            status,
            body: &self.buf[head_len..body_end],
        })
    }

    /// Decodes a chunked body in place (data is moved down over the size lines); returns where
    /// the decoded body ends.
    async fn read_chunked(&mut self, start: usize) -> Result<usize, TransportError> {
        let mut write = start;
        let mut read = start;
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[read..self.filled], b"\r\n") {
                    break read + i;
                }
                self.read_more().await?;
            };
            let size = parse_chunk_size(&self.buf[read..line_end])?;
            read = line_end + 2;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find(&self.buf[read..self.filled], b"\r\n") {
                            break read + i;
                        }
                        self.read_more().await?;
                    };
                    let empty = end == read;
                    read = end + 2;
                    if empty {
                        return Ok(write);
                    }
                }
            }
            let data_end = read.checked_add(size).ok_or(TransportError::Malformed)?;
            while self.filled < data_end + 2 {
                self.read_more().await?;
            }
            self.buf.copy_within(read..data_end, write);
            write += size;
            read = data_end + 2;
        }
    }

    async fn read_more(&mut self) -> Result<(), TransportError> {
        if self.read_more_or_eof().await? {
            Ok(())
        } else {
            Err(TransportError::Closed)
        }
    }

    /// Reads what is available; false at end of stream.
    async fn read_more_or_eof(&mut self) -> Result<bool, TransportError> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_RESPONSE {
                return Err(TransportError::Malformed);
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self
            .stream
            .read(&mut self.buf[self.filled..])
            .await
            .map_err(|_| TransportError::Io)?;
        self.filled += n;
        Ok(n > 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
}

/// Parses a status line and the headers this client cares about.
fn parse_head(head: &[u8]) -> Result<Head, TransportError> {
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let status_line = lines.next().ok_or(TransportError::Malformed)?;
    // "HTTP/1.1 202 Accepted"
    if status_line.len() < 12 || !status_line.starts_with(b"HTTP/1.") || status_line[8] != b' ' {
        return Err(TransportError::Malformed);
    }
    let http10 = status_line[7] == b'0';
    let status = parse_decimal(&status_line[9..12]).ok_or(TransportError::Malformed)? as u16;
    let mut keep_alive = !http10;
    let mut framing = Framing::UntilClose;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            if framing != Framing::Chunked {
                framing = Framing::Length(parse_decimal(value).ok_or(TransportError::Malformed)?);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if contains_ignore_case(value, b"chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if contains_ignore_case(value, b"close") {
                keep_alive = false;
            } else if contains_ignore_case(value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Head {
        status,
        keep_alive,
        framing,
    })
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, TransportError> {
    let digits = line.split(|&b| b == b';').next().map(trim).unwrap_or(b"");
    if digits.is_empty() || digits.len() > 12 {
        return Err(TransportError::Malformed);
    }
    let mut n = 0usize;
    for &b in digits {
        let d = (b as char).to_digit(16).ok_or(TransportError::Malformed)?;
        n = n * 16 + d as usize;
    }
    Ok(n)
}

fn parse_decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn heads_parse() {
        let h = parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 202,
                keep_alive: true,
                framing: Framing::Length(12)
            }
        );
        let h = parse_head(b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(h.status, 429);
        assert!(!h.keep_alive);
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x2 OK\r\n\r\n").is_err());
    }

    #[test]
    fn chunk_sizes_parse() {
        assert_eq!(parse_chunk_size(b"1a"), Ok(26));
        assert_eq!(parse_chunk_size(b"0;ext=1"), Ok(0));
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"").is_err());
    }

    /// A server that answers each request (read up to the blank line) with the next canned reply,
    /// written in small pieces to exercise partial reads.
    async fn canned_server(replies: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for reply in replies {
                let mut got = Vec::new();
                while find(&got, b"\r\n\r\nBODY").is_none() {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                for piece in reply.chunks(7) {
                    sock.write_all(piece).await.unwrap();
                    sock.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        addr
    }

    const REQ: &[u8] = b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nBODY";

    #[tokio::test]
    async fn keep_alive_lengths_chunks_and_interim_answers() {
        let addr = canned_server(vec![
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 21\r\n\r\n{\"status\":\"accepted\"}",
            b"HTTP/1.1 429 Too Many Requests\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"err\r\n3;x=y\r\nor\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nbye",
        ])
        .await;
        let mut c = Conn::connect(addr).await.unwrap();
        let r = c.round_trip(REQ).await.unwrap();
        assert_eq!((r.status, r.body), (202, &b"{\"status\":\"accepted\"}"[..]));
        let r = c.round_trip(REQ).await.unwrap();
        assert_eq!((r.status, r.body), (429, &b"{\"error\"}"[..]));
        let r = c.round_trip(REQ).await.unwrap();
        assert_eq!((r.status, r.body), (204, &b""[..]));
        assert!(c.reusable);
        let r = c.round_trip(REQ).await.unwrap();
        assert_eq!((r.status, r.body), (200, &b"bye"[..]));
        assert!(!c.reusable);
    }

    #[tokio::test]
    async fn a_cut_answer_is_closed_not_a_hang() {
        let addr = canned_server(vec![
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 50\r\n\r\n{\"short\"",
        ])
        .await;
        let mut c = Conn::connect(addr).await.unwrap();
        assert_eq!(c.round_trip(REQ).await.unwrap_err(), TransportError::Closed);
    }
}
