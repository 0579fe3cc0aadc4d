//! Full-text search on tantivy: one index under `<data>/search`, written by a single writer
//! (the process that runs tasks) and read by every web node, which picks up commits and swaps
//! by itself.
//!
//! Layout: `<data>/search/CURRENT` names the live index directory (`v<schema>-<millis>`).
//! `forge reindex` builds a complete new directory beside it and then replaces `CURRENT`
//! atomically; the writer follows the pointer before its next batch and removes the old
//! directory, readers re-open within a second. Nobody waits on a rebuild.
//!
//! Documents carry the access tokens of everyone who may read them (see
//! [`indexer::read_tokens`]); every search includes the viewer's tokens in the query itself,
//! so private content is neither returned nor counted.

pub mod indexer;
mod query;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::schema::{Facet, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use schema::Fields;

/// A document as the index stores it.
#[derive(Debug, Clone)]
pub struct IndexDoc {
    pub key: String,
    pub kind: String,
    pub project: String,
    pub project_id: String,
    pub tool: String,
    pub tool_id: String,
    pub title: String,
    pub text: String,
    pub author: String,
    pub date: bson::DateTime,
    pub url: String,
    pub read: Vec<String>,
}

/// One change to the index.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds the document, replacing any with the same key.
    Upsert(IndexDoc),
    Delete(String),
    /// Every document of a project (by project id).
    DeleteProject(String),
    /// Every document of a tool instance (by tool id).
    DeleteTool(String),
}

/// Who is searching.
#[derive(Debug, Clone)]
pub enum Access {
    /// Site admins see everything.
    All,
    /// Documents carrying any of these tokens.
    Tokens(Vec<String>),
}

/// A search as asked.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub project: Option<String>,
    pub kind: Option<String>,
    pub tool: Option<String>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub mount: String,
    pub url: String,
    pub title: String,
    /// HTML: the text around the match, escaped, matches in `<b>`.
    pub snippet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    pub date: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Results {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Matches per type and per project, among what the viewer may read.
    pub facets: Facets,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Facets {
    pub types: Vec<(String, u64)>,
    pub projects: Vec<(String, u64)>,
}

struct Active {
    name: String,
    index: Index,
    reader: IndexReader,
    parser: tantivy::query::QueryParser,
}

struct Inner {
    root: PathBuf,
    fields: Fields,
    active: RwLock<Arc<Active>>,
    checked: Mutex<Instant>,
    writer: Option<mpsc::UnboundedSender<Batch>>,
}

struct Batch {
    changes: Vec<Change>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The search index: readers everywhere, the writer only where tasks run.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

const POINTER: &str = "CURRENT";
/// How often readers look for a swapped index.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const WRITER_HEAP: usize = 50_000_000;
/// Deepest page of results served: tantivy collects `page × per_page` hits to skip to a page,
/// so the page number is what bounds that work.
pub const MAX_PAGE: u64 = 500;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("search index: {e}"))
}

fn read_pointer(root: &Path) -> Option<String> {
    let name = std::fs::read_to_string(root.join(POINTER)).ok()?;
    let name = name.trim();
    (!name.is_empty() && root.join(name).is_dir()).then(|| name.to_owned())
}

fn write_pointer(root: &Path, name: &str) -> Result<()> {
    let tmp = root.join(format!("{POINTER}.{}", std::process::id()));
    std::fs::write(&tmp, name).map_err(internal)?;
    std::fs::rename(&tmp, root.join(POINTER)).map_err(internal)
}

fn fresh_name() -> String {
    format!(
        "v{}-{}",
        schema::VERSION,
        chrono::Utc::now().timestamp_millis()
    )
}

/// Opens the index directory `name`, creating it with the current schema if empty.
fn open_dir(root: &Path, name: &str) -> Result<Index> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let dir_handle = tantivy::directory::MmapDirectory::open(&dir).map_err(internal)?;
    // Small doc-store blocks: showing a hit decompresses one block, so 4 KB instead of the
    // default 16 KB makes each of the 20 hits on a page cheaper to fetch.
    let settings = tantivy::IndexSettings {
        docstore_blocksize: 4096,
        ..tantivy::IndexSettings::default()
    };
    tantivy::IndexBuilder::new()
        .schema(schema::build().0)
        .settings(settings)
        .open_or_create(dir_handle)
        .map_err(internal)
}

fn activate(root: &Path, name: &str, fields: &Fields) -> Result<Active> {
    let index = open_dir(root, name)?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::OnCommitWithDelay)
        .try_into()
        .map_err(internal)?;
    let parser = query::parser(&index, fields);
    Ok(Active {
        name: name.to_owned(),
        index,
        reader,
        parser,
    })
}

