# shellcheck shell=bash
# Tools the release build needs beyond Rust (sourced by scripts/release.sh):
#  - zig and cargo-zigbuild, from PyPI, pinned by hash in
#    scripts/release-tools.txt, in a virtual environment of their own; they
#    link the portable binary against glibc 2.17's symbol versions;
#  - dpkg-deb (always on Debian) and rpmbuild (Debian's `rpm` package), which
#    build the .deb and the .rpm.
# Idempotent: a complete environment is reused, a half-made one rebuilt.
# Installs with apt-get only what is missing, as root or through sudo.
# Sets PATH so that `cargo zigbuild` and `zig` are found.

release_tools_dir="${AIRLOCK_RELEASE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock-release}"
release_tools_req="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/release-tools.txt"

release_apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "release: installing $* (apt)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

release_tools() {
  local need=()
  command -v python3   >/dev/null || need+=(python3)
  command -v rpmbuild  >/dev/null || need+=(rpm)
  command -v dpkg-deb  >/dev/null || need+=(dpkg)
  command -v objdump   >/dev/null || need+=(binutils)
  [ ${#need[@]} -eq 0 ] || release_apt_install "${need[@]}"

  # One environment per pinned set: its name carries the file's hash.
  local tag venv
  tag=$(sha256sum "$release_tools_req" | cut -c1-16)
  venv="$release_tools_dir/venv-$tag"
  if [ ! -e "$venv/.complete" ]; then
    rm -rf "$venv"
    mkdir -p "$release_tools_dir"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian's python3 needs python3-venv for ensurepip.
      rm -rf "$venv"
      release_apt_install python3-venv
      python3 -m venv "$venv"
    fi
    echo "release: installing zig and cargo-zigbuild (PyPI, pinned by hash) into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --only-binary :all: --require-hashes -r "$release_tools_req"
    touch "$venv/.complete"
  fi
  export PATH="$venv/bin:$PATH"
  # cargo-zigbuild finds zig as `python3 -m ziglang` in the environment.
  cargo-zigbuild --version >/dev/null
}
