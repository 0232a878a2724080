-- test_clip.lua: the ECG-text contrastive model (lua/ecgwb/models/clip.lua).
-- The symmetric InfoNCE against a hand computation in doubles, the learned
-- logit scale's gradient (finite differences of the hand formula) and its
-- clamp, recall@k against a brute-force count, the zero-shot scores against
-- their definition, save/load, bad inputs, and a micro CLIP trained for a
-- few dozen steps on three simulated conditions with their reports that
-- classifies held-out records zero-shot far above chance.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local clip = require "ecgwb.models.clip"
local optim = wb.optim

wb.manual_seed(7)

-- rows of a (N, P) tensor as Lua tables of doubles
local function rows(t)
  local n, p, v = t:size(1), t:size(2), t:totable()
  local out = {}
  for i = 1, n do
    out[i] = {}
    for j = 1, p do out[i][j] = v[(i - 1) * p + j] end
  end
  return out
end
local function dot(a, b)
  local s = 0
  for j = 1, #a do s = s + a[j] * b[j] end
  return s
end

-- symmetric InfoNCE by hand: logits s a_i . b_j; mean over rows of
-- -log softmax(row)[i] and over columns of -log softmax(column)[j]
local function hand_info_nce(a, b, s)
  local B = #a
  local L = {}
  for i = 1, B do
    L[i] = {}
    for j = 1, B do L[i][j] = s * dot(a[i], b[j]) end
  end
  local r, c = 0, 0
  for i = 1, B do
    local zr, zc = 0, 0
    for j = 1, B do zr, zc = zr + math.exp(L[i][j]), zc + math.exp(L[j][i]) end
    r = r - (L[i][i] - math.log(zr))
    c = c - (L[i][i] - math.log(zc))
  end
  return (r / B + c / B) / 2
end

------------------------------------------------------------------ the loss
do
  local B, P = 6, 5
  local ze, zt = wb.normalize(wb.randn(B, P)), wb.normalize(wb.randn(B, P))
  local s = 7.5
  local loss = clip.info_nce(ze, zt, s)
  T.close(loss:item(), hand_info_nce(rows(ze), rows(zt), s), 1e-5, "info_nce = hand computation")
  -- near-perfect pairs give a small loss, swapped pairs a large one
  local good = clip.info_nce(ze, ze, 20):item()
  local bad = clip.info_nce(ze, ze:index_select(1, wb.tensor({ 1, 2, 3, 4, 5, 0 }, "i64")), 20):item()
  T.ok(good < 0.5 and bad > 2, string.format("aligned pairs %.3f < 0.5, shifted pairs %.3f > 2", good, bad))
end

------------------------------------------------------------------ a small model
local reports = {
  "Sinus rhythm at 72 bpm. Normal ECG.", "Atrial fibrillation with a ventricular rate of 110 bpm. Abnormal ECG.",
  "Complete left bundle branch block. Abnormal tracing.", "Sinus bradycardia at 48 bpm.",
}
local tok = wb.tokenizer.train(reports, { vocab_size = 300 })
local micro_ecg = { base = "tiny", conv_channels = 16, n_conv = 3, d_model = 32, layers = 1, ffn = 64, heads = 2,
  pos_kernel = 8, pos_groups = 2 }
local micro_text = { base = "tiny", n_layer = 1, n_embd = 32, n_head = 2 }
local function micro(seed)
  wb.manual_seed(seed)
  return clip.CLIP { ecg = micro_ecg, text = micro_text, vocab_size = tok:vocab_size(), proj_dim = 16, text_block_size = 64 }
end

