--[[ ecgwb.probe: the pieces of a linear-probe / fine-tuning evaluation of an
ECG encoder on multi-label classification (recipes/linear_probe.lua and
recipes/finetune.lua use them).

  local P = wb.probe
  local h = P.pool(enc, x, lead_mask, pool)           -- (B, D') with autograd, for fine-tuning
  local Z = P.embed(enc, x, { pool = { "frames_mean", "frames_max", "amplitude" } }) -- (N, D') frozen
  local rows = P.label_fraction(labels, 0.01, 7)     -- seeded, >= 1 positive per label where possible
  local m = P.fit_logistic(Ztr, Ytr, { l2 = 1e-3 })  -- one logistic regression per label
  local best = P.fit_probe(Ztr, Ytr, Zva, Yva)       -- l2 picked on validation macro AUROC
  local s = P.predict(m, Z)                          -- (N, K) probabilities
  local r = P.evaluate(s_test, y_test, P.f1_thresholds(s_val, y_val))

embed: the encoder in eval mode under wb.no_grad, in batches; the record
embedding is the concatenation, in the order given, of
  frames_mean   mean over time of the transformer's output frames (B, D):
                the encoder's own pooled embedding (ECG-FM's downstream input)
  frames_max    max over time of the same frames (B, D)
  features_mean mean over time of the conv feature extractor's output (B, C)
  features_max  max over time of the same (B, C)
  amplitude     log RMS over time of each channel of the first conv layer,
                before its GroupNorm (B, C): the per-record scale that the
                GroupNorm (and the LayerNorms after it) divide out.
Default pool: { "frames_mean" }.

fit_logistic: multi-label logistic regression, one independent binary head
per label, on standardised embeddings (mean and SD of each embedding
dimension over the training rows, so amplitude differences between records
are kept). Loss per label: mean over records of w_i BCE(z_i·w + b, y_i), plus
l2/2 · ||w||², minimised full batch with Adam (steps, lr, cosine decay).
balanced = true weighs positives by n_neg/n_pos (sklearn's class_weight
"balanced" up to a common factor). Several l2 values are fitted at once as
separate columns (the problem separates by column).

label_fraction: n = max(1, round(frac · N)) rows. Labels are visited from
the rarest; for a label with no positive among the rows chosen so far, the
first of its positives in a seeded permutation is added (while fewer than n
are chosen); the remaining rows are the permutation's first unchosen ones.
The global RNG state is restored afterwards.

evaluate: macro AUROC and AUPRC (wb.metrics, over the labels with both
classes) and F1 per label at a threshold per label, chosen on validation
(f1_thresholds: the validation score maximising that label's F1); macro F1
is the mean over the labels with positives (NaN for a label without, as
AUROC and AUPRC).
]]
local wb = require "ecgwb"

local M = {}

local function check_opts(o, known, name)
  o = o or {}
  for k in pairs(o) do
    if not known[k] then error("probe." .. name .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return o
end

------------------------------------------------------------------ embeddings
M.pools = { frames_mean = true, frames_max = true, features_mean = true, features_max = true, amplitude = true }

-- the pooled embedding of one batch, with autograd (fine-tuning uses it):
-- x (B, 12, L), lead_mask (B, 12) or nil, pool (list) -> (B, D')
-- the encoder checkpoint written by recipes/pretrain_fm.lua --out=file, made
-- first when the file is missing (o.steps pretraining steps on the training
-- records of o.corpus, or the default corpus; no labels). Returns the
-- encoder config { base, objective } and the checkpoint (its .config).
function M.pretrained_encoder(file, o)
  local f = io.open(file, "rb")
  if f then f:close() else
    print(string.format("no pretrained encoder at %s: pretraining one now (pretrain_fm.lua, %d steps on the corpus's training records, no labels)",
      file, o.steps))
    assert(loadfile("recipes/pretrain_fm.lua"))({ steps = o.steps, data = "corpus", corpus = o.corpus, out = file, probe = false })
  end
  local ck = wb.checkpoint.read(file)
  return { base = ck.config.model, objective = ck.config.objective }, ck
end

function M.pool(enc, x, lead_mask, pool)
  local out = enc(x, lead_mask)
  local parts = {}
  for _, p in ipairs(pool) do
    if p == "frames_mean" then parts[#parts + 1] = out.pooled
    elseif p == "frames_max" then parts[#parts + 1] = (out.frames:max(2))
    elseif p == "features_mean" then parts[#parts + 1] = out.features:mean(2)
    elseif p == "features_max" then parts[#parts + 1] = (out.features:max(2))
    elseif p == "amplitude" then
      local xm = lead_mask and x * lead_mask:unsqueeze(3) or x
      local h = enc.conv_layers[1](xm)                              -- (B, C, L/2), before the GroupNorm
      parts[#parts + 1] = (h:square():mean(3) + 1e-8):log() * 0.5
    end
  end
  return #parts == 1 and parts[1] or wb.cat(parts, 2)
end

-- the width of M.pool's output for an encoder
function M.pool_dim(enc, pool)
  if type(pool) == "string" then pool = { pool } end
  local D, C, n = enc.cfg.d_model, enc.cfg.conv_channels, 0
  for _, p in ipairs(pool or { "frames_mean" }) do n = n + ((p == "frames_mean" or p == "frames_max") and D or C) end
  return n
end

-- enc, x (N, 12, L) -> (N, D') f32, no graph. o: pool (list), batch (64), lead_mask (N, 12)
function M.embed(enc, x, o)
  o = check_opts(o, { pool = true, batch = true, lead_mask = true }, "embed")
  local pool = o.pool or { "frames_mean" }
  if type(pool) == "string" then pool = { pool } end
  for _, p in ipairs(pool) do
    if not M.pools[p] then error("probe.embed: unknown pool '" .. tostring(p) .. "' (frames_mean, frames_max, features_mean, features_max, amplitude)", 2) end
  end
  if x:dim() ~= 3 then error("probe.embed: expected x (N, 12, L), got " .. x:describe(), 2) end
  local bs, N = o.batch or 64, x:size(1)
  local was_training = enc.training
  enc:eval()
  local z = wb.no_grad(function()
    local out = {}
    for i = 1, N, bs do
      local n = math.min(bs, N - i + 1)
      out[#out + 1] = M.pool(enc, x:narrow(1, i, n), o.lead_mask and o.lead_mask:narrow(1, i, n), pool)
    end
    return #out == 1 and out[1] or wb.cat(out, 1)
  end)
  if was_training then enc:train() end
  return z
end

------------------------------------------------------------------ label fractions
-- labels (N, K) multi-hot (tensor), frac in (0, 1], seed -> sorted Lua list of 1-based rows
function M.label_fraction(labels, frac, seed)
  if not wb.is_tensor(labels) or labels:dim() ~= 2 then
    error("probe.label_fraction: labels must be an (N, K) tensor", 2)
  end
  if type(frac) ~= "number" or frac <= 0 or frac > 1 then
    error("probe.label_fraction: fraction must be in (0, 1], got " .. tostring(frac), 2)
  end
  local N, K = labels:size(1), labels:size(2)
  local n = math.max(1, math.floor(frac * N + 0.5))
  local st = wb.rng_state()
  wb.manual_seed(seed or 0)
  local perm = wb.randperm(N):totable()
  wb.set_rng_state(st)
  local Y = labels:to("f32"):totable()
  local count, order = {}, {}
  for k = 1, K do
    count[k] = 0
    for i = 1, N do if Y[(i - 1) * K + k] > 0.5 then count[k] = count[k] + 1 end end
    order[k] = k
  end
  table.sort(order, function(a, b) if count[a] ~= count[b] then return count[a] < count[b] end return a < b end)
  local chosen, covered, rows = {}, {}, {}
  local function take(i)
    chosen[i] = true
    rows[#rows + 1] = i
    for k = 1, K do if Y[(i - 1) * K + k] > 0.5 then covered[k] = true end end
  end
  for _, k in ipairs(order) do
    if #rows >= n then break end
    if count[k] > 0 and not covered[k] then
      for _, p in ipairs(perm) do
        local i = p + 1
        if not chosen[i] and Y[(i - 1) * K + k] > 0.5 then take(i); break end
      end
    end
  end
  for _, p in ipairs(perm) do
    if #rows >= n then break end
    if not chosen[p + 1] then take(p + 1) end
  end
  table.sort(rows)
  return rows
end

-- rows (Lua list, 1-based) -> i64 tensor of 0-based indices
function M.index(rows)
  local t = {}
  for i, r in ipairs(rows) do t[i] = r - 1 end
  return wb.tensor(t, "i64")
end

------------------------------------------------------------------ logistic regression
-- The probe's objective: sum over columns of [mean_i w_ik BCE(Z W + b, Y)_ik + l2_k/2 ||W_:k||²].
-- Z (N, D), W (D, K), b (K), Y (N, K), weights (N, K) or nil, l2 (1, K) tensor or number.
function M.logistic_loss(W, b, Z, Y, weights, l2)
  local N = Z:size(1)
  local bce = wb.bce_with_logits(wb.matmul(Z, W) + b, Y, { reduction = "none" })  -- (N, K)
  if weights then bce = bce * weights end
  return bce:sum() / N + (W:square() * l2):sum() * 0.5
end

-- (N, K) per-entry weights: positives n_neg / n_pos of their label (1 if a
-- label lacks either class), negatives 1
local function balanced_weights(Y)
  local N = Y:size(1)
  local pos = Y:sum(1, true)                                   -- (1, K)
  local neg = -pos + N
  local wpos = wb.tensor((function()
    local p, q, out = pos:totable(), neg:totable(), {}
    for k = 1, #p do out[k] = (p[k] > 0 and q[k] > 0) and q[k] / p[k] or 1 end
    return out
  end)()):reshape(1, -1)
  return Y * (wpos - 1) + 1
end

-- Z (N, D), Y (N, K) -> model { mu, sd, W (D, K·G), b, l2 (list of G), K }.
-- o: l2 (number or list: G values fitted at once), steps (300), lr (0.05), balanced (false)
function M.fit_logistic(Z, Y, o)
  o = check_opts(o, { l2 = true, steps = true, lr = true, balanced = true }, "fit_logistic")
  if Z:dim() ~= 2 or Y:dim() ~= 2 or Z:size(1) ~= Y:size(1) then
    error(string.format("probe.fit_logistic: expected Z (N, D) and Y (N, K), got %s and %s", Z:describe(), Y:describe()), 2)
  end
  local lams = type(o.l2) == "table" and o.l2 or { o.l2 or 1e-3 }
  local G, K, N, D = #lams, Y:size(2), Z:size(1), Z:size(2)
  local mu = Z:mean(1, true)
  local sd = N > 1 and Z:std(1, 0, true) + 1e-6 or wb.ones(1, D)
  local Zs = (Z - mu) / sd
  local Yg = Y:to("f32")
  local weights = o.balanced and balanced_weights(Yg) or nil
  if G > 1 then
    local ys, ws = {}, {}
    for g = 1, G do ys[g], ws[g] = Yg, weights end
    Yg = wb.cat(ys, 2)                                          -- (N, K·G)
    if weights then weights = wb.cat(ws, 2) end
  end
  local l2row = {}
  for g = 1, G do for k = 1, K do l2row[(g - 1) * K + k] = lams[g] end end
  local l2 = wb.tensor(l2row):reshape(1, K * G)
  local W = wb.zeros(D, K * G):requires_grad_(true)
  local b = wb.zeros(K * G):requires_grad_(true)
  local opt = wb.optim.AdamW({ W, b }, { lr = o.lr or 0.05, weight_decay = 0 })
  local steps, lr = o.steps or 300, o.lr or 0.05
  for step = 1, steps do
    local loss = M.logistic_loss(W, b, Zs, Yg, weights, l2)
    opt:zero_grad()
    loss:backward()
    opt:set_lr(lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps)))
    opt:step()
  end
  return { mu = mu, sd = sd, W = W:detach(), b = b:detach(), l2 = lams, K = K }
end

-- model, Z (N, D) -> (N, K·G) probabilities (column block g: the g-th l2), or
-- only block g when g is given
function M.predict(m, Z, g)
  local W, b = m.W, m.b
  if g then W, b = W:narrow(2, (g - 1) * m.K + 1, m.K), b:narrow(1, (g - 1) * m.K + 1, m.K) end
  return wb.no_grad(function() return wb.sigmoid(wb.matmul((Z - m.mu) / m.sd, W) + b) end)
end

-- fit every l2 of the grid at once, keep the one with the best validation
-- macro AUROC. -> { model (that l2's block only), l2, val_auroc, grid = {l2 -> val AUROC} }
function M.fit_probe(Ztr, Ytr, Zva, Yva, o)
  o = check_opts(o, { l2 = true, steps = true, lr = true, balanced = true }, "fit_probe")
  local grid = o.l2 or { 1e-4, 1e-3, 1e-2, 1e-1 }
  local m = M.fit_logistic(Ztr, Ytr, { l2 = grid, steps = o.steps, lr = o.lr, balanced = o.balanced })
  local best, scores = nil, {}
  for g = 1, #grid do
    local a = wb.metrics.auroc(M.predict(m, Zva, g), Yva)
    scores[g] = a
    if not best or a > best.val_auroc then best = { g = g, l2 = grid[g], val_auroc = a } end
  end
  local K, g = m.K, best.g
  best.model = { mu = m.mu, sd = m.sd, W = m.W:narrow(2, (g - 1) * K + 1, K):contiguous(),
                 b = m.b:narrow(1, (g - 1) * K + 1, K):contiguous(), l2 = { grid[g] }, K = K }
  best.grid = scores
  return best
end

------------------------------------------------------------------ metrics
-- per label, the score threshold maximising F1 on (scores, labels) (N, K);
-- the threshold is a score value (score >= t is positive). A label without
-- positives gets 0.5.
function M.f1_thresholds(scores, labels)
  local N, K = scores:size(1), scores:size(2)
  local S, Y = scores:to("f32"):totable(), labels:to("f32"):totable()
  local th = {}
  for k = 1, K do
    local col, P = {}, 0
    for i = 1, N do
      col[i] = { S[(i - 1) * K + k], Y[(i - 1) * K + k] > 0.5 }
      if col[i][2] then P = P + 1 end
    end
    if P == 0 then th[k] = 0.5
    else
      table.sort(col, function(a, b) return a[1] > b[1] end)
      local tp, fp, best, bt = 0, 0, -1, 0.5
      for i = 1, N do
        if col[i][2] then tp = tp + 1 else fp = fp + 1 end
        -- a cut between equal scores is not a threshold
        if i == N or col[i + 1][1] < col[i][1] then
          local f = 2 * tp / (tp + fp + P)
          if f > best then best, bt = f, col[i][1] end
        end
      end
      th[k] = bt
    end
  end
  return th
end

-- scores (N, K), labels (N, K), thresholds (list of K; default 0.5 each) ->
-- { auroc, auroc_per, auprc, auprc_per, f1, f1_per }
function M.evaluate(scores, labels, thresholds)
  local r = {}
  r.auroc, r.auroc_per = wb.metrics.auroc(scores, labels)
  r.auprc, r.auprc_per = wb.metrics.auprc(scores, labels)
  r.f1_per = {}
  local K, s, n = scores:size(2), 0, 0
  local pos = labels:to("f32"):sum(1):totable()
  for k = 1, K do
    local f = wb.metrics.f1(scores:narrow(2, k, 1):contiguous(), labels:narrow(2, k, 1):contiguous(),
      { threshold = thresholds and thresholds[k] or 0.5 })
    if pos[k] > 0 then r.f1_per[k] = f.per_label[1]; s, n = s + r.f1_per[k], n + 1
    else r.f1_per[k] = 0 / 0 end
  end
  r.f1 = n > 0 and s / n or 0 / 0
  return r
end

return M
