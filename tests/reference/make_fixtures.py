#!/usr/bin/python3
"""make_fixtures.py: PyTorch reference values for tests/test_parity.lua.

Run with Debian's PyTorch (`make fixtures`, i.e. /usr/bin/python3 with
python3-torch 1.13 and python3-h5py). Everything is float32, seeded with
torch.manual_seed(0), dropout 0. The files are committed, so `make test`
needs no PyTorch; rerun this only when a case is added or changed.

tests/fixtures/ops.h5 -- one group per op case (the case names are the keys
of CASES in tests/test_parity.lua, which calls the ecgwb op the same way):
    <case>/in/<name>     inputs, in call order by name (f32, i64 indices, bool masks)
    <case>/out           the forward output (the values, for max/min)
    <case>/out_indices   max/min only: the i64 indices
    <case>/gout          a random upstream gradient d loss / d out, shaped like out
    <case>/grad/<name>   d loss / d input for every differentiable input,
                         where loss = sum(out * gout)
  Inputs are chosen away from non-differentiable points (no ties for max,
  positive inputs for log/sqrt, ...).

tests/fixtures/transformer.h5 -- d_model 32, nhead 4, dim_feedforward 64,
dropout 0, activation "gelu", norm_first True, batch_first True, 2 layers,
no final norm; PyTorch's initialisation plus N(0, 0.05^2) noise on every
parameter (so the layers differ and biases are non-zero):
    encoder/params/<name>       nn.TransformerEncoder state_dict ("layers.0.self_attn.in_proj_weight", ...)
    encoder/src                 (2, 7, 32) input
    encoder/out                 (2, 7, 32) output
    encoder/gout                (2, 7, 32) fixed random R; loss = sum(out * R)
    encoder/grad/src            d loss / d src
    encoder/grad/params/<name>  d loss / d parameter
    encoder_kpm/src, encoder_kpm/src_key_padding_mask (2, 7) bool, true = padding (PyTorch's sense),
    encoder_kpm/out, encoder_kpm/gout, encoder_kpm/grad/src
                                the same encoder (encoder/params) with a key padding mask
    decoder/params/<name>       nn.TransformerDecoder state_dict
    decoder/tgt                 (2, 6, 32); causal self-attention
    decoder/tgt_mask            (6, 6) the float square subsequent mask (0 / -inf) that was passed
    decoder/memory              (2, 7, 32) random
    decoder/out, decoder/gout, decoder/grad/tgt, decoder/grad/memory, decoder/grad/params/<name>
    adamw/x, adamw/y            (2, 7, 32) regression input and target; loss = mse(encoder(x), y)
    adamw/losses                (5,) the loss before each of 5 torch.optim.AdamW steps
                                (lr 1e-3, weight_decay 0.01, betas (0.9, 0.999), eps 1e-8),
                                starting from encoder/params
    adamw/final/<name>          the parameters after the 5 steps. The key third of each
                                in_proj_bias has a gradient of exactly 0 in exact arithmetic
                                (softmax ignores a constant added to every key score), so its
                                rounding noise (~1e-9) becomes AdamW updates of +-lr: compare
                                that part to within 5 steps of 2 lr, not to rounding.
"""
import copy
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def randn(*s):
    return torch.randn(*s, dtype=torch.float32)


def pos(*s):  # away from 0: for log, sqrt, rsqrt, division
    return torch.rand(*s, dtype=torch.float32) + 0.5


def save(f, name, t):
    a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    f[name] = a


CASES = []


def case(name, inputs, fn, nograd=()):
    """inputs: list of (name, tensor); f32 inputs not in nograd get gradients."""
    CASES.append((name, inputs, fn, set(nograd)))


