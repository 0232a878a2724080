-- test_nn.lua: lua/ecgwb/nn.lua. Parameter names, order and counts equal
-- PyTorch's (hard-coded from torch.nn, counted by hand below); default
-- initialisations by their bounds and moments; state_dict round trip and
-- strict-load errors; train/eval and dropout; printing; output shapes; and
-- the forward maths of Linear, MultiheadAttention and the transformer layers
-- against plain-Lua reference loops on nested tables (independent of the
-- kernels and of nn.lua's own code path).
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local nn = require "ecgwb.nn"

wb.manual_seed(3)

local function names(m)
  local out = {}
  for i, np in ipairs(m:named_parameters()) do out[i] = np[1] end
  return out
end
local function same_list(a, b, msg)
  local ok = #a == #b
  for i = 1, math.max(#a, #b) do ok = ok and a[i] == b[i] end
  T.ok(ok, msg .. ": got {" .. table.concat(a, ", ") .. "}")
end
local function absmax(t)
  local m = 0
  for _, v in ipairs(t:totable()) do m = math.max(m, math.abs(v)) end
  return m
end
local function same_shape(t, s, msg)
  local got = t:size()
  local ok = #got == #s
  for i = 1, #s do ok = ok and got[i] == s[i] end
  T.ok(ok, msg .. ": shape {" .. table.concat(got, ",") .. "} expected {" .. table.concat(s, ",") .. "}")
end

------------------------------------------------------------------ names and counts (PyTorch's)
-- TransformerEncoderLayer(32, 4, dim_feedforward=64):
--   self_attn.in_proj_weight 96x32 = 3072, in_proj_bias 96, out_proj 32x32 + 32 = 1056,
--   linear1 64x32 + 64 = 2112, linear2 32x64 + 32 = 2080, norm1/norm2 2 x 64 = 128
--   total 3072 + 96 + 1056 + 2112 + 2080 + 128 = 8544 in 12 tensors
local ENC = { "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
  "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
  "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias" }
local enc = nn.TransformerEncoderLayer(32, 4, { dim_feedforward = 64 })
same_list(names(enc), ENC, "TransformerEncoderLayer names in PyTorch's order")
T.ok(enc:num_parameters() == 8544, "TransformerEncoderLayer(32,4,64) has 8544 parameters, got " .. enc:num_parameters())

-- TransformerDecoderLayer adds multihead_attn (3072 + 96 + 1056 = 4224) and
-- norm3 (64): 8544 + 4224 + 64 = 12832 in 18 tensors
local DEC = { "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
  "self_attn.out_proj.bias", "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
  "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "linear1.weight", "linear1.bias",
  "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
  "norm3.weight", "norm3.bias" }
local decl = nn.TransformerDecoderLayer(32, 4, { dim_feedforward = 64 })
same_list(names(decl), DEC, "TransformerDecoderLayer names in PyTorch's order")
T.ok(decl:num_parameters() == 12832, "TransformerDecoderLayer(32,4,64) has 12832 parameters, got " .. decl:num_parameters())

-- stacks: layers.0..., then the final norm; 2 x 8544 + 64 = 17152 in 26 tensors
local stack = nn.TransformerEncoder(enc, 2, { norm = nn.LayerNorm(32) })
local sn = names(stack)
T.ok(#sn == 26 and sn[1] == "layers.0.self_attn.in_proj_weight" and sn[13] == "layers.1.self_attn.in_proj_weight"
  and sn[25] == "norm.weight" and sn[26] == "norm.bias", "TransformerEncoder names: " .. table.concat(sn, " "))
T.ok(stack:num_parameters() == 17152, "TransformerEncoder(2 layers) + norm: 17152 parameters, got " .. stack:num_parameters())
-- PyTorch's _get_clones: deep copies, same initial values, separate storage
T.close(stack.layers[1].linear1.weight, stack.layers[2].linear1.weight, 0, "cloned layers start equal")
T.ok(stack.layers[1].linear1.weight:data_ptr() ~= stack.layers[2].linear1.weight:data_ptr(), "cloned layers do not share storage")
local fstack = nn.TransformerDecoder(function() return nn.TransformerDecoderLayer(32, 4, { dim_feedforward = 64 }) end, 3)
T.ok(#fstack:parameters() == 54 and fstack:num_parameters() == 3 * 12832, "TransformerDecoder from a factory: 3 layers")
T.ok(T.relerr(fstack.layers[1].linear1.weight, fstack.layers[2].linear1.weight) > 0.1, "a factory gives independent layers")

-- other layers
same_list(names(nn.Conv1d(4, 6, 3)), { "weight", "bias" }, "Conv1d")
same_list(names(nn.Linear(3, 2, false)), { "weight" }, "Linear without bias")
same_list(names(nn.GroupNorm(2, 4)), { "weight", "bias" }, "GroupNorm")
same_list(names(nn.RMSNorm(8)), { "weight" }, "RMSNorm")
local seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
same_list(names(seq), { "0.weight", "0.bias", "2.weight", "2.bias" }, "Sequential children named 0, 1, 2")
T.ok(#seq == 3 and seq[3].out_features == 2, "Sequential: #seq and 1-based seq[i]")
T.ok(seq:num_parameters() == 4 * 8 + 8 + 8 * 2 + 2, "Sequential parameter count")
local ml = nn.ModuleList { nn.Linear(2, 2), nn.Linear(2, 3) }
ml:append(nn.LayerNorm(3))
same_list(names(ml), { "0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias" }, "ModuleList append")

-- a user module: assigned children register in order, explicit parameters
local Net = nn.class("Net")
function Net:__init(d)
  self.scale = nil
  self:register_parameter("scale", wb.ones(d))
  self.body = nn.Sequential(nn.Linear(d, d), nn.GELU())
  self.head = nn.Linear(d, 1)
end
function Net:forward(x) return self.head(self.body(x)) end
local net = Net(4)
same_list(names(net), { "scale", "body.0.weight", "body.0.bias", "head.weight", "head.bias" }, "user module")

------------------------------------------------------------------ printing
local enc_repr = [[
TransformerEncoderLayer(
  (self_attn): MultiheadAttention(
    (out_proj): NonDynamicallyQuantizableLinear(in_features=32, out_features=32, bias=True)
  )
  (linear1): Linear(in_features=32, out_features=64, bias=True)
  (dropout): Dropout(p=0.1, inplace=False)
  (linear2): Linear(in_features=64, out_features=32, bias=True)
  (norm1): LayerNorm((32,), eps=1e-05, elementwise_affine=True)
  (norm2): LayerNorm((32,), eps=1e-05, elementwise_affine=True)
  (dropout1): Dropout(p=0.1, inplace=False)
  (dropout2): Dropout(p=0.1, inplace=False)
)]]
T.ok(tostring(enc) == enc_repr, "print(TransformerEncoderLayer) as PyTorch:\n" .. tostring(enc))
T.ok(tostring(nn.Conv1d(4, 6, 3, { stride = 2, padding = 1, bias = false })) ==
  "Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), bias=False)", "print(Conv1d)")
T.ok(tostring(nn.GELU()) == "GELU(approximate='none')" and tostring(nn.ReLU()) == "ReLU()", "print activations")

------------------------------------------------------------------ initialisation
do
  local l = nn.Linear(100, 50)
  T.ok(absmax(l.weight) <= 0.1 and absmax(l.weight) > 0.095, "Linear weight in U(-1/sqrt(100), 1/sqrt(100)): max " .. absmax(l.weight))
  T.ok(absmax(l.bias) <= 0.1 and absmax(l.bias) > 0.08, "Linear bias in U(-1/sqrt(in), 1/sqrt(in)): max " .. absmax(l.bias))
  local c = nn.Conv1d(8, 64, 5, { groups = 2 }) -- fan_in = 8/2 * 5 = 20
  local b = 1 / math.sqrt(20)
  T.ok(absmax(c.weight) <= b and absmax(c.weight) > 0.97 * b, "Conv1d weight bound 1/sqrt(Cin/groups*K): max " .. absmax(c.weight))
  same_shape(c.weight, { 64, 4, 5 }, "Conv1d weight (Cout, Cin/groups, K)")
  local ct = nn.ConvTranspose1d(64, 8, 3, { groups = 2 }) -- weight (64, 4, 3); fan_in = 4 * 3
  same_shape(ct.weight, { 64, 4, 3 }, "ConvTranspose1d weight (Cin, Cout/groups, K)")
  local bt = 1 / math.sqrt(12)
  T.ok(absmax(ct.weight) <= bt and absmax(ct.weight) > 0.97 * bt, "ConvTranspose1d bound 1/sqrt(Cout/groups*K): max " .. absmax(ct.weight))
  local e = nn.Embedding(1000, 20, { padding_idx = 0 })
  local v = e.weight:totable()
  local s, s2 = 0, 0
  for i = 21, #v do s = s + v[i]; s2 = s2 + v[i] * v[i] end
  local n = #v - 20
  local mean, sd = s / n, math.sqrt(s2 / n - (s / n) ^ 2)
  T.ok(math.abs(mean) < 0.05 and math.abs(sd - 1) < 0.05, string.format("Embedding N(0,1): mean %.3f std %.3f", mean, sd))
  T.ok(absmax(e.weight:select(1, 1)) == 0, "Embedding padding row is zero")
  local m = nn.MultiheadAttention(32, 4)
  local xb = math.sqrt(6 / (32 + 96))
  T.ok(absmax(m.in_proj_weight) <= xb and absmax(m.in_proj_weight) > 0.97 * xb, "in_proj_weight xavier_uniform: max " .. absmax(m.in_proj_weight))
  T.ok(absmax(m.in_proj_bias) == 0 and absmax(m.out_proj.bias) == 0, "MHA biases start at zero")
  T.ok(absmax(m.out_proj.weight) <= 1 / math.sqrt(32) and absmax(m.out_proj.weight) > 0.15, "out_proj.weight keeps Linear's init")
  local ln = nn.LayerNorm(6)
  T.ok(absmax(ln.weight - 1) == 0 and absmax(ln.bias) == 0, "LayerNorm ones / zeros")
  T.ok(l.weight.requires_grad and ln.bias.requires_grad, "parameters require grad")
end

------------------------------------------------------------------ state dicts
do
  local a = nn.TransformerEncoderLayer(16, 2, { dim_feedforward = 24 })
  local b = nn.TransformerEncoderLayer(16, 2, { dim_feedforward = 24 })
  local sd = a:state_dict()
  local keys = a:state_dict_keys()
  T.ok(#keys == 12 and keys[1] == "self_attn.in_proj_weight", "state_dict_keys in order")
  T.ok(not sd["linear1.weight"].requires_grad, "state_dict tensors are detached")
  local wptr = b.linear1.weight:data_ptr()
  local r = b:load_state_dict(sd)
  T.ok(#r.missing_keys == 0 and #r.unexpected_keys == 0, "strict load reports nothing missing")
  for _, k in ipairs(keys) do T.close(b:state_dict()[k], sd[k], 0, "round trip " .. k) end
  T.ok(b.linear1.weight:data_ptr() == wptr and b.linear1.weight.requires_grad, "load copies in place")
  -- strict errors
  local partial = a:state_dict()
  partial["norm2.bias"] = nil
  partial["extra.weight"] = wb.zeros(2)
  T.fails(function() b:load_state_dict(partial) end,
    'Error(s) in loading state_dict for TransformerEncoderLayer:\n\tMissing key(s) in state_dict: "norm2.bias".\n\tUnexpected key(s) in state_dict: "extra.weight".')
  local r2 = b:load_state_dict(partial, false)
  T.ok(r2.missing_keys[1] == "norm2.bias" and r2.unexpected_keys[1] == "extra.weight", "non-strict load returns the key lists")
  local wrong = a:state_dict()
  wrong["linear1.weight"] = wb.zeros(24, 15)
  T.fails(function() b:load_state_dict(wrong, false) end,
    "size mismatch for linear1.weight: copying a param with shape [24, 15] from checkpoint, the shape in current model is [24, 16].")
  wrong["linear1.weight"] = 3
  T.fails(function() b:load_state_dict(wrong) end, "value for linear1.weight is a number, not a tensor")
end

------------------------------------------------------------------ train / eval
do
  local m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
  T.ok(m.training and m[2].training, "modules start in training mode")
  m:eval()
  T.ok(not m.training and not m[2].training, "eval() reaches children")
  m:train()
  T.ok(m[2].training, "train() reaches children")
  local d = nn.Dropout(0.5)
  local x = wb.ones(1000)
  local y = d(x)
  local zeros, twos = 0, 0
  for _, v in ipairs(y:totable()) do
    if v == 0 then zeros = zeros + 1 elseif math.abs(v - 2) < 1e-6 then twos = twos + 1 end
  end
  T.ok(zeros + twos == 1000 and zeros > 400 and zeros < 600, "training dropout zeroes about half and scales by 2: " .. zeros)
  d:eval()
  T.close(d(x), x, 0, "eval dropout is the identity")
  -- a whole layer: deterministic in eval, random in training
  local layer = nn.TransformerEncoderLayer(8, 2, { dim_feedforward = 16, dropout = 0.5 })
  local xs = wb.randn(2, 5, 8)
  local a1, a2 = layer(xs), layer(xs)
  T.ok(T.relerr(a1, a2) > 1e-3, "training: two forward passes differ")
  layer:eval()
  T.close(layer(xs), layer(xs), 0, "eval: forward passes are equal")
  T.fails(function() nn.Dropout(1.5) end, "probability has to be between 0 and 1")
end

------------------------------------------------------------------ output shapes
do
  same_shape(nn.Linear(5, 3)(wb.randn(2, 4, 5)), { 2, 4, 3 }, "Linear on (2,4,5)")
  same_shape(nn.Conv1d(3, 6, 5, { stride = 2, padding = 2 })(wb.randn(2, 3, 20)), { 2, 6, 10 }, "Conv1d stride 2")
  same_shape(nn.Conv1d(3, 6, 5, { padding = "same" })(wb.randn(2, 3, 20)), { 2, 6, 20 }, "Conv1d same")
  same_shape(nn.ConvTranspose1d(6, 3, 4, { stride = 2, padding = 1 })(wb.randn(2, 6, 10)), { 2, 3, 20 }, "ConvTranspose1d x2")
  same_shape(nn.GroupNorm(2, 6)(wb.randn(2, 6, 7)), { 2, 6, 7 }, "GroupNorm")
  same_shape(nn.RMSNorm(7)(wb.randn(2, 6, 7)), { 2, 6, 7 }, "RMSNorm")
  same_shape(nn.Embedding(10, 4)(wb.tensor({ { 1, 2, 9 } }, "i64")), { 1, 3, 4 }, "Embedding")
  local dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, { dim_feedforward = 16 }), 2)
  same_shape(dec(wb.randn(3, 5, 8), wb.randn(3, 7, 8), { tgt_is_causal = true }), { 3, 5, 8 }, "TransformerDecoder")
  local mha = nn.MultiheadAttention(8, 2, { batch_first = false })
  same_shape(mha(wb.randn(5, 3, 8), wb.randn(7, 3, 8), wb.randn(7, 3, 8)), { 5, 3, 8 }, "MHA batch_first=false (T,B,E)")
  T.fails(function() nn.MultiheadAttention(10, 3) end, "embed_dim 10 must be divisible by num_heads 3")
  T.fails(function() nn.Linear(5, 3)(wb.randn(2, 4)) end, "linear: input f32[2,4] does not match weight f32[3,5]")
  T.fails(function() nn.TransformerEncoderLayer(8, 2, { activation = "tanh" }) end, "activation should be relu/gelu")
end

------------------------------------------------------------------ forward maths vs plain Lua
-- matrices are nested tables (rows)
local function mat(t) return t:tolist() end
local function linear_ref(X, W, b)
  local Y = {}
  for i = 1, #X do
    Y[i] = {}
    for o = 1, #W do
      local s = b and b[o] or 0
      for k = 1, #X[i] do s = s + X[i][k] * W[o][k] end
      Y[i][o] = s
    end
  end
  return Y
end
local function rows(W, from, n) local R = {} for i = 1, n do R[i] = W[from + i - 1] end return R end
local function ln_ref(X, w, b, eps)
  local Y = {}
  for i = 1, #X do
    local m, v, d = 0, 0, #X[i]
    for k = 1, d do m = m + X[i][k] end
    m = m / d
    for k = 1, d do v = v + (X[i][k] - m) ^ 2 end
    v = v / d
    Y[i] = {}
    for k = 1, d do Y[i][k] = (X[i][k] - m) / math.sqrt(v + eps) * w[k] + b[k] end
  end
  return Y
end
local function add_ref(A, B)
  local Y = {}
  for i = 1, #A do Y[i] = {} for k = 1, #A[i] do Y[i][k] = A[i][k] + B[i][k] end end
  return Y
end
local function relu_ref(A)
  local Y = {}
  for i = 1, #A do Y[i] = {} for k = 1, #A[i] do Y[i][k] = math.max(A[i][k], 0) end end
  return Y
end
-- PyTorch's multi-head attention for one batch element; attend(t, s) -> bool
local function mha_ref(m, Q, K, V, attend)
  local E, H = m.embed_dim, m.num_heads
  local hd = E / H
  local W, b = mat(m.in_proj_weight), m.in_proj_bias:totable()
  local bq, bk, bv = {}, {}, {}
  for i = 1, E do bq[i], bk[i], bv[i] = b[i], b[E + i], b[2 * E + i] end
  local q, k, v = linear_ref(Q, rows(W, 1, E), bq), linear_ref(K, rows(W, E + 1, E), bk), linear_ref(V, rows(W, 2 * E + 1, E), bv)
  local O = {}
  for t = 1, #Q do O[t] = {} end
  for h = 0, H - 1 do
    for t = 1, #Q do
      local sc, mx = {}, -math.huge
      for s = 1, #K do
        if not attend or attend(t, s) then
          local d = 0
          for j = 1, hd do d = d + q[t][h * hd + j] * k[s][h * hd + j] end
          sc[s] = d / math.sqrt(hd)
          mx = math.max(mx, sc[s])
        end
      end
      local z = 0
      for s = 1, #K do if sc[s] then sc[s] = math.exp(sc[s] - mx); z = z + sc[s] end end
      for j = 1, hd do
        local acc = 0
        for s = 1, #K do if sc[s] then acc = acc + sc[s] / z * v[s][h * hd + j] end end
        O[t][h * hd + j] = acc
      end
    end
  end
  return linear_ref(O, mat(m.out_proj.weight), m.out_proj.bias:totable())
end
local function batch_close(out, refs, tol, msg)
  local flat = {}
  for _, R in ipairs(refs) do for _, row in ipairs(R) do for _, v in ipairs(row) do flat[#flat + 1] = v end end end
  T.close(out, wb.tensor(flat):reshape(out:size()), tol, msg)
end

do
  local B, Tq, S, E, H = 2, 4, 5, 8, 2
  local m = nn.MultiheadAttention(E, H)
  wb.no_grad(function() m.in_proj_bias:normal_(0, 0.5); m.out_proj.bias:normal_(0, 0.5) end)
  local x, mem = wb.randn(B, Tq, E), wb.randn(B, S, E)
  local X, M = mat(x), mat(mem)
  -- self-attention
  batch_close(m(x, x, x), { mha_ref(m, X[1], X[1], X[1]), mha_ref(m, X[2], X[2], X[2]) }, 1e-5, "MHA self-attention vs reference")
  -- cross-attention with a key padding mask (true = ignore): batch 2 ignores its last 2 keys
  local kpm = wb.tensor({ { 0, 0, 0, 0, 0 }, { 0, 0, 0, 1, 1 } }, "bool")
  local out, wts = m(x, mem, mem, { key_padding_mask = kpm })
  T.ok(wts == nil, "need_weights defaults to false")
  batch_close(out, { mha_ref(m, X[1], M[1], M[1]), mha_ref(m, X[2], M[2], M[2], function(_, s) return s <= 3 end) },
    1e-5, "MHA cross-attention with key_padding_mask")
  -- causal via is_causal, via a bool mask and via a float -inf mask; and the explicit (need_weights) path
  local causal = function(t, s) return s <= t end
  local ref = { mha_ref(m, X[1], X[1], X[1], causal), mha_ref(m, X[2], X[2], X[2], causal) }
  batch_close(m(x, x, x, { is_causal = true }), ref, 1e-5, "MHA is_causal")
  local bm, fm = {}, {}
  for t = 1, Tq do
    bm[t], fm[t] = {}, {}
    for s = 1, Tq do bm[t][s] = s > t; fm[t][s] = s > t and -math.huge or 0 end
  end
  batch_close(m(x, x, x, { attn_mask = wb.tensor(bm, "bool") }), ref, 1e-5, "MHA bool attn_mask (true = blocked)")
  batch_close(m(x, x, x, { attn_mask = wb.tensor(fm) }), ref, 1e-5, "MHA float attn_mask (-inf = blocked)")
  local o2, w2 = m(x, x, x, { attn_mask = wb.tensor(bm, "bool"), key_padding_mask = wb.tensor({ { 0, 0, 0, 0 }, { 0, 0, 0, 0 } }, "bool"), need_weights = true })
  batch_close(o2, ref, 1e-5, "MHA explicit path with need_weights and both masks")
  same_shape(w2, { B, Tq, Tq }, "attention weights averaged over heads")
  T.close(w2:sum(-1), wb.ones(B, Tq), 1e-5, "attention weights sum to 1")
  T.ok(math.abs(w2:get(1, 1, 2)) < 1e-7, "weights are zero where masked")
end

local function layer_ref(l, X, norm_first)
  local sa = function(Z) return mha_ref(l.self_attn, Z, Z, Z) end
  local ff = function(Z) return linear_ref(relu_ref(linear_ref(Z, mat(l.linear1.weight), l.linear1.bias:totable())),
      mat(l.linear2.weight), l.linear2.bias:totable()) end
  local n1 = function(Z) return ln_ref(Z, l.norm1.weight:totable(), l.norm1.bias:totable(), 1e-5) end
  local n2 = function(Z) return ln_ref(Z, l.norm2.weight:totable(), l.norm2.bias:totable(), 1e-5) end
  if norm_first then
    X = add_ref(X, sa(n1(X)))
    return add_ref(X, ff(n2(X)))
  end
  X = n1(add_ref(X, sa(X)))
  return n2(add_ref(X, ff(X)))
end
for _, nf in ipairs { false, true } do
  local l = nn.TransformerEncoderLayer(8, 2, { dim_feedforward = 12, norm_first = nf })
  wb.no_grad(function()
    for _, p in ipairs(l:parameters()) do p:normal_(0, 0.3) end
  end)
  l:eval()
  local x = wb.randn(2, 3, 8)
  local X = mat(x)
  batch_close(l(x), { layer_ref(l, X[1], nf), layer_ref(l, X[2], nf) }, 1e-4,
    "TransformerEncoderLayer forward (norm_first=" .. tostring(nf) .. ") vs reference")
end

do -- decoder layer: causal self-attention, cross-attention, feed-forward (post-norm)
  local l = nn.TransformerDecoderLayer(8, 2, { dim_feedforward = 12 })
  wb.no_grad(function() for _, p in ipairs(l:parameters()) do p:normal_(0, 0.3) end end)
  l:eval()
  local x, mem = wb.randn(1, 4, 8), wb.randn(1, 6, 8)
  local X, M = mat(x)[1], mat(mem)[1]
  local function n(norm, Z) return ln_ref(Z, norm.weight:totable(), norm.bias:totable(), 1e-5) end
  local Y = n(l.norm1, add_ref(X, mha_ref(l.self_attn, X, X, X, function(t, s) return s <= t end)))
  Y = n(l.norm2, add_ref(Y, mha_ref(l.multihead_attn, Y, M, M)))
  local F = linear_ref(relu_ref(linear_ref(Y, mat(l.linear1.weight), l.linear1.bias:totable())), mat(l.linear2.weight), l.linear2.bias:totable())
  Y = n(l.norm3, add_ref(Y, F))
  batch_close(l(x, mem, { tgt_is_causal = true }), { Y }, 1e-4, "TransformerDecoderLayer forward vs reference")
end

------------------------------------------------------------------ gradients reach every parameter
do
  local l = nn.TransformerEncoderLayer(8, 2, { dim_feedforward = 12, dropout = 0 })
  local y = l(wb.randn(2, 3, 8))
  local loss = (y * wb.randn(2, 3, 8)):sum()
  loss:backward()
  local missing = {}
  for _, np in ipairs(l:named_parameters()) do
    if np[2].grad == nil or absmax(np[2].grad) == 0 then missing[#missing + 1] = np[1] end
  end
  T.ok(#missing == 0, "every parameter gets a gradient; missing: " .. table.concat(missing, ", "))
  l:zero_grad()
  T.ok(l.linear1.weight.grad == nil, "zero_grad clears gradients")
  -- the padding row of an Embedding gets no gradient
  local e = nn.Embedding(5, 3, { padding_idx = 1 })
  e(wb.tensor({ 0, 1, 1, 4 }, "i64")):sum():backward()
  local g = e.weight.grad
  T.ok(absmax(g:select(1, 2)) == 0 and absmax(g:select(1, 1)) == 1, "no gradient into padding_idx's row")
end

T.done()
