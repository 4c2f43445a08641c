#!/usr/bin/env bash
# Build a release into DIR (default $CARGO_TARGET_DIR/dist, else target/dist:
# release output never goes into the tree):
#   airlock-VERSION-x86_64-linux.tar.gz   binary, man pages, completions, docs
#   airlock_VERSION-1_amd64.deb           Debian 11-12, Ubuntu 20.04-24.04
#   airlock-VERSION-1.x86_64.rpm          RHEL/Rocky/Alma 8-9 (and 7)
#   SHA256SUMS                            the three files' SHA-256
#   SHA256SUMS.sig                        SSHSIG over SHA256SUMS, namespace "airlock-release"
# On the isolated side, `ssh-keygen -Y verify` and `sha256sum -c` are all that
# is needed (docs/install-offline.md).
#
#   scripts/release.sh --key RELEASE_SIGNING_KEY [--out DIR]
#   scripts/release.sh --unsigned [--out DIR]      everything but the signature
#                                                  (what scripts/reproducible.sh compares)
#
# One portable binary is built, once, and goes into all three: `cargo zigbuild`
# links it against glibc 2.17's symbol versions (zig and cargo-zigbuild come
# from PyPI, pinned by hash: scripts/release-tools.sh). The build aims at
# reproducibility: paths are remapped, times come from SOURCE_DATE_EPOCH (the
# last commit's time), the build starts from an empty target directory, the
# archive and the packages have sorted members with fixed owners and mtimes.
# scripts/reproducible.sh --against DIR rebuilds elsewhere and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
key="" out="${CARGO_TARGET_DIR:-target}/dist" unsigned=""
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --unsigned) unsigned=1; shift ;;
    *) echo "usage: scripts/release.sh --key KEY | --unsigned [--out DIR]" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || [ -n "$unsigned" ] || {
  echo "release: --key KEY is required (an OpenSSH key for namespace airlock-release), or --unsigned" >&2
  exit 2
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
triple=x86_64-unknown-linux-gnu
# The oldest glibc the binary must run on: RHEL 7 and Amazon Linux 2.
export AIRLOCK_BUILD_GLIBC=2.17
pkgrel=1 # the packages' own revision (Debian revision, RPM release)

# shellcheck source=scripts/release-tools.sh
. scripts/release-tools.sh
release_tools
# shellcheck source=scripts/repro-env.sh
. scripts/repro-env.sh
rm -rf "$CARGO_TARGET_DIR"
cargo zigbuild --release --locked --quiet --target "$triple.$AIRLOCK_BUILD_GLIBC"
bin="$CARGO_TARGET_DIR/$triple/release/airlock"
bash scripts/check-glibc.sh "$bin" "$AIRLOCK_BUILD_GLIBC"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022

# Generated once from the binary: man pages and completions.
gen="$stage/gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin" man --dir "$gen/man" > /dev/null
for sh in bash zsh fish; do "$bin" completions "$sh" > "$gen/completions/airlock.$sh"; done
# The packaging sources: packaging/debian, packaging/rpm, the example
# configuration, and the systemd units of packaging/systemd (every one of
# them goes into the tarball and both packages).
units=()
while IFS= read -r u; do units+=("$u"); done < <(cd packaging/systemd && ls -1 -- *.service *.timer 2>/dev/null | LC_ALL=C sort)
[ ${#units[@]} -gt 0 ] || { echo "release: no unit files in packaging/systemd" >&2; exit 1; }
# The services among them, restarted (if running) after an upgrade.
services=()
for u in "${units[@]}"; do [ "${u%.service}" = "$u" ] || services+=("$u"); done
maintainer=$(sed -n 's/^Maintainer: //p' packaging/debian/control)

# Every file gets the commit's time, and plain modes.
normalise() {
  find "$1" -type d -exec chmod 0755 {} +
  find "$1" -type f -exec chmod 0644 {} +
  [ -z "${2:-}" ] || chmod 0755 "$2"
  find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# --- the tarball ----------------------------------------------------------
name="airlock-$version-x86_64-linux"
dir="$stage/tar/$name"
mkdir -p "$dir/docs" "$dir/examples"
cp "$bin" "$dir/airlock"
cp -r "$gen/man" "$gen/completions" "$dir/"
cp README.md CHANGELOG.md "$dir/"
cp docs/*.md docs/*.json "$dir/docs/"
cp packaging/airlock.toml "$dir/examples/"
mkdir -p "$dir/systemd" && (cd packaging/systemd && cp -- "${units[@]}" "$dir/systemd/")
# What a reviewer needs to rebuild this binary and compare it.
{
  echo "commit ${AIRLOCK_BUILD_COMMIT:-unknown}"
  echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
  echo "target $triple, glibc $AIRLOCK_BUILD_GLIBC or newer"
  rustc --version
  cargo --version
  echo "zig $(python3 -m ziglang version)"
  cargo-zigbuild --version | head -n 1
  echo "rebuild: scripts/reproducible.sh --against DIR-WITH-SHA256SUMS (or --against airlock)"
} > "$dir/BUILD"
normalise "$stage/tar" "$dir/airlock"
mkdir -p "$out"
rm -f "$out/$name.tar.gz" "$out"/airlock_*.deb "$out"/airlock-*.rpm "$out/SHA256SUMS" "$out/SHA256SUMS.sig"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --format=gnu -C "$stage/tar" -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"

# --- the packages' file tree ----------------------------------------------
# The same files for both, where each family looks for them; the differences
# are zsh's completion directory and the systemd unit directory.
pkgroot() { # KIND ROOT
  local kind=$1 root=$2 zsh unitdir
  case "$kind" in
    deb) zsh=usr/share/zsh/vendor-completions unitdir=lib/systemd/system ;;
    rpm) zsh=usr/share/zsh/site-functions unitdir=usr/lib/systemd/system ;;
  esac
  mkdir -p "$root/usr/bin" "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
           "$root/$zsh" "$root/usr/share/fish/vendor_completions.d" \
           "$root/usr/share/doc/airlock/docs" "$root/usr/share/doc/airlock/examples" "$root/etc/airlock"
  cp "$bin" "$root/usr/bin/airlock"
  for m in "$gen"/man/*.1; do gzip -n -9 < "$m" > "$root/usr/share/man/man1/$(basename "$m").gz"; done
  cp "$gen/completions/airlock.bash" "$root/usr/share/bash-completion/completions/airlock"
  cp "$gen/completions/airlock.zsh" "$root/$zsh/_airlock"
  cp "$gen/completions/airlock.fish" "$root/usr/share/fish/vendor_completions.d/airlock.fish"
  cp README.md CHANGELOG.md "$root/usr/share/doc/airlock/"
  cp docs/*.md docs/*.json "$root/usr/share/doc/airlock/docs/"
  cp packaging/airlock.toml "$root/usr/share/doc/airlock/examples/"
  mkdir -p "$root/$unitdir" && (cd packaging/systemd && cp -- "${units[@]}" "$root/$unitdir/")
}

# --- the .deb (dpkg-deb) --------------------------------------------------
deb="$stage/deb"
pkgroot deb "$deb"
cp packaging/debian/copyright "$deb/usr/share/doc/airlock/copyright"
# Debian's names: the upstream changelog as changelog.gz, and a
# changelog.Debian.gz for the package revision (policy 12.7).
rm "$deb/usr/share/doc/airlock/CHANGELOG.md"
gzip -n -9 < CHANGELOG.md > "$deb/usr/share/doc/airlock/changelog.gz"
{
  echo "airlock ($version-$pkgrel) unstable; urgency=medium"
  echo
  echo "  * Upstream release $version, packaged by scripts/release.sh from the"
  echo "    portable binary (commit ${AIRLOCK_BUILD_COMMIT:-unknown})."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -n -9 > "$deb/usr/share/doc/airlock/changelog.Debian.gz"
normalise "$deb" "$deb/usr/bin/airlock"
mkdir -p "$deb/DEBIAN"
for s in postinst prerm postrm; do
  sed -e "s|@UNITS@|${units[*]}|g" -e "s|@SERVICES@|${services[*]}|g" "packaging/debian/$s" > "$deb/DEBIAN/$s"
  chmod 0755 "$deb/DEBIAN/$s"
done
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) > "$deb/DEBIAN/md5sums"
# Installed-Size in KiB, from file sizes (not blocks: the same on any file system).
size=$(find "$deb" -path "$deb/DEBIAN" -prune -o -type f -printf '%s\n' | awk '{s += int(($1 + 1023) / 1024)} END {print s}')
sed -e "s|@VERSION@|$version-$pkgrel|" -e "s|@SIZE@|$size|" packaging/debian/control > "$deb/DEBIAN/control"
chmod 0644 "$deb/DEBIAN/control" "$deb/DEBIAN/md5sums"
find "$deb/DEBIAN" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz -z9 --build "$deb" "$out/airlock_$version-${pkgrel}_amd64.deb" > /dev/null

# --- the .rpm (rpmbuild) --------------------------------------------------
rpmroot="$stage/rpmroot"
pkgroot rpm "$rpmroot"
normalise "$rpmroot" "$rpmroot/usr/bin/airlock"
rpmtop="$stage/rpmbuild"
mkdir -p "$rpmtop"
# Reproducible: build time and mtimes from SOURCE_DATE_EPOCH, a fixed build
# host; no rewriting of the files (no strip, no debuginfo, no build-id links,
# no man page recompression): the binary is byte for byte the tarball's.
rpmbuild -bb --quiet --target x86_64-linux \
  --define "_topdir $rpmtop" \
  --define "_rpmdir $stage/rpms" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "_buildhost reproducible.airlock" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  --define "_binary_payload w9.xzdio" \
  --define "_build_id_links none" \
  --define "debug_package %{nil}" \
  --define "__os_install_post %{nil}" \
  --define "airlock_version $version" \
  --define "airlock_release $pkgrel" \
  --define "airlock_root $rpmroot" \
  --define "airlock_packager $maintainer" \
  --define "airlock_commit ${AIRLOCK_BUILD_COMMIT:-unknown}" \
  --define "airlock_date $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')" \
  --define "airlock_units ${units[*]}" \
  --define "airlock_services ${services[*]}" \
  packaging/rpm/airlock.spec > "$stage/rpmbuild.log" 2>&1 || { cat "$stage/rpmbuild.log" >&2; exit 1; }
cp "$stage/rpms/airlock-$version-$pkgrel.x86_64.rpm" "$out/"

# --- sums and signature ---------------------------------------------------
(cd "$out" && sha256sum "$name.tar.gz" "airlock_$version-${pkgrel}_amd64.deb" "airlock-$version-$pkgrel.x86_64.rpm" > SHA256SUMS)
if [ -z "$unsigned" ]; then
  ssh-keygen -Y sign -q -f "$key" -n airlock-release "$out/SHA256SUMS"
fi
echo "release: $out (binary: glibc $AIRLOCK_BUILD_GLIBC or newer, commit ${AIRLOCK_BUILD_COMMIT:-unknown})"
cat "$out/SHA256SUMS"
