//! Activity: the events people see in streams and feeds. An event of the log
//! (`crate::events`) is an activity when its `extra` document carries `title` (what the
//! artifact is called: "ticket #12: Crash on save", "page Home", "3 commits to main"), `url`
//! (a path under the base URL), optionally `summary` (plain text, at most
//! [`MAX_SUMMARY`] characters) and `restricted` (`{permission, users}`: only holders of that
//! tool permission, or these usernames, may see it; anonymous readers never do). The event's
//! context names the project, the tool's mount and the user who acted.
//!
//! This module is the convention's one definition ([`Activity`], written with
//! `crate::tool::record_activity`), low in the crate so the tools can use it; reading the
//! streams (what a viewer may see, newest first) is [`stream`], and who follows what is
//! [`follows`].

pub mod follows;
pub mod stream;

use bson::{Bson, Document, doc};
use mongodb::Database;

use crate::error::Result;
use futures::TryStreamExt;

use crate::events::{ACTIVITY, COLLECTION};

/// Longest summary kept (characters); longer ones are cut with an ellipsis.
pub const MAX_SUMMARY: usize = 300;
/// Raw text looked at to make a summary: enough for 300 plain characters, bounded so a long
/// page is not converted whole on the request path.
const SUMMARY_SOURCE: usize = 4_000;

/// Who may see an activity when fewer than the tool's readers may (a private ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restricted {
    /// A permission on the tool (e.g. the tracker's `update`) whose holders may see it.
    pub permission: String,
    /// Accounts (usernames) who may see it too, when they may read the tool.
    pub users: Vec<String>,
}

/// The activity fields of an event (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub title: String,
    pub url: String,
    pub summary: Option<String>,
    pub restricted: Option<Restricted>,
}

impl Activity {
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            url: url.into(),
            summary: None,
            restricted: None,
        }
    }

    /// Sets the summary from plain text, cut to [`MAX_SUMMARY`] characters (none when empty).
    pub fn summary(mut self, text: &str) -> Self {
        let text = squash(text);
        self.summary = (!text.is_empty()).then(|| cut(&text, MAX_SUMMARY));
        self
    }

    /// Sets the summary from markdown (rendered to plain text first).
    pub fn summary_markdown(self, markdown: &str) -> Self {
        let source = cut(markdown, SUMMARY_SOURCE);
        self.summary(&crate::markdown::to_plain_text(&source))
    }

    pub fn restricted(mut self, restricted: Option<Restricted>) -> Self {
        self.restricted = restricted;
        self
    }

    /// `extra` with this activity's fields added (they win over fields of the same name).
    pub fn into_extra(self, mut extra: Document) -> Document {
        extra.insert("title", cut(&self.title, MAX_SUMMARY));
        extra.insert("url", self.url);
        if let Some(s) = self.summary {
            extra.insert("summary", cut(&s, MAX_SUMMARY));
        }
        if let Some(r) = self.restricted {
            extra.insert("restricted", restricted_doc(&r));
        }
        extra
    }

    /// The activity an event's `extra` describes; `None` when it is not one.
    pub fn from_extra(extra: &Bson) -> Option<Self> {
        let extra = extra.as_document()?;
        let title = extra.get_str("title").ok()?;
        let url = extra.get_str("url").ok()?;
        let restricted = match extra.get("restricted") {
            None | Some(Bson::Null) => None,
            Some(Bson::Document(r)) => Some(Restricted {
                permission: r.get_str("permission").unwrap_or_default().to_owned(),
                users: r
                    .get_array("users")
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            // Malformed: treat as restricted to nobody but those who may do everything.
            Some(_) => Some(Restricted {
                permission: crate::acl::perm::ADMIN.to_owned(),
                users: Vec::new(),
            }),
        };
        Some(Self {
            title: title.to_owned(),
            url: url.to_owned(),
            summary: extra.get_str("summary").ok().map(str::to_owned),
            restricted,
        })
    }
}

fn restricted_doc(r: &Restricted) -> Document {
    doc! {"permission": &r.permission, "users": &r.users}
}

/// Whitespace runs (newlines included) as one space, trimmed: summaries are one line.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters of `text`, ending in an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{}…", keep.trim_end())
        }
    }
}

