-- test_sim.lua: the simulator's Lua API: options, shapes, units, errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local ecg, rp = wb.sim.ecg { fs = 250, seconds = 8, hr = 90, hr_std = 1, seed = 3 }
T.ok(ecg:size(1) == 12 and ecg:size(2) == 2000, "shape (12, 2000)")
T.ok(rp.dtype == "i64" and rp:numel() >= 11 and rp:numel() <= 13, "about 12 R peaks at 90 bpm in 8 s: " .. rp:numel())
T.ok(wb.sim.leads[2] == "II" and #wb.sim.leads == 12, "lead names")
-- Einthoven through tensor ops: I + III - II == 0
local e = (ecg[1] + ecg[3] - ecg[2]):abs():max():item()
T.ok(e < 1e-6, "Einthoven residual " .. e)
local again = wb.sim.ecg { fs = 250, seconds = 8, hr = 90, hr_std = 1, seed = 3 }
T.close(again, ecg, 0, "same options, same record")
local rr = wb.sim.rr(256, { hr = 60, hr_std = 3 })
T.close(rr:mean():item(), 1.0, 1e-5, "RR mean 1 s at 60 bpm")
T.fails(function() wb.sim.ecg { hz = 500 } end, "sim.ecg: unknown option 'hz'")
T.fails(function() wb.sim.ecg { hr = 500 } end, "hr_mean must be in [20, 250] bpm")
T.done()
