//! Analytics in the manner of Zarkov: aggregations over the event log (`crate::events`).
//!
//! An aggregation ([`AggDef`]) reads events and, through its `xmap`, emits any number of
//! `(output, key, value)`; each output has one reduce ([`Reduce`]) and is a collection
//! `agg_<output>` of `{_id: key, v}` (or `{_id: key, h}` for a distinct count, see [`hll`]);
//! dated outputs keep a month or a year of keys per document ([`stored`]).
//! Keys end in `/<ISO date>` (`2026-12-04`; months as `2026-12-01`) as Zarkov's did. One pass
//! over new events feeds every output of every aggregation ([`run`]); [`builtin`] holds the
//! aggregations the forge ships; [`query`] reads outputs back; [`live`] tells web nodes
//! what changed.

pub mod builtin;
pub mod hll;
pub mod live;
pub mod query;
pub mod run;
pub mod stored;

use std::collections::HashMap;

use bson::{Bson, DateTime};
use chrono::Datelike;
use serde::Deserialize;

use crate::events::EventContext;

/// The task that runs every aggregation on new events.
pub const TASK_RUN: &str = "analytics.run";

/// How an output combines the values emitted for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Max,
    Min,
    /// Distinct members, estimated (HyperLogLog).
    Distinct,
}

/// Whose figures an output holds: who may read them is decided by its first key segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Keys start with a project key (`<shortname>/` or `u/<username>/`).
    Project,
    /// Keys start with a username: site admins and that user.
    User,
    /// Site-wide figures: site admins.
    Site,
}

#[derive(Debug)]
pub struct Output {
    pub name: &'static str,
    pub reduce: Reduce,
    pub scope: Scope,
    /// How its keys are grouped into documents.
    pub bucket: Bucket,
}

/// How an output's keys are grouped into documents (see [`stored`]): a year of a daily series
/// is 12 documents to write and read, not 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One document per key.
    Key,
    /// Keys end in a day (`/YYYY-MM-DD`): a month of them per document (`/YYYY-MM`).
    Month,
    /// Keys end in a date (months: `/YYYY-MM-01`): a year of them per document (`/YYYY`).
    Year,
}

impl Bucket {
    /// How much of the date names the document: `YYYY-MM` or `YYYY`.
    pub fn date_prefix(self) -> Option<usize> {
        match self {
            Self::Key => None,
            Self::Month => Some(7),
            Self::Year => Some(4),
        }
    }
}

impl Output {
    /// The collection holding this output.
    pub fn collection(&self) -> String {
        collection(self.name)
    }
}

/// The collection of an output by name.
pub fn collection(output: &str) -> String {
    format!("agg_{output}")
}

/// An aggregation: Zarkov's AggDef.
#[derive(Debug)]
pub struct AggDef {
    pub name: &'static str,
    pub outputs: &'static [Output],
    /// Emits what one event contributes to the outputs (indexes into `outputs`).
    pub xmap: fn(&LoggedEvent, &mut Emitter),
}

/// One event as the aggregations read it.
#[derive(Debug, Clone, Deserialize)]
pub struct LoggedEvent {
    #[serde(rename = "_id")]
    pub id: i64,
    /// The size of the batch the event was written in (see `crate::events`).
    #[serde(default)]
    pub n: i32,
    /// When its batch was written (the writer's clock).
    #[serde(default, rename = "w")]
    pub written: Option<DateTime>,
    pub timestamp: DateTime,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub context: EventContext,
    #[serde(default)]
    pub extra: Bson,
}

impl LoggedEvent {
    /// The UTC day of the event, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        let d = self.utc().date_naive();
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }

    fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.timestamp.timestamp_millis())
            .unwrap_or_default()
    }

    /// The first day of the event's month, `YYYY-MM-01`.
    pub fn month(&self) -> String {
        let d = self.utc().date_naive();
        format!("{:04}-{:02}-01", d.year(), d.month())
    }

    /// The key segment naming the event's project (see [`project_key`]).
    pub fn project_key(&self) -> Option<String> {
        let p = self.context.project.as_deref()?;
        Some(project_key(self.context.neighborhood.as_deref(), p))
    }

    /// Who did it: the username, else the anonymous visitor digest.
    pub fn who(&self) -> Option<&str> {
        self.context
            .user
            .as_deref()
            .or(self.context.visitor.as_deref())
    }
}

/// The key segment of a project: its short name, or `u/<username>` for a personal project
/// (short names have at least three characters, so `u/` is never a project's).
pub fn project_key(neighborhood: Option<&str>, shortname: &str) -> String {
    match neighborhood {
        Some("u") => format!("u/{shortname}"),
        _ => shortname.to_owned(),
    }
}

/// What has been emitted for one key so far in a pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    Num(i64),
    /// Registers of a distinct count: index → rank.
    Registers(HashMap<u16, u8>),
}

/// Collects what `xmap` emits, reduced per output and key.
#[derive(Debug)]
pub struct Emitter {
    outputs: &'static [Output],
    acc: Vec<HashMap<String, Acc>>,
}

impl Emitter {
    pub fn new(outputs: &'static [Output]) -> Self {
        Self {
            outputs,
            acc: outputs.iter().map(|_| HashMap::new()).collect(),
        }
    }

    /// Emits a number for a key of a sum, max or min output.
    pub fn emit(&mut self, output: usize, key: String, value: i64) {
        let Some(o) = self.outputs.get(output) else {
            return;
        };
        let slot = self.acc[output].entry(key).or_insert(match o.reduce {
            Reduce::Sum => Acc::Num(0),
            _ => Acc::Num(value),
        });
        if let Acc::Num(cur) = slot {
            *cur = match o.reduce {
                Reduce::Sum => *cur + value,
                Reduce::Max => (*cur).max(value),
                Reduce::Min => (*cur).min(value),
                Reduce::Distinct => *cur,
            };
        }
    }

