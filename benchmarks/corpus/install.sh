#!/usr/bin/env bash
# Installs the Debian packages whose recordings build the realistic corpora (benchmarks/corpus/README.md).
# Idempotent: packages already installed are left alone; needs root (or sudo) and Debian's package registry.
set -euo pipefail
PKGS=(fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl wesnoth-1.16-music drascula-music alsa-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "corpus packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
