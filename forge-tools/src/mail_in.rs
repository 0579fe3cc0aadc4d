//! Mail in (`forge mail-in`): one RFC 5322 message, as an MTA hands it to a program, becomes
//! a post.
//!
//! - A reply to a notification: some recipient is `reply+<token>@<mail domain>` (the
//!   notification's `Reply-To`, see `crate::mail_token`). The token names the account the
//!   notification went to, the tool and the artifact; the post is made as that account,
//!   whatever the mail's `From` says, through the tool's [`Tool::reply_by_mail`] (a ticket
//!   comment, a page comment...).
//! - A mail to a tool's own address, `<local>@<mount>.<project>.<mail domain>` (a forum's
//!   posting address, Allura's scheme), goes to [`Tool::mail_to_address`] of the tool at that
//!   mount, as the account whose address the `From` names (anonymous when none does).
//!
//! The viewer is built as the web builds one (`Forge::load_project` gives the project and the
//! viewer's role in it), so the tool's permission checks (`post`, `unmoderated_post`) apply as
//! on the web. The text is the plain-text body (HTML-only mail is converted to text by the
//! parser), with the quoted message and signature below the reply cut ([`strip_quoted`]); MIME
//! attachments become the post's files.
//!
//! Nothing half-written: the message, the address, the account, the rights (to post and to
//! attach files) and every file are checked, and the files stored, before the post is written
//! (a refused or unstorable file refuses the mail with nothing posted); the files are given
//! to the post once it has its id, and if that fails the post and its files are removed again. A refusal is a [`Refused`] whose [`Bounce`] is the
//! exit code the MTA reads (sysexits): 65 bad data or not allowed (the sender gets a bounce),
//! 67 unknown address, 75 try again later (the store is unreachable).
//!
//! [`Tool::reply_by_mail`]: crate::tool::Tool::reply_by_mail
//! [`Tool::mail_to_address`]: crate::tool::Tool::mail_to_address

use std::io::Read;
use std::sync::Arc;

use bson::doc;
use bson::oid::ObjectId;
use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders};

use crate::attachments::Attachment;
use crate::discussion::{self, NewPost, Post};
use crate::error::Error;
use crate::mail_token::{self, REPLY_PREFIX, TokenError};
use crate::project_ctx::ProjectCtx;
use crate::projects::{self, Neighborhood};
use crate::tool::{Forge, Tool, ToolInstance, instance, record_event};
use crate::users;
use crate::viewer::Viewer;

/// Files one mail may attach.
pub const MAX_ATTACHMENTS: usize = 20;
/// Recipient addresses looked at, at most (a mail to thousands is not a reply).
const MAX_RECIPIENTS: usize = 100;

/// How the MTA should treat a refused mail (the exit code, from sysexits.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    /// 65 `EX_DATAERR`: unreadable, a bad or expired token, not allowed; bounced.
    DataErr,
    /// 67 `EX_NOUSER`: no such address here; bounced as unknown.
    NoUser,
    /// 75 `EX_TEMPFAIL`: the forge cannot take it now (store down, rate limit); retried.
    TempFail,
}

impl Bounce {
    pub fn exit_code(self) -> u8 {
        match self {
            Bounce::DataErr => 65,
            Bounce::NoUser => 67,
            Bounce::TempFail => 75,
        }
    }
}

/// A mail that was not delivered, and why (one line, for the bounce).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub bounce: Bounce,
    pub message: String,
}

impl Refused {
    pub fn data(message: impl Into<String>) -> Self {
        Self {
            bounce: Bounce::DataErr,
            message: message.into(),
        }
    }

    pub fn no_user(message: impl Into<String>) -> Self {
        Self {
            bounce: Bounce::NoUser,
            message: message.into(),
        }
    }

