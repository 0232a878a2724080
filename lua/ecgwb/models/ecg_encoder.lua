--[[ ecgwb.models.ecg_encoder: the ECG-FM / wav2vec 2.0 ECG encoder.

    local E = require "ecgwb.models.ecg_encoder"
    local enc = E.EcgEncoder("tiny")              -- or "small", "base", or a config table
    local out = enc(x, lead_mask)                 -- x (B, 12, L) mV, lead_mask (B, 12) f32 1 = present
    out.frames  -- (B, T, D) per-frame features, T = floor(L / 2^n_conv)
    out.pooled  -- (B, D) mean of the frames
    out.features -- (B, T, C) the feature extractor's output (layer-normed,
                 -- unmasked): the input of the quantizer

Architecture (wav2vec 2.0, as ECG-FM's fairseq-signals model):
  1. Feature extractor: n_conv × Conv1d(k=2, s=2, no bias) + GELU. As
     wav2vec 2.0's "default" extractor mode, the first conv is followed by
     GroupNorm(C, C) (each channel normalised over time); the "layer_norm"
     mode puts a LayerNorm over channels after every conv instead.
  2. LayerNorm(C) over the features, then Linear(C, D) (post_extract_proj).
  3. Lead embedding: missing leads are zeroed at the input, and a learned
     lead-presence embedding lead_mask @ W_lead (W_lead: 12 × D, no bias;
     a 12-hot sum of per-lead vectors) is added to every frame, so the
     transformer knows which leads it sees (TolerantECG / anyECG-chat style).
     Set lead_embedding = false for the bare ECG-FM shapes.
  4. Masked frames (pretraining) are replaced by a learned mask embedding.
  5. Convolutional positional embedding: a grouped Conv1d(D, D, k=pos_kernel,
     groups=pos_groups, padding k/2, last frame dropped when k is even) with
     weight normalisation over the kernel dim (as wav2vec 2.0: weight =
     g · v / ||v||, norms over (out, in) for each tap), then GELU, added to
     the frames.
  6. Pre-LayerNorm transformer (norm_first, GELU) and a final LayerNorm.
  7. Pooled embedding: the mean over frames (as ECG-FM's downstream heads).

Pretraining heads (built by `objective`):
  "contrastive": wav2vec 2.0's Gumbel product quantizer over the features
     (G groups × V entries, codevectors of final_dim / G), project_q
     Linear(final_dim, final_dim) and final_proj Linear(D, final_dim).
  "reconstruct": recon_head Linear(D, 12 · 2^n_conv), predicting the raw
     signal patch under each masked frame.

Parameter count of `base` (ECG-FM's shapes, objective "contrastive",
lead_embedding = false), from the shapes:
  conv 12·256·2 + 3·256·256·2 = 399,360; GroupNorm 512; LayerNorm 512;
  post_extract_proj 256·768+768 = 197,376; mask_emb 768;
  pos_conv 768·48·128 + 768 + g 128 = 4,719,488;
  12 layers × 7,087,872 = 85,054,464 (attention 4·(768²+768), FFN
  768·3072+3072 + 3072·768+768, two LayerNorms); final LayerNorm 1,536;
  quantizer vars 2·320·128 = 81,920 + weight_proj 256·640+640 = 164,480;
  project_q 65,792; final_proj 196,864.
  Total 90,883,072 (ECG-FM: 90.9M); with the lead embedding 90,892,288.
M.count_parameters(cfg) computes this formula for any config.
]]
local wb = require "ecgwb"
local nn = wb.nn

local M = {}

------------------------------------------------------------------ configs
local BASE = {
  n_leads = 12,
  conv_channels = 256, n_conv = 4, extractor_mode = "default", -- "default" | "layer_norm"
  d_model = 768, layers = 12, ffn = 3072, heads = 12, dropout = 0.1,
  pos_kernel = 128, pos_groups = 16,
  lead_embedding = true,
  objective = "contrastive",                                     -- "contrastive" | "reconstruct" | "none"
  quant_groups = 2, quant_vars = 320, final_dim = 256,
  mask_prob = 0.65, mask_length = 10,     -- 10 frames of 32 ms (500 Hz / 16) = 320 ms, ECG-FM's default
}
M.configs = {
  base = BASE,
  small = setmetatable({ conv_channels = 128, d_model = 256, layers = 4, ffn = 1024, heads = 4,
    pos_kernel = 64, pos_groups = 16, quant_vars = 64, final_dim = 128 }, { __index = BASE }),
  -- tiny: meant for 250 Hz input, so a frame is 64 ms and a 5-frame span is
  -- the same 320 ms as ECG-FM's 10 frames at 500 Hz
  tiny = setmetatable({ conv_channels = 64, d_model = 64, layers = 2, ffn = 128, heads = 4, dropout = 0,
    pos_kernel = 16, pos_groups = 4, quant_vars = 32, final_dim = 32, mask_length = 5 }, { __index = BASE }),
}

-- a full config table: a name, or a table with an optional `base` name
function M.config(c)
  if type(c) == "string" or c == nil then
    local src = M.configs[c or "tiny"]
    if not src then error("ecg_encoder: unknown config '" .. tostring(c) .. "' (tiny, small, base)", 3) end
    c = {}
    for k in pairs(BASE) do c[k] = src[k] end
    return c
  end
  local out = M.config(c.base or "tiny")
  for k, v in pairs(c) do
    if k ~= "base" then
      if BASE[k] == nil then error("ecg_encoder: unknown config key '" .. tostring(k) .. "'", 3) end
      out[k] = v
    end
  end
  return out
end

-- the parameter count implied by a config's shapes (see the header)
function M.count_parameters(c)
  c = M.config(c)
  local C, D, L = c.conv_channels, c.d_model, c.n_leads
  local n = L * C * 2 + (c.n_conv - 1) * C * C * 2
  n = n + (c.extractor_mode == "layer_norm" and c.n_conv * 2 * C or 2 * C)
  n = n + 2 * C + C * D + D + D                                   -- layer_norm, post_extract_proj, mask_emb
  if c.lead_embedding then n = n + L * D end
  n = n + D * (D / c.pos_groups) * c.pos_kernel + D + c.pos_kernel -- pos_conv v, bias, g
  local layer = 4 * (D * D + D) + (D * c.ffn + c.ffn) + (c.ffn * D + D) + 4 * D
  n = n + c.layers * layer + 2 * D
  if c.objective == "contrastive" then
    local G, V, F = c.quant_groups, c.quant_vars, c.final_dim
    n = n + G * V * (F / G) + (C * G * V + G * V) + (F * F + F) + (D * F + F)
  elseif c.objective == "reconstruct" then
    local S = 2 ^ c.n_conv
    n = n + D * L * S + L * S
  end
  return n
end

------------------------------------------------------------------ quantizer
-- wav2vec 2.0's Gumbel-softmax product quantizer: x (N, C) -> q (N, G·d).
-- Group g picks one of V codevectors vars[g] (V, d) by argmax of its logits;
-- in training the choice is a hard Gumbel-softmax with a straight-through
-- gradient (forward: one-hot; backward: the soft probabilities').
local Quantizer = nn.class("GumbelQuantizer")
M.GumbelQuantizer = Quantizer
function Quantizer:__init(dim, groups, num_vars, vq_dim)
  if vq_dim % groups ~= 0 then error("GumbelQuantizer: vq_dim " .. vq_dim .. " not divisible by groups " .. groups, 3) end
  self.groups, self.num_vars, self.var_dim = groups, num_vars, vq_dim / groups
  self:register_parameter("vars", wb.zeros(groups, num_vars, vq_dim / groups):uniform_(0, 1)) -- (G, V, d)
  self.weight_proj = nn.Linear(dim, groups * num_vars)
  nn.init.normal_(self.weight_proj.weight, 0, 1)
  self.weight_proj.bias:zero_()
  self.tau = 2                                    -- annealed by the caller (wav2vec 2.0: 2 -> 0.5)
end

-- one-hot rows of width V for 0-based ids (N) -> (N, V) f32
local function one_hot(ids, V)
  return wb.arange(0, V, 1, "i64"):reshape(1, V):eq(ids:reshape(-1, 1)):to("f32")
end
M.one_hot = one_hot

-- x (N, C) -> { q (N, G·d), ids (N, G) 0-based, avg_probs (G, V) (soft, no noise),
--               perplexity (number of codes in use, summed over groups) }
function Quantizer:forward(x)
  local N, G, V = x:size(1), self.groups, self.num_vars
  local logits = self.weight_proj(x):reshape(N * G, V)          -- (N·G, V)
  local probs = wb.softmax(logits, -1)
  local avg_probs = probs:reshape(N, G, V):mean(1)              -- (G, V)
  local sel
  if self.training then
    -- Gumbel noise g = -log(-log u), u ~ U(0, 1)
    local u = wb.rand(N * G, V):clamp(1e-9, 1 - 1e-9)
    local noisy = (logits + (u:log():neg()):log():neg()) / self.tau
    local soft = wb.softmax(noisy, -1)
    local hard = one_hot(noisy:argmax(-1), V)
    sel = hard - soft:detach() + soft                           -- straight-through
  else
    sel = one_hot(logits:argmax(-1), V)
  end
  local ids = sel:detach():argmax(-1):reshape(N, G)
  -- (G, N, V) @ (G, V, d) -> (G, N, d) -> (N, G·d)
  local q = wb.matmul(sel:reshape(N, G, V):transpose(1, 2), self.vars):transpose(1, 2):reshape(N, G * self.var_dim)
  local perplexity = wb.no_grad(function()
    local p = avg_probs:detach()
    return (p * (p + 1e-7):log()):sum(2):neg():exp():sum():item()
  end)
  return { q = q, ids = ids, avg_probs = avg_probs, perplexity = perplexity }
end

------------------------------------------------------------------ encoder
local Encoder = nn.class("EcgEncoder")
M.EcgEncoder = Encoder

function Encoder:__init(cfg)
  local c = M.config(cfg)
  self.cfg = c
  local C, D, L = c.conv_channels, c.d_model, c.n_leads
  if D % c.heads ~= 0 then error("EcgEncoder: d_model " .. D .. " not divisible by heads " .. c.heads, 3) end
  if D % c.pos_groups ~= 0 then error("EcgEncoder: d_model " .. D .. " not divisible by pos_groups " .. c.pos_groups, 3) end
  if c.extractor_mode ~= "default" and c.extractor_mode ~= "layer_norm" then
    error("EcgEncoder: extractor_mode must be 'default' or 'layer_norm', got " .. tostring(c.extractor_mode), 3)
  end
  self.stride = 2 ^ c.n_conv                                    -- samples per frame
  -- 1. feature extractor
  local convs = nn.ModuleList()
  self.conv_norms = nn.ModuleList()
  for i = 1, c.n_conv do
    convs:append(nn.Conv1d(i == 1 and L or C, C, 2, { stride = 2, bias = false }))
    nn.init.kaiming_uniform_(convs[i].weight, 0)   -- wav2vec 2.0: kaiming_normal_; uniform with the same variance
    if c.extractor_mode == "layer_norm" then self.conv_norms:append(nn.LayerNorm(C))
    elseif i == 1 then self.conv_norms:append(nn.GroupNorm(C, C)) end
  end
  self.conv_layers = convs
  -- 2. features -> model width
  self.layer_norm = nn.LayerNorm(C)
  self.post_extract_proj = nn.Linear(C, D)
  -- 3. lead-presence embedding, 4. mask embedding
  self:register_parameter("mask_emb", wb.zeros(D):uniform_(0, 1))
  if c.lead_embedding then self:register_parameter("lead_emb", wb.randn(L, D):mul_(0.02)) end
  -- 5. convolutional positional embedding (weight-normalised over the kernel dim)
  local K, Gp = c.pos_kernel, c.pos_groups
  local std = math.sqrt(4 / (K * D))
  self:register_parameter("pos_conv_v", wb.randn(D, D / Gp, K):mul_(std)) -- (D, D/groups, K)
  self:register_parameter("pos_conv_g", wb.zeros(1, 1, K))
  self:register_parameter("pos_conv_bias", wb.zeros(D))
  wb.no_grad(function() self.pos_conv_g:copy_(self:_pos_norm()) end) -- so the initial weight is v
  -- 6. transformer
  self.encoder = nn.TransformerEncoder(function()
    return nn.TransformerEncoderLayer(D, c.heads,
      { dim_feedforward = c.ffn, dropout = c.dropout, activation = "gelu", norm_first = true })
  end, c.layers, { norm = nn.LayerNorm(D) })
  -- pretraining heads
  if c.objective == "contrastive" then
    self.quantizer = Quantizer(C, c.quant_groups, c.quant_vars, c.final_dim)
    self.project_q = nn.Linear(c.final_dim, c.final_dim)
    self.final_proj = nn.Linear(D, c.final_dim)
  elseif c.objective == "reconstruct" then
    self.recon_head = nn.Linear(D, L * self.stride)
  elseif c.objective ~= "none" then
    error("EcgEncoder: objective must be 'contrastive', 'reconstruct' or 'none', got " .. tostring(c.objective), 3)
  end
end

-- ||v|| over (out, in) for each kernel tap: (1, 1, K)
function Encoder:_pos_norm()
  return self.pos_conv_v:square():sum({ 1, 2 }, true):sqrt()
end

-- frames for an input of L samples
function Encoder:frames_for(L) return math.floor(L / self.stride) end

-- x (B, 12, L), lead_mask (B, 12) or nil -> features (B, T, C), after the
-- LayerNorm; missing leads are zeroed first
function Encoder:extract(x, lead_mask)
  if x:dim() ~= 3 or x:size(2) ~= self.cfg.n_leads then
    error(string.format("EcgEncoder: expected x (B, %d, L), got %s", self.cfg.n_leads, x:describe()), 3)
  end
  if x:size(3) < self.stride then
    error(string.format("EcgEncoder: need at least %d samples, got %s", self.stride, x:describe()), 3)
  end
  if lead_mask then x = x * lead_mask:unsqueeze(3) end
  local h = x
  for i = 1, self.cfg.n_conv do
    h = self.conv_layers[i](h)                                   -- (B, C, L / 2^i)
    if self.cfg.extractor_mode == "layer_norm" then
      h = self.conv_norms[i](h:transpose(2, 3)):transpose(2, 3)
    elseif i == 1 then
      h = self.conv_norms[1](h)
    end
    h = wb.gelu(h)
  end
  return self.layer_norm(h:transpose(2, 3))                      -- (B, T, C)
end

-- enc(x, lead_mask, {mask = (B, T) f32 1 = masked frame}) -> table
function Encoder:forward(x, lead_mask, o)
  local B = x:size(1)
  if lead_mask and (lead_mask:dim() ~= 2 or lead_mask:size(1) ~= B or lead_mask:size(2) ~= self.cfg.n_leads) then
    error(string.format("EcgEncoder: lead_mask must be (%d, %d), got %s", B, self.cfg.n_leads, lead_mask:describe()), 2)
  end
  local feats = self:extract(x, lead_mask)                       -- (B, T, C)
  local T = feats:size(2)
  local h = self.post_extract_proj(feats)                        -- (B, T, D)
  local mask = o and o.mask
  if mask then
    if mask:dim() ~= 2 or mask:size(1) ~= B or mask:size(2) ~= T then
      error(string.format("EcgEncoder: frame mask must be (%d, %d), got %s", B, T, mask:describe()), 2)
    end
    local m = mask:unsqueeze(3)                                  -- (B, T, 1)
    h = h * (1 - m) + m * self.mask_emb
  end
  if self.lead_emb then
    local lm = lead_mask or wb.ones(B, self.cfg.n_leads)
    h = h + wb.matmul(lm, self.lead_emb):unsqueeze(2)            -- (B, 1, D)
  end
  -- convolutional positional embedding
  local K = self.cfg.pos_kernel
  local w = self.pos_conv_v * (self.pos_conv_g / self:_pos_norm())
  local p = wb.conv1d(h:transpose(2, 3), w, self.pos_conv_bias, { padding = K / 2, groups = self.cfg.pos_groups })
  if K % 2 == 0 then p = p:narrow(3, 1, T) end                   -- (B, D, T)
  h = h + wb.gelu(p):transpose(2, 3)
  h = self.encoder(h)                                            -- (B, T, D)
  return { frames = h, pooled = h:mean(2), features = feats }
end

------------------------------------------------------------------ masks
-- wav2vec 2.0's span mask: per record, num = floor(mask_prob · T / span + u)
-- span starts drawn without replacement from [0, T - span], spans may
-- overlap; then every record keeps the same number of masked frames (the
-- smallest count, dropping frames at random). -> (B, T) f32, 1 = masked
function M.span_mask(B, T, mask_prob, span)
  span = math.min(span, T)
  local rows, counts = {}, {}
  for b = 1, B do
    local u = wb.rand(T + 1):totable()
    local num = math.max(1, math.floor(mask_prob * T / span + u[T + 1]))
    local starts = {}
    for i = 0, T - span do starts[#starts + 1] = i end
    -- partial Fisher-Yates with the uniforms u
    local row = {}
    for t = 1, T do row[t] = 0 end
    for i = 1, math.min(num, #starts) do
      local j = i + math.floor(u[i] * (#starts - i + 1))
      starts[i], starts[j] = starts[j], starts[i]
      for t = starts[i] + 1, starts[i] + span do row[t] = 1 end
    end
    local n = 0
    for t = 1, T do n = n + row[t] end
    rows[b], counts[b] = row, n
  end
  local keep = math.huge
  for b = 1, B do keep = math.min(keep, counts[b]) end
  for b = 1, B do
    local row, extra = rows[b], counts[b] - keep
    if extra > 0 then
      local idx = {}
      for t = 1, T do if row[t] == 1 then idx[#idx + 1] = t end end
      local u = wb.rand(#idx):totable()
      for i = 1, extra do
        local j = i + math.floor(u[i] * (#idx - i + 1))
        idx[i], idx[j] = idx[j], idx[i]
        row[idx[i]] = 0
      end
    end
  end
  return wb.tensor(rows)
end

-- random lead masking: each lead dropped with probability p, at least one
-- kept (a record that lost every lead keeps one chosen at random)
-- -> (B, n_leads) f32, 1 = present
function M.random_lead_mask(B, p, n_leads)
  n_leads = n_leads or 12
  local u = wb.rand(B, n_leads + 1):totable()
  local rows = {}
  for b = 1, B do
    local row, any = {}, false
    for l = 1, n_leads do
      row[l] = u[(b - 1) * (n_leads + 1) + l] >= p and 1 or 0
      any = any or row[l] == 1
    end
    if not any then row[1 + math.floor(u[b * (n_leads + 1)] * n_leads)] = 1 end
    rows[b] = row
  end
  return wb.tensor(rows)
end

-- raw signal patches under each frame: x (B, 12, L) -> (B, T, 12·S), the
-- reconstruction target (S = samples per frame)
function M.patches(x, S)
  local B, Lc, L = x:size(1), x:size(2), x:size(3)
  local T = math.floor(L / S)
  return x:narrow(3, 1, T * S):reshape(B, Lc, T, S):permute(1, 3, 2, 4):reshape(B, T, Lc * S)
end

-- flat 0-based ids into (B·T) of the masked frames of a span mask (every
-- record has the same count M) -> ids (B·M) i64, M
function M.masked_ids(mask)
  local B, T = mask:size(1), mask:size(2)
  local m, ids = mask:totable(), {}
  for i = 1, B * T do if m[i] > 0.5 then ids[#ids + 1] = i - 1 end end
  return wb.tensor(ids, "i64"), #ids / B
end

------------------------------------------------------------------ the ECG-FM objective
-- One pretraining loss on a batch of segments, ECG-FM's mix:
--   random lead masking (each segment independently), span masking of the
--   frames, masked prediction (objective "contrastive": wav2vec 2.0 against
--   the quantised features, + diversity_weight · diversity; "reconstruct":
--   MSE on the raw signal under the masked frames, present leads only), and
--   cmsc_weight · CMSC on the pooled embeddings of the same forward pass.
-- x (N, 12, L) segments; groups: N record ids (adjacent segments of one
-- record share an id). o: lead_mask_p (0.5), num_negatives (100),
-- temperature (0.1), cmsc_temperature (0.1), diversity_weight (0.1),
-- cmsc_weight (1), and losses = {w2v_contrastive=, diversity=, masked_mse=,
-- cmsc=} to swap any loss (defaults: wb.losses).
-- -> total loss, table of the parts (numbers) for printing
function M.ssl_objective(enc, x, groups, o)
  o = o or {}
  local Ls = setmetatable(o.losses or {}, { __index = wb.losses })
  local c = enc.cfg
  local N = x:size(1)
  local lead_mask = o.lead_mask or M.random_lead_mask(N, o.lead_mask_p or 0.5, c.n_leads)
  local T = enc:frames_for(x:size(3))
  local mask = M.span_mask(N, T, c.mask_prob, c.mask_length)
  local out = enc(x, lead_mask, { mask = mask })
  local ids, Mm = M.masked_ids(mask)
  local D, C = c.d_model, c.conv_channels
  local at_masked = out.frames:reshape(N * T, D):index_select(1, ids)       -- (N·M, D)
  local parts, total = {}, nil
  if c.objective == "contrastive" then
    local F = c.final_dim
    local ctx = enc.final_proj(at_masked):reshape(N, Mm, F)
    local qo = enc.quantizer(out.features:reshape(N * T, C):index_select(1, ids))
    local y = enc.project_q(qo.q):reshape(N, Mm, F)
    local lw, acc = Ls.w2v_contrastive(ctx, y, { num_negatives = o.num_negatives or 100, temperature = o.temperature or 0.1 })
    local ld = Ls.diversity(qo.avg_probs)
    total = lw + ld * (o.diversity_weight or 0.1)
    parts.w2v, parts.diversity, parts.acc, parts.perplexity = lw:item(), ld:item(), acc, qo.perplexity
  elseif c.objective == "reconstruct" then
    local S = enc.stride
    local pred = enc.recon_head(at_masked)                                   -- (N·M, 12·S)
    local target = M.patches(x * lead_mask:unsqueeze(3), S):reshape(N * T, c.n_leads * S):index_select(1, ids)
    -- weight (N·M, 12·S): the present leads of each frame's record
    local rec = {}
    for i = 1, N * Mm do rec[i] = math.floor((i - 1) / Mm) end   -- ids are grouped by record
    local w = lead_mask:unsqueeze(3):expand(N, c.n_leads, S):reshape(N, c.n_leads * S)
    w = w:index_select(1, wb.tensor(rec, "i64"))
    total = Ls.masked_mse(pred, target, w)
    parts.recon = total:item()
  else
    error("ssl_objective: the encoder was built without a pretraining head (objective 'none')", 2)
  end
  if (o.cmsc_weight or 1) > 0 then
    local lc = Ls.cmsc(out.pooled, groups, { temperature = o.cmsc_temperature or 0.1 })
    total = total + lc * (o.cmsc_weight or 1)
    parts.cmsc = lc:item()
  end
  parts.total = total:item()
  return total, parts
end

return M
