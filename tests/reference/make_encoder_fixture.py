#!/usr/bin/python3
"""make_encoder_fixture.py: the ECG encoder (lua/ecgwb/models/ecg_encoder.lua,
config "tiny") rebuilt in plain PyTorch, for tests/test_encoder_parity.lua.

Run with Debian's PyTorch (`make fixtures`: /usr/bin/python3, python3-torch
1.13, python3-h5py). Float32, torch.manual_seed(0). The written file is
committed, so `make test` needs no PyTorch.

The model is written from the Lua file's header, with PyTorch's own modules
wherever one exists (nn.Conv1d, nn.GroupNorm, nn.LayerNorm, nn.Linear,
nn.TransformerEncoder with norm_first and a final norm, torch._weight_norm
for the positional conv), so that the two sides share no code:
  x (B, 12, L) * lead_mask -> 4 x [Conv1d(k2, s2, no bias), GroupNorm(C, C)
  after the first, GELU] -> LayerNorm(C) = features (B, T, C)
  -> post_extract_proj -> masked frames replaced by mask_emb
  -> + lead_mask @ lead_emb (every frame)
  -> + GELU(weight-normalised grouped Conv1d(D, D, K, padding K/2, groups),
       the last frame dropped as K is even; norm over (out, in) per tap)
  -> pre-LN TransformerEncoder (GELU, dropout 0) with a final LayerNorm
  = frames (B, T, D); pooled = mean over frames (B, D).
Contrastive pretraining head, the quantizer deterministic (eval: argmax,
no Gumbel noise): logits = weight_proj(features) (B*T*G, V), avg_probs =
mean over frames of softmax(logits) (G, V), ids = argmax, q = vars[g, ids]
(B*T, G*d); y = project_q(q), c = final_proj(frames).

The reference runs in float64 (weights, input and masks are float32 values;
outputs and gradients are stored as float32). In float32, Debian's PyTorch
1.13 gets the feature extractor's gradients wrong: F.gelu's backward with a
non-contiguous grad_output (here the transpose before the LayerNorm) returns
wrong values (checked against its own finite differences and its float64
path; x = randn(2,64,16) with grad_output randn(2,16,64).transpose(1,2)
reproduces it). float64 does not take that path.

Weights: PyTorch's initialisation plus noise on every parameter (so layers
differ, biases and norm affines are not trivial), pos_conv_g = ||v|| per
tap times 1 + noise, then rounded to bfloat16 values (stored as float32:
the low mantissa bytes are zero, so the file compresses; the model is still
an arbitrary float32 model).

tests/fixtures/encoder.h5 (datasets gzip-compressed with shuffle):
    params/<name>        every parameter by its ecgwb state_dict name
    x (2, 12, 256)       input, mV-like scale
    lead_mask (2, 12)    1 = present; record 0 lacks 3 leads, record 1 has only 4
    frame_mask (2, 16)   1 = masked frame (the mask embedding replaces it)
    out/frames (2, 16, 64), out/pooled (2, 64), out/features (2, 16, 64)
    out/ids (32, 2) i64  the quantizer's codes; out/q (32, 32); out/y (32, 32);
    out/c (2, 16, 32); out/avg_probs (2, 32)
    r/<output>           fixed random weights R, one per output above
    loss                 sum over outputs of sum(out * R) (frames, pooled,
                         c, y, avg_probs)
    grad/params/<name>   d loss / d parameter, every parameter
    grad/x               d loss / d x
    min_logit_gap        the smallest top-1 - top-2 gap of the quantizer's
                         logits (argmax must not be a near tie)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "encoder.h5")

# configs of ecg_encoder.lua (tests/bench/bench_torch.py builds "small")
CONFIGS = {
    "tiny": dict(leads=12, conv_channels=64, n_conv=4, d_model=64, layers=2, ffn=128, heads=4, dropout=0.0,
                 pos_kernel=16, pos_groups=4, quant_groups=2, quant_vars=32, final_dim=32),
    "small": dict(leads=12, conv_channels=128, n_conv=4, d_model=256, layers=4, ffn=1024, heads=4, dropout=0.1,
                  pos_kernel=64, pos_groups=16, quant_groups=2, quant_vars=64, final_dim=128),
}
TINY = CONFIGS["tiny"]
C = TINY["conv_channels"]
B, L = 2, 256
T = L // 2 ** TINY["n_conv"]
# gradients are stored rounded to 16 mantissa bits (relative rounding error
# <= 2^-17 = 7.6e-6 of each value, far below the test's 1e-4 of the largest):
# the zeroed low bits let the file compress under 1 MB
GRAD_BITS = 16


class Quantizer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.G, self.V, self.F = c["quant_groups"], c["quant_vars"], c["final_dim"]
        self.vars = nn.Parameter(torch.rand(self.G, self.V, self.F // self.G))  # (G, V, d)
        self.weight_proj = nn.Linear(c["conv_channels"], self.G * self.V)
        nn.init.normal_(self.weight_proj.weight, 0, 1)

    def forward(self, x):  # x (N, C), deterministic (eval)
        n = x.shape[0]
        logits = self.weight_proj(x).reshape(n, self.G, self.V)
        avg_probs = torch.softmax(logits, -1).mean(0)          # (G, V)
        ids = logits.argmax(-1)                                # (N, G)
        q = self.vars[torch.arange(self.G).unsqueeze(0), ids]  # (N, G, d)
        top2 = logits.detach().topk(2, -1).values
        gap = (top2[..., 0] - top2[..., 1]).min().item()
        return q.reshape(n, self.F), ids, avg_probs, gap


class Encoder(nn.Module):
    """ecg_encoder.lua's EcgEncoder (lead embedding on, extractor "default");
    heads=True adds the contrastive pretraining head (objective
    "contrastive"), heads=False is objective "none"."""

    def __init__(self, c=TINY, heads=True):
        super().__init__()
        Lc, Cc, D, K = c["leads"], c["conv_channels"], c["d_model"], c["pos_kernel"]
        self.pos_kernel, self.pos_groups = K, c["pos_groups"]
        self.conv_layers = nn.ModuleList(
            [nn.Conv1d(Lc if i == 0 else Cc, Cc, 2, stride=2, bias=False) for i in range(c["n_conv"])])
        self.conv_norms = nn.ModuleList([nn.GroupNorm(Cc, Cc)])
        self.layer_norm = nn.LayerNorm(Cc)
        self.post_extract_proj = nn.Linear(Cc, D)
        self.mask_emb = nn.Parameter(torch.rand(D))
        self.lead_emb = nn.Parameter(0.02 * torch.randn(Lc, D))
        self.pos_conv_v = nn.Parameter(torch.randn(D, D // c["pos_groups"], K) * (4 / (K * D)) ** 0.5)
        self.pos_conv_g = nn.Parameter(torch.ones(1, 1, K))
        self.pos_conv_bias = nn.Parameter(torch.zeros(D))
        layer = nn.TransformerEncoderLayer(D, c["heads"], c["ffn"], dropout=c["dropout"], activation="gelu",
                                           norm_first=True, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, c["layers"], norm=nn.LayerNorm(D), enable_nested_tensor=False)
        if heads:
            self.quantizer = Quantizer(c)
            self.project_q = nn.Linear(c["final_dim"], c["final_dim"])
            self.final_proj = nn.Linear(D, c["final_dim"])

    def forward(self, x, lead_mask, frame_mask=None):
        h = x * lead_mask.unsqueeze(2)
        for i, conv in enumerate(self.conv_layers):
            h = conv(h)
            if i == 0:
                h = self.conv_norms[0](h)
            h = F.gelu(h)
        feats = self.layer_norm(h.transpose(1, 2))             # (B, T, C)
        h = self.post_extract_proj(feats)                      # (B, T, D)
        if frame_mask is not None:
            m = frame_mask.unsqueeze(2)
            h = torch.where(m > 0.5, self.mask_emb.expand_as(h), h)
        h = h + (lead_mask @ self.lead_emb).unsqueeze(1)
        w = torch._weight_norm(self.pos_conv_v, self.pos_conv_g, 2)
        K = self.pos_kernel
        p = F.conv1d(h.transpose(1, 2), w, self.pos_conv_bias, padding=K // 2, groups=self.pos_groups)
        if K % 2 == 0:
            p = p[:, :, :-1]                                   # even kernel: drop the last frame
        h = h + F.gelu(p).transpose(1, 2)
        frames = self.encoder(h)
        return frames, frames.mean(1), feats


def perturb(model):
    norms = {n for n, m in model.named_modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))}
    with torch.no_grad():
        for name, p in model.named_parameters():
            owner, leaf = name.rpartition(".")[0], name.rpartition(".")[2]
            if name == "pos_conv_g":      # g = ||v|| per tap, then off by up to ~20%
                norm = model.pos_conv_v.pow(2).sum((0, 1), keepdim=True).sqrt()
                p.copy_(norm * (1 + 0.2 * torch.randn(p.shape)))
            elif owner in norms:          # norm affines: weight ~ 1 + N(0, 0.1^2), bias ~ N(0, 0.1^2)
                p.copy_((1 if leaf == "weight" else 0) + 0.1 * torch.randn(p.shape))
            else:                         # + noise at 5% of the parameter's spread (N(0, 0.02^2) for zero biases)
                spread = p.std().item() if p.numel() > 1 else 0.0
                p.add_((0.05 * spread if spread > 0 else 0.02) * torch.randn(p.shape))
        for p in model.parameters():
            p.copy_(p.bfloat16().float())
    return model


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = perturb(Encoder(TINY)).double()
    x = (0.5 * torch.randn(B, TINY["leads"], L)).bfloat16().double().requires_grad_(True)
    lead_mask = torch.ones(B, TINY["leads"], dtype=torch.float64)
    lead_mask[0, [2, 5, 9]] = 0
    lead_mask[1, :] = 0
    lead_mask[1, [0, 1, 6, 11]] = 1
    frame_mask = torch.zeros(B, T, dtype=torch.float64)
    frame_mask[0, 3:8] = 1
    frame_mask[1, 10:15] = 1

    frames, pooled, feats = model(x, lead_mask, frame_mask)
    q, ids, avg_probs, gap = model.quantizer(feats.reshape(B * T, C))
    y = model.project_q(q)
    c = model.final_proj(frames)
    outs = {"frames": frames, "pooled": pooled, "c": c, "y": y, "avg_probs": avg_probs}
    r = {k: torch.randn(v.shape).double() for k, v in outs.items()}
    loss = sum((v * r[k]).sum() for k, v in outs.items())
    loss.backward()

    # the reference checks itself: central differences (float64) on a few
    # entries of parameters at both ends of the model
    def loss_at():
        with torch.no_grad():
            fr, po, fe = model(x, lead_mask, frame_mask)
            qq, _, ap, _ = model.quantizer(fe.reshape(B * T, C))
            o = {"frames": fr, "pooled": po, "c": model.final_proj(fr), "y": model.project_q(qq), "avg_probs": ap}
            return sum((v * r[k]).sum() for k, v in o.items()).item()
    for name in ("conv_layers.0.weight", "conv_norms.0.bias", "pos_conv_g", "encoder.layers.1.linear2.weight"):
        p = dict(model.named_parameters())[name]
        flat = p.detach().view(-1)
        for i in (0, flat.numel() // 2, flat.numel() - 1):
            old = flat[i].item()
            flat[i] = old + 1e-6
            up = loss_at()
            flat[i] = old - 1e-6
            down = loss_at()
            flat[i] = old
            fd, ad = (up - down) / 2e-6, p.grad.view(-1)[i].item()
            assert abs(fd - ad) <= 1e-5 * (1 + abs(ad)), f"{name}[{i}]: autograd {ad} vs finite difference {fd}"
    assert gap > 1e-2, f"quantizer logits nearly tied ({gap}); change the seed"

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # the 1.10 file format's compact chunk indexes: far less overhead per dataset
    with h5py.File(OUT, "w", libver=("v110", "v110")) as f:
        def save(name, t, keep_bits=None):
            a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
            if a.dtype == np.float64:
                a = a.astype(np.float32)
            if keep_bits is not None:   # round to keep_bits of float32's 23 mantissa bits
                drop = 23 - keep_bits
                u = a.astype(np.float32).view(np.uint32)
                u = ((u + np.uint32(1 << (drop - 1))) & ~np.uint32((1 << drop) - 1)).astype(np.uint32)
                a = u.view(np.float32)
            if a.ndim == 0 or a.nbytes < 1024:
                f.create_dataset(name, data=a, track_times=False)
            else:
                f.create_dataset(name, data=a, compression="gzip", compression_opts=9, shuffle=True, track_times=False)
        for k, v in model.state_dict().items():
            save(f"params/{k}", v)
        for k, p in model.named_parameters():
            save(f"grad/params/{k}", p.grad, keep_bits=GRAD_BITS)
        save("x", x)
        save("lead_mask", lead_mask)
        save("frame_mask", frame_mask)
        for k, v in outs.items():
            save(f"out/{k}", v)
            save(f"r/{k}", r[k])
        save("out/features", feats)
        save("out/ids", ids)
        save("out/q", q)
        save("loss", np.float32(loss.item()))
        save("grad/x", x.grad, keep_bits=GRAD_BITS)
        save("min_logit_gap", np.float32(gap))
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {os.path.normpath(OUT)}: {n} parameters, {os.path.getsize(OUT) / 1e3:.0f} kB, "
          f"loss {loss.item():.6g}, min logit gap {gap:.3g}")


if __name__ == "__main__":
    sys.exit(main())
