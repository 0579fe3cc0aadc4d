//! Benchmark: index 100,000 generated wiki-like pages, then time queries (single words,
//! phrases, filtered by project and type, prefixes), each with a viewer's access filter as the
//! site runs them. `bench/search.sh` runs it.
//!
//! Usage: search_bench [documents] [queries per kind]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use forge_tools::search::{Access, IndexDoc, Rebuild, SearchIndex, SearchRequest};

/// A small deterministic generator (no extra dependency for the bench).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A vocabulary of synthetic words whose frequencies follow Zipf's law (s = 1), as words in
/// real text do: a few are everywhere, most are rare.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(size: usize) -> Self {
        const SYL: &[&str] = &[
            "ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pe", "ga", "zu", "ri", "mo",
            "an", "el", "or", "is", "ub", "ex",
        ];
        let words = (0..size)
            .map(|i| {
                let mut w = String::new();
                let mut n = i + SYL.len();
                while n > 0 {
                    w.push_str(SYL[n % SYL.len()]);
                    n /= SYL.len();
                }
                w
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=size)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[self.cumulative.len() - 1];
        let u = (rng.next() % 1_000_000_007) as f64 / 1_000_000_007.0 * total;
        let i = self.cumulative.partition_point(|c| *c < u);
        &self.words[i.min(self.words.len() - 1)]
    }

    /// A word of frequency rank in `range` (0 = most frequent).
    fn ranked(&self, rng: &mut Rng, range: std::ops::Range<usize>) -> &str {
        let i = range.start + (rng.next() % (range.end - range.start) as u64) as usize;
        &self.words[i]
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let per_kind: usize = args.next().map_or(2_000, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("search");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocab = Vocabulary::new(20_000);
    let mut bigrams: Vec<(String, String)> = Vec::new();

    // 200 projects, a quarter of them private (readable by their members only).
    let projects: Vec<(String, bool)> =
        (0..200).map(|i| (format!("proj{i}"), i % 4 == 0)).collect();
    let start = Instant::now();
    let mut rebuild = Rebuild::start(&root).unwrap();
    for i in 0..n {
        let (project, private) = &projects[i % projects.len()];
        let words: Vec<&str> = (0..80 + rng.next() % 520)
            .map(|_| vocab.sample(&mut rng))
            .collect();
        if i % 20 == 0 {
            bigrams.push((words[10].to_owned(), words[11].to_owned()));
        }
        let title = format!("{} {} {i}", vocab.sample(&mut rng), vocab.sample(&mut rng));
        let read = if *private {
            vec![
                format!("p:{project}:member"),
                format!("p:{project}:developer"),
                format!("p:{project}:admin"),
            ]
        } else {
            vec!["anon".to_owned(), "auth".to_owned()]
        };
        rebuild
            .add(&IndexDoc {
                key: format!("wiki:{i}"),
                kind: if i % 10 == 0 { "commit" } else { "wiki" }.into(),
                project: project.clone(),
                project_id: project.clone(),
                tool: "wiki".into(),
                tool_id: format!("{project}-wiki"),
                title,
                text: words.join(" "),
                author: format!("user{}", i % 500),
                date: bson::DateTime::from_millis(1_700_000_000_000 + i as i64 * 1000),
                url: format!("/p/{project}/wiki/Page{i}/"),
                read,
            })
            .unwrap();
    }
    rebuild.finish().unwrap();
    let took = start.elapsed();
    println!(
        "indexed {n} documents in {:.2} s = {:.0} docs/s (index {} MB)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        dir_size(&root) / 1_000_000
    );

    let index = SearchIndex::open(&root, false).unwrap();
    // A logged-in member of two private projects, as the site computes it.
    let access = Access::Tokens(vec![
        "anon".into(),
        "auth".into(),
        "p:proj0:member".into(),
        "p:proj4:developer".into(),
    ]);
    // Phrases as they occur in the pages: of two typical words (what people look for), and of
    // two of the ten commonest words (the "of the" case, the worst there is).
    let rank: std::collections::HashMap<&str, usize> = vocab
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let (common_bigrams, typical_bigrams): (Vec<_>, Vec<_>) = bigrams
        .iter()
        .filter(|(a, b)| (rank[a.as_str()] < 10) == (rank[b.as_str()] < 10))
        .cloned()
        .partition(|(a, _)| rank[a.as_str()] < 10);
    // Typical search terms are neither the commonest words nor hapaxes: ranks 10..2000.
    let typical = 10..2000;
    type Make<'a> = Box<dyn Fn(&mut Rng) -> SearchRequest + 'a>;
    let kinds: Vec<(&str, Make)> = vec![
        (
            "single word",
            Box::new(|r: &mut Rng| req(vocab.ranked(r, typical.clone()), None, None)),
        ),
        (
            "common word (top 10)",
            Box::new(|r: &mut Rng| req(vocab.ranked(r, 0..10), None, None)),
        ),
        (
            "two words (AND)",
            Box::new(|r: &mut Rng| {
                let q = format!(
                    "{} {}",
                    vocab.ranked(r, typical.clone()),
                    vocab.ranked(r, typical.clone())
                );
                req(&q, None, None)
            }),
        ),
        (
            "phrase",
            Box::new(|r: &mut Rng| {
                let (a, b) = &typical_bigrams[(r.next() % typical_bigrams.len() as u64) as usize];
                req(&format!("\"{a} {b}\""), None, None)
            }),
        ),
        (
            "phrase of common words",
            Box::new(|r: &mut Rng| {
                let (a, b) = &common_bigrams[(r.next() % common_bigrams.len() as u64) as usize];
                req(&format!("\"{a} {b}\""), None, None)
            }),
        ),
        (
            "word + project filter",
            Box::new(|r: &mut Rng| {
                req(
                    vocab.ranked(r, typical.clone()),
                    Some(format!("proj{}", r.next() % 200)),
                    None,
                )
            }),
        ),
        (
            "word + type filter",
            Box::new(|r: &mut Rng| {
                req(
                    vocab.ranked(r, typical.clone()),
                    None,
                    Some("commit".into()),
                )
            }),
        ),
        (
            "prefix",
            Box::new(|r: &mut Rng| {
                let w = vocab.ranked(r, typical.clone());
                req(&format!("{}*", &w[..4.min(w.len())]), None, None)
            }),
        ),
    ];
    println!(
        "{:<24} {:>9} {:>9} {:>9}  (top 20 + count + facets + snippets; {per_kind} queries each)",
        "query", "p50", "p99", "max"
    );
    for (name, make) in &kinds {
        // Warm up, then measure.
        for _ in 0..50 {
            index.search(&make(&mut rng), &access).unwrap();
        }
        let mut times: Vec<Duration> = Vec::with_capacity(per_kind);
        for _ in 0..per_kind {
            let q = make(&mut rng);
            let t = Instant::now();
            let r = index.search(&q, &access).unwrap();
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
        println!(
            "{name:<24} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            ms(p(0.5)),
            ms(p(0.99)),
            ms(*times.last().unwrap())
        );
    }
}

fn req(q: &str, project: Option<String>, kind: Option<String>) -> SearchRequest {
    SearchRequest {
        q: q.to_owned(),
        project,
        kind,
        tool: None,
        page: 1,
        per_page: 20,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        dir_size(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
