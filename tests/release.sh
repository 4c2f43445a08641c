#!/usr/bin/env bash
# The release, checked as an administrator would use it:
#  1. build it (scripts/release.sh) with a throwaway signing key;
#  2. verify it exactly as docs/install-offline.md says: ssh-keygen -Y verify,
#     sha256sum -c; tampering and a wrong namespace are caught;
#  3. the portable binary: --version says how it was built, and no imported
#     glibc symbol version is newer than GLIBC_2.17;
#  4. the .deb: installed with dpkg -i on this machine, it works (--version,
#     man, bash completion, its units pass systemd-analyze verify, an import
#     as the system account with the example airlock.toml), lists exactly
#     the expected files with the right modes, and is removed and purged
#     again (the machine is left as it was);
#  5. the .rpm: rpm -qpi / -qpl list exactly the expected files, modes and
#     owners; its dependencies need nothing newer than glibc 2.17; its
#     account script works;
#  6. the binary is byte-identical in all three;
#  7. a rebuild in another directory gives identical tarball, .deb and .rpm.
#
#   tests/release.sh [--keep-binary PATH]   also copy the verified binary to
#                                           PATH (tests/run.sh then runs the
#                                           integration tests against it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
keep=""
if [ "${1:-}" = "--keep-binary" ]; then keep=$(realpath -m "$2"); fi
for t in ssh-keygen sha256sum objdump dpkg-deb dpkg rpm rpm2cpio cpio man runuser useradd lintian; do
  command -v "$t" >/dev/null || { echo "release: $t is missing (tests/run.sh installs it)" >&2; exit 1; }
done
[ -f /usr/share/bash-completion/bash_completion ] || { echo "release: bash-completion is missing (tests/run.sh installs it)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "release: the package checks install a .deb: run as root" >&2; exit 1; }

fail() { echo "release: $*" >&2; exit 1; }
work=$(mktemp -d)
cleanup_pkg=""
cleanup() {
  if [ -n "$cleanup_pkg" ]; then
    dpkg --purge airlock >/dev/null 2>&1 || true
    getent passwd airlock >/dev/null && userdel airlock >/dev/null 2>&1 || true
    getent group airlock >/dev/null && groupdel airlock >/dev/null 2>&1 || true
    rm -rf /var/lib/airlock /var/spool/airlock
  fi
  rm -rf "$work"
}
trap cleanup EXIT

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
name="airlock-$version-x86_64-linux"
deb="airlock_${version}-1_amd64.deb"
rpm="airlock-${version}-1.x86_64.rpm"
commit=$(git rev-parse HEAD)
git diff --quiet HEAD -- || commit="$commit-dirty"

# --- 1. build -------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C release@airlock -f "$work/release_key"
echo "release@airlock namespaces=\"airlock-release\" $(cut -d' ' -f1,2 "$work/release_key.pub")" > "$work/release_signers"
bash scripts/release.sh --key "$work/release_key" --out "$work/dist" > "$work/release.log" 2>&1 || {
  cat "$work/release.log" >&2
  fail "scripts/release.sh failed"
}
cd "$work/dist"

# --- 2. verify as docs/install-offline.md says ------------------------------
ssh-keygen -Y verify -f ../release_signers -I release@airlock -n airlock-release -s SHA256SUMS.sig < SHA256SUMS
sha256sum -c SHA256SUMS
[ "$(awk '{print $2}' SHA256SUMS | sort | tr '\n' ' ')" = "$(printf '%s\n' "$rpm" "$name.tar.gz" "$deb" | sort | tr '\n' ' ')" ] \
  || fail "SHA256SUMS does not list exactly the tarball, the .deb and the .rpm: $(cat SHA256SUMS)"
tar -xzf "$name.tar.gz"
bin="$PWD/$name/airlock"
for f in BUILD man/airlock.1 man/airlock-export.1 completions/airlock.bash completions/airlock.zsh \
         completions/airlock.fish docs/format.md docs/install-offline.md examples/airlock.toml README.md CHANGELOG.md; do
  [ -s "$name/$f" ] || fail "$f missing from the tarball"
done
if ssh-keygen -Y verify -f ../release_signers -I release@airlock -n airlock-bundle -s SHA256SUMS.sig < SHA256SUMS >/dev/null 2>&1; then
  fail "a bundle-namespace check accepted the release signature"
fi
for f in "$name.tar.gz" "$deb" "$rpm"; do
  mkdir -p ../tampered && cp SHA256SUMS "$f" ../tampered/
  printf 'x' >> "../tampered/$f"
  if (cd ../tampered && sha256sum -c SHA256SUMS --ignore-missing >/dev/null 2>&1); then
    fail "sha256sum accepted an altered $f"
  fi
  rm -rf ../tampered
done
echo "release: signature and SHA256SUMS verified; a wrong namespace and altered files are refused"

# --- 3. the portable binary -----------------------------------------------
expect_version() { # BINARY
  local out
  out=$("$1" --version)
  [ "$(echo "$out" | sed -n 1p)" = "airlock $version" ] || fail "$1 --version: first line is not 'airlock $version': $out"
  for line in "commit: $commit" "target: x86_64-unknown-linux-gnu" "glibc: 2.17 or newer" "profile: release" "test hooks: none"; do
    echo "$out" | grep -qxF "$line" || fail "$1 --version lacks '$line':"$'\n'"$out"
  done
  [ "$("$1" -V)" = "airlock $version" ] || fail "$1 -V is not 'airlock $version'"
}
expect_version "$bin"
bash "$repo/scripts/check-glibc.sh" "$bin" 2.17
# The check can fail: a binary built against this machine's glibc is refused
# when that glibc is newer than 2.17 (Debian 12 has 2.36).
if bash "$repo/scripts/check-glibc.sh" /bin/ls 2.17 >/dev/null 2>&1; then
  echo "release: (the negative glibc check was skipped: /bin/ls needs nothing newer than 2.17 here)"
else
  echo "release: check-glibc refuses /bin/ls, built against this machine's glibc"
fi
objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}' | sort > ../needed
[ "$(tr '\n' ' ' < ../needed)" = "libc.so.6 libdl.so.2 libm.so.6 libpthread.so.0 " ] \
  || fail "the binary needs unexpected libraries: $(tr '\n' ' ' < ../needed)"

