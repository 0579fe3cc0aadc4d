#!/usr/bin/env bash
# Search: index 100,000 generated wiki-like pages (Zipf-distributed words), then time
# queries as the site runs them (viewer access filter, top 20, count, facets, snippets).
#   bench/search.sh [documents] [queries per kind]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p forge-tools --example search_bench
./target/release/examples/search_bench "${1:-100000}" "${2:-2000}"
