-- test_tensor.lua: the Lua tensor API (lua/ecgwb/tensor.lua): construction,
-- 1-based indexing, views, autograd entry points, errors as Lua errors,
-- t:free(), and GC pressure from C-side bytes.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

wb.manual_seed(5)
local t = wb.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
T.ok(t:dim() == 2 and t:size(1) == 2 and t:size(-1) == 3, "size")
T.ok(t.dtype == "f32" and t:type() == "f32", "dtype")
T.ok(t[2][3] == 6 and t:get(1, 2) == 2, "1-based indexing")
T.ok(#t == 2, "#t is size(1)")
t[1] = wb.tensor { 7, 8, 9 }
T.ok(t:get(1, 3) == 9, "row assignment")
t:set(2, 1, -1)
T.ok(t[2][1] == -1, "set")
T.ok(tostring(t):find("f32%[2,3%]") ~= nil, "tostring shows dtype and shape: " .. tostring(t))
local flat = t:totable()
T.ok(#flat == 6 and flat[6] == 6, "totable row-major")
T.ok(t:tolist()[2][2] == 5, "tolist nests")

-- dtypes and index tensors
local ids = wb.tensor({ 0, 2, 1 }, "i64")
T.ok(ids.dtype == "i64" and ids[2] == 2, "i64 tensor")
T.ok(wb.tensor({ true, false }, "bool")[1] == 1, "bool tensor")
T.ok(t:to("i32")[1][1] == 7, "to(i32)")

-- views: 1-based dims, no copies
local x = wb.randn(2, 3, 4)
local v = x:transpose(1, 3)
T.ok(v:size(1) == 4 and not v:is_contiguous(), "transpose(1,3)")
T.ok(x:narrow(2, 2, 2):size(2) == 2, "narrow(dim 2, from 2, len 2)")
T.ok(x:select(1, 2):dim() == 2, "select")
T.ok(x:slice(3, 2, -1):size(3) == 3, "slice(3, 2, -1) keeps elements 2..4")
T.ok(x:view(6, 4):size(1) == 6 and x:view(-1):size(1) == 24, "view")
T.ok(x:unsqueeze(1):size(1) == 1 and x:unsqueeze(1):squeeze(1):dim() == 3, "unsqueeze/squeeze")
T.ok(x:permute(3, 1, 2):size(1) == 4, "permute")
T.ok(#x:split(2, 3) == 2 and x:split(3, 3)[2]:size(3) == 1, "split")
T.ok(x:expand(5, 2, 3, 4):size(1) == 5, "expand")

-- autograd from Lua: a loss built from tensor ops
local w = wb.randn(4, 3):requires_grad_()
T.ok(w.requires_grad and w:is_leaf(), "leaf requires grad")
local y = wb.randn(5, 4):matmul(w)
T.ok(y.grad_fn == "matmul" and not y:is_leaf(), "grad_fn")
local g = wb.randn(5, 3)
y:backward(g)
T.ok(w.grad ~= nil and w.grad:size(1) == 4, "w.grad")
w.grad = nil
T.ok(w.grad == nil, "w.grad = nil clears")
T.fails(function() y:backward(g) end, "backward through the graph a second time")
local z = wb.no_grad(function() return wb.randn(2, 4):matmul(w) end)
T.ok(not z.requires_grad, "no_grad")
T.ok(wb.grad_enabled(), "no_grad restores the mode")
T.fails(function() wb.no_grad(function() error("boom") end) end, "boom")
T.ok(wb.grad_enabled(), "no_grad restores the mode after an error")
T.ok(not w:detach().requires_grad, "detach")

-- errors: Lua errors naming the op and shapes, never crashes
T.fails(function() wb.randn(2, 3):matmul(wb.randn(4, 5)) end, "matmul: inner dims differ: f32[2,3] @ f32[4,5]")
T.fails(function() return x[3] end, "select: index 2 out of range for dim 0 of f32[2,3,4]")
T.fails(function() x:view(5, 5) end, "view: shape [5,5] is invalid")
T.fails(function() x:size(4) end, "size: dim 4 out of range")
T.fails(function() return x.nonexistent end, "tensor has no method or field 'nonexistent'")
T.fails(function() wb.tensor { { 1, 2 }, { 3 } } end, "ragged")
T.fails(function() ids:requires_grad_() end, "only f32 tensors can require gradients")
T.fails(function() x:transpose(0, 1) end, "dims count from 1")

-- free releases memory at once; using a freed tensor is an error
local before = wb.memory().current
local big = wb.zeros(1024, 1024)
T.ok(wb.memory().current - before >= 4 * 1024 * 1024, "allocation counted")
big:free()
T.ok(wb.memory().current == before, "free releases at once")
T.fails(function() big:matmul(big) end, "tensor was freed")
T.ok(tostring(big) == "tensor(freed)", "freed tensor prints")

-- byte pressure triggers collection: garbage tensors do not pile up
collectgarbage()
local base = wb.memory().current
for _ = 1, 200 do local _ = wb.zeros(1024, 1024) end -- 800 MiB of garbage in total
T.ok(wb.memory().current - base <= 300 * 1024 * 1024,
  string.format("GC pressure keeps live bytes bounded: %.0f MiB", (wb.memory().current - base) / 2 ^ 20))

T.done()
