#!/usr/bin/env bash
# Installs the guest toolchains of the Python and JavaScript SDKs from this
# checkout, for the end-to-end tests and CI (a service author follows the
# SDKs' READMEs instead):
#
#   DEST/python  a virtual environment with sdk/python and, pinned by it,
#                componentize-py 0.25.1: DEST/python/bin/componentize-py
#   DEST/js      a copy of sdk/js, as DEST/js/syncplane-sdk, with its
#                locked dependencies (`npm ci`: componentize-js 0.23.0,
#                esbuild): DEST/js/syncplane-sdk/node_modules/.bin/componentize-js
#
# Usage: sdk/install-toolchains.sh python|js|all [DEST]
# DEST defaults to target/guest-toolchains. Each toolchain is reinstalled
# only when the SDK's files changed since it was installed (the digest is
# kept in DEST/<lang>/.ready); concurrent runs wait for each other.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
dest="${2:-target/guest-toolchains}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

digest() { (cd "$1" && find . -type f ! -path './node_modules/*' ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16); }

python_toolchain() {
  local dir="$dest/python" want
  want="$(python3 --version 2>&1)-$(digest sdk/python)-$(sha256sum "$0" | cut -c1-16)"
  if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$want" ]; then return; fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python3 with venv and pip is needed (Debian/Ubuntu: apt-get install -y python3 python3-venv python3-pip)" >&2
    exit 1
  fi
  echo "installing the Python guest toolchain into $dir" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check ./sdk/python
  echo "$want" > "$dir/.ready"
}

js_toolchain() {
  local dir="$dest/js" want
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "Node.js 18 or later and npm are needed (Debian/Ubuntu: apt-get install -y nodejs npm)" >&2
    exit 1
  fi
  want="$(node --version)-$(digest sdk/js)-$(sha256sum "$0" | cut -c1-16)"
  if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$want" ]; then return; fi
  echo "installing the JavaScript guest toolchain into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir/syncplane-sdk"
  (cd sdk/js && tar --exclude=./node_modules -cf - .) | (cd "$dir/syncplane-sdk" && tar -xf -)
  (cd "$dir/syncplane-sdk" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$dir/.ready"
}

exec 9>"$dest/.lock"
flock 9
case "$which" in
  python) python_toolchain ;;
  js) js_toolchain ;;
  all) python_toolchain; js_toolchain ;;
  *) echo "usage: $0 python|js|all [DEST]" >&2; exit 2 ;;
esac
