--[[md
# A tour of the simulator

`wb.sim.record` draws a 12-lead ECG from ecgwb's ECGSYN dipole simulator
(McSharry 2003, projected to the 12 leads with the Dower matrix) with a
chosen condition, and returns its **ground truth** (heart rate, PR, QRS, QT,
QTc, frontal axis, labels) and a clinical **report** written from that truth.

For each condition below we plot the 12-lead page (25 mm/s, 10 mm/mV, 3 × 4
layout and a lead II rhythm strip), measure its intervals with ecgwb's own
delineator (`wb.signal.delineate`: Pan–Tompkins R peaks, then P, QRS and T
boundaries), and put the measurements next to the truth. Where the two
disagree, the table says so: the simulator is the benchmark, the delineator
is what is being measured.

Run it with `ecgwb notebook run notebooks/simulator_tour.lua`.
]]
local wb = require "ecgwb"
local nb = wb.notebook -- nb.show, nb.table, nb.md: into the page (placeholder lines when run as a plain script)
local fs, seconds, seed = 500, 10, 1

-- one condition: simulate, plot, delineate, tabulate measured against truth
local measured_rows = {}
local function tour(name, options)
  local o = { fs = fs, seconds = seconds, seed = seed, index = 0 }
  for k, v in pairs(options) do o[k] = v end
  local r = wb.sim.record(o)
  local m = wb.signal.delineate(r.ecg, fs)
  local t = r.truth
  nb.md("### " .. name .. "\n\nLabels: `" .. table.concat(r.labels, "`, `") .. "`")
  nb.show(wb.plot.ecg(r.ecg, { fs = fs, title = name .. ": " .. table.concat(r.labels, " ") }),
    { caption = name .. " (seed " .. seed .. "), 12 leads, " .. seconds .. " s at " .. fs .. " Hz" })
  local function row(what, truth, meas, unit)
    local diff = (truth and meas == meas) and (meas - truth) or nil
    return { what, truth or "none", meas == meas and meas or "not found", diff or "", unit }
  end
  nb.table({
    row("heart rate", t.hr, m.hr, "bpm"),
    row("PR", t.pr_ms, m.pr, "ms"),
    row("QRS", t.qrs_ms, m.qrs, "ms"),
    row("QT", t.qt_ms, m.qt, "ms"),
    row("QTc (Bazett)", t.qtc_ms, m.qtc_bazett, "ms"),
    row("frontal axis", t.axis_deg, m.axis, "deg"),
  }, { header = { "measure", "truth", "measured", "measured - truth", "unit" }, digits = 4,
       caption = string.format("wb.signal.delineate over %d beats (P waves found in %.0f%% of them)",
         m.nbeats, 100 * m.p_fraction) })
  print("report: " .. r.report)
  measured_rows[#measured_rows + 1] = { name, t.hr, m.hr, t.pr_ms or "none", m.pr == m.pr and m.pr or "-",
    t.qrs_ms, m.qrs == m.qrs and m.qrs or "-", t.qt_ms, m.qt == m.qt and m.qt or "-" }
end

--[[md
## Sinus rhythms

The rate sets the RR tachogram's mean; the RR series carries Mayer waves
(0.1 Hz) and respiratory sinus arrhythmia (0.25 Hz), so the beats are not
perfectly regular.
]]
--%% sinus rhythm at three rates
tour("normal sinus rhythm", {})
tour("sinus bradycardia", { hr = 45 })
tour("sinus tachycardia", { hr = 125 })

--[[md
## Atrial arrhythmias

In atrial fibrillation there are no P waves, the baseline is fibrillatory and
RR intervals are irregular; in flutter, sawtooth F waves run at about
300/min and conduct with a fixed (here 2:1 and 4:1) block. There is no true
PR interval in either, so any PR the delineator reports there is spurious.
]]
--%% atrial fibrillation and flutter
tour("atrial fibrillation", { rhythm = "afib", hr = 95 })
tour("atrial flutter 2:1", { rhythm = "aflt", flutter_block = 2 })
tour("atrial flutter 4:1", { rhythm = "aflt", flutter_block = 4 })

--[[md
## Conduction

A first-degree AV block only lengthens PR. Bundle branch blocks widen the
QRS (the truth gives the simulated QRS duration), and premature ventricular
complexes are wide, early beats followed by a compensatory pause.
]]
--%% AV block, bundle branch blocks, PVCs
tour("first-degree AV block", { pr_ms = 280 })
tour("left bundle branch block", { bbb = "left" })
tour("right bundle branch block", { bbb = "right" })
tour("premature ventricular complexes", { pvc_prob = 0.25 })

--[[md
## Ischaemia and repolarisation

ST elevation in one territory (anterior V1–V4, inferior II/III/aVF, lateral
I/aVL/V5/V6), diffuse ST depression, T-wave inversion and a long QT.
]]
--%% ST-T changes
tour("anterior ST elevation", { st = "anterior", st_mv = 0.25 })
tour("inferior ST elevation", { st = "inferior", st_mv = 0.25 })
tour("lateral ST elevation", { st = "lateral", st_mv = 0.2 })
tour("ST depression", { std_mv = 0.2 })
tour("T-wave inversion", { t_inversion = true })
tour("long QT", { qt_extra_ms = 150 })

--[[md
## Voltage and axis

Left ventricular hypertrophy (Sokolow–Lyon voltage), a rotated frontal axis
(the dipole is turned in the frontal plane) and low limb-lead voltage.
]]
--%% LVH, axis deviation, low voltage
tour("left ventricular hypertrophy", { lvh_mv = 4.8 })
tour("left axis deviation", { axis = -60 })
tour("right axis deviation", { axis = 120 })
tour("low voltage", { low_voltage_mv = 0.35 })

--[[md
## Noise

The same normal record under baseline wander, power-line interference,
muscle (EMG) noise and electrode motion, each at a chosen SNR in dB. The
truth is that of the clean record.
]]
--%% a noisy recording
tour("normal, with noise", { noise = { bw = 15, pl = 25, emg = 20, em = 15 } })

--[[md
## Summary

Every condition in one table: truth against measurement (ms, and bpm for the
rate). A dash is a measurement the delineator did not return.
]]
--%% all conditions
nb.table(measured_rows, { header = { "condition", "HR", "HR meas.", "PR", "PR meas.", "QRS", "QRS meas.", "QT", "QT meas." },
  digits = 4 })
local function mae(col_t, col_m)
  local s, n = 0, 0
  for _, r in ipairs(measured_rows) do
    if type(r[col_t]) == "number" and type(r[col_m]) == "number" then s, n = s + math.abs(r[col_m] - r[col_t]), n + 1 end
  end
  return s / math.max(n, 1), n
end
for _, c in ipairs { { "HR (bpm)", 2, 3 }, { "PR (ms)", 4, 5 }, { "QRS (ms)", 6, 7 }, { "QT (ms)", 8, 9 } } do
  local e, n = mae(c[2], c[3])
  print(string.format("mean |measured - truth| %-9s %6.1f over %d conditions", c[1], e, n))
end