    pub fn temp(message: impl Into<String>) -> Self {
        Self {
            bounce: Bounce::TempFail,
            message: message.into(),
        }
    }
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::NotFound(_) => Self::no_user(message),
            Error::Forbidden | Error::Unauthenticated => {
                Self::data(format!("not allowed: {message}"))
            }
            Error::Invalid(_)
            | Error::BadRequest(_)
            | Error::TooLarge(_)
            | Error::Conflict { .. } => Self::data(message),
            Error::RateLimited(_) | Error::Busy(_) => Self::temp(message),
            Error::Store(_) | Error::Tasks(_) | Error::Internal(_) => Self::temp(message),
        }
    }
}

impl From<TokenError> for Refused {
    fn from(e: TokenError) -> Self {
        Self::data(e.to_string())
    }
}

/// What was delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub post: Post,
    pub project: String,
    pub mount: String,
    /// The files attached to the post.
    pub attachments: Vec<String>,
}

/// Reads one message, refusing more than `max` bytes (reads at most `max + 1`).
pub fn read_limited(input: impl Read, max: u64) -> Result<Vec<u8>, Refused> {
    let mut raw = Vec::new();
    input
        .take(max.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| Refused::temp(format!("reading the message: {e}")))?;
    if raw.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(raw)
}

fn too_large(max: u64) -> Refused {
    Refused::data(format!(
        "the message is larger than the forge accepts ({})",
        crate::attachments::human_size(max)
    ))
}

/// Delivers one message (see the module's description), now.
pub async fn deliver(forge: &Forge, raw: &[u8]) -> Result<Delivered, Refused> {
    let now = bson::DateTime::now().timestamp_millis() / 1_000;
    deliver_at(forge, raw, now).await
}

/// Where a mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// `reply+<token>@<domain>`.
    Reply(String),
    /// `<local>@<mount>.<project>.<domain>`.
    Tool {
        local: String,
        mount: String,
        project: String,
    },
}

/// [`deliver`] at `now` (Unix seconds), which decides whether a reply token has expired.
pub async fn deliver_at(forge: &Forge, raw: &[u8], now: i64) -> Result<Delivered, Refused> {
    let max = forge.config().max_mail_bytes;
    if raw.len() as u64 > max {
        return Err(too_large(max));
    }
    // A parser with a header of its own parses only the headers it names: name them all.
    let parser = MessageParser::new()
        .with_mime_headers()
        .with_address_headers()
        .with_message_ids()
        .with_date_headers()
        .header_text(HeaderName::Subject)
        .header_address(HeaderName::Other("Delivered-To".into()))
        .header_address(HeaderName::Other("X-Original-To".into()))
        .header_address(HeaderName::Other("Envelope-To".into()))
        .header_text(HeaderName::Other("Authentication-Results".into()))
        .header_text(HeaderName::Other("Auto-Submitted".into()))
        .header_text(HeaderName::Other("Precedence".into()))
        .header_text(HeaderName::Other("X-Autoreply".into()));
    let msg = parser
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| Refused::data("this is not a mail message (no headers)"))?;
    if let Some(why) = automatic(&msg) {
        return Err(Refused::data(format!(
            "automatic mail ({why}) is not posted"
        )));
    }
    let domain = forge.config().mail_domain();
    let route = route(&recipients(&msg), &domain).ok_or_else(|| {
        Refused::no_user(format!(
            "no address of this forge (reply+...@{domain} or <forum>@<tool>.<project>.{domain}) among the recipients"
        ))
    })?;
    let files = files_of(&msg, forge.attachments().max_bytes)?;
    let text = text_of(&msg, &files);
    let new = NewPost {
        text,
        parent: None,
        honeypot: None,
    };
    let place = match route {
        Route::Reply(token) => reply(forge, &token, now).await?,
        Route::Tool {
            local,
            mount,
            project,
        } => {
            let subject = msg.subject().unwrap_or_default().trim().to_owned();
            let from = msg
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .trim()
                .to_lowercase();
            let authenticated = sender_authenticated(
                &authentication_results(&msg),
                &from,
                forge.config().mail_authserv_id.as_deref(),
            );
            to_tool(
                forge,
                &local,
                &mount,
                &project,
                &subject,
                &from,
                authenticated,
                !files.is_empty(),
            )
            .await?
        }
    };
    // The files are allowed and stored before the post is written: a refused file refuses
    // the mail with nothing posted.
    let staged = stage(forge, &place, files).await?;
    let post = match place.post(forge, new).await {
        Ok(post) => post,
        Err(e) => {
            unstage(forge, &staged).await;
            return Err(e);
        }
    };
    let attachments = settle(forge, &place, &post, staged).await?;
    record_event(
        forge,
        "mail.in",
        &place.viewer,
        &place.ctx,
        &place.tool,
        doc! {
            "post": post.id, "route": place.target.how(), "status": post.status.as_str(),
            "attachments": attachments.len() as i64,
        },
    );
    Ok(Delivered {
        post,
        project: place.ctx.project.shortname.clone(),
        mount: place.tool.mount.clone(),
        attachments,
    })
}

