#!/usr/bin/env bash
# Fuzzing without cargo-fuzz (which needs a nightly toolchain): runs the `fuzz` example of
# forge-tools in release mode on every target in turn for SECONDS_PER_TARGET seconds
# (default 20). Inputs come from proptest strategies and mutations of a seed corpus; see
# forge-tools/examples/fuzz.rs.
#   bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Panicking inputs are saved as artifacts/fuzz/<target>-crash-<n>. A crash that kills the
# process (a stack overflow aborts it) is reported here: the input it was running is still in
# artifacts/fuzz/<target>.current and is kept as <target>-crash-abort-<time>.
# Replay one: target/release/examples/fuzz --replay <target> <file>
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
shift || true
dir=artifacts/fuzz
mkdir -p "$dir"
cargo build --release -q -p forge-tools --example fuzz || exit 1
bin=target/release/examples/fuzz
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <("$bin" --list); fi

failed=0
summary=()
for t in "${targets[@]}"; do
  rm -f "$dir/$t.current"
  # A hung input is a finding too: give each target its time plus a minute.
  out=$(timeout --signal=KILL $((secs + 60)) "$bin" "$t" "$secs" "$dir" 2>"$dir/$t.stderr")
  rc=$?
  echo "$out" | grep -E '^  (CRASH|SLOW)' || true
  line=$(echo "$out" | grep -E "^$t " || true)
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    failed=1
    what="process died (exit $rc)"
    [ "$rc" -eq 137 ] && what="hung (killed after $((secs + 60)) s)"
    grep -q "overflowed its stack" "$dir/$t.stderr" 2>/dev/null && what="stack overflow (exit $rc)"
    if [ -f "$dir/$t.current" ]; then
      keep="$dir/$t-crash-abort-$(date +%s)"
      mv "$dir/$t.current" "$keep"
      what="$what on $keep ($(stat -c %s "$keep") bytes)"
    fi
    line="$(printf '%-14s %s' "$t" "CRASH: $what")"
  elif [ "$rc" -eq 1 ]; then
    failed=1
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzzing, ${secs}s per target (release build)"
printf '%s\n' "${summary[@]}"
ls "$dir" | grep -E -- '-(crash|slow)-' | sed "s|^|  $dir/|" || true
exit "$failed"
