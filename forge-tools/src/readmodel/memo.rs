//! Memos: answers to whole queries (a page by name, the links to a page, a thread's posts),
//! kept whole and dropped whole. A memo watches one collection and any change to it, seen
//! on the change stream (another node) or issued by this process ([`wrote`]), empties it,
//! so it needs no map from documents to the queries they answer. That suits what is read
//! far more often than it is written (pages, their attachments and links, threads), which
//! is what page views read.
//!
//! The module that owns a collection (or a tool, through `Tool::kept`) registers its memos
//! ([`kind`]) and reads through them ([`memo`]); its writes need no extra step: the driver's
//! command monitoring ([`note`]) empties the memos of every collection this process writes,
//! before the write's answer reaches the writer, so a node reads its own writes.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use mongodb::Database;
use mongodb::event::command::CommandEvent;

use super::{Change, Kept, Part, PartStats, ReadModel};
use crate::error::Result;

/// One memo: answers by key, all dropped by any change of `collection` (but inserts, for
/// one made with [`kind_past`]).
pub struct Memo {
    name: &'static str,
    collection: &'static str,
    part: Part<String, Entry>,
    /// Whether an insert empties it.
    inserts: bool,
}

/// An answer, of whichever type its memo keeps, with its estimated size.
#[derive(Clone)]
struct Entry {
    weight: u32,
    value: Arc<dyn Any + Send + Sync>,
}

/// A memo named `name` over `collection`, of at most `max_bytes`.
pub fn kind(name: &'static str, collection: &'static str, max_bytes: u64) -> Arc<dyn Kept> {
    memo_kind(name, collection, max_bytes, true)
}

/// A memo that inserts into `collection` leave alone: for answers about the documents there
/// already (a count of tickets below a number that new tickets never get). Any other change
/// empties it; so must a writer that inserts documents such answers are about.
pub fn kind_past(name: &'static str, collection: &'static str, max_bytes: u64) -> Arc<dyn Kept> {
    memo_kind(name, collection, max_bytes, false)
}

fn memo_kind(
    name: &'static str,
    collection: &'static str,
    max_bytes: u64,
    inserts: bool,
) -> Arc<dyn Kept> {
    Arc::new(Memo {
        name,
        collection,
        part: Part::new(name, max_bytes, |k, e: &Entry| {
            super::len(k).saturating_add(e.weight).saturating_add(64)
        }),
        inserts,
    })
}

impl Memo {
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Kept for Memo {
    fn collection(&self) -> Option<&'static str> {
        Some(self.collection)
    }
    fn changed(&self, change: &Change) {
        if self.inserts || change.kind != super::ChangeKind::Insert {
            self.part.invalidate_all();
        }
    }
    fn reset(&self) {
        self.part.invalidate_all();
    }
    fn stats(&self) -> Vec<PartStats> {
        vec![self.part.stats()]
    }
}

/// The answer for `key` in memo `name` of `db`'s live model, else from `load` (kept, sized
/// by `weigh`, unless a change came meanwhile). Without a live model, or a memo of that
/// name, `load` answers. One memo keeps one type.
pub async fn memo<T, F, Fut>(
    db: &Database,
    name: &'static str,
    key: String,
    weigh: fn(&T) -> usize,
    load: F,
) -> Result<T>
where
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let model = ReadModel::of(db);
    let Some((m, memo)) = model.as_deref().and_then(|m| Some((m, m.memo(name)?))) else {
        return load().await;
    };
    let mut fresh = None;
    let entry = memo
        .part
        .get(m, key, || async {
            let v = load().await?;
            let weight = u32::try_from(weigh(&v)).unwrap_or(u32::MAX);
            fresh = Some(v.clone());
            Ok(Some(Entry {
                weight,
                value: Arc::new(v),
            }))
        })
        .await?;
    if let Some(v) = fresh {
        return Ok(v);
    }
    match entry.and_then(|e| e.value.downcast_ref::<T>().cloned()) {
        Some(v) => Ok(v),
        // Two callers giving one memo different types: a bug, not the visitor's.
        None => Err(crate::error::Error::Internal(format!(
            "memo {name} holds another type"
        ))),
    }
}

