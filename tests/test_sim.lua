-- test_sim.lua: the simulator's Lua API: options, shapes, units, errors;
-- records with truth, labels and reports; the batch; report templates vary
-- and mention every finding.
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

-- a record with conditions: truth, labels, report
local r = wb.sim.record { hr = 70, bbb = "right", st = { "inferior" }, st_mv = 0.2, pr_ms = 240, seed = 2, index = 5,
                          noise = { emg = 20, pl = 25, pl_hz = 60 } }
T.ok(r.ecg:size(1) == 12 and r.clean:size(2) == 5000 and r.waves:size(2) == 9, "record tensors")
T.ok(r.waves:size(1) == r.rpeaks:numel(), "one fiducial row per beat")
local has = {}
for _, l in ipairs(r.labels) do has[l] = true end
T.ok(has.CRBBB and has.STE_INF and has["1AVB"] and has.SR and not has.NORM, "labels: " .. table.concat(r.labels, " "))
T.close(r.truth.pr_ms, 240, 0.5, "truth PR")
T.ok(r.truth.qrs_ms >= 120 and r.truth.sex and r.truth.age >= 18, "truth QRS " .. r.truth.qrs_ms)
T.ok((r.ecg[1] + r.ecg[3] - r.ecg[2]):abs():max():item() < 1e-6, "noisy record keeps Einthoven")
T.ok((r.ecg - r.clean):abs():max():item() > 0.005, "noise added")
T.ok(type(r.report) == "string" and #r.report > 40, "report: " .. r.report)
local r2 = wb.sim.record { hr = 70, bbb = "right", st = { "inferior" }, st_mv = 0.2, pr_ms = 240, seed = 2, index = 5,
                           noise = { emg = 20, pl = 25, pl_hz = 60 } }
T.ok(r2.report == r.report, "same record, same report")
T.close(r2.ecg, r.ecg, 0, "same record, same signal")

-- reports vary over records and name every finding (a keyword per label)
local keywords = {
  SBRAD = "bradycardia", STACH = "tachycardia", AFIB = { "fibrillation", "AF " }, AFLT = "flutter", ["1AVB"] = { "av block", "atrioventricular", "av conduction delay" },
  CLBBB = { "left bundle", "LBBB" }, CRBBB = { "right bundle", "RBBB" }, PVC = { "PVC", "ventricular extrasystole", "ventricular premature", "premature ventricular" }, STE_ANT = "anterior",
  STE_INF = "inferior", STE_LAT = "lateral", STD_ = { "ST depression", "ST-segment depression" }, INVT = { "T-wave inversion", "nverted T", "egative T" },
  LVH = { "LVH", "hypertrophy" }, LNGQT = { "prolonged qt", "long qt", "qtc prolonged" }, LAD = { "left axis", "to the left", "Left axis", "Leftward" },
  RAD = { "right axis", "to the right", "Right axis", "Rightward" }, LVOLT = { "low voltage", "low qrs voltage", "low-amplitude" },
  NORM = { "%f[%a]normal ecg", "%f[%a]normal electrocardiogram", "within normal limits", "no abnormality" }, SR = { "inus" },
}
local function mentions(text, code)
  local k = keywords[code]
  if type(k) == "string" then k = { k } end
  for _, w in ipairs(k) do
    if text:lower():find(w:lower(), 1, w:sub(1, 2) ~= "%f") then return true end -- "%f..." is a pattern
  end
  return false
end
local conds = {
  {}, { hr = 48 }, { hr = 120 }, { rhythm = "afib", hr = 90 }, { rhythm = "aflt", flutter_block = 2 }, { pr_ms = 260 },
  { bbb = "left" }, { bbb = "right" }, { pvc_prob = 0.3 }, { st = "anterior" }, { st = "inferior" }, { st = "lateral" },
  { std_mv = 0.15 }, { t_inversion = true }, { lvh_mv = 4.5 }, { qt_extra_ms = 120 }, { axis = -60 }, { axis = 120 },
  { low_voltage_mv = 0.35 },
}
local batch = {}
for i, o in ipairs(conds) do
  for j = 1, 6 do
    local c = { seconds = 10, seed = 4, index = i * 100 + j }
    for k, v in pairs(o) do c[k] = v end
    batch[#batch + 1] = c
  end
end
local b = wb.sim.batch(batch)
T.ok(b.ecg:size(1) == #batch and b.ecg:size(2) == 12 and b.ecg:size(3) == 5000, "batch shape")
local missing, seen_codes = {}, {}
local variants = {}
for i = 1, #batch do
  for _, l in ipairs(b.labels[i]) do
    seen_codes[l] = true
    if not mentions(b.report[i], l) then missing[#missing + 1] = l .. ": " .. b.report[i] end
  end
  local cond_i = math.floor((i - 1) / 6) + 1
  variants[cond_i] = variants[cond_i] or {}
  -- the report without numbers: the phrasing alone
  variants[cond_i][b.report[i]:gsub("%-?%d+%.?%d*", "#")] = true
end
T.ok(#missing == 0, "every label is mentioned in its report\n  " .. table.concat(missing, "\n  "))
-- and a finding is not mentioned without its label
local extra = {}
for i = 1, #batch do
  local has_l = {}
  for _, l in ipairs(b.labels[i]) do has_l[l] = true end
  for _, code in ipairs({ "CLBBB", "CRBBB", "AFIB", "AFLT", "LVH", "LNGQT", "LAD", "RAD", "LVOLT", "PVC", "1AVB", "NORM" }) do
    if not has_l[code] and mentions(b.report[i], code) then extra[#extra + 1] = code .. ": " .. b.report[i] end
  end
end
T.ok(#extra == 0, "no finding without its label\n  " .. table.concat(extra, "\n  "))
for _, code in ipairs(wb.sim.label_names) do
  T.ok(seen_codes[code], "label " .. code .. " occurs in the batch")
  T.ok(#wb.sim.phrases[code] >= 3, code .. " has at least 3 phrasings")
end
for i, v in pairs(variants) do
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  T.ok(n >= 3, "condition " .. i .. ": " .. n .. " different phrasings in 6 records")
end
-- the batch equals single records
local one = wb.sim.record(batch[7])
T.close(b.ecg[7], one.ecg, 0, "batch record 7 = single record")
T.ok(b.report[7] == one.report, "and the same report")

-- ecgwb's own R-peak detector and delineator (core/signal.c) against the
-- truth (wb.sim.check_truth), on ten clean records of each condition and of
-- combinations the default corpus contains: HR within 2 bpm; PR, QRS and QT
-- within 20 ms. The records: seed 11 index 1-5 (on which the delineator was
-- developed) and seed 12 index 101-105 (held out until the fixes of the
-- LVH P threshold and the AF representative beat). Atrial flutter at each conduction ratio (2:1, 3:1, 4:1 and
-- variable): the delineator subtracts the periodic flutter wave first. The
-- rhythm on the same records: atrial fibrillation has an irregular RR
-- (coefficient of variation above 0.1) and no P wave found in any beat;
-- atrial flutter no P wave either (flutter waves are not P waves); sinus
-- rhythm a regular RR (CV below 0.08) and a P wave in at least 80% of the
-- beats. No record is exempt (AFLT 4:1 seed 12 #103 was, until the R-peak
-- detector stopped taking the tail of a QRS cut by the record's start for a
-- beat: that extra RR had made its rhythm look like sinus with HRV).
local dconds = {
  { name = "NORM" }, { name = "SBRAD", hr = 48 }, { name = "STACH", hr = 120 }, { name = "AFIB", rhythm = "afib", hr = 90 },
  { name = "AFLT 2:1", rhythm = "aflt", flutter_block = 2 }, { name = "AFLT 3:1", rhythm = "aflt", flutter_block = 3 },
  { name = "AFLT 4:1", rhythm = "aflt", flutter_block = 4 }, { name = "AFLT variable", rhythm = "aflt" }, { name = "1AVB", pr_ms = 260 }, { name = "LBBB", bbb = "left" },
  { name = "RBBB", bbb = "right" }, { name = "PVC", pvc_prob = 0.2 }, { name = "STE", st = "anterior" },
  { name = "STD", std_mv = 0.15 }, { name = "INVT", t_inversion = true }, { name = "LVH", lvh_mv = 4.5 },
  { name = "LQT", qt_extra_ms = 120 }, { name = "LAD", axis = -60 }, { name = "RAD", axis = 120 }, { name = "LVOLT", low_voltage_mv = 0.35 },
  -- combinations (none excluded by the corpus's rules, wb.sim.corpus_record)
  { name = "STE+LVH", st = "anterior", st_mv = 0.3, lvh_mv = 5 }, { name = "AFIB+LBBB", rhythm = "afib", hr = 90, bbb = "left" },
  { name = "RBBB+LAD", bbb = "right", axis = -70 }, { name = "LBBB+STE", bbb = "left", st = "inferior", st_mv = 0.3 },
  { name = "1AVB+RBBB", pr_ms = 300, bbb = "right" }, { name = "STD+INVT", std_mv = 0.2, t_inversion = true },
}
for _, c in ipairs(dconds) do
  local bad, rhythm_bad, worst = {}, {}, { hr = 0, pr = 0, qrs = 0, qt = 0 }
  local af, fl, sinus = c.rhythm == "afib", c.rhythm == "aflt", not c.rhythm and not c.pvc_prob
  for j = 1, 10 do
    local seed, idx = j <= 5 and 11 or 12, j <= 5 and j or 95 + j
    local o = { seed = seed, index = idx }
    for k, v in pairs(c) do if k ~= "name" then o[k] = v end end
    local res = wb.sim.check_truth(o)
    for k, e in pairs(res.err) do worst[k] = math.max(worst[k], e) end
    for _, why in ipairs(res.bad) do bad[#bad + 1] = string.format("%d/#%d %s", seed, idx, why) end
    if res.rhythm then rhythm_bad[#rhythm_bad + 1] = string.format("%d/#%d %s", seed, idx, res.rhythm) end
  end
  local summary = string.format("worst |error| HR %.2f bpm, PR %.1f, QRS %.1f, QT %.1f ms", worst.hr, worst.pr, worst.qrs, worst.qt)
  print(string.format("%-14s %s", c.name, summary))
  T.ok(#bad == 0, c.name .. ": delineator recovers the truth, " .. summary .. " " .. table.concat(bad, "; "))
  if af or fl or sinus then
    T.ok(#rhythm_bad == 0, c.name .. (af and ": irregular RR and no P wave " or fl and ": no P wave (flutter waves) "
      or ": regular RR and P waves ") .. table.concat(rhythm_bad, "; "))
  end
end

-- the corpus's own mix: the first 60 records of the default corpus's options
-- (wb.sim.corpus_record, n 2000, seed 2024), noise removed, through the same
-- detector and delineator. Out of tolerance (HR 2 bpm; PR, QRS, QT 20 ms) in
-- 6 of 60 today (P waves missed at fast rates and long PR, T offsets under
-- long QT, flutter with PVCs at 150/min): the bound is that plus one record,
-- to be tightened as the delineator improves.
local mix_bad = {}
for i = 0, 59 do
  local o = wb.sim.corpus_record({ n = 2000, seed = 2024 }, i)
  o.noise = nil
  local why = wb.sim.check_truth(o).bad
  if #why > 0 then mix_bad[#mix_bad + 1] = "#" .. i .. " " .. table.concat(why, " ") end
end
print(string.format("corpus mix: %d of 60 clean records out of tolerance", #mix_bad))
T.ok(#mix_bad <= 7, "corpus mix: at most 7 of 60 records out of tolerance, got " .. #mix_bad .. "\n  " .. table.concat(mix_bad, "\n  "))

T.fails(function() wb.sim.record { rhythm = "vfib" } end, "sim.record: unknown rhythm 'vfib'")
T.fails(function() wb.sim.record { st = "posterior" } end, "unknown ST territory 'posterior'")
T.fails(function() wb.sim.record { noise = { hum = 3 } } end, "unknown noise 'hum'")
T.fails(function() wb.sim.record { rhythm = "afib", pr_ms = 250 } end, "pr_ms needs sinus rhythm")
T.fails(function() wb.sim.batch { { fs = 500 }, { fs = 250 } } end, "sim_batch: record 1 has fs 250")
T.done()
