#!/usr/bin/env bash
# setup/install.sh GROUP... — makes sure the Debian/Ubuntu packages of the given groups (build, test, demo;
# see setup/packages.tsv, the one list) are present, installing the missing ones where this machine allows it.
#
#   Nothing missing                  exits 0 silently (a few `command -v`: cheap enough to run on every build).
#   Missing, and installing allowed  says so on one line, installs with apt-get, exits 0 (1 if apt-get fails).
#   Missing, installing not allowed  prints the one exact command to run and exits 1.
#
# Installing is allowed where apt-get exists, we are root or sudo needs no password, and neither
# CHEAPCONV_NO_INSTALL=1 nor --no-install is given. The test group implies build, as the tests build.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="$here/packages.tsv"

allow_install=1
[ "${CHEAPCONV_NO_INSTALL:-0}" = "1" ] && allow_install=0
groups=()
for arg in "$@"; do
  case "$arg" in
    --no-install) allow_install=0 ;;
    build|test|demo) groups+=("$arg") ;;
    *) echo "setup/install.sh: unknown argument '$arg' (groups: build, test, demo; option: --no-install)" >&2; exit 2 ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || { echo "setup/install.sh: name at least one group: build, test or demo" >&2; exit 2; }
[[ " ${groups[*]} " == *" test "* ]] && groups+=(build)

missing=() reasons=() need_nonfree=0
while IFS=$'\t' read -r package group source present why; do
  [[ -z "$package" || "$package" == \#* ]] && continue
  [[ " ${groups[*]} " == *" $group "* ]] || continue
  if ! bash -c "$present" >/dev/null 2>&1; then
    missing+=("$package")
    reasons+=("$package ($why)")
    [ "$source" = "non-free" ] && need_nonfree=1
  fi
done < "$list"
[ ${#missing[@]} -eq 0 ] && exit 0

# Who may install: root directly, anyone else through sudo if it asks for no password.
sudo="" can_install=1
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
  { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; } || can_install=0
fi
command -v apt-get >/dev/null 2>&1 || can_install=0
command="${sudo:+sudo }apt-get install ${missing[*]}"
[ $need_nonfree -eq 1 ] && command="$command (after adding Debian's non-free component to apt's sources)"

if [ $allow_install -eq 0 ] || [ $can_install -eq 0 ]; then
  why="installing is turned off (--no-install or CHEAPCONV_NO_INSTALL=1)"
  [ $allow_install -eq 1 ] && why="this machine does not let us install (no apt-get, or not root and sudo asks for a password)"
  echo "error: missing ${reasons[*]}; $why — install with: $command" >&2
  exit 1
fi

echo "cheapconv: installing ${missing[*]} (setup/packages.tsv; CHEAPCONV_NO_INSTALL=1 turns this off)" >&2
if [ $need_nonfree -eq 1 ]; then
  # Debian's CUDA toolkit is in the non-free component. A component listed twice only makes apt warn.
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | ${sudo} tee /etc/apt/sources.list.d/cheapconv-non-free.sources >/dev/null
fi
# --no-install-recommends keeps the NVIDIA driver packages, which the toolkit recommends, off a machine without a GPU.
# apt's own output goes to a log, shown only when it fails.
log="$(mktemp)"
if ! { ${sudo} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "error: apt-get could not install ${missing[*]}; run it yourself: $command" >&2
  exit 1
fi
rm -f "$log"
