"""bench_torch.py: the PyTorch side of `make bench` (tests/bench/run.sh).

Same cases, shapes and FLOP counts as tests/bench/bench.lua; see that file
for the formulas. Run with Debian's /usr/bin/python3 (torch 1.13) and
OMP_NUM_THREADS=2. Prints, for run.sh to read:
    INFO <key> <value...>
    RESULT <case> <GFLOP per iteration> <median s> <min s> <max s>
Timing: warmup iterations, then REPEATS timed repeats of n iterations each
(n chosen so that a repeat takes about 0.5 s); the per-iteration median over
repeats is the figure, min and max show the spread.
"""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

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


if __name__ == "__main__":
    main()
