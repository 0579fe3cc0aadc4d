//! Storage of tickets: `tracker_tickets` (the current state of each ticket), the per-tracker
//! number counter (`tracker_counters`), the change history (`tracker_changes`), votes
//! (`tracker_votes`) and the redirects moved tickets leave (`tracker_moved`).

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ToolId;

pub const TICKETS: &str = "tracker_tickets";
pub const COUNTERS: &str = "tracker_counters";
pub const CHANGES: &str = "tracker_changes";
pub const VOTES: &str = "tracker_votes";
pub const MOVED: &str = "tracker_moved";

/// Moderation state of a ticket: anonymous tickets wait for a moderator.
pub const LIVE: &str = "ok";
pub const PENDING: &str = "pending";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    pub ticket_num: i64,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub status: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// Username; empty for an anonymous report.
    #[serde(default)]
    pub reported_by: String,
    #[serde(default)]
    pub milestone: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub votes_up: i64,
    #[serde(default)]
    pub votes_down: i64,
    /// `votes_up - votes_down`, for sorting.
    #[serde(default)]
    pub votes: i64,
    #[serde(default)]
    pub custom_fields: Document,
    pub created: DateTime,
    pub modified: DateTime,
    pub version: i64,
    #[serde(default = "live")]
    pub moderation: String,
    #[serde(default)]
    pub deleted: bool,
    /// The comments' text, for free-text filters (kept by the search indexer's refresh).
    #[serde(default)]
    pub comments_text: String,
    /// Files an imported ticket had where it came from (name, address, size).
    #[serde(default)]
    pub imported_attachments: Vec<ImportedFile>,
}

/// An attachment of an imported ticket, by name and original address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedFile {
    pub filename: String,
    pub url: String,
    pub bytes: i64,
}

fn live() -> String {
    LIVE.to_owned()
}

impl Ticket {
    /// The artifact key of the ticket: its search key and discussion thread.
    pub fn key(&self) -> String {
        key_of(self.id)
    }
}

pub fn key_of(id: ObjectId) -> String {
    format!("ticket:{}", id.to_hex())
}

/// The backlink key of a ticket (what "linked from" lists are keyed by).
pub fn link_key(tool: &crate::tool::ToolInstance, num: i64) -> String {
    format!("ticket:{}:{num}", tool.id)
}

/// One field's change in a ticket's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// A change to a ticket: who, when, and each field's old and new value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub ticket_id: ObjectId,
    pub tool_id: ToolId,
    pub author: String,
    pub when: DateTime,
    /// The ticket's version after the change.
    pub version: i64,
    pub changes: Vec<FieldChange>,
    /// Why, when a change says (the commit that closed it...), as markdown.
    #[serde(default)]
    pub note: String,
}

pub(super) fn tickets(db: &Database) -> Collection<Ticket> {
    db.collection(TICKETS)
}

pub(super) fn changes(db: &Database) -> Collection<Change> {
    db.collection(CHANGES)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    tickets(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "ticket_num": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "status": 1, "ticket_num": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "modified": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "assigned_to": 1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "labels": 1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "milestone": 1})
                .build(),
        ])
        .await?;
    changes(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"ticket_id": 1, "version": 1})
                .build(),
        )
        .await?;
    db.collection::<Document>(VOTES)
        .create_index(IndexModel::builder().keys(doc! {"ticket_id": 1}).build())
        .await?;
    db.collection::<Document>(MOVED)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "ticket_num": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// The next ticket number of a tracker: one atomic increment, so numbers are unique and,
