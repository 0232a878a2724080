--[[ tests/bench/loader.lua: the batch loader's part of `make bench`.
  build/ecgwb tests/bench/loader.lua [N=512]

Copies the first N records of the default corpus (wb.sim.default_corpus():
simulated 12 x 5000 ECGs, 500 Hz, 10 s, with electrode noise) into three
files: uncompressed f32, f32 in the default layout (one record per chunk,
shuffle + deflate 4) and int16 in the default layout (as the corpus itself
is stored). Then:
  1. records/s of the loader alone (shuffled, batch 32), by file, workers and
     augmentation (crop to 2500 + lead_mask + noise);
  2. the slowdown of a training step fed by the loader (2 workers, the same
     augmentations) against the same step on batches already in memory. The
     step is the recipes' ECG-FM encoder (lua/ecgwb/models/ecg_encoder.lua,
     config "small", the smallest shaped for 500 Hz input) fine-tuned on the
     corpus labels: pooled embedding, linear head, BCE, AdamW, gradient
     clipping, on batches of 32 x 12 x 2500 (5 s at 500 Hz, ECG-FM's input).
     A deliberately light 3-layer conv net step is run too, to show the
     loader's cost where a step is too cheap to hide it. Each round runs
     every file, the in-memory and loader-fed runs back to back (order
     swapped every round) so both see the same spells of machine load; the
     slowdown is the median over rounds of the per-round ratio.
Both compete for the same 2 cores: the loader's work (HDF5 read, inflate,
augmentation) is CPU time the training step does not get unless it fits in
the step's idle moments (the workers run at nice 19), so besides the wall
clock the CPU time of the step and of the loader per batch is printed: their
ratio bounds the slowdown on an otherwise idle machine. On a shared, loaded
machine the wall-clock numbers are noisy (the load average is printed).
Deflated signals are inflated by the workers outside the HDF5 lock (direct
chunk reads, core/dataset_internal.h); ECGWB_H5_DIRECT=0 measures the old
path (H5Dread under the lock).
Environment: BENCH_LOADER_ROUNDS (3), BENCH_LOADER_STEPS (per model: 8, 16,
24), BENCH_LOADER_MODELS ("ecgfm_small,conv"; also ecgfm_tiny),
BENCH_LOADER_FILE (one file: "raw f32", "deflate f32", "deflate int16"),
BENCH_LOADER_ALONE=0 (skip part 1), BENCH_LOADER_SAME_PRIORITY=1 (workers
not niced).
]]
local wb = require "ecgwb"
local ffi = require "ffi"
local nn, optim = wb.nn, wb.optim
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } ewb_bench_ld_timespec;
int clock_gettime(int clk, ewb_bench_ld_timespec *ts);
]]
local tsp = ffi.new("ewb_bench_ld_timespec")
local function cpu() -- process CPU time, all threads (CLOCK_PROCESS_CPUTIME_ID)
  ffi.C.clock_gettime(2, tsp)
  return tonumber(tsp.tv_sec) + 1e-9 * tonumber(tsp.tv_nsec)
end
io.stdout:setvbuf("line") -- progress shows when the output goes to a file
local N = tonumber(arg and arg[1]) or 512
local B, CROP = 32, 2500
local ROUNDS = tonumber(os.getenv("BENCH_LOADER_ROUNDS") or "3")
local SAME = os.getenv("BENCH_LOADER_SAME_PRIORITY") == "1" -- workers at the caller's priority instead of nice 19
local ONLY_FILE = os.getenv("BENCH_LOADER_FILE") -- "raw f32", "deflate f32" or "deflate int16": one file only
local ALONE = os.getenv("BENCH_LOADER_ALONE") ~= "0" -- 0: skip part 1

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return #s % 2 == 1 and s[(#s + 1) / 2] or 0.5 * (s[#s / 2] + s[#s / 2 + 1])
end