# ---- elementwise with broadcasting
case("add", [("a", randn(2, 3, 4)), ("b", randn(3, 1))], lambda a, b: a + b)
case("sub", [("a", randn(4, 1)), ("b", randn(3, 1, 5))], lambda a, b: a - b)
case("mul", [("a", randn(2, 3, 4)), ("b", randn(4))], lambda a, b: a * b)
case("div", [("a", randn(2, 3)), ("b", pos(2, 1))], lambda a, b: a / b)
case("maximum", [("a", randn(2, 5)), ("b", randn(5))], torch.maximum)
case("minimum", [("a", randn(3, 4)), ("b", randn(3, 4))], torch.minimum)
case("add_scalar", [("a", randn(3, 4))], lambda a: a + 1.5)
case("mul_scalar", [("a", randn(3, 4))], lambda a: a * -2.5)
case("rdiv_scalar", [("a", pos(3, 4))], lambda a: 3.0 / a)
# ---- unary
case("neg", [("x", randn(3, 4))], torch.neg)
case("exp", [("x", randn(3, 4))], torch.exp)
case("log", [("x", pos(3, 4))], torch.log)
case("sqrt", [("x", pos(3, 4))], torch.sqrt)
case("rsqrt", [("x", pos(3, 4))], torch.rsqrt)
case("abs", [("x", randn(3, 4))], torch.abs)
case("pow", [("x", pos(3, 4))], lambda x: torch.pow(x, 2.5))
case("pow_int", [("x", randn(3, 4))], lambda x: torch.pow(x, 3))
case("clamp", [("x", randn(4, 5) * 2)], lambda x: torch.clamp(x, -1.0, 0.5))
case("clamp_min", [("x", randn(4, 5))], lambda x: torch.clamp(x, min=0.0))
case("tanh", [("x", randn(3, 4))], torch.tanh)
case("sigmoid", [("x", randn(3, 4))], torch.sigmoid)
case("relu", [("x", randn(3, 4))], torch.relu)
case("gelu", [("x", randn(3, 4) * 2)], F.gelu)
case("gelu_tanh", [("x", randn(3, 4) * 2)], lambda x: F.gelu(x, approximate="tanh"))
case("silu", [("x", randn(3, 4))], F.silu)
case("sin", [("x", randn(3, 4))], torch.sin)
case("cos", [("x", randn(3, 4))], torch.cos)
# ---- reductions
case("sum_all", [("x", randn(3, 4))], torch.sum)
case("sum_dim", [("x", randn(2, 3, 4))], lambda x: x.sum(1))
case("sum_dims_keepdim", [("x", randn(2, 3, 4))], lambda x: x.sum((0, 2), keepdim=True))
case("mean_dim", [("x", randn(2, 3, 4))], lambda x: x.mean(-1))
case("var_dim", [("x", randn(2, 3, 5))], lambda x: x.var(1))
case("var_pop_keepdim", [("x", randn(2, 3, 5))], lambda x: x.var(-1, unbiased=False, keepdim=True))
case("std_dim", [("x", randn(2, 3, 5))], lambda x: x.std(2))
case("max_dim", [("x", randn(3, 5))], lambda x: x.max(1))
case("min_dim_keepdim", [("x", randn(3, 5))], lambda x: x.min(0, keepdim=True))
case("logsumexp", [("x", randn(2, 3, 4))], lambda x: torch.logsumexp(x, 1))
# ---- linear algebra, convolution
case("matmul_batched", [("a", randn(2, 3, 4)), ("b", randn(2, 4, 5))], torch.matmul)
case("matmul_broadcast", [("a", randn(2, 1, 3, 4)), ("b", randn(3, 4, 5))], torch.matmul)
case("matmul_transposed", [("a", randn(3, 4)), ("b", randn(5, 4))], lambda a, b: a @ b.t())
case("linear", [("x", randn(2, 3, 4)), ("w", randn(5, 4)), ("b", randn(5))], F.linear)
case("linear_nobias", [("x", randn(6, 4)), ("w", randn(3, 4))], F.linear)
case("conv1d", [("x", randn(2, 3, 9)), ("w", randn(5, 3, 3)), ("b", randn(5))], F.conv1d)
case("conv1d_strided", [("x", randn(2, 4, 12)), ("w", randn(6, 2, 3)), ("b", randn(6))],
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2))
case("conv_transpose1d", [("x", randn(2, 4, 7)), ("w", randn(4, 3, 3)), ("b", randn(3))],
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1))
case("conv_transpose1d_groups", [("x", randn(2, 4, 6)), ("w", randn(4, 2, 3)), ("b", randn(4))],
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=1, padding=2, dilation=2, groups=2))
# ---- normalisation, softmax
case("layer_norm", [("x", randn(2, 3, 8)), ("w", randn(8)), ("b", randn(8))],
     lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5))
case("group_norm", [("x", randn(2, 6, 5)), ("w", randn(6)), ("b", randn(6))],
     lambda x, w, b: F.group_norm(x, 3, w, b, 1e-5))
case("rms_norm", [("x", randn(2, 3, 8)), ("w", randn(8))],
     lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w)
