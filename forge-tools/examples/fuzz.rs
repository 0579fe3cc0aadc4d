//! A fuzzer for the parsers of outside input, without cargo-fuzz (which needs nightly): for
//! one target, generates inputs until the time is up, from proptest strategies and from
//! mutations of a small seed corpus (splices, repeated slices that deepen nesting, inserted
//! tokens, byte flips). Each input is written to `<dir>/<target>.current` before it runs, so a
//! crash that kills the process (a stack overflow aborts) leaves it behind; panics are caught
//! and their inputs saved as `<dir>/<target>-crash-<n>`, inputs slower than a second as
//! `<dir>/<target>-slow-<n>`. Everything runs on a thread with an async worker's stack
//! (2 MiB), where the server would run it. `bench/fuzz.sh` runs every target in turn.
//!
//! Usage: fuzz --list | fuzz <target> <seconds> [artifact dir, default artifacts/fuzz]
//!        fuzz --replay <target> <file>   (runs one saved input)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/html_safety.rs"]
mod html_safety;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use forge_tools::Error;
use forge_tools::markdown;
use forge_tools::refs::{self, Resolution, ResolvedRefs};
use forge_tools::search::{Access, Change, IndexDoc, SearchIndex, SearchRequest};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const WORKER_STACK: usize = 2 << 20;
/// Largest input tried: above the text limit (1 MB) and the render limit (2 MB).
const MAX_INPUT: usize = 2_500_000;
/// An input taking longer than this is saved as slow.
const SLOW: Duration = Duration::from_secs(1);

const TARGETS: &[&str] = &[
    "markdown",
    "markdown_refs",
    "plain_text",
    "refs",
    "names",
    "search",
    "diff",
    "merge",
    "highlight",
    "pktline",
    "tracker_query",
];

// ---------------------------------------------------------------------------------------------
// Targets: what each does with one input
// ---------------------------------------------------------------------------------------------

fn resolved() -> ResolvedRefs {
    let mut m = ResolvedRefs::new();
    m.insert(
        "Home".into(),
        Resolution::Link {
            url: "/p/x/wiki/Home/".into(),
        },
    );
    m.insert(
        "New Page".into(),
        Resolution::Create {
            url: "/p/x/wiki/New%20Page/edit".into(),
        },
    );
    m.insert("#12".into(), Resolution::Text);
    m
}

/// A failed check (not a panic of the code under test, but reported the same way).
fn check(ok: bool, what: &str) {
    assert!(ok, "property violated: {what}");
}

/// No script, frame, event handler or script URL in any tag of the output.
fn no_script(html: &str) {
    if let Some(tag) = html_safety::unsafe_tag(html) {
        check(false, &format!("unsafe tag in rendered output: <{tag}>"));
    }
}

/// Splits an input into `n` parts at NUL characters (for targets with several arguments).
fn parts(input: &str, n: usize) -> Vec<&str> {
    let mut v: Vec<&str> = input.splitn(n, '\u{0}').collect();
    while v.len() < n {
        v.push("");
    }
    v
}

/// A tracker configuration with a custom field of each type.
fn tracker_config() -> &'static forge_tools::tools::tracker::config::TrackerConfig {
    use forge_tools::tools::tracker::config::{CustomField, FieldType, TrackerConfig};
    static CONFIG: std::sync::OnceLock<TrackerConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut c = TrackerConfig::default();
        for (i, kind) in FieldType::ALL.into_iter().enumerate() {
            c.custom_fields.push(CustomField {
                name: format!("_f{i}"),
                label: format!("Field {i}"),
                kind,
                required: false,
                default: String::new(),
                options: vec!["low".into(), "high".into()],
                show_in_list: true,
            });
        }
        c
    })
}

