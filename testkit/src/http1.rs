//! Just enough HTTP/1.1 for a fake upstream: request heads via `httparse`, bodies by
//! Content-Length or chunked encoding, replies with either framing.

use crate::{RecordedRequest, Reply, ReplyBody};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

const MAX_HEAD: usize = 256 * 1024;

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection between requests.
    Closed,
    Malformed(&'static str),
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one request (head and body).
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<RecordedRequest, ReadError> {
    let mut head = Vec::with_capacity(4096);
    loop {
        let n = reader.read_until(b'\n', &mut head).await?;
        if n == 0 {
            return if head.is_empty() {
                Err(ReadError::Closed)
            } else {
                Err(ReadError::Malformed("eof in head"))
            };
        }
        if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
            if head == b"\r\n" {
                head.clear();
                continue;
            }
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(ReadError::Malformed("head too large"));
        }
    }
    let mut parsed_headers = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut parsed_headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ReadError::Malformed("bad head")),
    }
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body =
        if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(reader).await?
        } else if let Some(length) = find("content-length") {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| ReadError::Malformed("bad content-length"))?;
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            body
        } else {
            Vec::new()
        };
    Ok(RecordedRequest {
        method,
        target,
        headers,
        body,
        raw_head: head,
    })
}

async fn read_chunked<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).await? == 0 || trailer == "\r\n" {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Writes a reply. Returns whether the connection may carry another request.
pub async fn write_reply<W: AsyncWrite + Unpin>(w: &mut W, reply: &Reply) -> std::io::Result<bool> {
    if let Some(delay) = reply.head_delay {
        tokio::time::sleep(delay).await;
    }
    let mut body = &reply.body;
    while let ReplyBody::Held { gate, then } = body {
        gate.pass().await;
        body = then;
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    match body {
        ReplyBody::Full(body) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            let mut out = head.into_bytes();
            out.extend_from_slice(body);
            w.write_all(&out).await?;
            Ok(true)
        }
        ReplyBody::Chunked(pieces) | ReplyBody::ChunkedCut(pieces) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            w.write_all(head.as_bytes()).await?;
            w.flush().await?;
            for (delay, piece) in pieces {
                if !delay.is_zero() {
                    tokio::time::sleep(*delay).await;
                }
                if !piece.is_empty() {
                    write_chunk(w, piece).await?;
                }
            }
            if matches!(body, ReplyBody::ChunkedCut(_)) {
                w.shutdown().await?;
                return Ok(false);
            }
            w.write_all(b"0\r\n\r\n").await?;
            w.flush().await?;
            Ok(true)
        }
        ReplyBody::Truncated { announced, sent } => {
            head.push_str(&format!("content-length: {announced}\r\n\r\n"));
            w.write_all(head.as_bytes()).await?;
            w.write_all(sent).await?;
            w.flush().await?;
            w.shutdown().await?;
            Ok(false)
        }
        ReplyBody::Gated(pieces, gate) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            w.write_all(head.as_bytes()).await?;
            w.flush().await?;
            for piece in pieces.iter().filter(|p| !p.is_empty()) {
                gate.pass().await;
                write_chunk(w, piece).await?;
            }
            w.write_all(b"0\r\n\r\n").await?;
            w.flush().await?;
            Ok(true)
        }
        ReplyBody::Hang => {
            std::future::pending::<()>().await;
            Ok(false)
        }
        ReplyBody::Held { .. } => unreachable!("unwrapped above"),
    }
}

async fn write_chunk<W: AsyncWrite + Unpin>(w: &mut W, piece: &[u8]) -> std::io::Result<()> {
    let mut out = format!("{:x}\r\n", piece.len()).into_bytes();
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out).await?;
    w.flush().await
}