/// Where and as whom a mail is posted, once everything but the post's own checks passed.
struct Place {
    viewer: Viewer,
    ctx: ProjectCtx,
    tool: ToolInstance,
    kind: Arc<dyn Tool>,
    target: Target,
}

enum Target {
    /// A reply on the artifact with this key ([`Tool::reply_by_mail`]).
    Reply(String),
    /// A mail to one of the tool's addresses ([`Tool::mail_to_address`]).
    Address {
        local: String,
        subject: String,
        verified: bool,
    },
}

impl Target {
    fn how(&self) -> &'static str {
        match self {
            Self::Reply(_) => "reply",
            Self::Address { .. } => "address",
        }
    }
}

impl Place {
    async fn post(&self, forge: &Forge, new: NewPost) -> Result<Post, Refused> {
        let (viewer, ctx, tool) = (&self.viewer, &self.ctx, &self.tool);
        Ok(match &self.target {
            Target::Reply(artifact) => {
                self.kind
                    .reply_by_mail(forge, viewer, ctx, tool, artifact, new)
                    .await?
            }
            Target::Address {
                local,
                subject,
                verified,
            } => {
                self.kind
                    .mail_to_address(forge, viewer, ctx, tool, local, subject, new, *verified)
                    .await?
            }
        })
    }
}

/// A reply through a signed token: as the token's account, on the token's artifact.
async fn reply(forge: &Forge, token: &str, now: i64) -> Result<Place, Refused> {
    let db = forge.db();
    let secret = crate::secret::site_secret(db).await?;
    let t = mail_token::verify(db, &secret, token, now).await??;
    let user = users::by_id(db, t.user)
        .await?
        .ok_or_else(|| Refused::no_user("the reply address names an account that is gone"))?;
    if user.disabled {
        return Err(Refused::data("not allowed: the account is disabled"));
    }
    let viewer = Viewer {
        user: Some(user),
        ip: None,
    };
    let gone = || Refused::no_user("what the reply address names is gone");
    let tool = instance::by_id(db, t.tool).await?.ok_or_else(gone)?;
    let project = projects::by_id(db, tool.project_id)
        .await?
        .filter(|p| !p.deleted)
        .ok_or_else(gone)?;
    // As the web loads a project for a viewer: the role comes from the membership now.
    let ctx = forge
        .load_project(&viewer, project.neighborhood, &project.shortname)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Refused::data(format!(
                "not allowed: you may no longer read project {}",
                project.shortname
            )),
            e => e.into(),
        })?;
    let tool = ctx
        .tools
        .iter()
        .find(|i| i.id == tool.id)
        .cloned()
        .ok_or_else(gone)?;
    let kind = forge.tools().get(&tool.kind).ok_or_else(gone)?.clone();
    if !kind
        .can_read_artifact(forge, &ctx, &tool, &t.artifact)
        .await?
    {
        return Err(Refused::data("not allowed: you may no longer read this"));
    }
    // Checked again by the tool; here so that refused files are refused before anything.
    ctx.authorize_tool(&tool, discussion::perm::POST)?;
    Ok(Place {
        viewer,
        ctx,
        tool,
        kind,
        target: Target::Reply(t.artifact),
    })
}

