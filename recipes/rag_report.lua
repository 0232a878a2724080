--[[ recipes/rag_report.lua — retrieval-augmented report generation
(ECG-ReGen style), against the same model without retrieval.

Method. Start from the report model of recipes/report.lua (trained first if
runs/report/model is missing): a frozen ECG encoder trained as a
multi-label classifier, a projector, and a GPT decoder with evidence-based
prompts. An exact embedding index (wb.index: cosine top-k by one matmul)
holds the pooled encoder embeddings of the 1599 training ECGs with their
findings; it is saved to HDF5 and loaded back. For each record the k = 3
nearest training ECGs are retrieved and their findings go into the prompt.
A training record never retrieves itself, and its k neighbours are drawn
anew for every batch from its pool = 10 nearest: the encoder was trained
on these records, so their own nearest neighbours agree with them more
often than a held-out record's do (majority-vote label F1 0.932 against
0.898 on validation); drawn from the 10 nearest they agree as often as
held-out ones (0.902), and the LM learns how far to trust them. Two
context formats:

  "votes" (default): the findings of the k neighbours as short label
  phrases, each with how many of the k state it, on one line before the
  measurements (similar_first; after them, next to the report, was worse
  on validation):
      Similar ECGs: sinus rhythm 3/3, left axis deviation 2/3.
      Measured: HR 61 bpm, ... limb QRS 0.8 mV.
      Report: <the report>
  (the index holds each training report's findings as label codes,
  parsed from its text by wb.sim.parse_report; ecg_lm.vote_line)

  "reports": the findings sentences of each neighbour's report (whole
  sentences up to 160 characters, without the interval sentence), one
  "Similar ECG i:" line each, before the measurements (the first version).

Two models are then fine-tuned from the same report model for the same
number of steps with the same settings and seed, one with the retrieval
prompt (RAG) and one with the plain prompt (no RAG), and both are scored on
the evaluation split (test by default; settings were chosen on
validation): BLEU-1..4, ROUGE-L, METEOR, label F1 of the parsed findings.
Also printed, retrieval alone: the label F1 of copying the nearest
neighbour's report, and of the k neighbours' majority vote.

  ecgwb recipes/rag_report.lua [steps]
  wb.run("recipes/rag_report.lua", { split = "validation", context = "reports", k = 2, pool = 2, steps = 200 })
]]
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 2024, fs = 250, fs_model = 125,
  report_dir = opts.report_dir or "runs/report",
  split = opts.split or "test",          -- the evaluation split ("validation" to choose settings)
  context = opts.context or "votes",     -- "votes" | "reports" (see above)
  k = opts.k or 3,                       -- neighbours retrieved
  similar_first = opts.similar_first ~= false, -- "votes": the line before the measurements (false: after them)
  pool = opts.pool or math.max(10, opts.k or 3), -- training prompts: k drawn anew each time from the pool nearest (k: no draw)
  max_chars = 160,                       -- "reports": the characters kept of each neighbour's findings
  block_size = 512,
  steps = opts.steps or tonumber(arg and arg[1]) or 400, batch = 32, lr = opts.lr or 1e-3,
  arms = opts.arms or { "no_rag", "rag" },
  max_new_tokens = 110,
  out = opts.out or "runs/rag_report",
}
if cfg.context ~= "votes" and cfg.context ~= "reports" then error("rag_report: context must be 'votes' or 'reports'") end
wb.manual_seed(cfg.seed)
local t_start = wb.now()

-- 0. the report model (trained here if missing), the data and evidence (as
-- recipes/report.lua; its cached measurements are reused)
local base, tr, te, ev_tr, ev_te = L.from_report_recipe(cfg.report_dir, cfg.fs, cfg.fs_model, cfg.split)

