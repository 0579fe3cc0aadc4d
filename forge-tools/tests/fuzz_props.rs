//! Property tests for every parser of outside input in the domain: markdown (arbitrary text and
//! generated deep nestings of every construct), artifact references and wiki names, labels,
//! short names, git revisions and paths, the search query path, diffs and merges, syntax
//! highlighting, and the git pkt-line reader. None may panic, whatever it is
//! given; rendered HTML never carries a script. Each case stays well under a few seconds in a
//! debug build; `bench/fuzz.sh` runs the same targets for longer.
//!
//! Every property runs on a thread with the stack an async worker has (2 MiB), so a parser that
//! recurses per level of nesting fails here the way it would abort the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    pub mod html_safety;
}
use support::html_safety;

use std::sync::OnceLock;

use forge_tools::Error;
use forge_tools::markdown;
use forge_tools::refs::{self, RefTarget, Resolution, ResolvedRefs};
use forge_tools::search::{Access, Change, IndexDoc, SearchIndex, SearchRequest};
use forge_tools::tools::repo::pktline::{self, Request};
use proptest::prelude::*;

/// The stack of a tokio worker thread (and of cargo's test threads).
const WORKER_STACK: usize = 2 << 20;

/// Runs `f` on a fresh thread with a worker's stack; a panic there is re-raised here with the
/// input's description, a stack overflow aborts the test binary (as it would the server).
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap()
        .join()
    {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// `cases` cases, failures reported but not written next to the sources.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `f` on a worker-sized stack and fails when it is not done within `limit` (the thread is
/// left to finish on its own; the test binary ends without waiting for it).
fn within<T: Send + 'static>(
    limit: std::time::Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done within {limit:?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

// ---------------------------------------------------------------------------------------------
// Input generators
// ---------------------------------------------------------------------------------------------

/// Openers and closers of every markdown and HTML construct that nests.
const NESTERS: &[(&str, &str)] = &[
    ("*a ", " b*"),
    ("**", "**"),
    ("_", "_"),
    ("__", "__"),
    ("~~", "~~"),
    ("*", ""),
    ("[", "](u)"),
    ("[", "]"),
    ("![", "](x.png)"),
    ("[[", "]]"),
    ("`", "`"),
    ("<em>", "</em>"),
    ("<div>", "</div>"),
    ("<span>", ""),
    ("<details><summary>s</summary>", "</details>"),
    ("<table><tr><td>", "</td></tr></table>"),
    ("<a href=\"javascript:alert(1)\">", "</a>"),
    ("<ul><li>", "</li></ul>"),
    ("> ", ""),
    ("- ", ""),
    ("1. ", ""),
    ("* ", ""),
    ("# ", ""),
    ("| ", " |"),
];

/// Payloads that must never come out live.
const PAYLOADS: &[&str] = &[
    "x",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[c](javascript:alert(1))",
    "<svg><script>alert(1)</script></svg>",
    "<a href=\"jav&#x09;ascript:alert(1)\">y</a>",
    "```rust\nfn main() {}\n```",
    "[TOC]",
    "[Home] [[New Page|n]] [#12] [abc1234] [wiki:Home]",
    "<iframe src=//evil.example></iframe>",
    "<style>*{}</style>",
];

/// A deep nesting: `depth` openers picked from `kinds` (cycled), a payload, the closers in
/// reverse. Line-based constructs (quotes, lists) nest on one line, which is what markdown
/// does with `> > > x` and `- - - x`.
fn nest(kinds: &[usize], depth: usize, payload: &str, closed: bool) -> String {
    let mut open = String::new();
    let mut close = Vec::with_capacity(depth);
    for i in 0..depth {
        let (o, c) = NESTERS[kinds[i % kinds.len()] % NESTERS.len()];
        open.push_str(o);
        close.push(c);
    }
    open.push_str(payload);
    if closed {
        for c in close.iter().rev() {
            open.push_str(c);
        }
    }
    open.push('\n');
    open
}

/// Lists nested by indentation, one item per line.
fn indented_list(depth: usize, marker: &str) -> String {
    (0..depth)
        .map(|i| format!("{}{marker} item {i}\n", "  ".repeat(i)))
        .collect()
}

fn deep_markdown() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::collection::vec(0..NESTERS.len(), 1..4),
            0usize..4_000,
            0..PAYLOADS.len(),
            any::<bool>()
        )
            .prop_map(|(kinds, depth, p, closed)| nest(&kinds, depth, PAYLOADS[p], closed)),
        (0usize..600, prop::sample::select(vec!["-", "*", "1.", ">"]))
            .prop_map(|(d, m)| indented_list(d, m)),
        // Several deep blocks after one another.
        prop::collection::vec(
            (
                prop::collection::vec(0..NESTERS.len(), 1..3),
                0usize..500,
                0..PAYLOADS.len()
            ),
            1..6
        )
        .prop_map(|blocks| blocks
            .iter()
            .map(|(k, d, p)| nest(k, *d, PAYLOADS[*p], true) + "\n")
            .collect()),
    ]
}

