//! The domain error type. The web layer maps each variant to one status code.

use std::fmt;

/// Per-field validation messages, in form order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_owned(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// `Err(Error::Invalid)` when any message was added.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self))
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or the viewer may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The viewer may see the thing but not do this.
    #[error("you do not have permission to do this")]
    Forbidden,
    /// Anonymous viewer; logging in may help.
    #[error("you need to log in to do this")]
    Unauthenticated,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The request itself is malformed or out of range (a page number, a query).
    #[error("{0}")]
    BadRequest(String),
    /// The input is larger than the forge accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Too many of something in too short a time; the message says what and when to retry.
    #[error("{0}")]
    RateLimited(String),
    /// The server is at a capacity limit; try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error("the store is unavailable: {0}")]
    Store(#[from] mongodb::error::Error),
    #[error("task queue: {0}")]
    Tasks(#[from] forge_tasks::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut f = FieldErrors::new();
        f.add(field, message);
        Self::Invalid(f)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// True for a unique-index violation (E11000).
    pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
        use mongodb::error::{ErrorKind, WriteFailure};
        match e.kind.as_ref() {
            ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
            ErrorKind::InsertMany(im) => im
                .write_errors
                .as_ref()
                .is_some_and(|errs| errs.iter().any(|w| w.code == 11000)),
            ErrorKind::Command(c) => c.code == 11000,
            _ => e.to_string().contains("E11000"),
        }
    }

    /// True when an unordered `insert_many` failed only because some of its documents were
    /// there already (every write error a unique-index violation, the write concern met).
    pub fn only_duplicate_keys(e: &mongodb::error::Error) -> bool {
        match e.kind.as_ref() {
            mongodb::error::ErrorKind::InsertMany(f) => {
                f.write_concern_error.is_none()
                    && f.write_errors
                        .as_ref()
                        .is_some_and(|w| w.iter().all(|w| w.code == 11000))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
