#!/usr/bin/env bash
# Make Fashion-MNIST available offline: Debian/Ubuntu's dataset-fashion-mnist package, when we may install it.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -n "${MIMAE_DATA:-}" ] || [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
  echo "Fashion-MNIST is not installed; mimae will try torchvision's download (or set MIMAE_DATA)." >&2
fi