/// A mail to a tool's own address, as the account the `From` address belongs to (if any).
#[allow(clippy::too_many_arguments)]
async fn to_tool(
    forge: &Forge,
    local: &str,
    mount: &str,
    project: &str,
    subject: &str,
    from: &str,
    authenticated: bool,
    with_files: bool,
) -> Result<Place, Refused> {
    let db = forge.db();
    // Accounts' addresses are stored lower case, one account per address. `From` is anyone's
    // to write: only a sender the receiving MTA authenticated is taken for the account.
    let user = if from.is_empty() || !authenticated {
        None
    } else {
        users::collection(db)
            .find_one(doc! {"email": from})
            .await
            .map_err(Error::from)?
    };
    if user.as_ref().is_some_and(|u| u.disabled) {
        return Err(Refused::data(
            "not allowed: the sender's account is disabled",
        ));
    }
    let verified = user.is_some();
    let viewer = Viewer { user, ip: None };
    let unknown = || Refused::no_user(format!("no such address: {local}@{mount}.{project}"));
    // Not readable by this sender is unknown, as a private project is on the web.
    let ctx = forge
        .load_project(&viewer, Neighborhood::Projects, project)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) | Error::Forbidden | Error::Unauthenticated => unknown(),
            e => e.into(),
        })?;
    let tool = ctx.tool(mount).cloned().ok_or_else(unknown)?;
    let kind = forge.tools().get(&tool.kind).ok_or_else(unknown)?.clone();
    if with_files && viewer.user.is_none() {
        return Err(Refused::data(
            "not allowed: files can only be attached by someone with an account here",
        ));
    }
    Ok(Place {
        viewer,
        ctx,
        tool,
        kind,
        target: Target::Address {
            local: local.to_owned(),
            subject: subject.to_owned(),
            verified,
        },
    })
}

/// Why a message is an automatic one (an out-of-office reply, a list's bulk mail), which
/// must not become a post in someone's name nor start a mail loop (RFC 3834).
fn automatic(msg: &Message<'_>) -> Option<String> {
    let value = |name: &str| {
        msg.headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| {
                h.value()
                    .as_text()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
    };
    if let Some(v) = value("Auto-Submitted").filter(|v| !v.is_empty() && v != "no") {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = value("Precedence")
        .filter(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
    {
        return Some(format!("Precedence: {v}"));
    }
    value("X-Autoreply").map(|_| "X-Autoreply".to_owned())
}

/// The `Authentication-Results` headers of a message, as written.
fn authentication_results(msg: &Message<'_>) -> Vec<String> {
    msg.headers()
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|h| h.value().as_text().map(str::to_owned))
        .collect()
}

/// Whether the receiving MTA (`authserv_id`) vouches for the `From` address's domain: an
/// `Authentication-Results` header (RFC 8601) of that MTA reporting `dmarc=pass` for it, or
/// `dkim=pass` signed by it. Headers of other servers are ignored (anyone can write one); the
/// MTA removes copies of its own from incoming mail.
pub fn sender_authenticated(results: &[String], from: &str, authserv_id: Option<&str>) -> bool {
    let Some(id) = authserv_id.map(str::trim).filter(|s| !s.is_empty()) else {
        return false;
    };
    let Some(domain) = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_ascii_lowercase())
    else {
        return false;
    };
    results.iter().any(|header| {
        let mut parts = header.split(';');
        let server = parts.next().unwrap_or_default();
        // The authserv-id may be followed by a version number.
        if !server
            .split_whitespace()
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case(id))
        {
            return false;
        }
        parts.any(|result| {
            let words: Vec<String> = result
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            let value = |key: &str| {
                words
                    .iter()
                    .find_map(|w| w.strip_prefix(key).map(|v| v.trim_matches(['"', '@'])))
            };
            let pass = |method: &str| words.first().map(String::as_str) == Some(method);
            (pass("dmarc=pass") && value("header.from=") == Some(domain.as_str()))
                || (pass("dkim=pass")
                    && (value("header.d=") == Some(domain.as_str())
                        || value("header.i=")
                            .is_some_and(|i| i.rsplit_once('@').map_or(i, |(_, d)| d) == domain)))
        })
    })
}

