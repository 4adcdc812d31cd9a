#!/usr/bin/env bash
# Install the NEWEST versions pyproject.toml's ranges allow (ignoring requirements-lock.txt) into a
# scratch venv and run the test suite there, to find a break such as OpenCV 5.1's on purpose,
# before a user does. On success, `scripts/lock.sh --upgrade` moves the lock to those versions.
# Usage: scripts/check_latest.sh [pytest args...]     (venv: $LATEST_VENV, default /tmp/livematte-latest)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LATEST_VENV:-${TMPDIR:-/tmp}/livematte-latest}
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q --upgrade --upgrade-strategy eager -e '.[cpu,server,ray,test]'
echo "newest allowed versions that differ from requirements-lock.txt:"
# PEP 503 names (lower case, - for _ and .), environment markers dropped
normal() { sed 's/ *;.*//' | awk -F'==' '{n = tolower($1); gsub(/[_.]/, "-", n); print n "==" $2}' | sort; }
"$venv/bin/pip" freeze --exclude-editable | normal | comm -23 - <(grep '==' requirements-lock.txt | normal) | sed 's/^/  /'
LIVEMATTE_UNLOCKED=1 "$venv/bin/python" -m pytest -q "$@"