impl SearchIndex {
    /// Opens (creating if needed) the index under `root`. With `writable`, this process owns
    /// the single writer.
    pub fn open(root: &Path, writable: bool) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(internal)?;
        let (_, fields) = schema::build();
        let prefix = format!("v{}-", schema::VERSION);
        let name = match read_pointer(root) {
            Some(n) if n.starts_with(&prefix) => n,
            other => {
                if other.is_some() {
                    tracing::warn!(
                        "search index has an older schema; starting a new one (run `forge reindex` to fill it)"
                    );
                }
                let n = fresh_name();
                open_dir(root, &n)?;
                write_pointer(root, &n)?;
                n
            }
        };
        let active = activate(root, &name, &fields)?;
        // Take the writer lock now, so a process knows at start whether it is the writer.
        let writer = if writable {
            match active.index.writer_with_num_threads(1, WRITER_HEAP) {
                Ok(w) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    spawn_writer(root.to_owned(), rx, Some((name.clone(), w)));
                    Some(tx)
                }
                Err(tantivy::TantivyError::LockFailure(..)) => {
                    tracing::info!(
                        "another process writes the search index; search tasks go to it"
                    );
                    None
                }
                Err(e) => return Err(internal(e)),
            }
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                fields,
                active: RwLock::new(Arc::new(active)),
                checked: Mutex::new(Instant::now()),
                writer,
            }),
        })
    }

    /// Whether this process holds the index writer (and so runs the indexing tasks).
    pub fn is_writer(&self) -> bool {
        self.inner.writer.is_some()
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The live index, re-opened when `forge reindex` swapped it.
    fn active(&self) -> Result<Arc<Active>> {
        let due = {
            let mut checked = self.inner.checked.lock().map_err(internal)?;
            if checked.elapsed() >= CHECK_EVERY {
                *checked = Instant::now();
                true
            } else {
                false
            }
        };
        let current = self.inner.active.read().map_err(internal)?.clone();
        if due
            && let Some(name) = read_pointer(&self.inner.root)
            && name != current.name
        {
            let fresh = Arc::new(activate(&self.inner.root, &name, &self.inner.fields)?);
            *self.inner.active.write().map_err(internal)? = fresh.clone();
            return Ok(fresh);
        }
        Ok(current)
    }

    /// Applies changes and returns once they are committed (searchable within a second).
    pub async fn apply(&self, changes: Vec<Change>) -> Result<()> {
        let Some(writer) = &self.inner.writer else {
            return Err(Error::Internal(
                "this process does not write the search index".into(),
            ));
        };
        if changes.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        writer
            .send(Batch { changes, done })
            .map_err(|_| internal("writer stopped"))?;
        wait.await
            .map_err(|_| internal("writer stopped"))?
            .map_err(internal)?;
        // Our own commit: make it visible here at once rather than at the next poll.
        if let Ok(active) = self.active() {
            let _ = active.reader.reload();
        }
        Ok(())
    }

    /// Runs a search. Fast enough (well under a millisecond for most queries) to run inline.
    pub fn search(&self, req: &SearchRequest, access: &Access) -> Result<Results> {
        let active = self.active()?;
        let fields = &self.inner.fields;
        let searcher = active.reader.searcher();
        query::check(&req.q).map_err(Error::BadRequest)?;
        let paging = crate::paging::Paging::new(
            Some(req.page as u64),
            Some(req.per_page as u64),
            20,
            MAX_PAGE,
        )?;
        let query = query::build(req, access, fields, &active.parser, &searcher)
            .map_err(|m| Error::invalid("q", m))?;
        let (per_page, offset) = (paging.per_page, paging.offset());
        let mut facets = FacetCollector::for_field("facet");
        facets.add_facet("/type");
        facets.add_facet("/project");
        let top = TopDocs::with_limit(per_page)
            .and_offset(offset)
            .order_by_score();
        let (docs, total, facet_counts) =
            searcher
                .search(&*query, &(top, Count, facets))
                .map_err(|e| match e {
                    // Asked of a field in a way it cannot answer (e.g. `text:*`): the query's
                    // fault, not the server's.
                    tantivy::TantivyError::SchemaError(_)
                    | tantivy::TantivyError::InvalidArgument(_)
                    | tantivy::TantivyError::FieldNotFound(_) => {
                        Error::bad_request(format!("the query cannot be run: {e}"))
                    }
                    other => internal(other),
                })?;
        let snippets = SnippetGenerator::create(&searcher, &*query, fields.text)
            .map(|mut g| {
                g.set_max_num_chars(220);
                g
            })
            .ok();
        let needles = query_words(&req.q);
        let mut hits = Vec::with_capacity(docs.len());
        for (_score, addr) in docs {
            let doc: TantivyDocument = searcher.doc(addr).map_err(internal)?;
            let text = |f| {
                doc.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let body = text(fields.text);
            let window = snippet_window(&body, &needles);
            let snippet = match snippets.as_ref().map(|g| g.snippet(window)) {
                Some(s) if !s.highlighted().is_empty() => s.to_html(),
                _ => {
                    let lead: String = window.chars().take(200).collect();
                    crate::markdown::escape(&lead)
                }
            };
            let date = doc
                .get_first(fields.date)
                .and_then(|v| v.as_datetime())
                .map(|d| {
                    chrono::DateTime::from_timestamp(d.into_timestamp_secs(), 0)
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            hits.push(Hit {
                kind: text(fields.kind),
                project: text(fields.project),
                mount: text(fields.tool),
                url: text(fields.url),
                title: text(fields.title),
                snippet,
                author: text(fields.author),
                date,
            });
        }
        let count = |root: &str| -> Vec<(String, u64)> {
            facet_counts
                .get(root)
                .map(|(f, n)| {
                    let s = f.to_path_string();
                    let last = s.rsplit('/').next().unwrap_or_default().to_owned();
                    (last, n)
                })
                .collect()
        };
        let mut projects = count("/project");
        projects.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        projects.truncate(20);
        Ok(Results {
            total,
            hits,
            facets: Facets {
                types: count("/type"),
                projects,
            },
        })
    }

    /// Number of documents in the live index.
    pub fn num_docs(&self) -> Result<u64> {
        let active = self.active()?;
        active.reader.reload().map_err(internal)?;
        Ok(active.reader.searcher().num_docs())
    }
}

/// Lower-cased words of the query (field names and operators dropped), to find where in a
/// long text the snippet should come from.
fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric() && c != ':')
        .map(|w| w.rsplit(':').next().unwrap_or_default().to_lowercase())
        .filter(|w| w.len() > 1 && !matches!(w.as_str(), "and" | "or" | "not"))
        .collect()
}

/// Snippets tokenize the text they are given, so a hit's text is cut to about 500 bytes
/// around the first place a query word occurs (or its start): the cost stays flat however
/// long the page is.
fn snippet_window<'a>(text: &'a str, words: &[String]) -> &'a str {
    const BEFORE: usize = 150;
    const SIZE: usize = 480;
    if text.len() <= SIZE {
        return text;
    }
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths; only trust positions when it did not.
    let at = if lower.len() == text.len() {
        words
            .iter()
            .filter_map(|w| lower.find(w.as_str()))
            .min()
            .unwrap_or(0)
    } else {
        0
    };
    let floor = |mut i: usize| {
        while i > 0 && !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(at.saturating_sub(BEFORE));
    let end = floor((start + SIZE).min(text.len()));
    &text[start..end]
}

