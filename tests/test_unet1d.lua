-- test_unet1d.lua: lua/ecgwb/models/unet1d.lua. Output shapes for odd and
-- even lengths, the time embedding's closed form, that cross-attention makes
-- the output depend on the condition (and that the null condition, dropped
-- rows and masked tokens do not), rows are independent, every parameter gets
-- a gradient, and bad inputs give clear errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local unet1d = require "ecgwb.models.unet1d"

local function maxabs(a, b)
  local x, y, m = a:totable(), b:totable(), 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end
local function same_shape(t, s) return table.concat(t:size(), ",") == table.concat(s, ",") end

wb.manual_seed(7)
local cfg = unet1d.config("tiny", { in_channels = 3, out_channels = 2, cond_dim = 5, mults = { 1, 2, 2 }, attn_levels = { 2, 3 } })
local net = unet1d.UNet1d(cfg)
net:eval()

------------------------------------------------------------------ shapes
for _, L in ipairs { 1, 2, 5, 7, 16, 33, 64 } do
  local y = net(wb.randn(2, 3, L), wb.tensor { 3, 700 }, wb.randn(2, 4, 5))
  T.ok(same_shape(y, { 2, 2, L }), "output (2, 2, " .. L .. "), got " .. y:describe())
end
T.ok(same_shape(net(wb.randn(1, 3, 9), 10), { 1, 2, 9 }), "t as a number, cond nil")
T.ok(same_shape(net(wb.randn(2, 3, 8), wb.tensor { 1, 2 }, wb.randn(2, 5)), { 2, 2, 8 }), "cond (B, Dc) is one token")

------------------------------------------------------------------ time embedding
do
  local e = unet1d.timestep_embedding(wb.tensor { 0, 37 }, 6, 10000)
  local want = {}
  for _, t in ipairs { 0, 37 } do
    local row = {}
    for k = 0, 2 do row[k + 1] = math.cos(t * 10000 ^ (-k / 3)) end
    for k = 0, 2 do row[k + 4] = math.sin(t * 10000 ^ (-k / 3)) end
    want[#want + 1] = row
  end
  T.ok(maxabs(e, wb.tensor(want)) < 1e-5, "timestep_embedding = [cos t f_k | sin t f_k], f_k = 10000^(-k/half)")
  local x = wb.randn(1, 3, 8)
  T.ok(maxabs(net(x, 5), net(x, 500)) > 1e-4, "the output depends on t")
end

------------------------------------------------------------------ the condition
do
  local x, t = wb.randn(2, 3, 12), wb.tensor { 10, 400 }
  local c1, c2 = wb.randn(2, 3, 5), wb.randn(2, 3, 5)
  local y1, y2, y0 = net(x, t, c1), net(x, t, c2), net(x, t)
  T.ok(maxabs(y1, y2) > 1e-4, "cross-attention: another cond, another output (" .. maxabs(y1, y2) .. ")")
  T.ok(maxabs(y1, y0) > 1e-4, "cond vs the null condition differ")
  T.ok(maxabs(y0, net(x, t)) == 0, "cond nil is deterministic")
  -- dropping every row gives the null output, whatever the cond and its length
  local all = wb.ones(2)
  T.ok(maxabs(net(x, t, c1, { uncond = all }), y0) < 1e-5, "uncond = 1 rows equal cond = nil (S = 3 null copies)")
  T.ok(maxabs(net(x, t, c2, { uncond = all }), y0) < 1e-5, "dropped rows do not depend on the cond")
  -- one row dropped: row 1 as nil, row 2 as cond
  local mixed = net(x, t, c1, { uncond = wb.tensor { 1, 0 } })
  T.ok(maxabs(mixed:select(1, 1), y0:select(1, 1)) < 1e-5, "row 1 dropped = null")
  T.ok(maxabs(mixed:select(1, 2), y1:select(1, 2)) < 1e-5, "row 2 kept = cond")
  -- the null token really is what a nil cond uses
  local saved = net.null_cond:clone()
  net.null_cond:copy_(wb.randn(1, 1, 5))
  T.ok(maxabs(net(x, t), y0) > 1e-4, "cond nil uses the learned null_cond")
  net.null_cond:copy_(saved)
  -- rows are independent (GroupNorm is per sample)
  local r2 = net(x:narrow(1, 2, 1), t:narrow(1, 2, 1), c1:narrow(1, 2, 1))
  T.ok(maxabs(r2, y1:narrow(1, 2, 1)) < 1e-5, "a row's output does not depend on the other rows")
  -- cond_mask: a masked token changes nothing, and equals dropping it
  local m = wb.tensor { { 1, 1, 0 }, { 1, 0, 0 } }
  local ya = net(x, t, c1, { cond_mask = m })
  local c1b = c1:clone()
  c1b:narrow(2, 3, 1):copy_(wb.randn(2, 1, 5))
  T.ok(maxabs(ya, net(x, t, c1b, { cond_mask = m })) < 1e-5, "masked tokens do not change the output")
  T.ok(maxabs(ya:narrow(1, 1, 1), net(x:narrow(1, 1, 1), t:narrow(1, 1, 1), c1:narrow(1, 1, 1):narrow(2, 1, 2))) < 1e-5,
    "mask (1, 1, 0) = the first two tokens only")
  T.ok(maxabs(ya, y1) > 1e-4, "the mask matters")
end

------------------------------------------------------------------ the global condition path
do
  local g = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 3, cond_dim = 5, global_cond = true }))
  g:eval()
  local x, t, c1 = wb.randn(2, 3, 12), wb.tensor { 10, 400 }, wb.randn(2, 3, 5)
  local y1, y0 = g(x, t, c1), g(x, t)
  T.ok(maxabs(g(x, t, c1, { uncond = wb.ones(2) }), y0) < 1e-5, "global_cond: dropped rows equal cond = nil")
  T.ok(maxabs(y1, y0) > 1e-4, "global_cond: the cond changes the output")
  local m = wb.tensor { { 1, 1, 0 }, { 1, 0, 0 } }
  local c1b = c1:clone()
  c1b:narrow(2, 3, 1):copy_(wb.randn(2, 1, 5))
  T.ok(maxabs(g(x, t, c1, { cond_mask = m }), g(x, t, c1b, { cond_mask = m })) < 1e-5, "global_cond: masked tokens are left out of the mean")
  -- the global path alone carries the condition when the cross-attention is silenced
  for _, np in ipairs(g:named_parameters()) do
    if np[1]:find("cross_attn", 1, true) and np[1]:find("out", 1, true) then np[2]:zero_() end
  end
  T.ok(maxabs(g(x, t, c1), g(x, t)) > 1e-4, "global_cond: the cond reaches the output through the time embedding")
  g.cond_mlp[3].weight:zero_(); g.cond_mlp[3].bias:zero_()
  T.ok(maxabs(g(x, t, c1), g(x, t)) < 1e-5, "with both paths silenced the cond does nothing (the check above can fail)")
