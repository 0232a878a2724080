--[[ ecgwb.sim: the ECG simulator (core/sim.c) from Lua.

  local ecg, rpeaks = wb.sim.ecg { fs = 500, seconds = 10, hr = 72, hr_std = 2, seed = 1, index = 0 }
  -- ecg: f32 (12, fs*seconds) in mV, leads wb.sim.leads; rpeaks: i64 0-based sample positions
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

M.leads = {}
for i = 0, 11 do M.leads[i + 1] = ffi.string(C.ewb_lead_name(i)) end

local known = { fs = true, seconds = true, hr = true, hr_std = true, lf_hf = true, seed = true, index = true }

function M.ecg(o)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("sim.ecg: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local cfg = ffi.new("ewb_sim_config", {
    fs = o.fs or 500, seconds = o.seconds or 10, hr_mean = o.hr or 70, hr_std = o.hr_std or 2,
    lf_hf = o.lf_hf or 0.5, seed = o.seed or 0, index = o.index or 0 })
  I.check(C.ewb_sim_ecg(cfg, I.out1, I.out2), 1)
  return I.wrap(I.out1[0]), I.wrap(I.out2[0])
end

-- ECGSYN's RR tachogram: n RR intervals (s) at 1 Hz
function M.rr(n, o)
  o = o or {}
  return I.new1(C.ewb_sim_rr, n, o.hr or 70, o.hr_std or 2, o.lf_hf or 0.5, o.seed or 0)
end

return M
