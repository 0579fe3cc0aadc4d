//! Reading activity: the events of a source (the whole site, a project, one tool, one user,
//! or what a user follows) that carry an [`Activity`], newest first, as a viewer may see
//! them: the project live and readable, the tool installed and readable, a restricted
//! activity only for those it names. Events do not say who may read them, so the filter runs
//! here, over the store's newest-first cursor, with a cap on the events looked at: a viewer
//! who may read little gets a shorter stream, never a scan of the whole log.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::{Database, IndexModel};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ACTIVITY;
use super::follows;
use super::{Activity, verb};
use crate::acl::perm;
use crate::error::Result;
use crate::events::EventContext;
use crate::ids::UserId;
use crate::instances::ToolInstance;
use crate::paging::Paging;
use crate::project_ctx::ProjectCtx;
use crate::projects::{self, Neighborhood, Project};
use crate::tool::{Forge, instance};
use crate::viewer::Viewer;

/// Events looked at for one page at most (whatever the viewer may see of them).
const SCAN: i64 = 10_000;
/// Events the store hands over per round trip.
const BATCH: u32 = 200;
/// Highest page of a stream (pages of 20: the latest 2,000 entries).
pub const MAX_PAGE: u64 = 100;
/// Entries of an Atom feed.
pub const FEED_ENTRIES: usize = 50;

/// Where activity comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Everything.
    Site,
    /// One project.
    Project(&'a Project),
    /// One tool of a project (by mount).
    Tool(&'a Project, &'a str),
    /// What one user did (by username).
    User(&'a str),
    /// What a user follows (projects and people) and the projects they are a member of.
    Followed(UserId),
}

/// The id of an event: a number (see `crate::events`), or an object id for events logged
/// before ids were numbered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum EventId {
    Seq(i64),
    Oid(ObjectId),
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seq(n) => write!(f, "{n}"),
            Self::Oid(o) => write!(f, "{}", o.to_hex()),
        }
    }
}

/// One activity as a viewer sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: EventId,
    /// The event type (`wiki.page.edit`...).
    pub kind: String,
    pub timestamp: DateTime,
    /// Who did it (username), when known.
    pub user: Option<String>,
    pub project_name: String,
    pub project_url: String,
    /// The tool's mount, when the activity is in one.
    pub tool: Option<String>,
    pub activity: Activity,
}

impl Entry {
    /// What was done, for "alice *edited* page Home".
    pub fn verb(&self) -> &'static str {
        verb(&self.kind)
    }
}

/// A page of a stream.
#[derive(Debug, Clone, Default)]
pub struct ActivityPage {
    pub entries: Vec<Entry>,
    /// There is a next page.
    pub more: bool,
}

impl ActivityPage {
    /// A short fingerprint of what the page holds (an HTTP entity tag): it changes when an
    /// entry comes or goes.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.entries {
            h.update(e.id.to_string().as_bytes());
            h.update(b"\n");
        }
        h.update((self.entries.len() as u64).to_be_bytes());
        hex::encode(&h.finalize()[..12])
    }
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    db.collection::<Document>(ACTIVITY)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"context.project": 1, "timestamp": -1, "_id": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"context.user": 1, "timestamp": -1, "_id": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"timestamp": -1, "_id": -1})
                .build(),
            // What changes activity after the fact (`super::set_restricted`, `attach`,
            // `retract`) selects by these: a post, a topic or page (artifact key), a ticket.
            IndexModel::builder().keys(doc! {"extra.post": 1}).build(),
            IndexModel::builder()
                .keys(doc! {"extra.artifact": 1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"extra.ticket": 1, "context.project": 1})
                .build(),
        ])
        .await?;
    super::ensure_indexes(db).await?;
    follows::ensure_indexes(db).await
}

