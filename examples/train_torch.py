"""Train a small 3-D U-Net on the demo data with PyTorch, fed by cellmap-data through shared memory.

    npm run example:torch        # builds, writes the demo data, runs this on the CPU

The loader runs as a child process (``serve``), reads augmented patches with its worker
threads, and hands each batch over through shared memory: the training loop only waits when
the data falls behind. Printed: the loss, samples/s, and the data-stall fraction (the share of
step time spent waiting for the next batch).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from cellmap_data_client import CellMapIterableDataset, serve

CLASSES = ["mito", "er", "nuc"]


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.Conv3d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet3d(nn.Module):
    """Two levels, 8 and 16 channels: small enough for a CPU."""

    def __init__(self, cin: int = 1, cout: int = len(CLASSES), width: int = 8):
        super().__init__()
        self.down = block(cin, width)
        self.bottom = block(width, 2 * width)
        self.up = nn.ConvTranspose3d(2 * width, width, 2, stride=2)
        self.out = nn.Sequential(block(2 * width, width), nn.Conv3d(width, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.down(x)
        b = self.bottom(nn.functional.max_pool3d(a, 2))
        return self.out(torch.cat([a, self.up(b)], dim=1))


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over annotated voxels only (NaN marks unknown)."""
    known = ~torch.isnan(target)
    return nn.functional.binary_cross_entropy_with_logits(logits[known], target[known])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasplit", required=True, help="datasplit CSV (the demo writes one)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    a = p.parse_args()
    torch.manual_seed(0)
    spec = {"shape": [32, 32, 32], "scale": [8, 8, 8]}
    config = {
        "input_arrays": {"raw": spec},
        "target_arrays": {"gt": spec},
        "classes": CLASSES,
        "spatial_transforms": {"mirror": {"axes": {"x": 0.5, "y": 0.5}}, "rotate": {"axes": {"z": [-30, 30]}}},
        "pad": True,
    }
    with serve(a.datasplit, config, a.workers, batch_size=a.batch_size) as server:
        ds = CellMapIterableDataset(server)
        model = UNet3d()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step, waited, samples, losses = 0, 0.0, 0, []
        t0 = time.perf_counter()
        while step < a.steps:
            it = iter(DataLoader(ds, batch_size=None, num_workers=0))
            while step < a.steps:
                w0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break  # next epoch
                waited += time.perf_counter() - w0
                loss = masked_bce(model(batch["raw"]), batch["gt"])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                samples += batch["raw"].shape[0]
                step += 1
                del batch  # frees the batch's shared-memory slot at once
                if step % 10 == 0:
                    print(f"step {step:3d}  loss {sum(losses[-10:]) / len(losses[-10:]):.4f}", flush=True)
        total = time.perf_counter() - t0
        print(f"transport {ds.used_transport}; {samples} samples in {total:.1f} s: {samples / total:.1f} samples/s; data stall {waited / total:.1%} of step time")
        print(f"loss: first 10 steps {sum(losses[:10]) / 10:.4f}, last 10 steps {sum(losses[-10:]) / 10:.4f}")


if __name__ == "__main__":
    main()
