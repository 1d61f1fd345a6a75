#!/usr/bin/env bash
# Build the wheel and the sdist, install the wheel into a fresh virtual environment outside the source tree, and run
# what a user runs first there: `mimae --version`, the --quick pretraining and the API example. The dependencies
# (torch alone is gigabytes) are shared from the project's environment through a path file; mimae itself comes
# from the wheel only (checked).
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree=$(pwd)
VENV=${VENV:-.venv}
rm -rf dist
"$VENV/bin/python" -m build --wheel --sdist --outdir dist . >/dev/null
ls dist/mimae-*.whl dist/mimae-*.tar.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
deps=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
fresh=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$deps" > "$fresh/mimae-dependencies.pth"
"$work/venv/bin/python" -m pip install -q --no-deps --no-index dist/mimae-*.whl
cp -r examples "$work/examples"
cd "$work"
"$work/venv/bin/python" - <<PY
import mimae, pathlib
where = pathlib.Path(mimae.__file__).resolve()
assert str(where).startswith("$work/venv/"), f"mimae imported from {where}, not from the wheel"
assert (where.parent / "py.typed").is_file(), "py.typed is not in the wheel"
print(f"mimae {mimae.__version__} from {where.parent}")
PY
venv/bin/mimae --version
venv/bin/mimae pretrain --quick --output-dir runs/quick train.epochs=1 >/dev/null
test -f runs/quick/results.json && test -f runs/quick/report.html
venv/bin/python examples/compare_two_methods.py --epochs 1 --seeds 0 1 --out runs/compare --set \
    model.embed_dim=32 model.depth=2 model.num_heads=2 model.decoder_dim=32 model.decoder_depth=1 \
    model.decoder_heads=2 data.image_size=16 model.patch_size=4 data.train_limit=256 data.test_limit=64 \
    eval.knn_bank_limit=256 eval.knn_query_limit=64 train.precision=fp32 | tail -1
echo "wheel check passed (source tree: $source_tree)"
