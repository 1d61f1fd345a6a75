#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md in one command (a lent GPU machine's time is short):
# ViT-B/16 at 224 px, bf16: the MAE step (samples/s, split, MFU, peak memory), MI-MAE vs MAE per sample, and the
# side-by-side with lightly; then the default job's kNN share and the data loader. JSON to benchmarks/results/gpu/.
#   bash benchmarks/gpu.sh            (after `make setup`, or with mimae and lightly installed)
set -euo pipefail
cd "$(dirname "$0")/.."
MIMAE=${MIMAE:-.venv/bin/mimae}
OUT=benchmarks/results/gpu
VITB="model.size=base data.image_size=224 model.patch_size=16"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$MIMAE bench step    --device cuda --precision bf16 --batch 128 --steps 10 --rounds 5 --out $OUT $VITB
$MIMAE bench methods --device cuda --precision bf16 --batch 128 --steps 10 --rounds 5 --out $OUT $VITB
$MIMAE bench lightly --device cuda --precision bf16 --batch 128 --steps 10 --rounds 5 --out $OUT $VITB
$MIMAE bench step    --device cuda --precision bf16 --batch 128 --steps 20 --rounds 5 --out $OUT/tiny
$MIMAE bench knn     --device cuda --out $OUT
$MIMAE bench data    --device cuda --precision bf16 --out $OUT