-- the three files: the first N records of the default corpus (simulated
-- ECGs with electrode noise, int16 at 1 uV, shuffle + deflate 4) written as
-- uncompressed f32, as f32 in the default layout and as int16 in the default
-- layout (the corpus's own), with the corpus's labels
local corpus = wb.dataset.open(wb.sim.default_corpus())
assert(#corpus.leads == 12 and corpus.samples == 5000 and corpus.fs == 500, "the default corpus is 12 x 5000 at 500 Hz")
N = math.min(N - N % 64, corpus.n - corpus.n % 64)
local labels = corpus.label_names
local files = {}
for _, kind in ipairs { { "raw f32", 0, "f32" }, { "deflate f32", -1, "f32" }, { "deflate int16", -1, "int16" } } do
  local file = os.tmpname() .. ".h5"
  local ds = wb.dataset.create(file, { fs = 500, samples = 5000, labels = labels, compression = kind[2], dtype = kind[3] })
  for i = 1, N, 64 do ds:append { signals = corpus:read(i, i + 63), labels = corpus:labels(i, i + 63) } end
  ds:close()
  local fh = io.open(file, "rb")
  local bytes = fh:seek("end")
  fh:close()
  files[#files + 1] = { file = file, name = kind[1], mb = bytes / 1e6 }
end
corpus:close()
local aug = { { "crop", length = CROP }, { "lead_mask", p = 0.5 }, { "noise", sigma = 0.02 } }

local la = io.open("/proc/loadavg")
print(string.format("loader: %d records of 12 x 5000 (500 Hz, 10 s) from the default corpus, batch %d, shuffled, prefetch 2*workers; %s; load average %s",
  N, B, os.getenv("ECGWB_H5_DIRECT") == "0" and "ECGWB_H5_DIRECT=0: H5Dread under the HDF5 lock" or "direct chunk reads",
  la and la:read("*l"):match("^(%S+ %S+ %S+)") or "?"))
for _, f in ipairs(files) do io.write(string.format("  %s %.0f MB;", f.name, f.mb)) end
print()
if la then la:close() end

-- 1. the loader alone
for _, f in ipairs(ALONE and files or {}) do
  for _, workers in ipairs { 1, 2 } do
    for _, a in ipairs { {}, aug } do
      local ld = wb.loader.new(f.file, { batch = B, seed = 1, workers = workers, augment = a, drop_last = true })
      ld:next() -- threads started, first batch
      local t0, n = wb.now(), 0
      for _ = 1, ld.batches do n = n + ld:next().size end
      local dt = wb.now() - t0
      local st = ld:stats()
      ld:close()
      print(string.format("  %-13s workers %d %-30s %6.0f records/s  (%.2f ms worker CPU per record)", f.name, workers,
        #a > 0 and "crop 2500 + lead_mask + noise:" or "no augmentation:", n / dt, 1e3 * st.work_seconds / st.produced / B))
    end
  end
end

-- 2. a training step fed by the loader, against in-memory batches
local E = require "ecgwb.models.ecg_encoder"
local function params_of(...)
  local ps = {}
  for _, m in ipairs { ... } do for _, p in ipairs(m:parameters()) do ps[#ps + 1] = p end end
  return ps
end
local MODELS = {
  -- the ECG-FM encoder of the recipes (recipes/pretrain_fm.lua), fine-tuned
  -- on the corpus labels: pooled embedding -> linear head, BCE, AdamW,
  -- clipping; "small" is the smallest config shaped for 500 Hz input
  -- ("tiny" is meant for 250 Hz)
  ecgfm_small = { steps = 8, desc = "ECG-FM encoder 'small' + linear head", build = function()
    wb.manual_seed(1)
    local enc = E.EcgEncoder { base = "small", objective = "none" }
    local head = nn.Linear(enc.cfg.d_model, #labels)
    local params = params_of(enc, head)
    local opt = optim.AdamW(params, { lr = 1e-3, weight_decay = 0.01 })
    return function(x, y)
      opt:zero_grad()
      local loss = wb.bce_with_logits(head(enc(x).pooled), y:to("f32"))
      loss:backward()
      optim.clip_grad_norm(params, 1.0)
      opt:step()
    end
  end },
  ecgfm_tiny = { steps = 16, desc = "ECG-FM encoder 'tiny' + linear head", build = function()
    wb.manual_seed(1)
    local enc = E.EcgEncoder { base = "tiny", objective = "none" }
    local head = nn.Linear(enc.cfg.d_model, #labels)
    local params = params_of(enc, head)
    local opt = optim.AdamW(params, { lr = 1e-3, weight_decay = 0.01 })
    return function(x, y)
      opt:zero_grad()
      local loss = wb.bce_with_logits(head(enc(x).pooled), y:to("f32"))
      loss:backward()
      optim.clip_grad_norm(params, 1.0)
      opt:step()
    end
  end },
  -- a deliberately light step: 3 Conv1d (12 -> 64 -> 64 -> 128 channels,
  -- kernel 7, stride 2) + linear head, BCE, AdamW; about a tenth of the
  -- CPU of ecgfm_small, so the loader's CPU shows
  conv = { steps = 24, desc = "3-layer conv net + linear head", build = function()
    wb.manual_seed(1)
    local m = nn.Sequential(
      nn.Conv1d(12, 64, 7, { stride = 2, padding = 3 }), nn.GELU(),
      nn.Conv1d(64, 64, 7, { stride = 2, padding = 3 }), nn.GELU(),
      nn.Conv1d(64, 128, 7, { stride = 2, padding = 3 }), nn.GELU())
    local head = nn.Linear(128, #labels)
    local opt = optim.AdamW(params_of(m, head), { lr = 1e-3 })
    return function(x, y)
      opt:zero_grad()
      local loss = wb.bce_with_logits(head(m(x):mean(3)), y:to("f32"))
      loss:backward()
      opt:step()
    end
  end },
}

-- wall and process-CPU seconds per step
local function timed(step, get, n)
  for _ = 1, 2 do step(get()) end -- warm up (and drain a pre-filled prefetch window)
  local t0, c0 = wb.now(), cpu()
  for _ = 1, n do step(get()) end
  return (wb.now() - t0) / n, (cpu() - c0) / n
end

local mem = {}
do
  local ld = wb.loader.new(files[1].file, { batch = B, seed = 2, augment = aug })
  for i = 1, 8 do local b = ld:next(); mem[i] = { b.signals, b.labels } end
  ld:close()
end
local use = {}
for _, f in ipairs(files) do if not ONLY_FILE or f.name == ONLY_FILE then use[#use + 1] = f end end
for name in (os.getenv("BENCH_LOADER_MODELS") or "ecgfm_small,conv"):gmatch("[^,%s]+") do
  local M = MODELS[name] or error("BENCH_LOADER_MODELS: unknown model '" .. name .. "' (ecgfm_small, ecgfm_tiny, conv)")
  local steps = tonumber(os.getenv("BENCH_LOADER_STEPS")) or M.steps
  local step = M.build()
  local res = {}
  for _, f in ipairs(use) do res[f] = { t_mem = {}, t_ld = {}, ratio = {}, waits = {}, c_mem = {}, c_ld = {} } end
  -- rounds: every file in turn, in-memory and loader-fed runs back to back,
  -- their order swapped every round
  for r = 1, ROUNDS do
    for _, f in ipairs(use) do
      local q = res[f]
      local function run_mem()
        local i = 0
        q.t_mem[r], q.c_mem[r] = timed(step, function() i = i % #mem + 1; return mem[i][1], mem[i][2] end, steps)
      end
      local function run_ld()
        local ld = wb.loader.new(f.file, { batch = B, seed = 3 + r, workers = 2, augment = aug, same_priority = SAME })
        q.t_ld[r] = timed(step, function() local b = ld:next(); return b.signals, b.labels end, steps)
        local st = ld:stats()
        q.waits[r] = st.wait_seconds / (steps + 2)
        q.c_ld[r] = st.work_seconds / st.produced
        ld:close()
      end
      if r % 2 == 1 then run_mem(); run_ld() else run_ld(); run_mem() end
      q.ratio[r] = q.t_ld[r] / q.t_mem[r] - 1
    end
  end
  print(string.format("  training step: %s, batch %d x 12 x %d, %d steps per run, %d rounds:", M.desc, B, CROP, steps, ROUNDS))
  for _, f in ipairs(use) do
    local q = res[f]
    local lo, hi = math.huge, -math.huge
    for r = 1, ROUNDS do lo, hi = math.min(lo, q.ratio[r]), math.max(hi, q.ratio[r]) end
    print(string.format("    %-13s slowdown %+5.1f%% (median of rounds; %+.1f..%+.1f%%; target < 5%%); in memory %.0f ms, loader-fed %.0f ms; next() waited %.1f ms/step; " ..
      "CPU: step %.0f ms, loader %.1f ms per batch = %.1f%%",
      f.name, 100 * median(q.ratio), 100 * lo, 100 * hi, 1e3 * median(q.t_mem), 1e3 * median(q.t_ld), 1e3 * median(q.waits),
      1e3 * median(q.c_mem), 1e3 * median(q.c_ld), 100 * median(q.c_ld) / median(q.c_mem)))
  end
end
print("  (slowdown: wall time per step, loader-fed / in memory - 1; CPU %: loader CPU per batch / step CPU, the slowdown" ..
  " on an otherwise idle machine if none of the loader's work fits in the step's idle moments)")

for _, f in ipairs(files) do os.remove(f.file) end
