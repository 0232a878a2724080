--[[ recipes/rag_report.lua — retrieval-augmented report generation
(ECG-ReGen style), against the same model without retrieval.

Method. Start from the report model of recipes/report.lua (trained first if
runs/report/model is missing): a frozen ECG encoder trained as a
multi-label classifier, a projector, and a GPT decoder with evidence-based
prompts. An exact embedding index (wb.index: cosine top-k by one matmul)
holds the pooled encoder embeddings of the 1599 training ECGs with their
reports; it is saved to HDF5 and loaded back. For each record the k = 2
nearest training ECGs are retrieved (a training record never retrieves
itself) and their reports go into the prompt before the measurements:

    Similar ECG 1: <findings of the 1st neighbour's report>
    Similar ECG 2: ...
    Measured: HR 61 bpm, ... Report: <the report>

Only the findings sentences of a retrieved report are kept, whole
sentences up to 160 characters (its interval sentence describes another
record's numbers; the limit keeps the prompt within ~2x the plain one). Two models are then fine-tuned from the same report model for
the same number of steps with the same settings, one with the retrieval
prompt (RAG) and one with the plain prompt (no RAG), and both are scored on
the test split (BLEU-1..4, ROUGE-L, METEOR, label F1 of the parsed
findings). Also printed: the label F1 of simply copying the nearest
neighbour's report (retrieval alone).

  ecgwb recipes/rag_report.lua [steps]
]]
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 2024, fs = 250, fs_model = 125,
  report_dir = opts.report_dir or "runs/report",
  k = 2, max_chars = 160,   -- neighbours, and the characters kept of each one's findings
  block_size = 512,
  steps = opts.steps or tonumber(arg and arg[1]) or 200, batch = 32, lr = 1e-3,
  max_new_tokens = 110,
  out = opts.out or "runs/rag_report",
}
wb.manual_seed(cfg.seed)
local t_start = wb.now()

-- 0. the report model (trained here if missing), the data and evidence (as
-- recipes/report.lua; its cached measurements are reused)
local base, tr, te, ev_tr, ev_te = L.from_report_recipe(cfg.report_dir, cfg.fs, cfg.fs_model)

-- 2. the index over the training ECGs, through HDF5
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
local short = {}
for i = 1, tr.n do short[i] = findings(tr.reports[i]) end
os.execute("mkdir -p " .. cfg.out)
wb.index.build(emb_tr, short):save(cfg.out .. "/index.h5")
local index = wb.index.load(cfg.out .. "/index.h5")
local excl = {}
for i = 1, tr.n do excl[i] = i end
local nn_tr = index:search(emb_tr, cfg.k, { exclude = excl }) -- (N, k) ids, never the record itself
local nn_te = index:search(emb_te, cfg.k)
print(string.format("index: %d training ECGs x %d dims; retrieval in %.1f s", index.n, index.dim, wb.now() - t_start))
print("test record 1 retrieves: " .. table.concat(index:get(nn_te[1]), " | "))

-- retrieval alone: the nearest neighbour's full report
local nn1 = {}
for i = 1, te.n do nn1[i] = tr.reports[nn_te[i][1]] end
local true_te = L.label_lists(te.labels, te.label_names)
local m_nn = L.report_metrics(nn1, te.reports, true_te, te.label_names)

-- 3. two fine-tunings of the report model: with and without retrieval
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
  local function prompt(ev, nbrs) return L.prompt { evidence = ev, retrieved = with_rag and index:get(nbrs) or nil } end
  local fit = m:fit({
    x = tr.x,
    prompt = function(i) return prompt(ev_tr[i], nn_tr[i]) end,
    target = function(i) return tr.reports[i] end,
  }, { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, freeze_encoder = true, warmup = 10 })
  local prompts = {}
  for i = 1, te.n do prompts[i] = prompt(ev_te[i], nn_te[i]) end
  local gen = m:generate(te.x, { prompt = prompts, greedy = true, max_new_tokens = cfg.max_new_tokens })
  local met = L.report_metrics(gen, te.reports, true_te, te.label_names)
  met.train_seconds = fit.seconds
  return met, gen, m
end
print(string.format("fine-tuning without retrieval, %d steps", cfg.steps))
local m_plain = finetune(false)
print(string.format("fine-tuning with retrieval (k = %d), %d steps", cfg.k, cfg.steps))
local m_rag, gen_rag, rag_model = finetune(true)
rag_model:save(cfg.out .. "/model")
print("test 1 with RAG: " .. gen_rag[1])

-- 4. the table
local function row(name, m)
  print(string.format("%-26s %6.3f %6.3f %6.3f %6.3f %7.3f %6.3f   %6.3f  %6.3f", name, m.bleu1, m.bleu2, m.bleu3, m.bleu4,
    m.rouge_l, m.meteor, m.label_f1_micro, m.label_f1_macro))
end
print(string.format("test split, %d records, seed %d", te.n, cfg.seed))
print(string.format("%-26s %6s %6s %6s %6s %7s %6s   %6s  %6s", "", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "METEOR",
  "F1 mic", "F1 mac"))
row("nearest neighbour's report", m_nn)
row("no RAG", m_plain)
row("RAG (k = " .. cfg.k .. ")", m_rag)
local per = {}
for _, l in ipairs(te.label_names) do per[#per + 1] = string.format("%s %.2f/%.2f", l, m_plain.label_f1[l] or 0, m_rag.label_f1[l] or 0) end
print("per label F1 (no RAG / RAG): " .. table.concat(per, ", "))
local wall = wb.now() - t_start
print(string.format("wall %.0f s (%d fine-tuning steps each: %.0f s without, %.0f s with retrieval)", wall, cfg.steps,
  m_plain.train_seconds, m_rag.train_seconds))
return { nearest = m_nn, no_rag = m_plain, rag = m_rag, wall_seconds = wall }
