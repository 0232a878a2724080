--[[ ecgwb.sim: the ECG simulator (core/sim.c) from Lua.

  local ecg, rpeaks = wb.sim.ecg { fs = 500, seconds = 10, hr = 72, hr_std = 2, seed = 1, index = 0 }
  -- ecg: f32 (12, fs*seconds) in mV, leads wb.sim.leads; rpeaks: i64 0-based sample positions

  local r = wb.sim.record { hr = 80, rhythm = "afib", st = "anterior", st_mv = 0.2, noise = { emg = 20 } }
  -- r.ecg, r.clean (12, n); r.rpeaks (beats); r.waves (beats, 9); r.truth (table); r.labels {"AFIB", ...}; r.report (text)

  local b = wb.sim.batch(opts_list)   -- or wb.sim.batch(opts, count): indices opts.index .. +count-1
  -- b.ecg (B, 12, n), b.clean, b.rpeaks (B, max beats) padded with -1, b.truth[i], b.labels[i], b.report[i]

Options (all optional): fs, seconds, hr, hr_std, lf_hf, seed, index;
  rhythm = "sinus" | "afib" | "aflt"; flutter_block = 2|3|4 (nil: variable); af_rr_cv;
  pr_ms (> 200: first-degree AV block); bbb = "left" | "right"; pvc_prob;
  st = "anterior" | "inferior" | "lateral" or a list of them, st_mv; std_mv;
  t_inversion = true; lvh_mv (Sokolow-Lyon, >= 3.5); qt_extra_ms; axis (deg); low_voltage_mv;
  noise = { bw = dB, pl = dB, emg = dB, em = dB, pl_hz = 50|60 }; age; sex = "male" | "female".

Reports: wb.sim.report(truth, seed) writes one clinical text from the ground
truth, choosing among several phrasings per finding (the `phrases` table) with
a generator seeded by the record, so the same record always gets the same text.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

M.leads = {}
for i = 0, 11 do M.leads[i + 1] = ffi.string(C.ewb_lead_name(i)) end
M.label_names = {}
for k = 0, C.EWB_SIM_NUM_LABELS - 1 do M.label_names[k + 1] = ffi.string(C.ewb_sim_label_name(k)) end

local known = {
  fs = true, seconds = true, hr = true, hr_std = true, lf_hf = true, seed = true, index = true,
  rhythm = true, flutter_block = true, af_rr_cv = true, pr_ms = true, bbb = true, pvc_prob = true,
  st = true, st_mv = true, std_mv = true, t_inversion = true, lvh_mv = true, qt_extra_ms = true,
  axis = true, low_voltage_mv = true, noise = true, age = true, sex = true,
}
local rhythms = { sinus = 0, afib = 1, aflt = 2 }
local bbbs = { left = 1, right = 2 }
local territories = { anterior = 1, inferior = 2, lateral = 4 }
local noise_bits = { bw = 1, pl = 2, emg = 4, em = 8 }

local function enum(map, v, what, op)
  if v == nil then return 0 end
  local x = map[v]
  if x == nil then error(op .. ": unknown " .. what .. " '" .. tostring(v) .. "'", 3) end
  return x
end

-- fill an ewb_sim_config from an options table
local function config(o, cfg, op)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error(op .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  cfg = cfg or ffi.new("ewb_sim_config")
  cfg.fs, cfg.seconds, cfg.hr_mean = o.fs or 500, o.seconds or 10, o.hr or 70
  cfg.hr_std, cfg.lf_hf, cfg.seed, cfg.index = o.hr_std or 2, o.lf_hf or 0.5, o.seed or 0, o.index or 0
  cfg.rhythm = enum(rhythms, o.rhythm, "rhythm", op)
  cfg.flutter_block, cfg.af_rr_cv, cfg.pr_ms = o.flutter_block or 0, o.af_rr_cv or 0, o.pr_ms or 0
  cfg.bbb = enum(bbbs, o.bbb, "bbb", op)
  cfg.pvc_prob = o.pvc_prob or 0
  local st = o.st
  if type(st) == "string" then st = { st } end
  local mask = 0
  for _, t in ipairs(st or {}) do mask = bit.bor(mask, enum(territories, t, "ST territory", op)) end
  cfg.st_territory = mask
  cfg.st_mv = mask ~= 0 and (o.st_mv or 0.2) or (o.st_mv or 0)
  cfg.std_mv, cfg.t_inversion = o.std_mv or 0, o.t_inversion and 1 or 0
  cfg.lvh_mv, cfg.qt_extra_ms = o.lvh_mv or 0, o.qt_extra_ms or 0
  cfg.set_axis, cfg.axis_deg = o.axis and 1 or 0, o.axis or 0
  cfg.low_voltage_mv = o.low_voltage_mv or 0
  local nz, bits = o.noise or {}, 0
  for k, v in pairs(nz) do
    if noise_bits[k] then bits = bit.bor(bits, noise_bits[k])
    elseif k ~= "pl_hz" then error(op .. ": unknown noise '" .. tostring(k) .. "'", 3) end
  end
  cfg.noise, cfg.snr_bw, cfg.snr_pl, cfg.snr_emg, cfg.snr_em = bits, nz.bw or 0, nz.pl or 0, nz.emg or 0, nz.em or 0
  cfg.pl_hz = nz.pl_hz or 0
  cfg.age = o.age or 0
  cfg.sex = enum({ male = 1, female = 2 }, o.sex, "sex", op)
  return cfg
end

M.config = config -- (o, cfg, op): also fills the sim part of wb.loop.sim_batch work

local function nan_to_nil(x) if x ~= x then return nil end return x end

-- the C truth struct as a Lua table
local function truth_table(t, o)
  local labels = {}
  for k = 0, C.EWB_SIM_NUM_LABELS - 1 do
    if bit.band(t.labels, bit.lshift(1, k)) ~= 0 then labels[#labels + 1] = M.label_names[k + 1] end
  end
  local st = {}
  for i = 0, 11 do st[M.leads[i + 1]] = t.st_mv[i] end
  return {
    hr = t.hr, pr_ms = nan_to_nil(t.pr_ms), qrs_ms = t.qrs_ms, qt_ms = t.qt_ms, qtc_ms = t.qtc_ms,
    axis_deg = t.axis_deg, atrial_rate = nan_to_nil(t.atrial_rate), qrs_limb_mv = t.qrs_limb_mv,
    sokolow_mv = t.sokolow_mv, st_mv = st, age = t.age, sex = t.sex == 1 and "male" or "female",
    n_beats = t.n_beats, n_pvc = t.n_pvc, flutter_block = t.flutter_block, labels = labels,
    st_territories = o and o.st, -- for the report's wording only
  }, labels
end

function M.ecg(o)
  local cfg = config(o, nil, "sim.ecg")
  I.check(C.ewb_sim_ecg(cfg, I.out1, I.out2), 1)
  return I.wrap(I.out1[0]), I.wrap(I.out2[0])
end

local outs = ffi.new("ewb_tensor*[4]")
function M.record(o)
  local cfg = config(o, nil, "sim.record")
  local t = ffi.new("ewb_sim_truth")
  I.check(C.ewb_sim_record(cfg, outs, outs + 1, outs + 2, outs + 3, t), 1)
  local r = { ecg = I.wrap(outs[0]), clean = I.wrap(outs[1]), rpeaks = I.wrap(outs[2]), waves = I.wrap(outs[3]) }
  r.truth, r.labels = truth_table(t)
  r.report = M.report(r.truth, tonumber(cfg.seed) * 1000003 + tonumber(cfg.index))
  return r
end

function M.batch(list, count)
  if count then
    local base = list
    list = {}
    for i = 1, count do
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      o.index = (base.index or 0) + i - 1
      list[i] = o
    end
  end
  local n = #list
  if n == 0 then error("sim.batch: no records", 2) end
  local cfgs = ffi.new("ewb_sim_config[?]", n)
  for i = 1, n do config(list[i], cfgs[i - 1], "sim.batch") end
  local tr = ffi.new("ewb_sim_truth[?]", n)
  I.check(C.ewb_sim_batch(cfgs, n, outs, outs + 1, outs + 2, tr), 1)
  local b = { ecg = I.wrap(outs[0]), clean = I.wrap(outs[1]), rpeaks = I.wrap(outs[2]), truth = {}, labels = {}, report = {} }
  for i = 1, n do
    b.truth[i], b.labels[i] = truth_table(tr[i - 1])
    b.report[i] = M.report(b.truth[i], tonumber(cfgs[i - 1].seed) * 1000003 + tonumber(cfgs[i - 1].index))
  end
  return b
end

-- ECGSYN's RR tachogram: n RR intervals (s) at 1 Hz
function M.rr(n, o)
  o = o or {}
  return I.new1(C.ewb_sim_rr, n, o.hr or 70, o.hr_std or 2, o.lf_hf or 0.5, o.seed or 0)
end

--[[ Reports. One table holds every phrasing: per finding, at least three
paraphrases; {hr}, {pr} ... are filled from the truth. Each finding's
sentence is chosen at random, and so is the order of the interval sentence
and the closing. ]]
M.phrases = {
  SR = { "Sinus rhythm at {hr} bpm.", "Normal sinus rhythm, rate {hr}/min.", "The rhythm is sinus with a ventricular rate of {hr} bpm.", "Sinus rhythm, heart rate {hr} beats per minute." },
  SBRAD = { "Sinus bradycardia at {hr} bpm.", "Sinus rhythm with bradycardia, rate {hr}/min.", "Slow sinus rhythm (sinus bradycardia), {hr} beats per minute.", "Marked sinus bradycardia, ventricular rate {hr} bpm." },
  STACH = { "Sinus tachycardia at {hr} bpm.", "Sinus rhythm with tachycardia, rate {hr}/min.", "Rapid sinus rhythm (sinus tachycardia), {hr} beats per minute.", "Sinus tachycardia with a ventricular rate of {hr} bpm." },
  AFIB = { "Atrial fibrillation with a ventricular rate of {hr} bpm.", "Atrial fibrillation, irregularly irregular rhythm, mean rate {hr}/min; no P waves.", "The rhythm is atrial fibrillation (fibrillatory baseline, no discernible P waves), average rate {hr} bpm.", "AF with an irregular ventricular response at about {hr} beats per minute." },
  AFLT = { "Atrial flutter with {block} block, ventricular rate {hr} bpm.", "Atrial flutter, flutter waves at {atrial}/min with {block} conduction.", "Sawtooth flutter waves at about {atrial} per minute: atrial flutter with {block} conduction, rate {hr}/min.", "The rhythm is atrial flutter ({block} block), ventricular rate {hr} bpm." },
  ["1AVB"] = { "First-degree AV block (PR {pr} ms).", "Prolonged PR interval of {pr} ms, consistent with first-degree atrioventricular block.", "1st degree AV block, PR {pr} ms.", "AV conduction delay: PR interval {pr} ms (first-degree block)." },
  CLBBB = { "Complete left bundle branch block.", "Left bundle branch block with QRS duration {qrs} ms.", "Broad QRS ({qrs} ms) with a left bundle branch block pattern: QS in V1, broad notched R waves in I, aVL, V5 and V6.", "LBBB with secondary repolarisation changes." },
  CRBBB = { "Complete right bundle branch block.", "Right bundle branch block, QRS {qrs} ms.", "Wide QRS ({qrs} ms) with an RSR' pattern in V1 and broad S waves in I and V6, consistent with RBBB.", "RBBB pattern with terminal R' in V1." },
  PVC = { "Premature ventricular complexes ({npvc}) with compensatory pauses.", "{npvc} ventricular extrasystoles are seen.", "Occasional PVCs ({npvc} in this recording), wide and bizarre, followed by a full compensatory pause.", "Ventricular premature beats present ({npvc})." },
  STE_ANT = { "ST elevation in the anterior leads V1-V4.", "Anterior ST-segment elevation (V1 to V4), suggestive of acute anterior injury.", "ST elevation of {st_ant} mV in V1-V4: consider anterior STEMI.", "Acute anterior injury pattern with ST elevation in the precordial leads V1-V4." },
  STE_INF = { "ST elevation in the inferior leads II, III and aVF.", "Inferior ST-segment elevation (II, III, aVF), suggestive of acute inferior injury.", "ST elevation of {st_inf} mV in II, III and aVF: consider inferior STEMI.", "Acute inferior injury pattern with ST elevation in II, III and aVF." },
  STE_LAT = { "ST elevation in the lateral leads I, aVL, V5 and V6.", "Lateral ST-segment elevation (I, aVL, V5-V6), suggestive of acute lateral injury.", "ST elevation of {st_lat} mV in I, aVL, V5 and V6: consider lateral STEMI.", "Acute lateral injury pattern with ST elevation in I, aVL and V5-V6." },
  STD_ = { "ST depression, maximal in V5 ({std} mV).", "Horizontal ST-segment depression in the lateral and inferior leads.", "Diffuse ST depression of about {std} mV, consistent with subendocardial ischaemia.", "Non-specific ST depression." },
  INVT = { "T-wave inversion.", "Inverted T waves in several leads.", "Negative T waves, possibly ischaemic.", "Abnormal repolarisation with T-wave inversion." },
  LVH = { "Left ventricular hypertrophy by voltage criteria (Sokolow-Lyon {sok} mV) with strain.", "LVH: SV1 + RV5/6 = {sok} mV, with secondary ST-T changes.", "Increased QRS voltage consistent with left ventricular hypertrophy, with repolarisation abnormality.", "Voltage criteria for LVH met ({sok} mV), strain pattern in the lateral leads." },
  LNGQT = { "Prolonged QT interval (QTc {qtc} ms).", "Long QT: QT {qt} ms, QTc {qtc} ms.", "QTc prolonged at {qtc} ms.", "Abnormally long QT interval, corrected QT {qtc} ms." },
  LAD = { "Left axis deviation ({axis} degrees).", "The frontal QRS axis is deviated to the left, {axis} degrees.", "Left axis deviation, axis {axis}°.", "Leftward QRS axis of {axis} degrees." },
  RAD = { "Right axis deviation ({axis} degrees).", "The frontal QRS axis is deviated to the right, {axis} degrees.", "Right axis deviation, axis {axis}°.", "Rightward QRS axis of {axis} degrees." },
  LVOLT = { "Low QRS voltage in the limb leads.", "Low voltage QRS (limb leads below 0.5 mV).", "Small QRS complexes in the limb leads: low voltage.", "Low-amplitude QRS complexes in the limb leads ({limb} mV)." },
  NORM = { "Normal ECG.", "Normal electrocardiogram.", "Within normal limits.", "No abnormality detected." },
  intervals = { "PR {pr} ms, QRS {qrs} ms, QT/QTc {qt}/{qtc} ms, axis {axis}°.", "Intervals: PR {pr}, QRS {qrs}, QT {qt}, QTc {qtc} ms; QRS axis {axis} degrees.", "PR interval {pr} ms, QRS duration {qrs} ms, QTc {qtc} ms, frontal axis {axis}°.", "Measurements: PR {pr} ms; QRS {qrs} ms; QT {qt} ms (QTc {qtc} ms); axis {axis}°." },
  intervals_nop = { "QRS {qrs} ms, QT/QTc {qt}/{qtc} ms, axis {axis}°.", "Intervals: QRS {qrs}, QT {qt}, QTc {qtc} ms; QRS axis {axis} degrees.", "QRS duration {qrs} ms, QTc {qtc} ms, frontal axis {axis}°.", "Measurements: QRS {qrs} ms; QT {qt} ms (QTc {qtc} ms); axis {axis}°." },
  abnormal = { "Abnormal ECG.", "Abnormal electrocardiogram.", "Abnormal tracing.", "" },
}
-- the order findings are reported in: rhythm first, then conduction, then the rest
M.report_order = { "SR", "SBRAD", "STACH", "AFIB", "AFLT", "1AVB", "CLBBB", "CRBBB", "PVC", "STE_ANT", "STE_INF", "STE_LAT",
                   "STD_", "INVT", "LVH", "LNGQT", "LAD", "RAD", "LVOLT" }

local function fill(s, v)
  return (s:gsub("{([%w_]+)}", function(k) return v[k] ~= nil and tostring(v[k]) or "{" .. k .. "}" end))
end

-- a small deterministic generator (LCG) so reports do not depend on math.random's state
local function lcg(seed)
  local x = (tonumber(seed) or 0) % 2147483647
  if x <= 0 then x = x + 2147483646 end
  return function(n)
    x = (x * 48271) % 2147483647
    return x % n + 1
  end
end

function M.report(truth, seed)
  local pick = lcg(seed or 1)
  local has = {}
  for _, l in ipairs(truth.labels) do has[l] = true end
  local function r(x) return string.format("%.0f", x) end
  local st = truth.st_mv or {}
  local v = {
    hr = r(truth.hr), pr = truth.pr_ms and r(truth.pr_ms), qrs = r(truth.qrs_ms), qt = r(truth.qt_ms), qtc = r(truth.qtc_ms),
    axis = r(truth.axis_deg), atrial = truth.atrial_rate and r(truth.atrial_rate),
    block = truth.flutter_block and truth.flutter_block > 0 and (truth.flutter_block .. ":1") or "variable",
    npvc = tostring(truth.n_pvc), sok = string.format("%.1f", truth.sokolow_mv or 0),
    limb = string.format("%.2f", truth.qrs_limb_mv or 0),
    st_ant = string.format("%.1f", math.max(st.V2 or 0, st.V3 or 0)), st_inf = string.format("%.1f", math.max(st.II or 0, st.III or 0, st.aVF or 0)),
    st_lat = string.format("%.1f", math.max(st.I or 0, st.aVL or 0, st.V5 or 0, st.V6 or 0)), std = string.format("%.1f", -(st.V5 or 0)),
  }
  local out = {}
  for _, code in ipairs(M.report_order) do
    -- SR is implied by SBRAD / STACH
    if has[code] and not (code == "SR" and (has.SBRAD or has.STACH)) then
      local p = M.phrases[code]
      out[#out + 1] = fill(p[pick(#p)], v)
    end
  end
  local iv = truth.pr_ms and M.phrases.intervals or M.phrases.intervals_nop
  local meas = fill(iv[pick(#iv)], v)
  if has.NORM then
    local p = M.phrases.NORM
    out[#out + 1] = p[pick(#p)]
  else
    local p = M.phrases.abnormal
    local s = p[pick(#p)]
    if s ~= "" then out[#out + 1] = s end
  end
  if pick(2) == 1 then table.insert(out, 1, meas) else table.insert(out, #out + (has.NORM and 0 or 1), meas) end
  return table.concat(out, " ")
end

--[[ The inverse of M.report: wb.sim.parse_report(text) -> {label codes} in
the order of M.label_names. The text is split into sentences (". " or a
final "."; decimal points are not followed by a space), and each sentence is
matched against every phrasing in M.phrases, anchored at both ends, with
each {field} standing for one value (a number, "2:1", "variable"). A
sentence that matches no phrasing exactly (a generated report may garble a
word) goes to the phrasing whose words it shares most (Dice coefficient of
the word sets, numbers left out), if that is >= 0.75. SR is implied by
SBRAD and STACH, as in M.report; NORM comes from its own sentence.
Interval, "abnormal" and unknown sentences give no label. ]]
local parse_table
local function phrase_words(s)
  local w, n = {}, 0
  for t in s:lower():gsub("{[%w_]+}", " "):gmatch("[%a][%a%-']*") do
    if not w[t] then w[t] = true; n = n + 1 end
  end
  return w, n
end
local function build_parse_table()
  local rows = {}
  local codes = {}
  for code in pairs(M.phrases) do codes[#codes + 1] = code end
  table.sort(codes)
  for _, code in ipairs(codes) do
    for _, ph in ipairs(M.phrases[code]) do
      if ph ~= "" then
        local s = ph:gsub("%.$", "")
        local pat = s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{[%w_]+}", "[%%w%%.:%%-]+")
        local words, n = phrase_words(s)
        rows[#rows + 1] = { code = code, pat = "^" .. pat .. "$", words = words, n = n }
      end
    end
  end
  return rows
end

local function dice(words, n, row)
  if n == 0 or row.n == 0 then return 0 end
  local common = 0
  for w in pairs(words) do if row.words[w] then common = common + 1 end end
  return 2 * common / (n + row.n)
end

-- the phrase code of one sentence, or nil
function M.parse_sentence(s, o)
  parse_table = parse_table or build_parse_table()
  s = s:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%.$", "")
  if s == "" then return nil end
  for _, row in ipairs(parse_table) do
    if s:find(row.pat) then return row.code end
  end
  if o and o.exact then return nil end
  local words, n = phrase_words(s)
  local best, code = 0, nil
  for _, row in ipairs(parse_table) do
    local d = dice(words, n, row)
    if d > best then best, code = d, row.code end
  end
  if best >= ((o and o.min_dice) or 0.75) then return code end
  return nil
end

-- text -> list of label codes (order of M.label_names); o.exact = true turns the fuzzy match off
function M.parse_report(text, o)
  if type(text) ~= "string" then error("sim.parse_report: expected a string, got " .. type(text), 2) end
  local has = {}
  for sent in (text:gsub("%.%s+", "\n") .. "\n"):gmatch("([^\n]*)\n") do
    local code = M.parse_sentence(sent, o)
    if code then has[code] = true end
  end
  if has.SBRAD or has.STACH then has.SR = true end
  local out = {}
  for _, l in ipairs(M.label_names) do
    if has[l] then out[#out + 1] = l end
  end
  return out
end

--[[ The corpus. wb.sim.make_corpus(o) writes o.n records in the ecgwb dataset
layout (data/README.md); data/make_sim.lua is its command line. Options and
defaults are M.corpus_defaults; every record's conditions come from (seed,
index) alone (M.corpus_record), so the file is the same at any thread count
and batch size. Besides the layout, truth/hr, truth/pr_ms (NaN without P
waves), truth/qrs_ms, truth/qt_ms, truth/qtc_ms and truth/axis_deg, each (N) f32.
]]
M.corpus_defaults = { n = 1000, fs = 500, seconds = 10, seed = 1, normal = 0.3, noise = 0.3, split = { 80, 10, 10 },
                      batch = 256, dtype = "f32", compression = 4, progress = true }

local findings = {
  { "SBRAD", "rate", function(o, U) o.hr = U(40, 55) end },
  { "STACH", "rate", function(o, U) o.hr = U(105, 150) end },
  { "AFIB", "rate", function(o, U) o.rhythm = "afib"; o.hr = U(70, 140) end },
  { "AFLT", "rate", function(o, U, u) o.rhythm = "aflt"; local k = ({ 2, 4, nil })[math.floor(u() * 3) + 1]; o.flutter_block = k end },
  { "1AVB", "pr", function(o, U) o.pr_ms = U(220, 320) end },
  { "CLBBB", "bbb", function(o) o.bbb = "left" end },
  { "CRBBB", "bbb", function(o) o.bbb = "right" end },
  { "PVC", "pvc", function(o, U) o.pvc_prob = U(0.1, 0.3) end },
  { "STE", "ste", function(o, U, u) o.st = ({ "anterior", "inferior", "lateral" })[math.floor(u() * 3) + 1]; o.st_mv = U(0.1, 0.35) end },
  { "STD_", "std", function(o, U) o.std_mv = U(0.1, 0.25) end },
  { "INVT", "invt", function(o) o.t_inversion = true end },
  { "LVH", "volt", function(o, U) o.lvh_mv = U(3.6, 5.5) end },
  { "LNGQT", "qt", function(o, U) o.qt_extra_ms = U(80, 200) end },
  { "LAD", "axis", function(o, U) o.axis = U(-80, -35) end },
  { "RAD", "axis", function(o, U) o.axis = U(100, 150) end },
  { "LVOLT", "volt", function(o, U) o.low_voltage_mv = U(0.25, 0.45) end },
}

local function corpus_options(o)
  local c = {}
  for k, v in pairs(M.corpus_defaults) do c[k] = v end
  for k, v in pairs(o or {}) do
    if M.corpus_defaults[k] == nil and k ~= "out" then error("sim.make_corpus: unknown option '" .. tostring(k) .. "'", 3) end
    c[k] = v
  end
  if type(c.split) == "string" then
    local sp = {}
    for x in c.split:gmatch("[^,]+") do sp[#sp + 1] = tonumber(x) end
    c.split = sp
  end
  for _, k in ipairs({ "n", "fs", "seconds", "seed", "normal", "noise", "batch", "compression" }) do c[k] = tonumber(c[k]) end
  return c
end

--[[ The simulator options and split (1 train, 2 validation, 3 test) of record
`index` (0-based) of a corpus with options c: `normal` is the share of normal
records; the others get one to three findings, with incompatible ones (two
rhythms, two bundle branch blocks, left and right axis, LVH and low voltage,
LVH with an axis beyond [-60, 75] deg) excluded; `noise` is the chance of
each noise source (SNR 10-30 dB). ]]
function M.corpus_record(c, index)
  c = corpus_options(c)
  -- a generator per record: Park-Miller on a hash of (seed, index)
  local x = (c.seed * 1000003 + index * 7919 + 12345) % 2147483647
  if x <= 0 then x = x + 2147483646 end
  local function u()
    x = (x * 48271) % 2147483647
    return x / 2147483647
  end
  local function U(lo, hi) return lo + (hi - lo) * u() end
  local o = { fs = c.fs, seconds = c.seconds, seed = c.seed, index = index, hr = U(60, 95), hr_std = U(1, 4) }
  if u() >= c.normal then
    local want, used, n = 1 + math.floor(u() * 3), {}, 0
    for _ = 1, 20 do
      if n == want then break end
      local f = findings[math.floor(u() * #findings) + 1]
      local blocked = used[f[2]] or (f[2] == "pr" and (o.rhythm ~= nil)) or (f[2] == "rate" and f[1] ~= "SBRAD" and f[1] ~= "STACH" and o.pr_ms)
        or (f[1] == "LVH" and o.axis and (o.axis < -60 or o.axis > 75)) or (f[2] == "axis" and o.lvh_mv)
      if not blocked then
        f[3](o, U, u)
        used[f[2]] = true
        n = n + 1
      end
    end
  end
  local noise = {}
  for _, k in ipairs({ "bw", "pl", "emg", "em" }) do
    if u() < c.noise then noise[k] = U(10, 30) end
  end
  if u() < 0.5 then noise.pl_hz = 60 end
  o.noise = noise
  local sp = c.split
  local r = u() * (sp[1] + sp[2] + sp[3])
  return o, r < sp[1] and 1 or r < sp[1] + sp[2] and 2 or 3
end

local truth_fields = { "hr", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "axis_deg" }
-- bumped whenever the simulator's records or reports change, so that a saved
-- corpus made by an older simulator is not reused (corpus_ok); stored in the
-- file as the dataset corpus_version
M.corpus_version = 2

function M.make_corpus(o)
  local c = corpus_options(o)
  if not c.out then error("sim.make_corpus: option out (the .h5 file) is required", 2) end
  local N, B = c.n, c.batch
  local ds = wb.dataset.create(c.out, { fs = c.fs, leads = 12, samples = math.floor(c.fs * c.seconds + 0.5),
                                       labels = M.label_names, units = "mV", dtype = c.dtype, compression = c.compression })
  local truth = {}
  for _, k in ipairs(truth_fields) do truth[k] = {} end
  local t0 = wb.now()
  local done = 0
  while done < N do
    local m = math.min(B, N - done)
    local list, splits = {}, {}
    for j = 1, m do list[j], splits[j] = M.corpus_record(c, done + j - 1) end
    local b = M.batch(list)
    local ids, ages, sexes = {}, {}, {}
    for j = 1, m do
      local t = b.truth[j]
      ids[j] = string.format("sim-%d-%d", c.seed, done + j - 1)
      ages[j] = t.age
      sexes[j] = t.sex == "male" and 1 or 0
      for _, k in ipairs(truth_fields) do truth[k][done + j] = t[k] or 0 / 0 end
    end
    ds:append { signals = b.ecg, labels = b.labels, ids = ids, reports = b.report, age = ages, sex = sexes, split = splits }
    b.ecg:free(); b.clean:free(); b.rpeaks:free()
    done = done + m
    if c.progress then
      local w = 30
      local bar = string.rep("#", math.floor(w * done / N)) .. string.rep(" ", w - math.floor(w * done / N))
      io.stderr:write(string.format("\r[%s] %d/%d records, %.0f/s", bar, done, N, done / (wb.now() - t0)))
      io.stderr:flush()
    end
  end
  if c.progress then io.stderr:write("\n") end
  ds:close()
  for _, k in ipairs(truth_fields) do wb.h5.write(c.out, "truth/" .. k, wb.tensor(truth[k])) end
  wb.h5.write(c.out, "corpus_version", wb.tensor({ M.corpus_version }, "i64"))
  return c.out, wb.now() - t0
end

--[[ The default corpus: what `make run` and the recipes use when they are
given no file. wb.sim.default_corpus() returns its path, generating it on
first use (a progress bar on stderr; a few seconds) and reusing it after.
It is M.default_corpus_spec: 2000 records of 10 s at 500 Hz, int16 at 1 µV
(~80 MB, so it is generated rather than shipped). The file is
data/default_sim.h5 in the source tree, or $XDG_CACHE_HOME/ecgwb (else
~/.cache/ecgwb) when that is not writable, or $ECGWB_DEFAULT_CORPUS; o.path
overrides all. Before reuse it is checked: it opens as a dataset of the
spec's size, and its first and last records (signals, labels, report, truth)
equal the simulator's now; otherwise (a run cut short, an older simulator)
it is generated again. A new file is written under another name and renamed
into place when complete. ]]
M.default_corpus_spec = { n = 2000, fs = 500, seconds = 10, seed = 2024, normal = 0.3, noise = 0.3, split = { 80, 10, 10 },
                          dtype = "int16" }

local function writable_dir(dir)
  local probe = dir .. "/.ecgwb_write_probe"
  local f = io.open(probe, "w")
  if not f then return false end
  f:close()
  os.remove(probe)
  return true
end

function M.default_corpus_path()
  local env = os.getenv("ECGWB_DEFAULT_CORPUS")
  if env and env ~= "" then return env end
  local src = debug.getinfo(1, "S").source
  local root = src:match("^@(.*)/lua/ecgwb/sim%.lua$") or (src:match("^@lua/ecgwb/sim%.lua$") and ".")
  if root then root = root:gsub("/[^/]+/%.%.$", "") end -- build/.. when the host found lua/ beside itself
  if root and writable_dir(root .. "/data") then return root .. "/data/default_sim.h5" end
  local cache = os.getenv("XDG_CACHE_HOME")
  if not cache or cache == "" then cache = (os.getenv("HOME") or "/tmp") .. "/.cache" end
  cache = cache .. "/ecgwb"
  os.execute("mkdir -p '" .. cache:gsub("'", "'\\''") .. "'")
  return cache .. "/default_sim.h5"
end

-- true when the file at path is a complete corpus of spec c made by this simulator; else false and why
function M.corpus_ok(path, c)
  c = corpus_options(c)
  local f = io.open(path, "rb")
  if not f then return false, "missing" end
  f:close()
  local ok, ds = pcall(wb.dataset.open, path)
  if not ok then return false, "unreadable: " .. tostring(ds) end
  local function fail(why) ds:close(); return false, why end
  if ds.n ~= c.n or ds.fs ~= c.fs or ds.samples ~= math.floor(c.fs * c.seconds + 0.5) or #ds.leads ~= 12 then
    return fail(string.format("%d records of %d samples at %g Hz, want %d of %d at %g", ds.n, ds.samples, ds.fs,
      c.n, math.floor(c.fs * c.seconds + 0.5), c.fs))
  end
  local okv, ver = pcall(wb.h5.read, path, "corpus_version")
  if not okv or ver:get(1) ~= M.corpus_version then
    return fail("made by an older simulator (corpus version " .. (okv and tostring(ver:get(1)) or "1") .. ", now " .. M.corpus_version .. ")")
  end
  local okh, hr = pcall(wb.h5.read, path, "truth/hr")
  if not okh or hr:numel() ~= c.n then return fail("truth/hr missing") end
  local tol = ds.int16 and 0.5 / ds.gain + 1e-6 or 0
  for _, i in ipairs({ 1, c.n }) do
    local o, split = M.corpus_record(c, i - 1)
    local r = M.record(o)
    local rec = ds:record(i)
    local same = rec.id == string.format("sim-%d-%d", c.seed, i - 1) and rec.report == r.report and rec.split == split
      and table.concat(rec.labels, " ") == table.concat(r.labels, " ")
    same = same and (rec.signal - r.ecg):abs():max():item() <= tol and math.abs(hr:get(i) - r.truth.hr) < 1e-3 * r.truth.hr
    if not same then return fail("record " .. i .. " differs from the simulator's") end
  end
  ds:close()
  return true
end

function M.default_corpus(o)
  o = o or {}
  local path = o.path or M.default_corpus_path()
  local ok, why = M.corpus_ok(path, M.default_corpus_spec)
  if ok then return path end
  if why ~= "missing" then io.stderr:write("default corpus " .. path .. ": " .. why .. "; generating it again\n") end
  io.stderr:write(string.format("generating the default corpus (%d simulated records) in %s\n", M.default_corpus_spec.n, path))
  local part = string.format("%s.part-%d", path, math.floor(wb.now() * 1e6) % 1e9)
  local c = {}
  for k, v in pairs(M.default_corpus_spec) do c[k] = v end
  c.out = part
  local okm, err = pcall(M.make_corpus, c)
  if not okm then os.remove(part); error("sim.default_corpus: " .. tostring(err), 2) end
  local okr, rerr = os.rename(part, path)
  if not okr then os.remove(part); error("sim.default_corpus: cannot rename " .. part .. " to " .. path .. ": " .. tostring(rerr), 2) end
  return path
end

--[[ The simulator's truth as a benchmark of ecgwb's own R-peak detector and
delineator (wb.signal): M.check_truth(o) simulates wb.sim.record(o), measures
its clean signal and compares with the truth. Tolerances: HR 2 bpm; PR, QRS
and QT 20 ms. Rhythm, by the options: atrial fibrillation needs an RR
coefficient of variation above 0.1 and no P wave found; atrial flutter no P
wave (flutter waves are not P waves); sinus rhythm without PVCs an RR CV
below 0.08 and a P wave in at least 80% of the beats. Returns
{ record, err = { hr, pr, qrs, qt } (absolute errors, math.huge when not
measured; pr nil without a true PR), bad = { "HR 143.0 vs 70.0", ... },
rhythm = nil or what failed }. tests/test_sim.lua and data/sim_heldout.lua
use it. ]]
function M.check_truth(o)
  local fs = o.fs or 500
  local r = M.record(o)
  local peaks, hr = wb.signal.rpeaks(r.clean, fs)
  local m = wb.signal.delineate(r.clean, fs, { peaks = peaks })
  local rh = wb.signal.rhythm(peaks, fs)
  local t = r.truth
  local res = { record = r, err = {}, bad = {} }
  local function check(key, name, meas, truth, tol)
    local e = (meas == nil or meas ~= meas) and math.huge or math.abs(meas - truth)
    res.err[key] = e
    if e >= tol then res.bad[#res.bad + 1] = string.format("%s %s vs %.1f", name, meas and string.format("%.1f", meas) or "none", truth) end
  end
  check("hr", "HR", hr, t.hr, 2)
  if t.pr_ms then check("pr", "PR", m.pr, t.pr_ms, 20) end
  check("qrs", "QRS", m.qrs, t.qrs_ms, 20)
  check("qt", "QT", m.qt, t.qt_ms, 20)
  if o.rhythm == "afib" and not (rh.cv > 0.1 and m.p_fraction == 0) then
    res.rhythm = string.format("AF: RR CV %.3f, P in %.2f of beats", rh.cv, m.p_fraction)
  elseif o.rhythm == "aflt" and m.p_fraction ~= 0 then
    res.rhythm = string.format("flutter: P in %.2f of beats", m.p_fraction)
  elseif not o.rhythm and not o.pvc_prob and not (rh.cv < 0.08 and m.p_fraction >= 0.8) then
    res.rhythm = string.format("sinus: RR CV %.3f, P in %.2f of beats", rh.cv, m.p_fraction)
  end
  return res
end

return M
