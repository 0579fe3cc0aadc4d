//! Reading outputs back: key ranges (Zarkov's `/q`) and date series with the gaps filled.
//! Access is checked by the callers (`crate::forge::stats`).

use bson::{Bson, Document, doc};
use chrono::{Datelike, NaiveDate};
use futures::TryStreamExt;
use mongodb::Database;

use super::{Output, collection, key_time, stored};
use crate::error::{Error, Result};

/// Rows one query answers at most.
pub const MAX_ROWS: i64 = 5_000;
/// Points one series answers at most (ten years of days).
pub const MAX_POINTS: i64 = 3_660;

/// The highest code point: `prefix + END` bounds every key starting with `prefix`.
const END: char = '\u{10FFFF}';

/// Keys of `output` starting with `prefix`, from `first` to `last` (both included, when
/// given), in key order, with their values; at most [`MAX_ROWS`].
pub async fn range(
    db: &Database,
    output: &Output,
    prefix: &str,
    first: Option<&str>,
    last: Option<&str>,
) -> Result<Vec<(String, i64)>> {
    let mut lo = prefix.to_owned();
    if let Some(b) = first
        && b > prefix
    {
        lo = b.to_owned();
    }
    let end = format!("{prefix}{END}");
    let hi = last.filter(|e| *e < end.as_str());
    // Documents holding keys in the range: from the one `lo` falls in, up to `hi` (a
    // document's id is a prefix of its keys, so one after `hi` holds none).
    let mut filter = doc! {"$gte": stored::lowest_id(output, &lo)};
    match hi {
        Some(e) => filter.insert("$lte", e),
        None => filter.insert("$lt", &end),
    };
    let docs: Vec<Document> = db
        .collection::<Document>(&collection(output.name))
        .find(doc! {"_id": filter})
        .sort(doc! {"_id": 1})
        .limit(MAX_ROWS)
        .await?
        .try_collect()
        .await?;
    let mut rows: Vec<(String, i64)> = docs
        .iter()
        .flat_map(|d| stored::unpack(output, d))
        .filter(|(k, _)| {
            k.as_str() >= lo.as_str() && k.starts_with(prefix) && hi.is_none_or(|e| k.as_str() <= e)
        })
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows.truncate(MAX_ROWS as usize);
    Ok(rows)
}

/// A row of `/q`: the key as epoch milliseconds when it ends in a date, else as it is.
pub fn row(key: &str, value: i64) -> (Bson, i64) {
    match key_time(key) {
        Some(ms) => (Bson::Int64(ms), value),
        None => (Bson::String(key.to_owned()), value),
    }
}

/// The first day of each day or month from `from` to `to`, at most [`MAX_POINTS`].
pub fn periods(from: NaiveDate, to: NaiveDate, month: bool) -> Result<Vec<NaiveDate>> {
    if to < from {
        return Err(Error::BadRequest("`from` is after `to`".into()));
    }
    let mut out = Vec::new();
    let mut d = if month {
        from.with_day(1).unwrap_or(from)
    } else {
        from
    };
    while d <= to {
        if out.len() as i64 >= MAX_POINTS {
            return Err(Error::BadRequest(format!(
                "at most {MAX_POINTS} points: ask for a shorter range or by month"
            )));
        }
        out.push(d);
        d = if month {
            d.checked_add_months(chrono::Months::new(1))
        } else {
            d.succ_opt()
        }
        .ok_or_else(|| Error::BadRequest("date out of range".into()))?;
    }
    Ok(out)
}

/// A series `<prefix><date>` of `output` over `periods`, zero where nothing was counted:
/// `[(epoch ms, value)]`.
pub async fn series(
    db: &Database,
    output: &Output,
    prefix: &str,
    periods: &[NaiveDate],
) -> Result<Vec<(i64, i64)>> {
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Vec::new());
    };
    let rows = range(
        db,
        output,
        prefix,
        Some(&format!("{prefix}{}", first.format("%Y-%m-%d"))),
        Some(&format!("{prefix}{}", last.format("%Y-%m-%d"))),
    )
    .await?;
    let found: std::collections::HashMap<String, i64> = rows.into_iter().collect();
    Ok(periods
        .iter()
        .filter_map(|d| {
            let key = format!("{prefix}{}", d.format("%Y-%m-%d"));
            let ms = key_time(&key)?;
            Some((ms, found.get(&key).copied().unwrap_or(0)))
        })
        .collect())
}

/// The sum of a series over `periods` (small figures on pages).
pub async fn total(
    db: &Database,
    output: &Output,
    prefix: &str,
    periods: &[NaiveDate],
) -> Result<i64> {
    Ok(series(db, output, prefix, periods)
        .await?
        .iter()
        .map(|(_, v)| v)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_cover_days_and_months() {
        assert_eq!(
            periods(d("2026-12-30"), d("2027-01-02"), false).unwrap(),
            vec![
                d("2026-12-30"),
                d("2026-12-31"),
                d("2027-01-01"),
                d("2027-01-02")
            ]
        );
        assert_eq!(
            periods(d("2026-11-15"), d("2027-01-02"), true).unwrap(),
            vec![d("2026-11-01"), d("2026-12-01"), d("2027-01-01")]
        );
        assert!(periods(d("2027-01-02"), d("2026-01-02"), false).is_err());
        assert!(periods(d("1900-01-01"), d("2026-01-02"), false).is_err());
    }

    #[test]
    fn rows_give_dates_as_milliseconds() {
        assert_eq!(row("p/views/1970-01-02", 3), (Bson::Int64(86_400_000), 3));
        assert_eq!(row("p/views", 3), (Bson::String("p/views".into()), 3));
    }
}
