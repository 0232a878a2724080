-- test_shape_lua.lua: the Lua wrappers of the shape and nn ops (wb.cat,
-- wb.stack, t:pad, t:gather, t:index_select, wb.where, t:masked_fill,
-- wb.embedding, wb.dropout, t:split, t:chunk): 1-based dims, 0-based index
-- tensors, results and gradients against hand-computed values, and errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local function same(a, b, msg) return T.close(a, wb.tensor(b), 0, msg) end
local function shape_is(t, s, msg)
  local got = t:size()
  local ok = #got == #s
  for i = 1, #s do ok = ok and got[i] == s[i] end
  return T.ok(ok, (msg or "shape") .. ": got {" .. table.concat(got, ",") .. "}, want {" .. table.concat(s, ",") .. "}")
end

------------------------------------------------------------------ cat, stack
do
  local a = wb.tensor({ { 1, 2 }, { 3, 4 } }):requires_grad_()
  local b = wb.tensor({ { 5 }, { 6 } }):requires_grad_()
  local c = wb.cat({ a, b }, 2)
  same(c, { { 1, 2, 5 }, { 3, 4, 6 } }, "cat dim 2")
  same(wb.cat({ a, b:t() }, 1), { { 1, 2 }, { 3, 4 }, { 5, 6 } }, "cat dim 1 with a strided input")
  same(wb.cat({ a, b }, -1), { { 1, 2, 5 }, { 3, 4, 6 } }, "cat dim -1")
  T.ok(c.grad_fn == "cat", "cat records its node")
  c:backward(wb.tensor({ { 10, 20, 30 }, { 40, 50, 60 } }))
  same(a.grad, { { 10, 20 }, { 40, 50 } }, "cat grad a")
  same(b.grad, { { 30 }, { 60 } }, "cat grad b")
  T.fails(function() wb.cat({ a, b }, 1) end, "cat: tensor 1", "cat mismatched shapes")
  T.fails(function() wb.cat({ a, wb.tensor({ { 1, 2 } }, "i64") }, 1) end, "dtypes must match", "cat dtypes")
  T.fails(function() wb.cat({}, 1) end, "cat: expected a non-empty list", "cat empty list")
  T.fails(function() wb.cat({ a, 3 }, 1) end, "element 2", "cat non-tensor")
  T.fails(function() wb.cat({ a }, 0) end, "dims count from 1", "cat dim 0")

  local x, y = wb.tensor({ 1, 2, 3 }), wb.tensor({ 4, 5, 6 })
  same(wb.stack({ x, y }), { { 1, 2, 3 }, { 4, 5, 6 } }, "stack default dim 1")
  same(wb.stack({ x, y }, 2), { { 1, 4 }, { 2, 5 }, { 3, 6 } }, "stack dim 2 (new last)")
  same(wb.stack({ x, y }, -1), { { 1, 4 }, { 2, 5 }, { 3, 6 } }, "stack dim -1")
  T.fails(function() wb.stack({ x, wb.tensor({ 1, 2 }) }) end, "stack: tensor 1", "stack shape mismatch")
  T.fails(function() wb.stack({ x, y }, 4) end, "out of range", "stack dim out of range")
end

