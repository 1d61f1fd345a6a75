"""A pretrained encoder loaded into timm and fine-tuned on a folder of labelled images (``root/class/*.jpg``).

    python examples/finetune_in_timm.py --checkpoint runs/mae --data-dir /data/images --epochs 10
"""

import argparse

import torch
from timm.optim import create_optimizer_v2
from torchvision import datasets, transforms

import mimae

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", required=True, help="a run folder, checkpoint or mimae export file")
parser.add_argument("--data-dir", required=True)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--mean", type=float, nargs="+", default=[0.5], help="the run's input mean, per channel")
parser.add_argument("--std", type=float, nargs="+", default=[0.25], help="the run's input std, per channel")
args = parser.parse_args()

data = datasets.ImageFolder(args.data_dir)
model = mimae.load_encoder(args.checkpoint, num_classes=len(data.classes), global_pool="avg")
channels, size = model.patch_embed.proj.in_channels, model.patch_embed.img_size[0]
data.transform = transforms.Compose([
    transforms.Grayscale() if channels == 1 else transforms.Lambda(lambda image: image.convert("RGB")),
    transforms.RandomResizedCrop(size, scale=(0.5, 1.0)), transforms.ToTensor(),
    transforms.Normalize(args.mean, args.std)])
loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
model.train()
for epoch in range(args.epochs):
    correct = seen = 0
    for images, labels in loader:
        logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    print(f"epoch {epoch + 1}: loss {loss.item():.4f}, training accuracy {100 * correct / seen:.1f}%")
