//! Reading a whole command section: from bytes in memory ([`check`]) or from a stream
//! ([`read_section`], which reads nothing past it), and the fuzzers' entry point.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::parser::{Len, Parser, parse_len};
use super::{Pkt, PktError, Request, Summary};

/// Checks the command section at the start of `data` (a whole request body, or its start).
pub fn check(kind: Request, data: &[u8]) -> Result<Summary, PktError> {
    let mut parser = Parser::new(kind);
    let mut pos = 0;
    while !parser.done() {
        let prefix: [u8; 4] = data
            .get(pos..pos + 4)
            .and_then(|p| p.try_into().ok())
            .ok_or(PktError::Truncated)?;
        let (pkt, len) = match parse_len(prefix)? {
            Len::Flush => (Pkt::Flush, 4),
            Len::Delim => (Pkt::Delim, 4),
            Len::ResponseEnd => (Pkt::ResponseEnd, 4),
            Len::Data(n) => (
                Pkt::Data(data.get(pos + 4..pos + 4 + n).ok_or(PktError::Truncated)?),
                n + 4,
            ),
        };
        parser.push(pkt, len)?;
        pos += len;
    }
    parser.finish()
}

/// Reads the command section from `reader`: the exact bytes read (to hand to git before the
/// rest of the stream) and what they said. Reads nothing past the section.
pub async fn read_section<R: AsyncRead + Unpin>(
    reader: &mut R,
    kind: Request,
) -> Result<(Vec<u8>, Summary), PktError> {
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            PktError::Truncated
        } else {
            PktError::Io(e.to_string())
        }
    };
    let mut parser = Parser::new(kind);
    let mut buf = Vec::new();
    while !parser.done() {
        let mut prefix = [0u8; 4];
        reader.read_exact(&mut prefix).await.map_err(io)?;
        let start = buf.len();
        buf.extend_from_slice(&prefix);
        let pkt = match parse_len(prefix)? {
            Len::Flush => Pkt::Flush,
            Len::Delim => Pkt::Delim,
            Len::ResponseEnd => Pkt::ResponseEnd,
            Len::Data(n) => {
                buf.resize(start + 4 + n, 0);
                reader.read_exact(&mut buf[start + 4..]).await.map_err(io)?;
                Pkt::Data(&buf[start + 4..])
            }
        };
        let len = buf.len() - start;
        parser.push(pkt, len)?;
    }
    let summary = parser.finish()?;
    Ok((buf, summary))
}

/// Entry point for fuzzers: checks `data` as each kind of request. Never panics; every result
/// is either a summary whose `consumed` is within `data` or an error.
pub fn fuzz_target(data: &[u8]) -> [Result<Summary, PktError>; 3] {
    [
        check(Request::UploadPack, data),
        check(Request::UploadPackV2, data),
        check(Request::ReceivePack, data),
    ]
}
