"""MI-MAE in a plain PyTorch loop over a folder of images (``root/class/*.jpg``).

    python examples/mimae_in_a_plain_loop.py --data-dir /data/images --image-size 64 --steps 1000
"""

import argparse

import torch
from torchvision import datasets, transforms

import mimae

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", required=True)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--steps", type=int, default=100)
args = parser.parse_args()

data = datasets.ImageFolder(args.data_dir, transforms.Compose([
    transforms.RandomResizedCrop(args.image_size, scale=(0.2, 1.0)), transforms.RandomHorizontalFlip(),
    transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.25] * 3)]))
loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True, drop_last=True)
obj = mimae.objective("mimae", image_size=args.image_size, model={"size": "mini", "patch_size": 8}, seed=0)
optimizer = torch.optim.AdamW(obj.parameters(), lr=1.5e-4 * 32 * obj.views_per_image / 256, weight_decay=0.05)
step = 0
while step < args.steps:
    for images, _ in loader:
        out = obj(images)  # draws 4 orthogonal masks per image; named losses
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        obj.after_step(out)
        step += 1
        if step % 10 == 0 or step == args.steps:
            print(f"step {step}: loss {out['loss'].item():.4f}, L_rec {out['rec'].item():.4f}, "
                  f"InfoNCE bound {out['infonce_bound'].item():.3f} nats")
        if step == args.steps:
            break
torch.save(obj.encoder.state_dict(), "mimae_encoder.pt")