case("softmax", [("x", randn(2, 3, 5))], lambda x: F.softmax(x, -1))
case("log_softmax", [("x", randn(2, 3, 5))], lambda x: F.log_softmax(x, 1))
# ---- nn ops and losses
case("embedding", [("w", randn(10, 4)), ("idx", torch.tensor([[1, 3, 3], [9, 0, 1]]))], lambda w, i: F.embedding(i, w))
ce_t = torch.tensor([0, 4, -100, 2, 2, 1])
case("cross_entropy", [("logits", randn(6, 5)), ("target", ce_t)], lambda x, t: F.cross_entropy(x, t))
case("cross_entropy_smooth", [("logits", randn(6, 5)), ("target", ce_t)],
     lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1))
case("cross_entropy_sum", [("logits", randn(6, 5)), ("target", torch.tensor([1, 1, 3, 0, -1, 4]))],
     lambda x, t: F.cross_entropy(x, t, ignore_index=-1, label_smoothing=0.2, reduction="sum"))
case("cross_entropy_none", [("logits", randn(6, 5)), ("target", ce_t)],
     lambda x, t: F.cross_entropy(x, t, reduction="none"))
case("bce_with_logits", [("x", randn(4, 3) * 2), ("t", torch.rand(4, 3))],
     F.binary_cross_entropy_with_logits, nograd=("t",))
case("bce_with_logits_none", [("x", randn(4, 3) * 2), ("t", (torch.rand(4, 3) > 0.5).float())],
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"), nograd=("t",))
case("mse", [("a", randn(4, 3)), ("b", randn(4, 3))], F.mse_loss)
case("mse_sum", [("a", randn(4, 3)), ("b", randn(4, 3))], lambda a, b: F.mse_loss(a, b, reduction="sum"))
case("l1", [("a", randn(4, 3)), ("b", randn(4, 3))], F.l1_loss)
case("l1_none", [("a", randn(4, 3)), ("b", randn(4, 3))], lambda a, b: F.l1_loss(a, b, reduction="none"))
case("cosine_similarity", [("a", randn(4, 6)), ("b", randn(4, 6))], lambda a, b: F.cosine_similarity(a, b, -1, 1e-8))
case("cosine_similarity_dim0", [("a", randn(5, 3)), ("b", randn(5, 3))], lambda a, b: F.cosine_similarity(a, b, 0, 1e-8))
case("normalize", [("x", randn(3, 5))], lambda x: F.normalize(x, 2.0, -1, 1e-12))
# ---- shape ops
case("cat", [("a", randn(2, 3)), ("b", randn(2, 5))], lambda a, b: torch.cat([a, b], 1))
case("stack", [("a", randn(2, 3)), ("b", randn(2, 3))], lambda a, b: torch.stack([a, b], 0))
case("pad", [("x", randn(2, 3, 4))], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5))
case("gather", [("x", randn(3, 4)), ("idx", torch.tensor([[0, 0], [3, 1], [2, 2]]))], lambda x, i: torch.gather(x, 1, i))
case("index_select", [("x", randn(5, 3)), ("idx", torch.tensor([4, 0, 4, 2]))], lambda x, i: torch.index_select(x, 0, i))
case("where", [("cond", torch.rand(3, 4) > 0.5), ("a", randn(3, 4)), ("b", randn(4))], torch.where)
case("masked_fill", [("x", randn(3, 4)), ("mask", torch.tensor([[True, False, False, True]]))],
     lambda x, m: x.masked_fill(m, -2.0))
case("views", [("x", randn(2, 3, 4))],  # permute, narrow, step slice, select, unsqueeze, expand, reshape
     lambda x: x.permute(2, 0, 1).narrow(0, 1, 3)[:, :, ::2].select(1, 1).unsqueeze(0).expand(2, 3, 2).reshape(3, 4))
case("views_split_heads", [("x", randn(2, 7, 12))],  # narrow then reshape: a view of a non-contiguous tensor
     lambda x: x.narrow(2, 4, 8).reshape(2, 7, 2, 4).permute(0, 2, 1, 3) * 1.0)
case("transpose_contiguous", [("x", randn(3, 5))], lambda x: x.t().contiguous() * 1.0)


# ---- attention, written out as in the definition (torch 1.13 has no public sdpa)
def sdpa(q, k, v, mask=None, causal=False):
    s = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        T, S = s.shape[-2], s.shape[-1]
        s = s.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:  # 1 = attend
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


case("sdpa_causal", [("q", randn(2, 2, 5, 4)), ("k", randn(2, 2, 5, 4)), ("v", randn(2, 2, 5, 3))],
     lambda q, k, v: sdpa(q, k, v, causal=True))