/// Files stored before their post is written, under an artifact id of their own until the
/// post has its id.
struct Staged {
    artifact: ObjectId,
    files: Vec<Attachment>,
}

/// Checks that the sender may attach files to their post, then stores every file; if one
/// cannot be stored, removes those stored and refuses the mail.
async fn stage(forge: &Forge, place: &Place, files: Vec<MailFile>) -> Result<Staged, Refused> {
    let mut staged = Staged {
        artifact: ObjectId::new(),
        files: Vec::new(),
    };
    if files.is_empty() {
        return Ok(staged);
    }
    discussion::for_attaching_own(&place.viewer, &place.ctx, &place.tool)?;
    let author = place.viewer.username().unwrap_or_default().to_owned();
    for f in files {
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes::Bytes::from(
            f.bytes,
        ))]);
        let saved = forge
            .attachments()
            .save(
                forge.db(),
                place.tool.id,
                staged.artifact,
                &f.name,
                &author,
                body,
            )
            .await;
        match saved {
            Ok(a) => staged.files.push(a),
            Err(e) => {
                unstage(forge, &staged).await;
                return Err(e.into());
            }
        }
    }
    Ok(staged)
}

/// Removes staged files (best effort: the refusal says what went wrong first).
async fn unstage(forge: &Forge, staged: &Staged) {
    for a in &staged.files {
        if let Err(e) = forge.attachments().delete(forge.db(), a).await {
            tracing::warn!(error = %e, "mail-in: removing an attachment after a failure");
        }
    }
}

/// Gives the staged files to the post written and records them; the file names. If that
/// fails (the store), the files and the post are removed again.
async fn settle(
    forge: &Forge,
    place: &Place,
    post: &Post,
    staged: Staged,
) -> Result<Vec<String>, Refused> {
    if staged.files.is_empty() {
        return Ok(Vec::new());
    }
    let (viewer, ctx, tool) = (&place.viewer, &place.ctx, &place.tool);
    let moved = forge
        .attachments()
        .reassign(forge.db(), tool.id, staged.artifact, post.id)
        .await;
    if let Err(e) = moved {
        unstage(forge, &staged).await;
        if let Err(e) = discussion::delete_post(forge, viewer, ctx, tool, post.id).await {
            tracing::warn!(error = %e, "mail-in: removing the post after a failure");
        }
        return Err(e.into());
    }
    for a in &staged.files {
        discussion::attached(forge, viewer, ctx, tool, post, a);
    }
    Ok(staged.files.into_iter().map(|a| a.filename).collect())
}

/// Every recipient address the MTA or the sender named, envelope ones first: `Delivered-To`
/// and `X-Original-To` (Postfix), `Envelope-To` (Exim), then `To` and `Cc`. Lower case.
fn recipients(msg: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in ["Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc"] {
        for value in msg.header_values(name) {
            let Some(list) = value.as_address() else {
                continue;
            };
            for a in list.iter() {
                if let Some(addr) = a.address() {
                    let addr = addr.trim().to_lowercase();
                    if out.len() < MAX_RECIPIENTS && !out.contains(&addr) {
                        out.push(addr);
                    }
                }
            }
        }
    }
    out
}

