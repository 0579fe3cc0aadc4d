//! Statistics: a project's page (`/p/<project>/stats/`: a chart over a table per series), its
//! CSV downloads, the REST series (`/rest/p/<project>/stats`) and Zarkov's query service
//! (`/q`). The live updates of the page are `routes::stats_live`. Access is the project's
//! read permission (checked by [`ProjectReq`]), or for `/q` the domain's check on the prefix.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::{Datelike, Months, NaiveDate, Utc};
use forge_tools::{Error, Forge, Interval, ProjectCtx, Series};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::Auth;
use crate::ctx::ProjectReq;
use crate::error::{ApiError, ApiResult, PageResult};
use crate::extract::Query;
use crate::page::render;
use crate::routes::assets;
use crate::state::AppState;
use crate::views::{RangeLink, StatsRow, StatsSeries, StatsTpl};

/// The series the page shows, in its order, with their headings.
pub const SERIES: [(&str, &str); 10] = [
    ("views", "Page views"),
    ("visitors", "Visitors"),
    ("clones", "Clones and fetches"),
    ("commits", "Commits"),
    ("pushes", "Pushes"),
    ("wiki_edits", "Wiki edits"),
    ("tickets_opened", "Tickets opened"),
    ("tickets_closed", "Tickets closed"),
    ("posts", "Posts"),
    ("archives", "Archive downloads"),
];

/// The ranges the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 30 days, by day.
    Days30,
    /// The last 12 months, by month.
    Months12,
    /// Since the project was created, by month.
    All,
}

impl Range {
    const ALL: [Self; 3] = [Self::Days30, Self::Months12, Self::All];

    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "" | "30d" => Ok(Self::Days30),
            "12m" => Ok(Self::Months12),
            "all" => Ok(Self::All),
            _ => Err(Error::BadRequest(
                "range must be `30d`, `12m` or `all`".into(),
            )),
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Days30 => "30d",
            Self::Months12 => "12m",
            Self::All => "all",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Days30 => "30 days",
            Self::Months12 => "12 months",
            Self::All => "All time",
        }
    }

    /// What the range covers: the step, the first and the last day.
    pub fn window(self, created: NaiveDate, today: NaiveDate) -> (Interval, NaiveDate, NaiveDate) {
        let month_start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
        match self {
            Self::Days30 => (Interval::Day, today - chrono::Days::new(29), today),
            Self::Months12 => (
                Interval::Month,
                month_start(today)
                    .checked_sub_months(Months::new(11))
                    .unwrap_or(today),
                today,
            ),
            Self::All => (Interval::Month, month_start(created.min(today)), today),
        }
    }

    /// How the page words a total over the range.
    fn span(self) -> &'static str {
        match self {
            Self::Days30 => "in the last 30 days",
            Self::Months12 => "in the last 12 months",
            Self::All => "since the project began",
        }
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn created(ctx: &ProjectCtx) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ctx.project.created.timestamp_millis())
        .map_or_else(today, |t| t.date_naive())
}

/// How a point is dated in tables and files.
fn point_label(ms: i64, interval: Interval) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    match interval {
        Interval::Day => t.format("%Y-%m-%d").to_string(),
        Interval::Month => t.format("%Y-%m").to_string(),
    }
}

