-- tests/test_ecg_encoder.lua: the ECG-FM encoder (lua/ecgwb/models/ecg_encoder.lua)
-- with its pretraining objective: shapes over lengths and lead subsets,
-- lead-mask invariance, parameter counts (base = ECG-FM's 90,883,072), the
-- whole objective finite with a gradient for every parameter, the
-- quantizer's codevector choice, the masks, CMSC learning, and a short
-- pretraining run whose loss must fall. The losses alone: tests/test_losses.lua.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local E = require "ecgwb.models.ecg_encoder"
local L = wb.losses

wb.manual_seed(7)

local function all_leads(B) return wb.ones(B, 12) end
local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

------------------------------------------------------------------ shapes
do
  local enc = E.EcgEncoder("tiny")
  enc:eval()
  for _, case in ipairs { { 2, 16 }, { 3, 100 }, { 1, 1250 }, { 2, 2500 }, { 2, 1257 } } do
    local B, len = case[1], case[2]
    local lm = E.random_lead_mask(B, 0.5)
    local out = wb.no_grad(function() return enc(wb.randn(B, 12, len), lm) end)
    local Tn = math.floor(len / 16)
    T.ok(out.frames:size(1) == B and out.frames:size(2) == Tn and out.frames:size(3) == 64,
      "frames of L=" .. len .. ": " .. out.frames:describe())
    T.ok(out.pooled:size(1) == B and out.pooled:size(2) == 64 and out.pooled:dim() == 2, "pooled: " .. out.pooled:describe())
    T.ok(out.features:size(2) == Tn and out.features:size(3) == 64, "features: " .. out.features:describe())
    T.close(out.pooled, out.frames:mean(2), 1e-6, "pooled is the mean of the frames")
  end
  -- no lead mask = all present
  local x = wb.randn(2, 12, 160)
  local a = wb.no_grad(function() return enc(x).pooled end)
  local b = wb.no_grad(function() return enc(x, all_leads(2)).pooled end)
  T.close(a, b, 1e-6, "no lead mask is all leads present")
  T.fails(function() enc(wb.randn(2, 8, 160)) end, "expected x (B, 12, L)")
  T.fails(function() enc(wb.randn(2, 12, 8)) end, "need at least 16 samples")
  T.fails(function() enc(x, wb.ones(3, 12)) end, "lead_mask must be (2, 12)")
  T.fails(function() enc(x, nil, { mask = wb.zeros(2, 5) }) end, "frame mask must be (2, 10)")
  T.fails(function() E.EcgEncoder { base = "tiny", objetcive = "x" } end, "unknown config key")
  T.fails(function() E.EcgEncoder("huge") end, "unknown config 'huge'")
end

------------------------------------------------------------------ lead mask
do
  local enc = E.EcgEncoder("tiny")
  enc:eval()
  local B, len = 3, 320
  local lm = wb.tensor { { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
                         { 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1 },
                         { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1 } }
  local x1 = wb.randn(B, 12, len)
  -- x2: the same present leads, anything in the missing ones
  local x2 = x1 * lm:unsqueeze(3) + wb.randn(B, 12, len) * 5 * (1 - lm:unsqueeze(3))
  local o1 = wb.no_grad(function() return enc(x1, lm) end)
  local o2 = wb.no_grad(function() return enc(x2, lm) end)
  T.ok(T.relerr(x1, x2) > 0.1, "the inputs really differ")
  T.close(o2.frames, o1.frames, 0, "values of masked leads do not change the frames")
  T.close(o2.pooled, o1.pooled, 0, "values of masked leads do not change the pooled embedding")
  -- the lead embedding tells present-and-zero from missing
  local lm_all = all_leads(B)
  local z = x1 * lm:unsqueeze(3)
  local oz = wb.no_grad(function() return enc(z, lm_all) end)
  T.ok(T.relerr(oz.pooled, o1.pooled) > 1e-3, "zero-valued present leads differ from missing leads (lead embedding)")
  local plain = E.EcgEncoder { base = "tiny", lead_embedding = false }
  plain:eval()
  local p1 = wb.no_grad(function() return plain(z, lm) end)
  local p2 = wb.no_grad(function() return plain(z, lm_all) end)
  T.close(p1.pooled, p2.pooled, 1e-6, "without the lead embedding only the zeroing remains")
end

------------------------------------------------------------------ parameter counts
do
  for _, name in ipairs { "tiny", "small" } do
    for _, obj in ipairs { "contrastive", "reconstruct", "none" } do
      for _, mode in ipairs { "default", "layer_norm" } do
        local c = { base = name, objective = obj, extractor_mode = mode }
        local enc = E.EcgEncoder(c)
        T.ok(enc:num_parameters() == E.count_parameters(c),
          string.format("%s/%s/%s: built %d, formula %d", name, obj, mode, enc:num_parameters(), E.count_parameters(c)))
      end
    end
  end
  -- ECG-FM (wav2vec 2.0 base shapes on 12 leads), by hand from the shapes:
  -- conv 6,144 + 3 x 131,072; GroupNorm 512; LayerNorm 512; proj 197,376;
  -- mask_emb 768; pos_conv 4,718,592 + 768 + 128; 12 x 7,087,872; final LN
  -- 1,536; quantizer 81,920 + 164,480; project_q 65,792; final_proj 196,864
  local ECG_FM = 6144 + 3 * 131072 + 512 + 512 + 197376 + 768 + 4718592 + 768 + 128
    + 12 * 7087872 + 1536 + 81920 + 164480 + 65792 + 196864
  T.ok(ECG_FM == 90883072, "hand sum " .. ECG_FM)
  T.ok(E.count_parameters { base = "base", lead_embedding = false } == 90883072, "base formula without lead embedding")
  T.ok(E.count_parameters("base") == 90883072 + 12 * 768, "base formula with the lead embedding")
  local t0 = wb.now()
  local base = E.EcgEncoder { base = "base", lead_embedding = false }
  local n = base:num_parameters()
  print(string.format("base encoder: %d parameters (ECG-FM: 90.9M), built in %.1f s, %.0f MB", n, wb.now() - t0,
    wb.memory().current / 1e6))
  T.ok(n == 90883072, "base built: " .. n .. " parameters, ECG-FM has 90,883,072")
  local named = {}
  for _, np in ipairs(base:named_parameters()) do named[np[1]] = np[2] end
  T.ok(named["pos_conv_v"]:size(2) == 48 and named["pos_conv_v"]:size(3) == 128, "pos_conv (768, 48, 128)")
  T.ok(named["encoder.layers.11.linear1.weight"]:size(1) == 3072, "12 layers with FFN 3072")
  T.ok(named["quantizer.vars"]:size(1) == 2 and named["quantizer.vars"]:size(2) == 320, "2 x 320 codevectors")
  base, named = nil, nil
  collectgarbage(); collectgarbage()
end

------------------------------------------------------------------ the whole objective: finite, every parameter gets a gradient
do
  for _, obj in ipairs { "contrastive", "reconstruct" } do
    local enc = E.EcgEncoder { base = "tiny", objective = obj }
    local x = wb.randn(8, 12, 640)
    local loss, parts = E.ssl_objective(enc, x, { 1, 1, 2, 2, 3, 3, 4, 4 }, { num_negatives = 10 })
    T.ok(finite(loss:item()), obj .. ": loss finite " .. loss:item())
    for k, v in pairs(parts) do T.ok(finite(v), obj .. ": part " .. k .. " finite") end
    loss:backward()
    local missing, nonfinite = {}, {}
    for _, np in ipairs(enc:named_parameters()) do
      local gr = np[2].grad
      if gr == nil or gr:abs():sum():item() == 0 then missing[#missing + 1] = np[1]
      elseif not finite(gr:abs():sum():item()) then nonfinite[#nonfinite + 1] = np[1] end
    end
    T.ok(#missing == 0, obj .. ": parameters without gradient: " .. table.concat(missing, ", "))
    T.ok(#nonfinite == 0, obj .. ": non-finite gradients: " .. table.concat(nonfinite, ", "))
  end
  local enc = E.EcgEncoder { base = "tiny", objective = "none" }
  T.fails(function() E.ssl_objective(enc, wb.randn(2, 12, 160), { 1, 1 }) end, "without a pretraining head")
end

------------------------------------------------------------------ quantizer
do
  local q = E.GumbelQuantizer(3, 2, 4, 6)                       -- C=3, G=2, V=4, codevectors of 3
  -- logits = x W^T: group 1 uses x[1] to pick code x-index, group 2 uses x[2]
  local W = wb.zeros(8, 3)
  for v = 1, 4 do W:set(v, 1, v - 2.5); W:set(4 + v, 2, 2.5 - v) end
  wb.no_grad(function() q.weight_proj.weight:copy_(W) end)
  local x = wb.tensor { { 1, 1, 0 }, { -1, -1, 0 }, { 1, -1, 0 } }
  -- x1 > 0 -> group 1 picks code 4 (id 3); x1 < 0 -> code 1 (id 0); group 2 the opposite of x2
  local want_ids = { { 3, 0 }, { 0, 3 }, { 3, 3 } }
  q:eval()
  local out = q(x)
  local ids = out.ids:totable()
  local vars = q.vars:tolist()
  local qv = out.q:tolist()
  local ok = true
  for n = 1, 3 do
    for g = 1, 2 do
      if ids[(n - 1) * 2 + g] ~= want_ids[n][g] then ok = false end
      for d = 1, 3 do
        if math.abs(qv[n][(g - 1) * 3 + d] - vars[g][want_ids[n][g] + 1][d]) > 1e-6 then ok = false end
      end
    end
  end
  T.ok(ok, "eval: each group takes the codevector of its argmax logit")
  T.ok(out.perplexity >= 1 and out.perplexity <= 8, "perplexity in [1, G·V]: " .. out.perplexity)
  -- training: a hard Gumbel choice (the output is exactly a codevector) with a straight-through gradient
  q:train()
  q.tau = 1
  local x2 = wb.randn(16, 3)
  local o2 = q(x2)
  local i2, q2 = o2.ids:totable(), o2.q:tolist()
  local exact = true
  for n = 1, 16 do
    for g = 1, 2 do
      for d = 1, 3 do
        if math.abs(q2[n][(g - 1) * 3 + d] - vars[g][i2[(n - 1) * 2 + g] + 1][d]) > 1e-5 then exact = false end
      end
    end
  end
  T.ok(exact, "train: the output is the chosen codevectors")
  o2.q:sum():backward()
  T.ok(q.weight_proj.weight.grad ~= nil and q.weight_proj.weight.grad:abs():sum():item() > 0,
    "straight-through: the selection logits get a gradient")
  T.ok(q.vars.grad:abs():sum():item() > 0, "the codevectors get a gradient")
  -- Gumbel noise makes the training choice random but logit-driven: strong logits win
  q.tau = 1
  local strong = wb.tensor { { 20, 20, 0 } }:expand(64, 3):contiguous()
  local o3 = q(strong)
  local agree = 0
  for _, v in ipairs(o3.ids:totable()) do if v == 3 or v == 0 then agree = agree + 1 end end
  T.ok(agree == 128, "strong logits dominate the Gumbel noise: " .. agree .. "/128")
end

------------------------------------------------------------------ masks
do
  local B, Tn = 16, 78
  local m = E.span_mask(B, Tn, 0.65, 5)
  local rows = m:tolist()
  local counts, frac = {}, 0
  for b = 1, B do
    local n = 0
    for t = 1, Tn do n = n + rows[b][t] end
    counts[b] = n
    frac = frac + n / (B * Tn)
  end
  local same = true
  for b = 2, B do same = same and counts[b] == counts[1] end
  T.ok(same, "every record has the same number of masked frames")
  -- wav2vec 2.0 with p = 0.65 and overlapping spans masks about half the frames
  T.ok(frac > 0.3 and frac < 0.65, "masked fraction " .. frac)
  -- one record (nothing dropped to equalise counts): every masked run is
  -- one or more whole spans of 5 frames
  local short, nrun = 0, 0
  for rep = 1, 20 do
    local row = E.span_mask(1, Tn, 0.65, 5):totable()
    local r = 0
    for t = 1, Tn + 1 do
      if t <= Tn and row[t] == 1 then r = r + 1
      elseif r > 0 then
        nrun = nrun + 1
        if r < 5 then short = short + 1 end
        r = 0
      end
    end
  end
  T.ok(nrun > 0 and short == 0, short .. " of " .. nrun .. " masked runs are shorter than a span")

  local lm = E.random_lead_mask(2000, 0.5):tolist()
  local none, kept = 0, 0
  for b = 1, 2000 do
    local n = 0
    for l = 1, 12 do n = n + lm[b][l] end
    if n == 0 then none = none + 1 end
    kept = kept + n / (2000 * 12)
  end
  T.ok(none == 0, "every record keeps at least one lead")
  T.ok(math.abs(kept - 0.5) < 0.02, "each lead kept with probability 0.5: " .. kept)
end

------------------------------------------------------------------ CMSC learns
do
  wb.manual_seed(11)
  local enc = E.EcgEncoder { base = "tiny", objective = "none" }
  -- toy set: 8 simulated records of 2 s at 250 Hz with different rates, each cut into two 1 s segments
  local segs, groups = {}, {}
  for r = 1, 8 do
    local x = wb.sim.ecg { fs = 250, seconds = 2, hr = 50 + 12 * r, seed = 3, index = r }
    segs[#segs + 1] = x:narrow(2, 1, 250)
    segs[#segs + 1] = x:narrow(2, 251, 250)
    groups[2 * r - 1], groups[2 * r] = r, r
  end
  local x = wb.stack(segs, 1)
  local function gap()
    enc:eval()
    local z = wb.no_grad(function() return wb.normalize(enc(x).pooled, -1) end)
    enc:train()
    local s = wb.matmul(z, z:t()):tolist()
    local pos, neg, np, nn_ = 0, 0, 0, 0
    for i = 1, 16 do
      for j = 1, 16 do
        if i ~= j then
          if groups[i] == groups[j] then pos, np = pos + s[i][j], np + 1 else neg, nn_ = neg + s[i][j], nn_ + 1 end
        end
      end
    end
    return pos / np - neg / nn_
  end
  local before = gap()
  local opt = wb.optim.AdamW(enc:parameters(), { lr = 2e-3 })
  for _ = 1, 30 do
    local loss = L.cmsc(enc(x).pooled, groups)
    opt:zero_grad(); loss:backward(); opt:step()
  end
  local after = gap()
  print(string.format("CMSC toy set: positive-minus-negative cosine %.3f before, %.3f after 30 steps", before, after))
  T.ok(after > before + 0.5, string.format("CMSC separates positives: gap %.3f -> %.3f", before, after))
end

------------------------------------------------------------------ a tiny pretraining run
-- masked reconstruction with lead and span masking on 8 simulated segments:
-- the reconstruction loss must fall by a factor of 4 in 40 steps (measured: 8.6)
do
  wb.manual_seed(5)
  local enc = E.EcgEncoder { base = "tiny", objective = "reconstruct" }
  local opt = wb.optim.AdamW(enc:parameters(), { lr = 2e-3, weight_decay = 0.01 })
  local segs = {}
  for r = 1, 8 do segs[r] = wb.sim.ecg { fs = 250, seconds = 2, hr = 50 + 10 * r, seed = 4, index = r } end
  local x, groups = wb.stack(segs, 1), { 1, 2, 3, 4, 5, 6, 7, 8 }
  local first, last = 0, 0
  local steps = 40
  for step = 1, steps do
    local loss = E.ssl_objective(enc, x, groups, { cmsc_weight = 0 })
    opt:zero_grad(); loss:backward(); wb.optim.clip_grad_norm(enc:parameters(), 1); opt:step()
    if step <= 5 then first = first + loss:item() / 5 end
    if step > steps - 5 then last = last + loss:item() / 5 end
  end
  print(string.format("tiny pretraining (reconstruction) on 8 segments: loss %.4f (first 5 steps) -> %.4f (last 5), factor %.2f",
    first, last, first / last))
  T.ok(first / last > 4, string.format("pretraining loss falls by a factor > 4: %.4f -> %.4f", first, last))
end

T.done()