/// Text made of markdown's special characters, where parsers find their corner cases.
fn markdownish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "*",
            "**",
            "_",
            "`",
            "```",
            "~~",
            "[",
            "]",
            "(",
            ")",
            "!",
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
            "&amp;",
            "&#",
            "\\",
            "\"",
            "'",
            ":",
            "http://x.y",
            "www.x.y",
            "a@b.c",
            "[^1]",
            "[x]: /u",
            "<!--",
            "-->",
            "<![CDATA[",
            "<?",
            "a",
            "word",
            "é",
            "\u{0}",
            "\u{202e}",
            "[TOC]",
            "javascript:",
            "<script>",
            "</script>",
            "<em>",
            "</em>",
            "<div>",
            "</div>",
            "- [ ] ",
            "| - |",
            "[[",
            "]]",
            "[#1]",
            "[a:b:c]",
        ]),
        0..200,
    )
    .prop_map(|parts| parts.concat())
}

/// No script, frame, event handler or script URL in any tag of the output.
fn assert_safe(html: &str) {
    if let Some(tag) = html_safety::unsafe_tag(html) {
        panic!("unsafe tag in output: <{tag}>");
    }
}

fn some_refs() -> ResolvedRefs {
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
    m.insert(
        "wiki:Home".into(),
        Resolution::Link {
            url: "javascript:alert(1)".into(),
        },
    );
    m
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn markdown_arbitrary_text_never_panics(text in any::<String>()) {
        let html = on_worker_stack(move || {
            let _ = markdown::to_plain_text(&text);
            markdown::render(&text)
        });
        assert_safe(&html);
    }

    #[test]
    fn markdown_special_characters_never_panic(text in markdownish()) {
        let html = on_worker_stack(move || {
            let _ = markdown::to_plain_text(&text);
            let _ = markdown::render(&text);
            markdown::render_with_refs(&text, &some_refs())
        });
        assert_safe(&html);
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn markdown_deep_nesting_never_crashes(text in deep_markdown()) {
        let started = std::time::Instant::now();
        let (html, with_refs) = on_worker_stack(move || {
            let _ = markdown::to_plain_text(&text);
            (markdown::render(&text), markdown::render_with_refs(&text, &some_refs()))
        });
        assert_safe(&html);
        assert_safe(&with_refs);
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    }
}

/// The worst cases the issue names, at the size of a page near the text limit.
#[test]
fn markdown_page_sized_nestings_never_crash() {
    let n = 120_000;
    let inputs = [
        format!("{}x{}", "*a **b ".repeat(n / 2), " c** d*".repeat(n / 2)),
        "*a **b *c ".repeat(n / 3),
        format!("{}x{}", "<em>".repeat(n), "</em>".repeat(n)),
        format!("{} x\n", ">".repeat(n * 4)),
        format!("{} x\n", "> ".repeat(n * 2)),
        indented_list(3_000, "-"),
        format!("{}x", "- ".repeat(n * 2)),
        format!("{}x{}", "[".repeat(n), "](u)".repeat(n)),
        "<div>".repeat(n),
    ];
    for text in inputs {
        let len = text.len();
        let started = std::time::Instant::now();
        let html = on_worker_stack(move || {
            let _ = markdown::to_plain_text(&text);
            markdown::render(&text)
        });
        assert_safe(&html);
        eprintln!("{len} bytes rendered in {:?}", started.elapsed());
    }
}

/// Found by `bench/fuzz.sh`: every heading gets an anchor, and a heading named like earlier
/// ones was given the first free `name-N` by trying N = 1, 2, 3...: quadratic in the number
/// of alike headings (20,000 `# a` took 36 s in a release build; a 100 KB project description
/// is re-rendered on every view of the project home).
#[test]
fn markdown_many_alike_headings_render_in_time() {
    let cases = [
        ("20,000 `# a`", "# a\n\n".repeat(20_000)),
        ("20,000 empty headings", "#\n\n".repeat(20_000)),
        ("20,000 setext headings", "a\n-\n\n".repeat(20_000)),
        ("10,000 `# a` / `# a-1`", "# a\n\n# a-1\n\n".repeat(10_000)),
        (
            "a TOC of 20,000 headings",
            format!("[TOC]\n\n{}", "## x\n".repeat(20_000)),
        ),
    ];
    for (what, text) in cases {
        let html = within(std::time::Duration::from_secs(5), what, move || {
            let _ = markdown::to_plain_text(&text);
            markdown::render(&text)
        });
        assert_safe(&html);
    }
}

/// Found by `bench/fuzz.sh`: URLs or e-mail addresses run together with `<` between them
/// (`http://x<http://x<...`) made the autolink extension quadratic: 40,000 of them (360 KB)
/// took 8 s to render in a release build, a 1 MB page about a minute of a heavy-work slot.
#[test]
fn markdown_autolink_runs_render_in_time() {
    let cases = [
        ("40,000 `http://x<`", "http://x<".repeat(40_000)),
        ("40,000 `http://x.y<`", "http://x.y<".repeat(40_000)),
        ("40,000 `a@b.c<`", "a@b.c<".repeat(40_000)),
        ("20,000 `x]]http://x.y</`", "x]]http://x.y</".repeat(20_000)),
    ];
    for (what, text) in cases {
        let html = within(std::time::Duration::from_secs(5), what, move || {
            let _ = markdown::to_plain_text(&text);
            markdown::render(&text)
        });
        assert_safe(&html);
    }
}

/// Found by `bench/fuzz.sh`: the three-way merge offered on an edit conflict compared texts of
/// any size without a time cap (a 950 KB side did not finish in 80 s); it runs when a stale
/// save of a large page comes in.
#[test]
fn merges_of_large_texts_finish_in_time() {
    let big: String = (0..120_000).map(|i| format!("x{i}\n")).collect();
    let other: String = (0..120_000).map(|i| format!("y{i}\n")).collect();
    let (b1, b2) = (big.clone(), other.clone());
    within(
        std::time::Duration::from_secs(5),
        "merge: one side of 1 MB",
        move || {
            let _ = forge_tools::diff::merge("a\n", "b\n", &b1);
        },
    );
    within(
        std::time::Duration::from_secs(5),
        "merge: both sides of 1 MB",
        move || {
            let _ = forge_tools::diff::merge("a\n", &big, &b2);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// References, names, labels, revisions, paths
// ---------------------------------------------------------------------------------------------

fn bracket_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "[",
            "]",
            "[[",
            "]]",
            "|",
            ":",
            "#",
            "#12",
            "wiki",
            "Home",
            "a b",
            "abc1234",
            "forge",
            "\n",
            " ",
            "é",
            "/",
            "_",
            ".",
            "://",
            "TOC",
            "x",
            "%",
            "?",
            "\u{0}",
            "0123456789abcdef0123456789abcdef01234567",
        ]),
        0..60,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn refs_parse_never_panics_and_keeps_its_rules(raw in prop_oneof![any::<String>(), bracket_text()]) {
        if let Some(t) = refs::parse(&raw) {
            match t {
                RefTarget::Artifact { name, .. } => prop_assert!(refs::page_name_ok(&name), "{name:?}"),
                RefTarget::Commit { id, .. } => prop_assert!((7..=40).contains(&id.len())),
                RefTarget::Ticket { .. } => {}
            }
        }
    }

    #[test]
    fn refs_scan_finds_only_references(text in prop_oneof![any::<String>(), bracket_text()]) {
        for key in refs::scan(&text) {
            prop_assert!(refs::parse(&key).is_some(), "{key:?}");
        }
    }

    #[test]
    fn wiki_names_and_labels_never_panic(s in prop_oneof![any::<String>(), bracket_text()]) {
        let named = forge_tools::tools::wiki::pages::check_name(&s).is_ok();
        prop_assert_eq!(named, refs::page_name_ok(&s));
        let _ = forge_tools::tools::wiki::encode_name(&s);
        if let Ok(labels) = forge_tools::tools::wiki::pages::parse_labels(&s) {
            prop_assert!(labels.len() <= 20);
        }
        let _ = forge_tools::names::check_shortname(&s);
        let _ = forge_tools::names::check_mount(&s);
    }

    #[test]
    fn git_revisions_and_paths_never_panic(s in prop_oneof![any::<String>(), "[-./a-z0-9~^:@{}\\\\ ]{0,40}"]) {
        if forge_tools::tools::repo::browse::check_rev(&s).is_ok() {
            prop_assert!(!s.contains("..") && !s.starts_with('-'), "{s:?}");
        }
        if forge_tools::tools::repo::browse::check_path(&s).is_ok() {
            prop_assert!(!s.split('/').any(|seg| seg == ".."), "{s:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Search queries
// ---------------------------------------------------------------------------------------------

struct TestIndex {
    index: SearchIndex,
    _dir: tempfile::TempDir,
}

/// One index for all search properties, holding a few documents so prefixes, snippets and
/// facets have something to work on.
fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<TestIndex> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let index = SearchIndex::open(dir.path(), true).unwrap();
            let docs = [
                (
                    "wiki",
                    "Home",
                    "How to keep a zucchini patch alive through August",
                ),
                (
                    "wiki",
                    "Install",
                    "cargo build --release, then run forge serve",
                ),
                (
                    "commit",
                    "fix parser",
                    "refactor the query parser; fixes [#12]",
                ),
                ("project", "Garden", "A project about vegetables and fruit"),
            ];
            let changes = docs
                .iter()
                .enumerate()
                .map(|(i, (kind, title, text))| {
                    Change::Upsert(IndexDoc {
                        key: format!("k{i}"),
                        kind: (*kind).into(),
                        project: "garden".into(),
                        project_id: "p1".into(),
                        tool: "wiki".into(),
                        tool_id: "t1".into(),
                        title: (*title).into(),
                        text: (*text).into(),
                        author: "ann".into(),
                        date: bson::DateTime::now(),
                        url: format!("/p/garden/wiki/{title}/"),
                        read: vec!["*anonymous".into()],
                    })
                })
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(index.apply(changes)).unwrap();
            TestIndex { index, _dir: dir }
        })
        .index
}

fn query_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "zucchini",
            "zuc*",
            "a*",
            "*",
            "\"",
            "\"keep a\"",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "-",
            "+",
            "!",
            "^",
            "^2",
            "~",
            "~1",
            ":",
            "title:",
            "text:",
            "author:",
            "type:",
            "project:",
            "tool:",
            "nofield:",
            "OR",
            "AND",
            "NOT",
            "TO",
            "[a TO z]",
            "{1 TO 5}",
            "\\",
            "'",
            " ",
            "  ",
            "\t",
            "é",
            "日本",
            "IN",
            "IN [a b]",
            "*:*",
            "text:*",
            "title:\"\"",
            "ann",
            "garden",
            "wiki",
            "commit",
            "project",
            "-x",
            "+y",
            "\u{0}",
        ]),
        0..40,
    )
    .prop_map(|p| p.join(""))
}