fn iso_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Every series of the page, read together.
async fn all_series(
    forge: &Forge,
    ctx: &ProjectCtx,
    interval: Interval,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Series>, Error> {
    futures::future::try_join_all(
        SERIES
            .iter()
            .map(|(s, _)| forge.project_series(ctx, s, interval, Some(from), Some(to))),
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    range: String,
}

/// `/p/<project>/stats/`: a chart and a table per series over the chosen range.
pub async fn page(
    State(st): State<AppState>,
    p: ProjectReq,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let range = Range::parse(&q.range)?;
    let (interval, from, to) = range.window(created(&p.ctx), today());
    let found = all_series(&st.forge, &p.ctx, interval, from, to).await?;
    let base = format!("{}stats/", p.url());
    let window = format!(
        "interval={}&from={}&to={}",
        interval.as_str(),
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    let step = match interval {
        Interval::Day => "Day",
        Interval::Month => "Month",
    };
    let series = found
        .into_iter()
        .zip(SERIES)
        .map(|(s, (name, label))| {
            // Visitors are distinct per day or month: they do not add up across periods.
            let peak = name == "visitors";
            let figure = if peak {
                s.v.iter().map(|(_, v)| *v).max().unwrap_or(0)
            } else {
                s.v.iter().map(|(_, v)| *v).sum()
            };
            StatsSeries {
                name: name.to_owned(),
                label: label.to_owned(),
                figure,
                figure_text: if peak {
                    format!("at most in one {} {}", step.to_lowercase(), range.span())
                } else {
                    range.span().to_owned()
                },
                peak,
                caption: format!(
                    "{label} per {}, {} to {}",
                    step.to_lowercase(),
                    point_label(s.v.first().map_or(0, |p| p.0), interval),
                    point_label(s.v.last().map_or(0, |p| p.0), interval),
                ),
                csv: format!("{base}{name}.csv?{window}"),
                // Newest first: today's figure is the one people look for.
                rows: s
                    .v
                    .iter()
                    .rev()
                    .map(|(t, v)| StatsRow {
                        t: *t,
                        label: point_label(*t, interval),
                        v: *v,
                    })
                    .collect(),
            }
        })
        .collect();
    let ranges = Range::ALL
        .into_iter()
        .map(|r| RangeLink {
            label: r.label(),
            url: format!("{base}?range={}", r.key()),
            current: r == range,
        })
        .collect();
    let project = &p.ctx.project;
    Ok(render(&StatsTpl {
        page: p.shell(&st.forge, format!("Statistics · {}", project.name), "stats"),
        step,
        interval: interval.as_str(),
        ranges,
        series,
        csv_all: format!("{base}all.csv?{window}"),
        live_url: format!("{base}live"),
        project_key: forge_tools::analytics::project_key(
            Some(project.neighborhood.prefix()),
            &project.shortname,
        ),
        script: assets::stats_js_url(),
        uplot_js: assets::UPLOT_JS,
        uplot_css: assets::UPLOT_CSS,
        uplot_license: assets::UPLOT_LICENSE,
    }))
}

/// The range of a series request: `interval` (`day` or `month`), `from` and `to`
/// (`YYYY-MM-DD`; the domain defaults them to the last 30 days or 12 months).
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// A series: `views`, `visitors`, `clones`, `archives`, `pushes`, `commits`,
    /// `wiki_edits`, `tickets_opened`, `tickets_closed`, `posts`, or `views:<mount>`.
    #[serde(default)]
    series: Option<String>,
    /// `day` (default) or `month`.
    #[serde(default)]
    interval: Option<String>,
    /// First day, `YYYY-MM-DD` (default: 30 days or 12 months before `to`).
    #[serde(default)]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today, UTC).
    #[serde(default)]
    to: Option<String>,
}

fn parse_date(name: &str, v: Option<&str>) -> Result<Option<NaiveDate>, Error> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("`{name}` must be a date, YYYY-MM-DD"))),
    }
}

impl SeriesQuery {
    fn window(&self) -> Result<(Interval, Option<NaiveDate>, Option<NaiveDate>), Error> {
        let interval = match self.interval.as_deref().filter(|i| !i.is_empty()) {
            None => Interval::Day,
            Some(i) => Interval::parse(i)?,
        };
        Ok((
            interval,
            parse_date("from", self.from.as_deref())?,
            parse_date("to", self.to.as_deref())?,
        ))
    }
}

#[derive(Deserialize)]
pub struct CsvPath {
    file: String,
}

/// `/p/<project>/stats/<series>.csv` (or `all.csv`, every series of the page in columns),
/// over `interval`, `from` and `to` as for the REST series.
pub async fn csv(
    State(st): State<AppState>,
    p: ProjectReq,
    Path(CsvPath { file }): Path<CsvPath>,
    Query(q): Query<SeriesQuery>,
) -> PageResult<Response> {
    let name = file.strip_suffix(".csv").ok_or(Error::NotFound("page"))?;
    let (interval, from, to) = q.window()?;
    let found = if name == "all" {
        futures::future::try_join_all(
            SERIES
                .iter()
                .map(|(s, _)| st.forge.project_series(&p.ctx, s, interval, from, to)),
        )
        .await?
    } else {
        vec![
            st.forge
                .project_series(&p.ctx, name, interval, from, to)
                .await?,
        ]
    };
    let body = to_csv(&found);
    let filename = format!(
        "{}-{}-{}.csv",
        p.ctx.project.shortname,
        name.replace(':', "-"),
        interval.as_str()
    );
    Ok(crate::download::respond(
        axum::body::Body::from(body.clone()),
        crate::download::Download {
            content_type: "text/csv; charset=utf-8",
            filename: &filename,
            inline: false,
            length: Some(body.len() as u64),
        },
    ))
}

/// Series side by side: `date,<series>...`, one line per day or month (ISO dates). Series
/// names are the domain's (letters, digits, `_`, `:` and a mount), so nothing needs quoting.
fn to_csv(series: &[Series]) -> String {
    let mut out = String::from("date");
    for s in series {
        out.push(',');
        out.push_str(&s.series);
    }
    out.push('\n');
    let Some(first) = series.first() else {
        return out;
    };
    for (i, (t, _)) in first.v.iter().enumerate() {
        out.push_str(&iso_date(*t));
        for s in series {
            out.push(',');
            out.push_str(&s.v.get(i).map_or(0, |p| p.1).to_string());
        }
        out.push('\n');
    }
    out
}

/// A series as the API gives it.
#[derive(Serialize, ToSchema)]
pub struct SeriesJson {
    series: String,
    /// `day` or `month`.
    interval: String,
    /// `[epoch ms of the day or month (UTC), value]`, oldest first, zeros included.
    #[schema(value_type = Vec<Vec<i64>>)]
    v: Vec<(i64, i64)>,
}

