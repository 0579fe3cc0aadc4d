//! The line-by-line checker of a command section: packet framing (the length prefix) and,
//! per kind of request, which lines may come in which order, with their limits.

use super::{
    MAX_PKT_LEN, MAX_REF_UPDATES, MAX_SECTION_BYTES, MAX_WANTS, Pkt, PktError, RefUpdate, Request,
    Summary,
};

pub(super) enum Len {
    Flush,
    Delim,
    ResponseEnd,
    /// Payload bytes after the 4-byte prefix.
    Data(usize),
}

pub(super) fn parse_len(prefix: [u8; 4]) -> Result<Len, PktError> {
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
