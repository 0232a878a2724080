--[[ ecgwb.requests: the text side of the unified model's requests
(recipes/two_stage.lua, UniECG): which task a request asks for, generation
requests written from labels, and the explicit numbers a request states.

  wb.requests.intent { text = "Generate an ECG showing atrial fibrillation at 110 bpm" }  --> "generate"
  wb.requests.intent { text = "Is the QRS wide?", ecg = x }                                --> "question"
  wb.requests.intent { ecg = x }                                                           --> "interpret"
  wb.requests.parse("Generate an ECG of a 63-year-old woman with LBBB at 72 bpm")
      --> { hr = 72, age = 63, sex = 0 }  (absent numbers are nil; sex 1 male, 0 female)
  wb.requests.text({ "AFIB", "CLBBB" }, { hr = 110, age = 70, sex = 1, pick = k })
      --> "Generate a 12-lead ECG showing atrial fibrillation and left bundle branch block at 110 bpm in a 70-year-old man."

Intent. With an ECG: a question ("?" at the end, or a question word first)
is "question", anything else "interpret" (report). Without one: a request
that asks to generate, create, synthesise, simulate, draw, produce or show
an ECG is "generate"; anything else is an error that says what is missing,
since there is nothing to interpret.

Names. M.names holds, for each simulator label, the plain clinical names a
person types in a request (several, so a model does not learn one string);
wb.sim.phrases holds the report sentences, which carry measurements.
]]
local wb = require "ecgwb"

local M = {}

M.names = {
  NORM = { "a normal ECG", "normal sinus rhythm", "no abnormality" },
  SR = { "sinus rhythm", "normal sinus rhythm" },
  SBRAD = { "sinus bradycardia", "a slow sinus rhythm" },
  STACH = { "sinus tachycardia", "a fast sinus rhythm" },
  AFIB = { "atrial fibrillation", "AF", "AFib" },
  AFLT = { "atrial flutter", "flutter" },
  ["1AVB"] = { "first-degree AV block", "1st degree AV block", "a prolonged PR interval" },
  CLBBB = { "left bundle branch block", "LBBB" },
  CRBBB = { "right bundle branch block", "RBBB" },
  PVC = { "premature ventricular complexes", "PVCs", "ventricular extrasystoles" },
  STE_ANT = { "anterior ST elevation", "ST elevation in V1-V4", "an anterior STEMI" },
  STE_INF = { "inferior ST elevation", "ST elevation in II, III and aVF", "an inferior STEMI" },
  STE_LAT = { "lateral ST elevation", "ST elevation in I, aVL, V5 and V6", "a lateral STEMI" },
  STD_ = { "ST depression", "ST-segment depression" },
  INVT = { "T-wave inversion", "inverted T waves" },
  LVH = { "left ventricular hypertrophy", "LVH" },
  LNGQT = { "a long QT interval", "long QT", "QT prolongation" },
  LAD = { "left axis deviation", "a leftward axis" },
  RAD = { "right axis deviation", "a rightward axis" },
  LVOLT = { "low QRS voltage", "low voltage" },
}

local openers = { "Generate a 12-lead ECG showing", "Generate an ECG with", "Create an ECG showing",
                  "Synthesize a 12-lead ECG of", "Show me an ECG with" }

local function join(list)
  if #list <= 1 then return list[1] or "" end
  return table.concat(list, ", ", 1, #list - 1) .. " and " .. list[#list]
end

-- a generation request for the labels (codes of wb.sim.label_names); o.hr,
-- o.age, o.sex (1 male, 0 female) are stated when given; o.pick (an integer)
-- chooses the opener and the names, so a corpus gets varied wording
function M.text(labels, o)
  o = o or {}
  local k = o.pick or 0
  local names = {}
  for i, code in ipairs(labels) do
    local n = M.names[code]
    if not n then error("requests.text: unknown label '" .. tostring(code) .. "'", 2) end
    -- sinus rhythm is implied by a rate or another finding
    if not (code == "SR" and #labels > 1) then names[#names + 1] = n[(k + i) % #n + 1] end
  end
  if #names == 0 then names[1] = M.names.NORM[1] end
  local s = openers[k % #openers + 1] .. " " .. join(names)
  if o.hr and o.hr == o.hr then s = s .. string.format(" at %.0f bpm", o.hr) end
  if o.age and o.age == o.age then
    local who = o.sex == 1 and "man" or o.sex == 0 and "woman" or "patient"
    s = s .. string.format(" in a %.0f-year-old %s", o.age, who)
  end
  return s .. "."
end

local function lower(s) return (s or ""):lower() end

function M.is_question(text)
  local t = lower(text):gsub("^%s+", ""):gsub("%s+$", "")
  if t:sub(-1) == "?" then return true end
  for _, w in ipairs { "is", "are", "does", "do", "what", "which", "how", "was", "can", "could" } do
    if t:match("^" .. w .. "%f[%W]") then return true end
  end
  return false
end

function M.asks_to_generate(text)
  local t = lower(text)
  local verb = false
  for _, v in ipairs { "generate", "create", "synthes", "synthesiz", "simulat", "draw", "produce", "make", "show me" } do
    if t:find(v, 1, true) then verb = true end
  end
  return verb and (t:find("ecg", 1, true) or t:find("ekg", 1, true) or t:find("electrocardiogram", 1, true)
    or t:find("tracing", 1, true)) ~= nil
end

-- "generate" | "interpret" | "question" for a request { text = ..., ecg = ... }
function M.intent(req)
  if type(req) ~= "table" then error("requests.intent: expected a table { text = ..., ecg = ... }, got " .. type(req), 2) end
  if req.text ~= nil and type(req.text) ~= "string" then error("requests.intent: text must be a string", 2) end
  if req.ecg ~= nil then
    if not wb.is_tensor(req.ecg) then error("requests.intent: ecg must be a tensor (12, L), got " .. type(req.ecg), 2) end
    if req.text and M.is_question(req.text) then return "question" end
    return "interpret"
  end
  if req.text and M.asks_to_generate(req.text) then return "generate" end
  error("requests.intent: no ECG given, and the text does not ask to generate one (e.g. 'Generate an ECG showing "
    .. "atrial fibrillation at 110 bpm'): " .. string.format("%q", req.text or ""), 2)
end

-- the explicit numbers of a request: hr (bpm), age (years), sex (1 male, 0 female)
function M.parse(text)
  local t = lower(text)
  local out = {}
  out.hr = tonumber(t:match("(%d+%.?%d*)%s*bpm") or t:match("(%d+%.?%d*)%s*beats per minute")
    or t:match("(%d+%.?%d*)%s*/min") or t:match("rate of (%d+%.?%d*)"))
  out.age = tonumber(t:match("(%d+)[%s%-]*years?[%s%-]*old") or t:match("aged? (%d+)"))
  if t:match("%f[%a]woman%f[%A]") or t:match("%f[%a]female%f[%A]") or t:match("%f[%a]girl%f[%A]") then out.sex = 0
  elseif t:match("%f[%a]man%f[%A]") or t:match("%f[%a]male%f[%A]") or t:match("%f[%a]boy%f[%A]") then out.sex = 1 end
  return out
end

return M
