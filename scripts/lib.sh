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

# Puts secantusd-rs (the MongoDB-compatible store used by default and in tests) on PATH.
ensure_store_binary() {
  export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
  if ! command -v secantusd-rs >/dev/null 2>&1; then
    echo "installing secantusd-rs (SecantusDB $SECANTUS_VERSION; once, ~10 minutes)..." >&2
    apt_install cmake
    cargo install secantus-mdb --version "$SECANTUS_VERSION" --ignore-rust-version --locked
  fi
}
