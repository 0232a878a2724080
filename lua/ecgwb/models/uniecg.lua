--[[ ecgwb.models.uniecg: the unified ECG model of recipes/two_stage.lua
(UniECG): one model that interprets an ECG (ECG -> report, answers) and
generates one from text (text -> 12-lead ECG).

    local U = require "ecgwb.models.uniecg"
    local uni = U.UniECG(cfg, lm)            -- lm: a trained EcgLM (models/ecg_lm.lua), stage 1
    uni:respond { ecg = x }                                   --> { kind = "report", text = "Sinus rhythm ..." }
    uni:respond { ecg = x, text = "Is the QRS wide?" }        --> { kind = "answer", text = "..." }
    uni:respond { text = "Generate an ECG showing atrial fibrillation at 110 bpm" }
                                                              --> { kind = "ecg", ecg = (12, 1024) mV, fs = 102.4 }

The parts.
  lm        stage 1, an EcgLM: ECG encoder -> projector -> prefix tokens of a
            GPT decoder that writes the report, prompted with the measurements
            of ecgwb's delineator. Frozen in stage 2.
  <gen>     K generation tokens appended to a generation request. The
            frozen LM reads "<bos> request <gen> ... <gen>" with the K
            tokens' input embeddings taken from gen_embed (K, Dl), a
            parameter trained in stage 2 with the align head (the LM's own
            weights stay frozen); its last-layer hidden states at the K
            tokens (B, K, Dl) are the request's generation states
            (gen_states, gen_states_of).
  text      the condition space, a TRAINED text embedding: a text's
            features are the frozen LM's mean input token embedding and
            its mean last-layer hidden state over the text's tokens, side by
            side (2 Dl; text_features = "hidden": the hidden state alone,
            Dl), minus their mean over the training reports (set_center);
            an MLP head (2 Dl -> Dh -> Dt) maps them to the text
            embedding, L2-normalised (text_embedding). The head is trained
            CLIP-style (contrastive_loss: symmetric InfoNCE) against the
            frozen stage-1 ECG encoder's pooled embeddings of the report's
            own record, through a linear ECG head (De -> Dt) used only for
            this training (recipes/two_stage.lua: on the record's generation
            requests too, in 3 of 10 rows). So the space keeps what a text
            says about its ECG (the findings), not its wording. (The
            untrained mean hidden state carries the findings weakly: a
            generator conditioned on it named the condition in half of its
            ECGs. A linear probe of the condition class on test reports
            reads 0.957 from the mean token embedding, 0.855 from the mean
            hidden state: the LM's states blur the words that name the
            findings.)
  align     an MLP (K·Dl -> Dh -> Dt) from the generation states into the
            condition space (aligned). Stage 2's alignment loss (a Lua
            function cfg.align_loss(pred, target), e.g. wb.losses.align_mse,
            align_cosine or info_nce) pulls the aligned generation states of
            a request onto the text embedding of the record's report.
  sediff    the SE-Diff condition encoder (text embedding + age, sex, HR
            [+ retrieved reports]) and the simulator prior (beat decoder,
            differentiable beat synthesiser, consistency loss), see
            models/sediff.lua.
  vae       DiffuSETS' latent: 12 x 1024 at fs_gen = 102.4 Hz (10 s) <-> 4 x 128.
  unet      the latent denoiser, cross-attending to the condition tokens
            (and, global_cond, taking their mean through its time embedding).
  D         DDPM / DDIM (models/diffusion.lua) with classifier-free guidance;
            sampling uses the EMA weights (ema_unet) when they are set.

The experience prior ECG (set_experience, prior_ecg): a training record,
re-timed. For a generation request, the record of the training request
nearest to it in the condition space (set_request_bank, experience_rows:
the space is trained on requests as well as reports); for a text embedding
(generate's o.emb), the record whose report is nearest to it. Re-timed:
its mean beat laid on a rhythm at the requested rate with that record's RR
variability (sediff.rhythm, sediff.beat_train), plus the record's residual
(the record minus its own beat train: atrial activity such as AF's f
waves, which run independently of the QRS, ectopic beats, noise). Two ways
to use it:
  prior_start (default 0.15): sampling starts from it (SDEdit): DDIM begins
            at t0 = 0.15 T from its latent noised to t0, so the sample keeps
            its rhythm and coarse morphology and the denoiser, guided by
            the condition, redraws the rest (models/diffusion.lua's init,
            strength; false: from pure noise);
  prior_input (optional): the denoiser also reads its latent as 4 more input
            channels, in training too (prior_latent, with_prior).

Generation of a request: the aligned, normalised generation states are the
text embedding; HR, age and sex stated in the request (wb.requests.parse)
are the scalar conditions (unknown ones are NaN, which the condition
encoder has a learned flag for); DDIM samples a latent that the VAE decodes.
]]
local wb = require "ecgwb"
local nn = wb.nn
local L = require "ecgwb.models.ecg_lm"
local sd = require "ecgwb.models.sediff"
local vae = require "ecgwb.models.vae"
local unet1d = require "ecgwb.models.unet1d"
local diffusion = require "ecgwb.models.diffusion"

