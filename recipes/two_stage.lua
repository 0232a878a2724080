--[[ recipes/two_stage.lua — UniECG: one model that interprets ECGs and
generates them (the main job; `make run`).

Data. The default simulated corpus (wb.corpus: 2,000 records of 10 s at
500 Hz, seed 2024; train 1,599 / validation 182 / test 219), with its
reports, labels and true heart rates.

Stage 1, interpretation (ECG -> report). recipes/report.lua's method and
code: an ECG-FM-shaped encoder, trained first as a classifier of the 20
findings, then frozen; its frames pooled to prefix tokens and projected into
a GPT decoder (2 layers x 128 here, --lm_layers, --lm_width; report.lua's
own default is 2 x 64), which learns to write the report after a prompt
that carries the HR and intervals measured by ecgwb's delineator.

Stage 2, generation (text -> 12-lead ECG). The stage-1 LM is frozen.
 (a) The condition space, a trained text embedding. A report's features are
     the frozen LM's mean input token embedding and mean hidden state over
     its tokens, side by side (centred); an MLP
     text head maps them to a 64-d embedding, trained CLIP-style (symmetric
     InfoNCE) against the frozen stage-1 ECG encoder's pooled embedding of
     the report's own record (through a linear head used only here). In 3
     of 10 rows (text_request_mix) the text is one of the record's
     generation requests (b) instead of its report, so requests and reports
     of the same findings share the space. Both sides are computed once, so
     this takes seconds.
 (b) Alignment. Every training record gets generation requests written
     from its labels, heart rate, age and sex in varied wording
     ("Create an ECG showing atrial fibrillation at 110 bpm in a 70-year-old
     man."). The frozen LM reads a request followed by K <gen> tokens whose
     input embeddings are trained (as GILL's [IMG] tokens; the LM's own
     weights stay frozen); an MLP maps their hidden states into the
     condition space, onto the text embedding of the record's report, under
     the alignment loss cfg.align_loss (MSE; cosine and InfoNCE are in
     wb.losses; any function(pred, target) works).
 (c) The generator (DiffuSETS + SE-Diff). A VAE maps 12 x 1024 (10 s at
     102.4 Hz) to a 4 x 128 latent; being convolutional, it trains on random
     256-sample crops (cosine learning-rate decay). A latent U-Net learns
     DDPM's v (v-prediction, Min-SNR-5 loss weighting) on random crops of 64
     latent frames, with cross-attention to condition tokens (and their mean
     added to the time embedding, a global path): the text embedding (the
     report's, or with probability student_mix the aligned request's), age,
     sex and heart rate, and the reports of the k nearest training records
     (experience retrieval). The simulator prior: a beat decoder predicts
     ECGSYN wave parameters from the condition, the differentiable beat
     synthesiser turns them into template beats, fitted to each record's
     mean beat, and a consistency loss ties the decoded x0 prediction's beats
     to the templates. Condition dropout 0.1 for classifier-free guidance,
     EMA weights.
 (d) Sampling from experience (SDEdit). The experience prior ECG of a
     request: the record of the training request nearest to it in the
     condition space (experience retrieval by the request's own words; the
     aligned <gen> states, regressed onto reports, find a record of the
     requested condition less often; the condition's k retrieved reports
     are those of the k nearest such records), re-timed: its mean beat laid
     on a rhythm at the requested rate with that record's RR variability,
     plus its residual (the record minus its own beat train: AF's f waves,
     which run independently of the QRS, ectopy, noise). DDIM (50-step
     grid, guidance 4; --guidance=2,4,6 chooses on the validation split)
     starts at t0 = 0.15 T from its latent noised to t0 (--prior_start;
     false: from pure noise), so a sample keeps the prior's rhythm and
     coarse morphology and the denoiser redraws the rest.
     --prior_input=true also gives the U-Net that prior's latent as input.

Evaluation (test split). Interpretation: BLEU, ROUGE-L, METEOR and label F1
of the reports, after stage 1 and again after stage 2. Generation, from
requests written from test records: HR MAE (requested vs ecgwb's R-peak
detector on the generated ECG), condition accuracy (2 classifiers trained
on real training ECGs, their probabilities averaged, wb.condclf), FID and
rFID on the stage-1 encoder's
embeddings, k-NN precision/recall, Einthoven error, and the CLIP score with
recipes/clip.lua's model when runs/clip holds one. The run writes
runs/two_stage/report.html.

  ecgwb recipes/two_stage.lua                      -- the default (make run)
  ecgwb recipes/two_stage.lua --prior=false        -- ablation: no simulator prior
  ecgwb recipes/two_stage.lua --gen_steps=200 --stage1_steps=100   -- a quick look
]]
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local U = require "ecgwb.models.uniecg"
local sd = require "ecgwb.models.sediff"
local diffusion = require "ecgwb.models.diffusion"
local vae = require "ecgwb.models.vae"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 2024,
  out = "runs/two_stage",
  corpus = false,                                       -- an ecgwb dataset file with truth/ (false: the default corpus)
  stage1_encoder_steps = 600, stage1_steps = 900,       -- recipes/report.lua's training
  lm_layers = 2, lm_width = 128,                        -- the stage-1 LM's size (gpt.lua's "tiny" is 2 layers x 64)
  reuse_stage1 = false,                                 -- true: load out/stage1/model instead of training it
  align_loss = "align_mse",                             -- a wb.losses name, or a function(pred, target)
  text_steps = 600, text_batch = 128, text_lr = 2e-3,       -- the condition space's text head
  text_request_mix = 0.3,                               -- the fraction of its rows that read a request instead of the report
  requests_per_record = 4, align_steps = 1500, align_lr = 2e-3, align_batch = 64,
  vae_steps = 3000, vae_batch = 32, vae_crop = 256, vae_lr = 3e-3, beta = 1e-4,
  gen_steps = 1200, gen_batch = 32, gen_crop = 64, gen_lr = 1e-3, ema = 0.999, student_mix = 0.3,
  prediction = "v", min_snr = 5,                        -- the denoiser's target ("v" | "eps") and Min-SNR-gamma (false: plain MSE)
  prior = true, retrieval = true, prior_input = false,
  prior_start = 0.15,                                   -- sampling starts from the experience prior ECG at 0.15 T (SDEdit); false: from noise
  n_eval = false,                                       -- generation is evaluated on requests from the first n_eval records (false: all)
  clf_members = 2, clf_steps = 1000,                    -- the condition classifier (wb.condclf): an ensemble of 2, 1000 steps each
  sample_steps = 50, guidance = 4,                      -- a scale, or scales to choose from on validation (--guidance=2,4,6)
}
-- command-line --key=value (numbers, true/false, strings) or an opts table
for _, a in ipairs(type(arg) == "table" and arg or {}) do
  local k, v = tostring(a):match("^%-%-([%w_]+)=(.*)$")
  if not k then error("two_stage: arguments are --key=value, got '" .. tostring(a) .. "'", 0) end
  if v == "true" then v = true elseif v == "false" then v = false
  elseif v:find("^[%d.]+,[%d.,]+$") then -- a list of numbers: --guidance=2,4
    local l = {}
    for x in v:gmatch("[^,]+") do l[#l + 1] = tonumber(x) end
    v = l
  else v = tonumber(v) or v end
  opts[k] = v
end
for k, v in pairs(opts) do
  if cfg[k] == nil then error("two_stage: unknown option '" .. tostring(k) .. "'", 0) end
  cfg[k] = v
end
local align_loss = type(cfg.align_loss) == "function" and cfg.align_loss or wb.losses[cfg.align_loss]
if type(align_loss) ~= "function" then error("two_stage: unknown alignment loss '" .. tostring(cfg.align_loss) .. "'", 0) end
if cfg.gen_crop and (type(cfg.gen_crop) ~= "number" or cfg.gen_crop < 8 or cfg.gen_crop % 4 ~= 0) then
  error("two_stage: gen_crop must be false or a multiple of 4 latent frames, at least 8; got " .. tostring(cfg.gen_crop), 0)
end
io.stdout:setvbuf("line")
wb.manual_seed(cfg.seed)
os.execute("mkdir -p " .. cfg.out)
local t_start = wb.now()
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "recipes")
local function elapsed() return string.format("[%5.0f s]", wb.now() - t_start) end