kpm = torch.ones(2, 1, 1, 6, dtype=torch.bool)
kpm[0, ..., 4:] = False
kpm[1, ..., 2] = False
case("sdpa_key_padding", [("q", randn(2, 2, 3, 4)), ("k", randn(2, 2, 6, 4)), ("v", randn(2, 2, 6, 3)), ("mask", kpm)],
     lambda q, k, v, m: sdpa(q, k, v, mask=m))


def write_ops(path):
    with h5py.File(path, "w") as f:
        for name, inputs, fn, nograd in CASES:
            ins = []
            for iname, t in inputs:
                t = t.clone()
                if t.dtype == torch.float32 and iname not in nograd:
                    t.requires_grad_(True)
                ins.append((iname, t))
                save(f, f"{name}/in/{iname}", t)
            out = fn(*[t for _, t in ins])
            if isinstance(out, tuple):  # max / min: (values, indices)
                out, idx = out
                save(f, f"{name}/out_indices", idx)
            gout = torch.randn(out.shape)
            save(f, f"{name}/out", out)
            save(f, f"{name}/gout", gout)
            (out * gout).sum().backward()
            for iname, t in ins:
                if t.requires_grad:
                    save(f, f"{name}/grad/{iname}", t.grad)


# ---- transformer stacks
D, H, FF, L = 32, 4, 64, 2


def encoder():
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", norm_first=True, batch_first=True)
    return nn.TransformerEncoder(layer, L, enable_nested_tensor=False)


def decoder():
    layer = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation="gelu", norm_first=True, batch_first=True)
    return nn.TransformerDecoder(layer, L)


def perturb(model):
    """PyTorch's stacks start with identical layers, zero biases and unit norms;
    noise on every parameter makes each layer and each bias count."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return model


def write_params(f, prefix, model):
    for k, v in model.state_dict().items():
        save(f, f"{prefix}/{k}", v)


def write_grads(f, prefix, model):
    for k, p in model.named_parameters():
        save(f, f"{prefix}/{k}", p.grad)


def write_transformer(path):
    with h5py.File(path, "w") as f:
        enc = perturb(encoder())
        enc0 = copy.deepcopy(enc)
        enc_kpm = copy.deepcopy(enc)
        write_params(f, "encoder/params", enc)
        src = randn(2, 7, D).requires_grad_(True)
        out = enc(src)
        gout = torch.randn(out.shape)
        (out * gout).sum().backward()
        for k, v in (("src", src), ("out", out), ("gout", gout), ("grad/src", src.grad)):
            save(f, f"encoder/{k}", v)
        write_grads(f, "encoder/grad/params", enc)

        src = randn(2, 7, D).requires_grad_(True)
        kpm = torch.zeros(2, 7, dtype=torch.bool)
        kpm[0, 5:] = True
        kpm[1, 2] = True
        out = enc_kpm(src, src_key_padding_mask=kpm)
        gout = torch.randn(out.shape)
        (out * gout).sum().backward()
        for k, v in (("src", src), ("src_key_padding_mask", kpm), ("out", out), ("gout", gout), ("grad/src", src.grad)):
            save(f, f"encoder_kpm/{k}", v)

        dec = perturb(decoder())
        write_params(f, "decoder/params", dec)
        tgt = randn(2, 6, D).requires_grad_(True)
        memory = randn(2, 7, D).requires_grad_(True)
        mask = nn.Transformer.generate_square_subsequent_mask(6)
        out = dec(tgt, memory, tgt_mask=mask)
        gout = torch.randn(out.shape)
        (out * gout).sum().backward()
        for k, v in (("tgt", tgt), ("memory", memory), ("tgt_mask", mask), ("out", out), ("gout", gout),
                     ("grad/tgt", tgt.grad), ("grad/memory", memory.grad)):
            save(f, f"decoder/{k}", v)
        write_grads(f, "decoder/grad/params", dec)

        model = enc0
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        x, y = randn(2, 7, D), randn(2, 7, D)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        save(f, "adamw/x", x)
        save(f, "adamw/y", y)
        save(f, "adamw/losses", torch.tensor(losses))
        write_params(f, "adamw/final", model)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_ops(os.path.join(OUT, "ops.h5"))
    write_transformer(os.path.join(OUT, "transformer.h5"))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in ("ops.h5", "transformer.h5"))
    print(f"wrote {len(CASES)} op cases and the transformer fixtures to {os.path.normpath(OUT)} ({total / 1e3:.0f} kB)")


if __name__ == "__main__":
    sys.exit(main())
