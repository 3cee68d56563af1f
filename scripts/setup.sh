#!/usr/bin/env bash
# Set up everything the workshop needs on this machine. Idempotent: a second run
# only checks (a few seconds). Builds:
#   .venv          the workshop venv (requirements.txt)
#   .venv-serving  the serving venv with vLLM for CPUs (requirements-serving.txt)
#   .venv-gateway  the gateway venv with the LiteLLM proxy (requirements-gateway.txt)
#   .maas/models/  the workshop's tiny model (cached in ~/.cache/maas-workshop)
# with uv (in .venv-uv; its download cache in ~/.cache/uv). On a laptop without a local CPU
# build of torch: TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu make setup
# Offline, from a room bundle (python -m helpers instructor bundle --out DIR, see README):
# MAAS_BUNDLE=DIR make setup  -- checked first (sha256, requirements, model recipe); every Python
# package from its wheels (--no-index: no network), the model copied into the cache, not trained.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# the local OCI registry and ModelCar tools; PostgreSQL for the gateway's keys and ledger
APT_PACKAGES=(docker-registry skopeo apache2-utils busybox-static postgresql chromium chromium-driver)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

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

UV_VERSION=0.13.8  # installs the venvs (pinned; about 10x faster than pip, same resolution)
UV=.venv-uv/bin/uv
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}  # a laptop without a local CPU wheel: https://download.pytorch.org/whl/cpu
BUNDLE=${MAAS_BUNDLE:-}  # a room bundle: no package index, no training
if [ -n "$BUNDLE" ]; then
  [ -d "$BUNDLE" ] || { echo "MAAS_BUNDLE=$BUNDLE is not a folder: give the room bundle's path" >&2; exit 1; }
  BUNDLE=$(cd "$BUNDLE" && pwd)
fi

install_uv() {
  [ -x "$UV" ] && "$UV" --version | grep -q " $UV_VERSION" && return
  say "installing uv $UV_VERSION (it builds the venvs)"
  rm -rf .venv-uv
  "$PYTHON" -m venv .venv-uv
  local offline=(); [ -n "$BUNDLE" ] && offline=(--no-index --find-links "$BUNDLE/wheels")
  .venv-uv/bin/pip install -q --disable-pip-version-check "${offline[@]}" "uv==$UV_VERSION" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

uv_links() {  # the wheel directories pip is configured with (a machine's local CPU build of torch)
  if [ -n "$BUNDLE" ]; then  # only the bundle's wheels, at the versions it resolved (its lock of REQUIREMENTS)
    printf -- '--no-index\n--find-links\n%s\n' "$BUNDLE/wheels"
    [ -n "${1:-}" ] && printf -- '--constraint\n%s\n' "$BUNDLE/locks/$(basename "$1" .txt).lock"
    return 0
  fi
  local dir
  for dir in $("$PYTHON" -m pip config get global.find-links 2>/dev/null || true); do
    [ -d "$dir" ] && printf -- '--find-links\n%s\n' "$dir"
  done
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
    say "building $dir from $req"
    rm -rf "$dir"
    local seed=(); [ -n "$BUNDLE" ] && mapfile -t seed < <(uv_links)  # pip, setuptools, wheel from the bundle
    "$UV" venv -q --seed -p "$PYTHON" "${seed[@]}" "$dir"
  fi
  local links; mapfile -t links < <(uv_links "$req")
  local torch; torch=$(grep -m1 '^torch==' "$req" || true)
  if [ -n "$torch" ] && [ -n "$TORCH_INDEX_URL" ] && [ -z "$BUNDLE" ]; then  # the CPU build first, from PyTorch's index
    "$UV" pip install -q -p "$dir/bin/python" "$torch" --index-url "$TORCH_INDEX_URL"
  fi
  "$UV" pip install -q -p "$dir/bin/python" "${links[@]}" -r "$req"
  if [ $# -gt 0 ]; then
    "$UV" pip uninstall -q -p "$dir/bin/python" "$@"
  fi
  echo "$want" > "$dir/.requirements.sha256"
}

# Bytecode is compiled on first import and kept, even where PYTHONDONTWRITEBYTECODE is set (CI sets it):
# compiling every file at install took 80 s of the 91 s set-up, first imports compile the few they use
# (vLLM's first start 13 s more, once); never writing it would make every vLLM start 2x slower.
write_bytecode_on_import() {
  local site; site=$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "import sys; sys.dont_write_bytecode = False" > "$site/maas-write-bytecode.pth"
}

started=$(date +%s)
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
if [ -n "$BUNDLE" ]; then
  say "checking the room bundle $BUNDLE"
  "$PYTHON" -m helpers.bundle verify "$BUNDLE"
fi
install_apt_packages
install_uv
# torchvision/torchaudio/torchcodec from PyPI need CUDA and break vLLM's import; triton is unused on CPU.
make_venv .venv-serving requirements-serving.txt torchvision torchaudio torchcodec triton
make_venv .venv requirements.txt
make_venv .venv-gateway requirements-gateway.txt
for venv in .venv-serving .venv .venv-gateway; do write_bytecode_on_import "$venv"; done
root=$(pwd)
if ! (cd / && "$root/.venv/bin/python" -c 'import helpers.cli') 2>/dev/null; then  # importable from anywhere
  links=(); [ -n "$BUNDLE" ] && mapfile -t links < <(uv_links)  # its build needs setuptools: the bundle's
  "$UV" pip install -q -p .venv/bin/python "${links[@]}" --no-deps -e .
fi
say "the workshop model"
if [ -n "$BUNDLE" ]; then
  .venv/bin/python -m helpers.bundle install-model "$BUNDLE"
fi
.venv/bin/python -m helpers build-model
say "set-up done in $(( $(date +%s) - started )) s"
