//! [`SearchIndex`]: the live index as every process holds it — readers that follow a swapped
//! index within a second, searches, and (in the process that owns it) the way to the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::schema::Value;
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument};
use tokio::sync::{mpsc, oneshot};

use super::layout::{WRITER_HEAP, fresh_name, internal, open_dir, read_pointer, write_pointer};
use super::model::{Access, Change, Facets, Hit, MAX_PAGE, Results, SearchRequest};
use super::query;
use super::schema::{self, Fields};
use super::snippet::{query_words, snippet_window};
use super::writer::{Batch, spawn_writer};
use crate::error::{Error, Result};

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
    /// Set once this process holds the writer (at start, or when it takes over from a
    /// writer that stopped).
    writer: std::sync::OnceLock<mpsc::UnboundedSender<Batch>>,
    serial: Serial,
}

/// How many stripes the indexing locks hash projects and documents into: enough that
/// unrelated projects rarely wait on each other, bounded whatever the number of projects.
const STRIPES: usize = 64;

/// The order indexing tasks keep. A task reads the store and then applies what it read, so
/// two tasks over the same documents must not interleave: a project re-index that read its
/// pages before a page was saved, and applied its delete-all after that page's own index
/// task, would drop the page from the index for good. So a project re-index excludes every
/// other task of its project, and tasks of single documents exclude each other per document.
struct Serial {
    projects: Vec<tokio::sync::RwLock<()>>,
    docs: Vec<tokio::sync::Mutex<()>>,
}

fn stripe(key: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    usize::try_from(h % STRIPES as u64).unwrap_or(0)
}

/// Held while an indexing task reads and applies; see [`SearchIndex::serialize_docs`].
pub struct IndexingGuard<'a> {
    _project: tokio::sync::RwLockReadGuard<'a, ()>,
    _docs: Vec<tokio::sync::MutexGuard<'a, ()>>,
}

/// The search index: readers everywhere, the writer only where tasks run.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

/// How often readers look for a swapped index.
const CHECK_EVERY: Duration = Duration::from_secs(1);

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
        let index = Self {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                fields,
                active: RwLock::new(Arc::new(active)),
                checked: Mutex::new(Instant::now()),
                writer: std::sync::OnceLock::new(),
                serial: Serial {
                    projects: (0..STRIPES).map(|_| tokio::sync::RwLock::new(())).collect(),
                    docs: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
                },
            }),
        };
        // Take the writer lock now, so a process knows at start whether it is the writer.
        if writable && !index.try_take_writer()? {
            tracing::info!("another process writes the search index; search tasks go to it");
        }
        Ok(index)
    }

    /// Whether this process holds the index writer (and so runs the indexing tasks).
    pub fn is_writer(&self) -> bool {
        self.inner.writer.get().is_some()
    }

    /// Takes the index writer when nobody holds it (its lock is a file lock, released when
    /// the holder's process ends, however it ends); `true` when this process holds it now.
    pub fn try_take_writer(&self) -> Result<bool> {
        if self.is_writer() {
            return Ok(true);
        }
        let active = self.active()?;
        match active.index.writer_with_num_threads(1, WRITER_HEAP) {
            Ok(w) => {
                let (tx, rx) = mpsc::unbounded_channel();
                spawn_writer(self.inner.root.clone(), rx, Some((active.name.clone(), w)));
                if self.inner.writer.set(tx).is_err() {
                    // Another thread of this process took it first; this writer's channel is
                    // dropped, which ends its task and releases nothing twice.
                    return Ok(true);
                }
                tracing::info!("this process now writes the search index");
                Ok(true)
            }
            Err(tantivy::TantivyError::LockFailure(..)) => Ok(false),
            Err(e) => Err(internal(e)),
        }
    }

    /// Waits until no other task indexes this whole project, nor any of these documents;
    /// hold the guard from reading the store until [`Self::apply`] returned.
    pub async fn serialize_docs(&self, project: &str, keys: &[String]) -> IndexingGuard<'_> {
        let serial = &self.inner.serial;
        let project = serial.projects[stripe(project)].read().await;
        // Ascending stripe order, each once: two tasks sharing stripes cannot deadlock.
        let mut stripes: Vec<usize> = keys.iter().map(|k| stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut docs = Vec::with_capacity(stripes.len());
        for i in stripes {
            docs.push(serial.docs[i].lock().await);
        }
        IndexingGuard {
            _project: project,
            _docs: docs,
        }
    }

    /// Waits until no other task indexes anything of this project; hold the guard from
    /// reading the store until [`Self::apply`] returned.
    pub async fn serialize_project(&self, project: &str) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.inner.serial.projects[stripe(project)].write().await
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
        let Some(writer) = self.inner.writer.get() else {
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
