#!/usr/bin/python3
"""load_state_dict_torch.py: a PyTorch model loading weights that ecgwb wrote.

ecgwb's wb.save_state_dict(file, model:state_dict()) writes one plain HDF5
dataset per state_dict entry, named as PyTorch names it. This script builds
the PyTorch twin of ecgwb's small ECG encoder (tests/test_h5_torch.sh builds
the same model in Lua: a strided Conv1d feature extractor, a projection, a
pre-LayerNorm TransformerEncoderLayer, a final LayerNorm, mean pooling and a
linear head), reads the weights with h5py, load_state_dict(strict=True)s
them, runs the ECG batch that ecgwb ran, and compares the outputs.

    /usr/bin/python3 tests/reference/load_state_dict_torch.py WEIGHTS.h5 IO.h5
IO.h5 holds x (B, 12, L) and ecgwb's output y (B, 5). Exit status 0 when the
normalised error max|y_torch - y| / max|y| is at most 1e-5 (--tol to change).
Needs python3-torch and python3-h5py (Debian).
"""
import argparse
import sys

import h5py
import numpy as np
import torch
from torch import nn


class TinyEncoder(nn.Module):
    """the twin of the Lua model in tests/test_h5_torch.sh (same attribute names)"""

    def __init__(self, d=32, heads=4, ff=64, classes=5):
        super().__init__()
        self.conv1 = nn.Conv1d(12, 16, 2, stride=2)
        self.conv2 = nn.Conv1d(16, 16, 2, stride=2)
        self.proj = nn.Linear(16, d)
        self.layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0, activation="gelu",
                                                batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):                                  # x (B, 12, L) mV
        h = nn.functional.gelu(self.conv1(x))              # (B, 16, L/2)
        h = nn.functional.gelu(self.conv2(h))              # (B, 16, L/4)
        h = self.proj(h.transpose(1, 2))                   # (B, T, D)
        h = self.norm(self.layer(h))                       # (B, T, D)
        return self.head(h.mean(1))                        # (B, classes)


def load_h5_state_dict(path):
    """every dataset of the file, by its path, as a tensor"""
    sd = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: sd.__setitem__(name, torch.from_numpy(np.array(obj[()])))
                     if isinstance(obj, h5py.Dataset) else None)
    return sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("io")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    torch.manual_seed(0)  # a different init, so the loaded weights are what counts
    model = TinyEncoder().eval()
    model.load_state_dict(load_h5_state_dict(a.weights), strict=True)
    with h5py.File(a.io, "r") as f:
        x = torch.from_numpy(f["x"][()])
        y = torch.from_numpy(f["y"][()])
    with torch.no_grad():
        out = model(x)
    err = ((out - y).abs().max() / (y.abs().max() + 1e-6)).item()
    print(f"PyTorch {torch.__version__} loaded {len(model.state_dict())} tensors from {a.weights}; "
          f"output {tuple(out.shape)}, normalised error vs ecgwb {err:.2e} (tol {a.tol:.0e})")
    return 0 if err <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
