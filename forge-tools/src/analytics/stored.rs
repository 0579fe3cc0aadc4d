//! How output keys are kept as documents.
//!
//! - **One key, one document** (`{_id: key, b, v}`, or `h` for a distinct count's registers).
//! - **A month of days (or a year of months), one document**, for outputs whose keys end in
//!   a date ([`Output::bucket`]): key `p/views/2026-12-04` lives in document `p/views/2026-12`,
//!   field `v.2026-12-04` (`h.2026-12-04` for a distinct count); month `p/views/2026-12-01`
//!   in document `p/views/2026`. A year of a daily
//!   series is 12 documents instead of 365, which is what the store spends its time on when
//!   a pass writes or a chart reads. The pass guard `b` (see [`super::run`]) is per document:
//!   a pass writes each of its documents once, so the guard works the same.
//! - **Distinct counts** are packed registers ([`hll::pack`]), one binary value per key: a pass
//!   merges what a document has with what it counted ([`merge_existing`]) and writes the
//!   result, guarded by the exact pass mark it read.
//!
//! A bucket id is a prefix of each key it holds, so the documents holding keys from `lo` up
//! are those from [`lowest_id`]`(lo)` up: a range of keys stays a range of ids.

use std::collections::{BTreeMap, HashMap};

use bson::{Bson, Document, doc};

use super::{Acc, Output, Reduce, hll};

/// Where a key is kept: its document and, in a by-month output, the field of its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub id: String,
    pub day: Option<String>,
}

/// `YYYY-MM-DD`, a real date.
fn is_day(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// The place of `key` in `output`; `None` for a key of a bucketed output that does not end
/// in a date (an aggregation's mistake: it cannot be stored).
pub fn place(output: &Output, key: &str) -> Option<Place> {
    let Some(n) = output.bucket.date_prefix() else {
        return Some(Place {
            id: key.to_owned(),
            day: None,
        });
    };
    let (head, day) = key.rsplit_once('/')?;
    if !is_day(day) {
        return None;
    }
    Some(Place {
        id: format!("{head}/{}", day.get(..n)?),
        day: Some(day.to_owned()),
    })
}

/// What a pass writes to one document: each day's (or the key's) reduced value.
pub type Entries = Vec<(Option<String>, Acc)>;

/// A pass's keys grouped by the document that holds them, in id order, and how many keys
/// could not be placed.
pub fn group(output: &Output, keys: HashMap<String, Acc>) -> (BTreeMap<String, Entries>, usize) {
    let mut docs: BTreeMap<String, Entries> = BTreeMap::new();
    let mut unplaced = 0;
    for (key, acc) in keys {
        match place(output, &key) {
            Some(p) => docs.entry(p.id).or_default().push((p.day, acc)),
            None => unplaced += 1,
        }
    }
    (docs, unplaced)
}

fn value(acc: &Acc) -> Bson {
    match acc {
        Acc::Num(v) => Bson::Int64(*v),
        Acc::Registers(r) => Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: hll::pack(r),
        }),
    }
}

/// Registers of a stored distinct count: packed, or one field per register (earlier layout).
fn registers_of(v: &Bson) -> HashMap<u16, u8> {
    match v {
        Bson::Binary(b) => hll::unpack(&b.bytes),
        Bson::Document(d) => d
            .iter()
            .filter_map(|(i, r)| {
                let rank = match r {
                    Bson::Int32(r) => u8::try_from(*r).ok()?,
                    Bson::Int64(r) => u8::try_from(*r).ok()?,
                    _ => return None,
                };
                Some((i.parse::<u16>().ok()?, rank))
            })
            .collect(),
        _ => HashMap::new(),
    }
}

/// Adds the registers `existing` already holds to the distinct counts of `entries` (which
/// replace them whole when written).
pub fn merge_existing(existing: &Document, entries: &mut Entries) {
    for (day, acc) in entries.iter_mut() {
        let Acc::Registers(r) = acc else { continue };
        let stored = match day {
            None => existing.get("h"),
            Some(day) => existing
                .get_document("h")
                .ok()
                .and_then(|h| h.get(day.as_str())),
        };
        if let Some(stored) = stored {
            hll::merge(r, &registers_of(stored));
        }
    }
}

/// The field (`v` or `h`) an entry's value goes in.
fn field(acc: &Acc) -> &'static str {
    match acc {
        Acc::Num(_) => "v",
        Acc::Registers(_) => "h",
    }
}