------------------------------------------------------------------ split, chunk
do
  local t = wb.arange(7)
  local p = t:split(3)
  T.ok(#p == 3, "split(3) of 7 gives 3 pieces")
  same(p[1], { 0, 1, 2 }, "split piece 1")
  same(p[3], { 6 }, "split piece 3")
  local q = t:split({ 2, 5 })
  T.ok(#q == 2, "split by sizes")
  same(q[2], { 2, 3, 4, 5, 6 }, "split by sizes piece 2")
  local m = wb.arange(12):view(3, 4)
  local cols = m:split(2, 2)
  same(cols[2], { { 2, 3 }, { 6, 7 }, { 10, 11 } }, "split along dim 2")
  local ch = t:chunk(3)
  T.ok(#ch == 3 and ch[1]:size(1) == 3 and ch[3]:size(1) == 1, "chunk(3) of 7: sizes 3,3,1")
  local ch2 = m:chunk(4, -1)
  T.ok(#ch2 == 4 and ch2[4]:size(2) == 1, "chunk along the last dim")
  same(wb.cat(m:chunk(2, 2), 2), { { 0, 1, 2, 3 }, { 4, 5, 6, 7 }, { 8, 9, 10, 11 } }, "cat(chunk) = id")
  local g = wb.randn(6, 2):requires_grad_()
  local parts = g:split(4)
  parts[2]:backward(wb.ones(2, 2))
  same(g.grad, { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 1, 1 }, { 1, 1 } }, "split piece backward")
  T.fails(function() t:split(0) end, "split: size must be a number >= 1", "split 0")
  T.fails(function() t:split({ 2, 2 }) end, "sizes add up to 4", "split sizes sum")
  T.fails(function() t:chunk(0) end, "chunk: the number of chunks", "chunk 0")
end

------------------------------------------------------------------ pad
do
  local x = wb.tensor({ { 1, 2 }, { 3, 4 } }):requires_grad_()
  local y = x:pad({ 1, 0, 0, 1 }, 9)
  same(y, { { 9, 1, 2 }, { 9, 3, 4 }, { 9, 9, 9 } }, "pad last dim lo 1, first dim hi 1")
  same(wb.pad(x, { -1, 1 }), { { 2, 0 }, { 4, 0 } }, "negative pad crops")
  y:backward(wb.arange(9):view(3, 3))
  same(x.grad, { { 1, 2 }, { 4, 5 } }, "pad backward picks the interior")
  T.fails(function() x:pad({ 1 }) end, "pad: pads must be a table of (lo, hi) pairs", "pad odd count")
  T.fails(function() x:pad({ 1, 1, 1, 1, 1, 1 }) end, "pad: 3 (lo, hi) pairs", "pad too many pairs")
  T.fails(function() x:pad({ -2, -1 }) end, "negative", "pad crops below zero")
end

------------------------------------------------------------------ gather, index_select
do
  local x = wb.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }):requires_grad_()
  local idx = wb.tensor({ { 2, 2 }, { 0, 1 } }, "i64")
  local y = x:gather(2, idx)
  same(y, { { 3, 3 }, { 4, 5 } }, "gather dim 2")
  same(x:gather(1, wb.tensor({ { 1, 0, 1 } }, "i32")), { { 4, 2, 6 } }, "gather dim 1, i32 index")
  y:backward(wb.ones(2, 2))
  same(x.grad, { { 0, 0, 2 }, { 1, 1, 0 } }, "gather backward accumulates repeats")
  T.fails(function() x:gather(2, wb.tensor({ { 3 }, { 0 } }, "i64")) end, "index 3 is out of range for dim 1 (size 3)",
    "gather out of range")
  T.fails(function() x:gather(2, wb.tensor({ { 1 }, { 0 } })) end, "must be an i64 or i32", "gather f32 index")

  local w = wb.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }):requires_grad_()
  local r = w:index_select(1, wb.tensor({ 2, 0, 2, 2 }, "i64"))
  same(r, { { 5, 6 }, { 1, 2 }, { 5, 6 }, { 5, 6 } }, "index_select dim 1")
  same(wb.index_select(w, -1, wb.tensor({ 1 }, "i32")), { { 2 }, { 4 }, { 6 } }, "index_select dim -1")
  r:backward(wb.ones(4, 2))
  same(w.grad, { { 1, 1 }, { 0, 0 }, { 3, 3 } }, "index_select backward accumulates repeats")
  T.fails(function() w:index_select(1, wb.tensor({ 3 }, "i64")) end, "index_select: index 3 is out of range",
    "index_select out of range")
  T.fails(function() w:index_select(1, wb.tensor({ -1 }, "i64")) end, "index -1 is out of range", "index_select negative")
  T.fails(function() w:index_select(1, wb.tensor({ 1 })) end, "must be an i64 or i32", "index_select f32 index")
end