local M = {}

M.defaults = {
  gen_tokens = 4,            -- K
  align_hidden = 256,        -- Dh
  text_dim = 64,             -- Dt, the condition space's width
  text_hidden = 256,         -- the text head's hidden width
  text_features = "tokens+hidden", -- what the text head reads of a text (see "text" above); "hidden": the mean hidden state only
  temperature = 0.1,         -- InfoNCE's temperature for the text head
  fs_gen = 102.4,            -- the generator's sampling rate: 10 s = 1024 samples
  samples = 1024,
  vae = "tiny", unet = "small", unet_channels = 32,
  global_cond = true,        -- the U-Net also takes the mean condition token through its time embedding
  prior_input = false,       -- the U-Net also reads the latent of the experience prior ECG (4 more channels)
  prior_start = 0.15,        -- sampling starts from the experience prior ECG noised to this fraction of T (SDEdit); false: from noise
  schedule = "scaled_linear", T = 1000,
  prediction = "v",          -- the denoiser predicts v (Salimans & Ho); "eps" is DDPM's
  min_snr = 5,               -- Min-SNR-gamma loss weighting (diffusion.lua); false: plain MSE
  sediff = { dim = 64, k = 4, prior = true, retrieval = true, beat_len = 64 },
  sample_steps = 50, guidance = 4, guidance_rescale = 0,   -- diffusion.lua's guidance rescale φ
  fs_lm = 250,               -- the rate at which the delineator measures the evidence
  fs_model = 125,            -- the rate the stage-1 encoder sees
}

local function merged(base, over)
  local c = {}
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over or {}) do
    if base[k] == nil then error("UniECG: unknown config key '" .. tostring(k) .. "'", 4) end
    if type(v) == "table" and type(base[k]) == "table" and k == "sediff" then
      local s = {}
      for a, b in pairs(base[k]) do s[a] = b end
      for a, b in pairs(v) do s[a] = b end
      v = s
    end
    c[k] = v
  end
  return c
end

local UniECG = nn.class("UniECG")
M.UniECG = UniECG

-- the tokenizer's <gen> row of the LM's embedding, K times: (K, Dl)
local function gen_rows(lm, gen_id, K)
  local Dl = lm.lm.cfg.n_embd
  return lm.lm.wte.weight:select(1, gen_id + 1):detach():reshape(1, Dl):expand(K, Dl):contiguous()
end