/// The first recipient that is one of this forge's addresses: a reply address first, then a
/// tool's address.
fn route(recipients: &[String], domain: &str) -> Option<Route> {
    let parts = || {
        recipients
            .iter()
            .filter_map(|a| a.rsplit_once('@'))
            .map(|(l, d)| (l, d.trim_end_matches('.')))
    };
    let reply = parts().find_map(|(local, d)| {
        (d == domain)
            .then(|| local.strip_prefix(REPLY_PREFIX))
            .flatten()
            .map(|token| Route::Reply(token.to_owned()))
    });
    reply.or_else(|| {
        parts().find_map(|(local, d)| {
            let sub = d.strip_suffix(domain)?.strip_suffix('.')?;
            let (mount, project) = sub.split_once('.')?;
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 63
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            (ok(local) && ok(mount) && ok(project)).then(|| Route::Tool {
                local: local.to_owned(),
                mount: mount.to_owned(),
                project: project.to_owned(),
            })
        })
    })
}

/// A file of the mail, checked and named for the attachment store.
#[derive(Debug)]
struct MailFile {
    name: String,
    bytes: Vec<u8>,
}

/// The mail's attachments, every one checked (count, size, name) before anything is written.
/// Empty parts are skipped; names are made unique (the store replaces a same-named file).
fn files_of(msg: &Message<'_>, max_bytes: u64) -> Result<Vec<MailFile>, Refused> {
    let mut out: Vec<MailFile> = Vec::new();
    for (i, part) in msg.attachments().enumerate() {
        let bytes = part.contents();
        if bytes.is_empty() {
            continue;
        }
        if out.len() == MAX_ATTACHMENTS {
            return Err(Refused::data(format!(
                "the mail has more than {MAX_ATTACHMENTS} attachments"
            )));
        }
        let given = part
            .attachment_name()
            .map_or_else(|| format!("attachment-{}", i + 1), str::to_owned);
        let name = crate::attachments::sanitize_filename(&given)
            .unwrap_or_else(|_| format!("attachment-{}", i + 1));
        if bytes.len() as u64 > max_bytes {
            return Err(Refused::data(format!(
                "the attachment {name:?} is larger than the limit of {}",
                crate::attachments::human_size(max_bytes)
            )));
        }
        let name = unique_name(&name, &out);
        out.push(MailFile {
            name,
            bytes: bytes.to_vec(),
        });
    }
    Ok(out)
}

fn unique_name(name: &str, taken: &[MailFile]) -> String {
    let free = |n: &str| !taken.iter().any(|f| f.name == n);
    if free(name) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| format!("{stem}-{n}{ext}"))
        .find(|n| free(n))
        .unwrap_or_else(|| name.to_owned())
}

/// HTML converted with `html2text`, at most this large and this deeply nested (its layout
/// pass recurses); beyond, the parser's simpler conversion.
const MAX_HTML_CONVERTED: usize = 2_000_000;

/// The post's text: the first text body without what the reply quotes; when nothing is left
/// but files, a line naming them. HTML-only mail is converted to text first.
fn text_of(msg: &Message<'_>, files: &[MailFile]) -> String {
    let text = match msg.text_part(0) {
        Some(part) if part.is_text_html() => {
            let html = part.text_contents().unwrap_or_default();
            match html_to_text(html) {
                Some(t) => t,
                None => strip_quoted(&msg.body_text(0).unwrap_or_default()),
            }
        }
        _ => strip_quoted(&msg.body_text(0).unwrap_or_default()),
    };
    if text.is_empty() && !files.is_empty() {
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        return format!("Attached by mail: {}", names.join(", "));
    }
    text
}

