#!/usr/bin/env bash
# Install everything livematte needs on a fresh Debian machine (Python 3.11, no GPU):
# Debian's Chromium + chromedriver (web-page test) and Xvfb (window test), then a virtual
# environment in .venv with livematte, the CPU ONNX Runtime, the server and the test tools, at the
# versions pinned in requirements-lock.txt, and Ray for `--engine ray`.
# Usage: ./install.sh            (GPU users: see README, "CPU or GPU")
set -euo pipefail
cd "$(dirname "$0")"

packages=()
for pkg in chromium chromium-driver xvfb; do
    dpkg -s "$pkg" >/dev/null 2>&1 || packages+=("$pkg")
done
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

python3 -m venv .venv
# Exactly the versions that were tested (requirements-lock.txt, made by scripts/lock.sh from
# pyproject.toml's ranges), then livematte itself on top of them without resolving again.
.venv/bin/pip install -q --upgrade 'pip==26.3'
.venv/bin/pip install -q -r requirements-lock.txt
.venv/bin/pip install -q --no-deps -e '.[cpu,server,ray,test]'
.venv/bin/pip check
.venv/bin/livematte models verify