fn search_index() -> &'static SearchIndex {
    static INDEX: std::sync::OnceLock<(SearchIndex, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    &INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let index = SearchIndex::open(dir.path(), true).unwrap();
            let changes = [
                "zucchini patch in August",
                "cargo build then forge serve",
                "refactor the parser",
            ]
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Change::Upsert(IndexDoc {
                    key: format!("k{i}"),
                    kind: if i == 2 { "commit" } else { "wiki" }.into(),
                    project: "garden".into(),
                    project_id: "p1".into(),
                    tool: "wiki".into(),
                    tool_id: "t1".into(),
                    title: format!("Page {i}"),
                    text: (*text).into(),
                    author: "ann".into(),
                    date: bson::DateTime::now(),
                    url: format!("/p/garden/wiki/Page{i}/"),
                    read: vec!["*anonymous".into()],
                })
            })
            .collect();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(index.apply(changes))
                .unwrap();
            (index, dir)
        })
        .0
}

fn run_target(target: &str, input: &str) {
    match target {
        "markdown" => no_script(&markdown::render(input)),
        "markdown_refs" => no_script(&markdown::render_with_refs(input, &resolved())),
        "plain_text" => {
            let _ = markdown::to_plain_text(input);
        }
        "refs" => {
            let _ = refs::parse(input);
            for key in refs::scan(input) {
                check(refs::parse(&key).is_some(), "scan found a non-reference");
            }
        }
        "names" => {
            let ok = forge_tools::tools::wiki::pages::check_name(input).is_ok();
            check(
                ok == refs::page_name_ok(input),
                "check_name != page_name_ok",
            );
            let _ = forge_tools::tools::wiki::encode_name(input);
            let _ = forge_tools::tools::wiki::pages::parse_labels(input);
            let _ = forge_tools::names::check_shortname(input);
            let _ = forge_tools::names::check_mount(input);
            if forge_tools::tools::repo::browse::check_rev(input).is_ok() {
                check(!input.contains(".."), "check_rev passed ..");
            }
            if forge_tools::tools::repo::browse::check_path(input).is_ok() {
                check(!input.split('/').any(|s| s == ".."), "check_path passed ..");
            }
        }
        "search" => {
            // `q \0 page \0 per_page \0 project \0 type`
            let p = parts(input, 5);
            let num = |s: &str, d: usize| s.trim().parse::<usize>().unwrap_or(d);
            let opt = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
            let req = SearchRequest {
                q: p[0].to_owned(),
                page: num(p[1], 1),
                per_page: num(p[2], 20),
                project: opt(p[3]),
                kind: opt(p[4]),
                tool: None,
            };
            for access in [Access::All, Access::Tokens(vec!["*anonymous".into()])] {
                match search_index().search(&req, &access) {
                    Ok(_) | Err(Error::Invalid(_) | Error::BadRequest(_)) => {}
                    Err(e) => check(false, &format!("search answered a server error: {e}")),
                }
            }
        }
        "tracker_query" => {
            // `query \0 sort`, against a tracker with one field of each type.
            use forge_tools::tools::tracker::{actions, query};
            let p = parts(input, 2);
            let config = tracker_config();
            if let Ok(q) = query::parse(p[0], config, Some("me")) {
                check(
                    q.filter().to_vec().is_ok(),
                    "a parsed query made a filter that is not valid BSON",
                );
            }
            let _ = query::sort(p[1], config);
            for (_, n) in actions::fixes(input) {
                check(n > 0, "fixes found a ticket number below 1");
            }
        }
        "diff" => {
            let p = parts(input, 2);
            let _ = forge_tools::diff::unified(p[0], p[1]);
        }
        "merge" => {
            let p = parts(input, 3);
            let _ = forge_tools::diff::merge(p[0], p[1], p[2]);
        }
        "highlight" => {
            // `lang \0 code`
            let p = parts(input, 2);
            if let Some(h) = markdown::highlight::highlight(p[1], p[0]) {
                no_script(&h);
            }
            let _ = markdown::highlight::highlight_file(&format!("x.{}", p[0]), p[1]);
        }
        "pktline" => {
            use forge_tools::tools::repo::pktline::{self, Request};
            let data = input.as_bytes();
            for kind in [
                Request::UploadPack,
                Request::UploadPackV2,
                Request::ReceivePack,
            ] {
                let in_memory = pktline::check(kind, data);
                let mut reader = data;
                let streamed =
                    futures::executor::block_on(pktline::read_section(&mut reader, kind));
                match (&in_memory, &streamed) {
                    (Ok(a), Ok((read, b))) => check(
                        a == b && a.consumed <= data.len() && read[..] == data[..a.consumed],
                        "pkt-line readers disagree on a section",
                    ),
                    (Err(a), Err(b)) => check(a == b, "pkt-line readers disagree on an error"),
                    _ => check(
                        false,
                        "pkt-line readers disagree: one accepted, one refused",
                    ),
                }
            }
        }
        other => panic!("unknown target {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs: seeds, tokens, strategies, mutations
// ---------------------------------------------------------------------------------------------

/// Fragments with meaning to some parser; inserted by the mutator and joined by strategies.
const TOKENS: &[&str] = &[
    "*",
    "**",
    "_",
    "__",
    "`",
    "```",
    "~~",
    "[",
    "]",
    "[[",
    "]]",
    "(",
    ")",
    "![",
    "](u)",
    "<",
    ">",
    "</",
    "/>",
    "#",
    "|",
    "-",
    "+",
    "1.",
    "\n",
    "\n\n",
    "    ",
    "\t",
    " ",
    "&",
    "&#x",
    "\\",
    "\"",
    "'",
    ":",
    "http://x.y",
    "www.x.y",
    "[^1]",
    "[x]: /u",
    "<!--",
    "-->",
    "<?",
    "<![CDATA[",
    "<em>",
    "</em>",
    "<div>",
    "</div>",
    "<script>",
    "</script>",
    "<a href=\"",
    "javascript:",
    "onerror=",
    "- [ ] ",
    "| - |",
    "[#1]",
    "[a:b:c]",
    "[TOC]",
    "é",
    "\u{202e}",
    "\u{0}",
    "\r\n",
    "{",
    "}",
    "^",
    "~",
    "!",
    "OR",
    "AND",
    "NOT",
    "TO",
    "title:",
    "text:",
    "type:",
    "*:*",
    "..",
    "/",
    "@{",
    "-",
    "%",
    "?",
    "ab12cd3",
    "> ",
    "- ",
    "* ",
];

fn seeds(target: &str) -> Vec<String> {
    let mut s: Vec<String> = vec![
        "# Title\n\nSome *emphasis*, **strong**, `code` and a [link](http://x.y).\n".into(),
        "> quoted\n> > twice *with* **marks**\n\n- a\n  - b\n    - c\n".into(),
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n```rust\nfn main() {}\n```\n".into(),
        "See [Home], [[New Page|the new one]], [wiki:Home], [#12] and [abc1234].\n[TOC]\n".into(),
        "<details><summary>s</summary><em>x</em></details>\n<script>alert(1)</script>\n".into(),
        "*a **b *c **d text** c* b** a*".into(),
        "[a [b [c](u)](u)](u) ![i](x.png \"t\")".into(),
    ];
    match target {
        "tracker_query" => {
            s = vec![
                "status:open label:bug\u{0}summary desc".into(),
                "-label:wontfix \"exact words\" assigned_to:me\u{0}-modified".into(),
                "_f1:>=3 _f6:2026-01-01..2026-12-31 ticket:10..20\u{0}_f3".into(),
                "fixes [#12], closes tickets:#3 and resolves #0\u{0}".into(),
                "milestone:\"1.0 beta\" private:true votes:>2\u{0}votes asc".into(),
            ];
        }
        "search" => {
            s = vec![
                "zucchini".into(),
                "\"keep a\" -x\u{0}2\u{0}20".into(),
                "title:page OR text:forge*\u{0}1\u{0}5\u{0}garden\u{0}wiki".into(),
                "(a OR (b AND -c)) NOT d".into(),
                "[a TO z] {1 TO 5} x^2 y~1".into(),
                "text:*".into(),
                "zuc*\u{0}500\u{0}100".into(),
            ];
        }
        "names" => {
            s = vec![
                "Home".into(),
                "Install Guide".into(),
                "main".into(),
                "refs/heads/feature/x".into(),
                "src/lib.rs".into(),
                "a, b, c".into(),
                "my-project".into(),
            ];
        }
        "diff" | "merge" => {
            s = vec![
                "a\nb\nc\n\u{0}a\nB\nc\n\u{0}a\nb\nC\n".into(),
                "one\ntwo three\nfour\n\u{0}one\ntwo THREE\nfour\nfive\n\u{0}x\n".into(),
                "\u{0}\u{0}".into(),
                "same\u{0}same\u{0}same".into(),
            ];
        }
        "pktline" => {
            let a = "1".repeat(40);
            let b = "2".repeat(40);
            let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
            s = vec![
                format!("{}0000", pkt(&format!("want {a}\n"))),
                format!(
                    "{}{}{}0000",
                    pkt(&format!("want {a} side-band-64k ofs-delta\n")),
                    pkt(&format!("want {b}\n")),
                    pkt("deepen 1\n")
                ),
                format!(
                    "{}0001{}{}{}0000",
                    pkt("command=fetch\n"),
                    pkt("thin-pack\n"),
                    pkt(&format!("want {a}\n")),
                    pkt(&format!("have {b}\n"))
                ),
                format!(
                    "{}0000PACK",
                    pkt(&format!("{a} {b} refs/heads/main\u{0}report-status\n"))
                ),
                format!(
                    "{}0001{}0000",
                    pkt("command=ls-refs\n"),
                    pkt("ref-prefix refs/heads/\n")
                ),
                "0000".into(),
            ];
        }
        "highlight" => {
            s = vec![
                "rust\u{0}fn main() { let x = \"s\"; }\n".into(),
                "html\u{0}<div class=\"x\"><script>alert(1)</script></div>\n".into(),
                "py\u{0}def f(x):\n    return '''doc'''\n".into(),
                "js\u{0}/* c */ var r = /a+b/g; `t${x}`\n".into(),
                "c\u{0}#include <stdio.h>\nint main(){}\n".into(),
            ];
        }
        _ => {}
    }
    s
}

/// Generated inputs: joined tokens, arbitrary strings, and deep nestings.
fn strategy(target: &str) -> BoxedStrategy<String> {
    let joined = prop::collection::vec(prop::sample::select(TOKENS), 0..300)
        .prop_map(|t| t.concat())
        .boxed();
    let nesting = (
        prop::collection::vec(prop::sample::select(TOKENS), 1..4),
        0usize..200_000,
        prop::collection::vec(prop::sample::select(TOKENS), 0..4),
    )
        .prop_map(|(open, n, close)| {
            let o = open.concat();
            let c = close.concat();
            let n = n.min(MAX_INPUT / (o.len() + c.len() + 1).max(1));
            format!("{}x{}", o.repeat(n), c.repeat(n))
        })
        .boxed();
    match target {
        "search" => (
            prop_oneof![joined.clone(), any::<String>(), nesting.clone()],
            prop_oneof![Just(1usize), 0usize..1000, any::<usize>()],
            prop_oneof![Just(20usize), 0usize..200, any::<usize>()],
            "[a-z*:() ]{0,8}",
            "[a-z*:() ]{0,8}",
        )
            .prop_map(|(q, p, pp, pr, k)| format!("{q}\u{0}{p}\u{0}{pp}\u{0}{pr}\u{0}{k}"))
            .boxed(),
        "diff" | "merge" => prop::collection::vec(
            prop_oneof![
                prop::collection::vec(
                    prop::sample::select(vec!["a\n", "b\n", "c\n", "\n", "x", "\r\n", "é\n"]),
                    0..60
                )
                .prop_map(|v| v.concat()),
                any::<String>(),
            ],
            3,
        )
        .prop_map(|v| v.join("\u{0}"))
        .boxed(),
        "highlight" => (
            prop::sample::select(vec![
                "rust", "html", "js", "py", "c", "sh", "md", "xml", "css", "sql", "x",
            ]),
            prop_oneof![joined, any::<String>()],
        )
            .prop_map(|(l, c)| format!("{l}\u{0}{c}"))
            .boxed(),
        "names" | "refs" => prop_oneof![joined, any::<String>()].boxed(),
        "tracker_query" => (prop_oneof![joined.clone(), any::<String>()], prop_oneof![joined, any::<String>()])
            .prop_map(|(q, s)| format!("{q}\u{0}{s}"))
            .boxed(),
        "pktline" => prop::collection::vec(
            prop_oneof![
                Just("0000".to_owned()),
                Just("0001".to_owned()),
                Just("0002".to_owned()),
                Just("fff0".to_owned()),
                "(want|have|shallow|deepen|deepen-not|filter|command=(fetch|ls-refs)|want-ref|ref-prefix|push-cert|[0-9a-f]{40} [0-9a-f]{40}) ?[ -~]{0,60}\n?"
                    .prop_map(|s| format!("{:04x}{s}", s.len() + 4)),
                any::<String>().prop_map(|s| format!("{:04x}{s}", s.len() + 4)),
                "[0-9a-fA-Fz]{0,6}",
            ],
            0..40,
        )
        .prop_map(|p| p.concat())
        .boxed(),
        _ => prop_oneof![2 => joined, 1 => any::<String>(), 2 => nesting].boxed(),
    }
}

/// A tiny xorshift generator for the mutator (proptest's own RNG drives the strategies).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One to four random edits of `input`, never longer than [`MAX_INPUT`].
fn mutate(input: &str, pool: &[String], rng: &mut Rng) -> String {
    let mut s = input.to_owned();
    for _ in 0..=rng.below(4) {
        let len = s.len();
        let a = boundary(&s, rng.below(len + 1));
        let b = boundary(&s, a + rng.below(len - a + 1).min(64));
        match rng.below(7) {
            // Insert a token.
            0 => s.insert_str(a, TOKENS[rng.below(TOKENS.len())]),
            // Delete a range.
            1 => s.replace_range(a..b, ""),
            // Repeat a slice many times: deepens whatever nesting it holds.
            2 => {
                let most = if rng.below(4) == 0 { 50_000 } else { 50 };
                let times = 1 + rng.below(most);
                let slice = s[a..b].to_owned();
                let times = times.min(MAX_INPUT / slice.len().max(1));
                s.insert_str(b, &slice.repeat(times));
            }
            // Flip a byte (kept valid UTF-8).
            3 => {
                let mut bytes = s.into_bytes();
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
                s = String::from_utf8_lossy(&bytes).into_owned();
            }
            // Splice in part of another input.
            4 => {
                let other = &pool[rng.below(pool.len())];
                let oa = boundary(other, rng.below(other.len() + 1));
                let ob = boundary(other, oa + rng.below(other.len() - oa + 1));
                s.insert_str(a, &other[oa..ob]);
            }
            // Wrap a range in a token pair.
            5 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                s.insert_str(b, t);
                s.insert_str(a, t);
            }
            // Truncate.
            _ => s.truncate(a),
        }
        if s.len() > MAX_INPUT {
            let cut = boundary(&s, MAX_INPUT);
            s.truncate(cut);
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    inputs: u64,
    crashes: u64,
    slow: u64,
    slowest: Duration,
    largest: usize,
    bytes: u64,
}

fn save(dir: &Path, name: &str, input: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::write(&path, input);
    path
}

/// The message of the last panic (set by the hook, read after `catch_unwind`).
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn fuzz(target: &str, budget: Duration, dir: &Path) -> Stats {
    let mut stats = Stats::default();
    let current = dir.join(format!("{target}.current"));
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes()),
    );
    let strategy = strategy(target);
    let mut rng = Rng(u64::from_le_bytes(seed_bytes()[..8].try_into().unwrap()) | 1);
    let mut pool = seeds(target);
    let started = Instant::now();
    // Warm up (index, syntax sets) outside the timing of the first input.
    let _ = catch_unwind(|| run_target(target, "warm up"));
    while started.elapsed() < budget {
        let input = match stats.inputs % 3 {
            0 => match strategy.new_tree(&mut runner) {
                Ok(tree) => tree.current(),
                Err(_) => continue,
            },
            _ => {
                let base = pool[rng.below(pool.len())].clone();
                mutate(&base, &pool, &mut rng)
            }
        };
        // Keep a bounded pool of recent mutants to mutate further.
        if input.len() < 100_000 {
            if pool.len() < 512 {
                pool.push(input.clone());
            } else {
                let i = rng.below(pool.len());
                pool[i] = input.clone();
            }
        }
        let _ = std::fs::write(&current, &input);
        stats.inputs += 1;
        stats.bytes += input.len() as u64;
        stats.largest = stats.largest.max(input.len());
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run_target(target, &input)));
        let took = t0.elapsed();
        stats.slowest = stats.slowest.max(took);
        if result.is_err() {
            stats.crashes += 1;
            let path = save(dir, &format!("{target}-crash-{}", stats.crashes), &input);
            let msg = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
            println!(
                "  CRASH {target}: {} ({} bytes): {msg}",
                path.display(),
                input.len()
            );
        } else if took > SLOW {
            stats.slow += 1;
            if stats.slow <= 5 {
                let path = save(dir, &format!("{target}-slow-{}", stats.slow), &input);
                println!(
                    "  SLOW {target}: {took:?} on {} ({} bytes)",
                    path.display(),
                    input.len()
                );
            }
        }
    }
    let _ = std::fs::remove_file(&current);
    stats
}