/// A page of a source's activity as `viewer` may see it, newest first. For an anonymous
/// viewer (feeds), restricted activity is never shown.
pub async fn read(
    forge: &Forge,
    viewer: &Viewer,
    source: Source<'_>,
    paging: Paging,
) -> Result<ActivityPage> {
    let Some(filter) = filter(forge, source).await? else {
        return Ok(ActivityPage::default());
    };
    // The newest batch is what nearly every view needs: kept in the read model. Further
    // batches (deep pages, much restricted activity) come from a cursor past it.
    let (mut rows, head_docs) = newest(forge.db(), &filter).await?;
    let mut end = head_docs < BATCH as usize;
    let mut cursor = None;
    let mut seen = Visibility::new(forge, viewer);
    let (skip, take) = (paging.offset(), paging.per_page);
    let mut visible = 0usize;
    let mut page = ActivityPage::default();
    loop {
        // The projects a batch names in one query (not one per project).
        seen.load(rows.iter().map(|r| &r.context)).await?;
        for row in rows.drain(..) {
            let Some(activity) = Activity::from_extra(&row.extra) else {
                continue;
            };
            let Some(ctx) = seen.project_of(&row.context) else {
                continue;
            };
            if !allowed(viewer, ctx, row.context.tool.as_deref(), &activity) {
                continue;
            }
            visible += 1;
            if visible <= skip {
                continue;
            }
            if page.entries.len() == take {
                page.more = true;
                return Ok(page);
            }
            page.entries.push(Entry {
                id: row.id,
                kind: row.kind,
                timestamp: row.timestamp,
                user: row.context.user,
                project_name: ctx.project.name.clone(),
                project_url: ctx.project.url(),
                tool: row.context.tool,
                activity,
            });
        }
        if end {
            break;
        }
        let c = match &mut cursor {
            Some(c) => c,
            None => cursor.insert(
                forge
                    .db()
                    .collection::<Document>(ACTIVITY)
                    .find(filter.clone())
                    .sort(doc! {"timestamp": -1, "_id": -1})
                    .skip(u64::from(BATCH))
                    .limit(SCAN - i64::from(BATCH))
                    .batch_size(BATCH)
                    .await?,
            ),
        };
        while rows.len() < BATCH as usize {
            let Some(doc) = c.try_next().await? else {
                end = true;
                break;
            };
            // Events loaded from elsewhere may be malformed: skipped, not fatal.
            if let Ok(row) = bson::deserialize_from_document::<Row>(doc) {
                rows.push(row);
            }
        }
    }
    Ok(page)
}

/// The read model's memo of the newest activity of each source.
pub const MEMO: &str = "activity";

/// Where [`newest`] looks, in turn: the last 10 s and minute (a busy project fills a batch
/// in them), hour, day, 30 days, then everywhere.
const NEWEST_WINDOWS: [Option<std::time::Duration>; 6] = [
    Some(std::time::Duration::from_secs(10)),
    Some(std::time::Duration::from_secs(60)),
    Some(std::time::Duration::from_secs(3_600)),
    Some(std::time::Duration::from_secs(86_400)),
    Some(std::time::Duration::from_secs(30 * 86_400)),
    None,
];

/// The newest [`BATCH`] rows of a filter (malformed ones left out) and how many documents
/// they came from, through the read model's memo.
async fn newest(db: &Database, filter: &Document) -> Result<(Vec<Row>, usize)> {
    crate::readmodel::memo(
        db,
        MEMO,
        filter.to_string(),
        |(rows, _): &(Vec<Row>, usize)| rows.len() * 512,
        || async {
            // The newest rows are looked for in the last hour first, then the last day,
            // month, and only then everywhere: a batch that fills from a window is the newest
            // overall (everything outside is older), and a store whose planner reads a whole
            // index range before it sorts and limits (the embedded one does) then reads one
            // window of rows, not the whole history, on every miss.
            let mut docs: Vec<Document> = Vec::new();
            for window in NEWEST_WINDOWS {
                let mut f = filter.clone();
                if let Some(w) = window {
                    let since = DateTime::from_millis(
                        DateTime::now().timestamp_millis() - w.as_millis() as i64,
                    );
                    f.insert("timestamp", doc! {"$gte": since});
                }
                docs = db
                    .collection::<Document>(ACTIVITY)
                    .find(f)
                    .sort(doc! {"timestamp": -1, "_id": -1})
                    .limit(i64::from(BATCH))
                    .await?
                    .try_collect()
                    .await?;
                if docs.len() == BATCH as usize {
                    break;
                }
            }
            let n = docs.len();
            let rows = docs
                .into_iter()
                .filter_map(|d| bson::deserialize_from_document::<Row>(d).ok())
                .collect();
            Ok((rows, n))
        },
    )
    .await
}

/// The latest [`FEED_ENTRIES`] of a source that anyone may read (what feeds show).
pub async fn public(forge: &Forge, source: Source<'_>) -> Result<ActivityPage> {
    let paging = Paging {
        page: 1,
        per_page: FEED_ENTRIES,
    };
    read(forge, &Viewer::default(), source, paging).await
}

#[derive(Clone, Deserialize)]
struct Row {
    #[serde(rename = "_id")]
    id: EventId,
    timestamp: DateTime,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    context: EventContext,
    #[serde(default)]
    extra: Bson,
}

