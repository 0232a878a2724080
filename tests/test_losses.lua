-- tests/test_losses.lua: the self-supervised losses (lua/ecgwb/losses.lua):
-- each against a hand computation, and its gradient against finite differences.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local L = wb.losses

wb.manual_seed(3)
local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

------------------------------------------------------------------ losses: values
do
  -- CMSC by hand: 4 embeddings, records {a, a, b, b}, τ = 0.5
  local z = wb.tensor { { 1, 0 }, { 0.8, 0.6 }, { 0, 1 }, { -0.6, 0.8 } }
  local g = { 1, 1, 2, 2 }
  local zs = z:tolist()
  local want = 0
  for i = 1, 4 do
    local den, num = 0, 0
    for j = 1, 4 do
      if j ~= i then
        local s = (zs[i][1] * zs[j][1] + zs[i][2] * zs[j][2]) / 0.5
        den = den + math.exp(s)
        if g[j] == g[i] then num = s end
      end
    end
    want = want + (math.log(den) - num) / 4
  end
  T.close(L.cmsc(z, g, { temperature = 0.5 }), wb.tensor(want), 1e-5, "cmsc by hand")
  T.fails(function() L.cmsc(z, { 1, 1 }) end, "4 embeddings but 2 group ids")

  -- diversity: uniform code use -> 0; one code per group -> (GV - G)/GV
  local du = L.diversity(wb.full({ 2, 8 }, 1 / 8)):item()
  T.ok(math.abs(du) < 1e-5, "diversity of uniform use: " .. du)
  local oh = wb.zeros(2, 8); oh:set(1, 3, 1); oh:set(2, 5, 1)
  T.close(L.diversity(oh), wb.tensor(14 / 16), 1e-4, "diversity of one code per group")

  -- masked MSE: only weighted entries count
  local p, t = wb.tensor { { 1, 2 }, { 3, 4 } }, wb.tensor { { 0, 0 }, { 0, 0 } }
  T.close(L.masked_mse(p, t, wb.tensor { { 1, 0 }, { 0, 1 } }), wb.tensor((1 + 16) / 2), 1e-6, "masked mse")

  -- wav2vec 2.0 contrastive by hand: 1 record, 3 masked frames, K = 2
  local c = wb.tensor { { { 1, 0 }, { 0, 1 }, { 1, 1 } } }
  local y = wb.tensor { { { 2, 0 }, { 1, 1 }, { 0, 3 } } }
  local negs = wb.tensor({ 1, 2, 0, 2, 0, 1 }, "i64")            -- the other two frames of each
  local cs, ys = c:tolist()[1], y:tolist()[1]
  local function cos(a, b) return (a[1] * b[1] + a[2] * b[2]) / math.sqrt((a[1] ^ 2 + a[2] ^ 2) * (b[1] ^ 2 + b[2] ^ 2)) end
  local ids = { { 2, 3 }, { 1, 3 }, { 1, 2 } }
  local hand = 0
  for m = 1, 3 do
    local lp = cos(cs[m], ys[m]) / 0.1
    local den = math.exp(lp)
    for _, j in ipairs(ids[m]) do den = den + math.exp(cos(cs[m], ys[j]) / 0.1) end
    hand = hand + (math.log(den) - lp) / 3
  end
  local lw, acc = L.w2v_contrastive(c, y, { num_negatives = 2, negatives = negs })
  T.close(lw, wb.tensor(hand), 1e-5, "w2v contrastive by hand")
  T.ok(acc >= 0 and acc <= 1, "w2v accuracy in [0, 1]: " .. acc)
  -- a distractor equal to the positive is dropped (not a -inf/NaN)
  local y2 = wb.tensor { { { 2, 0 }, { 2, 0 }, { 0, 3 } } }
  local l2 = L.w2v_contrastive(c, y2, { num_negatives = 2, negatives = negs }):item()
  T.ok(finite(l2), "w2v with a distractor equal to the positive is finite: " .. l2)
  -- sampled negatives never pick the frame itself and stay in the record
  local s = L.sample_negatives(3, 5, 40):totable()
  local bad = 0
  for n = 1, #s do
    local row = math.floor((n - 1) / 40)                          -- flat (b, m)
    local b = math.floor(row / 5)
    if s[n] == row or math.floor(s[n] / 5) ~= b then bad = bad + 1 end
  end
  T.ok(bad == 0, bad .. " sampled negatives are the positive itself or from another record")
end