fn seed_bytes() -> [u8; 32] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u128>().ok())
        .unwrap_or(nanos);
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&seed.to_le_bytes());
    out[16..].copy_from_slice(&seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    out
}

fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Panics are expected output here: remember the message instead of printing a backtrace.
    let quiet_hook = {
        move |info: &std::panic::PanicHookInfo<'_>| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| {
                    info.payload()
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                })
                .unwrap_or_default();
            let loc = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if let Ok(mut m) = LAST_PANIC.lock() {
                *m = format!("{msg} at {loc}");
            }
        }
    };
    match args.first().map(String::as_str) {
        Some("--list") => {
            for t in TARGETS {
                println!("{t}");
            }
        }
        Some("--replay") => {
            let (Some(target), Some(file)) = (args.get(1).cloned(), args.get(2)) else {
                eprintln!("usage: fuzz --replay <target> <file>");
                std::process::exit(2);
            };
            let input = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
            let t0 = Instant::now();
            on_worker_stack(move || run_target(&target, &input));
            println!("ok in {:?}", t0.elapsed());
        }
        Some(target) if TARGETS.contains(&target) => {
            let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
            let dir = PathBuf::from(args.get(2).map_or("artifacts/fuzz", String::as_str));
            std::fs::create_dir_all(&dir).unwrap();
            std::panic::set_hook(Box::new(quiet_hook));
            let target = target.to_owned();
            let t = target.clone();
            let stats = on_worker_stack(move || fuzz(&t, Duration::from_secs(secs), &dir));
            println!(
                "{target:<14} inputs {:>9}  crashes {:>3}  slow(>1s) {:>3}  slowest {:>8.1?}  largest {:>8} B  total {:>6} MB",
                stats.inputs,
                stats.crashes,
                stats.slow,
                stats.slowest,
                stats.largest,
                stats.bytes / 1_000_000
            );
            if stats.crashes > 0 {
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: fuzz --list | fuzz <target> <seconds> [dir] | fuzz --replay <target> <file>"
            );
            eprintln!("targets: {}", TARGETS.join(" "));
            std::process::exit(2);
        }
    }
}