/// HTML as markdown-like text (`**bold**`, `> ` for quotes, links as `[text][1]` with their
/// `[1]: url` at the end), its quoted part cut: the link list is set aside while the quote is
/// cut, then the links the reply still uses are put back. `None` when the HTML is too large
/// or nested too deeply for the converter.
fn html_to_text(html: &str) -> Option<String> {
    if html.len() > MAX_HTML_CONVERTED
        || crate::markdown::html_depth(html) > crate::markdown::MAX_HTML_DEPTH
    {
        return None;
    }
    let text = html2text::config::plain()
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 100)
        .ok()?;
    let is_link = |l: &str| {
        l.strip_prefix('[')
            .and_then(|r| r.split_once("]: "))
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let mut links: Vec<&str> = Vec::new();
    while let Some(last) = lines.last() {
        if last.trim().is_empty() {
            lines.pop();
        } else if is_link(last) {
            links.push(last);
            lines.pop();
        } else {
            break;
        }
    }
    let mut body = strip_quoted(&lines.join("\n"));
    let used: Vec<&str> = links
        .into_iter()
        .rev()
        .filter(|l| {
            let n = l.split_once(']').map_or("", |(n, _)| n);
            body.contains(&format!("]{n}]"))
        })
        .collect();
    if !used.is_empty() {
        body.push_str("\n\n");
        body.push_str(&used.join("\n"));
    }
    Some(body)
}

/// Whether a line introduces the quoted message ("On Mon, 1 Jan 2026, Alice wrote:").
fn is_attribution(line: &str) -> bool {
    let l = line.trim();
    l.ends_with("wrote:") || l.ends_with("a écrit :") || l.ends_with("schrieb:")
}

