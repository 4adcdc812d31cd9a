#!/usr/bin/env bash
# The peers' venv for scripts/bench_peers.py: MediaPipe 0.10.21 (the last with the legacy
# "solutions" API) needs numpy < 2, so it cannot share .venv. Pinned to what was measured.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-peers
.venv-peers/bin/pip install -q 'mediapipe==0.10.21' 'numpy==1.26.4' 'opencv-contrib-python==4.11.0.86' 'av==18.1.0'
.venv-peers/bin/python -c "import mediapipe, numpy; print('mediapipe', mediapipe.__version__, 'numpy', numpy.__version__)"
