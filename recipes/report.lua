--[[ recipes/report.lua — interpretation: ECG to report (LLaVA / anyECG-chat
style, evidence-based prompting).

Method. The default simulated corpus (wb.corpus: 2,000 records of 10 s,
seed 2024; train 1599 / validation 182 / test 219), resampled to 250 Hz.
Every record is first measured by ecgwb's own signal processing (R peaks,
RR variability, delineator: HR, PR, QRS, QT, QTc, axis) and the numbers
become the text prompt ("Measured: HR 61 bpm, RR variability 7%, PR 179 ms,
..."), so the report can cite them. The model (lua/ecgwb/models/ecg_lm.lua)
is an ECG-FM-shaped encoder (conv feature extractor, convolutional
positional embedding, pre-LN transformer) on the record at 125 Hz (4
convs of stride 2, so a frame is 128 ms), whose frames are average-pooled to P = 8 tokens and mapped by a
2-layer MLP projector into a GPT-2-style decoder as prefix embeddings. The
byte-level BPE tokenizer is trained on the training reports and prompts.
Training has two stages, as LLaVA's frozen pretrained vision encoder: (a)
the encoder is trained from scratch as a multi-label classifier of the 20
findings (BCE on a linear head over the pooled embedding); (b) with the
encoder frozen (its features computed once), the projector and the decoder
are trained with the next-token loss on the report tokens only (prompt
masked); the projector sees the P pooled tokens plus a global token (the
pooled embedding). AdamW, warmup-cosine, batch 32.
Reports are generated greedily with the KV cache. Metrics on the test split:
corpus BLEU-1..4, ROUGE-L, METEOR and the label F1 of the findings parsed
back out of the generated text by wb.sim.parse_report (micro over all
label occurrences, and macro over the 20 labels), against the records'
true labels. Nothing is tuned on the test split.

  ecgwb recipes/report.lua [steps]
  wb.run("recipes/report.lua", { steps = 100, out = "runs/report" })   -- returns the metrics table
  options: steps, encoder_steps, out, corpus, lm_over (the GPT's size, e.g. { block_size = 256, n_embd = 128 })
]]
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 2024, fs = 250,   -- the delineator measures at 250 Hz
  fs_model = 125,           -- the encoder sees 125 Hz (a frame of its 4 stride-2 convs is 128 ms)
  vocab_size = 1000,
  model = {
    encoder = { base = "tiny", n_conv = 4, conv_channels = 32, d_model = 64, layers = 2, ffn = 128, heads = 4,
                pos_kernel = 8, pos_groups = 4, dropout = 0 },
    lm = "tiny", lm_over = opts.lm_over or { block_size = 256 },
    prefix_tokens = 8, global_token = true, projector = "mlp",
    n_labels = 20,
  },
  encoder_steps = opts.encoder_steps or 600,
  steps = opts.steps or tonumber(arg and arg[1]) or 600, batch = 32, lr = 3e-3,
  max_new_tokens = 110,
  out = opts.out or "runs/report",
  corpus = opts.corpus,     -- an ecgwb dataset file (nil: the default simulated corpus)
}
wb.manual_seed(cfg.seed)
local t_start = wb.now()

-- 1. data and evidence (measurements cached under out/)
local tr = wb.corpus.load { path = cfg.corpus, split = "train", fs = cfg.fs }
local te = wb.corpus.load { path = cfg.corpus, split = "test", fs = cfg.fs }
local ev_tr = L.evidence_cached(tr.x, cfg.fs, cfg.out .. "/evidence-train.txt")
local ev_te = L.evidence_cached(te.x, cfg.fs, cfg.out .. "/evidence-test.txt")
print(string.format("corpus %s: train %d, test %d records of 12 x %d at %d Hz; data and evidence in %.1f s",
  tr.file, tr.n, te.n, tr.samples, cfg.fs, wb.now() - t_start))
print("evidence of test record 1: " .. ev_te[1])
tr.x = wb.signal.resample(tr.x, cfg.fs, cfg.fs_model)
te.x = wb.signal.resample(te.x, cfg.fs, cfg.fs_model)

-- 2. tokenizer and model
local texts = {}
for i = 1, tr.n do texts[#texts + 1] = tr.reports[i]; texts[#texts + 1] = ev_tr[i] end
local tok = L.train_tokenizer(texts, cfg.vocab_size)
local model = L.EcgLM(cfg.model, tok)
print(string.format("%s; model %d parameters", tostring(tok), model:num_parameters()))

-- 3. training: (a) the encoder as a multi-label classifier, (b) the
-- projector and the LM on the frozen encoder's features
local fit_enc = model:fit_encoder({ x = tr.x, labels = tr.labels }, { steps = cfg.encoder_steps, batch = cfg.batch, lr = cfg.lr })
local probs = model:label_probs(te.x)
local auroc = wb.metrics.auroc(probs, te.labels)
print(string.format("encoder: test macro AUROC of the label head %.3f (%.0f s)", auroc, fit_enc.seconds))
local fit = model:fit({
  x = tr.x,
  prompt = function(i) return L.prompt { evidence = ev_tr[i] } end,
  target = function(i) return tr.reports[i] end,
}, { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, freeze_encoder = true })
fit.seconds = fit.seconds + fit_enc.seconds
model:save(cfg.out .. "/model")

-- 4. generation and metrics on the test split
local t0 = wb.now()
local prompts = {}
for i = 1, te.n do prompts[i] = L.prompt { evidence = ev_te[i] } end
local gen = model:generate(te.x, { prompt = prompts, greedy = true, max_new_tokens = cfg.max_new_tokens })
local gen_s = wb.now() - t0
local m = L.report_metrics(gen, te.reports, L.label_lists(te.labels, te.label_names), te.label_names)
for i = 1, 3 do print(string.format("test %d\n  generated: %s\n  reference: %s", i, gen[i], te.reports[i])) end
print(string.format("test (%d records): BLEU-1 %.3f BLEU-2 %.3f BLEU-3 %.3f BLEU-4 %.3f ROUGE-L %.3f METEOR %.3f",
  te.n, m.bleu1, m.bleu2, m.bleu3, m.bleu4, m.rouge_l, m.meteor))
print(string.format("label F1: micro %.3f, macro %.3f", m.label_f1_micro, m.label_f1_macro))
local per = {}
for _, l in ipairs(te.label_names) do per[#per + 1] = string.format("%s %.2f", l, m.label_f1[l] or 0) end
print("  per label: " .. table.concat(per, ", "))
m.train_seconds, m.generate_seconds, m.wall_seconds = fit.seconds, gen_s, wb.now() - t_start
m.final_loss = fit.losses[#fit.losses]
print(string.format("wall %.0f s (training %.0f s, %d encoder + %d LM steps of %d; generation %.0f s), seed %d",
  m.wall_seconds, fit.seconds, cfg.encoder_steps, cfg.steps, cfg.batch, gen_s, cfg.seed))
m.encoder_auroc = auroc
return m
