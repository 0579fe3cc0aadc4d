//! After a push: a task (`repo.refresh`) records the new commits (id, author, date, summary,
//! parents) in `repo_commits` for activity, statistics and search, records the references
//! their messages make (as the tools addressed resolve them), tells the project's tools of
//! the commits newly on the default branch (`Tool::on_commits`), refreshes the branch/tag
//! cache in `repo_refs`, and records a `repo.push` event and a `repo.commit` per new commit
//! (`{commit, ref}`: the first ref that newly reaches it, the default branch first, then the
//! other branches, then tags; at most [`MAX_COMMIT_EVENTS`], the push's `commits_unlogged`
//! counting the rest), and announces the moved branches and tags to webhooks
//! (`super::webhook`). Idempotent: it walks from the current tips, hides the tips it saw last
//! time, and upserts by commit id (a run that stops before saving the tips tells the tools
//! again the next time, and logs nothing until then). Pushes made while a refresh waits in
//! the queue are refreshed (and logged as one push) together.

use bson::{Bson, DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::browse::lossy;
use super::paths::repo_path;
use crate::activity::Activity;
use crate::error::{Error, Result};
use crate::events::EventContext;
use crate::ids::ToolId;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::tool::{Forge, PushedCommit, ToolInstance, instance, xref};

pub const TASK: &str = "repo.refresh";
pub const COMMITS: &str = "repo_commits";
pub const REFS: &str = "repo_refs";
/// The most commits one refresh records (a first push of a huge history is recorded in slices
/// by the next pushes' refreshes; browsing reads git directly and is not limited by this).
const MAX_COMMITS: usize = 200_000;
/// The most commits newly on the default branch one refresh tells the other tools of (the
/// newest; a first push of a long history is not a list of fixes).
const MAX_TOLD: usize = 10_000;
/// The most `repo.commit` events one refresh logs.
pub const MAX_COMMIT_EVENTS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefInfo {
    pub name: String,
    /// `branch` or `tag`.
    pub kind: String,
    /// The commit it points at.
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefCache {
    #[serde(rename = "_id")]
    pub tool_id: ToolId,
    pub refs: Vec<RefInfo>,
    pub updated: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitDoc {
    /// `<tool id>:<sha>`.
    #[serde(rename = "_id")]
    pub id: String,
    pub tool_id: ToolId,
    pub sha: String,
    pub author_name: String,
    pub author_email: String,
    pub date: DateTime,
    pub summary: String,
    pub message: String,
    pub parents: Vec<String>,
}

/// The page of a commit.
pub fn commit_url(project: &Project, tool: &ToolInstance, sha: &str) -> String {
    format!("{}{}/commit/{sha}", project.url(), tool.mount)
}

/// The key a commit is known by: its search document's and its backlink key.
pub fn commit_key(tool: &ToolInstance, sha: &str) -> String {
    format!("commit:{}:{sha}", tool.id)
}

fn commits(db: &Database) -> Collection<CommitDoc> {
    db.collection(COMMITS)
}

fn refs_coll(db: &Database) -> Collection<RefCache> {
    db.collection(REFS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    commits(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "date": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "sha": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        ])
        .await?;
    Ok(())
}

/// Arguments of a refresh task.
pub fn args(tool: ToolId, pusher: Option<&str>, ip: Option<&str>) -> serde_json::Value {
    serde_json::json!({"tool_id": tool.to_string(), "pusher": pusher, "ip": ip})
}

/// What a refresh found.
#[derive(Debug, Default)]
pub struct Report {
    pub new_commits: usize,
    pub refs: usize,
}

/// Runs the refresh described by `args` (see [`args`]).
pub async fn run(forge: &Forge, args: &serde_json::Value) -> Result<Report> {
    let tool_id = args
        .get("tool_id")
        .and_then(|v| v.as_str())
        .and_then(ToolId::parse)
        .ok_or_else(|| Error::invalid("tool_id", "missing tool id"))?;
    let Some(tool) = instance::by_id(forge.db(), tool_id).await? else {
        // Uninstalled since the push: nothing to record.
        return Ok(Report::default());
    };
    let project = crate::projects::by_id(forge.db(), tool.project_id)
        .await?
        .ok_or(Error::NotFound("project"))?;
    let path = repo_path(forge.config(), &tool);
    let previous = refs_coll(forge.db())
        .find_one(doc! {"_id": tool_id})
        .await?;
    let previous = previous.map(|p| p.refs).unwrap_or_default();
    let before = previous.clone();
    let (refs, found, on_default, reached_by) =
        tokio::task::spawn_blocking(move || walk(&path, &previous, tool_id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    let new_commits = found.len();
    for chunk in found.chunks(1000) {
        match commits(forge.db()).insert_many(chunk).ordered(false).await {
            Ok(_) => {}
            // Already recorded by an earlier run: that is the idempotence, not a failure.
            Err(e) if Error::is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Indexed by the search writer's own task (this one may run on any worker).
    for chunk in found.chunks(1000) {
        let keys = chunk.iter().map(|c| format!("commit:{}", c.id)).collect();
        crate::search::indexer::queue_artifacts(forge, &project, &tool, keys).await?;
    }
    if new_commits > 0 {
        // References to commits (`[abc1234]`) in cached renderings may now resolve.
        instance::bump_epoch(forge.db(), tool.id).await?;
    }
    let pusher = args.get("pusher").and_then(|v| v.as_str());
    let ctx = ProjectCtx {
        tools: instance::list(forge.db(), project.id).await?,
        project,
        subject: Default::default(),
    };
    record_references(forge, &ctx, &tool, &found).await?;
    let repo_dir = repo_path(forge.config(), &tool);
    tokio::task::spawn_blocking(move || housekeep(&repo_dir))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    // Before the new tips are saved: should this run stop here, the next one tells again
    // rather than never.
    tell_tools(forge, &ctx, &tool, pusher, &on_default).await;
    // Webhooks hear of each branch and tag that moved (announced again by a run that stops
    // before the tips are saved: a delivery per ref move, so nobody is sent it twice).
    fn tips(list: &[RefInfo]) -> Vec<super::webhook::Tip<'_>> {
        list.iter()
            .map(|r| super::webhook::Tip {
                tag: r.kind == "tag",
                name: &r.name,
                target: &r.target,
            })
            .collect()
    }
    let url = |sha: &str| commit_url(&ctx.project, &tool, sha);
    super::webhook::announce(
        forge,
        &ctx.project,
        &tool,
        pusher,
        &tips(&before),
        &tips(&refs),
        &url,
    )
    .await?;
    let project = ctx.project;
    let cache = RefCache {
        tool_id,
        refs: refs.clone(),
        updated: DateTime::now(),
    };
    refs_coll(forge.db())
        .replace_one(doc! {"_id": tool_id}, &cache)
        .upsert(true)
        .await?;
    let context = EventContext {
        neighborhood: Some(project.neighborhood.prefix().to_owned()),
        project: Some(project.shortname.clone()),
        tool: Some(tool.mount.clone()),
        user: pusher.map(str::to_owned),
        private: !project.is_public(),
        ip: args.get("ip").and_then(|v| v.as_str()).map(str::to_owned),
        ..Default::default()
    };
    let logged = new_commits.min(MAX_COMMIT_EVENTS);
    let extra = doc! {
        "new_commits": new_commits as i64,
        "refs": refs.len() as i64,
        "commits_unlogged": (new_commits - logged) as i64,
    };
    // A push that brought commits is activity; one that only moved or deleted refs is not.
    let extra = match push_activity(&project, &tool, &before, &refs, &found) {
        Some(a) => a.into_extra(extra),
        None => extra,
    };
    forge
        .events()
        .record("repo.push", context.clone(), Bson::Document(extra));
    for (c, reached) in found.iter().zip(&reached_by).take(logged) {
        let mut extra = doc! {"commit": &c.sha};
        if let Some(r) = reached {
            extra.insert("ref", r);
        }
        forge
            .events()
            .record("repo.commit", context.clone(), Bson::Document(extra));
    }
    Ok(Report {
        new_commits,
        refs: refs.len(),
    })
}

/// A push's activity: "3 commits to main" (or to several branches), linking the commit when
/// there is one, else the branch's log; the newest commits' summaries as its summary.
fn push_activity(
    project: &Project,
    tool: &ToolInstance,
    before: &[RefInfo],
    after: &[RefInfo],
    found: &[CommitDoc],
) -> Option<Activity> {
    if found.is_empty() {
        return None;
    }
    let moved: Vec<&RefInfo> = after
        .iter()
        .filter(|r| r.kind == "branch")
        .filter(|r| {
            !before
                .iter()
                .any(|b| b.kind == r.kind && b.name == r.name && b.target == r.target)
        })
        .collect();
    let n = found.len();
    let commits = if n == 1 {
        "1 commit".to_owned()
    } else {
        format!("{n} commits")
    };
    let log = |branch: &str| {
        let segments: Vec<String> = branch.split('/').map(xref::encode_segment).collect();
        format!(
            "{}{}/commits/{}",
            project.url(),
            tool.mount,
            segments.join("/")
        )
    };
    let title = match moved.as_slice() {
        [branch] => format!("{commits} to {}", branch.name),
        [] => commits,
        more => format!("{commits} to {} branches", more.len()),
    };
    let url = match (moved.as_slice(), found) {
        (_, [only]) => commit_url(project, tool, &only.sha),
        ([branch], _) => log(&branch.name),
        _ => format!("{}{}/", project.url(), tool.mount),
    };
    let mut newest: Vec<&CommitDoc> = found.iter().collect();
    newest.sort_by_key(|c| std::cmp::Reverse(c.date));
    let summary: Vec<&str> = newest.iter().take(5).map(|c| c.summary.as_str()).collect();
    Some(Activity::new(title, url).summary(&summary.join("; ")))
}

/// Records what commit messages reference — `[#123]`, `[Page]`, `[wiki:Page]`, `[abc1234]`...
/// — as links, so the artifacts referred to can list the commits that mention them. The keys
/// are those the tool each reference addresses gives (`crate::tool::xref`).
async fn record_references(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    found: &[CommitDoc],
) -> Result<()> {
    for c in found.iter().filter(|c| c.message.contains('[')) {
        let (_, keys) = xref::resolve(forge, ctx, tool, &c.message, false).await?;
        if !keys.is_empty() {
            let url = commit_url(&ctx.project, tool, &c.sha);
            let from = commit_key(tool, &c.sha);
            crate::links::replace(forge.db(), &from, &c.summary, &url, &keys).await?;
        }
    }
    Ok(())
}

/// Tells every tool of the project (all kinds) of the commits newly on the repository's
/// default branch. A tool's failure is logged and does not fail the refresh: a refresh that
/// runs again tells them again, so the hooks must tolerate hearing of a commit twice.
async fn tell_tools(
    forge: &Forge,
    ctx: &ProjectCtx,
    repo: &ToolInstance,
    pusher: Option<&str>,
    on_default: &[DefaultCommit],
) {
    if on_default.is_empty() {
        return;
    }
    let commits: Vec<PushedCommit> = on_default
        .iter()
        .map(|c| PushedCommit {
            sha: c.sha.clone(),
            message: c.message.clone(),
            author: c.author.clone(),
            url: commit_url(&ctx.project, repo, &c.sha),
        })
        .collect();
    for t in &ctx.tools {
        let Some(kind) = forge.tools().get(&t.kind) else {
            continue;
        };
        if let Err(e) = kind.on_commits(forge, ctx, t, pusher, &commits).await {
            tracing::warn!(
                project = %ctx.project.shortname,
                tool = %t.mount,
                repository = %repo.mount,
                error = %e,
                "a tool failed to handle pushed commits"
            );
        }
    }
}

/// Keeps the repository fast to serve: the first time, a full repack with a reachability
/// bitmap (clones then skip walking the history to count objects); afterwards `git gc --auto`,
/// which repacks (keeping bitmaps) once pushes have left enough packs or loose objects.
fn housekeep(path: &std::path::Path) -> Result<()> {
    let has_bitmap = std::fs::read_dir(path.join("objects/pack"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".bitmap"))
        })
        .unwrap_or(false);
    let args: &[&str] = if has_bitmap {
        &["gc", "--auto", "--quiet"]
    } else {
        &["repack", "-a", "-d", "-b", "-q"]
    };
    let status = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Internal(format!("git {}: {e}", args[0])))?;
    if !status.success() {
        return Err(Error::Internal(format!("git {} failed: {status}", args[0])));
    }
    Ok(())
}

/// A commit newly on the default branch, as the other tools are told of it.
#[derive(Debug, Clone)]
struct DefaultCommit {
    sha: String,
    message: String,
    author: String,
}

/// What [`walk`] reads: the refs, the new commits, those newly on the default branch, and
/// for each new commit the full name of the ref it is logged under (see [`reached_by`]).
type Walked = (
    Vec<RefInfo>,
    Vec<CommitDoc>,
    Vec<DefaultCommit>,
    Vec<Option<String>>,
);

/// Reads the repository: its branches and tags, the commits reachable from them that were
/// not reachable from the tips of the last refresh (`previous`), and the commits newly on the
/// default branch (HEAD's), oldest first.
fn walk(path: &std::path::Path, previous: &[RefInfo], tool_id: ToolId) -> Result<Walked> {
    let git = |e: git2::Error| Error::Internal(format!("git: {}", e.message()));
    let repo = git2::Repository::open_bare(path).map_err(git)?;
    let mut refs = Vec::new();
    for r in repo.references().map_err(git)? {
        let r = r.map_err(git)?;
        let name = lossy(r.name_bytes());
        let name = name.as_str();
        let (kind, short) = if let Some(b) = name.strip_prefix("refs/heads/") {
            ("branch", b)
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            ("tag", t)
        } else {
            continue;
        };
        if let Ok(commit) = r.peel_to_commit() {
            refs.push(RefInfo {
                name: short.to_owned(),
                kind: kind.to_owned(),
                target: commit.id().to_string(),
            });
        }
    }
    refs.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    // Old tips still in the repository (a rewritten branch's old tip may be gone).
    let old_tips: Vec<git2::Oid> = previous
        .iter()
        .filter_map(|r| git2::Oid::from_str(&r.target).ok())
        .filter(|oid| repo.find_commit(*oid).is_ok())
        .collect();
    let mut walk = repo.revwalk().map_err(git)?;
    for r in &refs {
        if let Ok(oid) = git2::Oid::from_str(&r.target) {
            walk.push(oid).map_err(git)?;
        }
    }
    for oid in &old_tips {
        walk.hide(*oid).map_err(git)?;
    }
    let mut out = Vec::new();
    for oid in walk.take(MAX_COMMITS) {
        let oid = oid.map_err(git)?;
        let c = repo.find_commit(oid).map_err(git)?;
        let author = c.author();
        out.push(CommitDoc {
            id: format!("{tool_id}:{oid}"),
            tool_id,
            sha: oid.to_string(),
            author_name: lossy(author.name_bytes()),
            author_email: lossy(author.email_bytes()),
            date: DateTime::from_millis(c.time().seconds() * 1000),
            summary: lossy(c.summary_bytes().unwrap_or_default()),
            message: lossy(c.message_bytes()),
            parents: c.parent_ids().map(|p| p.to_string()).collect(),
        });
    }
    let on_default = new_on_default(&repo, &refs, previous, &old_tips).map_err(git)?;
    let default_branch = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target_bytes().map(lossy))
        .and_then(|t| t.strip_prefix("refs/heads/").map(str::to_owned));
    let reached = reached_by(&refs, &out, default_branch.as_deref());
    Ok((refs, out, on_default, reached))
}

/// For each new commit, the full name of the ref it is logged under: the first ref, in the
/// order default branch, other branches, tags, whose new history contains it (so each
/// commit is attributed once). Follows the parents the walk recorded, visiting each commit
/// once; `None` for a commit no ref's recorded history reaches (the walk was cut short).
fn reached_by(
    refs: &[RefInfo],
    found: &[CommitDoc],
    default_branch: Option<&str>,
) -> Vec<Option<String>> {
    let index: std::collections::HashMap<&str, usize> = found
        .iter()
        .enumerate()
        .map(|(i, c)| (c.sha.as_str(), i))
        .collect();
    let mut order: Vec<&RefInfo> = refs.iter().collect();
    // Stable: the default branch, then the other branches, then tags, each by name.
    let rank = |r: &RefInfo| match (r.kind.as_str(), Some(r.name.as_str()) == default_branch) {
        ("branch", true) => 0,
        ("branch", false) => 1,
        _ => 2,
    };
    order.sort_by(|a, b| (rank(a), &a.name).cmp(&(rank(b), &b.name)));
    let mut owner: Vec<Option<String>> = vec![None; found.len()];
    let mut stack = Vec::new();
    for r in order {
        let Some(&tip) = index.get(r.target.as_str()) else {
            continue;
        };
        let name = match r.kind.as_str() {
            "tag" => format!("refs/tags/{}", r.name),
            _ => format!("refs/heads/{}", r.name),
        };
        stack.push(tip);
        while let Some(i) = stack.pop() {
            if owner[i].is_some() {
                continue;
            }
            owner[i] = Some(name.clone());
            for p in &found[i].parents {
                if let Some(&j) = index.get(p.as_str())
                    && owner[j].is_none()
                {
                    stack.push(j);
                }
            }
        }
    }
    owner
}

/// The commits newly reachable from the default branch (HEAD's), oldest first, at most
/// [`MAX_TOLD`] (the newest). New means not reachable from the branch's tip at the last
/// refresh, so commits pushed on another branch first are told when they are merged; when that
/// tip is gone (the branch was rewritten and the old commits pruned), not reachable from any
/// old tip still there; when the branch is new, everything on it.
fn new_on_default(
    repo: &git2::Repository,
    refs: &[RefInfo],
    previous: &[RefInfo],
    old_tips: &[git2::Oid],
) -> std::result::Result<Vec<DefaultCommit>, git2::Error> {
    let head = repo.find_reference("HEAD")?;
    let target = head.symbolic_target_bytes().map(lossy).unwrap_or_default();
    let Some(branch) = target.strip_prefix("refs/heads/") else {
        return Ok(Vec::new());
    };
    let tip_of = |refs: &[RefInfo]| {
        refs.iter()
            .find(|r| r.kind == "branch" && r.name == branch)
            .and_then(|r| git2::Oid::from_str(&r.target).ok())
    };
    let Some(tip) = tip_of(refs) else {
        return Ok(Vec::new());
    };
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(tip)?;
    match tip_of(previous) {
        Some(old) if old == tip => return Ok(Vec::new()),
        Some(old) if repo.find_commit(old).is_ok() => walk.hide(old)?,
        Some(_) => {
            for oid in old_tips {
                walk.hide(*oid)?;
            }
        }
        None => {}
    }
    let mut out = Vec::new();
    for oid in walk.take(MAX_TOLD) {
        let c = repo.find_commit(oid?)?;
        out.push(DefaultCommit {
            sha: c.id().to_string(),
            message: lossy(c.message_bytes()),
            author: lossy(c.author().name_bytes()),
        });
    }
    out.reverse();
    Ok(out)
}

/// The cached branches and tags of a repository (as of its last refresh).
pub async fn cached_refs(db: &Database, tool: ToolId) -> Result<Option<RefCache>> {
    Ok(refs_coll(db).find_one(doc! {"_id": tool}).await?)
}

pub async fn recorded_commits(db: &Database, tool: ToolId, limit: i64) -> Result<Vec<CommitDoc>> {
    Ok(commits(db)
        .find(doc! {"tool_id": tool})
        .sort(doc! {"date": -1})
        .limit(limit)
        .await?
        .try_collect()
        .await?)
}

pub async fn count_commits(db: &Database, tool: ToolId) -> Result<u64> {
    Ok(commits(db).count_documents(doc! {"tool_id": tool}).await?)
}

/// How many abbreviated ids one query looks up (a text naming more takes several queries).
const PREFIXES_PER_QUERY: usize = 256;

/// The recorded commits of a repository whose ids start with each of `prefixes` (lowercase
/// hex, 7 to 40 digits), in order: `None` for an id no recorded commit has, or one that more
/// than one has (ambiguous). One bounded query per [`PREFIXES_PER_QUERY`] ids: a range on the
/// `_id` (`<tool id>:<sha>`) per prefix.
pub async fn find_by_prefixes(
    db: &Database,
    tool: ToolId,
    prefixes: &[&str],
) -> Result<Vec<Option<String>>> {
    let ok = |p: &str| {
        (7..=40).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut wanted: Vec<&str> = prefixes.iter().copied().filter(|p| ok(p)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut shas: Vec<String> = Vec::new();
    for chunk in wanted.chunks(PREFIXES_PER_QUERY) {
        // `g` sorts after every hex digit: `[<prefix>, <prefix>g)` holds exactly the ids that
        // start with the prefix.
        let ranges: Vec<bson::Document> = chunk
            .iter()
            .map(|p| doc! {"_id": {"$gte": format!("{tool}:{p}"), "$lt": format!("{tool}:{p}g")}})
            .collect();
        // Two per prefix are enough to tell an ambiguous one.
        let limit = i64::try_from(2 * chunk.len()).unwrap_or(i64::MAX);
        let mut cursor = db
            .collection::<bson::Document>(COMMITS)
            .find(doc! {"$or": ranges})
            .projection(doc! {"sha": 1})
            .sort(doc! {"_id": 1})
            .limit(limit)
            .await?;
        while let Some(d) = cursor.try_next().await? {
            if let Ok(sha) = d.get_str("sha") {
                shas.push(sha.to_owned());
            }
        }
    }
    Ok(prefixes
        .iter()
        .map(|p| {
            if !ok(p) {
                return None;
            }
            let mut hits = shas.iter().filter(|s| s.starts_with(p));
            match (hits.next(), hits.next()) {
                (Some(sha), None) => Some(sha.clone()),
                _ => None,
            }
        })
        .collect())
}

/// The search document of one recorded commit.
pub fn search_doc(project: &Project, tool: &ToolInstance, c: &CommitDoc) -> crate::tool::SearchDoc {
    crate::tool::SearchDoc {
        restricted: None,
        id: format!("commit:{}", c.id),
        kind: "commit".into(),
        title: format!("{} {}", &c.sha[..c.sha.len().min(10)], c.summary),
        text: format!("{}\n{}", c.message, c.sha),
        url: commit_url(project, tool, &c.sha),
        author: Some(c.author_name.clone()).filter(|a| !a.is_empty()),
        updated: c.date,
    }
}

/// Every recorded commit of a repository as search documents.
pub async fn search_docs(
    db: &Database,
    project: &Project,
    tool: &ToolInstance,
) -> Result<Vec<crate::tool::SearchDoc>> {
    let mut cursor = commits(db).find(doc! {"tool_id": tool.id}).await?;
    let mut out = Vec::new();
    while let Some(c) = cursor.try_next().await? {
        out.push(search_doc(project, tool, &c));
    }
    Ok(out)
}

/// Recorded commits (`<tool id>:<sha>` ids) as search documents, in one query.
pub async fn search_docs_by_ids(
    db: &Database,
    project: &Project,
    tool: &ToolInstance,
    ids: &[&str],
) -> Result<Vec<crate::tool::SearchDoc>> {
    let mut cursor = commits(db)
        .find(doc! {"_id": {"$in": ids}, "tool_id": tool.id})
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    while let Some(c) = cursor.try_next().await? {
        out.push(search_doc(project, tool, &c));
    }
    Ok(out)
}

/// Drops what the store knows of a repository (uninstall).
pub async fn forget(db: &Database, tool: ToolId) -> Result<()> {
    commits(db).delete_many(doc! {"tool_id": tool}).await?;
    refs_coll(db).delete_one(doc! {"_id": tool}).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(sha: &str, parents: &[&str]) -> CommitDoc {
        CommitDoc {
            id: sha.to_owned(),
            tool_id: ToolId::new(),
            sha: sha.to_owned(),
            author_name: String::new(),
            author_email: String::new(),
            date: DateTime::now(),
            summary: String::new(),
            message: String::new(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn reference(kind: &str, name: &str, target: &str) -> RefInfo {
        RefInfo {
            name: name.to_owned(),
            kind: kind.to_owned(),
            target: target.to_owned(),
        }
    }

    #[test]
    fn each_new_commit_is_logged_under_one_ref_default_branch_first() {
        // old ← a ← b (main, tag v1) ← c (feature); d (tag only, its parent not new).
        let found = [
            commit("c", &["b"]),
            commit("b", &["a"]),
            commit("a", &["old"]),
            commit("d", &["old"]),
        ];
        let refs = [
            reference("branch", "feature", "c"),
            reference("branch", "main", "b"),
            reference("tag", "v1", "b"),
            reference("tag", "v2", "d"),
            reference("branch", "gone", "zzz"),
        ];
        let got = reached_by(&refs, &found, Some("main"));
        let want = [
            "refs/heads/feature",
            "refs/heads/main",
            "refs/heads/main",
            "refs/tags/v2",
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|w| Some((*w).to_owned()))
                .collect::<Vec<_>>()
        );
        // Without a default branch, branches by name come first: `feature` reaches all three.
        let got = reached_by(&refs, &found, None);
        assert_eq!(got[2].as_deref(), Some("refs/heads/feature"));
    }
}
