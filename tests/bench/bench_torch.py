"""bench_torch.py: the PyTorch side of `make bench` (tests/bench/run.sh).

Same cases, shapes and FLOP counts as tests/bench/bench.lua; see that file
for the formulas. Run with Debian's /usr/bin/python3 (torch 1.13) and
OMP_NUM_THREADS=2. Prints, for run.sh to read:
    INFO <key> <value...>
    RESULT <case> <GFLOP per iteration> <median s> <min s> <max s>
    RATE <case> <items per iteration> <unit> <median s> <min s> <max s>
Timing: warmup iterations, then REPEATS timed repeats of n iterations each
(n chosen so that a repeat takes about 0.5 s); the per-iteration median over
repeats is the figure, min and max show the spread.
"""
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the ECG encoder as the parity reference writes it (same model as ecgwb's)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from make_encoder_fixture import CONFIGS, Encoder  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
ONLY = os.environ.get("BENCH_ONLY", "")
THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))


def blas_in_use():
    """the BLAS shared object torch has mapped, and its measured sgemm speed"""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if ("blas" in p or "lapack" in p or "mkl" in p) and p.startswith("/"):
                libs.add(os.path.realpath(p))
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b)
        best = max(best, 5 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9)
    return sorted(libs), best


def timeit(step):
    for _ in range(WARMUP):
        step()
    t0 = time.perf_counter()
    step()
    one = time.perf_counter() - t0
    n = max(1, int(round(0.5 / max(one, 1e-6))))
    per = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        per.append((time.perf_counter() - t0) / n)
    return statistics.median(per), min(per), max(per)


def case_linear():
    M, K, N = 8192, 512, 2048
    x = torch.randn(M, K, requires_grad=True)
    lin = torch.nn.Linear(K, N)
    g = torch.randn(M, N)

    def step():
        x.grad = None
        lin.zero_grad(set_to_none=True)
        lin(x).backward(g)
    return 3 * 2 * M * N * K, step


def case_conv1d():
    B, Cin, Cout, L, K = 32, 64, 128, 2048, 7
    x = torch.randn(B, Cin, L, requires_grad=True)
    conv = torch.nn.Conv1d(Cin, Cout, K, padding=3)
    g = torch.randn(B, Cout, L)

    def step():
        x.grad = None
        conv.zero_grad(set_to_none=True)
        conv(x).backward(g)
    return 3 * 2 * B * Cout * L * Cin * K, step


def case_attention():
    # torch 1.13 has no F.scaled_dot_product_attention (it came in 2.0):
    # this is the composition its nn.MultiheadAttention uses
    B, H, T, D = 32, 8, 256, 64
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, T, D)
    scale = D ** -0.5

    def step():
        for t in (q, k, v):
            t.grad = None
        a = torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)), dim=-1)
        torch.matmul(a, v).backward(g)
    return 3 * 2 * (2 * B * H * T * T * D), step


def case_encoder_step():
    B, T, C, H, FF = 32, 256, 512, 8, 2048
    layer = torch.nn.TransformerEncoderLayer(C, H, FF, dropout=0.0, batch_first=True, norm_first=False)
    layer.train()
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(B, T, C)
    target = torch.randn(B, T, C)

    def step():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(layer(x), target).backward()
        opt.step()
    N = B * T
    fwd = 2 * N * C * 3 * C + 2 * N * C * C + 2 * N * C * FF * 2 + 4 * B * T * T * C
    return 3 * fwd, step


def rate_ecg_encoder_step():
    """the ECG encoder "small", one training step (see bench.lua)"""
    B, L = 16, 2500
    enc = Encoder(CONFIGS["small"], heads=False)
    enc.train()
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(B, 12, L)
    lead_mask = torch.ones(B, 12)
    for b in range(0, B, 3):           # records 1, 4, 7, ... (1-based) lack one lead, as bench.lua
        lead_mask[b, (b + 1) % 12] = 0
    target = torch.randn(B, CONFIGS["small"]["d_model"])

    def step():
        opt.zero_grad(set_to_none=True)
        _, pooled, _ = enc(x, lead_mask)
        F.mse_loss(pooled, target).backward()
        opt.step()
    return B, "ECGs/s", step