/// The store filter of a source; `None` when it can hold nothing (follows nothing).
async fn filter(forge: &Forge, source: Source<'_>) -> Result<Option<Document>> {
    let mut f = doc! {
        "extra.title": {"$exists": true},
        format!("extra.{}", super::HIDDEN): {"$ne": true},
    };
    match source {
        Source::Site => {}
        Source::Project(p) => {
            f.insert("context.project", &p.shortname);
            f.insert("context.neighborhood", p.neighborhood.prefix());
        }
        Source::Tool(p, mount) => {
            f.insert("context.project", &p.shortname);
            f.insert("context.neighborhood", p.neighborhood.prefix());
            f.insert("context.tool", mount);
        }
        Source::User(name) => {
            f.insert("context.user", name);
        }
        Source::Followed(user) => {
            let follows = follows::of_user(forge.db(), user).await?;
            let (mut project_ids, mut user_ids) = (Vec::new(), Vec::new());
            for fo in &follows {
                match (fo.project_id, fo.followed_id) {
                    (Some(p), _) => project_ids.push(p),
                    (None, Some(u)) => user_ids.push(u),
                    (None, None) => {}
                }
            }
            let mut projects = projects::by_ids(forge.db(), &project_ids).await?;
            projects.extend(projects::of_member(forge.db(), user).await?);
            let usernames: Vec<String> = crate::users::by_ids(forge.db(), &user_ids)
                .await?
                .into_iter()
                .map(|u| u.username)
                .collect();
            let mut any = Vec::new();
            for nbhd in [Neighborhood::Projects, Neighborhood::Users] {
                let mut names: Vec<&str> = projects
                    .iter()
                    .filter(|p| p.neighborhood == nbhd)
                    .map(|p| p.shortname.as_str())
                    .collect();
                names.sort_unstable();
                names.dedup();
                if !names.is_empty() {
                    any.push(doc! {
                        "context.neighborhood": nbhd.prefix(),
                        "context.project": {"$in": names},
                    });
                }
            }
            if !usernames.is_empty() {
                any.push(doc! {"context.user": {"$in": usernames}});
            }
            if any.is_empty() {
                return Ok(None);
            }
            f.insert("$or", any);
        }
    }
    Ok(Some(f))
}

/// Whether the viewer may see an activity of a project they may read: the tool (when it
/// names one) installed and readable, and a restriction satisfied (never for anonymous).
fn allowed(viewer: &Viewer, ctx: &ProjectCtx, mount: Option<&str>, a: &Activity) -> bool {
    let tool: Option<&ToolInstance> = match mount {
        Some(m) => match ctx.tool(m) {
            Some(t) if ctx.can_tool(t, perm::READ) => Some(t),
            // Uninstalled since, or not readable by this viewer.
            _ => return false,
        },
        None => None,
    };
    let Some(r) = &a.restricted else {
        return true;
    };
    let Some(me) = viewer.username() else {
        return false;
    };
    let holds = match tool {
        Some(t) => ctx.can_tool(t, &r.permission),
        None => ctx.can(&r.permission),
    };
    holds || r.users.iter().any(|u| u == me)
}

/// The projects met while reading a stream, loaded once per stream and a batch of rows at a
/// time (one query for their projects, one for those projects' tools), as the viewer sees
/// them.
struct Visibility<'a> {
    forge: &'a Forge,
    viewer: &'a Viewer,
    projects: HashMap<(Neighborhood, String), Option<ProjectCtx>>,
}

impl<'a> Visibility<'a> {
    fn new(forge: &'a Forge, viewer: &'a Viewer) -> Self {
        Self {
            forge,
            viewer,
            projects: HashMap::new(),
        }
    }

    fn key(c: &EventContext) -> Option<(Neighborhood, String)> {
        let nbhd = match c.neighborhood.as_deref() {
            Some("u") => Neighborhood::Users,
            _ => Neighborhood::Projects,
        };
        Some((nbhd, c.project.clone()?))
    }

    /// Loads the projects these events name that were not met before.
    async fn load(&mut self, contexts: impl Iterator<Item = &EventContext>) -> Result<()> {
        let mut wanted: Vec<(Neighborhood, String)> = Vec::new();
        for key in contexts.filter_map(Self::key) {
            if !self.projects.contains_key(&key) && !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let db = self.forge.db();
        let mut readable = Vec::new();
        for nbhd in [Neighborhood::Projects, Neighborhood::Users] {
            let names: Vec<&str> = wanted
                .iter()
                .filter(|(n, _)| *n == nbhd)
                .map(|(_, s)| s.as_str())
                .collect();
            for project in projects::by_names(db, nbhd, &names).await? {
                let ctx = ProjectCtx {
                    subject: self.viewer.subject(Some(&project)),
                    tools: Vec::new(),
                    project,
                };
                if ctx.can(perm::READ) {
                    readable.push(ctx);
                }
            }
        }
        let ids: Vec<_> = readable.iter().map(|c| c.project.id).collect();
        let mut tools = instance::of_projects(db, &ids).await?;
        // Not found, deleted or not readable: nothing of it is shown.
        for key in wanted {
            self.projects.insert(key, None);
        }
        for mut ctx in readable {
            ctx.tools = tools
                .extract_if(.., |t| t.project_id == ctx.project.id)
                .collect();
            let key = (ctx.project.neighborhood, ctx.project.shortname.clone());
            self.projects.insert(key, Some(ctx));
        }
        Ok(())
    }

    /// The event's project when it is live and the viewer may read it (once [`Self::load`]ed).
    fn project_of(&self, c: &EventContext) -> Option<&ProjectCtx> {
        self.projects.get(&Self::key(c)?).and_then(Option::as_ref)
    }
}