fn deep_query() -> impl Strategy<Value = String> {
    (
        0usize..4_000,
        prop::sample::select(vec![
            ("(", ")"),
            ("[", "]"),
            ("{", "}"),
            ("-", ""),
            ("+", ""),
            ("NOT ", ""),
            ("- ", ""),
            ("(a OR ", ")"),
            ("\"", "\""),
        ]),
    )
        .prop_map(|(n, (o, c))| format!("{}x{}", o.repeat(n), c.repeat(n)))
}

fn check_search(q: String, page: usize, per_page: usize, filters: Option<(String, String)>) {
    let req = SearchRequest {
        q,
        project: filters.as_ref().map(|f| f.0.clone()),
        kind: filters.as_ref().map(|f| f.1.clone()),
        tool: None,
        page,
        per_page,
    };
    let idx = index().clone();
    let result = on_worker_stack(move || {
        let all = idx.search(&req, &Access::All);
        let some = idx.search(&req, &Access::Tokens(vec!["*anonymous".into()]));
        (all, some)
    });
    for r in [result.0, result.1] {
        match r {
            Ok(res) => assert!(res.hits.len() <= per_page.max(1)),
            Err(Error::Invalid(_) | Error::BadRequest(_)) => {}
            Err(other) => panic!("search answered a server error: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn search_arbitrary_queries_are_answered_or_refused(
        q in prop_oneof![any::<String>(), query_text()],
        page in prop_oneof![Just(1usize), 0usize..1_000, any::<usize>()],
        per_page in prop_oneof![Just(20usize), 0usize..200, any::<usize>()],
        filters in proptest::option::of(("[a-z*:() \"]{0,12}", "[a-z*:() \"]{0,12}")),
    ) {
        check_search(q, page, per_page, filters);
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn search_deep_or_long_queries_are_refused_not_crashed(q in deep_query()) {
        check_search(q, 1, 20, None);
    }
}

#[test]
fn search_named_cases() {
    let mut cases = vec![
        "(".repeat(3_000),
        format!("{}x{}", "(".repeat(3_000), ")".repeat(3_000)),
        "x".repeat(1_001),
        "a ".repeat(5_000),
        "text:*".into(),
        "*".into(),
        "title:*".into(),
        "-*".into(),
        "\"unclosed".into(),
        "NOT ".repeat(100) + "x",
    ];
    cases.push("- ".repeat(2_000) + "x");
    for q in cases {
        check_search(q, 1, 20, None);
    }
    for page in [0, 501, 100_000_000, usize::MAX] {
        check_search("zucchini".into(), page, 20, None);
    }
    for per_page in [0, 101, usize::MAX] {
        check_search("zucchini".into(), 1, per_page, None);
    }
}

// ---------------------------------------------------------------------------------------------
// Diffs, merges, highlighting
// ---------------------------------------------------------------------------------------------

fn lines_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a\n", "b\n", "c\n", "\n", "a b c\n", "x", "\r\n", "é\n", "",
        ]),
        0..40,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn diff_and_merge_never_panic(
        base in prop_oneof![lines_text(), any::<String>()],
        ours in prop_oneof![lines_text(), any::<String>()],
        theirs in prop_oneof![lines_text(), any::<String>()],
    ) {
        let _ = forge_tools::diff::unified(&base, &ours);
        let _ = forge_tools::diff::merge(&base, &ours, &theirs);
    }

    #[test]
    fn highlighting_never_panics(
        code in prop_oneof![any::<String>(), markdownish()],
        lang in prop_oneof![
            Just("rust".to_owned()), Just("html".to_owned()), Just("js".to_owned()),
            Just("py".to_owned()), Just("c".to_owned()), any::<String>()
        ],
    ) {
        let l = lang.clone();
        let c = code.clone();
        let out = on_worker_stack(move || {
            let _ = forge_tools::markdown::highlight::highlight_file(&format!("f.{l}"), &c);
            forge_tools::markdown::highlight::highlight(&c, &l)
        });
        if let Some(html) = out {
            prop_assert!(!html.contains("<script"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Git pkt-lines (the command section read before git runs)
// ---------------------------------------------------------------------------------------------

/// Packets with meaning to some request kind, framed right or wrong.
fn packet_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(pktline::FLUSH.to_vec()),
            Just(pktline::DELIM.to_vec()),
            Just(b"0002".to_vec()),
            Just(b"0003".to_vec()),
            Just(b"fff0".to_vec()),
            Just(b"FFFF".to_vec()),
            Just(b"zz".to_vec()),
            "(want|have|shallow|deepen|deepen-not|filter|command=(fetch|ls-refs)|want-ref|ref-prefix|push-cert|[0-9a-f]{40} [0-9a-f]{40}) ?[ -~]{0,60}\n?"
                .prop_map(|s| pktline::encode(s.as_bytes())),
            ("[0-9a-f]{40}", "[0-9a-f]{40}", "[ -~]{0,40}", "[ -~]{0,40}").prop_map(
                |(a, b, name, caps)| pktline::encode(format!("{a} {b} {name}\0{caps}\n").as_bytes())
            ),
            prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| pktline::encode(&b)),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config(512))]

    /// The stream reader (what the server runs) and the in-memory checker agree on every input,
    /// and the stream reader never reads past what it says it consumed.
    #[test]
    fn pktline_readers_agree_and_never_panic(
        data in prop_oneof![prop::collection::vec(any::<u8>(), 0..4096), packet_soup()]
    ) {
        for kind in [Request::UploadPack, Request::UploadPackV2, Request::ReceivePack] {
            let in_memory = pktline::check(kind, &data);
            let mut reader = &data[..];
            let streamed = futures::executor::block_on(pktline::read_section(&mut reader, kind));
            match (in_memory, streamed) {
                (Ok(a), Ok((read, b))) => {
                    prop_assert_eq!(&a, &b);
                    prop_assert!(a.consumed <= data.len());
                    prop_assert_eq!(&read[..], &data[..a.consumed]);
                    prop_assert_eq!(reader.len(), data.len() - a.consumed);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{kind:?}: in memory {a:?}, streamed {b:?}"),
            }
        }
    }
}

#[test]
fn pktline_large_inputs_are_bounded() {
    let cases: Vec<Vec<u8>> = vec![
        // A length past the end, then nothing.
        b"fff0".to_vec(),
        // A million flushes (the first ends the section).
        pktline::FLUSH.repeat(1_000_000),
        // 5 MB of maximal packets with no end.
        pktline::encode(&vec![b'a'; pktline::MAX_PKT_LEN - 4]).repeat(80),
        // 100,000 wants.
        pktline::encode(format!("want {}\n", "1".repeat(40)).as_bytes()).repeat(100_000),
    ];
    for data in cases {
        for kind in [
            Request::UploadPack,
            Request::UploadPackV2,
            Request::ReceivePack,
        ] {
            let started = std::time::Instant::now();
            let _ = pktline::check(kind, &data);
            let mut reader = &data[..];
            let _ = futures::executor::block_on(pktline::read_section(&mut reader, kind));
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    }
}