class GPT(nn.Module):
    """GPT-2 as lua/ecgwb/models/gpt.lua (pre-LN blocks, learned positions,
    tanh GELU, tied head), with a preallocated KV cache written in place."""

    def __init__(self, vocab, n_layer, n_head, n_embd, block_size):
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList()
        for _ in range(n_layer):
            blk = nn.Module()
            blk.ln_1, blk.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
            blk.c_attn, blk.attn_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
            blk.c_fc, blk.mlp_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
            self.h.append(blk)
        self.ln_f = nn.LayerNorm(n_embd)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0, 0.02)

    def new_cache(self, B, max_len):
        hd = self.n_embd // self.n_head
        return [(torch.zeros(B, self.n_head, max_len, hd), torch.zeros(B, self.n_head, max_len, hd)) for _ in self.h]

    def forward(self, ids, cache, past):  # ids (B, N) -> logits of the last position (B, V)
        B, N = ids.shape
        H, D = self.n_head, self.n_embd
        x = self.wte(ids) + self.wpe.weight[past:past + N]
        S = past + N
        causal = None
        if N > 1:  # query t (at past + t) sees keys s <= past + t
            causal = torch.arange(S).unsqueeze(0) <= torch.arange(past, S).unsqueeze(1)
        for blk, (kc, vc) in zip(self.h, cache):
            q, k, v = blk.c_attn(blk.ln_1(x)).split(D, dim=2)
            q, k, v = (t.view(B, N, H, D // H).transpose(1, 2) for t in (q, k, v))
            kc[:, :, past:S] = k
            vc[:, :, past:S] = v
            att = (q @ kc[:, :, :S].transpose(-2, -1)) * (1.0 / math.sqrt(D // H))
            if causal is not None:
                att = att.masked_fill(~causal, float("-inf"))
            y = torch.softmax(att, -1) @ vc[:, :, :S]
            x = x + blk.attn_proj(y.transpose(1, 2).reshape(B, N, D))
            x = x + blk.mlp_proj(F.gelu(blk.c_fc(blk.ln_2(x)), approximate="tanh"))
        return F.linear(self.ln_f(x[:, -1]), self.wte.weight)

    def generate(self, ids, max_new):
        B, T = ids.shape
        cache = self.new_cache(B, T + max_new)
        logits = self(ids, cache, 0)
        out = []
        for step in range(max_new):
            nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
            out.append(nxt)
            if step + 1 < max_new:
                logits = self(nxt, cache, T + step)
        return torch.cat(out, 1)


def rate_gpt_decode():
    """greedy decoding with the KV cache, GPT "small" (see bench.lua)"""
    lm = GPT(4096, 6, 8, 384, 512).eval()
    prompt = torch.randint(0, 4096, (1, 64))
    N = 128

    def step():
        with torch.inference_mode():
            out = lm.generate(prompt, N)
        assert out.shape[1] == N
    return N, "tokens/s", step


RATES = [("ecg_encoder_step", rate_ecg_encoder_step), ("gpt_decode", rate_gpt_decode)]

CASES = [("linear", case_linear), ("conv1d", case_conv1d), ("attention", case_attention),
         ("encoder_step", case_encoder_step)]


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    libs, gf = blas_in_use()
    print("INFO torch", torch.__version__, "threads", torch.get_num_threads())
    print("INFO blas", ",".join(libs) or "none-mapped", "sgemm1024 %.1f GFLOP/s" % gf)
    sys.stdout.flush()
    for name, make in CASES:
        if ONLY and name not in ONLY.split(","):
            continue
        flops, step = make()
        med, lo, hi = timeit(step)
        print("RESULT %s %.6f %.6g %.6g %.6g" % (name, flops / 1e9, med, lo, hi))
        sys.stdout.flush()
    for name, make in RATES:
        if ONLY and name not in ONLY.split(","):
            continue
        torch.manual_seed(0)
        items, unit, step = make()
        med, lo, hi = timeit(step)
        print("RATE %s %d %s %.6g %.6g %.6g" % (name, items, unit, med, lo, hi))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