function UniECG:__init(cfg, lm)
  if not (type(lm) == "table" and lm.lm and lm.tok) then error("UniECG: needs the stage-1 EcgLM as its second argument", 3) end
  local c = merged(M.defaults, cfg)
  self.cfg = c
  self.lm = lm
  local Dl = lm.lm.cfg.n_embd
  self.gen_id = lm.tok:special_id("<gen>")
  local De = lm.encoder.cfg.d_model
  if c.text_features ~= "hidden" and c.text_features ~= "tokens+hidden" then
    error("UniECG: text_features must be 'tokens+hidden' or 'hidden', got '" .. tostring(c.text_features) .. "'", 3)
  end
  local Df = c.text_features == "hidden" and Dl or 2 * Dl
  self.text_head = nn.Sequential(nn.Linear(Df, c.text_hidden), nn.GELU(), nn.Linear(c.text_hidden, c.text_dim))
  self.ecg_head = nn.Linear(De, c.text_dim)
  self.align = nn.Sequential(nn.Linear(c.gen_tokens * Dl, c.align_hidden), nn.GELU(), nn.Linear(c.align_hidden, c.text_dim))
  -- the K <gen> tokens' input embeddings: trained in stage 2 (the LM itself
  -- stays frozen), starting from the tokenizer's <gen> row
  self:register_parameter("gen_embed", gen_rows(lm, self.gen_id, c.gen_tokens) + wb.randn(c.gen_tokens, Dl) * 0.02)
  local s = {}
  for k, v in pairs(c.sediff) do s[k] = v end
  s.text_dim, s.fs = c.text_dim, c.fs_gen
  self.sediff = sd.SEDiff(s)
  self.vae = vae.VAE(vae.config(c.vae))
  self.unet = unet1d.UNet1d(unet1d.config(c.unet, { in_channels = c.prior_input and 8 or 4, out_channels = 4, channels = c.unet_channels, cond_dim = self.sediff.cfg.dim,
                                                          global_cond = c.global_cond }))
  rawset(self, "D", diffusion.Diffusion { schedule = c.schedule, T = c.T, prediction = c.prediction })
end

-- experience retrieval's bank: (N, Dt) text embeddings of the training
-- reports (kept as a buffer, so a saved model retrieves as the trained one)
function UniECG:set_bank(emb)
  self:register_buffer("retrieval_bank", emb)
  self.sediff:set_bank(emb)
end

-- stage 2 trains the generation side only: the LM (encoder, projector, decoder) is frozen
function UniECG:freeze_lm()
  for _, p in ipairs(self.lm:parameters()) do p:requires_grad_(false) end
end

-- mean of h (B, S, D) over the rows of mask (B, S) that are set
local function masked_mean(h, mask)
  local m = mask:to("f32"):unsqueeze(3)                       -- (B, S, 1)
  return (h * m):sum(2) / m:sum(2):clamp(1, math.huge)
end