end

------------------------------------------------------------------ gradients
do
  net:train()
  local x, t, c = wb.randn(2, 3, 10), wb.tensor { 3, 30 }, wb.randn(2, 2, 5)
  local loss = net(x, t, c, { uncond = wb.tensor { 1, 0 } }):pow(2):mean()
  loss:backward()
  local missing = {}
  for _, np in ipairs(net:named_parameters()) do
    local g = np[2].grad
    if g == nil or g:abs():sum():item() == 0 then missing[#missing + 1] = np[1] end
  end
  T.ok(#missing == 0, "every parameter gets a gradient; missing: " .. table.concat(missing, ", "))
  net:zero_grad()
  -- additive time conditioning, no self-attention, unconditional
  local plain = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 1, film = false, self_attention = false }))
  T.ok(plain.null_cond == nil, "unconditional U-Net has no null_cond")
  local y = plain(wb.randn(3, 1, 11), wb.tensor { 1, 2, 3 })
  T.ok(same_shape(y, { 3, 1, 11 }), "unconditional, additive time: shape")
  print(string.format("unet1d tiny: %d parameters (cond_dim 5, 3 levels); small (4 ch, cond 64): %d", net:num_parameters(),
    unet1d.UNet1d(unet1d.config("small", { in_channels = 4, cond_dim = 64 })):num_parameters()))
end

------------------------------------------------------------------ errors
do
  local x = wb.randn(2, 3, 8)
  T.fails(function() net(wb.randn(2, 8), 1) end, "x_t must be (B, 3, L), got f32[2,8]")
  T.fails(function() net(wb.randn(2, 4, 8), 1) end, "x_t must be (B, 3, L), got f32[2,4,8]")
  T.fails(function() net(x, wb.tensor { 1, 2, 3 }) end, "t must be a number or a tensor of B = 2 timesteps")
  T.fails(function() net(x, 1, wb.randn(3, 1, 5)) end, "cond has batch 3 but x_t has batch 2")
  T.fails(function() net(x, 1, wb.randn(2, 1, 4)) end, "cond must be (B, S, 5) or (B, 5), got f32[2,1,4]")
  T.fails(function() net(x, 1, "text") end, "cond must be a tensor")
  T.fails(function() net(x, 1, wb.randn(2, 1, 5), { uncond = wb.ones(3) }) end, "uncond must be a tensor of B = 2 entries")
  T.fails(function() net(x, 1, wb.randn(2, 3, 5), { cond_mask = wb.ones(2, 2) }) end, "cond_mask must be (B, S) = (2, 3)")
  local plain = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 3 }))
  T.fails(function() plain(x, 1, wb.randn(2, 1, 5)) end, "this model is unconditional")
  T.fails(function() unet1d.config("huge") end, "unknown config 'huge'")
  T.fails(function() unet1d.UNet1d(unet1d.config("tiny", { channels = 6 })) end, "must be divisible by groups 4")
  T.fails(function() unet1d.UNet1d({}) end, "UNet1d: needs a config")
end

T.done()
