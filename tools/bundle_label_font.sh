#!/usr/bin/env bash
# Rebuild swapline/trust/fonts/wqy-microhei.ttf from Debian's fonts-wqy-microhei.
set -euo pipefail
apt-get install -y fonts-wqy-microhei
pip install fonttools
python - <<'PY'
from fontTools.ttLib import TTCollection
TTCollection("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc").fonts[0].save("/tmp/wqy-microhei-full.ttf")
PY
pyftsubset /tmp/wqy-microhei-full.ttf --unicodes='*' --no-hinting --layout-features='*' --name-IDs='*' \
  --output-file="$(dirname "$0")/../swapline/trust/fonts/wqy-microhei.ttf"
