//! The webhook events of a push. After each refresh (`super::refresh`), every branch that
//! moved is announced as a `push` and every tag as a `tag` (created, moved or deleted), with
//! the payload CI servers read ([`crate::webhooks::Push`]: `ref`, `before`, `after`,
//! `commits`, `repository`, `pusher`...). The repository is read only when a webhook of the
//! project listens. An announcement's id names the repository, the ref and both of its tips,
//! so a refresh that runs again (it stopped partway) announces nothing twice.

use super::DEFAULT_BRANCH;
use super::browse::lossy;
use super::paths::{clone_url, repo_path};
use crate::error::{Error, Result};
use crate::projects::Project;
use crate::tool::{Forge, ToolInstance};
use crate::webhooks::{self, Announcement, Commit, Person, Push, Repository};

/// A branch moved.
pub const PUSH: &str = "push";
/// A tag was created, moved or deleted.
pub const TAG: &str = "tag";
/// The id `before` or `after` carries for no commit.
const ZERO: &str = "0000000000000000000000000000000000000000";
/// Commits a payload lists at most (the newest).
const PAYLOAD_COMMITS: usize = 20;
/// Commits counted at most for `total_commits`.
const COUNTED: usize = 10_000;
/// Longest commit message sent, in characters.
const MESSAGE_CHARS: usize = 8_192;

/// A branch or tag as a refresh found it (`refresh::RefInfo`, which the refresh passes).
#[derive(Debug, Clone, Copy)]
pub struct Tip<'a> {
    pub tag: bool,
    pub name: &'a str,
    /// The commit it points at.
    pub target: &'a str,
}

/// The page of a commit, as the refresh names it.
pub type CommitUrl<'a> = &'a (dyn Fn(&str) -> String + Sync);

/// A ref that moved.
#[derive(Debug, Clone)]
struct Moved {
    tag: bool,
    name: String,
    before: Option<String>,
    after: Option<String>,
}

impl Moved {
    fn full_name(&self) -> String {
        if self.tag {
            format!("refs/tags/{}", self.name)
        } else {
            format!("refs/heads/{}", self.name)
        }
    }
}

