--[[ recipes/qa.lua — simple ECG question answering in the ECG-QA style.

Method. Questions are templated from the simulator's ground truth of the
default corpus (labels and the true heart rate), five types:

  afib     "Does this ECG show atrial fibrillation?"      yes / no
  rhythm   "What is the rhythm?"                           sinus rhythm | sinus bradycardia |
                                                           sinus tachycardia | atrial fibrillation | atrial flutter
  wide_qrs "Is the QRS wide?"                              yes / no (yes = a bundle branch block, QRS >= 120 ms)
  ste      "Is there ST elevation?"                        yes / no (yes = anterior, inferior or lateral STE)
  hr       "What is the heart rate?"                       the true rate in bpm, an integer

The answerer is the report model of recipes/report.lua (trained first if
runs/report/model is missing), fine-tuned on the training split with the
prompt "<measurements>\nQuestion: <q> Answer:" and the answer as the target
(each training record gets a random question type at every step; encoder
frozen). Answers are generated greedily. Metric: exact match per question
type on the test split (every test record asked every question), with the
majority answer of the training split as the baseline. Tolerance rule for
hr: besides exact match, an answer counts as right within +-5 bpm of the
true rate (the delineator's own HR error on this corpus is ~1-2 bpm).

  ecgwb recipes/qa.lua [steps]
]]
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 2024, fs = 250, fs_model = 125,
  report_dir = opts.report_dir or "runs/report",
  steps = opts.steps or tonumber(arg and arg[1]) or 300, batch = 32, lr = 1e-3,
  hr_tolerance = 5,
  out = opts.out or "runs/qa",
}
wb.manual_seed(cfg.seed)
local t_start = wb.now()

local model, tr, te, ev_tr, ev_te = L.from_report_recipe(cfg.report_dir, cfg.fs, cfg.fs_model)

-- the questions and their answers from the ground truth
local types = { "afib", "rhythm", "wide_qrs", "ste", "hr" }
local questions = {
  afib = "Does this ECG show atrial fibrillation?", rhythm = "What is the rhythm?", wide_qrs = "Is the QRS wide?",
  ste = "Is there ST elevation?", hr = "What is the heart rate?",
}
local function answers(c)
  local lists, hr = L.label_lists(c.labels, c.label_names), c.truth.hr:totable()
  local out = {}
  for i = 1, c.n do
    local has = {}
    for _, l in ipairs(lists[i]) do has[l] = true end
    local rhythm = has.AFIB and "atrial fibrillation" or has.AFLT and "atrial flutter" or has.SBRAD and "sinus bradycardia"
      or has.STACH and "sinus tachycardia" or "sinus rhythm"
    out[i] = {
      afib = has.AFIB and "yes" or "no", rhythm = rhythm, wide_qrs = (has.CLBBB or has.CRBBB) and "yes" or "no",
      ste = (has.STE_ANT or has.STE_INF or has.STE_LAT) and "yes" or "no", hr = string.format("%.0f", hr[i]),
    }
  end
  return out
end
local a_tr, a_te = answers(tr), answers(te)

-- fine-tuning: a random question per record per step
local qtype_of = {}
model:fit({
  x = tr.x,
  prompt = function(i)
    local t = types[math.floor(wb.rand(1):item() * #types) + 1]
    qtype_of[i] = t
    return L.prompt { evidence = ev_tr[i], question = questions[t] }
  end,
  target = function(i) return a_tr[i][qtype_of[i]] end,
}, { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, freeze_encoder = true, warmup = 10 })
model:save(cfg.out .. "/model")

-- every test record, every question
local xs, prompts, gold, qt = {}, {}, {}, {}
for _, t in ipairs(types) do
  for i = 1, te.n do
    prompts[#prompts + 1] = L.prompt { evidence = ev_te[i], question = questions[t] }
    gold[#gold + 1], qt[#qt + 1] = a_te[i][t], t
  end
end
local x_all = wb.cat({ te.x, te.x, te.x, te.x, te.x }, 1)
local pred = model:generate(x_all, { prompt = prompts, greedy = true, max_new_tokens = 8 })
local em_all, em_type = wb.metrics.exact_match(pred, gold, { types = qt })

-- the majority answer of each type on the training split
local base = {}
for _, t in ipairs(types) do
  local cnt, best, bn = {}, nil, 0
  for i = 1, tr.n do
    local a = a_tr[i][t]
    cnt[a] = (cnt[a] or 0) + 1
    if cnt[a] > bn then best, bn = a, cnt[a] end
  end
  local hits = 0
  for i = 1, te.n do if a_te[i][t] == best then hits = hits + 1 end end
  base[t] = { answer = best, em = hits / te.n }
end
-- heart rate within the tolerance
local within, n_hr, abs_err = 0, 0, 0
for j = 1, #pred do
  if qt[j] == "hr" then
    n_hr = n_hr + 1
    local p = tonumber(pred[j]:match("%-?%d+"))
    if p then
      abs_err = abs_err + math.abs(p - tonumber(gold[j]))
      if math.abs(p - tonumber(gold[j])) <= cfg.hr_tolerance then within = within + 1 end
    end
  end
end

print(string.format("test split, %d records x %d question types, seed %d", te.n, #types, cfg.seed))
print(string.format("%-9s %8s %10s  %s", "type", "EM", "majority", "(majority answer)"))
local out = { exact_match = em_all, per_type = em_type, baseline = base }
for _, t in ipairs(types) do
  print(string.format("%-9s %8.3f %10.3f  (%s)", t, em_type[t], base[t].em, base[t].answer))
end
print(string.format("%-9s %8.3f", "all", em_all))
out.hr_within = within / n_hr
print(string.format("hr within +-%d bpm: %.3f (mean abs error %.1f bpm over parsable answers)", cfg.hr_tolerance,
  within / n_hr, abs_err / n_hr))
for j = 1, 3 do print(string.format("  Q: %s  A: %s  (gold %s)", prompts[j]:match("Question: (.-) Answer"), pred[j], gold[j])) end
out.wall_seconds = wb.now() - t_start
print(string.format("wall %.0f s (%d fine-tuning steps)", out.wall_seconds, cfg.steps))
return out
