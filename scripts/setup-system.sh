#!/usr/bin/env bash
# System packages some tests use, installed here once instead of from inside a test:
#   nginx          remote-data integration tests (test/remote.test.ts, scripts/soak.ts)
#   python3-numpy  Debian's /usr/bin/python3 with numpy, for the Python client of `serve`
#   python3-torch  PyTorch for the client's IterableDataset, the DDP test and examples/train_torch.py
#   python3-venv   the offline `pip install` of clients/python into a venv (test/python-client.test.ts)
# Installs with apt-get as root (or passwordless sudo) when a package is missing, running
# `apt-get update` only if the plain install fails. When it cannot (not root, no apt-get) it
# says so in one line and exits 0: the tests that need the tool then skip with one line.
# `.ci/run` calls it; `npm test` calls it too (pretest) with --quiet.
set -uo pipefail
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup-system: $*"; }

missing=()
have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || [ -x /usr/local/sbin/nginx ]; }
have_nginx || missing+=(nginx)
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c "import numpy" >/dev/null 2>&1 || missing+=(python3-numpy)
  /usr/bin/python3 -c "import torch" >/dev/null 2>&1 || missing+=(python3-torch)
  /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
else
  missing+=(python3 python3-numpy python3-torch python3-venv)
fi
if [ ${#missing[@]} -eq 0 ]; then
  say "nginx, python3-numpy, python3-torch and python3-venv present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: missing ${missing[*]} and no apt-get to install them; tests that need them will skip" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then run=(); elif sudo -n true >/dev/null 2>&1; then run=(sudo -n); else
  echo "setup-system: missing ${missing[*]}; installing needs root (apt-get install -y ${missing[*]}); tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
install() { "${run[@]}" apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "${missing[@]}" >/tmp/setup-system.log 2>&1; }
if ! install; then
  "${run[@]}" apt-get update >>/tmp/setup-system.log 2>&1
  if ! install; then
    echo "setup-system: apt-get install ${missing[*]} failed (log: /tmp/setup-system.log); tests that need them will skip" >&2
    exit 0
  fi
fi
say "installed ${missing[*]}"
