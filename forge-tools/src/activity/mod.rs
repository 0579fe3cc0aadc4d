//! Activity: the events people see in streams and feeds. An event of the log
//! (`crate::events`) is an activity when its `extra` document carries `title` (what the
//! artifact is called: "ticket #12: Crash on save", "page Home", "3 commits to main"), `url`
//! (a path under the base URL), optionally `summary` (plain text, at most
//! [`MAX_SUMMARY`] characters) and `restricted` (`{permission, users}`: only holders of that
//! tool permission, or these usernames, may see it; anonymous readers never do). The event's
//! context names the project, the tool's mount and the user who acted. `hidden` ([`HIDDEN`])
//! keeps an activity out of the streams (a held post until approved).
//!
//! The streams read the copies of these events in the `activity` collection (see
//! [`ACTIVITY`]); what changes after the fact ([`set_restricted`], [`attach`],
//! [`retract`]) changes the copies only, and is logged a while so that a copy written late
//! gets it too ([`reconcile`]).
//!
//! This module is the convention's one definition ([`Activity`], written with
//! `crate::tool::record_activity`), low in the crate so the tools can use it; reading the
//! streams (what a viewer may see, newest first) is [`stream`], and who follows what is
//! [`follows`].

pub mod follows;
pub mod stream;

use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use crate::error::{Error, Result};

/// Copies of the events that are activity (`extra.title` set), the same documents under the
/// same ids: the streams read this small collection instead of filtering every page view
/// out of the whole event log.
pub const ACTIVITY: &str = "activity";

/// Whether an event is activity (its `extra` has a title).
pub fn is_activity(extra: &Bson) -> bool {
    matches!(extra, Bson::Document(d) if d.contains_key("title"))
}

/// An `extra` field of activity kept but not shown (`true`): a held post until a moderator
/// approves it, a post deleted or found to be spam.
pub const HIDDEN: &str = "hidden";
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
        if extra.get_bool(HIDDEN).unwrap_or(false) {
            return None;
        }
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

/// Sets (or, with `None`, removes) the restriction on the activity `filter` selects (e.g.
/// every activity of a ticket made private). Activity is history, but who may see it follows
/// the artifact: a ticket made private must not stay readable in feeds.
///
/// This and [`attach`] and [`retract`] change the activity copies only (the event log is
/// never shown), with a filter the `activity` collection's indexes answer: `extra.post`,
/// `extra.artifact`, or `extra.ticket` with the project.
pub async fn set_restricted(
    db: &Database,
    filter: Document,
    restricted: Option<&Restricted>,
) -> Result<()> {
    let update = match restricted {
        Some(r) => doc! {"$set": {"extra.restricted": restricted_doc(r)}},
        None => doc! {"$unset": {"extra.restricted": ""}},
    };
    change(db, filter, update).await
}

/// Shows the activity `filter` selects as `activity` says (a held post a moderator approved
/// shows where it was written, not at the approval): its title, address, summary and
/// restriction replaced, and no longer [`HIDDEN`].
pub async fn attach(db: &Database, filter: Document, activity: Activity) -> Result<()> {
    let mut set = Document::new();
    for (k, v) in activity.into_extra(Document::new()) {
        set.insert(format!("extra.{k}"), v);
    }
    let mut unset = doc! {format!("extra.{HIDDEN}"): ""};
    for k in ["summary", "restricted"] {
        if !set.contains_key(format!("extra.{k}")) {
            unset.insert(format!("extra.{k}"), "");
        }
    }
    change(db, filter, doc! {"$set": set, "$unset": unset}).await
}

/// Takes the activity `filter` selects out of the streams (a post deleted or found to be
/// spam): kept [`HIDDEN`], without its summary, so that an approval ([`attach`]) may show it
/// again.
pub async fn retract(db: &Database, filter: Document) -> Result<()> {
    change(
        db,
        filter,
        doc! {"$set": {format!("extra.{HIDDEN}"): true}, "$unset": {"extra.summary": ""}},
    )
    .await
}

/// Changes made to activity after the fact, kept a while for copies written after them (see
/// [`reconcile`]): `{at, filter, update}`, the filter and update as BSON bytes (they hold
/// `$` and dotted keys).
pub const CHANGES: &str = "activity_changes";
/// How long a change is kept for late copies: an event waits for its writer seconds at most;
/// a day covers a writer stalled by a store outage.
const CHANGES_KEPT: Duration = Duration::from_secs(86_400);
/// Slack for what an event's timestamp does not show (a change is applied to copies of
/// events recorded up to this long after it): the clocks of two nodes differing, and the
/// artifact read a moment before its event was recorded.
const SKEW_MS: i64 = 60 * 1_000;
/// Changes applied to one batch of copies at most (the newest).
const MAX_REAPPLIED: i64 = 500;

pub(crate) async fn ensure_indexes(db: &Database) -> Result<()> {
    db.collection::<Document>(CHANGES)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"at": 1})
                .options(IndexOptions::builder().expire_after(CHANGES_KEPT).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// Logs a change, then makes it to the copies there now. A copy written later (its event was
/// still in a writer's queue) gets it from [`reconcile`]: whichever runs second sees the
/// other's write, so no copy misses a change.
async fn change(db: &Database, filter: Document, update: Document) -> Result<()> {
    let bytes = |d: &Document| {
        d.to_vec()
            .map(|bytes| Binary {
                subtype: BinarySubtype::Generic,
                bytes,
            })
            .map_err(|e| Error::Internal(format!("activity change: {e}")))
    };
    db.collection::<Document>(CHANGES)
        .insert_one(doc! {
            "at": DateTime::now(),
            "filter": bytes(&filter)?,
            "update": bytes(&update)?,
        })
        .await?;
    db.collection::<Document>(ACTIVITY)
        .update_many(filter, update)
        .await?;
    Ok(())
}

/// Brings activity copies just written in line with the changes made since their events
/// were recorded ([`set_restricted`], [`attach`], [`retract`] that ran while the events
/// waited to be written), in the order they were made. The event writer calls it once a
/// batch's copies are inserted.
pub async fn reconcile<'a>(
    db: &Database,
    copies: impl IntoIterator<Item = &'a Document>,
) -> Result<()> {
    let (mut ids, mut oldest) = (Vec::new(), None::<DateTime>);
    for c in copies {
        let Some(id) = c.get("_id") else {
            continue;
        };
        ids.push(id.clone());
        let at = c
            .get_datetime("timestamp")
            .copied()
            .unwrap_or_else(|_| DateTime::now());
        oldest = Some(oldest.map_or(at, |o| o.min(at)));
    }
    let Some(oldest) = oldest else {
        return Ok(());
    };
    let since = DateTime::from_millis(oldest.timestamp_millis().saturating_sub(SKEW_MS));
    let mut changes: Vec<Document> = db
        .collection::<Document>(CHANGES)
        .find(doc! {"at": {"$gte": since}})
        .sort(doc! {"at": -1, "_id": -1})
        .limit(MAX_REAPPLIED)
        .await?
        .try_collect()
        .await?;
    // Oldest first: the last change made to a copy is the one that stays.
    changes.reverse();
    let copies = db.collection::<Document>(ACTIVITY);
    for c in changes {
        let decode = |k: &str| match c.get(k) {
            Some(Bson::Binary(b)) => Document::from_reader(b.bytes.as_slice()).ok(),
            _ => None,
        };
        let (Some(filter), Some(update)) = (decode("filter"), decode("update")) else {
            continue;
        };
        copies
            .update_many(doc! {"$and": [{"_id": {"$in": &ids}}, filter]}, update)
            .await?;
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