/// One series of a project's statistics.
#[utoipa::path(get, path = "/rest/p/{project}/stats", tag = "analytics",
    params(("project" = String, Path), SeriesQuery),
    responses(
        (status = 200, body = SeriesJson),
        (status = 400, description = "unknown series, bad interval or date, too many points"),
        (status = 404, description = "no such project, or not readable by the caller"),
    ))]
pub async fn api_series(
    State(st): State<AppState>,
    p: ProjectReq,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<Json<SeriesJson>> {
    let name = q
        .series
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "`series` is required: one of {}, or views:<mount>",
                forge_tools::analytics::builtin::PROJECT_SERIES.join(", ")
            ))
        })?;
    let (interval, from, to) = q.window()?;
    let s = st
        .forge
        .project_series(&p.ctx, name, interval, from, to)
        .await?;
    Ok(Json(SeriesJson {
        series: s.series,
        interval: s.interval.as_str().to_owned(),
        v: s.v,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QQuery {
    /// The aggregate (output): `project_day`, `project_month`, `project_visitors_day`,
    /// `project_visitors_month`, `user_month`, `site_day`, `site_active_day`.
    c: Option<String>,
    /// Key prefix: `<project>/...` or `u/<user>/...` (a user's or the site's for outputs of
    /// those).
    p: Option<String>,
    /// First key (included).
    b: Option<String>,
    /// Last key (included).
    e: Option<String>,
}

/// Zarkov's query answer.
#[derive(Serialize, ToSchema)]
pub struct QJson {
    /// `[key, value]`, keys ending in a date given as epoch milliseconds.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    v: Vec<(serde_json::Value, i64)>,
}

/// Zarkov's query service: the keys of an aggregate starting with a prefix, between two keys.
#[utoipa::path(get, path = "/q", tag = "analytics", params(QQuery),
    responses(
        (status = 200, body = QJson),
        (status = 400, description = "`c` or `p` missing, or a prefix naming no project"),
        (status = 401, description = "user or site figures without logging in"),
        (status = 403, description = "another user's or the site's figures"),
        (status = 404, description = "unknown aggregate, or a project the caller cannot read"),
    ))]
pub async fn query(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<QJson>> {
    // Not under `/rest/`, but an API all the same: every refusal is the JSON error.
    let q: QQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| Error::BadRequest(format!("The query string could not be read: {e}")))?;
    let nonempty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let (Some(c), Some(p)) = (nonempty(&q.c), nonempty(&q.p)) else {
        return Err(ApiError(Error::BadRequest(
            "`c` (the aggregate) and `p` (a key prefix) are required".into(),
        )));
    };
    let rows = st
        .forge
        .query_aggregate(&viewer, &c, &p, q.b.as_deref(), q.e.as_deref())
        .await?;
    Ok(Json(QJson {
        v: rows
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    bson::Bson::Int64(ms) => serde_json::Value::from(*ms),
                    bson::Bson::String(s) => serde_json::Value::from(s.as_str()),
                    other => serde_json::Value::from(other.to_string()),
                };
                (key, *v)
            })
            .collect(),
    }))
}

#[derive(OpenApi)]
#[openapi(paths(api_series, query), components(schemas(SeriesJson, QJson)))]
pub struct StatsDoc;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ranges_cover_what_they_say() {
        let today = d("2026-03-15");
        assert_eq!(
            Range::Days30.window(d("2020-01-01"), today),
            (Interval::Day, d("2026-02-14"), today)
        );
        assert_eq!(
            Range::Months12.window(d("2020-01-01"), today),
            (Interval::Month, d("2025-04-01"), today)
        );
        assert_eq!(
            Range::All.window(d("2024-07-09"), today),
            (Interval::Month, d("2024-07-01"), today)
        );
        assert_eq!(Range::parse("").ok(), Some(Range::Days30));
        assert!(Range::parse("week").is_err());
    }

    #[tokio::test]
    async fn a_figure_that_fails_is_left_out() {
        let failed = crate::views::figure("test", async {
            Err::<i64, _>(Error::Internal("store down".into()))
        })
        .await;
        assert_eq!(failed, None);
        let read = crate::views::figure("test", async { Ok::<_, Error>(3) }).await;
        assert_eq!(read, Some(3));
    }

    #[test]
    fn csv_puts_series_side_by_side() {
        let s = |name: &str, v: Vec<(i64, i64)>| Series {
            series: name.into(),
            interval: Interval::Day,
            v,
        };
        let csv = to_csv(&[
            s("views", vec![(0, 1), (86_400_000, 2)]),
            s("clones", vec![(0, 0), (86_400_000, 5)]),
        ]);
        assert_eq!(csv, "date,views,clones\n1970-01-01,1,0\n1970-01-02,2,5\n");
    }
}
