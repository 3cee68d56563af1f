#!/usr/bin/env bash
# Set up everything the workshop needs on this machine. Idempotent: a second run
# only checks (a few seconds). Builds:
#   .venv          the workshop venv (requirements.txt)
#   .venv-serving  the serving venv with vLLM for CPUs (requirements-serving.txt)
#   .venv-gateway  the gateway venv with the LiteLLM proxy (requirements-gateway.txt)
#   .maas/models/  the workshop's tiny model (cached in ~/.cache/maas-workshop)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# the local OCI registry and ModelCar tools; PostgreSQL for the gateway's keys and ledger
APT_PACKAGES=(docker-registry skopeo apache2-utils busybox-static postgresql)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

quiet_pip() {  # pip without the noise of this machine's unused local indexes
  "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"
}

# make_venv DIR REQUIREMENTS [packages to remove after install]
make_venv() {
  local dir=$1 req=$2; shift 2
  local want; want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -f "$dir/.requirements.sha256" ] && [ "$(cat "$dir/.requirements.sha256")" = "$want" ]; then
    echo "$dir is up to date"
    return
  fi
  if [ -x "$dir/bin/python" ]; then  # requirements changed: install the difference (rm -rf DIR rebuilds it whole)
    say "updating $dir from $req"
  else
    say "building $dir from $req (a few minutes the first time)"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    quiet_pip "$dir/bin/pip" install -q --upgrade pip
  fi
  if grep -q '^torch==' "$req"; then  # the CPU build first
    quiet_pip "$dir/bin/pip" install -q "$(grep -m1 '^torch==' "$req")"
  fi
  quiet_pip "$dir/bin/pip" install -q -r "$req"
  if [ $# -gt 0 ]; then
    quiet_pip "$dir/bin/pip" uninstall -q -y "$@"
  fi
  echo "$want" > "$dir/.requirements.sha256"
}

started=$(date +%s)
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
install_apt_packages
# torchvision/torchaudio/torchcodec from PyPI need CUDA and break vLLM's import; triton is unused on CPU.
make_venv .venv-serving requirements-serving.txt torchvision torchaudio torchcodec triton
make_venv .venv requirements.txt
make_venv .venv-gateway requirements-gateway.txt
root=$(pwd)
if ! (cd / && "$root/.venv/bin/python" -c 'import helpers.cli') 2>/dev/null; then  # importable from anywhere
  quiet_pip .venv/bin/pip install -q --no-deps -e .
fi
say "the workshop model"
.venv/bin/python -m helpers build-model
say "set-up done in $(( $(date +%s) - started )) s"
