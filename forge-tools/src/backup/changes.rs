//! The changes the store made while its collections were being copied, read from a change
//! stream opened before the copy, and how they are applied to the copy so that every
//! collection ends up as of one moment (what `mongodump --oplog` + `mongorestore
//! --oplogReplay` do with the oplog).
//!
//! Per document only the outcome is kept: its whole last state when a change carried one
//! (insert, replace), deleted, or else the updates (`$set`/`$unset`/array truncations as
//! the stream describes them) to apply in order to the copied state. Replaying such updates
//! on a state that already holds some of them gives the same result, since each sets or
//! removes a field to a given value: the last write of each field wins either way.

use std::collections::HashMap;

use bson::{Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, UpdateDescription};

use super::error::Result;

/// What became of one document during the copy.
#[derive(Debug)]
pub enum Change {
    /// Its state at the end (inserted or replaced, then maybe updated).
    Doc(Document),
    Deleted,
    /// Updated only: these updates, in order, on top of the copied state.
    Updates(Vec<UpdateDescription>),
}

/// The changes of one copy, by collection and document id (see [`id_key`]).
#[derive(Debug, Default)]
pub struct Changes {
    by_collection: HashMap<String, HashMap<Vec<u8>, Change>>,
    /// Change events seen.
    pub events: u64,
}

/// Why a copy has to start over: the change says the collections themselves changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshaped(pub String);

impl Changes {
    /// Takes one change event in (in stream order). Changes to collections outside the copy
    /// (`skip`) are ignored.
    pub fn record(
        &mut self,
        ev: ChangeStreamEvent<Document>,
        skip: &str,
    ) -> Result<std::result::Result<(), Reshaped>> {
        let coll = ev
            .ns
            .as_ref()
            .and_then(|ns| ns.coll.clone())
            .unwrap_or_default();
        let op = match ev.operation_type {
            OperationType::Insert
            | OperationType::Update
            | OperationType::Replace
            | OperationType::Delete => ev.operation_type,
            other => {
                return Ok(Err(Reshaped(format!(
                    "{} on {}",
                    op_name(&other),
                    if coll.is_empty() {
                        "the database"
                    } else {
                        &coll
                    }
                ))));
            }
        };
        if coll == skip || coll.starts_with("system.") {
            return Ok(Ok(()));
        }
        let Some(id) = ev.document_key.as_ref().and_then(|k| k.get("_id")) else {
            return Ok(Ok(()));
        };
        let key = id_key(id)?;
        self.events += 1;
        let docs = self.by_collection.entry(coll).or_default();
        match op {
            OperationType::Insert | OperationType::Replace => {
                if let Some(doc) = ev.full_document {
                    docs.insert(key, Change::Doc(doc));
                }
            }
            OperationType::Delete => {
                docs.insert(key, Change::Deleted);
            }
            _ => {
                let Some(desc) = ev.update_description else {
                    return Ok(Ok(()));
                };
                match docs.get_mut(&key) {
                    Some(Change::Doc(doc)) => apply_update(doc, &desc),
                    Some(Change::Updates(list)) => list.push(desc),
                    // An update after a delete cannot happen (an upsert is an insert).
                    Some(Change::Deleted) => {}
                    None => {
                        docs.insert(key, Change::Updates(vec![desc]));
                    }
                }
            }
        }
        Ok(Ok(()))
    }

    /// The changes of one collection, taken out.
    pub fn take(&mut self, collection: &str) -> Option<HashMap<Vec<u8>, Change>> {
        self.by_collection.remove(collection)
    }

    /// Collections with changes still not taken.
    pub fn collections(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_collection.keys().cloned().collect();
        names.sort();
        names
    }
}

fn op_name(op: &OperationType) -> String {
    match op {
        OperationType::Drop => "drop".into(),
        OperationType::Rename => "rename".into(),
        OperationType::DropDatabase => "dropDatabase".into(),
        OperationType::Invalidate => "invalidate".into(),
        other => format!("{other:?}"),
    }
}

/// A document id as a map key: the BSON of `{_id: <id>}`.
pub fn id_key(id: &Bson) -> Result<Vec<u8>> {
    let mut d = Document::new();
    d.insert("_id", id.clone());
    Ok(d.to_vec()?)
}

/// Applies one update as a change stream describes it: array truncations, then the updated
/// fields (dotted paths, numeric parts index arrays), then the removed fields. Paths that
/// meet a value of another shape replace it, so replaying an older update over a newer
/// state never fails (a later update of the same field sets it again).
pub fn apply_update(doc: &mut Document, desc: &UpdateDescription) {
    for t in desc.truncated_arrays.iter().flatten() {
        if let Some(Bson::Array(items)) = get_mut(doc, &t.field) {
            items.truncate(usize::try_from(t.new_size).unwrap_or(0));
        }
    }
    for (path, value) in &desc.updated_fields {
        set_path(doc, path, value.clone());
    }
    for path in &desc.removed_fields {
        unset_path(doc, path);
    }
}

