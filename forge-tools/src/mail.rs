//! Outgoing mail with lettre: SMTP when `FORGE_SMTP_URL` is set, otherwise one `.eml` file per
//! message under `<data>/mail` (what a fresh install and the tests read).

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