fn to_document(f: &Fields, d: &IndexDoc) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.key, &d.key);
    doc.add_text(f.kind, &d.kind);
    doc.add_text(f.project, &d.project);
    doc.add_text(f.project_id, &d.project_id);
    doc.add_text(f.tool, &d.tool);
    doc.add_text(f.tool_id, &d.tool_id);
    doc.add_text(f.title, &d.title);
    doc.add_text(f.text, &d.text);
    doc.add_text(f.author, &d.author);
    doc.add_date(
        f.date,
        DateTime::from_timestamp_millis(d.date.timestamp_millis()),
    );
    doc.add_text(f.url, &d.url);
    for t in &d.read {
        doc.add_text(f.read, t);
    }
    doc.add_facet(f.facet, Facet::from_path(["type", d.kind.as_str()]));
    doc.add_facet(f.facet, Facet::from_path(["project", d.project.as_str()]));
    doc
}

fn apply_change(w: &IndexWriter, f: &Fields, change: &Change) -> tantivy::Result<()> {
    match change {
        Change::Upsert(d) => {
            w.delete_term(Term::from_field_text(f.key, &d.key));
            w.add_document(to_document(f, d))?;
        }
        Change::Delete(key) => {
            w.delete_term(Term::from_field_text(f.key, key));
        }
        Change::DeleteProject(id) => {
            w.delete_term(Term::from_field_text(f.project_id, id));
        }
        Change::DeleteTool(id) => {
            w.delete_term(Term::from_field_text(f.tool_id, id));
        }
    }
    Ok(())
}

