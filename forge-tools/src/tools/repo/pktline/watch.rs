//! Watching a pkt-line stream as it goes by, without holding it up or buffering it, for one
//! kind of packet: a `have` line in a fetch request, or the start of the pack in git's
//! upload-pack response. The web side logs a clone or a fetch once, by the request whose
//! answer carries a pack (not every round of a stateless negotiation), and tells a fetch (the
//! client had history: `have` lines) from a clone.

use super::parser::{Len, parse_len};

/// What a [`Watch`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sought {
    /// A `have` line of an upload-pack request (protocol v0 or v2).
    Have,
    /// The start of a pack in an upload-pack response: a packet on side-band channel 1, the
    /// protocol v2 `packfile` section, or a pack sent without side-band (`PACK` where a
    /// length prefix would be).
    Pack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Watching,
    Found,
    /// The stream is not pkt-lines (or not any more): nothing more can be told.
    GaveUp,
}

/// Bytes of a packet's payload looked at: enough for `packfile\n`.
const HEAD: usize = 9;

/// Reads a pkt-line stream in whatever pieces it comes, until it sees the packet sought.
#[derive(Debug)]
pub struct Watch {
    sought: Sought,
    state: State,
    prefix: [u8; 4],
    prefix_len: usize,
    head: [u8; HEAD],
    head_len: usize,
    /// Payload bytes of the current packet still to come.
    left: usize,
    /// Whether the current packet's first bytes are still being looked at.
    examining: bool,
}

impl Watch {
    pub fn new(sought: Sought) -> Self {
        Self {
            sought,
            state: State::Watching,
            prefix: [0; 4],
            prefix_len: 0,
            head: [0; HEAD],
            head_len: 0,
            left: 0,
            examining: false,
        }
    }

    /// Whether the packet sought has gone by.
    pub fn found(&self) -> bool {
        self.state == State::Found
    }

    /// Whether more bytes can change anything (not once found, or once the stream turned
    /// out not to be pkt-lines).
    pub fn watching(&self) -> bool {
        self.state == State::Watching
    }

    /// Takes the next bytes of the stream; true when they complete the packet sought (once).
    pub fn feed(&mut self, mut data: &[u8]) -> bool {
        while self.state == State::Watching && !data.is_empty() {
            if self.left > 0 {
                let n = if self.examining {
                    (HEAD - self.head_len).min(self.left).min(data.len())
                } else {
                    self.left.min(data.len())
                };
                if self.examining {
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
                    self.head_len += n;
                }
                self.left -= n;
                data = &data[n..];
                if self.examining && self.examine() {
                    self.state = State::Found;
                    return true;
                }
                continue;
            }
            let n = (4 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len < 4 {
                break;
            }
            self.prefix_len = 0;
            if self.sought == Sought::Pack && &self.prefix == b"PACK" {
                self.state = State::Found;
                return true;
            }
            match parse_len(self.prefix) {
                Ok(Len::Data(n)) => {
                    self.left = n;
                    self.head_len = 0;
                    self.examining = n > 0;
                }
                Ok(Len::Flush | Len::Delim | Len::ResponseEnd) => {}
                Err(_) => self.state = State::GaveUp,
            }
        }
        false
    }

    /// Looks at the current packet's first bytes: true if it is the one sought; stops looking
    /// once they cannot tell more.
    fn examine(&mut self) -> bool {
        let head = &self.head[..self.head_len];
        let hit = match self.sought {
            Sought::Have => head.starts_with(b"have "),
            Sought::Pack => head.first() == Some(&1) || head.starts_with(b"packfile"),
        };
        if !hit && (self.head_len == HEAD || self.left == 0) {
            self.examining = false;
        }
        hit
    }
}
