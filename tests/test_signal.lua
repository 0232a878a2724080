-- test_signal.lua: the Lua API of core/signal.c: options, shapes, units, errors
-- (the numerical checks are in test_signal.c).
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local S = wb.signal

local ecg, truth = wb.sim.ecg { fs = 500, seconds = 10, hr = 75, hr_std = 0, seed = 5 }
local y = S.bandpass(ecg, 500, 0.5, 40)
T.ok(y:size(1) == 12 and y:size(2) == 5000 and y.dtype == "f32", "bandpass keeps (12, 5000)")
T.ok(S.lowpass(ecg, 500, 40, { order = 4, zero_phase = false }):size(2) == 5000, "causal low-pass")
T.ok(S.notch(ecg, 500, 60):size(2) == 5000 and S.baseline(ecg, 500, { method = "median" }):size(2) == 5000, "notch, baseline")
T.ok(S.resample(ecg, 500, 360):size(2) == 3600, "resample 500 -> 360 Hz")
local z = S.standardize(ecg)
T.ok(math.abs(z[2]:mean():item()) < 1e-5 and math.abs(z[2]:std(nil, 0):item() - 1) < 1e-4, "standardize: mean 0, std 1")
local sos = S.butter_sos("lowpass", 500, 40, nil, 2)
T.close(S.gain(sos, 40, 500), math.sqrt(0.5), 1e-9, "-3 dB at the cutoff")
local peaks, hr = S.rpeaks(ecg, 500)
T.ok(peaks.dtype == "i64" and peaks:numel() == truth:numel(), "one R peak per beat: " .. peaks:numel() .. " vs " .. truth:numel())
T.ok(math.abs(hr - 75) < 2, "HR " .. hr)
local r = S.rhythm(peaks, 500)
T.ok(r.sdnn < 5 and r.cv < 0.01, "constant RR: SDNN " .. r.sdnn)
local m, pts = S.delineate(ecg, 500)
T.ok(pts:size(1) == peaks:numel() and pts:size(2) == 8, "points (beats, 8)")
T.ok(m.qrs > 60 and m.qrs < 130 and m.pr > 120 and m.qt > 300 and math.abs(m.axis - 52) < 15,
  string.format("PR %.0f QRS %.0f QT %.0f axis %.0f", m.pr, m.qrs, m.qt, m.axis))
-- AF (no P waves: every beat takes the median beat's QRS bounds, here an
-- onset 9 samples before R) with an R peak 1-6 samples from the start: that
-- beat's QRS would begin before sample 0, so it is not measured (points
-- -1), and nothing is read outside the signal (the SAN build checks); the
-- other beats give the QRS and axis. 12 samples from the start it is measured.
do
  local r = wb.sim.record { hr = 100, rhythm = "afib", seed = 3, fs = 250, seconds = 10 }
  local p = S.rpeaks(r.ecg, 250):totable()
  for _, back in ipairs { 1, 3, 6, 12 } do
    local s0 = p[2] - back
    local q = {}
    for i = 2, #p do q[#q + 1] = p[i] - s0 end
    local am, apts = S.delineate(r.ecg:narrow(2, s0 + 1, r.ecg:size(2) - s0):contiguous(), 250, { peaks = wb.tensor(q, "i64") })
    if back < 9 then
      T.ok(apts:get(1, 4) == -1 and apts:get(1, 6) == -1 and apts:get(2, 4) >= 0,
        string.format("R peak %d samples from the start: its QRS is not measured, the next one is", back))
    else
      T.ok(apts:get(1, 4) >= 0 and apts:get(1, 4) < back, string.format("R peak %d samples from the start: its QRS is measured", back))
    end
    T.ok(am.p_fraction == 0 and am.qrs > 60 and am.qrs < 120 and am.axis == am.axis,
      string.format("AF cropped at an R peak: no P waves, QRS %.0f ms, axis %.0f", am.qrs, am.axis))
  end
end
T.fails(function() S.bandpass(ecg, 500, 40, 5) end, "butter: need 0 < f1 < f2")
T.fails(function() S.lowpass(ecg, 500, 40, { ordre = 2 }) end, "unknown option 'ordre'")
T.fails(function() S.rpeaks(wb.zeros(2, 2, 1000), 500) end, "need (samples) or (leads, samples)")
T.done()