------------------------------------------------------------------ stage 1: interpretation
local c = U.defaults
-- the VAE's crops start at multiples of its downsampling factor: checked here, before any training
local vf = vae.factor(vae.config(c.vae))
local crop = math.min(cfg.vae_crop, c.samples)
if crop % vf ~= 0 then error("two_stage: vae_crop must be a multiple of " .. vf .. ", got " .. cfg.vae_crop, 0) end
local te = wb.corpus.load { path = cfg.corpus, split = "test", fs = c.fs_lm }
local labels_te = L.label_lists(te.labels, te.label_names)
local ev_te, x_lm_te, prompts_te
-- report metrics of an EcgLM on the test split (greedy reports after the evidence prompt)
local function interpretation(model)
  ev_te = ev_te or L.evidence_cached(te.x, c.fs_lm, cfg.out .. "/stage1/evidence-test.txt")
  x_lm_te = x_lm_te or wb.signal.resample(te.x, c.fs_lm, c.fs_model)
  if not prompts_te then
    prompts_te = {}
    for i = 1, te.n do prompts_te[i] = L.prompt { evidence = ev_te[i] } end
  end
  local reports = model:generate(x_lm_te, { prompt = prompts_te, greedy = true, max_new_tokens = 110 })
  return L.report_metrics(reports, te.reports, labels_te, te.label_names), reports
