# Shared helpers for the scripts in this folder (sourced, not run).

SECANTUS_VERSION=0.5.3-beta.196

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Where `cargo install` puts the store binary: $CARGO_INSTALL_ROOT/bin when set (cargo honours
# it; bench/first-run.sh points it at a fresh folder), else cargo's bin folder. Put on PATH
# first, so the forge finds that binary.
store_bin_dir() {
  echo "${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
}

# Whether secantusd-rs (the MongoDB-compatible store used by default and in tests) is
# installed; puts its folder on PATH.
have_store_binary() {
  export PATH="$(store_bin_dir):$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
  if [ -n "${CARGO_INSTALL_ROOT:-}" ]; then
    [ -x "$(store_bin_dir)/secantusd-rs" ]
  else
    command -v secantusd-rs >/dev/null 2>&1
  fi
}

# Builds and installs secantusd-rs (a release build with a C part: needs cmake), in its own
# target dir so it never waits on a build directory lock held by another cargo.
install_store_binary() {
  local target
  target=$(mktemp -d)
  local rc=0
  cargo install secantus-mdb --version "$SECANTUS_VERSION" --ignore-rust-version --locked \
    --target-dir "$target" || rc=$?
  rm -rf "$target"
  return $rc
}

# Puts secantusd-rs on PATH, installing it when missing.
ensure_store_binary() {
  if ! have_store_binary; then
    echo "installing secantusd-rs (SecantusDB $SECANTUS_VERSION; once, ~10 minutes)..." >&2
    apt_install cmake
    install_store_binary
  fi
}

# Builds the forge's release binary and, when the store binary is missing, installs it at the
# same time: on a fresh machine each takes minutes, and side by side they finish sooner than
# one after the other (each has long single-threaded stretches). Fails, saying which, if either
# fails.
build_release_with_store() {
  if have_store_binary; then
    cargo build --release --bin forge
    return
  fi
  apt_install cmake # before the builds: it may ask for a sudo password
  local log
  log=$(mktemp)
  echo "first run: building the forge and installing secantusd-rs (SecantusDB $SECANTUS_VERSION) side by side; ~15-20 minutes on 2 cores (store log: $log)..." >&2
  install_store_binary >"$log" 2>&1 &
  local store_pid=$!
  cargo build --release --bin forge &
  local forge_pid=$!
  local store_rc=0 forge_rc=0
  wait "$forge_pid" || forge_rc=$?
  wait "$store_pid" || store_rc=$?
  if [ "$store_rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    echo "installing secantusd-rs failed (exit $store_rc); full log: $log" >&2
  fi
  if [ "$forge_rc" -ne 0 ]; then
    echo "building the forge failed (exit $forge_rc)" >&2
  fi
  [ "$store_rc" -eq 0 ] && [ "$forge_rc" -eq 0 ] || return 1
  rm -f "$log"
}