fn get_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = doc.get_mut(first)?;
    for part in parts {
        cur = match cur {
            Bson::Document(d) => d.get_mut(part)?,
            Bson::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn set_path(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => {
            let child = doc
                .entry(head.to_owned())
                .or_insert_with(|| Bson::Document(Document::new()));
            set_in(child, rest, value);
        }
    }
}

fn set_in(node: &mut Bson, path: &str, value: Bson) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if let Bson::Array(items) = node
        && let Ok(i) = head.parse::<usize>()
    {
        if items.len() <= i {
            items.resize(i + 1, Bson::Null);
        }
        match rest {
            None => items[i] = value,
            Some(r) => set_in(&mut items[i], r, value),
        }
        return;
    }
    if !matches!(node, Bson::Document(_)) {
        *node = Bson::Document(Document::new());
    }
    if let Bson::Document(d) = node {
        match rest {
            None => {
                d.insert(head, value);
            }
            Some(r) => {
                let child = d
                    .entry(head.to_owned())
                    .or_insert_with(|| Bson::Document(Document::new()));
                set_in(child, r, value);
            }
        }
    }
}

fn unset_path(doc: &mut Document, path: &str) {
    match path.rsplit_once('.') {
        None => {
            doc.remove(path);
        }
        Some((parent, last)) => match get_mut(doc, parent) {
            Some(Bson::Document(d)) => {
                d.remove(last);
            }
            // `$unset` of an array element leaves a null in its place.
            Some(Bson::Array(items)) => {
                if let Some(slot) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    *slot = Bson::Null;
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use mongodb::change_stream::event::TruncatedArray;

    fn desc(set: Document, unset: &[&str], truncate: &[(&str, i32)]) -> UpdateDescription {
        let mut d: UpdateDescription = bson::deserialize_from_document(doc! {
            "updatedFields": set,
            "removedFields": unset.iter().map(|s| Bson::from(*s)).collect::<Vec<_>>(),
        })
        .unwrap();
        d.truncated_arrays = Some(
            truncate
                .iter()
                .map(|(f, n)| {
                    bson::deserialize_from_document::<TruncatedArray>(
                        doc! {"field": *f, "newSize": *n},
                    )
                    .unwrap()
                })
                .collect(),
        );
        d
    }

    #[test]
    fn updates_as_the_stream_describes_them() {
        let mut d = doc! {"_id": 1, "arr": [1, 2, 3], "n": 0, "sub": {"x": 1, "y": 2}};
        apply_update(
            &mut d,
            &desc(doc! {"arr.3": 4, "n": 1, "sub.x": 5}, &["sub.y"], &[]),
        );
        assert_eq!(
            d,
            doc! {"_id": 1, "arr": [1, 2, 3, 4], "n": 1, "sub": {"x": 5}}
        );
        apply_update(&mut d, &desc(doc! {"arr.0": 9}, &[], &[("arr", 2)]));
        assert_eq!(d, doc! {"_id": 1, "arr": [9, 2], "n": 1, "sub": {"x": 5}});
        apply_update(&mut d, &desc(doc! {"new.deep.field": "v"}, &[], &[]));
        assert_eq!(
            d.get_document("new").unwrap(),
            &doc! {"deep": {"field": "v"}}
        );
    }

    #[test]
    fn replaying_from_a_newer_state_ends_the_same() {
        // The copy already holds both updates; replaying them changes nothing.
        let first = desc(doc! {"a": {"b": 1, "c": 2}, "list.0": "x"}, &[], &[]);
        let second = desc(doc! {"list": ["y"]}, &["a.c"], &[]);
        let mut from_old = doc! {"_id": 1, "list": ["w"]};
        apply_update(&mut from_old, &first);
        apply_update(&mut from_old, &second);
        let mut from_new = from_old.clone();
        apply_update(&mut from_new, &first);
        apply_update(&mut from_new, &second);
        assert_eq!(from_old, from_new);
        assert_eq!(from_new, doc! {"_id": 1, "list": ["y"], "a": {"b": 1}});
        // A path through a value of another shape replaces it instead of failing.
        let mut odd = doc! {"_id": 1, "a": 5};
        apply_update(&mut odd, &desc(doc! {"a.b": 1}, &[], &[]));
        assert_eq!(odd, doc! {"_id": 1, "a": {"b": 1}});
    }
}