end
local stage1
if cfg.reuse_stage1 and io.open(cfg.out .. "/stage1/model/config.json", "r") then
  print(elapsed() .. " stage 1: reusing " .. cfg.out .. "/stage1/model")
  stage1 = interpretation(L.load(cfg.out .. "/stage1/model"))
else
  print(elapsed() .. " stage 1: ECG -> report (recipes/report.lua)")
  stage1 = assert(loadfile(here .. "/report.lua"))({
    out = cfg.out .. "/stage1", steps = cfg.stage1_steps, encoder_steps = cfg.stage1_encoder_steps, corpus = cfg.corpus,
    lm_over = { block_size = 256, n_layer = cfg.lm_layers, n_embd = cfg.lm_width },
  })
end
local lm = L.load(cfg.out .. "/stage1/model")

------------------------------------------------------------------ stage 2: generation
print(elapsed() .. " stage 2: text -> ECG, the stage-1 LM frozen")
local uni = U.UniECG({ sediff = { prior = cfg.prior, retrieval = cfg.retrieval }, prior_input = cfg.prior_input,
                       prior_start = cfg.prior_start, prediction = cfg.prediction, min_snr = cfg.min_snr }, lm)
uni:freeze_lm()
local tr = wb.corpus.load { path = cfg.corpus, split = "train", fs = c.fs_lm }
local xg_tr = wb.signal.resample(tr.x, c.fs_lm, c.fs_gen)     -- (N, 12, 1024)
local xg_te = wb.signal.resample(te.x, c.fs_lm, c.fs_gen)
local labels_tr = L.label_lists(tr.labels, tr.label_names)
-- a stable, varied choice of wording per (record, request)
local function requests_for(labels, truth_hr, age, sex, i, j)
  local k = (i * 7 + j * 13) % 101
  local o = { pick = k, age = age:get(i), sex = sex:get(i) }
  if k % 5 ~= 0 then o.hr = truth_hr:get(i) end               -- the rate is stated in 4 of 5 requests
  if k % 3 == 0 then o.age, o.sex = nil, nil end
  return wb.requests.text(labels[i], o)
end

