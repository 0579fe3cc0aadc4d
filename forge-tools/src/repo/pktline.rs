//! Reader of the head of a git smart-HTTP request body: the pkt-line command section before
//! the pack (`git-receive-pack`: ref updates; `git-upload-pack`: wants, in protocol v0/v1 or
//! v2). The forge reads and checks this section before git runs, so malformed framing, too many
//! updates or wants, and invalid ref names get a clear 400 instead of reaching git; only the
//! section is buffered (it is bounded), the rest of the body streams to git untouched.
//!
//! [`check`] works on bytes in memory, [`read_section`] on a stream; both drive the same
//! line-by-line [`Parser`]. [`fuzz_target`] is the entry point for fuzzers.

use tokio::io::{AsyncRead, AsyncReadExt};

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

enum Len {
    Flush,
    Delim,
    ResponseEnd,
    /// Payload bytes after the 4-byte prefix.
    Data(usize),
}

fn parse_len(prefix: [u8; 4]) -> Result<Len, PktError> {
    let bad = || PktError::BadLength(String::from_utf8_lossy(&prefix).into_owned());
    let mut n = 0usize;
    for b in prefix {
        let digit = char::from(b).to_digit(16).ok_or_else(bad)?;
        n = n * 16 + digit as usize;
    }
    match n {
        0 => Ok(Len::Flush),
        1 => Ok(Len::Delim),
        2 => Ok(Len::ResponseEnd),
        3 => Err(bad()),
        n if n > MAX_PKT_LEN => Err(bad()),
        n => Ok(Len::Data(n - 4)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// receive-pack: `shallow` lines seen, no command yet.
    Shallow,
    /// receive-pack: after the first command.
    Commands,
    /// upload-pack v0: after the first line.
    Wants,
    /// upload-pack v2: capability lines after `command=`.
    V2Caps,
    /// upload-pack v2: arguments after the delimiter.
    V2Args,
    Done,
}

/// Checks a command section one packet at a time.
#[derive(Debug)]
pub struct Parser {
    kind: Request,
    state: State,
    summary: Summary,
}

fn is_oid(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn text(payload: &[u8]) -> Result<&str, PktError> {
    let line = payload.strip_suffix(b"\n").unwrap_or(payload);
    std::str::from_utf8(line).map_err(|_| PktError::Malformed("not UTF-8".into()))
}

/// A ref name git would accept and no tool could take for an option.
fn check_ref(name: &str) -> Result<(), PktError> {
    if !name.starts_with('-') && git2::Reference::is_valid_name(name) {
        Ok(())
    } else {
        Err(PktError::BadRef(clip(name)))
    }
}

/// A line quoted in an error message, shortened.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn oid_arg<'a>(line: &'a str, verb: &str) -> Result<&'a str, PktError> {
    let rest = line
        .strip_prefix(verb)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or("");
    let oid = rest.split(' ').next().unwrap_or("");
    if is_oid(oid) {
        Ok(rest)
    } else {
        Err(PktError::Malformed(format!(
            "expected `{verb} <object id>`, got {:?}",
            clip(line)
        )))
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Parser {
    pub fn new(kind: Request) -> Self {
        Self {
            kind,
            state: State::Start,
            summary: Summary::default(),
        }
    }

    /// True once the section has ended (nothing more is read).
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next packet, of `len` bytes on the wire.
    pub fn push(&mut self, pkt: Pkt<'_>, len: usize) -> Result<(), PktError> {
        if self.done() {
            return Ok(());
        }
        self.summary.consumed += len;
        if self.summary.consumed > MAX_SECTION_BYTES {
            return Err(PktError::TooLarge);
        }
        match pkt {
            Pkt::ResponseEnd => Err(PktError::Malformed("unexpected response-end packet".into())),
            Pkt::Data([]) => Err(PktError::Malformed("empty packet".into())),
            _ => match self.kind {
                Request::ReceivePack => self.receive(pkt),
                Request::UploadPack => self.upload_v0(pkt),
                Request::UploadPackV2 => self.upload_v2(pkt),
            },
        }
    }

    /// The summary, once [`Parser::done`].
    pub fn finish(self) -> Result<Summary, PktError> {
        if self.done() {
            Ok(self.summary)
        } else {
            Err(PktError::Truncated)
        }
    }

    fn receive(&mut self, pkt: Pkt<'_>) -> Result<(), PktError> {
        let payload = match pkt {
            Pkt::Flush => {
                // An empty list is git's probe before a large push.
                self.state = State::Done;
                return Ok(());
            }
            Pkt::Data(p) => p,
            _ => return Err(PktError::Malformed("unexpected delimiter packet".into())),
        };
        let (line, caps) = match payload.iter().position(|&b| b == 0) {
            Some(i) => (&payload[..i], Some(&payload[i + 1..])),
            None => (payload, None),
        };
        let line = text(line)?;
        if self.state != State::Commands {
            if line.starts_with("shallow ") {
                oid_arg(line, "shallow")?;
                self.state = State::Shallow;
                return Ok(());
            }
            if line == "push-cert" {
                return Err(PktError::Unsupported("signed push"));
            }
        } else if caps.is_some() {
            return Err(PktError::Malformed(
                "capabilities after the first command".into(),
            ));
        }
        if let Some(caps) = caps {
            self.summary.capabilities = words(text(caps)?);
        }
        let mut parts = line.splitn(3, ' ');
        let (old, new, name) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if !is_oid(old) || old.len() != new.len() || !is_oid(new) {
            return Err(PktError::Malformed(format!(
                "expected `<old id> <new id> <ref>`, got {:?}",
                clip(line)
            )));
        }
        check_ref(name)?;
        if self.summary.updates.len() >= MAX_REF_UPDATES {
            return Err(PktError::TooManyUpdates);
        }
        self.summary.updates.push(RefUpdate {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        });
        self.state = State::Commands;
        Ok(())
    }

    fn want(&mut self) -> Result<(), PktError> {
        self.summary.wants += 1;
        if self.summary.wants > MAX_WANTS {
            Err(PktError::TooManyWants)
        } else {
            Ok(())
        }
    }

    fn upload_v0(&mut self, pkt: Pkt<'_>) -> Result<(), PktError> {
        let payload = match pkt {
            Pkt::Flush => {
                self.state = State::Done;
                return Ok(());
            }
            Pkt::Data(p) => p,
            _ => return Err(PktError::Malformed("unexpected delimiter packet".into())),
        };
        let line = text(payload)?;
        let verb = line.split(' ').next().unwrap_or("");
        match verb {
            "want" => {
                let rest = oid_arg(line, "want")?;
                if self.state == State::Start {
                    let caps = rest.split_once(' ').map_or("", |(_, caps)| caps);
                    self.summary.capabilities = words(caps);
                }
                self.want()?;
            }
            "shallow" => {
                oid_arg(line, "shallow")?;
            }
            "deepen" | "deepen-since" => {
                let arg = line.get(verb.len() + 1..).unwrap_or("");
                if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(PktError::Malformed(format!("bad {verb}: {:?}", clip(line))));
                }
            }
            "deepen-not" => check_rev_arg(line.get(11..).unwrap_or(""))?,
            "filter" => {}
            _ => {
                return Err(PktError::Malformed(format!(
                    "expected a want, got {:?}",
                    clip(line)
                )));
            }
        }
        self.state = State::Wants;
        Ok(())
    }

    fn upload_v2(&mut self, pkt: Pkt<'_>) -> Result<(), PktError> {
        match (self.state, pkt) {
            (_, Pkt::Flush) => {
                self.state = State::Done;
                Ok(())
            }
            (State::V2Caps, Pkt::Delim) => {
                self.state = State::V2Args;
                Ok(())
            }
            (_, Pkt::Delim) => Err(PktError::Malformed("unexpected delimiter packet".into())),
            (State::Start, Pkt::Data(p)) => {
                let line = text(p)?;
                let command = line
                    .strip_prefix("command=")
                    .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| {
                        PktError::Malformed(format!("expected `command=`, got {:?}", clip(line)))
                    })?;
                self.summary.command = Some(command.to_owned());
                self.state = State::V2Caps;
                Ok(())
            }
            (State::V2Caps, Pkt::Data(p)) => {
                let line = text(p)?;
                if line.chars().any(char::is_control) {
                    return Err(PktError::Malformed(
                        "control character in a capability".into(),
                    ));
                }
                self.summary.capabilities.push(line.to_owned());
                Ok(())
            }
            (_, Pkt::Data(p)) => self.v2_arg(text(p)?),
            (_, Pkt::ResponseEnd) => {
                Err(PktError::Malformed("unexpected response-end packet".into()))
            }
        }
    }

    fn v2_arg(&mut self, line: &str) -> Result<(), PktError> {
        let verb = line.split(' ').next().unwrap_or("");
        match (self.summary.command.as_deref(), verb) {
            (Some("fetch"), "want") => {
                oid_arg(line, "want")?;
                self.want()
            }
            (Some("fetch"), "want-ref") => {
                check_ref(line.get(9..).unwrap_or(""))?;
                self.want()
            }
            (Some("fetch"), "shallow") => oid_arg(line, "shallow").map(|_| ()),
            (Some("fetch"), "deepen-not") => check_rev_arg(line.get(11..).unwrap_or("")),
            (Some("fetch"), "have") => {
                // Haves follow the wants and may be many: checking stops here and they stream
                // to git, which bounds its own negotiation.
                oid_arg(line, "have")?;
                self.state = State::Done;
                Ok(())
            }
            (Some("ls-refs"), "ref-prefix") => check_rev_arg(line.get(11..).unwrap_or("")),
            _ => Ok(()),
        }
    }
}

/// A ref or prefix argument: not empty, no control characters, not an option.
fn check_rev_arg(arg: &str) -> Result<(), PktError> {
    if arg.is_empty() || arg.starts_with('-') || arg.chars().any(char::is_control) {
        Err(PktError::BadRef(clip(arg)))
    } else {
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn update(name: &str) -> RefUpdate {
        RefUpdate {
            old: Z.into(),
            new: A.into(),
            name: name.into(),
        }
    }

    #[test]
    fn push_sections() {
        let mut body = encode_push(
            &[update("refs/heads/main"), update("refs/tags/v1")],
            &["report-status", "side-band-64k"],
        );
        let head = body.len();
        body.extend_from_slice(b"PACK\0\0\0\x02rest of the pack");
        let s = check(Request::ReceivePack, &body).unwrap();
        assert_eq!(s.consumed, head);
        assert_eq!(s.updates.len(), 2);
        assert_eq!(s.capabilities, ["report-status", "side-band-64k"]);
        // git's probe before a large push.
        assert_eq!(check(Request::ReceivePack, b"0000").unwrap().updates, []);
        // Shallow lines before the commands.
        let mut shallow = encode(format!("shallow {B}\n").as_bytes());
        shallow.extend(encode_push(&[update("refs/heads/x")], &[]));
        assert_eq!(
            check(Request::ReceivePack, &shallow).unwrap().updates.len(),
            1
        );

        for bad in [
            "-x",
            "refs/heads/a..b",
            "refs/heads/a b",
            "refs/heads/x.lock",
            "refs/heads/",
        ] {
            let e = check(Request::ReceivePack, &encode_push(&[update(bad)], &[])).unwrap_err();
            assert!(matches!(e, PktError::BadRef(_)), "{bad}: {e}");
        }
        let too_many: Vec<_> = (0..=MAX_REF_UPDATES)
            .map(|i| update(&format!("refs/heads/b{i}")))
            .collect();
        assert_eq!(
            check(Request::ReceivePack, &encode_push(&too_many, &[])),
            Err(PktError::TooManyUpdates)
        );
        let cert = [encode(b"push-cert\0report-status\n"), FLUSH.to_vec()].concat();
        assert!(matches!(
            check(Request::ReceivePack, &cert),
            Err(PktError::Unsupported(_))
        ));
        let short = format!("{A} {} refs/heads/main\n", &B[..39]);
        assert!(matches!(
            check(
                Request::ReceivePack,
                &[encode(short.as_bytes()), FLUSH.to_vec()].concat()
            ),
            Err(PktError::Malformed(_))
        ));
    }

    #[test]
    fn framing() {
        for (bad, want) in [
            (&b"zzzz"[..], "BadLength"),
            (b"0003", "BadLength"),
            (b"fff1abc", "BadLength"),
            (b"0002", "Malformed"),
            (b"0004", "Malformed"),
            (b"00", "Truncated"),
            (b"", "Truncated"),
            (b"0032want", "Truncated"),
        ] {
            let e = check(Request::ReceivePack, bad).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{bad:?}: {e:?}");
        }
        // Upper-case hex is what some clients send; git accepts it.
        let line = format!("want {A}\n");
        let upper = format!("{:04X}{line}0000", line.len() + 4);
        assert_eq!(
            check(Request::UploadPack, upper.as_bytes()).unwrap().wants,
            1
        );
    }

    #[test]
    fn upload_sections() {
        let mut body =
            encode(format!("want {A} multi_ack_detailed side-band-64k ofs-delta\n").as_bytes());
        body.extend(encode(format!("want {B}\n").as_bytes()));
        body.extend(encode(b"deepen 1\n"));
        body.extend(encode(b"filter blob:none\n"));
        body.extend_from_slice(FLUSH);
        body.extend(encode(b"done\n"));
        let s = check(Request::UploadPack, &body).unwrap();
        assert_eq!(s.wants, 2);
        assert_eq!(
            s.capabilities,
            ["multi_ack_detailed", "side-band-64k", "ofs-delta"]
        );
        assert_eq!(s.consumed, body.len() - 9);
        let bad = [encode(b"want nothex\n"), FLUSH.to_vec()].concat();
        assert!(matches!(
            check(Request::UploadPack, &bad),
            Err(PktError::Malformed(_))
        ));
        let odd = [encode(b"frobnicate\n"), FLUSH.to_vec()].concat();
        assert!(matches!(
            check(Request::UploadPack, &odd),
            Err(PktError::Malformed(_))
        ));
        let mut many = Vec::new();
        for _ in 0..=MAX_WANTS {
            many.extend(encode(format!("want {A}\n").as_bytes()));
        }
        many.extend_from_slice(FLUSH);
        assert_eq!(
            check(Request::UploadPack, &many),
            Err(PktError::TooManyWants)
        );
    }

    #[test]
    fn v2_sections() {
        let mut fetch = encode(b"command=fetch\n");
        fetch.extend(encode(b"agent=git/2.47.3\n"));
        fetch.extend(encode(b"object-format=sha1\n"));
        fetch.extend_from_slice(DELIM);
        fetch.extend(encode(b"thin-pack\n"));
        fetch.extend(encode(format!("want {A}\n").as_bytes()));
        fetch.extend(encode(b"want-ref refs/heads/main\n"));
        fetch.extend(encode(format!("have {B}\n").as_bytes()));
        let head = fetch.len();
        fetch.extend(encode(format!("have {A}\n").as_bytes()));
        fetch.extend(encode(b"done\n"));
        fetch.extend_from_slice(FLUSH);
        let s = check(Request::UploadPackV2, &fetch).unwrap();
        assert_eq!(s.command.as_deref(), Some("fetch"));
        assert_eq!(s.wants, 2);
        assert_eq!(s.consumed, head, "checking stops at the first have");
        assert_eq!(s.capabilities, ["agent=git/2.47.3", "object-format=sha1"]);

        let mut ls = encode(b"command=ls-refs\n");
        ls.extend_from_slice(DELIM);
        ls.extend(encode(b"peel\n"));
        ls.extend(encode(b"ref-prefix refs/heads/\n"));
        ls.extend_from_slice(FLUSH);
        assert_eq!(
            check(Request::UploadPackV2, &ls).unwrap().consumed,
            ls.len()
        );
        assert_eq!(check(Request::UploadPackV2, b"0000").unwrap().command, None);
        let bad_ref = [
            encode(b"command=fetch\n"),
            DELIM.to_vec(),
            encode(b"want-ref -x\n"),
            FLUSH.to_vec(),
        ]
        .concat();
        assert!(matches!(
            check(Request::UploadPackV2, &bad_ref),
            Err(PktError::BadRef(_))
        ));
        let v0 = [encode(format!("want {A}\n").as_bytes()), FLUSH.to_vec()].concat();
        assert!(matches!(
            check(Request::UploadPackV2, &v0),
            Err(PktError::Malformed(_))
        ));
    }

    #[test]
    fn section_size_is_bounded() {
        let mut body = encode(b"command=fetch\n");
        let cap = vec![b'a'; MAX_PKT_LEN - 5];
        while body.len() <= MAX_SECTION_BYTES + MAX_PKT_LEN {
            body.extend(encode(&cap));
        }
        assert_eq!(check(Request::UploadPackV2, &body), Err(PktError::TooLarge));
    }

    #[tokio::test]
    async fn stream_reads_only_the_section() {
        let mut body = encode_push(&[update("refs/heads/main")], &["report-status"]);
        let head = body.len();
        body.extend_from_slice(b"PACK...");
        let mut reader = &body[..];
        let (read, s) = read_section(&mut reader, Request::ReceivePack)
            .await
            .unwrap();
        assert_eq!(read, body[..head]);
        assert_eq!(s.consumed, head);
        assert_eq!(reader, b"PACK...");
        let mut short = &body[..head - 2];
        assert_eq!(
            read_section(&mut short, Request::ReceivePack)
                .await
                .unwrap_err(),
            PktError::Truncated
        );
    }

    fn ref_name() -> impl Strategy<Value = String> {
        "refs/(heads|tags)/[a-z0-9_][a-z0-9_-]{0,12}(/[a-z0-9_][a-z0-9_-]{0,8}){0,3}(\\.[a-z0-9]{1,3})?"
    }

    fn oid() -> impl Strategy<Value = String> {
        "[0-9a-f]{40}"
    }

    fn updates() -> impl Strategy<Value = Vec<RefUpdate>> {
        prop::collection::vec(
            (oid(), oid(), ref_name()).prop_map(|(old, new, name)| RefUpdate { old, new, name }),
            1..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
            for s in fuzz_target(&data).into_iter().flatten() {
                prop_assert!(s.consumed <= data.len());
                prop_assert!(s.updates.len() <= MAX_REF_UPDATES && s.wants <= MAX_WANTS);
            }
        }

        #[test]
        fn packet_soup_never_panics(
            lines in prop::collection::vec(
                prop_oneof![
                    Just(FLUSH.to_vec()),
                    Just(DELIM.to_vec()),
                    Just(b"0002".to_vec()),
                    "(want|have|shallow|deepen|command=|want-ref|ref-prefix|[0-9a-f]{40}) ?[ -~]{0,60}\n?"
                        .prop_map(|s| encode(s.as_bytes())),
                    prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| encode(&b)),
                ],
                0..30,
            )
        ) {
            let data = lines.concat();
            for s in fuzz_target(&data).into_iter().flatten() {
                prop_assert!(s.consumed <= data.len());
            }
        }

        #[test]
        fn valid_pushes_round_trip(list in updates(), pack in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut body = encode_push(&list, &["report-status", "atomic"]);
            let head = body.len();
            body.extend_from_slice(&pack);
            let s = check(Request::ReceivePack, &body).unwrap();
            prop_assert_eq!(s.updates, list);
            prop_assert_eq!(s.consumed, head);
            prop_assert_eq!(s.capabilities, ["report-status", "atomic"]);
        }

        #[test]
        fn valid_fetches_round_trip(wants in prop::collection::vec(oid(), 1..40)) {
            let mut v0 = Vec::new();
            let mut v2 = [encode(b"command=fetch\n"), DELIM.to_vec()].concat();
            for (i, w) in wants.iter().enumerate() {
                let caps = if i == 0 { " side-band-64k" } else { "" };
                v0.extend(encode(format!("want {w}{caps}\n").as_bytes()));
                v2.extend(encode(format!("want {w}\n").as_bytes()));
            }
            v0.extend_from_slice(FLUSH);
            v2.extend_from_slice(FLUSH);
            let s = check(Request::UploadPack, &v0).unwrap();
            prop_assert_eq!((s.wants, s.consumed), (wants.len(), v0.len()));
            let s = check(Request::UploadPackV2, &v2).unwrap();
            prop_assert_eq!((s.wants, s.consumed), (wants.len(), v2.len()));
        }

        #[test]
        fn cut_sections_are_truncated(list in updates(), cut in any::<prop::sample::Index>()) {
            let body = encode_push(&list, &[]);
            let at = cut.index(body.len());
            prop_assert_eq!(check(Request::ReceivePack, &body[..at]), Err(PktError::Truncated));
        }
    }
}