/// What someone did, for "alice *opened* ticket #12": from the event type (the known ones,
/// else a guess from its last part, so a new tool's events read sensibly without a change
/// here).
pub fn verb(kind: &str) -> &'static str {
    match kind {
        "project.create" => "created",
        "discussion.post" => "commented on",
        "repo.push" => "pushed",
        "tracker.ticket.change" => "changed",
        "wiki.page.undelete" => "restored",
        _ => match kind.rsplit('.').next().unwrap_or_default() {
            "create" | "open" if kind.contains("ticket") => "opened",
            "create" => "created",
            "edit" | "update" | "change" => "edited",
            "delete" => "deleted",
            "open" => "opened",
            "close" => "closed",
            "reopen" => "reopened",
            "rename" => "renamed",
            "move" => "moved",
            "post" | "reply" => "posted",
            "push" => "pushed",
            "approve" => "approved",
            _ => "updated",
        },
    }
}

/// Sets (or, with `None`, removes) the restriction on the activity events `filter` selects,
/// e.g. every event of a ticket made private. Events are history, but who may see them
/// follows the artifact: a ticket made private must not stay readable in feeds.
pub async fn set_restricted(
    db: &Database,
    mut filter: Document,
    restricted: Option<&Restricted>,
) -> Result<()> {
    filter.insert("extra.title", doc! {"$exists": true});
    let update = match restricted {
        Some(r) => doc! {"$set": {"extra.restricted": restricted_doc(r)}},
        None => doc! {"$unset": {"extra.restricted": ""}},
    };
    db.collection::<Document>(COLLECTION)
        .update_many(filter.clone(), update)
        .await?;
    sync(db, filter).await
}

/// Makes the events `filter` selects activity after the fact (a held post a moderator
/// approved shows where it was written, not at the approval).
pub async fn attach(db: &Database, filter: Document, activity: Activity) -> Result<()> {
    let mut set = Document::new();
    for (k, v) in activity.into_extra(Document::new()) {
        set.insert(format!("extra.{k}"), v);
    }
    db.collection::<Document>(COLLECTION)
        .update_many(filter.clone(), doc! {"$set": set})
        .await?;
    sync(db, filter).await
}

/// Makes the events `filter` selects no longer activity (their other fields stay for
/// analytics): a post deleted or found to be spam leaves the streams.
pub async fn retract(db: &Database, mut filter: Document) -> Result<()> {
    filter.insert("extra.title", doc! {"$exists": true});
    db.collection::<Document>(COLLECTION)
        .update_many(
            filter.clone(),
            doc! {"$unset": {"extra.title": "", "extra.url": "", "extra.summary": ""}},
        )
        .await?;
    sync(db, filter).await
}

/// Events changed after the fact, at most (one artifact's history).
const MAX_SYNCED: i64 = 10_000;

/// Brings the activity copies of the events `filter` selects in line with the events (see
/// `crate::events::ACTIVITY`): copied when they are activity, removed when no longer.
async fn sync(db: &Database, mut filter: Document) -> Result<()> {
    filter.remove("extra.title");
    let events: Vec<Document> = db
        .collection::<Document>(COLLECTION)
        .find(filter)
        .limit(MAX_SYNCED)
        .await?
        .try_collect()
        .await?;
    let copies = db.collection::<Document>(ACTIVITY);
    for e in events {
        let Some(id) = e.get("_id").cloned() else {
            continue;
        };
        if e.get("extra").is_some_and(crate::events::is_activity) {
            copies
                .replace_one(doc! {"_id": &id}, &e)
                .upsert(true)
                .await?;
        } else {
            copies.delete_one(doc! {"_id": &id}).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_cut() {
        let a = Activity::new("ticket #1: x", "/p/a/tickets/1/")
            .summary(&"word ".repeat(200))
            .restricted(Some(Restricted {
                permission: "update".into(),
                users: vec!["bob".into()],
            }));
        let extra = a.clone().into_extra(doc! {"ticket": 1});
        assert_eq!(extra.get_i32("ticket").unwrap(), 1);
        let back = Activity::from_extra(&Bson::Document(extra)).unwrap();
        assert_eq!(back, a);
        assert!(back.summary.unwrap().chars().count() <= MAX_SUMMARY);
        assert!(Activity::from_extra(&Bson::Document(doc! {"page": "x"})).is_none());
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
        assert_eq!(Activity::new("t", "/").summary("  \n ").summary, None);
    }

    #[test]
    fn verbs() {
        assert_eq!(verb("tracker.ticket.open"), "opened");
        assert_eq!(verb("tracker.ticket.close"), "closed");
        assert_eq!(verb("wiki.page.edit"), "edited");
        assert_eq!(verb("forum.thread.create"), "created");
        assert_eq!(verb("something"), "updated");
    }
}