-- generation requests written from every training record (R per record)
local R = cfg.requests_per_record
local req_tr, req_row = {}, {}
for i = 1, tr.n do
  for j = 1, R do
    req_tr[#req_tr + 1] = requests_for(labels_tr, tr.truth.hr, tr.age, tr.sex, i, j)
    req_row[#req_row + 1] = i - 1
  end
end
req_row = wb.tensor(req_row, "i64")
-- rows idx of x (N, D), each replaced with probability frac by the row of one
-- of that record's R requests in xr (N·R, D)
local function mix_requests(x, xr, idx, frac)
  local B = idx:numel()
  local use = wb.rand(B):lt(frac):to("f32"):unsqueeze(2)
  return x:index_select(1, idx) * (use * -1 + 1) + xr:index_select(1, idx * R + wb.randint(0, R, { B })) * use
end

-- (a) the condition space: a text head trained against the frozen ECG encoder,
-- on the records' reports and (a fraction text_request_mix of the rows) their requests
uni:set_center(tr.reports)
local feat_tr = uni:text_features(tr.reports)                  -- (N, 2 Dl), the frozen LM's
local feat_req = uni:text_features(req_tr)                     -- (N·R, 2 Dl)
local pooled_tr = lm:embed(wb.signal.resample(tr.x, c.fs_lm, c.fs_model))  -- (N, De), the frozen encoder's
local tparams = uni.text_head:parameters()
for _, p in ipairs(uni.ecg_head:parameters()) do tparams[#tparams + 1] = p end
local topt = wb.optim.AdamW(tparams, { lr = cfg.text_lr, weight_decay = 0.01 })
local text_curve = {}
for step = 1, cfg.text_steps do
  local idx = wb.randint(0, tr.n, { math.min(cfg.text_batch, tr.n) })
  local loss = uni:contrastive_loss(mix_requests(feat_tr, feat_req, idx, cfg.text_request_mix), pooled_tr:index_select(1, idx))
  topt:zero_grad(); loss:backward(); topt:step()
  text_curve[step] = loss:item()
  wb.report { step = step, total = cfg.text_steps, loss = text_curve[step] }
end
for _, p in ipairs(uni.text_head:parameters()) do p:requires_grad_(false) end
local teacher = uni:text_embedding(feat_tr)                    -- (N, Dt)
-- how well the space names the findings: a test report's nearest training report states the same findings
local teacher_te = uni:text_embedding(te.reports)
local function same_findings(q, bank, lq, lb)
  local same = 0
  for i, j in ipairs(q:matmul(bank:t()):argmax(2):totable()) do
    if table.concat(lq[i], " ") == table.concat(lb[j + 1], " ") then same = same + 1 end
  end
  return same / q:size(1)
end
local text_top1 = same_findings(teacher_te, teacher, labels_te, labels_tr)
print(string.format("%s condition space: InfoNCE %.3f -> %.3f; a test report's nearest training report states the same findings: %.3f",
  elapsed(), text_curve[1], text_curve[#text_curve], text_top1))

-- experience retrieval by a request's own words: the training requests' embeddings
uni:set_request_bank(uni:text_embedding(feat_req), req_row)

-- (b) alignment of the <gen> states to the condition space
local req_ids, req_mask = uni:request_ids(req_tr)
local target = teacher:index_select(1, req_row)
print(string.format("%s alignment: %d requests, e.g. %q", elapsed(), #req_tr, req_tr[1]))
local aparams = uni.align:parameters()
aparams[#aparams + 1] = uni.gen_embed                           -- the <gen> tokens' input embeddings train too
local opt = wb.optim.AdamW(aparams, { lr = cfg.align_lr, weight_decay = 0.01 })
local align_curve = {}
for step = 1, cfg.align_steps do
  local idx = wb.randint(0, #req_tr, { cfg.align_batch })
  local states = uni:gen_states_of(req_ids:index_select(1, idx), req_mask:index_select(1, idx))
  local loss = align_loss(uni:aligned(states), target:index_select(1, idx))
  opt:zero_grad(); loss:backward(); opt:step()
  align_curve[step] = loss:item()
  wb.report { step = step, total = cfg.align_steps, loss = align_curve[step] }
end
-- how well a test request lands on its record's report: the cosine, and how
-- often the nearest test report states the same findings (the same label set)
local req_te = {}
for i = 1, te.n do req_te[i] = requests_for(labels_te, te.truth.hr, te.age, te.sex, i, 1) end
local al_te = wb.no_grad(function() return wb.normalize(uni:aligned(uni:gen_states(req_te)), -1) end)
local align_cos = (al_te * teacher_te):sum(2):mean():item()
local top1 = same_findings(al_te, teacher_te, labels_te, labels_te)
print(string.format("%s alignment (%s): loss %.4f -> %.4f; test requests: cosine to their report %.3f, " ..
  "nearest test report with the same findings %.3f", elapsed(), tostring(cfg.align_loss), align_curve[1],
  align_curve[#align_curve], align_cos, top1))
-- the experience a test request retrieves: how often that training record has the request's condition
local cls_tr, cls_te = wb.condclf.conditions(tr.labels, tr.label_names), wb.condclf.conditions(te.labels, te.label_names)
local function same_condition(rows)
  local ok, n = 0, 0
  for i, r in ipairs(rows:totable()) do
    if cls_te[i] >= 0 then n = n + 1; if cls_tr[r + 1] == cls_te[i] then ok = ok + 1 end end
  end
  return ok / n
end
local exp_words = same_condition(uni:experience_rows(req_te))
local exp_aligned = same_condition(sd.retriever(teacher):topk(al_te, 1):reshape(te.n))
print(string.format("%s experience retrieval: a test request's training record has its condition in %.3f " ..
  "(by the request's words; by its aligned <gen> states it would be %.3f)", elapsed(), exp_words, exp_aligned))

-- (c) the generator: VAE, then latent diffusion with the SE-Diff condition and prior
-- The VAE is convolutional (no attention), so it trains on random crops of
-- vae_crop samples (at multiples of its downsampling factor): 4 crops cost
-- what one whole record costs, and it sees 4x more beats per second.
local vopt = wb.optim.AdamW(uni.vae:parameters(), { lr = cfg.vae_lr, weight_decay = 0 })
local vsched = wb.optim.warmup_cosine { warmup = math.min(50, math.floor(cfg.vae_steps / 10)), total = cfg.vae_steps, base_lr = cfg.vae_lr, min_lr = cfg.vae_lr * 0.05 }
local vae_curve = {}
for step = 1, cfg.vae_steps do
  vopt:set_lr(vsched(step))
  local idx = wb.randint(0, tr.n, { cfg.vae_batch })
  local off = vf * math.floor(wb.rand(1):item() * ((c.samples - crop) / vf + 1))
  local loss = uni.vae:loss(xg_tr:index_select(1, idx):narrow(3, off + 1, crop):contiguous(), { beta = cfg.beta })
  vopt:zero_grad(); loss:backward(); vopt:step()
  vae_curve[step] = loss:item()
  wb.report { step = step, total = cfg.vae_steps, loss = vae_curve[step] }
end
uni.vae:eval()
local scale = uni.vae:fit_scale(xg_tr)
local vae_rel = wb.no_grad(function()
  local x = xg_te:narrow(1, 1, math.min(64, te.n))
  local y = uni.vae:from_latent(uni.vae:latent(x))
  return ((y - x):square():mean() / x:square():mean()):item()
end)
print(string.format("%s VAE: %d steps, loss %.4f -> %.4f; test reconstruction error / signal power %.3f; latent scale %.3f",
  elapsed(), cfg.vae_steps, vae_curve[1], vae_curve[#vae_curve], vae_rel, scale))
for _, p in ipairs(uni.vae:parameters()) do p:requires_grad_(false) end
local z_tr = wb.no_grad(function()
  local zs = {}
  for s = 1, tr.n, 64 do zs[#zs + 1] = uni.vae:latent(xg_tr:narrow(1, s, math.min(64, tr.n - s + 1))) end
  return wb.cat(zs, 1)
end)
local tmpl, valid, zp_tr
local peaks_tr = {}
local experience = cfg.prior_input or cfg.prior_start
if cfg.retrieval or experience then uni:set_bank(teacher) end
if cfg.prior or experience then
  for i = 1, tr.n do peaks_tr[i] = wb.signal.rpeaks(xg_tr:select(1, i):contiguous(), c.fs_gen):totable() end
  local rr
  tmpl, rr, valid = sd.record_templates(xg_tr, c.fs_gen, uni.sediff.cfg.beat_len, { peaks = peaks_tr })
  if experience then
    -- the experience prior: each training record's beat, RR, RR variability
    -- and residual (the record minus its own beat train)
    local cv = {}
    for i, p in ipairs(peaks_tr) do
      local d, m = {}, 0
      for k = 2, #p do d[#d + 1] = p[k] - p[k - 1]; m = m + d[#d] / (#p - 1) end
      local v = 0
      for _, y in ipairs(d) do v = v + (y - m) ^ 2 / #d end
      cv[i] = #d > 1 and math.sqrt(v) / m or 0
    end
    local rrv = rr:totable()
    for i = 1, tr.n do if rrv[i] ~= rrv[i] then rrv[i] = 60 / tr.truth.hr:get(i) end end
    local resid = xg_tr - sd.beat_train(tmpl, rrv, peaks_tr, c.fs_gen, c.samples)
    uni:set_experience(tmpl, wb.tensor(rrv), wb.tensor(cv), resid)
    print(string.format("%s experience prior: %d training records' beats and residuals (residual power / signal power %.3f)",
      elapsed(), tr.n, (resid:square():mean() / xg_tr:square():mean()):item()))
    if cfg.prior_input then
      -- in training, a record's prior is its nearest OTHER record's, laid on its own R peaks
      local zs = {}
      for s = 1, tr.n, 64 do
        local e = math.min(tr.n, s + 63)
        local ex, pk = {}, {}
        for i = s, e do ex[#ex + 1], pk[#pk + 1] = i - 1, peaks_tr[i] end
        zs[#zs + 1] = uni:prior_latent(teacher:narrow(1, s, e - s + 1), tr.truth.hr:narrow(1, s, e - s + 1), { exclude = ex, peaks = pk })
      end
      zp_tr = wb.cat(zs, 1)
    end
  end
end
uni.gen_embed:requires_grad_(false)
local student = wb.no_grad(function() return uni:aligned(uni:gen_states(req_tr)) end)  -- (N·R, Dt): the aligned requests
local gparams = uni.unet:parameters()
for _, p in ipairs(uni.sediff:parameters()) do gparams[#gparams + 1] = p end
local gopt = wb.optim.AdamW(gparams, { lr = cfg.gen_lr, weight_decay = 0 })
local ema = wb.optim.EMA(uni.unet, cfg.ema)
local gen_curve, parts_last = {}, {}
-- the denoiser is convolutional with attention, so like the VAE it trains on
-- random crops of gen_crop latent frames (false: whole records) and samples
-- whole records
local Lz = z_tr:size(3)
local gcrop = math.min(cfg.gen_crop or Lz, Lz)
local function crop_peaks(p, off) -- R peaks (samples) into a crop starting at latent frame off
  local q = {}
  for k, v in ipairs(p) do q[k] = v - off * vf end
  return q                         -- the consistency loss keeps only beats whose window lies inside
end
uni.unet:train()
for step = 1, cfg.gen_steps do
  local idx = wb.randint(0, tr.n, { cfg.gen_batch })
  local off = math.floor(wb.rand(1):item() * (Lz - gcrop + 1))
  -- some rows take the aligned state of one of the record's requests instead
  local emb = cfg.student_mix > 0 and mix_requests(teacher, student, idx, cfg.student_mix) or teacher:index_select(1, idx)
  local b = { z0 = z_tr:index_select(1, idx):narrow(3, off + 1, gcrop):contiguous(), emb = emb, age = tr.age:index_select(1, idx),
              sex = tr.sex:index_select(1, idx), hr = tr.truth.hr:index_select(1, idx), exclude = idx:totable() }
  if zp_tr then b.zp = zp_tr:index_select(1, idx):narrow(3, off + 1, gcrop):contiguous() end
  if tmpl and cfg.prior then
    b.templates = tmpl:index_select(1, idx)
    b.valid, b.peaks = {}, {}
    for i, r in ipairs(b.exclude) do b.valid[i], b.peaks[i] = valid[r + 1], crop_peaks(peaks_tr[r + 1], off) end
  end
  local loss, parts = uni:generator_loss(b)
  gopt:zero_grad(); loss:backward()
  wb.optim.clip_grad_norm(gparams, 1)
  gopt:step()
  -- the usual EMA warm-up: early weights fade quickly. (1 + n)/(10 + n) stays below 0.999 until step 8,990,
  -- so at 1,200 steps the warm-up sets the decay (0.9925 at the end) and cfg.ema does not act
  ema.decay = math.min(cfg.ema, (1 + step) / (10 + step))
  ema:update()
  gen_curve[step], parts_last = loss:item(), parts
  if step == 1 or step % 100 == 0 or step == cfg.gen_steps then
    local p = {}
    for k, v in pairs(parts) do p[#p + 1] = string.format("%s %.4f", k, v) end
    table.sort(p)
    print(string.format("%s generator step %4d/%d  loss %.4f (%s)", elapsed(), step, cfg.gen_steps, gen_curve[step],
      table.concat(p, ", ")))
  end
  wb.report { step = step, total = cfg.gen_steps, loss = gen_curve[step] }
end
rawset(uni, "ema_unet", diffusion.ema_model(ema))
uni:eval()

------------------------------------------------------------------ evaluation
print(elapsed() .. " evaluation on the test split")
-- interpretation after stage 2 (the LM was frozen: it must not have forgotten)
local after, reports_after = interpretation(uni.lm)

-- requests written from the first n_eval records of a split (all: false)
local function requests_of(set)
  local labels, req, hrs = L.label_lists(set.labels, set.label_names), {}, {}
  for i = 1, cfg.n_eval and math.min(cfg.n_eval, set.n) or set.n do
    req[i] = wb.requests.text(labels[i], { hr = set.truth.hr:get(i), age = set.age:get(i), sex = set.sex:get(i), pick = i })
    hrs[i] = set.truth.hr:get(i)
  end
  return req, hrs
end
-- the condition classifier: trained on real training ECGs; an ensemble of
-- clf_members (seeds seed, seed + 1, ...), because one classifier's seed
-- moves the figure by a few points on the same ECGs (wb.condclf)
local clf = wb.condclf.train { x = xg_tr, labels = tr.labels, label_names = tr.label_names, fs = c.fs_gen, seed = cfg.seed,
                               steps = cfg.clf_steps, members = cfg.clf_members }
local function classes_of(set, k) return wb.condclf.conditions(set.labels:narrow(1, 1, k), set.label_names) end
-- the guidance scale: the best condition accuracy on validation requests (never the test split)
local guidance = cfg.guidance
if type(guidance) == "table" then
  local va = wb.corpus.load { path = cfg.corpus, split = "validation", fs = c.fs_gen }
  local req_va = requests_of(va)
  local best
  for _, w in ipairs(cfg.guidance) do
    local acc = clf:accuracy(uni:generate(req_va, { seed = cfg.seed, steps = cfg.sample_steps, guidance = w }), classes_of(va, #req_va))
    print(string.format("%s guidance %g: validation condition accuracy %.3f", elapsed(), w, acc))
    if not best or acc > best then best, guidance = acc, w end
  end
end
uni.cfg.guidance = guidance -- respond() and the saved model sample with it

-- generation from requests written from the first n_eval test records
local req_eval, hr_eval = requests_of(te)
local n = #req_eval
local rows = wb.arange(0, n, 1, "i64")
local t_gen = wb.now()
local gen = uni:generate(req_eval, { seed = cfg.seed, steps = cfg.sample_steps, guidance = guidance })
t_gen = wb.now() - t_gen
local real = xg_te:index_select(1, rows)
local hr = wb.metrics.hr_mae(gen, hr_eval, c.fs_gen)
local hr_real = wb.metrics.hr_mae(real, hr_eval, c.fs_gen)
local cls = classes_of(te, n)
local cond_acc, cond_acc_real = clf:accuracy(gen, cls), clf:accuracy(real, cls)
local cond_acc_members = {}
for i, m in ipairs(clf:members()) do cond_acc_members[i] = string.format("%.3f", m:accuracy(gen, cls)) end
-- the same records generated from their reports' own text embeddings: what a perfect alignment would give
local gen_rep = uni:generate(req_eval, { seed = cfg.seed, steps = cfg.sample_steps, guidance = guidance,
                                         emb = teacher_te:index_select(1, rows) })
local cond_acc_report = clf:accuracy(gen_rep, cls)
-- the first 96 requests sampled from pure noise, against their samples from
-- experience: what the experience start adds (all 50 DDIM steps run from
-- noise, the evaluation's slowest part, hence a subset)
local n_noise = math.min(n, 96)
local cond_acc_noise, cond_acc_start
if cfg.prior_start then
  local cls_noise = classes_of(te, n_noise)
  cond_acc_noise = clf:accuracy(uni:generate({ unpack(req_eval, 1, n_noise) }, { seed = cfg.seed, steps = cfg.sample_steps,
    guidance = guidance, prior_start = false }), cls_noise)
  cond_acc_start = clf:accuracy(gen:narrow(1, 1, n_noise), cls_noise)
end
local function embed(x) return uni.lm:embed(wb.signal.resample(x:contiguous(), c.fs_gen, c.fs_model)) end
local e_real_all, e_gen = embed(xg_te), embed(gen)
local rfid, fid, fid_ref = wb.metrics.rfid(e_real_all, e_gen, { seed = cfg.seed })
local knn_p, knn_r = wb.metrics.knn_precision_recall(embed(real), e_gen, { k = 3 })
local ein_gen, ein_gen_aug = wb.metrics.einthoven(gen)
local ein_real = wb.metrics.einthoven(real)
local clip_line = "CLIP score: skipped (no runs/clip model; run recipes/clip.lua first)"
local clip_score, rclip
if io.open("runs/clip/clip.h5", "r") then
  local clipm = require "ecgwb.models.clip"
  local cm, ctok = clipm.load("runs/clip")
  local function ecg_emb(x) return clipm.embed_ecgs(cm, wb.signal.resample(x:contiguous(), c.fs_gen, cm.cfg.input_fs or 100)) end
  rclip, clip_score = wb.metrics.rclip(ecg_emb(gen), ecg_emb(real), clipm.embed_texts(cm, ctok, req_eval))
  clip_line = string.format("CLIP score (recipes/clip.lua's model, requests vs ECGs) %.2f, rCLIP %.3f", clip_score, rclip)
end

local M = {
  stage1 = stage1, after = after,
  text_loss_first = text_curve[1], text_loss_last = text_curve[#text_curve], text_top1 = text_top1,
  align_loss_first = align_curve[1], align_loss_last = align_curve[#align_curve], align_cosine = align_cos, align_top1 = top1,
  experience_condition = exp_words, experience_condition_aligned = exp_aligned,
  vae_rel_error = vae_rel, hr_mae = hr.mae, hr_failed = hr.failed, hr_mae_real = hr_real.mae,
  condition_accuracy = cond_acc, condition_accuracy_real = cond_acc_real, condition_accuracy_from_reports = cond_acc_report,
  condition_accuracy_members = cond_acc_members,
  condition_accuracy_from_noise = cond_acc_noise, condition_accuracy_from_experience_subset = cond_acc_start, fid = fid, fid_ref = fid_ref, rfid = rfid,
  knn_precision = knn_p, knn_recall = knn_r, einthoven = ein_gen, einthoven_real = ein_real,
  clip_score = clip_score, rclip = rclip, n_eval = n, guidance = guidance, prior = cfg.prior, retrieval = cfg.retrieval,
}
print(string.format("interpretation, test (%d): label F1 micro %.3f after stage 1, %.3f after stage 2; BLEU-4 %.3f / %.3f",
  te.n, stage1.label_f1_micro, after.label_f1_micro, stage1.bleu4, after.bleu4))
print(string.format("generation, %d test requests (%.0f s for DDIM %d steps, guidance %g): HR MAE %.1f bpm " ..
  "(%d without a rate; real ECGs %.1f), condition accuracy %.3f (%d classifiers' mean probabilities; each alone %s; " ..
  "real %.3f; generated from the reports' embeddings %.3f; " ..
  "from noise, without the experience start, %s), FID %.2f / real halves %.2f = rFID %.2f, " ..
  "k-NN precision %.2f recall %.2f, Einthoven |I+III-II| %.4f mV (real %.4f)", n, t_gen, cfg.sample_steps, guidance,
  hr.mae, hr.failed, hr_real.mae, cond_acc, #cond_acc_members, table.concat(cond_acc_members, ", "), cond_acc_real, cond_acc_report,
  cond_acc_noise and string.format("%.3f, against %.3f with it, on the first %d requests", cond_acc_noise, cond_acc_start, n_noise)
    or "the same", fid, fid_ref, rfid, knn_p, knn_r, ein_gen, ein_real))
print(clip_line)

------------------------------------------------------------------ the unified model answers
local demo_req = "Generate an ECG showing atrial fibrillation at 110 bpm."
local demo_gen = uni:respond { text = demo_req, seed = 7 }
local demo_rep = uni:respond { ecg = te.x:select(1, 1), fs = c.fs_lm }
print(string.format("respond{text=%q} -> %s (12 x %d at %g Hz; measured HR %.0f bpm)", demo_req, demo_gen.kind,
  demo_gen.ecg:size(2), demo_gen.fs, select(2, wb.signal.rpeaks(demo_gen.ecg, demo_gen.fs)) or 0 / 0))
print(string.format("respond{ecg=test record 1} -> %s: %s", demo_rep.kind, demo_rep.text))

------------------------------------------------------------------ the run's page
local page = wb.notebook.page("UniECG two-stage run")
page:md(string.format("Corpus %s: train %d, test %d. Wall time %.0f s. " ..
  "Simulator prior %s, retrieval %s, alignment loss %s.", te.file, tr.n, te.n, wb.now() - t_start,
  cfg.prior and "on" or "off", cfg.retrieval and "on" or "off", tostring(cfg.align_loss)))
page:md("## Interpretation (test split)")
page:table({
  { "after stage 1", stage1.bleu1, stage1.bleu4, stage1.rouge_l, stage1.meteor, stage1.label_f1_micro, stage1.label_f1_macro },
  { "after stage 2", after.bleu1, after.bleu4, after.rouge_l, after.meteor, after.label_f1_micro, after.label_f1_macro },
}, { header = { "", "BLEU-1", "BLEU-4", "ROUGE-L", "METEOR", "label F1 micro", "label F1 macro" }, digits = 3 })
local rep_rows = {}
for i = 1, 6 do rep_rows[i] = { i, reports_after[i], te.reports[i] } end
page:table(rep_rows, { header = { "test record", "generated report", "reference" }, caption = "Generated reports next to the truth" })
page:md("## Generation")
page:table({
  { "HR MAE (bpm)", hr.mae, hr_real.mae }, { "condition accuracy", cond_acc, cond_acc_real },
  { string.format("condition accuracy, each of the %d classifiers alone", #cond_acc_members), table.concat(cond_acc_members, " / "), "" },
  { "condition accuracy, generated from the reports' embeddings", cond_acc_report, cond_acc_real },
  { string.format("condition accuracy, first %d requests: from noise (no experience start) / from experience", n_noise),
    cond_acc_noise and string.format("%.3f / %.3f", cond_acc_noise, cond_acc_start) or cond_acc, cond_acc_real },
  { "experience retrieval: the record's condition is the request's", exp_words, "" },
  { "FID (stage-1 encoder)", fid, fid_ref }, { "rFID", rfid, 1 }, { "k-NN precision", knn_p, "" }, { "k-NN recall", knn_r, "" },
  { "Einthoven |I+III-II| (mV)", ein_gen, ein_real }, { "CLIP score", clip_score or "n/a", "" }, { "rCLIP", rclip or "n/a", "" },
}, { header = { "metric", "generated", "real (reference)" }, digits = 3,
     caption = string.format("%d requests written from test records; real = those records (FID reference: two halves of the test split)", n) })
local shown = {}
for i = 1, n do
  local l = labels_te[i]
  local key = table.concat(l, "+")
  if not shown[key] and #shown < 4 then
    shown[key] = true
    shown[#shown + 1] = i
  end
end
for _, i in ipairs(shown) do
  page:figure(wb.plot.pair(real:select(1, i), gen:select(1, i), { fs = c.fs_gen, names = { "real (test record " .. i .. ")", "generated" } }),
    { caption = req_eval[i] .. "  (measured HR of the generated ECG: " .. string.format("%.0f", hr.measured[i]) .. " bpm)" })
end
page:figure(wb.plot.ecg(demo_gen.ecg, { fs = demo_gen.fs, title = demo_req }), { caption = "respond{text = \"" .. demo_req .. "\"}" })
page:figure(wb.plot.lines({ generator = gen_curve, text_head = text_curve, alignment = align_curve, vae = vae_curve }, { logy = true, xlabel = "step" }),
  { caption = "training losses" })
local html = page:save(cfg.out .. "/report.html")
uni:save(cfg.out .. "/model")
M.wall_seconds = wb.now() - t_start
print(string.format("%s done. The run's page: %s", elapsed(), html))
return M