    /// Emits a member for a key of a distinct-count output.
    pub fn member(&mut self, output: usize, key: String, member: &str) {
        if self
            .outputs
            .get(output)
            .is_none_or(|o| o.reduce != Reduce::Distinct)
        {
            return;
        }
        let (index, rank) = hll::register(member);
        if let Acc::Registers(r) = self.acc[output]
            .entry(key)
            .or_insert_with(|| Acc::Registers(HashMap::new()))
        {
            let slot = r.entry(index).or_insert(0);
            *slot = (*slot).max(rank);
        }
    }

    /// Adds what another emitter of the same outputs collected (reduces commute, so two
    /// emitters over two halves of the events merge into one over all of them).
    pub fn merge(&mut self, other: Emitter) {
        for ((o, mine), theirs) in self.outputs.iter().zip(&mut self.acc).zip(other.acc) {
            for (key, acc) in theirs {
                match mine.entry(key) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(acc);
                    }
                    std::collections::hash_map::Entry::Occupied(mut cur) => {
                        match (cur.get_mut(), acc) {
                            (Acc::Num(a), Acc::Num(b)) => {
                                *a = match o.reduce {
                                    Reduce::Sum => *a + b,
                                    Reduce::Max => (*a).max(b),
                                    Reduce::Min => (*a).min(b),
                                    Reduce::Distinct => *a,
                                }
                            }
                            (Acc::Registers(a), Acc::Registers(b)) => hll::merge(a, &b),
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    /// What was collected so far, leaving this emitter empty.
    pub fn take(&mut self) -> Emitter {
        Emitter {
            outputs: self.outputs,
            acc: self.acc.iter_mut().map(std::mem::take).collect(),
        }
    }

    /// Keys held, over every output.
    pub fn len(&self) -> usize {
        self.acc.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was emitted, per output.
    pub fn into_outputs(self) -> Vec<HashMap<String, Acc>> {
        self.acc
    }
}

/// The date at the end of a key, as epoch milliseconds (UTC): `YYYY-MM-DD`, or an RFC 3339
/// date and time.
pub fn key_time(key: &str) -> Option<i64> {
    let last = key.rsplit('/').next()?;
    if let Ok(d) = chrono::NaiveDate::parse_from_str(last, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(last)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    static OUTS: [Output; 3] = [
        Output {
            name: "s",
            reduce: Reduce::Sum,
            scope: Scope::Site,
            bucket: Bucket::Key,
        },
        Output {
            name: "m",
            reduce: Reduce::Max,
            scope: Scope::Site,
            bucket: Bucket::Key,
        },
        Output {
            name: "d",
            reduce: Reduce::Distinct,
            scope: Scope::Site,
            bucket: Bucket::Key,
        },
    ];

    #[test]
    fn emitter_reduces_per_output() {
        let mut e = Emitter::new(&OUTS);
        e.emit(0, "k".into(), 2);
        e.emit(0, "k".into(), 3);
        e.emit(1, "k".into(), -5);
        e.emit(1, "k".into(), -7);
        e.member(2, "k".into(), "a");
        e.member(2, "k".into(), "a");
        // Wrong reducer or output: ignored.
        e.member(0, "k".into(), "a");
        e.emit(9, "k".into(), 1);
        let out = e.into_outputs();
        assert_eq!(out[0]["k"], Acc::Num(5));
        assert_eq!(out[1]["k"], Acc::Num(-5));
        assert!(matches!(&out[2]["k"], Acc::Registers(r) if r.len() == 1));
    }

    #[test]
    fn merged_emitters_equal_one_over_all_events() {
        let mut one = Emitter::new(&OUTS);
        let (mut a, mut b) = (Emitter::new(&OUTS), Emitter::new(&OUTS));
        for (i, m) in ["x", "y", "z", "x"].iter().enumerate() {
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            for em in [&mut one, half] {
                em.emit(0, "k".into(), i as i64);
                em.emit(1, "k".into(), -(i as i64));
                em.member(2, "k".into(), m);
            }
        }
        a.merge(b);
        assert_eq!(a.into_outputs(), one.into_outputs());
    }

    #[test]
    fn days_and_months_are_iso_dates() {
        let e = LoggedEvent {
            id: 1,
            n: 1,
            written: None,
            timestamp: DateTime::from_millis(1_796_378_400_000),
            kind: "x".into(),
            context: EventContext::default(),
            extra: Bson::Null,
        };
        assert_eq!(
            (e.day(), e.month()),
            ("2026-12-04".into(), "2026-12-01".into())
        );
    }

    #[test]
    fn key_times_are_utc_milliseconds() {
        assert_eq!(key_time("p/views/1970-01-02"), Some(86_400_000));
        assert_eq!(key_time("p/views/2026-12-01"), Some(1_796_083_200_000));
        assert_eq!(
            key_time("site/x/2026-12-04T10:00:00Z"),
            Some(1_796_378_400_000)
        );
        assert_eq!(key_time("p/views"), None);
        assert_eq!(key_time("p/views/2026-13-01"), None);
    }

    #[test]
    fn personal_projects_have_their_own_keys() {
        assert_eq!(project_key(Some("p"), "forge"), "forge");
        assert_eq!(project_key(Some("u"), "bob"), "u/bob");
        assert_eq!(project_key(None, "forge"), "forge");
    }
}
