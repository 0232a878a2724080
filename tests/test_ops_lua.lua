-- tests/test_ops_lua.lua: the Lua wrappers of lua/ecgwb/ops.lua for the
-- elementwise, unary and reduction ops: operators, scalar forms, comparisons,
-- 1-based dims, 0-based indices from max/min/argmax, autograd through the
-- operators, and the errors a Lua user sees.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")

local function approx(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * (1 + math.abs(b)) end
local function same_list(got, want, tol)
  if #got ~= #want then return false end
  for i = 1, #want do if not approx(got[i], want[i], tol) then return false end end
  return true
end
local function shape_is(t, s)
  local z = t:size()
  if #z ~= #s then return false end
  for i = 1, #s do if z[i] ~= s[i] then return false end end
  return true
end

-- operators with broadcasting: (3,1,2) op (2,2) -> (3,2,2)
local a = wb.tensor { { { 1, 2 } }, { { 3, 4 } }, { { 5, 6 } } }
local b = wb.tensor { { 10, 20 }, { 30, 40 } }
local c = a + b
T.ok(shape_is(c, { 3, 2, 2 }), "a + b shape: " .. c:describe())
T.ok(c:get(2, 2, 1) == 33 and c:get(3, 1, 2) == 26, "a + b values")
T.ok((a - b):get(1, 2, 2) == 2 - 40, "a - b")
T.ok((a * b):get(3, 2, 1) == 150, "a * b")
T.ok(approx((a / b):get(2, 1, 2), 4 / 20), "a / b")
T.ok(same_list((-b):totable(), { -10, -20, -30, -40 }), "unary minus")

-- tensor-number and number-tensor forms
local x = wb.tensor { 1, 2, 4 }
T.ok(same_list((x + 1):totable(), { 2, 3, 5 }), "x + 1")
T.ok(same_list((1 + x):totable(), { 2, 3, 5 }), "1 + x")
T.ok(same_list((x - 1):totable(), { 0, 1, 3 }), "x - 1")
T.ok(same_list((10 - x):totable(), { 9, 8, 6 }), "10 - x")
T.ok(same_list((x * 3):totable(), { 3, 6, 12 }), "x * 3")
T.ok(same_list((2 * x):totable(), { 2, 4, 8 }), "2 * x")
T.ok(same_list((x / 2):totable(), { 0.5, 1, 2 }), "x / 2")
T.ok(same_list((8 / x):totable(), { 8, 4, 2 }), "8 / x")
T.ok(same_list((x ^ 2):totable(), { 1, 4, 16 }), "x ^ 2")
T.ok(same_list(x:square():totable(), { 1, 4, 16 }), "x:square()")
T.ok(same_list(wb.maximum(x, 2):totable(), { 2, 2, 4 }), "maximum(x, 2)")
T.ok(same_list(wb.minimum(3, x):totable(), { 1, 2, 3 }), "minimum(3, x)")

-- integer tensors: index arithmetic stays integral
local idx = wb.arange(0, 4, 1, "i64")
local shifted = idx + 1
T.ok(shifted.dtype == "i64" and same_list(shifted:totable(), { 1, 2, 3, 4 }), "i64 arange + 1")
T.ok(same_list((5 - idx):totable(), { 5, 4, 3, 2 }), "5 - i64")

-- comparisons give bool tensors; a number on either side
local m = wb.tensor { -1, 0, 2 }
T.ok(m:gt(0).dtype == "bool" and same_list(m:gt(0):totable(), { 0, 0, 1 }), "m:gt(0)")
T.ok(same_list(m:le(0):totable(), { 1, 1, 0 }), "m:le(0)")
T.ok(same_list(m:eq(wb.tensor { -1, 1, 2 }):totable(), { 1, 0, 1 }), "m:eq(t)")
T.ok(same_list(m:ne(0):totable(), { 1, 0, 1 }), "m:ne(0)")
T.ok(same_list(wb.lt(0, m):totable(), { 0, 0, 1 }), "lt(0, m) is m > 0")
T.ok(same_list(wb.ge(0, m):totable(), { 1, 1, 0 }), "ge(0, m) is m <= 0")
T.ok(same_list(m:gt(0):logical_not():totable(), { 1, 1, 0 }), "logical_not")
T.ok(same_list(wb.tensor({ 1, 2 }, "i64"):ge(wb.tensor { 1.5, 1.5 }):totable(), { 0, 1 }), "i64 >= f32")

-- unary ops
local u = wb.tensor { -2, -0.5, 0.5, 2 }
T.ok(same_list(u:relu():totable(), { 0, 0, 0.5, 2 }), "relu")
T.ok(same_list(u:abs():totable(), { 2, 0.5, 0.5, 2 }), "abs")
T.ok(same_list(u:clamp(-1, nil):totable(), { -1, -0.5, 0.5, 2 }), "clamp with no upper bound")
T.ok(same_list(u:clamp(nil, 1):totable(), { -2, -0.5, 0.5, 1 }), "clamp with no lower bound")
T.ok(approx(u:gelu():get(4), 2 * 0.5 * (1 + 0.9544997361036416)), "gelu (erf) of 2")
T.ok(approx(u:gelu("tanh"):get(4), 1.9545976940871754, 1e-6), "gelu (tanh) of 2")
T.ok(approx(u:sigmoid():get(1), 1 / (1 + math.exp(2))), "sigmoid")
T.ok(approx(u:silu():get(3), 0.5 / (1 + math.exp(-0.5))), "silu")
T.ok(approx(u:exp():log():get(2), -0.5), "log(exp(x))")
T.ok(approx(wb.tensor({ 4 }):rsqrt():item(), 0.5), "rsqrt")
T.ok(approx(u:sin():get(4), math.sin(2)) and approx(u:cos():get(4), math.cos(2)), "sin, cos")
T.ok(approx(u:tanh():get(1), math.tanh and math.tanh(-2) or -0.9640275800758169), "tanh")

-- reductions: 1-based dims, keepdim, all dims
local r = wb.tensor { { 1, 5, 3 }, { 4, 2, 6 } }
local s2 = r:sum(2)
T.ok(shape_is(s2, { 2 }) and same_list(s2:totable(), { 9, 12 }), "t:sum(2)")
T.ok(same_list(r:sum(1):totable(), { 5, 7, 9 }), "t:sum(1)")
T.ok(shape_is(r:sum(-1, true), { 2, 1 }), "t:sum(-1, true) keeps the dim")
T.ok(r:sum():dim() == 0 and r:sum():item() == 21, "t:sum() over everything")
T.ok(r:sum({ 1, 2 }):item() == 21, "t:sum({1, 2})")
T.ok(approx(r:mean():item(), 3.5), "t:mean()")
T.ok(same_list(r:mean(1):totable(), { 2.5, 3.5, 4.5 }), "t:mean(1)")
T.ok(approx(r:var():item(), 17.5 / 5), "t:var() is unbiased by default")
T.ok(approx(r:var(nil, 0):item(), 17.5 / 6), "t:var(nil, 0) is the population variance")
T.ok(approx(r:std(2):get(1), 2), "t:std(2)")
local lse = r:logsumexp(2)
T.ok(approx(lse:get(1), math.log(math.exp(1) + math.exp(5) + math.exp(3))), "t:logsumexp(2)")

-- max/min return values and 0-based indices
local mv, mi = r:max(1)
T.ok(same_list(mv:totable(), { 4, 5, 6 }) and mi.dtype == "i64" and same_list(mi:totable(), { 1, 0, 1 }), "t:max(1)")
local nv, ni = r:min(2, true)
T.ok(shape_is(nv, { 2, 1 }) and same_list(nv:totable(), { 1, 2 }) and same_list(ni:totable(), { 0, 1 }), "t:min(2, true)")
local av, ai = r:max()
T.ok(av:item() == 6 and ai:item() == 5, "t:max() over everything: flat index")
T.ok(same_list(r:argmax(2):totable(), { 1, 2 }), "t:argmax(2)")
T.ok(r:argmax():item() == 5, "t:argmax()")

-- autograd through the operators
local p = wb.tensor({ 1, 2, 3 }):requires_grad_()
local q = wb.tensor({ 4, 5, 6 }):requires_grad_()
local loss = (p * q - p / q + 2 * p - q / 4):sum()
loss:backward()
local gp, gq = p.grad:totable(), q.grad:totable()
T.ok(same_list(gp, { 4 - 1 / 4 + 2, 5 - 1 / 5 + 2, 6 - 1 / 6 + 2 }, 1e-6), "d loss / d p")
T.ok(same_list(gq, { 1 + 1 / 16 - 0.25, 2 + 2 / 25 - 0.25, 3 + 3 / 36 - 0.25 }, 1e-6), "d loss / d q")
local w = wb.tensor({ { 1, 9 }, { 7, 3 } }):requires_grad_()
local wv = w:max(2)
wv:sum():backward()
T.ok(same_list(w.grad:totable(), { 0, 1, 1, 0 }), "max gradient flows to the argmax")
local z = wb.tensor({ 3 }):requires_grad_()
local y = (-z):exp():mean()
y:backward()
T.ok(approx(z.grad:item(), -math.exp(-3)), "d exp(-z) / dz")

-- errors
T.fails(function() return wb.randn(2, 3) + wb.randn(4) end, "add: shapes f32[2,3] and f32[4] do not broadcast")
T.fails(function() return wb.add("x", wb.randn(2)) end, "add: expected tensors or numbers")
T.fails(function() return r:sum(0) end, "dims count from 1")
T.fails(function() return r:sum(3) end, "sum: dim 2 out of range")
T.fails(function() return r:max(5) end, "max: dim 4 out of range")
T.fails(function() return idx:exp() end, "exp: expected an f32 tensor, got i64[4]")
T.fails(function() return idx / 2 end, "is not an integer")
T.fails(function() return x ^ x end, "pow: the exponent must be a number")
T.fails(function() return wb.tensor({ true, false }, "bool") + 1 end, "add_scalar: expected an f32 tensor")

T.done()