-- 1. the index over the training ECGs, through HDF5
local function findings(report) -- the report without its interval sentence, at most max_chars
  local keep, len = {}, 0
  for s in (report:gsub("%.%s+", "\n") .. "\n"):gmatch("([^\n]*)\n") do
    local code = s ~= "" and wb.sim.parse_sentence(s, { exact = true })
    if code and code ~= "intervals" and code ~= "intervals_nop" and len + #s + 2 <= cfg.max_chars then
      keep[#keep + 1] = s:gsub("%.$", "") .. "."
      len = len + #s + 2
    end
  end
  return table.concat(keep, " ")
end
local emb_tr, emb_te = base:embed(tr.x), base:embed(te.x)
local stored = {}
for i = 1, tr.n do
  stored[i] = cfg.context == "votes" and table.concat(wb.sim.parse_report(tr.reports[i]), " ") or findings(tr.reports[i])
end
os.execute("mkdir -p " .. cfg.out)
wb.index.build(emb_tr, stored):save(cfg.out .. "/index.h5")
local index = wb.index.load(cfg.out .. "/index.h5")
local excl = {}
for i = 1, tr.n do excl[i] = i end
if cfg.pool < cfg.k then error("rag_report: pool must be >= k") end
local pool_tr = index:search(emb_tr, cfg.pool, { exclude = excl }) -- (N, pool) ids, never the record itself
local nn_tr = {}
for i = 1, tr.n do nn_tr[i] = { unpack(pool_tr[i], 1, cfg.k) } end
local nn_te = index:search(emb_te, cfg.k)
print(string.format("index: %d training ECGs x %d dims; retrieval in %.1f s", index.n, index.dim, wb.now() - t_start))

local function codes(text) -- an index text of the "votes" format -> its list of codes
  local l = {}
  for c in text:gmatch("%S+") do l[#l + 1] = c end
  return l
end
local function context(nbrs) -- the retrieval part of a prompt
  local texts = index:get(nbrs)
  if cfg.context == "reports" then return { retrieved = texts } end
  local lists = {}
  for j, t in ipairs(texts) do lists[j] = codes(t) end
  return { similar = L.vote_line(lists), similar_first = cfg.similar_first }
end
print(cfg.split .. " record 1 retrieves: " .. table.concat(index:get(nn_te[1]), " | "))

-- retrieval alone: the nearest neighbour's full report, and the k
-- neighbours' majority vote (a finding more than half of them state)
local true_te = L.label_lists(te.labels, te.label_names)
local function vote_f1(nn, truth)
  local voted = {}
  for i = 1, #nn do
    local count, out = {}, {}
    for _, id in ipairs(nn[i]) do
      for _, c in ipairs(wb.sim.parse_report(tr.reports[id])) do count[c] = (count[c] or 0) + 1 end
    end
    for _, l in ipairs(te.label_names) do if (count[l] or 0) * 2 > #nn[i] then out[#out + 1] = l end end
    voted[i] = out
  end
  return wb.metrics.report_label_f1(voted, truth, function(l) return l end, { labels = te.label_names })
end
local nn1 = {}
for i = 1, te.n do nn1[i] = tr.reports[nn_te[i][1]] end
local m_nn = L.report_metrics(nn1, te.reports, true_te, te.label_names)
local vote_te = vote_f1(nn_te, true_te)
local vote_tr = vote_f1(nn_tr, L.label_lists(tr.labels, tr.label_names))
print(string.format("k = %d neighbours' majority vote, label F1 micro/macro: %s %.3f/%.3f, train (itself excluded) %.3f/%.3f",
  cfg.k, cfg.split, vote_te.micro, vote_te.macro, vote_tr.micro, vote_tr.macro))

-- 2. two fine-tunings of the report model: with and without retrieval
local function finetune(with_rag)
  local c = {}
  for k, v in pairs(base.cfg) do c[k] = v end
  c.lm_over = { block_size = cfg.block_size }
  local m = L.EcgLM(c, base.tok)
  local sd = base:state_dict()
  local wpe = sd["lm.wpe.weight"]
  sd["lm.wpe.weight"] = nil
  m:load_state_dict(sd, false)
  wb.no_grad(function() m.lm.wpe.weight:narrow(1, 1, wpe:size(1)):copy_(wpe) end) -- positions beyond keep their init
  wb.manual_seed(cfg.seed + 1)
  local function prompt(ev, nbrs)
    local o = with_rag and context(nbrs) or {}
    o.evidence = ev
    return L.prompt(o)
  end
  math.randomseed(cfg.seed + 2)
  local function draw(i) -- k of record i's pool nearest, in rank order (the k nearest when pool = k)
    return cfg.pool == cfg.k and nn_tr[i] or wb.index.draw(pool_tr[i], cfg.k)
  end
  local fit = m:fit({
    x = tr.x,
    prompt = function(i) return prompt(ev_tr[i], draw(i)) end,
    target = function(i) return tr.reports[i] end,
  }, { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, freeze_encoder = true, warmup = 10 })
  local prompts = {}
  for i = 1, te.n do prompts[i] = prompt(ev_te[i], nn_te[i]) end
  local t0 = wb.now()
  local gen = m:generate(te.x, { prompt = prompts, greedy = true, max_new_tokens = cfg.max_new_tokens })
  local met = L.report_metrics(gen, te.reports, true_te, te.label_names)
  met.train_seconds, met.generate_seconds = fit.seconds, wb.now() - t0
  local n = 20
  local tail = 0
  for s = #fit.losses - n + 1, #fit.losses do tail = tail + fit.losses[s] / n end
  met.final_loss = tail -- the mean of the last 20 steps' losses
  return met, gen, m, prompts
end
local res = { nearest = m_nn, vote = vote_te }
for _, arm in ipairs(cfg.arms) do
  local rag = arm == "rag"
  print(string.format("fine-tuning %s, %d steps", rag and ("with retrieval (" .. cfg.context .. ", k = " .. cfg.k .. ")")
    or "without retrieval", cfg.steps))
  local met, gen, model, prompts = finetune(rag)
  res[arm] = met
  met.parsed = {}
  for i = 1, te.n do met.parsed[i] = wb.sim.parse_report(gen[i]) end
  if rag then
    model:save(cfg.out .. "/model")
    print("prompt of " .. cfg.split .. " record 1 with RAG: " .. prompts[1]:gsub("\n", " / "))
    print(cfg.split .. " record 1 with RAG: " .. gen[1])
  end
end

-- 3. the table
local function row(name, m)
  if not m then return end
  print(string.format("%-26s %6.3f %6.3f %6.3f %6.3f %7.3f %6.3f   %6.3f  %6.3f  %6.3f", name, m.bleu1, m.bleu2, m.bleu3, m.bleu4,
    m.rouge_l, m.meteor, m.label_f1_micro, m.label_f1_macro, m.final_loss or 0 / 0))
end
print(string.format("%s split, %d records, seed %d; %s context, k = %d (training: of the %d nearest), %d steps", cfg.split,
  te.n, cfg.seed, cfg.context, cfg.k, cfg.pool, cfg.steps))
print(string.format("%-26s %6s %6s %6s %6s %7s %6s   %6s  %6s  %6s", "", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "METEOR",
  "F1 mic", "F1 mac", "loss"))
row("nearest neighbour's report", m_nn)
print(string.format("%-26s %48s   %6.3f  %6.3f", "k neighbours' vote", "", vote_te.micro, vote_te.macro))
row("no RAG", res.no_rag)
row("RAG (k = " .. cfg.k .. ")", res.rag)
if res.no_rag and res.rag then
  local per = {}
  for _, l in ipairs(te.label_names) do
    per[#per + 1] = string.format("%s %.2f/%.2f", l, res.no_rag.label_f1[l] or 0, res.rag.label_f1[l] or 0)
  end
  print("per label F1 (no RAG / RAG): " .. table.concat(per, ", "))
end
-- how sure the difference is: a paired bootstrap over the records (2000
-- resamples) of RAG minus no-RAG micro label F1
if res.no_rag and res.rag then
  local function counts(parsed, i) -- tp, fp, fn of record i
    local t, tp, fp = {}, 0, 0
    for _, l in ipairs(true_te[i]) do t[l] = true end
    for _, l in ipairs(parsed[i]) do if t[l] then tp = tp + 1 else fp = fp + 1 end end
    return tp, fp, #true_te[i] - tp
  end
  local c = { no_rag = {}, rag = {} }
  for arm, list in pairs(c) do
    for i = 1, te.n do list[i] = { counts(res[arm].parsed, i) } end
  end
  for arm, list in pairs(c) do -- the counts give the metric's own micro F1
    local t = { 0, 0, 0 }
    for i = 1, te.n do for j = 1, 3 do t[j] = t[j] + list[i][j] end end
    assert(math.abs(2 * t[1] / (2 * t[1] + t[2] + t[3]) - res[arm].label_f1_micro) < 1e-9, "bootstrap counts")
  end
  math.randomseed(cfg.seed + 3)
  local diffs, wins = {}, 0
  for r = 1, 2000 do
    local a, b = { 0, 0, 0 }, { 0, 0, 0 }
    for _ = 1, te.n do
      local i = math.random(te.n)
      for j = 1, 3 do a[j], b[j] = a[j] + c.rag[i][j], b[j] + c.no_rag[i][j] end
    end
    diffs[r] = 2 * a[1] / (2 * a[1] + a[2] + a[3]) - 2 * b[1] / (2 * b[1] + b[2] + b[3])
    if diffs[r] >= 0 then wins = wins + 1 end
  end
  table.sort(diffs)
  res.bootstrap = { lo = diffs[50], hi = diffs[1951], p_ge = wins / 2000 }
  print(string.format("RAG - no RAG micro F1 %+.3f, paired bootstrap 95%% interval [%+.3f, %+.3f]; RAG >= no RAG in %.0f%% of resamples",
    res.rag.label_f1_micro - res.no_rag.label_f1_micro, res.bootstrap.lo, res.bootstrap.hi, 100 * res.bootstrap.p_ge))
end
local wall = wb.now() - t_start
local secs = {}
for _, arm in ipairs(cfg.arms) do
  secs[#secs + 1] = string.format("%s %.0f s training + %.0f s generation", arm, res[arm].train_seconds, res[arm].generate_seconds)
end
print(string.format("wall %.0f s (%d fine-tuning steps each: %s)", wall, cfg.steps, table.concat(secs, ", ")))
res.wall_seconds = wall
return res
