-- test_sim_report.lua: the report parser wb.sim.parse_report, the inverse of
-- wb.sim.report. parse(report(truth)) equals the record's labels exactly on
-- 400 simulated records of the default corpus mix; every phrasing of every
-- finding parses to its own code alone; the fuzzy fallback recovers a
-- garbled sentence and ignores an unrelated one.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local sim = wb.sim

-- 1. parse(report(truth)) == labels, records drawn as the corpus draws them
local bad, n, seen = 0, 400, {}
for i = 0, n - 1 do
  local o = sim.corpus_record({ seed = 9, fs = 100, seconds = 2 }, i)
  local r = sim.record(o)
  local got = table.concat(sim.parse_report(r.report, { exact = true }), " ")
  local want = table.concat(r.labels, " ")
  for _, l in ipairs(r.labels) do seen[l] = true end
  if r.report:find("{", 1, true) then
    bad = bad + 1
    io.stderr:write("  a placeholder left unfilled: " .. r.report .. "\n")
  end
  if got ~= want then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("  want [" .. want .. "] got [" .. got .. "]: " .. r.report .. "\n") end
  end
end
T.ok(bad == 0, string.format("parse(report(truth)) == labels, every placeholder filled, for %d/%d records", n - bad, n))
local k = 0
for _ in pairs(seen) do k = k + 1 end
T.ok(k == #sim.label_names, "the records cover all " .. #sim.label_names .. " labels, got " .. k)

-- 2. every phrasing, filled with values, parses to its own code only
local vals = { hr = "72", pr = "236", qrs = "140", qt = "400", qtc = "480", axis = "-45", atrial = "300", block = "2:1",
  npvc = "3", sok = "4.2", limb = "0.35", st_ant = "0.2", st_inf = "0.3", st_lat = "0.1", std = "0.2" }
local clean = true
for code, list in pairs(sim.phrases) do
  for _, ph in ipairs(list) do
    if ph ~= "" then
      local s = ph:gsub("{([%w_]+)}", vals)
      local got = sim.parse_sentence(s, { exact = true })
      if got ~= code then
        clean = false
        io.stderr:write("  phrase of " .. code .. " parsed as " .. tostring(got) .. ": " .. s .. "\n")
      end
    end
  end
end
T.ok(clean, "each phrasing parses to its own code")

-- 3. fuzzy fallback and implied labels
T.ok(table.concat(sim.parse_report("Sinus tachycardia at 120 bpm. Complete right bundle branch blok."), " ") == "SR STACH CRBBB",
  "a garbled sentence still parses (SR implied by STACH)")
T.ok(#sim.parse_report("Complete right bundle branch blok.", { exact = true }) == 0, "exact mode does not guess")
T.ok(#sim.parse_report("The patient was seen in clinic today.") == 0, "an unrelated sentence gives no label")
T.ok(#sim.parse_report("") == 0, "empty text")
T.ok(table.concat(sim.parse_report("Normal ECG. Abnormal ECG."), " ") == "NORM", "Normal ECG vs Abnormal ECG")
T.fails(function() sim.parse_report(nil) end, "expected a string")

T.done()
