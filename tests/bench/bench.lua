--[[ bench.lua: the ecgwb side of `make bench` (tests/bench/run.sh); run with
build/ecgwb. tests/bench/bench_torch.py runs the same cases with PyTorch.

Each case is forward + backward (and, for the encoder step, the AdamW
update). FLOPs are counted from the matmuls alone, as is standard: a matmul
(M,K)@(K,N) is 2MNK forward and twice that backward (dA and dB), so every
case is 3x its forward matmul FLOPs:
  linear        x (8192,512) @ W (2048,512)^T + b:   3 * 2*M*N*K
  conv1d        B=32 Cin=64 Cout=128 L=2048 K=7 pad 3: 3 * 2*B*Cout*L*Cin*K
  attention     sdpa, q k v (32,8,256,64):          3 * 2 * (2*B*H*T*T*D)
  encoder_step  one nn.TransformerEncoderLayer training step, post-norm
                (PyTorch's default norm_first=false), ReLU, dropout 0,
                B=32 T=256 C=512 heads 8 FFN 2048, MSE loss, backward, AdamW:
                N = B*T tokens, forward matmul FLOPs =
                  2*N*C*3C (q,k,v projection) + 2*N*C*C (output projection)
                + 2*2*N*C*FF (the two FFN linears) + 2*2*B*T*T*C (q k^T and a v,
                  summed over heads), times 3 for forward + backward.
Elementwise work, layer norms, softmax and the optimiser are not counted.

Two throughput cases (RATE lines, items per second; no FLOP count):
  ecg_encoder_step  the ECG encoder (lua/ecgwb/models/ecg_encoder.lua)
                config "small" (conv 4 x 128, 4 layers x 256, FFN 1024, 4 heads,
                pos conv k 64 / 16 groups, dropout 0.1, lead embedding, no
                pretraining head) one training step: batch 16 x 12 x 2500
                (T = 156 frames) with a lead mask (some leads missing), MSE of
                the pooled embedding to a random target, backward, AdamW.
                ECGs/s.
  gpt_decode    greedy decoding with the KV cache (lm:generate): GPT "small"
                (6 layers x 384, 8 heads) with a 4096-token vocabulary, batch 1,
                a 64-token prompt, 128 new tokens (prefill included). tokens/s.

Output, for run.sh:
  INFO <key> <value...>
  RESULT <case> <GFLOP per iteration> <median s> <min s> <max s>
  RATE <case> <items per iteration> <unit> <median s> <min s> <max s>
  SKIP <case> <reason>
Timing: BENCH_WARMUP iterations, then BENCH_REPEATS repeats of n iterations
(n chosen so that a repeat takes about 0.5 s); median per-iteration time.
BENCH_ONLY=case,case limits the cases; BENCH_PROFILE=1 prints a per-phase
breakdown of the encoder step.
]]
local wb = require "ecgwb"
local ffi = require "ffi"

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } ewb_bench_timespec;
int clock_gettime(int clk, ewb_bench_timespec *ts);
]]
local ts = ffi.new("ewb_bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + 1e-9 * tonumber(ts.tv_nsec)
end

local REPEATS = tonumber(os.getenv("BENCH_REPEATS") or "5")
local WARMUP = tonumber(os.getenv("BENCH_WARMUP") or "2")
local ONLY = os.getenv("BENCH_ONLY") or ""
local PROFILE = os.getenv("BENCH_PROFILE") == "1"

local function timeit(step)
  for _ = 1, WARMUP do step() end
  local t0 = now()
  step()
  local one = now() - t0
  local n = math.max(1, math.floor(0.5 / math.max(one, 1e-6) + 0.5))
  local per = {}
  for r = 1, REPEATS do
    t0 = now()
    for _ = 1, n do step() end
    per[r] = (now() - t0) / n
  end
  table.sort(per)
  local med = #per % 2 == 1 and per[(#per + 1) / 2] or 0.5 * (per[#per / 2] + per[#per / 2 + 1])
  return med, per[1], per[#per]
end

local cases = {}

cases[#cases + 1] = { "linear", function()
  local M, K, N = 8192, 512, 2048
  local x = wb.randn(M, K):requires_grad_()
  local w = wb.randn(N, K):mul_(K ^ -0.5):requires_grad_()
  local b = wb.zeros(N):requires_grad_()
  local g = wb.randn(M, N)
  return 3 * 2 * M * N * K, function()
    x.grad, w.grad, b.grad = nil, nil, nil
    wb.linear(x, w, b):backward(g)
  end
end }

cases[#cases + 1] = { "conv1d", function()
  local B, Cin, Cout, L, K = 32, 64, 128, 2048, 7
  local x = wb.randn(B, Cin, L):requires_grad_()
  local w = wb.randn(Cout, Cin, K):mul_((Cin * K) ^ -0.5):requires_grad_()
  local b = wb.zeros(Cout):requires_grad_()
  local g = wb.randn(B, Cout, L)
  return 3 * 2 * B * Cout * L * Cin * K, function()
    x.grad, w.grad, b.grad = nil, nil, nil
    wb.conv1d(x, w, b, { padding = 3 }):backward(g)
  end
end }

cases[#cases + 1] = { "attention", function()
  local B, H, T, D = 32, 8, 256, 64
  local q = wb.randn(B, H, T, D):requires_grad_()
  local k = wb.randn(B, H, T, D):requires_grad_()
  local v = wb.randn(B, H, T, D):requires_grad_()
  local g = wb.randn(B, H, T, D)
  return 3 * 2 * (2 * B * H * T * T * D), function()
    q.grad, k.grad, v.grad = nil, nil, nil
    wb.sdpa(q, k, v):backward(g)
  end
end }

-- per-phase wall time of the encoder step (BENCH_PROFILE=1)
local prof = { forward = 0, backward = 0, optim = 0, n = 0 }

cases[#cases + 1] = { "encoder_step", function()
  local B, T, C, H, FF = 32, 256, 512, 8, 2048
  local nn, optim = wb.nn, wb.optim
  local layer = nn.TransformerEncoderLayer(C, H, { dim_feedforward = FF, dropout = 0, batch_first = true, norm_first = false })
  layer:train()
  local params = layer:parameters()
  local opt = optim.AdamW(params, { lr = 1e-4, weight_decay = 0.01 })
  local x = wb.randn(B, T, C)
  local target = wb.randn(B, T, C)
  local N = B * T
  local fwd = 2 * N * C * 3 * C + 2 * N * C * C + 2 * 2 * N * C * FF + 2 * 2 * B * T * T * C
  return 3 * fwd, function()
    local t0 = PROFILE and now()
    opt:zero_grad()
    local loss = wb.mse_loss(layer:forward(x), target)
    local t1 = PROFILE and now()
    loss:backward()
    local t2 = PROFILE and now()
    opt:step()
    if PROFILE then
      local t3 = now()
      prof.forward, prof.backward, prof.optim = prof.forward + t1 - t0, prof.backward + t2 - t1, prof.optim + t3 - t2
      prof.n = prof.n + 1
    end
  end
end }

-- throughput cases: make() returns items per iteration, the unit, the step
local rates = {}

rates[#rates + 1] = { "ecg_encoder_step", function()
  local E = require "ecgwb.models.ecg_encoder"
  local B, L = 16, 2500
  local enc = E.EcgEncoder { base = "small", objective = "none" }
  enc:train()
  local opt = wb.optim.AdamW(enc:parameters(), { lr = 1e-4, weight_decay = 0.01 })
  local x = wb.randn(B, 12, L)
  local rows = {}                                                    -- records 1, 4, 7, ... lack one lead
  for b = 1, B do
    rows[b] = {}
    for l = 1, 12 do rows[b][l] = (b % 3 == 1 and l == 1 + b % 12) and 0 or 1 end
  end
  local lead_mask = wb.tensor(rows)
  local target = wb.randn(B, enc.cfg.d_model)
  return B, "ECGs/s", function()
    opt:zero_grad()
    local out = enc(x, lead_mask)
    wb.mse_loss(out.pooled, target):backward()
    opt:step()
  end
end }

rates[#rates + 1] = { "gpt_decode", function()
  local gpt = require "ecgwb.models.gpt"
  local lm = gpt.GPT(gpt.config("small", { vocab_size = 4096 }))
  local prompt = wb.randint(0, 4096, { 1, 64 })
  local N = 128
  return N, "tokens/s", function()
    local out = lm:generate(prompt, { max_new_tokens = N, greedy = true })
    assert(out:size(2) == N)
  end
end }

print("INFO ecgwb " .. ffi.string(wb.C.ewb_version()) .. " threads " .. wb.num_threads())
io.stdout:flush()
for _, c in ipairs(cases) do
  local name, make = c[1], c[2]
  local want = ONLY == ""
  for o in ONLY:gmatch("[^,]+") do if o == name then want = true end end
  if want then
    wb.manual_seed(0)
    local ok, flops, step = pcall(make)
    local err = not ok and flops
    local med, lo, hi
    if ok then
      ok, med, lo, hi = pcall(timeit, step)
      err = not ok and med
    end
    if ok then
      print(string.format("RESULT %s %.6f %.6g %.6g %.6g", name, flops / 1e9, med, lo, hi))
    else
      print(string.format("SKIP %s %s", name, (tostring(err):gsub("\n.*", ""))))
    end
    step = nil
    collectgarbage()
    io.stdout:flush()
  end
end
for _, c in ipairs(rates) do
  local name, make = c[1], c[2]
  local want = ONLY == ""
  for o in ONLY:gmatch("[^,]+") do if o == name then want = true end end
  if want then
    wb.manual_seed(0)
    local ok, items, unit, step = pcall(make)
    local err = not ok and items
    local med, lo, hi
    if ok then
      ok, med, lo, hi = pcall(timeit, step)
      err = not ok and med
    end
    if ok then
      print(string.format("RATE %s %d %s %.6g %.6g %.6g", name, items, unit, med, lo, hi))
    else
      print(string.format("SKIP %s %s", name, (tostring(err):gsub("\n.*", ""))))
    end
    step = nil
    collectgarbage()
    io.stdout:flush()
  end
end
if PROFILE and prof.n > 0 then
  local tot = prof.forward + prof.backward + prof.optim
  print(string.format("INFO profile encoder_step forward %.0f%% backward %.0f%% optim %.0f%% (%d steps)",
    100 * prof.forward / tot, 100 * prof.backward / tot, 100 * prof.optim / tot, prof.n))
end
