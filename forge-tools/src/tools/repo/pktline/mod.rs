//! Reader of the head of a git smart-HTTP request body: the pkt-line command section before
//! the pack (`git-receive-pack`: ref updates; `git-upload-pack`: wants, in protocol v0/v1 or
//! v2). The forge reads and checks this section before git runs, so malformed framing, too many
//! updates or wants, and invalid ref names get a clear 400 instead of reaching git; only the
//! section is buffered (it is bounded), the rest of the body streams to git untouched.
//!
//! [`check`] works on bytes in memory, [`read_section`] on a stream; both drive the same
//! line-by-line [`Parser`]. [`fuzz_target`] is the entry point for fuzzers. [`Watch`] looks at
//! a whole request or response as it streams by (the `have` lines of a fetch, the start of a
//! pack), for logging clones and fetches.

mod encode;
mod parser;
mod section;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
mod watch;

pub use encode::{DELIM, FLUSH, encode, encode_push};
pub use parser::Parser;
pub use section::{check, fuzz_target, read_section};
pub use watch::{Sought, Watch};

/// Largest pkt-line git sends or accepts (length prefix included).
pub const MAX_PKT_LEN: usize = 65520;
/// Most ref updates one push may carry. Well above what people push (an import with
/// `--mirror` of a project with thousands of tags still fits), far below what would tie up git.
pub const MAX_REF_UPDATES: usize = 10_000;
/// Most objects (`want`, `want-ref`) one fetch may ask for.
pub const MAX_WANTS: usize = 10_000;
/// Most bytes of the command section read before giving up (every line is at most
/// [`MAX_PKT_LEN`], so the buffer never exceeds this plus one line).
pub const MAX_SECTION_BYTES: usize = 4 << 20;

/// Which request a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `git-upload-pack` in protocol v0 or v1 (clone and fetch negotiation).
    UploadPack,
    /// `git-upload-pack` in protocol v2 (`command=ls-refs`, `command=fetch`, ...).
    UploadPackV2,
    /// `git-receive-pack` (push; git has no v2 for it).
    ReceivePack,
}

/// What is wrong with a request; the message is meant for the person running git.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktError {
    #[error("malformed pkt-line length {0:?}")]
    BadLength(String),
    #[error("the request ends inside its command section")]
    Truncated,
    #[error("malformed request line: {0}")]
    Malformed(String),
    #[error("too many ref updates in one push (at most {MAX_REF_UPDATES})")]
    TooManyUpdates,
    #[error("too many wants in one fetch (at most {MAX_WANTS})")]
    TooManyWants,
    #[error("the request's command section is larger than {MAX_SECTION_BYTES} bytes")]
    TooLarge,
    #[error("invalid ref name {0:?}")]
    BadRef(String),
    #[error("{0} is not supported by this server")]
    Unsupported(&'static str),
    #[error("reading the request failed: {0}")]
    Io(String),
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// What the command section said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The protocol v2 command (`fetch`, `ls-refs`, ...).
    pub command: Option<String>,
    /// Ref updates of a push, in order.
    pub updates: Vec<RefUpdate>,
    /// Objects a fetch asked for.
    pub wants: usize,
    /// Capabilities of the first command or want (v2: the capability lines).
    pub capabilities: Vec<String>,
    /// Bytes of input the section took; what follows belongs to git.
    pub consumed: usize,
}

/// One packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkt<'a> {
    Flush,
    Delim,
    ResponseEnd,
    Data(&'a [u8]),
}
