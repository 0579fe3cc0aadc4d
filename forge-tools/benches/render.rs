//! Markdown rendering speed: a 2 KB and a 50 KB wiki-like page, rendered from scratch (what a
//! cache miss costs). Run: cargo bench -p forge-tools --bench render
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use forge_tools::markdown;
use forge_tools::refs::{Resolution, ResolvedRefs};

/// A page mixing what wiki pages contain: headings, prose with references, lists, a table,
/// and code blocks, repeated to the wanted size.
pub fn page(bytes: usize) -> String {
    let block = "## Section\n\nSome *prose* with a [Reference] and a [Missing] page, `inline code`, and a \
link to [the docs](https://example.org/docs). More words follow so paragraphs look real.\n\n\
- first item\n- second item with **bold**\n- [x] done task\n\n\
| Name | Value |\n|------|-------|\n| alpha | 1 |\n| beta | 2 |\n\n\
```rust\nfn main() {\n    let total: u32 = (1..10).sum();\n    println!(\"{total}\");\n}\n```\n\n";
    let mut s = String::from("[TOC]\n\n# Title\n\n");
    while s.len() < bytes {
        s.push_str(block);
    }
    s
}

fn refs() -> ResolvedRefs {
    let mut m = ResolvedRefs::new();
    m.insert(
        "Reference".into(),
        Resolution::Link {
            url: "/p/x/wiki/Reference/".into(),
        },
    );
    m.insert(
        "Missing".into(),
        Resolution::Create {
            url: "/p/x/wiki/Missing/edit".into(),
        },
    );
    m
}

fn bench(c: &mut Criterion) {
    let small = page(2 * 1024);
    let large = page(50 * 1024);
    let map = refs();
    c.bench_function("render 2 KB page", |b| {
        b.iter(|| markdown::render_with_refs(&small, &map))
    });
    c.bench_function("render 50 KB page", |b| {
        b.iter(|| markdown::render_with_refs(&large, &map))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
