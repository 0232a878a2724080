-- test_requests.lua: the unified model's request handling: intent, request
-- texts written from labels, and the numbers parsed back out of them.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local R = wb.requests

local x = wb.zeros(12, 100)
T.ok(R.intent { text = "Generate an ECG showing atrial fibrillation at 110 bpm" } == "generate", "generate request")
T.ok(R.intent { text = "please synthesize a 12-lead EKG with LBBB" } == "generate", "synthesize, EKG")
T.ok(R.intent { ecg = x } == "interpret", "an ECG alone is interpreted")
T.ok(R.intent { ecg = x, text = "Write the report." } == "interpret", "a report request with an ECG")
T.ok(R.intent { ecg = x, text = "Is the QRS wide?" } == "question", "a question about an ECG")
T.ok(R.intent { ecg = x, text = "what is the rhythm" } == "question", "a question without '?'")
T.ok(R.intent { ecg = x, text = "Generate an ECG like this one" } == "interpret", "with an ECG the ECG is interpreted")
T.fails(function() R.intent { text = "What is atrial fibrillation?" } end, "no ECG given, and the text does not ask to generate one")
T.fails(function() R.intent { ecg = "not a tensor" } end, "ecg must be a tensor")
T.fails(function() R.intent "text" end, "expected a table")

-- every label has names; texts state what they were given, and parse() reads it back
for _, code in ipairs(wb.sim.label_names) do T.ok(R.names[code] and #R.names[code] >= 2, code .. " has names") end
local seen = {}
for k = 0, 39 do
  local hr, age, sex = 40 + 3 * k, 20 + k, k % 2
  local s = R.text({ "AFIB", "CLBBB" }, { hr = hr, age = age, sex = sex, pick = k })
  seen[s:match("^(%a+)")] = true
  T.ok(R.intent { text = s } == "generate", "request " .. k .. " is a generation request: " .. s)
  local p = R.parse(s)
  T.ok(p.hr == hr and p.age == age and p.sex == sex, string.format("parse(%q) = hr %s age %s sex %s", s,
    tostring(p.hr), tostring(p.age), tostring(p.sex)))
end
local n = 0
for _ in pairs(seen) do n = n + 1 end
T.ok(n >= 4, "requests start with " .. n .. " different verbs")
T.ok(R.text({ "SR", "1AVB" }, { pick = 0 }):find("sinus rhythm") == nil, "sinus rhythm is implied by another finding")
T.ok(R.text({}, {}):find("normal ECG", 1, true) ~= nil, "no labels: a normal ECG")
local p = R.parse("an ECG with a rate of 95 for a female patient")
T.ok(p.hr == 95 and p.sex == 0 and p.age == nil, "rate of 95, female, no age")
T.ok(R.parse("AF, 130 beats per minute, aged 81, male").hr == 130 and R.parse("aged 81, male").age == 81, "other phrasings")
T.fails(function() R.text({ "VFIB" }) end, "unknown label 'VFIB'")
T.done()