/// as long as inserts succeed, gapless under any concurrency.
pub async fn next_number(db: &Database, tool: ToolId) -> Result<i64> {
    let counters = db.collection::<Document>(COUNTERS);
    // Two first tickets at once may both try to create the counter: one upsert wins, the
    // other fails on the unique `_id` (or, on some servers, finds nothing); it then simply
    // increments the counter that now exists.
    for _ in 0..5 {
        let res = counters
            .find_one_and_update(doc! {"_id": tool}, doc! {"$inc": {"seq": 1_i64}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match res {
            Ok(Some(d)) => {
                if let Ok(n) = d.get_i64("seq") {
                    return Ok(n);
                }
            }
            Ok(None) => {}
            Err(e) if Error::is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Busy("could not number the ticket; try again".into()))
}

/// Creates a tracker's counter (at install), so the first tickets never race to create it.
pub async fn create_counter(db: &Database, tool: ToolId) -> Result<()> {
    db.collection::<Document>(COUNTERS)
        .update_one(doc! {"_id": tool}, doc! {"$setOnInsert": {"seq": 0_i64}})
        .upsert(true)
        .await?;
    Ok(())
}

/// Moves the counter past `num` (imports keep their numbers).
pub async fn counter_at_least(db: &Database, tool: ToolId, num: i64) -> Result<()> {
    db.collection::<Document>(COUNTERS)
        .update_one(doc! {"_id": tool}, doc! {"$max": {"seq": num}})
        .upsert(true)
        .await?;
    Ok(())
}

pub async fn insert(db: &Database, t: &Ticket) -> Result<()> {
    match tickets(db).insert_one(t).await {
        Ok(_) => Ok(()),
        Err(e) if Error::is_duplicate_key(&e) => Err(Error::conflict(
            "duplicate_ticket",
            format!("Ticket #{} already exists in this tracker", t.ticket_num),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The read model's memos of this tool (registered through `Tool::kept`): tickets by
/// number and by id, each ticket's changes, votes.
pub const MEMO_TICKETS: &str = "tracker_tickets";
pub const MEMO_CHANGES: &str = "tracker_changes";
pub const MEMO_VOTES: &str = "tracker_votes";
/// Counts of the tickets numbered up to a block boundary: filing a ticket (an insert, with
/// a higher number) leaves them alone; any other change of the tickets drops them.
pub const MEMO_PAST_COUNTS: &str = "tracker_past_counts";
/// Numbers are counted in blocks of this many: a count reads at most two blocks' worth of
/// the newest tickets, the rest comes from [`MEMO_PAST_COUNTS`].
const COUNT_BLOCK: i64 = 256;

/// The estimated size of a kept ticket.
fn ticket_weight(t: &Option<Ticket>) -> usize {
    t.as_ref().map_or(0, |t| {
        t.summary.len() + t.description.len() + t.comments_text.len() + 1024
    })
}

pub async fn by_num(db: &Database, tool: ToolId, num: i64) -> Result<Option<Ticket>> {
    crate::readmodel::memo(
        db,
        MEMO_TICKETS,
        format!("n/{}/{num}", tool.0),
        ticket_weight,
        || async {
            Ok(tickets(db)
                .find_one(doc! {"tool_id": tool, "ticket_num": num, "deleted": false})
                .await?)
        },
    )
    .await
}

pub async fn by_id(db: &Database, id: ObjectId) -> Result<Option<Ticket>> {
    crate::readmodel::memo(
        db,
        MEMO_TICKETS,
        format!("i/{id}"),
        ticket_weight,
        || async { Ok(tickets(db).find_one(doc! {"_id": id}).await?) },
    )
    .await
}

pub async fn by_nums(db: &Database, tool: ToolId, nums: &[i64]) -> Result<Vec<Ticket>> {
    Ok(tickets(db)
        .find(doc! {"tool_id": tool, "ticket_num": {"$in": nums}, "deleted": false})
        .await?
        .try_collect()
        .await?)
}

/// Tickets by id (of any tracker), bounded.
pub async fn by_ids(db: &Database, ids: &[ObjectId]) -> Result<Vec<Ticket>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tickets(db)
        .find(doc! {"_id": {"$in": ids}})
        .projection(doc! {"comments_text": 0, "description": 0})
        .limit(1_000)
        .await?
        .try_collect()
        .await?)
}

/// Saves `new` over the ticket if it is still at `from_version`; false when someone saved
/// meanwhile (nothing written).
pub async fn replace_if(db: &Database, new: &Ticket, from_version: i64) -> Result<bool> {
    let res = tickets(db)
        .replace_one(doc! {"_id": new.id, "version": from_version}, new)
        .await?;
    Ok(res.matched_count == 1)
}

pub async fn record_change(db: &Database, c: &Change) -> Result<()> {
    changes(db).insert_one(c).await?;
    Ok(())
}

/// A ticket's history, oldest first (bounded).
pub async fn history(db: &Database, ticket: ObjectId) -> Result<Vec<Change>> {
    crate::readmodel::memo(
        db,
        MEMO_CHANGES,
        ticket.to_hex(),
        |all: &Vec<Change>| {
            all.iter()
                .map(|c| {
                    c.note.len()
                        + c.changes
                            .iter()
                            .map(|f| f.field.len() + f.old.len() + f.new.len() + 48)
                            .sum::<usize>()
                        + 128
                })
                .sum()
        },
        || async {
            Ok(changes(db)
                .find(doc! {"ticket_id": ticket})
                .sort(doc! {"version": 1})
                .limit(5_000)
                .await?
                .try_collect()
                .await?)
        },
    )
    .await
}

/// Changes recorded after `version`.
pub async fn changes_since(db: &Database, ticket: ObjectId, version: i64) -> Result<Vec<Change>> {
    Ok(changes(db)
        .find(doc! {"ticket_id": ticket, "version": {"$gt": version}})
        .sort(doc! {"version": 1})
        .limit(5_000)
        .await?
        .try_collect()
        .await?)
}

/// Records a vote (+1, -1, or 0 to withdraw); returns the ticket's new (up, down).
pub async fn vote(db: &Database, ticket: ObjectId, user: &str, vote: i32) -> Result<(i64, i64)> {
    let votes = db.collection::<Document>(VOTES);
    let id = format!("{}:{user}", ticket.to_hex());
    if vote == 0 {
        votes.delete_one(doc! {"_id": &id}).await?;
    } else {
        votes
            .update_one(
                doc! {"_id": &id},
                doc! {"$set": {"ticket_id": ticket, "vote": vote}},
            )
            .upsert(true)
            .await?;
    }
    // Counted from the votes themselves, so a retry or a race cannot skew the totals.
    let mut up = 0;
    let mut down = 0;
    let mut cursor = votes.find(doc! {"ticket_id": ticket}).await?;
    while let Some(d) = cursor.try_next().await? {
        match d.get_i32("vote").unwrap_or(0) {
            v if v > 0 => up += 1,
            v if v < 0 => down += 1,
            _ => {}
        }
    }
    tickets(db)
        .update_one(
            doc! {"_id": ticket},
            doc! {"$set": {"votes_up": up, "votes_down": down, "votes": up - down}},
        )
        .await?;
    Ok((up, down))
}

pub async fn vote_of(db: &Database, ticket: ObjectId, user: &str) -> Result<i32> {
    let id = format!("{}:{user}", ticket.to_hex());
    crate::readmodel::memo(
        db,
        MEMO_VOTES,
        id.clone(),
        |_: &i32| 0,
        || async {
            Ok(db
                .collection::<Document>(VOTES)
                .find_one(doc! {"_id": id})
                .await?
                .and_then(|d| d.get_i32("vote").ok())
                .unwrap_or(0))
        },
    )
    .await
}

/// Where a moved ticket went (a path).
pub async fn moved_to(db: &Database, tool: ToolId, num: i64) -> Result<Option<String>> {
    Ok(db
        .collection::<Document>(MOVED)
        .find_one(doc! {"tool_id": tool, "ticket_num": num})
        .await?
        .and_then(|d| d.get_str("to").ok().map(str::to_owned)))
}

pub async fn record_move(db: &Database, tool: ToolId, num: i64, to: &str) -> Result<()> {
    db.collection::<Document>(MOVED)
        .update_one(
            doc! {"tool_id": tool, "ticket_num": num},
            doc! {"$set": {"to": to}},
        )
        .upsert(true)
        .await?;
    Ok(())
}

/// A page of tickets matching `filter`, sorted, and how many match in all.
pub async fn find(
    db: &Database,
    tool: ToolId,
    filter: Document,
    sort: Document,
    skip: u64,
    limit: i64,
) -> Result<(Vec<Ticket>, u64)> {
    let total = count(db, tool, filter.clone()).await?;
    let want = skip.saturating_add(u64::try_from(limit).unwrap_or(0));
    // Newest first (the default order) starts among the newest numbers: a page that fills
    // from them is the page overall (every other ticket has a lower number), and a store
    // whose planner reads a whole index range before it sorts and limits (the embedded one
    // does) then reads a few hundred tickets, not the whole tracker, per list.
    // Only where more tickets match than the window spans: a small tracker (or a sparse
    // filter, whose window would not fill) is read whole at once, without the counter.
    let span = want.saturating_mul(4).saturating_add(200);
    if sort == doc! {"ticket_num": -1} && total > span {
        let highest = highest(db, tool).await?;
        let span = i64::try_from(span).unwrap_or(i64::MAX);
        if highest > span {
            let windowed = doc! {"$and": [filter.clone(), {"ticket_num": {"$gt": highest - span}}]};
            let list = page(db, windowed, sort.clone(), skip, limit).await?;
            if list.len() as u64 == want - skip {
                return Ok((list, total));
            }
        }
    }
    Ok((page(db, filter, sort, skip, limit).await?, total))
}

async fn page(
    db: &Database,
    filter: Document,
    sort: Document,
    skip: u64,
    limit: i64,
) -> Result<Vec<Ticket>> {
    Ok(tickets(db)
        .find(filter)
        .sort(sort)
        .skip(skip)
        .limit(limit)
        .projection(doc! {"comments_text": 0})
        .await?
        .try_collect()
        .await?)
}

/// The highest ticket number given out in `tool` (0 before the first).
async fn highest(db: &Database, tool: ToolId) -> Result<i64> {
    Ok(db
        .collection::<Document>(COUNTERS)
        .find_one(doc! {"_id": tool})
        .await?
        .and_then(|d| d.get_i64("seq").ok())
        .unwrap_or(0))
}

/// How many tickets of `tool` match `filter` (which names the tool): kept in the read model
/// until the tickets change, so lists between two changes share one. A count reads every
/// matching ticket, and tickets are filed all the time on a busy tracker, so the count is
/// split at a block boundary below the newest numbers: the tickets up to it are counted once
/// until one of them changes (filing adds higher numbers only), the newest each time.
pub async fn count(db: &Database, tool: ToolId, filter: Document) -> Result<u64> {
    crate::readmodel::memo(
        db,
        MEMO_TICKETS,
        format!("c/{filter}"),
        |_: &u64| 64,
        || async {
            let below = (highest(db, tool).await? / COUNT_BLOCK - 1) * COUNT_BLOCK;
            if below <= 0 {
                return Ok(tickets(db).count_documents(filter.clone()).await?);
            }
            let past_filter = doc! {"$and": [filter.clone(), {"ticket_num": {"$lte": below}}]};
            let past = crate::readmodel::memo(
                db,
                MEMO_PAST_COUNTS,
                format!("{below}/{filter}"),
                |_: &u64| 64,
                || async { Ok(tickets(db).count_documents(past_filter).await?) },
            );
            let recent_filter = doc! {"$and": [filter.clone(), {"ticket_num": {"$gt": below}}]};
            let recent = async { Ok(tickets(db).count_documents(recent_filter).await?) };
            let (past, recent) = futures::try_join!(past, recent)?;
            Ok(past + recent)
        },
    )
    .await
}

/// Tickets matching `filter` counted per milestone and open/closed:
/// `(milestone, closed, count)`.
pub async fn milestone_counts(
    db: &Database,
    filter: Document,
    closed_statuses: &[String],
) -> Result<Vec<(String, bool, u64)>> {
    let pipeline = vec![
        doc! {"$match": {"$and": [filter, {"milestone": {"$ne": null}}]}},
        doc! {"$group": {
            "_id": {"m": "$milestone", "closed": {"$in": ["$status", closed_statuses]}},
            "n": {"$sum": 1_i64},
        }},
    ];
    let mut cursor = tickets(db).aggregate(pipeline).await?;
    let mut out = Vec::new();
    while let Some(d) = cursor.try_next().await? {
        let Ok(id) = d.get_document("_id") else {
            continue;
        };
        let name = id.get_str("m").unwrap_or_default().to_owned();
        let closed = id.get_bool("closed").unwrap_or(false);
        let n = match d.get("n") {
            Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
            Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
            Some(Bson::Double(n)) => *n as u64,
            _ => 0,
        };
        out.push((name, closed, n));
    }
    Ok(out)
}

/// Every ticket of a tracker (export, reindex), oldest first.
pub async fn all(db: &Database, tool: ToolId) -> Result<Vec<Ticket>> {
    Ok(tickets(db)
        .find(doc! {"tool_id": tool, "deleted": false})
        .sort(doc! {"ticket_num": 1})
        .await?
        .try_collect()
        .await?)
}

pub async fn set_comments_text(db: &Database, id: ObjectId, text: &str) -> Result<()> {
    tickets(db)
        .update_one(doc! {"_id": id}, doc! {"$set": {"comments_text": text}})
        .await?;
    Ok(())
}

pub async fn delete_tool(db: &Database, tool: ToolId) -> Result<()> {
    let ids: Vec<ObjectId> = tickets(db)
        .clone_with_type::<Document>()
        .find(doc! {"tool_id": tool})
        .projection(doc! {"_id": 1})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .into_iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    tickets(db).delete_many(doc! {"tool_id": tool}).await?;
    changes(db).delete_many(doc! {"tool_id": tool}).await?;
    db.collection::<Document>(VOTES)
        .delete_many(doc! {"ticket_id": {"$in": ids}})
        .await?;
    db.collection::<Document>(COUNTERS)
        .delete_one(doc! {"_id": tool})
        .await?;
    db.collection::<Document>(MOVED)
        .delete_many(doc! {"tool_id": tool})
        .await?;
    Ok(())
}

/// A value for the history: text as shown.
pub fn show(v: &Bson) -> String {
    super::config::value_text(v)
}
