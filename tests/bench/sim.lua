--[[ sim.lua: the simulator's part of `make bench` (tests/bench/run.sh):
records per second for 10 s, 12 leads, 500 Hz through wb.sim.batch (C
ewb_sim_batch: OpenMP over records), clean and with every noise source,
at 1 thread and at OMP_NUM_THREADS. Target: >= 1,000 records/s on 2 cores.
  build/ecgwb tests/bench/sim.lua [records per batch]
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local B = tonumber(arg and arg[1]) or 256

local function configs(noise)
  local cfg = ffi.new("ewb_sim_config[?]", B)
  for i = 0, B - 1 do
    cfg[i].fs, cfg[i].seconds, cfg[i].hr_mean, cfg[i].hr_std, cfg[i].lf_hf = 500, 10, 50 + (i % 60), 2, 0.5
    cfg[i].seed, cfg[i].index = 1, i
    if noise then cfg[i].noise = 15; cfg[i].snr_bw, cfg[i].snr_pl, cfg[i].snr_emg, cfg[i].snr_em = 20, 30, 25, 20 end
  end
  return cfg
end

-- records per second of wall time (best of 3), and per second of CPU time
-- summed over the threads (os.clock): on a shared machine the wall rate
-- falls with the load, the CPU rate much less; the CPU rate times the cores
-- is what the cores give when they are free
local out = ffi.new("ewb_tensor*[1]")
local function rate(cfg, threads)
  C.ewb_set_num_threads(threads)
  local best, best_cpu = 0, 0
  for rep = 1, 3 do
    local t0, c0 = wb.now(), os.clock()
    assert(C.ewb_sim_batch(cfg, B, out, nil, nil, nil) == 0, ffi.string(C.ewb_last_error()))
    local dt, dc = wb.now() - t0, os.clock() - c0
    C.ewb_tensor_free(out[0])
    best, best_cpu = math.max(best, B / dt), math.max(best_cpu, B / dc)
  end
  return best, best_cpu
end

local nt = C.ewb_num_threads()
for _, noise in ipairs({ false, true }) do
  local cfg = configs(noise)
  local r1, c1 = rate(cfg, 1)
  local rn, cn = rate(cfg, nt)
  print(string.format("simulator (10 s, 12 leads, 500 Hz%s): %6.0f records/s on 1 thread, %6.0f on %d threads%s; per CPU-second %.0f (1 thread), %.0f (%d)",
    noise and ", all noise" or "", r1, rn, nt, rn >= 1000 and "" or "  (target 1000)", c1, cn, nt))
end
C.ewb_set_num_threads(nt)