do -- CLIP:loss is info_nce of the two towers at the clamped scale
  local m = micro(1)
  local x = wb.randn(4, 12, 80)
  local ids, mask = tok:encode_batch(reports)
  local loss, info = m:loss(x, ids, mask)
  local ze, zt = m:encode_ecg(x), m:encode_text(ids, mask)
  T.close(loss:item(), hand_info_nce(rows(ze), rows(zt), 1 / 0.07), 1e-5, "CLIP:loss at the initial scale 1/0.07")
  T.close(info.scale, 1 / 0.07, 1e-6, "initial scale")
  T.close(ze:square():sum(2), wb.ones(4), 1e-5, "ECG embeddings are unit rows")
  T.close(zt:square():sum(2), wb.ones(4), 1e-5, "text embeddings are unit rows")
  T.ok(ze:size(2) == 16 and zt:size(2) == 16, "both projected to proj_dim")

  -- the logit scale gets the gradient of the hand formula (central differences in t)
  loss:backward()
  local g = m.logit_scale.grad
  T.ok(g ~= nil, "logit_scale has a gradient")
  local a, b, t = rows(ze:detach()), rows(zt:detach()), m.logit_scale:item()
  local h = 1e-4
  local fd = (hand_info_nce(a, b, math.exp(t + h)) - hand_info_nce(a, b, math.exp(t - h))) / (2 * h)
  T.close(g:item(), fd, 1e-3, "d loss / d logit_scale = finite differences")
  T.ok(math.abs(fd) > 1e-3, "the finite-difference gradient is not trivially 0: " .. fd)

  -- above the bound: scale 100, no gradient; clamp_logit_scale_ puts it back
  wb.no_grad(function() m.logit_scale:fill_(5.5) end)
  m:zero_grad()
  local l2, info2 = m:loss(x, ids, mask)
  T.close(info2.scale, 100, 1e-5, "scale clamped to 100 in the forward")
  T.close(l2:item(), hand_info_nce(a, b, 100), 1e-4, "loss at the clamped scale")
  l2:backward()
  T.ok(m.logit_scale.grad == nil or m.logit_scale.grad:abs():item() == 0, "no gradient past the clamp")
  m:clamp_logit_scale_()
  T.close(m.logit_scale:item(), math.log(100), 1e-6, "clamp_logit_scale_ to log 100")
  wb.no_grad(function() m.logit_scale:fill_(-2) end)
  m:clamp_logit_scale_()
  T.ok(m.logit_scale:item() == 0, "clamp_logit_scale_ to 0 from below")
  T.ok(m.logit_scale.requires_grad, "logit_scale still a parameter after the clamp")
  local found = false
  for _, p in ipairs(m:parameters()) do if p == m.logit_scale then found = true end end
  T.ok(found, "logit_scale is among the parameters the optimiser sees")

  -- bad inputs
  T.fails(function() m:loss(wb.randn(3, 12, 80), ids, mask) end, "batch sizes differ", "loss with 3 ECGs and 4 texts")
  T.fails(function() m:loss(x, ids, mask:narrow(1, 1, 2)) end, "mask", "mask of the wrong shape")
  T.fails(function() clip.info_nce(wb.randn(3, 16), wb.randn(4, 16), 1) end, "must both be (B, P)", "info_nce shapes")
  T.fails(function() clip.recall_at_k(wb.randn(3, 16), wb.randn(4, 16)) end, "same N and P", "recall_at_k shapes")
  T.fails(function() clip.CLIP { ecg = "tiny" } end, "vocab_size", "CLIP without vocab_size")
  T.fails(function() clip.CLIP { vocab_size = 300, colour = 1 } end, "unknown config key 'colour'", "unknown key")
  T.fails(function() clip.zero_shot(m, tok, x, { { "a" }, {} }) end, "non-empty list of prompts", "empty prompt list")
  T.fails(function() clip.zero_shot(m, tok, x, { { "a" }, { "b" } }, { negatives = { { "c" } } }) end,
    "2 labels have prompts but 1 have negatives", "negatives per label")
  T.fails(function() clip.load("/nonexistent/clip_dir") end, "clip.load", "load from a missing directory")

  -- zero-shot scores = the definition (unit mean of unit prompt embeddings)
  m:eval()
  local prompts = { { "Normal ECG.", "Sinus rhythm." }, { "Atrial fibrillation." } }
  local negs = { "Abnormal ECG." }
  local s = clip.zero_shot(m, tok, x, prompts, { negatives = negs })
  local ze2 = wb.no_grad(function() return m:encode_ecg(x) end)
  local function cvec(list)
    local z = wb.no_grad(function() return m:encode_text(tok:encode_batch(list)) end)
    local v = rows(z)
    local mean = {}
    for j = 1, #v[1] do
      mean[j] = 0
      for i = 1, #v do mean[j] = mean[j] + v[i][j] / #v end
    end
    local n = math.sqrt(dot(mean, mean))
    for j = 1, #mean do mean[j] = mean[j] / n end
    return mean
  end
  local c1, c2, cn = cvec(prompts[1]), cvec(prompts[2]), cvec(negs)
  local e, want = rows(ze2), {}
  for i = 1, #e do want[#want + 1] = { dot(e[i], c1) - dot(e[i], cn), dot(e[i], c2) - dot(e[i], cn) } end
  T.close(s, wb.tensor(want), 1e-4, "zero-shot scores = cos(class) - cos(negative)")

  -- save / load round trip
  local dir = os.tmpname()
  os.remove(dir)
  clip.save(m, tok, dir)
  local m2, tok2 = clip.load(dir)
  T.close(wb.no_grad(function() return m2:encode_ecg(x) end), ze2, 1e-6, "loaded model: same ECG embeddings")
  T.close(wb.no_grad(function() return m2:encode_text(tok2:encode_batch(reports)) end),
    wb.no_grad(function() return m:encode_text(tok:encode_batch(reports)) end), 1e-6, "loaded model and tokenizer: same text embeddings")
  os.execute("rm -rf '" .. dir .. "'")