/// A new document holding `entries`, written by the pass ending at `b`.
pub fn new_document(id: &str, b: i64, entries: &Entries) -> Document {
    let mut d = doc! {"_id": id, "b": b};
    for (day, acc) in entries {
        match day {
            None => {
                d.insert(field(acc), value(acc));
            }
            Some(day) => {
                let by_day = d
                    .entry(field(acc).to_owned())
                    .or_insert_with(|| Bson::Document(Document::new()));
                if let Bson::Document(by_day) = by_day {
                    by_day.insert(day.as_str(), value(acc));
                }
            }
        }
    }
    d
}

/// The update operators that add `entries` to an existing document by `reduce` (distinct
/// counts: `$set` of registers already merged with the document's, see [`merge_existing`]).
pub fn update(reduce: Reduce, entries: &Entries) -> Document {
    let (mut inc, mut max, mut min, mut set) = (
        Document::new(),
        Document::new(),
        Document::new(),
        Document::new(),
    );
    for (day, acc) in entries {
        let path = match day {
            None => field(acc).to_owned(),
            Some(day) => format!("{}.{day}", field(acc)),
        };
        match (acc, reduce) {
            (Acc::Num(v), Reduce::Sum) => {
                inc.insert(path, *v);
            }
            (Acc::Num(v), Reduce::Max) => {
                max.insert(path, *v);
            }
            (Acc::Num(v), _) => {
                min.insert(path, *v);
            }
            (Acc::Registers(_), _) => {
                set.insert(path, value(acc));
            }
        }
    }
    let mut u = Document::new();
    for (op, fields) in [("$inc", inc), ("$max", max), ("$min", min), ("$set", set)] {
        if !fields.is_empty() {
            u.insert(op, fields);
        }
    }
    u
}

/// The value of a stored value: a number, or the estimate of registers.
fn read(v: &Bson) -> i64 {
    match v {
        Bson::Binary(b) => hll::estimate_packed(&b.bytes),
        Bson::Document(h) => hll::estimate(h),
        Bson::Int32(v) => i64::from(*v),
        Bson::Int64(v) => *v,
        Bson::Double(v) => *v as i64,
        _ => 0,
    }
}

/// The value of a one-key document: `v`, or the estimate of its registers `h`.
pub fn value_of(d: &Document) -> i64 {
    d.get("h").or_else(|| d.get("v")).map(read).unwrap_or(0)
}