impl ReadModel {
    /// The memo named `name`, if this model keeps one.
    pub fn memo(&self, name: &str) -> Option<&Memo> {
        self.memos().find(|m| m.name == name)
    }

    /// This process wrote to `collection` (only inserted into it: `insert`): its memos are
    /// emptied.
    pub fn wrote(&self, collection: &str, insert: bool) {
        for m in self
            .memos()
            .filter(|m| m.collection == collection && (m.inserts || !insert))
        {
            m.part.invalidate_all();
        }
    }

    /// This process wrote to everything (a dropped database, a committed transaction).
    fn wrote_all(&self) {
        for m in self.memos() {
            m.part.invalidate_all();
        }
    }

    fn memos(&self) -> impl Iterator<Item = &Memo> {
        self.kinds
            .iter()
            .filter_map(|k| (k.as_ref() as &dyn Any).downcast_ref::<Memo>())
    }
}

/// A write under way: its database and collections, and whether it only inserts.
type Write = (String, Vec<String>, bool);

/// Writes under way, by request id.
static PENDING: LazyLock<Mutex<HashMap<i32, Write>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// What the driver tells of a command this process sends (its command monitoring): a write
/// empties the memos of the collections it writes, when it is sent and again when it is
/// answered (so that a read that raced it cannot keep what it read before it applied).
pub fn note(event: &CommandEvent) {
    match event {
        CommandEvent::Started(s) => {
            let Some(colls) = written(&s.command_name, &s.command) else {
                return;
            };
            let insert = s.command_name == "insert";
            wrote(&s.db, &colls, insert);
            PENDING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(s.request_id, (s.db.clone(), colls, insert));
        }
        CommandEvent::Succeeded(s) => done(s.request_id),
        CommandEvent::Failed(f) => done(f.request_id),
        _ => {}
    }
}

fn done(request_id: i32) {
    let pending = PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&request_id);
    if let Some((db, colls, insert)) = pending {
        wrote(&db, &colls, insert);
    }
}

/// The collections a command writes (`*` for all), if it writes.
fn written(name: &str, command: &bson::Document) -> Option<Vec<String>> {
    match name {
        "insert" | "update" | "delete" | "findAndModify" | "drop" => {
            command.get_str(name).ok().map(|c| vec![c.to_owned()])
        }
        "dropDatabase" | "commitTransaction" => Some(vec!["*".to_owned()]),
        // Whole namespaces, `db.collection`, from and to.
        "renameCollection" => Some(
            ["renameCollection", "to"]
                .iter()
                .filter_map(|f| command.get_str(f).ok())
                .filter_map(|ns| ns.split_once('.').map(|(_, c)| c.to_owned()))
                .collect(),
        ),
        _ => None,
    }
}

fn wrote(db: &str, colls: &[String], insert: bool) {
    let Some(model) = ReadModel::named(db) else {
        return;
    };
    for c in colls {
        if c == "*" {
            model.wrote_all();
        } else {
            model.wrote(c, insert);
        }
    }
}

/// A command monitor for a client's options: [`note`].
pub fn handler() -> mongodb::event::EventHandler<CommandEvent> {
    mongodb::event::EventHandler::callback(|ev: CommandEvent| note(&ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_name_their_collections_and_reads_none() {
        let coll = |n: &str, c: bson::Document| written(n, &c);
        assert_eq!(
            coll("insert", bson::doc! {"insert": "links", "ordered": false}),
            Some(vec!["links".to_owned()])
        );
        assert_eq!(
            coll("findAndModify", bson::doc! {"findAndModify": "wiki_pages"}),
            Some(vec!["wiki_pages".to_owned()])
        );
        assert_eq!(coll("find", bson::doc! {"find": "links"}), None);
        assert_eq!(
            coll(
                "renameCollection",
                bson::doc! {"renameCollection": "db.agg_new", "to": "db.agg_x.y"}
            ),
            Some(vec!["agg_new".to_owned(), "agg_x.y".to_owned()])
        );
        assert_eq!(coll("aggregate", bson::doc! {"aggregate": "links"}), None);
        assert_eq!(
            coll("commitTransaction", bson::doc! {"commitTransaction": 1}),
            Some(vec!["*".to_owned()])
        );
    }
}