# --- the files both packages must hold, with mode, owner, group -----------
expected() { # deb|rpm -> "MODE OWNER GROUP PATH" lines, sorted
  local kind=$1 zsh unitdir
  case "$kind" in
    deb) zsh=/usr/share/zsh/vendor-completions unitdir=/lib/systemd/system ;;
    rpm) zsh=/usr/share/zsh/site-functions unitdir=/usr/lib/systemd/system ;;
  esac
  {
    echo "-rwxr-xr-x root root /usr/bin/airlock"
    for m in "$name"/man/*.1; do echo "-rw-r--r-- root root /usr/share/man/man1/$(basename "$m").gz"; done
    echo "-rw-r--r-- root root /usr/share/bash-completion/completions/airlock"
    echo "-rw-r--r-- root root $zsh/_airlock"
    echo "-rw-r--r-- root root /usr/share/fish/vendor_completions.d/airlock.fish"
    echo "-rw-r--r-- root root /usr/share/doc/airlock/README.md"
    if [ "$kind" = deb ]; then
      echo "-rw-r--r-- root root /usr/share/doc/airlock/changelog.gz"
      echo "-rw-r--r-- root root /usr/share/doc/airlock/changelog.Debian.gz"
    else
      echo "-rw-r--r-- root root /usr/share/doc/airlock/CHANGELOG.md"
    fi
    (cd "$repo" && git ls-files docs) | grep -E '\.(md|json)$' | sed 's|^docs/|-rw-r--r-- root root /usr/share/doc/airlock/docs/|'
    echo "-rw-r--r-- root root /usr/share/doc/airlock/examples/airlock.toml"
    [ "$kind" = rpm ] || echo "-rw-r--r-- root root /usr/share/doc/airlock/copyright"
    (cd "$repo/packaging/systemd" && ls -1 -- *.service *.timer) | sed "s|^|-rw-r--r-- root root $unitdir/|"
    echo "drwxr-xr-x root root /etc/airlock"
    if [ "$kind" = rpm ]; then
      # The .deb makes these in postinst, after adduser (checked below).
      echo "drwx------ airlock airlock /var/lib/airlock"
      echo "drwxr-xr-x root root /var/spool/airlock"
      for d in drop outbox transfer; do echo "drwxr-x--- airlock airlock /var/spool/airlock/$d"; done
      for d in /usr/share/doc/airlock /usr/share/doc/airlock/docs /usr/share/doc/airlock/examples; do
        echo "drwxr-xr-x root root $d"
      done
    fi
  } | LC_ALL=C sort
}

# --- 4. the .deb ----------------------------------------------------------
info=$(dpkg-deb -f "$deb" Package Version Architecture Depends)
for line in "Package: airlock" "Version: $version-1" "Architecture: amd64" "Depends: libc6 (>= 2.17), adduser"; do
  echo "$info" | grep -qxF "$line" || fail "$deb: control lacks '$line': $info"
done
# Debian's policy checker: no error, no warning (the one suppressed tag is
# about uploads to Debian's archive, which this package is not).
(cd .. && lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "dist/$deb" 2>&1) \
  | grep -v 'running with root privileges' || true
(cd .. && lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "dist/$deb" >/dev/null 2>&1) \
  || fail "lintian finds errors or warnings in $deb"
# Files (directories that only hold others are the package manager's business).
dpkg-deb -c "$deb" | awk '{sub(/^\./, "", $6); split($2, o, "/"); if ($1 !~ /^d/ || $6 == "/etc/airlock/") print $1, o[1], o[2], $6}' \
  | sed 's|/$||' | LC_ALL=C sort > ../deb-files
expected deb > ../deb-expected
diff -u ../deb-expected ../deb-files || fail "$deb does not hold exactly the expected files (- expected, + in the package)"
echo "release: $deb holds exactly the $(wc -l < ../deb-expected) expected files and directories, with the right modes"

if dpkg -s airlock >/dev/null 2>&1 || [ -e /usr/bin/airlock ] || getent passwd airlock >/dev/null \
   || [ -e /var/lib/airlock ] || [ -e /var/spool/airlock ]; then
  fail "airlock (package, /usr/bin/airlock, account, /var/lib/airlock or /var/spool/airlock) is already on this machine: not touching it"
fi
cleanup_pkg=1
dpkg -i "$deb" > ../dpkg.log 2>&1 || { cat ../dpkg.log >&2; fail "dpkg -i $deb failed"; }
expect_version /usr/bin/airlock
cmp /usr/bin/airlock "$bin" || fail "/usr/bin/airlock from the .deb differs from the tarball's binary"
[ "$(man -w airlock)" = /usr/share/man/man1/airlock.1.gz ] || fail "man -w airlock: $(man -w airlock 2>&1)"
[ "$(man -w airlock-import)" = /usr/share/man/man1/airlock-import.1.gz ] || fail "man -w airlock-import"
MANPAGER=cat MANWIDTH=80 man airlock-export 2>/dev/null | grep -q -- '--key' || fail "man airlock-export does not render the --key option"
# bash-completion finds and loads the file on demand, and it completes.
# shellcheck disable=SC2016
completed=$(bash --norc --noprofile -c '
  . /usr/share/bash-completion/bash_completion
  __load_completion airlock || exit 1
  complete -p airlock >/dev/null || exit 1
  COMP_WORDS=(airlock ex); COMP_CWORD=1; COMP_LINE="airlock ex"; COMP_POINT=${#COMP_LINE}
  fn=$(complete -p airlock | sed -n "s/.*-F \([^ ]*\).*/\1/p")
  "$fn" airlock ex airlock
  echo "${COMPREPLY[*]}"')
[[ " $completed " == *" export "* && " $completed " == *" extract "* ]] || fail "bash completion of 'airlock ex' gave '$completed'"
echo "release: dpkg -i works: --version, man airlock, bash completion ('airlock ex' -> $completed)"
# The system account and its state directory.
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd airlock)
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/airlock ] && [ "$shell" = /usr/sbin/nologin ] \
  || fail "account airlock: uid $uid, home $home, shell $shell"