/// The single writer: drains whatever batches are waiting, applies them, commits once, and
/// follows `CURRENT` when a rebuild swapped the index.
fn spawn_writer(
    root: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    initial: Option<(String, IndexWriter)>,
) {
    let spawned = std::thread::Builder::new()
        .name("search-writer".into())
        .spawn(move || {
            let (_, fields) = schema::build();
            let mut current = initial;
            while let Some(first) = rx.blocking_recv() {
                let mut batches = vec![first];
                while batches.len() < 512 {
                    match rx.try_recv() {
                        Ok(b) => batches.push(b),
                        Err(_) => break,
                    }
                }
                let result = write_batches(&root, &fields, &mut current, &batches);
                if let Err(e) = &result {
                    tracing::error!(error = %e, "search index write failed");
                    // A broken writer is dropped; the next batch opens a fresh one.
                    current = None;
                }
                for b in batches {
                    let _ = b.done.send(result.clone());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the search writer");
    }
}

fn write_batches(
    root: &Path,
    fields: &Fields,
    current: &mut Option<(String, IndexWriter)>,
    batches: &[Batch],
) -> Result<(), String> {
    let name = read_pointer(root).ok_or("the search index has no CURRENT pointer")?;
    if current.as_ref().is_none_or(|(n, _)| *n != name) {
        if let Some((old, w)) = current.take() {
            drop(w);
            // The rebuild replaced it and we held its only writer: nobody writes there again.
            if old != name {
                let _ = std::fs::remove_dir_all(root.join(&old));
                tracing::info!(old, new = %name, "search index swapped");
            }
        }
        let index = open_dir(root, &name).map_err(|e| e.to_string())?;
        let w = index
            .writer_with_num_threads(1, WRITER_HEAP)
            .map_err(|e| e.to_string())?;
        *current = Some((name, w));
    }
    let Some((_, w)) = current.as_mut() else {
        return Err("no writer".into());
    };
    for b in batches {
        for c in &b.changes {
            apply_change(w, fields, c).map_err(|e| e.to_string())?;
        }
    }
    w.commit().map_err(|e| e.to_string())?;
    Ok(())
}

/// Builds a complete new index beside the live one (`forge reindex`), then makes it live.
pub struct Rebuild {
    root: PathBuf,
    index: Index,
    name: String,
    fields: Fields,
    writer: IndexWriter,
    pending: usize,
}

impl Rebuild {
    pub fn start(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(internal)?;
        let live = read_pointer(root);
        // Left-overs of interrupted rebuilds: any directory that is not live.
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && Some(&n) != live.as_ref() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let name = fresh_name();
        let index = open_dir(root, &name)?;
        let writer = index
            .writer_with_num_threads(2, 2 * WRITER_HEAP)
            .map_err(internal)?;
        Ok(Self {
            root: root.to_owned(),
            index,
            name,
            fields: schema::build().1,
            writer,
            pending: 0,
        })
    }

    pub fn add(&mut self, doc: &IndexDoc) -> Result<()> {
        self.writer
            .add_document(to_document(&self.fields, doc))
            .map_err(internal)?;
        self.pending += 1;
        Ok(())
    }

    /// Commits and points `CURRENT` at the new index.
    pub fn finish(mut self) -> Result<String> {
        self.writer.commit().map_err(internal)?;
        // One segment: every query pays a fixed cost per segment, and this index is read
        // far more than it is written.
        let ids = self.index.searchable_segment_ids().map_err(internal)?;
        if ids.len() > 1 {
            self.writer.merge(&ids).wait().map_err(internal)?;
        }
        self.writer.wait_merging_threads().map_err(internal)?;
        write_pointer(&self.root, &self.name)?;
        Ok(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::{query_words, snippet_window};

    #[test]
    fn snippets_come_from_around_the_first_match() {
        let text = format!("{} needle here {}", "a ".repeat(2000), "b ".repeat(2000));
        let words = query_words("title:xy NEEDLE");
        assert_eq!(words, vec!["xy", "needle"]);
        let w = snippet_window(&text, &words);
        assert!(w.len() <= 480 && w.contains("needle here"), "{w}");
        // Short texts are used whole; multi-byte text is cut on character boundaries.
        assert_eq!(snippet_window("short", &words), "short");
        let wide = "é".repeat(1000);
        assert!(snippet_window(&wide, &words).chars().all(|c| c == 'é'));
    }
}