/// The refs whose target differs between two refreshes.
fn moved(before: &[Tip<'_>], after: &[Tip<'_>]) -> Vec<Moved> {
    let find = |list: &[Tip<'_>], r: &Tip<'_>| {
        list.iter()
            .find(|o| o.tag == r.tag && o.name == r.name)
            .map(|o| o.target.to_owned())
    };
    let mut out: Vec<Moved> = after
        .iter()
        .filter_map(|r| {
            let old = find(before, r);
            (old.as_deref() != Some(r.target)).then(|| Moved {
                tag: r.tag,
                name: r.name.to_owned(),
                before: old,
                after: Some(r.target.to_owned()),
            })
        })
        .collect();
    out.extend(
        before
            .iter()
            .filter(|r| find(after, r).is_none())
            .map(|r| Moved {
                tag: r.tag,
                name: r.name.to_owned(),
                before: Some(r.target.to_owned()),
                after: None,
            }),
    );
    out
}

/// A commit as read from the repository.
#[derive(Debug, Clone)]
struct GitCommit {
    sha: String,
    message: String,
    timestamp: String,
    author: (String, String),
    committer: (String, String),
}

/// What a moved ref newly reaches.
#[derive(Debug, Default)]
struct Reached {
    /// Oldest first, the newest [`PAYLOAD_COMMITS`].
    commits: Vec<GitCommit>,
    total: usize,
    forced: bool,
    head: Option<GitCommit>,
}

fn timestamp(t: git2::Time) -> String {
    let offset = chrono::FixedOffset::east_opt(t.offset_minutes() * 60)
        .or_else(|| chrono::FixedOffset::east_opt(0));
    match (chrono::DateTime::from_timestamp(t.seconds(), 0), offset) {
        (Some(at), Some(offset)) => at.with_timezone(&offset).to_rfc3339(),
        _ => String::new(),
    }
}

fn read_commit(c: &git2::Commit<'_>) -> GitCommit {
    let person = |s: git2::Signature<'_>| (lossy(s.name_bytes()), lossy(s.email_bytes()));
    GitCommit {
        sha: c.id().to_string(),
        message: lossy(c.message_bytes())
            .chars()
            .take(MESSAGE_CHARS)
            .collect(),
        timestamp: timestamp(c.time()),
        author: person(c.author()),
        committer: person(c.committer()),
    }
}

/// Reads, for each moved ref, the commits it newly reaches (not reachable from its old tip;
/// for a new ref, from no old tip of any ref), and the default branch.
fn walk(
    path: &std::path::Path,
    moves: &[Moved],
    old_tips: &[String],
) -> std::result::Result<(Vec<Reached>, String), git2::Error> {
    let repo = git2::Repository::open_bare(path)?;
    let default_branch = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target_bytes().map(lossy))
        .and_then(|t| t.strip_prefix("refs/heads/").map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
    let present = |sha: &str| {
        git2::Oid::from_str(sha)
            .ok()
            .filter(|oid| repo.find_commit(*oid).is_ok())
    };
    let mut out = Vec::with_capacity(moves.len());
    for m in moves {
        let Some(tip) = m.after.as_deref().and_then(present) else {
            out.push(Reached::default());
            continue;
        };
        let mut walk = repo.revwalk()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        walk.push(tip)?;
        let old = m.before.as_deref().and_then(present);
        match (&m.before, old) {
            (Some(_), Some(old)) => walk.hide(old)?,
            // A new ref: what no ref reached before.
            (None, _) => {
                for oid in old_tips.iter().filter_map(|t| present(t)) {
                    walk.hide(oid)?;
                }
            }
            // The old tip is gone (pruned after a rewrite): everything it reaches is new.
            (Some(_), None) => {}
        }
        let mut reached = Reached {
            forced: match (&m.before, old) {
                (Some(_), Some(old)) => old != tip && !repo.graph_descendant_of(tip, old)?,
                (Some(_), None) => true,
                (None, _) => false,
            },
            head: Some(read_commit(&repo.find_commit(tip)?)),
            ..Reached::default()
        };
        for oid in walk.take(COUNTED) {
            let oid = oid?;
            reached.total += 1;
            if reached.commits.len() < PAYLOAD_COMMITS {
                reached.commits.push(read_commit(&repo.find_commit(oid)?));
            }
        }
        reached.commits.reverse();
        out.push(reached);
    }
    Ok((out, default_branch))
}

/// Announces the refs a refresh found moved (`before`: the refs at the last refresh,
/// `after`: now) to the project's webhooks. `pusher`: the account that pushed;
/// `commit_url`: the path of a commit's page.
pub async fn announce(
    forge: &Forge,
    project: &Project,
    tool: &ToolInstance,
    pusher: Option<&str>,
    before: &[Tip<'_>],
    after: &[Tip<'_>],
    commit_url: CommitUrl<'_>,
) -> Result<()> {
    let wants_push = webhooks::listening(forge, project.id, tool.id, &[PUSH]).await?;
    let wants_tag = webhooks::listening(forge, project.id, tool.id, &[TAG]).await?;
    let moves: Vec<Moved> = moved(before, after)
        .into_iter()
        .filter(|m| if m.tag { wants_tag } else { wants_push })
        .collect();
    if moves.is_empty() {
        return Ok(());
    }
    let path = repo_path(forge.config(), tool);
    let old_tips: Vec<String> = before.iter().map(|r| r.target.to_owned()).collect();
    let walked = moves.clone();
    let (reached, default_branch) =
        tokio::task::spawn_blocking(move || walk(&path, &walked, &old_tips))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(format!("git: {}", e.message())))?;
    let base = forge.config().base_url();
    let repository = Repository {
        name: tool.mount.clone(),
        full_name: format!("{}/{}", project.shortname, tool.mount),
        clone_url: clone_url(forge.config(), project, tool),
        html_url: format!("{base}{}{}/", project.url(), tool.mount),
        private: !project.is_public(),
        default_branch,
    };
    let pusher = Person {
        name: pusher.unwrap_or_default().to_owned(),
        email: None,
        username: pusher.map(str::to_owned),
    };
    let commit = |c: GitCommit| Commit {
        url: format!("{base}{}", commit_url(&c.sha)),
        id: c.sha,
        message: c.message,
        timestamp: c.timestamp,
        author: Person {
            name: c.author.0,
            email: Some(c.author.1),
            username: None,
        },
        committer: Person {
            name: c.committer.0,
            email: Some(c.committer.1),
            username: None,
        },
    };
    for (m, r) in moves.into_iter().zip(reached) {
        let before = m.before.clone().unwrap_or_else(|| ZERO.to_owned());
        let after = m.after.clone().unwrap_or_else(|| ZERO.to_owned());
        let action = match (&m.before, &m.after) {
            (None, _) => "created",
            (_, None) => "deleted",
            _ if r.forced => "forced",
            _ => "pushed",
        };
        let push = Push {
            reference: m.full_name(),
            created: m.before.is_none(),
            deleted: m.after.is_none(),
            forced: r.forced,
            commits: r.commits.into_iter().map(commit).collect(),
            total_commits: r.total,
            head_commit: r.head.map(commit),
            repository: repository.clone(),
            pusher: pusher.clone(),
            before: before.clone(),
            after: after.clone(),
        };
        let ann = Announcement {
            id: format!("push:{}:{}:{before}:{after}", tool.id, m.full_name()),
            project: project.id.to_string(),
            tool: tool.id.to_string(),
            event: Some((if m.tag { TAG } else { PUSH }).to_owned()),
            action: action.to_owned(),
            actor: pusher.username.clone().unwrap_or_default(),
            artifact: None,
            comment: String::new(),
            readers: None,
            data: push.into_data()?,
        };
        webhooks::announce(forge, ann).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(kind: &str, name: &'a str, target: &'a str) -> Tip<'a> {
        Tip {
            tag: kind == "tag",
            name,
            target,
        }
    }

    #[test]
    fn moved_refs_are_created_updated_and_deleted_ones() {
        let before = [
            r("branch", "main", "a"),
            r("branch", "old", "b"),
            r("tag", "v1", "a"),
        ];
        let after = [
            r("branch", "main", "c"),
            r("branch", "new", "c"),
            r("tag", "v1", "a"),
            r("tag", "v2", "c"),
        ];
        let got: Vec<(bool, String, Option<String>, Option<String>)> = moved(&before, &after)
            .into_iter()
            .map(|m| (m.tag, m.name, m.before, m.after))
            .collect();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            vec![
                (false, "main".into(), s("a"), s("c")),
                (false, "new".into(), None, s("c")),
                (true, "v2".into(), None, s("c")),
                (false, "old".into(), s("b"), None),
            ]
        );
    }
}
