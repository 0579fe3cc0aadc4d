//! Writing pkt-lines: data packets, the flush and delimiter packets, a push's command
//! section (tests and tools that speak to the server).

use super::RefUpdate;

/// One data packet carrying `payload` (at most [`MAX_PKT_LEN`] - 4 bytes).
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The flush packet that ends a section.
pub const FLUSH: &[u8] = b"0000";
/// The v2 delimiter between capabilities and arguments.
pub const DELIM: &[u8] = b"0001";

/// The command section of a push: `updates` (capabilities on the first), then a flush.
pub fn encode_push(updates: &[RefUpdate], capabilities: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        let mut line = format!("{} {} {}", u.old, u.new, u.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(capabilities.join(" ").as_bytes());
        }
        line.push(b'\n');
        out.extend(encode(&line));
    }
    out.extend_from_slice(FLUSH);
    out
}
