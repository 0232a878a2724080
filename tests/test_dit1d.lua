-- test_dit1d.lua: lua/ecgwb/models/dit1d.lua. Zero output at init
-- (adaLN-Zero), shapes for lengths not divisible by the patch, dependence on
-- t and on the condition (and none for dropped rows / nil cond), gradients,
-- a few steps of diffusion training lowering the loss, errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local dit1d = require "ecgwb.models.dit1d"
local diffusion = require "ecgwb.models.diffusion"

local function maxabs(a, b)
  local x, y, m = a:totable(), b:totable(), 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end

wb.manual_seed(3)
local net = dit1d.DiT1d(dit1d.config("tiny", { in_channels = 3, out_channels = 2, cond_dim = 5, dim = 32 }))
local x, t, c1, c2 = wb.randn(2, 3, 13), wb.tensor { 5, 600 }, wb.randn(2, 3, 5), wb.randn(2, 3, 5)
T.ok(net(x, t, c1):abs():max():item() == 0, "adaLN-Zero: the output is 0 at initialisation")

-- give every zero-initialised weight some values to test the wiring
for _, p in ipairs(net:parameters()) do p:add_(wb.randn(p:size()) * 0.05) end
net:eval()
for _, L in ipairs { 1, 4, 13, 64 } do
  local y = net(wb.randn(2, 3, L), t, c1)
  T.ok(table.concat(y:size(), ",") == "2,2," .. L, "output (2, 2, " .. L .. "), got " .. y:describe())
end
local y1, y2, y0 = net(x, t, c1), net(x, t, c2), net(x, t)
T.ok(maxabs(y1, y2) > 1e-4, "cross-attention: another cond, another output")
T.ok(maxabs(net(x, t, c1, { uncond = wb.ones(2) }), y0) < 1e-5, "dropped rows = cond nil")
T.ok(maxabs(net(x, t, c2, { uncond = wb.ones(2) }), y0) < 1e-5, "dropped rows ignore the cond")
T.ok(maxabs(net(x, 5, c1), net(x, 600, c1)) > 1e-4, "the output depends on t")
local r2 = net(x:narrow(1, 2, 1), t:narrow(1, 2, 1), c1:narrow(1, 2, 1))
T.ok(maxabs(r2, y1:narrow(1, 2, 1)) < 1e-5, "rows are independent")
-- a local change of x changes the output mostly near it? (patches see all
-- others through attention; only check the forward is not constant)
T.ok(maxabs(net(x * 2, t, c1), y1) > 1e-4, "the output depends on x")

net:train()
local loss = net(x, t, c1, { uncond = wb.tensor { 1, 0 } }):pow(2):mean()
loss:backward()
local missing = {}
for _, np in ipairs(net:named_parameters()) do
  if np[2].grad == nil or np[2].grad:abs():sum():item() == 0 then missing[#missing + 1] = np[1] end
end
T.ok(#missing == 0, "every parameter gets a gradient; missing: " .. table.concat(missing, ", "))

-- a few steps of diffusion training on a fixed batch lower the loss
do
  wb.manual_seed(4)
  local m = dit1d.DiT1d(dit1d.config("tiny", { in_channels = 1, cond_dim = 2, dim = 32 }))
  local D = diffusion.Diffusion { schedule = "cosine", T = 100 }
  local pos = wb.arange(0, 32):to("f32"):reshape(1, 1, 32) * (2 * math.pi / 32)
  local x0 = (pos * 3):sin():expand(16, 1, 32):contiguous()
  local cond = wb.tensor({ 1, 0 }):reshape(1, 1, 2):expand(16, 1, 2):contiguous()
  local opt = wb.optim.AdamW(m:parameters(), { lr = 3e-3, weight_decay = 0 })
  local tt, noise = wb.randint(0, 100, { 16 }), wb.randn(16, 1, 32)
  local first
  for s = 1, 40 do
    local l = D:loss(m, x0, cond, { t = tt, noise = noise })
    first = first or l:item()
    opt:zero_grad(); l:backward(); opt:step()
  end
  local last = D:loss(m, x0, cond, { t = tt, noise = noise }):item()
  T.ok(last < 0.5 * first, string.format("DiT fits a fixed batch: loss %.3f -> %.3f", first, last))
end

T.fails(function() net(wb.randn(2, 4, 8), 1) end, "DiT1d: x_t must be (B, 3, L)")
T.fails(function() net(x, wb.tensor { 1 }) end, "DiT1d: t must be a number or a tensor of B = 2")
T.fails(function() net(x, 1, wb.randn(3, 1, 5)) end, "DiT1d: cond has batch 3 but x_t has batch 2")
T.fails(function() net(x, 1, wb.randn(2, 1, 4)) end, "DiT1d: cond must be (B, S, 5)")
T.fails(function() dit1d.DiT1d(dit1d.config("tiny", { dim = 30, heads = 4 })) end, "dim 30 must be divisible by heads 4")
T.fails(function() dit1d.config("giant") end, "unknown config 'giant'")

T.done()