------------------------------------------------------------------ where, masked_fill
do
  local cond = wb.tensor({ { true }, { false } }, "bool")
  local a = wb.tensor({ 1, 2, 3 }):requires_grad_()
  local b = wb.tensor({ { 10, 20, 30 }, { 40, 50, 60 } }):requires_grad_()
  local y = wb.where(cond, a, b)
  same(y, { { 1, 2, 3 }, { 40, 50, 60 } }, "where broadcasts cond, a and b")
  same(wb.where(cond, a, 0), { { 1, 2, 3 }, { 0, 0, 0 } }, "where with a number")
  same(wb.where(cond, -1, b), { { -1, -1, -1 }, { 40, 50, 60 } }, "where with a number for a")
  y:backward(wb.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }))
  same(a.grad, { 1, 2, 3 }, "where grad a")
  same(b.grad, { { 0, 0, 0 }, { 4, 5, 6 } }, "where grad b")
  T.fails(function() wb.where(wb.tensor({ 1, 0, 1 }), a, b) end, "where: cond must be a bool tensor", "where f32 cond")

  local x = wb.tensor({ { 1, 2 }, { 3, 4 } }):requires_grad_()
  local mask = wb.tensor({ false, true }, "bool")
  local z = x:masked_fill(mask, -100)
  same(z, { { 1, -100 }, { 3, -100 } }, "masked_fill broadcast mask")
  z:backward(wb.ones(2, 2))
  same(x.grad, { { 1, 0 }, { 1, 0 } }, "masked_fill grad zero where filled")
  T.fails(function() x:masked_fill(wb.tensor({ 0, 1 }), 0) end, "masked_fill: mask must be a bool tensor", "masked_fill f32 mask")
  T.fails(function() x:masked_fill(wb.tensor({ true, false, true }, "bool"), 0) end, "does not broadcast",
    "masked_fill shape")
  T.fails(function() x:masked_fill(mask) end, "fill value must be a number", "masked_fill without value")
end

------------------------------------------------------------------ embedding, dropout
do
  local w = wb.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }):requires_grad_()
  local ids = wb.tensor({ { 2, 0 }, { 2, 2 } }, "i64")
  local e = wb.embedding(w, ids)
  shape_is(e, { 2, 2, 2 }, "embedding shape")
  same(e, { { { 5, 6 }, { 1, 2 } }, { { 5, 6 }, { 5, 6 } } }, "embedding rows")
  e:backward(wb.ones(2, 2, 2))
  same(w.grad, { { 1, 1 }, { 0, 0 }, { 3, 3 } }, "embedding grad counts repeated ids")
  same(wb.embedding(w, wb.tensor({ 1 }, "i32")), { { 3, 4 } }, "embedding i32 ids")
  T.fails(function() wb.embedding(w, wb.tensor({ 0, 3 }, "i64")) end, "id 3 is out of range for 3 embeddings",
    "embedding out of range")
  T.fails(function() wb.embedding(w, wb.tensor({ 0, 1 })) end, "index must be an i64 or i32", "embedding f32 ids")

  local x = wb.ones(1000)
  wb.manual_seed(42)
  local d1 = wb.dropout(x, 0.25)
  wb.manual_seed(42)
  local d2 = wb.dropout(x, 0.25, true)
  T.close(d1, d2, 0, "dropout: same seed, same mask")
  local kept, scaled = 0, true
  for _, v in ipairs(d1:totable()) do
    if v ~= 0 then
      kept = kept + 1
      scaled = scaled and math.abs(v - 1 / 0.75) < 1e-6
    end
  end
  -- 1000 draws: sigma = sqrt(.25 * .75 / 1000) = 0.0137; 4 sigma
  T.ok(math.abs(kept / 1000 - 0.75) < 4 * 0.0137, "dropout keep rate " .. kept / 1000)
  T.ok(scaled, "dropout scales kept values by 1/(1-p)")
  T.close(wb.dropout(x, 0.25, false), x, 0, "dropout train=false is the identity")
  same(wb.dropout(wb.ones(3), 1), { 0, 0, 0 }, "dropout p=1 gives zeros")
  local xr = wb.randn(50):requires_grad_()
  local yr = wb.dropout(xr, 0.5)
  yr:backward(wb.ones(50))
  local gv, yv, xv, ok = xr.grad:totable(), yr:totable(), xr:totable(), true
  for i = 1, 50 do
    local want = yv[i] ~= 0 and 2 or 0
    ok = ok and gv[i] == want and (yv[i] == 0 or math.abs(yv[i] - 2 * xv[i]) < 1e-6)
  end
  T.ok(ok, "dropout backward uses the forward mask")
  T.fails(function() wb.dropout(x, 1.5) end, "dropout: p must be in [0, 1]", "dropout p > 1")
end

T.done()