------------------------------------------------------------------ losses: finite differences
local function fd_check(name, f, x, eps, tol)
  x:requires_grad_(true)
  local loss = f(x)
  loss:backward()
  local g = x.grad:totable()
  local xs = x:detach():clone()
  local n = xs:nelement()
  local worst = 0
  local flat = xs:reshape(-1)
  for i = 1, n do
    local v = flat:get(i)
    flat:set(i, v + eps); local lp = wb.no_grad(function() return f(xs):item() end)
    flat:set(i, v - eps); local lm = wb.no_grad(function() return f(xs):item() end)
    flat:set(i, v)
    local num = (lp - lm) / (2 * eps)
    worst = math.max(worst, math.abs(num - g[i]) / (math.abs(num) + 1e-2))
  end
  T.ok(worst < tol, string.format("%s: finite-difference gradient relative error %.3g", name, worst))
end
do
  local g = { 1, 1, 2, 2, 3, 3 }
  fd_check("cmsc", function(z) return L.cmsc(z, g, { temperature = 0.5 }) end, wb.randn(6, 4), 1e-2, 2e-2)
  fd_check("diversity", function(l) return L.diversity(wb.softmax(l, -1)) end, wb.randn(2, 5), 1e-2, 2e-2)
  local negs = L.sample_negatives(2, 4, 3)
  local y = wb.randn(2, 4, 3)
  fd_check("w2v_contrastive", function(c) return (L.w2v_contrastive(c, y, { num_negatives = 3, negatives = negs, temperature = 0.5 })) end,
    wb.randn(2, 4, 3), 1e-2, 2e-2)
  local t, w = wb.randn(3, 4), wb.tensor { { 1 }, { 0 }, { 1 } }
  fd_check("masked_mse", function(p) return L.masked_mse(p, t, w) end, wb.randn(3, 4), 1e-2, 2e-2)
end

------------------------------------------------------------------ alignment losses
do
  local a = wb.tensor { { 1, 0, 0 }, { 0, 2, 0 }, { 1, 1, 0 } }
  local b = wb.tensor { { 2, 0, 0 }, { 0, 1, 1 }, { 0, 0, 3 } }
  local A, B = a:tolist(), b:tolist()
  local mse, cos = 0, 0
  local function norm(v) return math.sqrt(v[1] ^ 2 + v[2] ^ 2 + v[3] ^ 2) end
  local function dot(u, v) return u[1] * v[1] + u[2] * v[2] + u[3] * v[3] end
  for i = 1, 3 do
    for k = 1, 3 do mse = mse + (A[i][k] - B[i][k]) ^ 2 / 9 end
    cos = cos + (1 - dot(A[i], B[i]) / (norm(A[i]) * norm(B[i]))) / 3
  end
  T.close(L.align_mse(a, b):item(), mse, 1e-6, "align_mse by hand")
  T.close(L.align_cosine(a, b):item(), cos, 1e-6, "align_cosine by hand")
  -- symmetric InfoNCE by hand at temperature 0.5
  local S = {}
  for i = 1, 3 do
    S[i] = {}
    for j = 1, 3 do S[i][j] = dot(A[i], B[j]) / (norm(A[i]) * norm(B[j])) / 0.5 end
  end
  local rows, cols = 0, 0
  for i = 1, 3 do
    local zr, zc = 0, 0
    for j = 1, 3 do zr, zc = zr + math.exp(S[i][j]), zc + math.exp(S[j][i]) end
    rows, cols = rows - (S[i][i] - math.log(zr)) / 3, cols - (S[i][i] - math.log(zc)) / 3
  end
  T.close(L.info_nce(a, b, { temperature = 0.5 }):item(), (rows + cols) / 2, 1e-5, "info_nce by hand")
  T.close(L.info_nce(a, b, { logit_scale = wb.tensor(math.log(2)) }):item(), (rows + cols) / 2, 1e-5,
    "info_nce with logit_scale = log(1/0.5)")
  local t = wb.randn(4, 5)
  fd_check("align_mse", function(p) return L.align_mse(p, t) end, wb.randn(4, 5), 1e-2, 2e-2)
  fd_check("align_cosine", function(p) return L.align_cosine(p, t) end, wb.randn(4, 5), 1e-2, 2e-2)
  fd_check("info_nce", function(p) return L.info_nce(p, t, { temperature = 0.3 }) end, wb.randn(4, 5), 1e-2, 2e-2)
  T.fails(function() L.align_mse(wb.randn(3, 4), wb.randn(2, 4)) end, "align_mse: pred and target must both be (N, D), got (3, 4) and (2, 4)")
  T.fails(function() L.info_nce(wb.randn(3), wb.randn(3)) end, "info_nce: pred and target must both be (N, D)")
end

T.done()
