-- tests/test_loss_lua.lua: the Lua wrappers of kernels/loss.c and
-- kernels/attention.c (lua/ecgwb/ops.lua): options tables, 1-based dims,
-- index targets, masks; values against references computed here in Lua.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b)) end

------------------------------------------------------------------ cross_entropy
do
  local C = 5
  local z = wb.zeros(3, C)
  local y = wb.tensor({ 0, 4, 2 }, "i64")
  T.ok(near(wb.cross_entropy(z, y):item(), math.log(C)), "uniform logits give log C")
  T.ok(near(wb.cross_entropy(z, y, { reduction = "sum", label_smoothing = 0.3 }):item(), 3 * math.log(C)),
    "uniform logits, smoothed sum")
  T.ok(near(wb.cross_entropy(z, wb.tensor({ 0, 4, 2 }, "i32")):item(), math.log(C)), "i32 targets")

  -- PyTorch 1.13: label_smoothing 0.2, default ignore_index -100
  local x = wb.tensor({ { 0.5, -1, 2 }, { 1, 1, 0 }, { -0.3, 0.2, 0.1 }, { 2, 0, -1 } })
  local t = wb.tensor({ 2, -100, 0, 1 }, "i64")
  T.ok(near(wb.cross_entropy(x, t, { label_smoothing = 0.2 }):item(), 1.3351062536239624), "torch value, mean")
  local rows = wb.cross_entropy(x, t, { label_smoothing = 0.2, reduction = "none" })
  T.ok(rows:dim() == 1 and rows:size(1) == 4, "reduction none keeps one loss per row")
  T.close(rows, wb.tensor({ 0.5413113832473755, 0.0, 1.3608276844024658, 2.103179454803467 }), 1e-6, "torch rows")

  -- ignore_index option, and the gradient (softmax - onehot) / (rows counted)
  local xl = wb.tensor({ { 0.1, 0.7, -0.4 }, { 1.5, -0.2, 0.3 }, { 0, 0, 1 } }):requires_grad_()
  local yl = wb.tensor({ 1, 0, 2 }, "i64")
  local loss = wb.cross_entropy(xl, yl, { ignore_index = 0 })
  loss:backward()
  local v, yv, want = xl:detach():totable(), { 1, 0, 2 }, {}
  local total = 0
  for i = 0, 2 do
    local s = 0
    for c = 1, 3 do s = s + math.exp(v[i * 3 + c]) end
    for c = 1, 3 do
      local p = math.exp(v[i * 3 + c]) / s
      want[i * 3 + c] = yv[i + 1] == 0 and 0 or (p - ((c - 1) == yv[i + 1] and 1 or 0)) / 2
    end
    if yv[i + 1] ~= 0 then total = total - math.log(math.exp(v[i * 3 + yv[i + 1] + 1]) / s) end
  end
  T.ok(near(loss:item(), total / 2), "ignore_index: mean over the 2 counted rows")
  T.close(xl.grad, wb.tensor(want):view(3, 3), 1e-5, "cross_entropy gradient")

  T.fails(function() wb.cross_entropy(x, t, { reduction = "avg" }) end, "reduction must be 'mean', 'sum' or 'none'")
  T.fails(function() wb.cross_entropy(x, wb.tensor({ 2, 3, 0, 1 }, "i64")) end,
    "cross_entropy: target 3 at row 1 is out of range for 3 classes")
  T.fails(function() wb.cross_entropy(x, wb.tensor({ 2, 1, 0, 1 })) end, "target must hold class ids as i64 or i32")
end

------------------------------------------------------------------ pointwise losses
do
  T.close(wb.bce_with_logits(wb.tensor({ -100, 0, 3, 100 }), wb.tensor({ 1, 0.3, 0.5, 1 }), { reduction = "none" }),
    wb.tensor({ 100.0, 0.6931471824645996, 1.5485873222351074, 0.0 }), 1e-6, "bce values (torch)")
  local a = wb.tensor({ { 1, 2 }, { 3, 5 } }):requires_grad_()
  local b = wb.tensor({ 0, 4 })
  local l = wb.mse_loss(a, b)
  T.ok(near(l:item(), 3.75), "mse mean with a broadcast target")
  l:backward()
  T.close(a.grad, wb.tensor({ { 0.5, -1 }, { 1.5, 0.5 } }), 1e-6, "mse gradient 2(a-b)/n")
  T.ok(near(wb.l1_loss(a, b, { reduction = "sum" }):item(), 7), "l1 sum")
  T.fails(function() wb.mse_loss(a, wb.zeros(3)) end, "mse_loss: shapes")
end

