--[[ tests/bench/loader.lua: the batch loader's part of `make bench`.
  build/ecgwb tests/bench/loader.lua [N=512]

Writes N simulated 12 x 5000 records (500 Hz, 10 s) twice, deflate 4 (the
default layout, as data/make_sim.lua writes it) and uncompressed, then:
  1. records/s of the loader alone (shuffled, batch 32), by file, workers and
     augmentation (crop to 2500 + lead_mask + noise);
  2. the slowdown of a small training step fed by the loader against the same
     step on batches already in memory: a 3-layer Conv1d net (12 -> 64 -> 64
     -> 128 channels, kernel 7, stride 2) + linear head, BCE on the 8 labels,
     AdamW, batch 32 of 12 x 2500. Rounds alternate in-memory and loader-fed
     runs so both see the same spells of machine load; medians are printed.
Both compete for the same 2 cores: the loader's work (HDF5 read, inflate,
augmentation) is CPU time the training step does not get unless it fits in
the step's idle moments (the workers run at nice 19), so besides the wall
clock the CPU time of the step and of the loader per batch is printed: their
ratio bounds the slowdown on an otherwise idle machine. On a shared, loaded
machine the wall-clock numbers are noisy (the load average is printed).
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
local N = tonumber(arg and arg[1]) or 512
local B, CROP = 32, 2500
local ROUNDS = tonumber(os.getenv("BENCH_LOADER_ROUNDS") or "3")
local STEPS = tonumber(os.getenv("BENCH_LOADER_STEPS") or "24")
local SAME = os.getenv("BENCH_LOADER_SAME_PRIORITY") == "1" -- workers at the caller's priority instead of nice 19
local ONLY_FILE = os.getenv("BENCH_LOADER_FILE") -- "deflate4" or "raw f32": one file only

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return #s % 2 == 1 and s[(#s + 1) / 2] or 0.5 * (s[#s / 2] + s[#s / 2 + 1])
end

-- the two files
local labels = { "A", "B", "C", "D", "E", "F", "G", "H" }
local recs = {}
for i = 1, 64 do recs[i] = wb.sim.ecg { fs = 500, seconds = 10, hr = 50 + i, seed = 1, index = i }:view(1, 12, 5000) end
local x64 = wb.cat(recs, 1)
local y64 = wb.rand(64, 8):gt(0.7)
local files = {}
for _, level in ipairs { 4, 0 } do
  local file = os.tmpname() .. ".h5"
  local ds = wb.dataset.create(file, { fs = 500, samples = 5000, labels = labels, compression = level })
  for _ = 1, N / 64 do ds:append { signals = x64, labels = y64 } end
  ds:close()
  files[#files + 1] = { file = file, name = level > 0 and "deflate" .. level or "raw f32" }
end
local aug = { { "crop", length = CROP }, { "lead_mask", p = 0.5 }, { "noise", sigma = 0.02 } }

local la = io.open("/proc/loadavg")
print(string.format("loader: %d records of 12 x 5000 f32 (500 Hz, 10 s), batch %d, shuffled, prefetch 2*workers; load average %s",
  N, B, la and la:read("*l"):match("^(%S+ %S+ %S+)") or "?"))
if la then la:close() end

-- 1. the loader alone
for _, f in ipairs(files) do
  for _, workers in ipairs { 1, 2 } do
    for _, a in ipairs { {}, aug } do
      local ld = wb.loader.new(f.file, { batch = B, seed = 1, workers = workers, augment = a, drop_last = true })
      ld:next() -- threads started, first batch
      local t0, n = wb.now(), 0
      for _ = 1, ld.batches do n = n + ld:next().size end
      local dt = wb.now() - t0
      local st = ld:stats()
      ld:close()
      print(string.format("  %-8s workers %d %-30s %6.0f records/s  (%.2f ms worker CPU per record)", f.name, workers,
        #a > 0 and "crop 2500 + lead_mask + noise:" or "no augmentation:", n / dt, 1e3 * st.work_seconds / st.produced / B))
    end
  end
end

-- 2. a training step fed by the loader, against in-memory batches
local function model()
  wb.manual_seed(1)
  local m = nn.Sequential(
    nn.Conv1d(12, 64, 7, { stride = 2, padding = 3 }), nn.GELU(),
    nn.Conv1d(64, 64, 7, { stride = 2, padding = 3 }), nn.GELU(),
    nn.Conv1d(64, 128, 7, { stride = 2, padding = 3 }), nn.GELU())
  local head = nn.Linear(128, #labels)
  local params = m:parameters()
  for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
  local opt = optim.AdamW(params, { lr = 1e-3 })
  return function(x, y)
    opt:zero_grad()
    local logits = head(m(x):mean(3))
    local loss = wb.bce_with_logits(logits, y:to("f32"))
    loss:backward()
    opt:step()
    return loss
  end
end

-- wall and process-CPU seconds per step
local function timed(step, get, n)
  for _ = 1, 3 do step(get()) end -- warm up (and drain a pre-filled prefetch window)
  local t0, c0 = wb.now(), cpu()
  for _ = 1, n do step(get()) end
  return (wb.now() - t0) / n, (cpu() - c0) / n
end

for _, f in ipairs(files) do
  if ONLY_FILE and f.name ~= ONLY_FILE then goto continue end
  local mem = {}
  do
    local ld = wb.loader.new(f.file, { batch = B, seed = 2, augment = aug })
    for i = 1, 8 do local b = ld:next(); mem[i] = { b.signals, b.labels } end
    ld:close()
  end
  local step = model()
  local t_mem, t_ld, waits, c_mem, c_ld = {}, {}, {}, {}, {}
  for r = 1, ROUNDS do
    local i = 0
    t_mem[r], c_mem[r] = timed(step, function() i = i % #mem + 1; return mem[i][1], mem[i][2] end, STEPS)
    local ld = wb.loader.new(f.file, { batch = B, seed = 3 + r, workers = 2, augment = aug, same_priority = SAME })
    t_ld[r] = timed(step, function() local b = ld:next(); return b.signals, b.labels end, STEPS)
    local st = ld:stats()
    waits[r] = st.wait_seconds / (STEPS + 3)
    c_ld[r] = st.work_seconds / st.produced
    ld:close()
  end
  local m, l = median(t_mem), median(t_ld)
  local lo, hi = math.huge, -math.huge
  for r = 1, ROUNDS do
    local s = t_ld[r] / t_mem[r] - 1
    lo, hi = math.min(lo, s), math.max(hi, s)
  end
  print(string.format("  training step (conv net, batch %d x 12 x %d), %s:", B, CROP, f.name))
  print(string.format("    wall: in memory %.1f ms, loader-fed %.1f ms: slowdown %+.1f%% (rounds %+.1f..%+.1f%%; target < 5%%); next() waited %.1f ms/step",
    1e3 * m, 1e3 * l, 100 * (l / m - 1), 100 * lo, 100 * hi, 1e3 * median(waits)))
  print(string.format("    CPU: step %.1f ms, loader %.1f ms per batch = %.1f%% of the step (the slowdown on an idle machine if none of it fits in the step's idle time)",
    1e3 * median(c_mem), 1e3 * median(c_ld), 100 * median(c_ld) / median(c_mem)))
  ::continue::
end

for _, f in ipairs(files) do os.remove(f.file) end
