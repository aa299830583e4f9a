#!/usr/bin/env bash
# Size of a core install: a fresh venv, `pip install <project>` (no extras), then the number of
# distributions it holds (pip, setuptools and wheel left out) and its size on disk.
#   bash benchmarks/bench_install.sh <project folder or sdist> <label>
set -euo pipefail
src=$1 label=$2
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1
start=$(date +%s)
"$venv/bin/pip" install -q "$src" >/dev/null
end=$(date +%s)
n=$("$venv/bin/pip" list --format=freeze | grep -v -E "^(pip|setuptools|wheel)==" | wc -l)
size=$(du -sm "$venv" | cut -f1)
echo "$label: distributions=$n venv_MB=$size install_s=$((end - start))"
"$venv/bin/pip" list --format=freeze | grep -v -E "^(pip|setuptools|wheel)==" > "$(dirname "$venv")/$label.txt"
echo "  package list: $(dirname "$venv")/$label.txt"
rm -rf "$venv"