-- texts -> (N, Dl) the LM's mean last-layer hidden state, or, text_features
-- "tokens+hidden", (N, 2 Dl): its mean input token embedding beside it
local function raw_embedding(self, texts, batch)
  batch = batch or 64
  local outs = {}
  wb.no_grad(function()
    for s = 1, #texts, batch do
      local chunk = {}
      for i = s, math.min(#texts, s + batch - 1) do chunk[#chunk + 1] = texts[i] end
      local ids, mask = self.lm.tok:encode_batch(chunk, { bos = true })
      local f = masked_mean(self.lm.lm:hidden_states(ids, { mask = mask }), mask)
      if self.cfg.text_features == "tokens+hidden" then f = wb.cat({ masked_mean(self.lm.lm.wte(ids), mask), f }, 2) end
      outs[#outs + 1] = f
    end
  end)
  return #outs == 1 and outs[1] or wb.cat(outs, 1)
end

-- the centre of the condition space: the mean raw embedding of training texts
function UniECG:set_center(texts)
  self:register_buffer("text_center", wb.no_grad(function() return raw_embedding(self, texts):mean(1, true) end)) -- (1, 2 Dl) or (1, Dl)
end

-- a text's features (raw_embedding, cfg.text_features), centred; texts: a
-- list of strings -> (N, 2 Dl), or (N, Dl) for "hidden", no gradient
function UniECG:text_features(texts, batch)
  if not self.text_center then error("UniECG:text_features: set_center(training texts) first", 2) end
  return raw_embedding(self, texts, batch) - self.text_center
end

-- the condition space: text features (N, Dl) or texts (a list of strings)
-- -> (N, Dt) L2-normalised embeddings, no gradient
function UniECG:text_embedding(texts, batch)
  local f = wb.is_tensor(texts) and texts or self:text_features(texts, batch)
  return wb.no_grad(function() return wb.normalize(self.text_head(f), -1) end)
end

-- the text head's training loss: symmetric InfoNCE between the heads' images
-- of text features (B, Dl) and of the frozen ECG encoder's pooled embeddings
-- (B, De) of the same records (row i of each is a pair)
function UniECG:contrastive_loss(features, pooled)
  return wb.losses.info_nce(self.text_head(features), self.ecg_head(pooled), { temperature = self.cfg.temperature })
end

-- requests (a list of strings) -> ids, mask (B, T) of "<bos> request <gen> ... <gen>",
-- left-padded so that the K <gen> tokens are the last positions
function UniECG:request_ids(requests)
  local tail, chunk = string.rep("<gen>", self.cfg.gen_tokens), {}
  for i, r in ipairs(requests) do chunk[i] = r .. " " .. tail end
  return self.lm.tok:encode_batch(chunk, { bos = true, pad_left = true })
end

-- the LM's last-layer hidden states at the K <gen> tokens of tokenised
-- requests (request_ids), whose input embeddings are gen_embed:
-- (B, K·Dl), differentiable in gen_embed (the LM is frozen)
function UniECG:gen_states_of(ids, mask)
  local K, B, T = self.cfg.gen_tokens, ids:size(1), ids:size(2)
  local lm = self.lm.lm
  local D = lm.cfg.n_embd
  local words = wb.no_grad(function() return lm.wte(ids:narrow(2, 1, T - K):contiguous()) end)
  local embeds = wb.cat({ words, self.gen_embed:unsqueeze(1):expand(B, K, D) }, 2)
  local h = lm:hidden_states(ids, { mask = mask, embeds = embeds })
  return h:narrow(2, T - K + 1, K):reshape(B, K * D)
end

-- the generation states of requests (a list of strings) -> (N, K·Dl), no gradient
function UniECG:gen_states(requests, batch)
  batch = batch or 64
  local outs = {}
  wb.no_grad(function()
    for s = 1, #requests, batch do
      outs[#outs + 1] = self:gen_states_of(self:request_ids({ unpack(requests, s, math.min(#requests, s + batch - 1)) }))
    end
  end)
  return #outs == 1 and outs[1] or wb.cat(outs, 1)
end

-- generation states -> the condition space (with gradient through align)
function UniECG:aligned(states)
  return self.align(states)
end

-- condition tokens for the denoiser from text embeddings (B, Dt) (normalised
-- here) and meta = {age, sex, hr, exclude, retrieved (B, k, Dt): the reports
-- to read; by default the k nearest to emb}
function UniECG:condition(emb, meta)
  return self.sediff:condition { text = wb.normalize(emb, -1), age = meta.age, sex = meta.sex, hr = meta.hr,
                                 exclude = meta.exclude, retrieved = meta.retrieved }
end

-- The experience prior ECG (see the top). set_experience keeps the
-- training records' mean beats (N, 12, n) (sediff.record_templates), median
-- RR (N) s, RR coefficient of variation (N) and residuals (N, 12, samples)
-- at fs_gen as buffers, so a saved model generates as the trained one.
function UniECG:set_experience(templates, rr, cv, resid)
  local N = wb.is_tensor(templates) and templates:dim() == 3 and templates:size(1)
  if not N or not wb.is_tensor(resid) or resid:dim() ~= 3 or resid:size(1) ~= N or resid:size(2) ~= templates:size(2)
      or resid:size(3) ~= self.cfg.samples then
    error(string.format("UniECG:set_experience: templates (N, leads, n) and residuals (N, leads, %d) expected, got %s and %s",
      self.cfg.samples, wb.is_tensor(templates) and templates:describe() or type(templates), wb.is_tensor(resid) and resid:describe() or type(resid)), 2)
  end
  self:register_buffer("exp_templates", templates)
  self:register_buffer("exp_rr", rr)
  self:register_buffer("exp_cv", cv)
  self:register_buffer("exp_resid", resid)
end

-- The experience of a request, by its own words: recipes/two_stage.lua trains
-- the condition space on generation requests written from the training
-- records' findings as well as on their reports, so a request's text
-- embedding lands near the training requests that state the same findings.
-- set_request_bank keeps those training requests' text embeddings (M, Dt)
-- and their records' 0-based rows (M) i64.
function UniECG:set_request_bank(emb, rows)
  if not (wb.is_tensor(emb) and emb:dim() == 2 and emb:size(2) == self.cfg.text_dim and wb.is_tensor(rows)
          and rows:dim() == 1 and rows:size(1) == emb:size(1) and rows.dtype == "i64") then
    error(string.format("UniECG:set_request_bank: embeddings (M, %d) and record rows (M) i64 expected, got %s and %s",
      self.cfg.text_dim, wb.is_tensor(emb) and emb:describe() or type(emb), wb.is_tensor(rows) and rows:describe() or type(rows)), 2)
  end
  self:register_buffer("request_bank", emb)
  self:register_buffer("request_rows", rows)
end

-- generation requests (a list of strings) -> (B, k) i64 0-based experience
-- rows: the records of each request's nearest training requests in the
-- condition space, k distinct records, nearest first (k = 1 by default)
function UniECG:experience_rows(requests, k)
  if not self.request_bank then error("UniECG:experience_rows: set_request_bank first", 2) end
  k = k or 1
  local B, M = #requests, self.request_bank:size(1)
  -- a record has at most per requests, so the k·per nearest hold k records
  local count, per = {}, 1
  for _, r in ipairs(self.request_rows:totable()) do count[r] = (count[r] or 0) + 1; per = math.max(per, count[r]) end
  local n = math.min(M, k * per)
  local near = sd.retriever(self.request_bank):topk(self:text_embedding(requests), n)
  local rows, out = self.request_rows:index_select(1, near:reshape(B * n)):totable(), {}
  for i = 1, B do
    local seen, got = {}, 0
    for j = 1, n do
      local r = rows[(i - 1) * n + j]
      if got < k and not seen[r] then seen[r], got = true, got + 1; out[#out + 1] = r end
    end
    if got < k then error(string.format("UniECG:experience_rows: the bank holds fewer than k = %d records", k), 2) end
  end
  return wb.tensor(out, "i64"):reshape(B, k)
end

-- text embeddings (B, Dt), hr (B) bpm (NaN: unknown) -> the experience prior
-- ECGs (B, 12, samples). The experience: o.rows (B) i64 when given
-- (experience_rows), else the training record nearest to the embedding
-- (o.exclude: one 0-based bank row per row left out; training: the record
-- itself). The rhythm: o.peaks (a list of B lists of 0-based R samples;
-- training: the record's own), else drawn by sediff.rhythm at the requested
-- rate (the neighbour's when none is stated) with the neighbour's RR
-- variability (the wb RNG).
function UniECG:prior_ecg(emb, hr, o)
  o = o or {}
  if not self.exp_templates then error("UniECG:prior_ecg: set_experience first", 2) end
  local B, fs, T = emb:size(1), self.cfg.fs_gen, self.cfg.samples
  local idx = o.rows or self.sediff.retriever:topk(emb, 1, { exclude = o.exclude }):reshape(B)
  local rr, cv = self.exp_rr:index_select(1, idx):totable(), self.exp_cv:index_select(1, idx):totable()
  local h = wb.is_tensor(hr) and hr:totable() or hr
  local peaks = o.peaks
  if not peaks then
    peaks = {}
    for i = 1, B do
      local rate = h[i] == h[i] and h[i] > 0 and h[i] or 60 / rr[i]
      peaks[i] = sd.rhythm(60 / rate, cv[i], fs, T)
    end
  end
  return wb.no_grad(function()
    return sd.beat_train(self.exp_templates:index_select(1, idx), rr, peaks, fs, T) + self.exp_resid:index_select(1, idx)
  end)
end

-- the experience prior's VAE latent (B, 4, samples/8), arguments as prior_ecg's
function UniECG:prior_latent(emb, hr, o)
  local x = self:prior_ecg(emb, hr, o)
  return wb.no_grad(function() return self.vae:latent(x) end)
end

-- the denoiser with the prior latent zp (B, 4, l) as 4 more input channels;
-- rows dropped for classifier-free guidance (uncond, or no condition) lose
-- the prior too, so guidance pushes towards the prior and the text together
function M.with_prior(net, zp)
  return function(x, t, cond, mo)
    local p = zp
    if cond == nil then p = zp * 0
    elseif mo and wb.is_tensor(mo.uncond) then p = zp * (mo.uncond * -1 + 1):view(-1, 1, 1) end
    return net(wb.cat({ x, p }, 2), t, cond, mo)
  end
end

-- the generator's training loss for one batch:
--   b = { z0 (B, 4, 128) scaled latents, emb (B, Dt), age, sex, hr (B),
--         templates (B, 12, n) record templates or nil, valid, exclude,
--         peaks = a list of B lists of the records' R peaks (0-based samples)
--         or nil (then the beats are found by cross-correlation, slower) }
-- DDPM's loss (v-prediction, Min-SNR-5 weighted by default) with condition dropout p_uncond; with the simulator prior,
-- + the SE-Diff terms: the consistency of the decoded x0 prediction with the
-- beat decoder's templates (rows with alpha_bar_t > 0.5, where x0^ is an
-- ECG rather than noise; at most o.prior_rows of them, 8 by default: the
-- consistency loss cuts beats in Lua and is the step's slowest part) and the
-- decoder's fit to the record templates. Returns the total and its parts (numbers).
function UniECG:generator_loss(b, o)
  o = o or {}
  local cond = self:condition(b.emb, b)
  local net = self.unet
  if self.cfg.prior_input then
    if not b.zp then error("UniECG:generator_loss: prior_input needs b.zp, the prior latents (prior_latent)", 2) end
    net = M.with_prior(net, b.zp)
  end
  local loss, info = self.D:loss(net, b.z0, cond, { p_uncond = o.p_uncond or 0.1, min_snr = self.cfg.min_snr or nil })
  local parts = { diffusion = loss:item() }
  if self.sediff.decoder then
    local x0z, ab = self.D:predict_x0(info.out, info.x_t, info.t)
    local rows, abt = {}, ab:totable()
    for i, a in ipairs(abt) do if a > 0.5 and #rows < (o.prior_rows or 8) then rows[#rows + 1] = i - 1 end end
    local x0 = nil
    local hr = b.hr
    local c = cond
    local peaks
    if #rows > 0 then
      local idx = wb.tensor(rows, "i64")
      x0 = self.vae:from_latent(x0z:index_select(1, idx))
      c = cond:index_select(1, idx)
      hr = b.hr:index_select(1, idx)
      if b.peaks then
        peaks = {}
        for i, r in ipairs(rows) do peaks[i] = b.peaks[r + 1] end
      end
    end
    -- x0^ approximates the record's own x0 here, so the beats are cut at the record's R peaks
    local prior, p = self.sediff:prior_terms(c, hr, x0, { peaks = peaks })
    local fit = self.sediff:prior_loss(cond, b.hr, b.templates, b.valid)
    loss = loss + fit
    parts.template = fit:item()
    if prior and p.consistency then
      loss = loss + p.consistency * self.sediff.cfg.lambda
      parts.consistency = p.consistency:item()
    end
  end
  return loss, parts
end

-- meta of requests: hr, age, sex stated in the texts (NaN / -1 when not)
function M.request_meta(requests)
  local hr, age, sex = {}, {}, {}
  for i, r in ipairs(requests) do
    local p = wb.requests.parse(r)
    hr[i], age[i], sex[i] = p.hr or 0 / 0, p.age or 0 / 0, p.sex or -1
  end
  return { hr = wb.tensor(hr), age = wb.tensor(age), sex = wb.tensor(sex) }
end

-- ECGs (B, 12, samples) at fs_gen for a list of generation requests.
-- o: steps, guidance, rescale, eta (DDIM's, 0 by default), seed, meta (overrides request_meta), emb (text
-- embeddings to use instead of the aligned generation states; the experience is then the nearest training
-- record to them), prior_start (overrides cfg.prior_start; false: from noise)
function UniECG:generate(requests, o)
  o = o or {}
  local B = #requests
  local meta = o.meta or M.request_meta(requests)
  local start = o.prior_start
  if start == nil then start = self.cfg.prior_start end
  if start and not self.exp_templates then
    error("UniECG:generate: prior_start samples from the experience prior: set_experience first (or prior_start = false)", 2)
  end
  local was, state = self.training, o.seed and wb.rng_state()
  self:eval()
  if o.seed then wb.manual_seed(o.seed) end -- the prior's rhythm draws, then D:sample's noise (seeded again)
  local ok, res = pcall(function()
    local emb = o.emb or wb.no_grad(function() return self:aligned(self:gen_states(requests)) end)
    -- the experience by the request's own words (unless embeddings are given):
    -- the records of the reports the condition reads, the first one's the prior ECG's
    local rows
    if not o.emb and self.request_bank then
      local k = self.sediff.cfg.retrieval and self.sediff.cfg.k or 1
      rows = self:experience_rows(requests, k)
      if self.sediff.cfg.retrieval then
        local bank = self.retrieval_bank
        meta = { age = meta.age, sex = meta.sex, hr = meta.hr,
                 retrieved = bank:index_select(1, rows:reshape(B * k)):reshape(B, k, bank:size(2)) }
      end
      rows = rows:select(2, 1):contiguous()
    end
    local cond = wb.no_grad(function() return self:condition(emb, meta) end)
    local net = self.ema_unet or self.unet
    local zp = (self.cfg.prior_input or start) and self:prior_latent(emb, meta.hr, { rows = rows })
    if self.cfg.prior_input then net = M.with_prior(net, zp) end
    local z = self.D:sample(net, { B, 4, self.cfg.samples / 8 }, cond,
      { steps = o.steps or self.cfg.sample_steps, guidance = o.guidance or self.cfg.guidance, seed = o.seed,
        rescale = o.rescale or self.cfg.guidance_rescale, eta = o.eta, init = start and zp or nil, strength = start or nil })
    return wb.no_grad(function() return self.vae:from_latent(z) end)
  end)
  self:train(was)
  if state then wb.set_rng_state(state) end
  if not ok then error(res, 0) end
  return res
end

-- ECG (12, L) or (B, 12, L) at fs -> the stage-1 model's input and evidence
function UniECG:prepare(x, fs)
  if x:dim() == 2 then x = x:unsqueeze(1) end
  local xl = fs == self.cfg.fs_lm and x or wb.signal.resample(x:contiguous(), fs, self.cfg.fs_lm)
  local ev = L.evidence(xl, self.cfg.fs_lm)
  return wb.signal.resample(xl:contiguous(), self.cfg.fs_lm, self.cfg.fs_model), ev
end

-- the unified entry point: req = { text = ..., ecg = (12, L) mV, fs = 500 }
function UniECG:respond(req)
  local kind = wb.requests.intent(req)
  if kind == "generate" then
    local x = self:generate({ req.text }, { seed = req.seed })
    return { kind = "ecg", ecg = x:select(1, 1), fs = self.cfg.fs_gen, request = req.text }
  end
  local ecg = req.ecg
  if ecg:dim() ~= 2 or ecg:size(1) ~= 12 then
    error("respond: ecg must be (12, L) in mV, got " .. ecg:describe(), 2)
  end
  local x, ev = self:prepare(ecg, req.fs or 500)
  local prompt = L.prompt { evidence = ev[1], question = kind == "question" and req.text or nil }
  local room = self.lm.lm.cfg.block_size - self.lm.cfg.prefix_tokens - (self.lm.cfg.global_token and 1 or 0)
      - self.lm.tok:encode(prompt, { bos = true }):numel()
  local text = self.lm:generate(x, { prompt = prompt, greedy = true, max_new_tokens = math.min(req.max_new_tokens or 110, room) })[1]
  return { kind = kind == "question" and "answer" or "report", text = text, evidence = ev[1] }
end

-- save to a directory: lm/ (the stage-1 EcgLM with its tokenizer), uniecg.h5
-- (every other weight and buffer, and the EMA denoiser's as ema_unet.*) and
-- config.json
function UniECG:save(dir)
  if type(dir) ~= "string" then error("UniECG:save: expected a directory name", 2) end
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  self.lm:save(dir .. "/lm")
  local sd = {}
  for k, v in pairs(self:state_dict()) do if k:sub(1, 3) ~= "lm." then sd[k] = v end end
  if self.ema_unet then for k, v in pairs(self.ema_unet:state_dict()) do sd["ema_unet." .. k] = v end end
  wb.save_state_dict(dir .. "/uniecg.h5", sd)
  local f = assert(io.open(dir .. "/config.json", "w"))
  f:write(wb.json.encode(self.cfg), "\n")
  f:close()
  return dir
end

function M.load(dir)
  if type(dir) ~= "string" then error("uniecg.load: expected a directory name", 2) end
  local f = io.open(dir .. "/config.json", "r")
  if not f then error("uniecg.load: no config.json in '" .. dir .. "' (a directory written by UniECG:save)", 2) end
  local cfg = wb.json.decode(f:read("*a"))
  f:close()
  cfg.prediction = cfg.prediction or "eps" -- saved before v-prediction was the default
  cfg.text_features = cfg.text_features or "hidden" -- saved before the token embeddings were read
  if cfg.prior_start == nil then cfg.prior_start = false end -- saved before sampling started from the experience prior
  local uni = UniECG(cfg, L.load(dir .. "/lm"))
  local sd, ema, own = wb.load_state_dict(dir .. "/uniecg.h5"), {}, {}
  for k, v in pairs(sd) do
    if k:sub(1, 9) == "ema_unet." then ema[k:sub(10)] = v else own[k] = v end
  end
  if own.text_center then uni:register_buffer("text_center", wb.zeros(own.text_center:size())) end
  if own.retrieval_bank then uni:set_bank(wb.zeros(own.retrieval_bank:size())) end
  if own.request_bank then uni:set_request_bank(wb.zeros(own.request_bank:size()), wb.zeros(own.request_rows:size()):to("i64")) end
  if own.exp_templates then
    if not own.exp_resid then -- saved before the residuals were kept: the beats alone
      own.exp_resid = wb.zeros(own.exp_templates:size(1), own.exp_templates:size(2), uni.cfg.samples)
    end
    uni:set_experience(wb.zeros(own.exp_templates:size()), wb.zeros(own.exp_rr:size()), wb.zeros(own.exp_cv:size()), wb.zeros(own.exp_resid:size()))
  end
  for k, v in pairs(uni.lm:state_dict()) do own["lm." .. k] = v end
  if not own.gen_embed then -- saved before the <gen> embeddings were trained: the tokenizer's <gen> row, K times
    own.gen_embed = gen_rows(uni.lm, uni.gen_id, uni.cfg.gen_tokens)
  end
  uni:load_state_dict(own)
  if uni.retrieval_bank then uni.sediff:set_bank(uni.retrieval_bank) end -- the retriever keeps its own normalised copy
  if next(ema) then
    local e = uni.unet:clone()
    e:load_state_dict(ema)
    rawset(uni, "ema_unet", e)
  end
  uni:freeze_lm()
  uni:eval()
  return uni
end

return M
