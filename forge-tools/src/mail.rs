//! Outgoing mail with lettre: SMTP when `FORGE_SMTP_URL` is set, otherwise one `.eml` file per
//! message under `<data>/mail` (what a fresh install and the tests read).
//!
//! Besides the text, a [`Mail`] carries what mail clients thread and filter by: its
//! `Message-ID`, the root id of its discussion (`In-Reply-To` and `References`, so every mail
//! about one ticket or page lands in one conversation), `List-Id`, `List-Unsubscribe` with
//! RFC 8058's one-click `List-Unsubscribe-Post`, and a `Reply-To` a reply can come back to.

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;
use crate::error::{Error, Result};

/// One message, already rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Where a mail client's "unsubscribe" goes.
    pub unsubscribe: Option<String>,
    /// The unsubscribe link works with one POST and nothing else (RFC 8058): adds
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    pub one_click: bool,
    /// `Message-ID`, with its angle brackets (lettre makes one up when unset).
    pub message_id: Option<String>,
    /// Id of the conversation's root (with angle brackets): `In-Reply-To` and `References`.
    pub thread_root: Option<String>,
    /// `List-Id`: the list's name (a phrase, e.g. the project's name) and id (no brackets).
    pub list_id: Option<(String, String)>,
    /// `Reply-To` address.
    pub reply_to: Option<String>,
}

impl Mail {
    /// A mail with only its recipient, subject and bodies; the headers above unset.
    pub fn new(to: String, subject: String, text: String, html: String) -> Self {
        Self {
            to,
            subject,
            text,
            html,
            unsubscribe: None,
            one_click: false,
            message_id: None,
            thread_root: None,
            list_id: None,
            reply_to: None,
        }
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

/// `List-Unsubscribe` (RFC 2369), which lettre does not name.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post` (RFC 8058): the unsubscribe link takes one POST.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// `List-Id` (RFC 2919): `"Name" <id>`.
#[derive(Clone)]
struct ListId(String);

impl Header for ListId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Id")
    }
    fn parse(s: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The `List-Id` value: an ASCII name as a quoted string; any other name without quotes and
/// without the characters that would end the phrase, so lettre encodes its words (RFC 2047
/// encoded words may not stand inside quotes).
fn list_id_value(name: &str, id: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    if name.is_ascii() {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{id}>")
    } else {
        let phrase: String = name
            .chars()
            .map(|c| {
                if "\"<>()[],;:\\@.".contains(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        format!(
            "{} <{id}>",
            phrase.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}

fn mail_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("mail: {e}"))
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Self> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| mail_err(format!("FORGE_MAIL_FROM {:?}: {e}", config.mail_from)))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(mail_err)?
                    .build(),
            ),
            None => {
                let dir = config.data_dir.join("mail");
                Transport::Files(AsyncFileTransport::new(&dir), dir)
            }
        };
        Ok(Self { from, transport })
    }

    /// Where `.eml` files go when there is no SMTP server.
    pub fn mail_dir(&self) -> Option<&std::path::Path> {
        match &self.transport {
            Transport::Files(_, dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    pub async fn send(&self, mail: &Mail) -> Result<()> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| Error::invalid("email", format!("{:?}: {e}", mail.to)))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject);
        if let Some(u) = &mail.unsubscribe {
            builder = builder.header(ListUnsubscribe(u.clone()));
            if mail.one_click {
                builder = builder.header(ListUnsubscribePost);
            }
        }
        if let Some(id) = &mail.message_id {
            builder = builder.message_id(Some(id.clone()));
        }
        if let Some(root) = &mail.thread_root {
            builder = builder.in_reply_to(root.clone()).references(root.clone());
        }
        if let Some((name, id)) = &mail.list_id {
            builder = builder.header(ListId(list_id_value(name, id)));
        }
        if let Some(r) = &mail.reply_to {
            let mbox: Mailbox = r
                .parse()
                .map_err(|e| mail_err(format!("Reply-To {r:?}: {e}")))?;
            builder = builder.reply_to(mbox);
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html.clone()),
                    ),
            )
            .map_err(mail_err)?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(drop).map_err(mail_err),
            Transport::Files(t, dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(mail_err)?;
                t.send(message).await.map(drop).map_err(mail_err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_id_names_are_quoted_or_left_for_encoding() {
        assert_eq!(
            list_id_value("Project \"garden\"", "wiki.garden.example.org"),
            "\"Project \\\"garden\\\"\" <wiki.garden.example.org>"
        );
        assert_eq!(
            list_id_value("Jardin <é>, vert", "w.j.example.org"),
            "Jardin é vert <w.j.example.org>"
        );
    }
}
