--[[ ecgwb.signal: filters, resampling, R peaks, rhythm and delineation (core/signal.c).

  local x = wb.signal.bandpass(ecg, 500, 0.5, 40)        -- zero-phase Butterworth, order 2
  x = wb.signal.notch(x, 500, 50)                         -- powerline
  x = wb.signal.baseline(x, 500)                          -- 0.5 Hz high-pass (or {method="median"})
  local y = wb.signal.resample(x, 500, 250)
  local peaks, hr = wb.signal.rpeaks(ecg, 500)            -- i64 0-based positions, bpm
  local r = wb.signal.rhythm(peaks, 500)                  -- {hr, rr_mean, sdnn, rmssd, cv, ...} (ms)
  local m, pts = wb.signal.delineate(ecg, 500)            -- {pr, qrs, qt, qtc_bazett, qtc_fridericia, axis, hr, ...}

Signals are f32 (..., samples); filters work on the last dim. Options:
order (default 2), zero_phase (default true). Intervals are in ms.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}
local KIND = { lowpass = 0, highpass = 1, bandpass = 2, bandstop = 3 }

local function opts(o, known, name)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("signal." .. name .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return o
end
local FILT = { order = true, zero_phase = true }

-- sos coefficients as a Lua table of sections {b0, b1, b2, a0, a1, a2}
function M.butter_sos(kind, fs, f1, f2, order)
  local sos, ns = ffi.new("double[60]"), ffi.new("int[1]")
  I.check(C.ewb_butter_sos(order or 2, assert(KIND[kind], "signal.butter_sos: unknown kind"), f1, f2 or 0, fs, sos, ns), 1)
  local t = {}
  for s = 0, ns[0] - 1 do t[s + 1] = { sos[6 * s], sos[6 * s + 1], sos[6 * s + 2], sos[6 * s + 3], sos[6 * s + 4], sos[6 * s + 5] } end
  return t
end

-- |H| of sections at frequency f
function M.gain(sos, f, fs)
  local buf = ffi.new("double[?]", 6 * #sos)
  for s = 1, #sos do for j = 1, 6 do buf[6 * (s - 1) + j - 1] = sos[s][j] end end
  return C.ewb_sos_gain(buf, #sos, f, fs)
end

local function butter(kind, name)
  return function(x, fs, f1, f2, o)
    if kind < 2 then o, f2 = f2, 0 end
    o = opts(o, FILT, name)
    return I.op1(C.ewb_butter_filter, x, fs, kind, f1, f2, o.order or 2, o.zero_phase == false and 0 or 1)
  end
end
M.lowpass = butter(0, "lowpass")     -- (x, fs, fc, {order, zero_phase})
M.highpass = butter(1, "highpass")
M.bandpass = butter(2, "bandpass")   -- (x, fs, f1, f2, {order, zero_phase})
M.bandstop = butter(3, "bandstop")

function M.notch(x, fs, f0, o)
  o = opts(o, { q = true, zero_phase = true }, "notch")
  return I.op1(C.ewb_notch_filter, x, fs, f0 or 50, o.q or 30, o.zero_phase == false and 0 or 1)
end

function M.baseline(x, fs, o)
  o = opts(o, { method = true }, "baseline")
  local m = ({ highpass = 0, median = 1 })[o.method or "highpass"]
  if not m then error("signal.baseline: method must be 'highpass' or 'median'", 2) end
  return I.op1(C.ewb_baseline_remove, x, fs, m)
end

function M.resample(x, fs_in, fs_out) return I.op1(C.ewb_resample, x, fs_in, fs_out) end
function M.standardize(x, eps) return I.op1(C.ewb_standardize, x, eps or 1e-8) end

local function rhythm(peaks, fs)
  local r = ffi.new("ewb_rhythm")
  I.check(C.ewb_rhythm_measures(peaks.ptr, fs, r), 2)
  return { nbeats = tonumber(r.nbeats), hr = r.hr_bpm, rr_mean = r.rr_mean_ms, rr_median = r.rr_median_ms,
           sdnn = r.sdnn_ms, rmssd = r.rmssd_ms, cv = r.rr_cv }
end
M.rhythm = rhythm

-- R peaks of x (samples) or (leads, samples): i64 positions and the mean HR
function M.rpeaks(x, fs)
  local p = I.op1(C.ewb_rpeaks, x, fs)
  return p, rhythm(p, fs).hr
end

-- delineation of x (leads, samples); o.peaks (default: detected), o.lead_i / o.lead_avf
-- (1-based; default 1 and 6 for 12 leads in the standard order)
function M.delineate(x, fs, o)
  o = opts(o, { peaks = true, lead_i = true, lead_avf = true }, "delineate")
  local peaks = o.peaks or M.rpeaks(x, fs)
  local li, lf = o.lead_i, o.lead_avf
  if not li and x:dim() == 2 and x:size(1) == 12 then li, lf = 1, 6 end
  local m = ffi.new("ewb_intervals")
  I.check(C.ewb_delineate(x.ptr, fs, peaks.ptr, li and li - 1 or -1, lf and lf - 1 or -1, I.out1, m), 1)
  local pts = I.wrap(I.out1[0])
  return { nbeats = tonumber(m.nbeats), hr = m.hr_bpm, pr = m.pr_ms, qrs = m.qrs_ms, qt = m.qt_ms,
           qtc_bazett = m.qtc_bazett_ms, qtc_fridericia = m.qtc_fridericia_ms, axis = m.axis_deg,
           p_fraction = m.p_fraction }, pts
end
M.points = { "p_on", "p_peak", "p_off", "qrs_on", "r", "qrs_off", "t_peak", "t_off" }

return M
