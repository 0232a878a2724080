--[[ ecgwb.ops: the differentiable ops, as functions wb.op(x, ...) and as
methods x:op(...). Each is a thin call into the C core (core/ecgwb.h), where
forward and backward live (kernels/*.c).

Index tensors (embedding ids, class targets, gather/index_select indices,
argmax results) hold 0-based positions, as in data files and PyTorch; dims
and positional numbers passed from Lua count from 1.
]]
local M = require "ecgwb.tensor"
local ffi = M.ffi
local C = M.C
local I = M._internal
local Tensor, op1, check, ensure, cdim, out1, out2, wrap = M.Tensor, I.op1, I.check, I.ensure, I.cdim, I.out1, I.out2, I.wrap
local is_tensor = M.is_tensor

local function both(name, f)
  M[name] = f
  Tensor[name] = f
end

------------------------------------------------------------------ arithmetic
local function scalar_or_tensor(name, ts, st)
  local cname = "ewb_" .. name
  both(name, function(a, b)
    if is_tensor(a) and is_tensor(b) then return op1(C[cname], a, b) end
    if is_tensor(a) and type(b) == "number" then return ts(a, b) end
    if type(a) == "number" and is_tensor(b) then return st(a, b) end
    error(name .. ": expected tensors or numbers, got " .. type(a) .. " and " .. type(b), 2)
  end)
end
scalar_or_tensor("add",
  function(a, s) return op1(C.ewb_add_scalar, a, s) end,
  function(s, b) return op1(C.ewb_add_scalar, b, s) end)
scalar_or_tensor("sub",
  function(a, s) return op1(C.ewb_add_scalar, a, -s) end,
  function(s, b) return op1(C.ewb_add_scalar, op1(C.ewb_neg, b), s) end)
scalar_or_tensor("mul",
  function(a, s) return op1(C.ewb_mul_scalar, a, s) end,
  function(s, b) return op1(C.ewb_mul_scalar, b, s) end)
scalar_or_tensor("div",
  function(a, s) return op1(C.ewb_mul_scalar, a, 1 / s) end,
  function(s, b) return op1(C.ewb_rdiv_scalar, b, s) end)
-- either argument may be a number (it takes the other's dtype)
local function tensors2(a, b) return ensure(a, is_tensor(b) and b or nil), ensure(b, is_tensor(a) and a or nil) end
both("maximum", function(a, b) a, b = tensors2(a, b); return op1(C.ewb_maximum, a, b) end)
both("minimum", function(a, b) a, b = tensors2(a, b); return op1(C.ewb_minimum, a, b) end)
both("pow", function(a, p)
  if type(p) ~= "number" then error("pow: the exponent must be a number", 2) end
  return op1(C.ewb_pow, a, p)
end)

-- comparisons give bool tensors (Lua's own < and == cannot return tensors)
local CMP = { eq = 0, ne = 1, lt = 2, le = 3, gt = 4, ge = 5 }
local FLIP = { [0] = 0, 1, 4, 5, 2, 3 } -- s < t is t > s
for name, code in pairs(CMP) do
  both(name, function(a, b)
    if type(b) == "number" then return op1(C.ewb_compare_scalar, a, b, code) end
    if type(a) == "number" then return op1(C.ewb_compare_scalar, b, a, FLIP[code]) end
    return op1(C.ewb_compare, a, b, code)
  end)
end
both("logical_not", function(a) return op1(C.ewb_logical_not, a) end)

------------------------------------------------------------------ unary
for _, name in ipairs { "neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu", "silu", "sin", "cos" } do
  local cname = "ewb_" .. name
  both(name, function(a) return op1(C[cname], a) end)
end
both("gelu", function(a, approximate) return op1(C.ewb_gelu, a, approximate == "tanh" and 1 or 0) end)
both("clamp", function(a, lo, hi) return op1(C.ewb_clamp, a, lo or -math.huge, hi or math.huge) end)
both("square", function(a) return op1(C.ewb_pow, a, 2) end)

------------------------------------------------------------------ reductions
local dimbuf = ffi.new("int[8]")
local function dims_arg(d)
  if d == nil then return 0, nil end
  if type(d) == "number" then dimbuf[0] = cdim(d); return 1, dimbuf end
  for i = 1, #d do dimbuf[i - 1] = cdim(d[i]) end
  return #d, dimbuf
end
both("sum", function(a, dim, keepdim) local n, d = dims_arg(dim); return op1(C.ewb_sum, a, n, d, keepdim and 1 or 0) end)
both("mean", function(a, dim, keepdim) local n, d = dims_arg(dim); return op1(C.ewb_mean, a, n, d, keepdim and 1 or 0) end)
-- correction: 1 = unbiased (default, as torch), 0 = population
both("var", function(a, dim, correction, keepdim)
  local n, d = dims_arg(dim); return op1(C.ewb_var, a, n, d, correction or 1, keepdim and 1 or 0)
end)
both("std", function(a, dim, correction, keepdim)
  local n, d = dims_arg(dim); return op1(C.ewb_std, a, n, d, correction or 1, keepdim and 1 or 0)
end)
local function minmax(cname)
  return function(a, dim, keepdim)
    local f = C[cname]
    if dim == nil then -- over everything: a number-like 0-d tensor
      local flat = a:reshape(-1)
      check(f(flat.ptr, 0, 0, out1, out2))
      local v, i = wrap(out1[0]), wrap(out2[0])
      return v, i
    end
    check(f(a.ptr, cdim(dim), keepdim and 1 or 0, out1, out2))
    local v, i = wrap(out1[0]), wrap(out2[0])
    return v, i
  end
end
both("max", minmax("ewb_max"))
both("min", minmax("ewb_min"))
both("argmax", function(a, dim, keepdim)
  if dim == nil then return op1(C.ewb_argmax, a:reshape(-1), 0, 0) end
  return op1(C.ewb_argmax, a, cdim(dim), keepdim and 1 or 0)
end)
both("logsumexp", function(a, dim, keepdim) return op1(C.ewb_logsumexp, a, cdim(dim or -1), keepdim and 1 or 0) end)

------------------------------------------------------------------ linear algebra, conv
both("matmul", function(a, b) return op1(C.ewb_matmul, a, b) end)
M.linear = function(x, w, b) return op1(C.ewb_linear, x, w, b) end
-- wb.conv1d(x, w[, b][, opts]): x (B,Cin,L), w (Cout,Cin/groups,K), b (Cout) or nil;
-- opts: stride, padding, dilation (1 = dense), groups, as torch.nn.functional.conv1d.
-- wb.conv_transpose1d takes w (Cin,Cout/groups,K) and also opts.output_padding.
local CONV_OPTS = { stride = true, padding = true, dilation = true, groups = true }
local CONVT_OPTS = { stride = true, padding = true, dilation = true, groups = true, output_padding = true }
local function conv_args(name, b, o, known)
  if o == nil and type(b) == "table" then b, o = nil, b end -- wb.conv1d(x, w, {stride = 2})
  o = o or {}
  for k, v in pairs(o) do
    if not known[k] then error(name .. ": unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= "number" or v ~= math.floor(v) then
      error(name .. ": option " .. k .. " must be an integer, got " .. tostring(v), 3)
    end
  end
  return b, o
end
M.conv1d = function(x, w, b, o)
  b, o = conv_args("conv1d", b, o, CONV_OPTS)
  return op1(C.ewb_conv1d, x, w, b, o.stride or 1, o.padding or 0, o.dilation or 1, o.groups or 1)
end
M.conv_transpose1d = function(x, w, b, o)
  b, o = conv_args("conv_transpose1d", b, o, CONVT_OPTS)
  return op1(C.ewb_conv_transpose1d, x, w, b, o.stride or 1, o.padding or 0, o.output_padding or 0,
    o.dilation or 1, o.groups or 1)
end

------------------------------------------------------------------ normalisation
-- weight and bias may be nil; layer_norm and rms_norm act on the last dim,
-- group_norm on x (B,C,...) with C divisible by groups
M.layer_norm = function(x, w, b, eps) return op1(C.ewb_layer_norm, x, w, b, eps or 1e-5) end
M.group_norm = function(x, groups, w, b, eps) return op1(C.ewb_group_norm, x, groups, w, b, eps or 1e-5) end
M.rms_norm = function(x, w, eps) return op1(C.ewb_rms_norm, x, w, eps or 1e-6) end
both("softmax", function(x, dim) return op1(C.ewb_softmax, x, cdim(dim or -1)) end)
both("log_softmax", function(x, dim) return op1(C.ewb_log_softmax, x, cdim(dim or -1)) end)

------------------------------------------------------------------ nn ops and losses
local RED = { none = 0, mean = 1, sum = 2 }
local function red(r)
  local v = RED[r or "mean"]
  if not v then error("reduction must be 'mean', 'sum' or 'none', got " .. tostring(r), 3) end
  return v
end
M.embedding = function(weight, idx) return op1(C.ewb_embedding, weight, idx) end
M.dropout = function(x, p, train) return op1(C.ewb_dropout, x, p or 0.5, train == false and 0 or 1) end
-- opts: ignore_index (default -100), label_smoothing, reduction
M.cross_entropy = function(logits, target, o)
  o = o or {}
  return op1(C.ewb_cross_entropy, logits, target, o.ignore_index or -100, o.label_smoothing or 0, red(o.reduction))
end
M.bce_with_logits = function(x, t, o) return op1(C.ewb_bce_with_logits, x, t, red(o and o.reduction)) end
M.mse_loss = function(a, b, o) return op1(C.ewb_mse_loss, a, b, red(o and o.reduction)) end
M.l1_loss = function(a, b, o) return op1(C.ewb_l1_loss, a, b, red(o and o.reduction)) end
-- cosine_similarity and normalize work along the last dim by default (torch's
-- default is dim=1, 0-based, which is the same dim for (N, D) inputs)
M.cosine_similarity = function(a, b, dim, eps) return op1(C.ewb_cosine_similarity, a, b, cdim(dim or -1), eps or 1e-8) end
M.normalize = function(a, dim, eps) return op1(C.ewb_normalize, a, cdim(dim or -1), eps or 1e-12) end
-- opts: mask (bool, 1 = attend), causal, scale
M.sdpa = function(q, k, v, o)
  o = o or {}
  return op1(C.ewb_sdpa, q, k, v, o.mask, o.causal and 1 or 0, o.scale or 0)
end
M.scaled_dot_product_attention = M.sdpa

------------------------------------------------------------------ shape ops
-- pads as torch.nn.functional.pad: {last_lo, last_hi, prev_lo, prev_hi, ...}
local padbuf = ffi.new("int64_t[16]")
both("pad", function(x, pads, value)
  if type(pads) ~= "table" or #pads % 2 ~= 0 or #pads > 16 then
    error("pad: pads must be a table of (lo, hi) pairs, at most 8 pairs", 2)
  end
  for i = 1, #pads do
    if type(pads[i]) ~= "number" then error("pad: pad " .. i .. " is a " .. type(pads[i]) .. ", not a number", 2) end
    padbuf[i - 1] = pads[i]
  end
  return op1(C.ewb_pad, x, #pads / 2, padbuf, value or 0)
end)
both("gather", function(x, dim, idx) return op1(C.ewb_gather, x, cdim(dim), idx) end)
both("index_select", function(x, dim, idx) return op1(C.ewb_index_select, x, cdim(dim), idx) end)
M.where = function(cond, a, b) return op1(C.ewb_where, cond, ensure(a, is_tensor(b) and b or nil), ensure(b, is_tensor(a) and a or nil)) end
both("masked_fill", function(x, mask, v)
  if type(v) ~= "number" then error("masked_fill: the fill value must be a number, got " .. type(v), 2) end
  return op1(C.ewb_masked_fill, x, mask, v)
end)

------------------------------------------------------------------ memory
function M.memory()
  return { current = tonumber(C.ewb_mem_current()), peak = tonumber(C.ewb_mem_peak()) }
end
function M.reset_peak_memory() C.ewb_mem_reset_peak() end
-- monotonic wall-clock seconds (os.clock counts CPU time of all threads)
function M.now() return C.ewb_now() end
function M.num_threads(n)
  if n then C.ewb_set_num_threads(n) end
  return C.ewb_num_threads()
end

return M