------------------------------------------------------------------ cosine_similarity, normalize
do
  local a = wb.tensor({ { 1, 0, 3 }, { 0, 2, 4 } })
  local b = wb.tensor({ { 1, 1, 3 }, { 2, 2, 0 } })
  local c = wb.cosine_similarity(a, b) -- default: the last dim
  T.ok(c:dim() == 1 and c:size(1) == 2, "cosine over the last dim by default")
  T.close(c, wb.tensor({ 10 / (math.sqrt(10) * math.sqrt(11)), 4 / (math.sqrt(20) * math.sqrt(8)) }), 1e-6, "cosine values")
  local c1 = wb.cosine_similarity(a, b, 1) -- Lua dim 1 = the rows
  T.ok(c1:size(1) == 3, "cosine along dim 1 reduces the rows")
  T.close(c1, wb.tensor({ 1 / (1 * math.sqrt(5)), 4 / (2 * math.sqrt(5)), 9 / (5 * 3) }), 1e-6, "cosine along dim 1")
  T.close(wb.normalize(wb.tensor({ { 3, 4 }, { 0, 0 } })), wb.tensor({ { 0.6, 0.8 }, { 0, 0 } }), 1e-6, "normalize rows")
  T.close(wb.normalize(wb.tensor({ { 3, 4 }, { 4, 3 } }), 1), wb.tensor({ { 0.6, 0.8 }, { 0.8, 0.6 } }), 1e-6,
    "normalize along dim 1")
  T.close(wb.normalize(wb.tensor({ { 3, 4 } }), 2, 10), wb.tensor({ { 0.3, 0.4 } }), 1e-6, "normalize eps")
  T.fails(function() wb.normalize(a, 0) end, "dims count from 1")
  T.fails(function() wb.normalize(a, 3) end, "normalize: dim 2 out of range")
end

------------------------------------------------------------------ sdpa
-- reference in Lua for q (T,D), k (S,D), v (S,Dv) tables, mask[t][s] booleans
local function attend(q, k, v, mask, causal, scale)
  local out = {}
  for t = 1, #q do
    local w, mx = {}, -math.huge
    for s = 1, #k do
      local ok = (mask == nil or mask[t][s]) and (not causal or s <= t)
      if ok then
        local d = 0
        for j = 1, #q[t] do d = d + q[t][j] * k[s][j] end
        w[s] = d * scale
        mx = math.max(mx, w[s])
      end
    end
    local sum = 0
    for s = 1, #k do if w[s] then w[s] = math.exp(w[s] - mx); sum = sum + w[s] end end
    out[t] = {}
    for e = 1, #v[1] do
      local acc = 0
      for s = 1, #k do if w[s] then acc = acc + w[s] / sum * v[s][e] end end
      out[t][e] = acc
    end
  end
  return out
end

do
  wb.manual_seed(3)
  local q, k, v = wb.randn(1, 3, 4), wb.randn(1, 5, 4), wb.randn(1, 5, 2)
  local Q, K, V = q:select(1, 1):tolist(), k:select(1, 1):tolist(), v:select(1, 1):tolist()
  local mrows = { { true, false, true, true, false }, { false, false, false, false, false }, { true, true, true, true, true } }
  local mask = wb.tensor({ mrows }, "bool") -- (1,3,5)
  local function flat(rows)
    local t = {}
    for _, r in ipairs(rows) do for _, x in ipairs(r) do t[#t + 1] = x end end
    return wb.tensor(t)
  end
  T.close(wb.sdpa(q, k, v):reshape(-1), flat(attend(Q, K, V, nil, false, 0.5)), 1e-5, "sdpa plain")
  T.close(wb.sdpa(q, k, v, { causal = true }):reshape(-1), flat(attend(Q, K, V, nil, true, 0.5)), 1e-5, "sdpa causal")
  T.close(wb.sdpa(q, k, v, { mask = mask, scale = 0.3 }):reshape(-1), flat(attend(Q, K, V, mrows, false, 0.3)), 1e-5,
    "sdpa mask + scale (row 2 fully masked gives zeros)")
  T.close(wb.scaled_dot_product_attention(q, k, v, { mask = mask, causal = true }):reshape(-1),
    flat(attend(Q, K, V, mrows, true, 0.5)), 1e-5, "sdpa mask + causal (alias)")
  -- key padding mask (B,1,1,S) on (B,H,T,D)
  local qh, kh, vh = wb.randn(2, 2, 3, 4):requires_grad_(), wb.randn(2, 2, 5, 4), wb.randn(2, 2, 5, 4)
  local pad = wb.tensor({ { { { 1, 1, 1, 0, 0 } } }, { { { 1, 1, 1, 1, 1 } } } }, "bool")
  local o = wb.sdpa(qh, kh, vh, { mask = pad })
  T.ok(o:dim() == 4 and o:size(3) == 3 and o:size(4) == 4, "sdpa output shape")
  local o01 = o:select(1, 1):select(1, 2):tolist()
  local ref = attend(qh:detach():select(1, 1):select(1, 2):tolist(), kh:select(1, 1):select(1, 2):tolist(),
    vh:select(1, 1):select(1, 2):tolist(), { { true, true, true, false, false }, { true, true, true, false, false },
      { true, true, true, false, false } }, false, 0.5)
  T.close(flat(o01), flat(ref), 1e-5, "key padding mask")
  o:backward(wb.ones(2, 2, 3, 4))
  T.ok(qh.grad ~= nil and qh.grad:dim() == 4, "sdpa backward reaches q")
  T.fails(function() wb.sdpa(q, k, v, { mask = wb.ones(1, 3, 5) }) end, "sdpa: mask must be bool")
  T.fails(function() wb.sdpa(q, k, wb.randn(1, 4, 2)) end, "differ in the number of keys")
end

T.done()