end

------------------------------------------------------------------ amplitude features
do
  -- per lead log RMS and log peak-to-peak against a hand loop
  local B, L, n = 2, 12, 30
  local x = wb.randn(B, L, n) * 0.3
  local xv = x:totable()
  local f = clip.amplitude_features(x)
  T.ok(f:dim() == 2 and f:size(1) == B and f:size(2) == 2 * L, "amplitude_features is (B, 24): " .. f:describe())
  local fv, want = f:totable(), {}
  for b = 1, B do
    local row = {}
    for l = 1, L do
      local ss, mx, mn = 0, -math.huge, math.huge
      for t = 1, n do
        local v = xv[((b - 1) * L + (l - 1)) * n + t]
        ss, mx, mn = ss + v * v, math.max(mx, v), math.min(mn, v)
      end
      row[l], row[L + l] = 0.5 * math.log(ss / n + 1e-6), math.log(mx - mn + 1e-3)
    end
    want[b] = row
  end
  T.close(f, wb.tensor(want), 1e-5, "amplitude_features = hand log RMS and log peak-to-peak")
  local lm = wb.ones(B, L)
  lm:narrow(2, 3, 1):fill_(0)
  local fm = clip.amplitude_features(x, lm):totable()
  T.ok(fm[3] == 0 and fm[L + 3] == 0 and fm[2 * L + 3] == 0, "missing leads get zero amplitude features")
  T.close(fm[4], fv[4], 1e-6, "present leads keep theirs")
  T.fails(function() clip.amplitude_features(wb.randn(3, 12)) end, "expected x (B, leads, L)", "amplitude_features on 2-D input")

  -- the ECG tower alone is nearly blind to a global gain (the extractor's
  -- GroupNorm divides it out); with amplitude = true the embedding sees it
  local function cosines(amp)
    wb.manual_seed(5)
    local m = clip.CLIP { ecg = micro_ecg, text = micro_text, vocab_size = tok:vocab_size(), proj_dim = 16,
      text_block_size = 64, amplitude = amp }
    m:eval()
    local xe = wb.randn(3, 12, 80)
    return wb.no_grad(function() return (m:encode_ecg(xe) * m:encode_ecg(xe * 3)):sum(2):min():item() end), m, xe
  end
  local c_off = cosines(false)
  local c_on, m, xe = cosines(true)
  T.ok(c_off > 0.999, string.format("without amplitude features x and 3x embed alike (cos %.5f)", c_off))
  T.ok(c_on < 0.99, string.format("with amplitude features they differ (cos %.5f)", c_on))
  T.ok(m.amp_proj ~= nil and m.amp_proj.weight:size(2) == 24, "amp_proj is Linear(24, P)")
  local want_z = wb.no_grad(function()
    return wb.normalize(m.ecg_proj(m.ecg(xe).pooled) + m.amp_proj(clip.amplitude_features(xe)))
  end)
  T.close(wb.no_grad(function() return m:encode_ecg(xe) end), want_z, 1e-6, "encode_ecg = normalize(ecg_proj + amp_proj)")
  m:train()
  local ids, mask = tok:encode_batch({ reports[1], reports[2], reports[3] })
  m:loss(xe, ids, mask):backward()
  T.ok(m.amp_proj.weight.grad ~= nil and m.amp_proj.weight.grad:abs():sum():item() > 0, "amp_proj gets a gradient")
  local dir = os.tmpname()
  os.remove(dir)
  clip.save(m, tok, dir)
  local m2 = clip.load(dir)
  T.ok(m2.amp_proj ~= nil, "a loaded amplitude model has its amp_proj")
  T.close(wb.no_grad(function() return m2:encode_ecg(xe) end), wb.no_grad(function() m:eval(); return m:encode_ecg(xe) end),
    1e-6, "loaded amplitude model: same ECG embeddings")
  os.execute("rm -rf '" .. dir .. "'")
