//! Statistics as viewers see them: running the aggregations (`crate::analytics`), and
//! reading their outputs with access checked — a project's figures are for whoever may read
//! the project, a user's for that user and site admins, the site's for site admins.

use std::sync::Arc;

use bson::Bson;
use chrono::{Months, NaiveDate, Utc};

use crate::analytics::run::{self, RunOptions, RunReport};
use crate::analytics::{self, Scope, builtin, live::LiveUpdate, query};
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::projects::Neighborhood;
use crate::tool::Forge;
use crate::viewer::Viewer;

/// The read model's memo of the small figures pages show (views of a tool in 30 days...),
/// over the daily project output's collection.
pub const MEMO_FIGURES: &str = "project_figures";
pub const FIGURES_COLLECTION: &str = "agg_project_day";

/// The step of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Month,
}

impl Interval {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            _ => Err(Error::BadRequest(
                "interval must be `day` or `month`".into(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// One series of a project: `[(epoch ms of the day or month, value)]`, zeros included.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub series: String,
    pub interval: Interval,
    pub v: Vec<(i64, i64)>,
}

/// The key prefix of a project's figures.
fn prefix_of(ctx: &ProjectCtx) -> String {
    analytics::project_key(
        Some(ctx.project.neighborhood.prefix()),
        &ctx.project.shortname,
    )
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl Forge {
    /// Runs every built-in aggregation over the events logged since its last run, and tells
    /// the live pages what changed.
    pub async fn run_analytics(&self, crash_after_outputs: bool) -> Result<RunReport> {
        let opts = RunOptions {
            owner: run::owner(),
            crash_after_outputs,
            log: Some(self.events().log_db().clone()),
        };
        let report = run::run(self.db(), &builtin::ALL, &opts).await?;
        if report.events > 0 {
            self.live().publish(
                report
                    .touched
                    .iter()
                    .filter_map(LiveUpdate::from_touched)
                    .collect(),
            );
        }
        Ok(report)
    }

    /// Recomputes the built-in aggregations (or the one named) from the whole log and swaps
    /// them in; `progress` gets the events read as they are.
    pub async fn rebuild_analytics(
        &self,
        agg: Option<&str>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<RunReport> {
        let aggs: Vec<&analytics::AggDef> = builtin::ALL
            .iter()
            .filter(|a| agg.is_none_or(|n| n == a.name))
            .collect();
        if aggs.is_empty() {
            let names: Vec<&str> = builtin::ALL.iter().map(|a| a.name).collect();
            return Err(Error::BadRequest(format!(
                "no aggregation {:?}; there are: {}",
                agg.unwrap_or_default(),
                names.join(", ")
            )));
        }
        let opts = RunOptions {
            owner: run::owner(),
            crash_after_outputs: false,
            log: Some(self.events().log_db().clone()),
        };
        let mut report = RunReport::default();
        // One at a time: each is its own pass over the log.
        for a in aggs {
            let r = run::rebuild(self.db(), std::slice::from_ref(a), &opts, progress).await?;
            // Each reads the whole log: the log's size, not the sum, is what was rebuilt from.
            report.events = report.events.max(r.events);
            report.passes += r.passes;
        }
        // Every output was replaced: cached answers go.
        self.live().publish(Vec::new());
        Ok(report)
    }

    /// Zarkov's query service: keys of output `c` starting with `p`, from `b` to `e`. A
    /// project prefix must name a project the viewer may read (404 otherwise); a user's
    /// figures are for that user; site figures and prefixes spanning projects are for site
    /// admins.
    pub async fn query_aggregate(
        &self,
        viewer: &Viewer,
        c: &str,
        p: &str,
        b: Option<&str>,
        e: Option<&str>,
    ) -> Result<Arc<Vec<(Bson, i64)>>> {
        let output = builtin::output(c).ok_or(Error::NotFound("aggregate"))?;
        if !viewer.is_site_admin() {
            match output.scope {
                Scope::Project => {
                    let (nbhd, name) = project_of_prefix(p).ok_or_else(|| {
                        Error::BadRequest(
                            "`p` must start with a project: `<project>/` or `u/<user>/`".into(),
                        )
                    })?;
                    self.readable_project(viewer, nbhd, name).await?;
                }
                Scope::User => {
                    let user = viewer.require_user()?;
                    if p.split('/').next() != Some(user.username.as_str()) || !p.contains('/') {
                        return Err(Error::Forbidden);
                    }
                }
                Scope::Site => {
                    viewer.require_user()?;
                    return Err(Error::Forbidden);
                }
            }
        }
        // Answers are cached until the next run changes the outputs (access was checked
        // above, for this viewer, whatever is cached).
        let answers = self.live().answers();
        let key = serde_json::json!([c, p, b, e]).to_string();
        if let Some(rows) = answers.get(&key) {
            return Ok(rows);
        }
        let generation = answers.generation();
        let rows = query::range(self.db(), output, p, b, e).await?;
        let rows: Arc<Vec<(Bson, i64)>> =
            Arc::new(rows.iter().map(|(k, v)| query::row(k, *v)).collect());
        answers.put(key, generation, rows.clone());
        Ok(rows)
    }

    /// A series of a project the viewer reads (`ctx` is loaded with the read checked):
    /// `series` is one of `analytics::builtin::PROJECT_SERIES` or `views:<mount>`; `from` and
    /// `to` default to the last 30 days or 12 months.
    pub async fn project_series(
        &self,
        ctx: &ProjectCtx,
        series: &str,
        interval: Interval,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Series> {
        let month = interval == Interval::Month;
        let output_name = builtin::project_output(series, month).ok_or_else(|| {
            Error::BadRequest(format!(
                "unknown series {series:?}; there are: {}, and views:<mount>",
                builtin::PROJECT_SERIES.join(", ")
            ))
        })?;
        let output = builtin::output(output_name).ok_or(Error::NotFound("series"))?;
        let to = to.unwrap_or_else(today);
        let from = match (from, interval) {
            (Some(f), _) => f,
            (None, Interval::Day) => to - chrono::Days::new(29),
            (None, Interval::Month) => to.checked_sub_months(Months::new(11)).unwrap_or(to),
        };
        let periods = query::periods(from, to, month)?;
        let prefix = format!("{}/{series}/", prefix_of(ctx));
        Ok(Series {
            series: series.to_owned(),
            interval,
            v: query::series(self.db(), output, &prefix, &periods).await?,
        })
    }

    /// A project figure summed over the last `days` days (small figures on pages).
    pub async fn project_recent(&self, ctx: &ProjectCtx, series: &str, days: u64) -> Result<i64> {
        // Kept only for series of the output the memo watches.
        if builtin::project_output(series, false) != Some(builtin::PROJECT_DAY) {
            return self.project_recent_stored(ctx, series, days).await;
        }
        crate::readmodel::memo(
            self.db(),
            MEMO_FIGURES,
            format!("{}/{series}/{days}/{}", ctx.project.id.0, today()),
            |_: &i64| 0,
            || self.project_recent_stored(ctx, series, days),
        )
        .await
    }

    async fn project_recent_stored(
        &self,
        ctx: &ProjectCtx,
        series: &str,
        days: u64,
    ) -> Result<i64> {
        let to = today();
        let s = self
            .project_series(
                ctx,
                series,
                Interval::Day,
                Some(to - chrono::Days::new(days.saturating_sub(1))),
                Some(to),
            )
            .await?;
        Ok(s.v.iter().map(|(_, v)| v).sum())
    }

    /// A user's figures for the last `months` months: `(series, total)` for commits, edits,
    /// tickets and posts (public projects only).
    pub async fn user_recent(&self, username: &str, months: u32) -> Result<Vec<(String, i64)>> {
        let output = builtin::output(builtin::USER_MONTH).ok_or(Error::NotFound("series"))?;
        let to = today();
        let from = to
            .checked_sub_months(Months::new(months.saturating_sub(1)))
            .unwrap_or(to);
        let periods = query::periods(from, to, true)?;
        let mut out = Vec::new();
        for s in ["commits", "edits", "tickets", "posts"] {
            let total =
                query::total(self.db(), output, &format!("{username}/{s}/"), &periods).await?;
            out.push((s.to_owned(), total));
        }
        Ok(out)
    }

    /// Site figures of the last `days` days (site admins): `(series, total)`; active users
    /// are today's.
    pub async fn site_recent(&self, viewer: &Viewer, days: u64) -> Result<Vec<(String, i64)>> {
        if !viewer.is_site_admin() {
            return Err(Error::Forbidden);
        }
        let to = today();
        let periods = query::periods(to - chrono::Days::new(days.saturating_sub(1)), to, false)?;
        let day = builtin::output(builtin::SITE_DAY).ok_or(Error::NotFound("series"))?;
        let active = builtin::output(builtin::SITE_ACTIVE_DAY).ok_or(Error::NotFound("series"))?;
        let mut out = Vec::new();
        for s in ["signups", "logins", "projects_created"] {
            let total = query::total(self.db(), day, &format!("site/{s}/"), &periods).await?;
            out.push((s.to_owned(), total));
        }
        let today_only = [to];
        out.push((
            "active_users_today".to_owned(),
            query::total(self.db(), active, "site/active_users/", &today_only).await?,
        ));
        Ok(out)
    }
}

/// Events one call of [`Forge::log_events`] takes at most.
pub const MAX_EVENTS_PER_CALL: usize = crate::events::MAX_BATCH;

impl Forge {
    /// Logs events given by another service (site admins): the well-formed ones are written;
    /// the others come back as `(index, reason)`.
    pub async fn log_events(
        &self,
        viewer: &Viewer,
        values: &[serde_json::Value],
    ) -> Result<(usize, Vec<(usize, String)>)> {
        viewer.require_user()?;
        if !viewer.is_site_admin() {
            return Err(Error::Forbidden);
        }
        if values.len() > MAX_EVENTS_PER_CALL {
            return Err(Error::TooLarge(format!(
                "at most {MAX_EVENTS_PER_CALL} events per call"
            )));
        }
        let mut good = Vec::with_capacity(values.len());
        let mut refused = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match crate::events::from_json(v) {
                Ok(e) => good.push(e),
                Err(reason) => refused.push((i, reason)),
            }
        }
        let written = self.events().append(good).await?;
        Ok((written, refused))
    }
}

/// The project a key prefix starts with: `<shortname>/...` or `u/<username>/...`.
fn project_of_prefix(p: &str) -> Option<(Neighborhood, &str)> {
    let (nbhd, rest) = match p.strip_prefix("u/") {
        Some(rest) => (Neighborhood::Users, rest),
        None => (Neighborhood::Projects, p),
    };
    let (name, _) = rest.split_once('/')?;
    (!name.is_empty()).then_some((nbhd, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_memo_watches_the_daily_project_output() {
        assert_eq!(
            analytics::collection(builtin::PROJECT_DAY),
            FIGURES_COLLECTION
        );
    }

    #[test]
    fn prefixes_name_their_project() {
        assert_eq!(
            project_of_prefix("forge/views/"),
            Some((Neighborhood::Projects, "forge"))
        );
        assert_eq!(
            project_of_prefix("u/bob/"),
            Some((Neighborhood::Users, "bob"))
        );
        // A bare name would also match `forgery/...`.
        assert_eq!(project_of_prefix("forge"), None);
        assert_eq!(project_of_prefix("/views/"), None);
        assert_eq!(project_of_prefix(""), None);
    }
}