/// The keys a document holds, with their values, in key order.
pub fn unpack(output: &Output, d: &Document) -> Vec<(String, i64)> {
    let Ok(id) = d.get_str("_id") else {
        return Vec::new();
    };
    let Some(n) = output.bucket.date_prefix() else {
        return vec![(id.to_owned(), value_of(d))];
    };
    // `<head>/YYYY-MM` (or `<head>/YYYY`): keys are `<head>/<date>`.
    let Some(head) = id.len().checked_sub(n).and_then(|n| id.get(..n)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, i64)> = ["v", "h"]
        .iter()
        .filter_map(|f| d.get_document(f).ok())
        .flat_map(|by_day| by_day.iter())
        .filter(|(day, _)| is_day(day))
        .map(|(day, v)| (format!("{head}{day}"), read(v)))
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The lowest document id that may hold a key `>= lo`: `lo` itself, or the document `lo`
/// falls in (a bucket id is a prefix of its keys, so only a prefix of `lo` can sort before
/// `lo` and still hold keys after it).
pub fn lowest_id(output: &Output, lo: &str) -> String {
    if let Some(n) = output.bucket.date_prefix()
        && let Some((head, last)) = lo.rsplit_once('/')
        && let Some(date) = last.get(..n)
        && date.bytes().enumerate().all(|(i, c)| {
            if i == 4 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
    {
        return format!("{head}/{date}");
    }
    lo.to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::Bucket;
    use super::*;

    static DAILY: Output = Output {
        name: "d",
        reduce: Reduce::Sum,
        scope: super::super::Scope::Site,
        bucket: Bucket::Month,
    };
    static PLAIN: Output = Output {
        name: "p",
        reduce: Reduce::Sum,
        scope: super::super::Scope::Site,
        bucket: Bucket::Key,
    };
    static YEARLY: Output = Output {
        name: "y",
        reduce: Reduce::Sum,
        scope: super::super::Scope::User,
        bucket: Bucket::Year,
    };
    static DISTINCT: Output = Output {
        name: "h",
        reduce: Reduce::Distinct,
        scope: super::super::Scope::Site,
        bucket: Bucket::Month,
    };

    #[test]
    fn days_are_kept_a_month_per_document() {
        assert_eq!(
            place(&DAILY, "p/views:wiki/2026-12-04"),
            Some(Place {
                id: "p/views:wiki/2026-12".into(),
                day: Some("2026-12-04".into())
            })
        );
        assert_eq!(place(&DAILY, "p/views/2026-13-04"), None);
        assert_eq!(place(&DAILY, "p/views"), None);
        assert_eq!(
            place(&PLAIN, "p/views").map(|p| p.id),
            Some("p/views".into())
        );
    }

    #[test]
    fn a_document_gives_back_its_keys() {
        let keys: HashMap<String, Acc> = [
            ("a/x/2026-12-31", Acc::Num(2)),
            ("a/x/2026-12-01", Acc::Num(5)),
            ("a/x/2027-01-01", Acc::Num(1)),
            ("a/x", Acc::Num(9)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let (docs, unplaced) = group(&DAILY, keys);
        assert_eq!(unplaced, 1);
        assert_eq!(
            docs.keys().collect::<Vec<_>>(),
            ["a/x/2026-12", "a/x/2027-01"]
        );
        let d = new_document("a/x/2026-12", 7, &docs["a/x/2026-12"]);
        assert_eq!(d.get_i64("b").ok(), Some(7));
        assert_eq!(
            unpack(&DAILY, &d),
            vec![("a/x/2026-12-01".into(), 5), ("a/x/2026-12-31".into(), 2)]
        );
        let u = update(Reduce::Sum, &docs["a/x/2026-12"]);
        assert_eq!(
            u.get_document("$inc").unwrap().get_i64("v.2026-12-01").ok(),
            Some(5)
        );
    }

    #[test]
    fn distinct_counts_keep_registers_per_day() {
        let mut r = HashMap::new();
        r.insert(3_u16, 2_u8);
        let entries: Entries = vec![(Some("2026-12-04".into()), Acc::Registers(r))];
        let d = new_document("s/u/2026-12", 1, &entries);
        assert_eq!(unpack(&DISTINCT, &d), vec![("s/u/2026-12-04".into(), 1)]);
        let u = update(Reduce::Distinct, &entries);
        assert!(
            u.get_document("$set")
                .unwrap()
                .get_binary_generic("h.2026-12-04")
                .is_ok()
        );
        // What a document holds is merged in before it is rewritten.
        let mut more: Entries = vec![(
            Some("2026-12-04".into()),
            Acc::Registers([(9_u16, 1_u8)].into_iter().collect()),
        )];
        merge_existing(&d, &mut more);
        let merged = new_document("s/u/2026-12", 2, &more);
        assert_eq!(
            unpack(&DISTINCT, &merged),
            vec![("s/u/2026-12-04".into(), 2)]
        );
    }

    #[test]
    fn a_key_range_starts_at_the_month_it_falls_in() {
        assert_eq!(lowest_id(&DAILY, "p/views/2026-12-04"), "p/views/2026-12");
        assert_eq!(lowest_id(&DAILY, "p/views/2026-12"), "p/views/2026-12");
        assert_eq!(lowest_id(&DAILY, "p/views/"), "p/views/");
        assert_eq!(lowest_id(&DAILY, "p/views/20"), "p/views/20");
        assert_eq!(
            lowest_id(&PLAIN, "p/views/2026-12-04"),
            "p/views/2026-12-04"
        );
        assert_eq!(lowest_id(&YEARLY, "u/edits/2026-12-01"), "u/edits/2026");
        assert_eq!(lowest_id(&YEARLY, "u/edits/2026"), "u/edits/2026");
        assert_eq!(lowest_id(&YEARLY, "u/edits/20"), "u/edits/20");
    }

    #[test]
    fn months_are_kept_a_year_per_document() {
        let p = place(&YEARLY, "alice/edits/2026-12-01").unwrap();
        assert_eq!(p.id, "alice/edits/2026");
        let d = new_document(&p.id, 1, &vec![(p.day, Acc::Num(4))]);
        assert_eq!(
            unpack(&YEARLY, &d),
            vec![("alice/edits/2026-12-01".into(), 4)]
        );
    }
}