end

------------------------------------------------------------------ recall@k
do
  local N, P = 40, 8
  local ze, zt = wb.normalize(wb.randn(N, P)), wb.normalize(wb.randn(N, P))
  zt = wb.normalize(zt * 0.7 + ze)                             -- correlated, so recall is neither 0 nor 1
  local ks = { 1, 5, 10 }
  local r = clip.recall_at_k(ze, zt, ks)
  local a, b = rows(ze), rows(zt)
  for _, k in ipairs(ks) do
    local he, ht = 0, 0
    for i = 1, N do
      local ce, ct = 0, 0                                      -- better candidates than the pair
      for j = 1, N do
        if dot(a[i], b[j]) > dot(a[i], b[i]) then ce = ce + 1 end
        if dot(a[j], b[i]) > dot(a[i], b[i]) then ct = ct + 1 end
      end
      if ce < k then he = he + 1 end
      if ct < k then ht = ht + 1 end
    end
    T.close(r.ecg_to_text[k], he / N, 1e-12, "ECG->text recall@" .. k .. " = brute force")
    T.close(r.text_to_ecg[k], ht / N, 1e-12, "text->ECG recall@" .. k .. " = brute force")
  end
  T.ok(r.ecg_to_text[1] > 0 and r.ecg_to_text[1] < 1, "recall@1 strictly between 0 and 1: " .. r.ecg_to_text[1])
  local perfect = clip.recall_at_k(ze, ze, { 1 })
  T.ok(perfect.ecg_to_text[1] == 1 and perfect.text_to_ecg[1] == 1, "identical embeddings: recall@1 = 1")
  -- a text duplicated for two ECGs: ties count in the pair's favour
  local zd = ze:clone()
  zd:narrow(1, 2, 1):copy_(ze:narrow(1, 1, 1))
  local rd = clip.recall_at_k(zd, zd, { 1 })
  T.ok(rd.ecg_to_text[1] == 1, "tied candidates do not push a pair down")
end

