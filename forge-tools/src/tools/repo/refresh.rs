//! After a push: a task (`repo.refresh`) records the new commits (id, author, date, summary,
//! parents) in `repo_commits` for activity, statistics and search, refreshes the branch/tag
//! cache in `repo_refs`, and records a `repo.push` event. Idempotent: it walks from the
//! current tips, hides the tips it saw last time, and upserts by commit id.

use bson::{Bson, DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::browse::lossy;
use super::paths::repo_path;
use crate::error::{Error, Result};
use crate::events::EventContext;
use crate::ids::ToolId;
use crate::projects::Project;
use crate::tool::{Forge, ToolInstance, instance};

pub const TASK: &str = "repo.refresh";
pub const COMMITS: &str = "repo_commits";
pub const REFS: &str = "repo_refs";
/// The most commits one refresh records (a first push of a huge history is recorded in slices
/// by the next pushes' refreshes; browsing reads git directly and is not limited by this).
const MAX_COMMITS: usize = 200_000;

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
    let old_tips: Vec<String> = previous
        .map(|p| p.refs.into_iter().map(|r| r.target).collect())
        .unwrap_or_default();
    let (refs, found) = tokio::task::spawn_blocking(move || walk(&path, &old_tips, tool_id))
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
    record_references(forge, &project, &tool, &found).await?;
    let repo_dir = repo_path(forge.config(), &tool);
    tokio::task::spawn_blocking(move || housekeep(&repo_dir))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
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
        user: args
            .get("pusher")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        ip: args.get("ip").and_then(|v| v.as_str()).map(str::to_owned),
    };
    forge.events().record(
        "repo.push",
        context,
        Bson::Document(doc! {"new_commits": new_commits as i64, "refs": refs.len() as i64}),
    );
    Ok(Report {
        new_commits,
        refs: refs.len(),
    })
}

/// Records what commit messages reference — `[#123]`, `[tracker:#123]`, `[wiki:Page]`,
/// `[mount:Page]` — as links, so tickets and pages can list the commits that mention them
/// (tickets resolve them once the tracker exists).
async fn record_references(
    forge: &Forge,
    project: &crate::projects::Project,
    tool: &crate::tool::ToolInstance,
    found: &[CommitDoc],
) -> Result<()> {
    use crate::refs::{self, RefTarget};
    let tools = instance::list(forge.db(), project.id).await?;
    for c in found.iter().filter(|c| c.message.contains('[')) {
        let mut keys = Vec::new();
        for raw in refs::scan(&c.message) {
            match refs::parse(&raw) {
                Some(RefTarget::Ticket { mount, number }) => {
                    let mount = mount.as_deref().unwrap_or("*");
                    keys.push(format!("ticket:{}:{mount}:{number}", project.id));
                }
                Some(RefTarget::Artifact {
                    project: None,
                    mount: Some(m),
                    name,
                }) => {
                    // The tool mounted there says what the reference is a link to.
                    if let Some(key) = tools.iter().find(|t| t.mount == m).and_then(|t| {
                        forge
                            .tools()
                            .get(&t.kind)
                            .and_then(|kind| kind.ref_key(t, &name))
                    }) {
                        keys.push(key);
                    }
                }
                _ => {}
            }
        }
        if !keys.is_empty() {
            let url = format!("{}{}/commit/{}", project.url(), tool.mount, c.sha);
            let from = format!("commit:{}:{}", tool.id, c.sha);
            crate::links::replace(forge.db(), &from, &c.summary, &url, &keys).await?;
        }
    }
    Ok(())
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

fn walk(
    path: &std::path::Path,
    old_tips: &[String],
    tool_id: ToolId,
) -> Result<(Vec<RefInfo>, Vec<CommitDoc>)> {
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
    let mut walk = repo.revwalk().map_err(git)?;
    for r in &refs {
        if let Ok(oid) = git2::Oid::from_str(&r.target) {
            walk.push(oid).map_err(git)?;
        }
    }
    for tip in old_tips {
        if let Ok(oid) = git2::Oid::from_str(tip)
            && repo.find_commit(oid).is_ok()
        {
            walk.hide(oid).map_err(git)?;
        }
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
    Ok((refs, out))
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

/// The search document of one recorded commit.
pub fn search_doc(project: &Project, tool: &ToolInstance, c: &CommitDoc) -> crate::tool::SearchDoc {
    crate::tool::SearchDoc {
        restricted: None,
        id: format!("commit:{}", c.id),
        kind: "commit".into(),
        title: format!("{} {}", &c.sha[..c.sha.len().min(10)], c.summary),
        text: format!("{}\n{}", c.message, c.sha),
        url: format!("{}{}/commit/{}", project.url(), tool.mount, c.sha),
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