/// A reply's own text: cuts the signature (from a `-- ` line), a forwarded original (from
/// `-----Original Message-----`) and the quoted message at the bottom (the block of `>` lines
/// and the "On ... wrote:" line above it). Quotes the writer answers in between stay: they
/// are part of what was written. Line ends become `\n`; the result is trimmed.
pub fn strip_quoted(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut lines: Vec<&str> = text.split('\n').collect();
    if let Some(cut) = lines.iter().position(|l| {
        matches!(*l, "-- " | "--") || l.trim().eq_ignore_ascii_case("-----Original Message-----")
    }) {
        lines.truncate(cut);
    }
    // The quoted block at the bottom, and the blank lines around it.
    let quoted_or_blank = |l: &&str| l.trim().is_empty() || l.trim_start().starts_with('>');
    while lines.last().is_some_and(quoted_or_blank) {
        lines.pop();
    }
    // Its attribution; clients wrap long ones ("On ..., Alice <a@x>\nwrote:").
    if lines.last().is_some_and(|l| is_attribution(l)) {
        let last = lines.pop().unwrap_or_default();
        if !last.trim_start().starts_with("On ")
            && lines
                .last()
                .is_some_and(|l| l.trim_start().starts_with("On "))
        {
            lines.pop();
        }
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_bottom_quotes_and_attribution() {
        let mail = "Thanks, fixed in the next release.\r\n\r\nOn Mon, 4 May 2026 at 10:00, Forge <forge@example.org> wrote:\r\n> alice commented on ticket #1\r\n>\r\n> See it: http://x/\r\n";
        assert_eq!(strip_quoted(mail), "Thanks, fixed in the next release.");
        let wrapped = "Yes.\n\nOn Mon, 4 May 2026 at 10:00, Forge\n<forge@example.org> wrote:\n\n> quoted\n> more\n\n";
        assert_eq!(strip_quoted(wrapped), "Yes.");
    }

    #[test]
    fn cuts_signatures_and_forwarded_originals() {
        assert_eq!(
            strip_quoted("Looks good.\n-- \nAlice\nExample Corp\n> old"),
            "Looks good."
        );
        assert_eq!(
            strip_quoted("Top post.\n\n-----Original Message-----\nFrom: Forge\nSubject: x\n"),
            "Top post."
        );
    }

    #[test]
    fn keeps_inline_answers_and_plain_text() {
        let inline = "> Does it build?\nYes, on 1.95.\n> And the tests?\nAll pass.\n";
        assert_eq!(strip_quoted(inline), inline.trim());
        assert_eq!(strip_quoted("just text\n\n"), "just text");
        assert_eq!(strip_quoted("> only a quote\n"), "");
        // A markdown rule is not a signature.
        assert_eq!(strip_quoted("a\n---\nb"), "a\n---\nb");
    }

    #[test]
    fn html_becomes_text_without_its_quote() {
        let html = "<html><head><style>p{color:red}</style></head><body>\n<p>Confirmed on <b>Debian</b>, see <a href=\"https://x.example/log\">the log</a>.</p>\n<div class=\"gmail_quote\">On Mon, 4 May 2026, Forge wrote:<br>\n<blockquote>alice commented <a href=\"http://y/\">See it</a></blockquote></div>\n</body></html>";
        assert_eq!(
            html_to_text(html).unwrap(),
            "Confirmed on **Debian**, see [the log][1].\n\n[1]: https://x.example/log"
        );
        let deep = "<div>".repeat(crate::markdown::MAX_HTML_DEPTH + 1);
        assert_eq!(html_to_text(&deep), None);
    }

    #[test]
    fn routes_reply_and_tool_addresses() {
        let r = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            route(&list, "forge.example")
        };
        assert_eq!(
            r(&["someone@else.example", "reply+abc2@forge.example"]),
            Some(Route::Reply("abc2".into()))
        );
        assert_eq!(
            r(&["general@discussion.garden.forge.example"]),
            Some(Route::Tool {
                local: "general".into(),
                mount: "discussion".into(),
                project: "garden".into()
            })
        );
        // A reply address wins over a tool address, wherever it is.
        assert_eq!(
            r(&[
                "general@discussion.garden.forge.example",
                "reply+t@forge.example"
            ]),
            Some(Route::Reply("t".into()))
        );
        assert_eq!(r(&["reply+t@other.example"]), None);
        assert_eq!(r(&["x@a.b.c.forge.example"]), None);
        assert_eq!(r(&["x@garden.forge.example"]), None);
        assert_eq!(r(&["x@evilforge.example"]), None);
        assert_eq!(r(&[]), None);
    }

    #[test]
    fn only_the_configured_mta_vouches_for_a_sender() {
        let from = "ann@example.org";
        let ok = vec![
            "mx.forge.test; dkim=pass header.d=example.org header.s=s1; dmarc=pass (p=none) header.from=example.org".to_owned(),
        ];
        assert!(sender_authenticated(&ok, from, Some("mx.forge.test")));
        assert!(
            !sender_authenticated(&ok, from, None),
            "nothing trusted unset"
        );
        assert!(
            !sender_authenticated(&ok, from, Some("other.test")),
            "another server"
        );
        assert!(!sender_authenticated(
            &ok,
            "ann@evil.test",
            Some("mx.forge.test")
        ));
        let dkim_only = vec!["mx.forge.test 1; dkim=pass header.i=@example.org".to_owned()];
        assert!(sender_authenticated(
            &dkim_only,
            from,
            Some("mx.forge.test")
        ));
        let failed = vec![
            "mx.forge.test; dkim=fail header.d=example.org; dmarc=fail header.from=example.org"
                .to_owned(),
        ];
        assert!(!sender_authenticated(&failed, from, Some("mx.forge.test")));
        let other_domain = vec!["mx.forge.test; dkim=pass header.d=mailer.test".to_owned()];
        assert!(!sender_authenticated(
            &other_domain,
            from,
            Some("mx.forge.test")
        ));
    }

    #[test]
    fn file_names_are_unique() {
        let taken = vec![
            MailFile {
                name: "a.png".into(),
                bytes: vec![1],
            },
            MailFile {
                name: "a-2.png".into(),
                bytes: vec![1],
            },
        ];
        assert_eq!(unique_name("a.png", &taken), "a-3.png");
        assert_eq!(unique_name("b.png", &taken), "b.png");
    }
}