# The directories the units name (User=, StateDirectory= with
# StateDirectoryMode=0700, ReadWritePaths=) exist with the units' owner.
for u in "$repo"/packaging/systemd/*.service; do
  grep -qxF 'User=airlock' "$u" && grep -qxF 'StateDirectory=airlock' "$u" && grep -qxF 'StateDirectoryMode=0700' "$u" \
    || fail "$u no longer runs as airlock with StateDirectory=airlock (0700): update the packages"
  for d in $(sed -n 's/^ReadWritePaths=//p' "$u"); do
    [ "$(stat -c '%a %U %G' "$d" 2>&1)" = "750 airlock airlock" ] || fail "$d (ReadWritePaths= of $(basename "$u")): $(stat -c '%a %U %G' "$d" 2>&1)"
  done
done
[ "$(stat -c '%a %U %G' /var/lib/airlock)" = "700 airlock airlock" ] || fail "/var/lib/airlock: $(stat -c '%a %U %G' /var/lib/airlock)"
# The installed units are valid and find the installed binary and account.
if command -v systemd-analyze >/dev/null; then
  installed=()
  for u in "$repo"/packaging/systemd/*.service "$repo"/packaging/systemd/*.timer; do installed+=("/lib/systemd/system/$(basename "$u")"); done
  systemd-analyze verify --man=no "${installed[@]}" || fail "systemd-analyze verify refuses the installed units"
fi
# The importer's job, as that account: export on one side, import on the
# other, with a clean environment (no one's configuration or variables),
# configured by the packaged example airlock.toml as the watch unit is.
as_user() { # USER COMMAND... : run the installed airlock as USER
  local user=$1; shift
  runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent /usr/bin/airlock "$@"
}
mkdir -p ../job && chmod 0755 "$work" ../job
install -m 0600 "$repo/keys/exporter_ed25519" ../exporter_key
install -m 0644 "$repo/keys/allowed_signers" ../job/allowed_signers
as_user root export "$repo/fixtures/usage/ghes-encrypted-users.json" --key "$work/exporter_key" --out "$work/job" \
  --state-dir "$work/exporter-state" -q || fail "export with the installed binary failed"
chmod 0644 ../job/*.airlock.zip
sed -e "s|^trust = .*|trust = \"$work/job/allowed_signers\"|" -e '/^revoked = /d' \
  /usr/share/doc/airlock/examples/airlock.toml > ../job/airlock.toml
chmod 0644 ../job/airlock.toml
as_user airlock import "$work"/job/*.airlock.zip --config "$work/job/airlock.toml" -q \
  || fail "import as the account airlock, configured by the example airlock.toml, failed"
as_user airlock log --state-dir /var/lib/airlock --verify -q || fail "log --verify as airlock failed"
[ "$(find /var/spool/airlock/outbox -name '*UPLOAD.txt' | wc -l)" = 1 ] || fail "the outbox /var/spool/airlock/outbox holds no upload steps"
# Removal keeps nothing of the package; purge keeps the ledger, the account
# and the outbox that now holds a file, and removes the empty spool folders.
dpkg -r airlock > ../dpkg.log 2>&1 || { cat ../dpkg.log >&2; fail "dpkg -r failed"; }
[ ! -e /usr/bin/airlock ] && [ ! -e /usr/share/man/man1/airlock.1.gz ] || fail "dpkg -r left files behind"
dpkg --purge airlock > ../dpkg.log 2>&1 || { cat ../dpkg.log >&2; fail "dpkg --purge failed"; }
grep -q "kept /var/lib/airlock" ../dpkg.log || fail "purge did not say that it kept /var/lib/airlock"
[ -d /var/lib/airlock ] && getent passwd airlock >/dev/null || fail "purge deleted the ledger or the account"
[ -d /var/spool/airlock/outbox ] || fail "purge deleted the outbox, which held a usage file"
[ ! -e /var/spool/airlock/drop ] && [ ! -e /var/spool/airlock/transfer ] || fail "purge left empty spool directories"
dpkg -s airlock >/dev/null 2>&1 && fail "airlock is still known to dpkg after purge"
# The account script refuses an ordinary user of the same name.
userdel airlock && { groupdel airlock 2>/dev/null || true; } && rm -rf /var/lib/airlock /var/spool/airlock
dpkg-deb -e "$deb" ../DEBIAN
useradd -M -u 4242 -s /bin/sh airlock
if sh ../DEBIAN/postinst configure > /dev/null 2>&1; then fail "postinst accepted an ordinary user named airlock"; fi
userdel airlock; { groupdel airlock 2>/dev/null || true; }; rm -rf /var/lib/airlock /var/spool/airlock
echo "release: dpkg -r and --purge leave the machine as it was, except the ledger (kept by design); an ordinary user 'airlock' is refused"

# --- 5. the .rpm ----------------------------------------------------------
info=$(rpm -qpi "$rpm")
for field in "Name        : airlock" "Version     : $version" "Release     : 1" "Architecture: x86_64" "License     : MIT OR Apache-2.0"; do
  echo "$info" | grep -qxF "$field" || fail "rpm -qpi lacks '$field':"$'\n'"$info"
done
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" | LC_ALL=C sort > ../rpm-files
expected rpm > ../rpm-expected
diff -u ../rpm-expected ../rpm-files || fail "$rpm does not hold exactly the expected files (- expected, + in the package)"
[ "$(rpm -qpl "$rpm" | LC_ALL=C sort)" = "$(awk '{print $4}' ../rpm-expected | LC_ALL=C sort)" ] || fail "rpm -qpl disagrees with the file list"
rpm -K --nosignature "$rpm" | grep -q 'digests OK' || fail "rpm -K: $(rpm -K --nosignature "$rpm")"
reqs=$(rpm -qpR "$rpm")
echo "$reqs" | grep -qxF 'libc.so.6(GLIBC_2.17)(64bit)' || fail "rpm requires lack libc.so.6(GLIBC_2.17)(64bit): $reqs"
newer=$(echo "$reqs" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | awk -F. '$1 > 2 || ($1 == 2 && $2 > 17)')
[ -z "$newer" ] || fail "rpm requires glibc symbol versions newer than 2.17: $newer"
echo "$reqs" | grep -qxF 'shadow-utils' || fail "rpm does not require shadow-utils for its account script"
rpm -qp --changelog "$rpm" | grep -qF "commit $commit" || fail "the .rpm's changelog does not name commit $commit"
mkdir -p ../rpmx && (cd ../rpmx && rpm2cpio "../dist/$rpm" | cpio -idm --quiet)
cmp ../rpmx/usr/bin/airlock "$bin" || fail "the .rpm's binary differs from the tarball's"
# Its account script (%pre), run here: creates a system account once, keeps
# it on upgrade, refuses an ordinary user of that name.
rpm -qp --qf '%{PREIN}\n' "$rpm" > ../rpm-pre.sh
sh ../rpm-pre.sh 1 || fail "the .rpm's %pre failed on a clean machine"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd airlock)
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/airlock ] && [ "$shell" = /sbin/nologin ] \
  || fail "rpm %pre made account airlock: uid $uid, home $home, shell $shell"
sh ../rpm-pre.sh 2 || fail "the .rpm's %pre failed on upgrade"
userdel airlock; { groupdel airlock 2>/dev/null || true; }
useradd -M -u 4242 -s /bin/sh airlock
if sh ../rpm-pre.sh 1 2>/dev/null; then fail "rpm %pre accepted an ordinary user named airlock"; fi
userdel airlock; { groupdel airlock 2>/dev/null || true; }
cleanup_pkg=""
echo "release: $rpm lists exactly the $(wc -l < ../rpm-expected) expected files with the right modes and owners, needs glibc 2.17, its %pre works"

# --- 7. reproducible --------------------------------------------------------
bash "$repo/scripts/reproducible.sh" --against "$PWD"

if [ -n "$keep" ]; then
  mkdir -p "$(dirname "$keep")"
  cp "$bin" "$keep"
  echo "release: the verified portable binary is at $keep"
fi
echo "release: all checks passed"