------------------------------------------------------------------ sentences
do
  local s = clip.sentences("PR 150 ms, low voltage (0.45 mV). Sinus rhythm.  Abnormal ECG.")
  T.ok(#s == 3 and s[1] == "PR 150 ms, low voltage (0.45 mV)." and s[3] == "Abnormal ECG.", "sentences: " .. table.concat(s, "|"))
  T.ok(clip.drop_sentences("A b. C d. E f.", 0.5, { 0.1, 0.9, 0.2, 0 }) == "A b. E f.", "drop_sentences keeps u < keep")
  T.ok(clip.drop_sentences("A b. C d.", 0.5, { 0.9, 0.9, 0.7 }) == "C d.", "drop_sentences keeps one when all drop")
  T.fails(function() clip.drop_sentences("A b. C d.", 0.5, { 0.1 }) end, "2 sentences need 3 uniforms", "too few uniforms")
end

------------------------------------------------------------------ a micro CLIP learns three conditions
do
  local conds = {
    { name = "normal", o = { hr = 70 }, prompts = { "Normal ECG.", "Sinus rhythm." } },
    { name = "afib", o = { rhythm = "afib", hr = 110 }, prompts = { "Atrial fibrillation.", "ECG showing atrial fibrillation." } },
    { name = "lbbb", o = { bbb = "left", hr = 70 }, prompts = { "Left bundle branch block.", "ECG showing left bundle branch block." } },
  }
  local function make(n_per, index0)
    local list, cls = {}, {}
    for i = 1, n_per do
      for c, cd in ipairs(conds) do
        local o = { fs = 100, seconds = 4, seed = 11, index = index0 + #list, noise = { emg = 30 } }
        for k, v in pairs(cd.o) do o[k] = v end
        o.hr = o.hr + ((i * 7) % 21) - 10
        list[#list + 1], cls[#cls + 1] = o, c
      end
    end
    local b = wb.sim.batch(list)
    -- the report without its measurement sentence (the one with "ms"), as the recipe's sentence dropping would often leave it
    local texts = {}
    for i, r in ipairs(b.report) do
      local keep = {}
      for _, s in ipairs(clip.sentences(r)) do if not s:find(" ms") then keep[#keep + 1] = s end end
      texts[i] = table.concat(keep, " ")
    end
    return b.ecg, texts, cls
  end
  local xtr, rtr, _ = make(16, 0)        -- 48 records
  local xte, _, cte = make(10, 1000)     -- 30 held-out records
  local tk = wb.tokenizer.train(rtr, { vocab_size = 300 })
  wb.manual_seed(3)
  local m = clip.CLIP { ecg = micro_ecg, text = micro_text, vocab_size = tk:vocab_size(), proj_dim = 16, text_block_size = 128 }
  local opt = optim.AdamW(m:parameters(), { lr = 1e-3, weight_decay = 0 })
  local ids, mask = tk:encode_batch(rtr)
  local N, bs = xtr:size(1), 24
  local first, last
  local STEPS = 40
  for step = 1, STEPS do
    local idx = wb.randperm(N):narrow(1, 1, bs)
    local loss = m:loss(xtr:index_select(1, idx), ids:index_select(1, idx), mask:index_select(1, idx))
    opt:zero_grad(); loss:backward(); opt:step(); m:clamp_logit_scale_()
    first = first or loss:item()
    last = loss:item()
  end
  local prompts = {}
  for c, cd in ipairs(conds) do prompts[c] = cd.prompts end
  local s = clip.zero_shot(m, tk, xte, prompts)                   -- (30, 3)
  local pred = s:argmax(2):totable()
  local right = 0
  for i = 1, #cte do if pred[i] + 1 == cte[i] then right = right + 1 end end
  local acc = right / #cte
  print(string.format("micro CLIP, %d steps: loss %.3f -> %.3f, zero-shot accuracy %.2f on %d held-out records (chance 0.33)",
    STEPS, first, last, acc, #cte))
  T.ok(last < first - 0.3, string.format("training lowers the loss: %.3f -> %.3f", first, last))
  T.ok(acc >= 0.7, string.format("zero-shot accuracy %.2f >= 0.7 (chance 1/3)", acc))
end

T.done()
