-- test_beat.lua: lua/ecgwb/beat.lua (wb.beat_synth over kernels/beat.c).
-- The wrapper against the closed form computed in Lua, rr as a number or a
-- tensor, the multi-lead shape, argument errors; then a fit: ECGSYN's beat at
-- 75 bpm is recovered by AdamW through the op from parameters perturbed by up
-- to ±30% (a, b) and ±0.1 rad (θ). The loss, MSE / mean(target²), starts near
-- 0.4 and must end below 1e-3 (1.7e-4 here; 1.7e-5 to 6.8e-4 over six other
-- random starts). P and T are recovered to 2%; the overlapping Q, R and S
-- waves trade off against each other (a flat valley), so their parameters are
-- not checked. The RR interval is held fixed: z scales with RR·a, so RR and a
-- are not separately identifiable from one beat's shape.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local optim = require "ecgwb.optim"

wb.manual_seed(3)

------------------------------------------------------------------ the wrapper
do
  local a, b, th, rr = wb.beat.ecgsyn(75)
  T.ok(wb.beat_synth == wb.beat.synth, "wb.beat_synth is wb.beat.synth")
  T.close(rr, 0.8, 1e-12, "ecgsyn: RR at 75 bpm")
  T.close(b, wb.tensor({ { 0.25, 0.1, 0.1, 0.1, 0.4 } }) * math.sqrt(1.25), 1e-6, "ecgsyn: widths scaled by sqrt(hr/60)")
  local n = 16
  local z = wb.beat_synth(a, b, th, rr, n)
  T.ok(z:dim() == 2 and z:size(1) == 1 and z:size(2) == n, "(1,5) amplitudes give (1,n)")
  -- the closed form in Lua
  local at, bt, tt, want = a:totable(), b:totable(), th:totable(), {}
  for k = 0, n - 1 do
    local phi, s = -math.pi + 2 * math.pi * k / n, 0
    for i = 1, 5 do
      local d = math.atan2(math.sin(phi - tt[i]), math.cos(phi - tt[i]))
      s = s + at[i] * bt[i] ^ 2 * math.exp(-d * d / (2 * bt[i] ^ 2))
    end
    want[k + 1] = rr / (2 * math.pi) * s
  end
  T.close(z, wb.tensor({ want }), 1e-6, "against the closed form computed in Lua")
  T.close(wb.beat_synth(a, b, th, wb.tensor({ rr }), n), z, 0, "rr as a number or a (B) tensor")
  -- batch of 2, 12 leads
  local a12 = wb.randn(2, 5, 12)
  local b2, t2 = wb.cat({ b, b }, 1), wb.cat({ th, th }, 1)
  local z12 = wb.beat_synth(a12, b2, t2, wb.tensor({ 0.8, 1.2 }), 32)
  T.ok(z12:dim() == 3 and z12:size(1) == 2 and z12:size(2) == 12 and z12:size(3) == 32, "(B,5,L) gives (B,L,n)")
  -- errors
  T.fails(function() wb.beat_synth(a, b, th, rr, 2.5) end, "n (samples per beat) must be an integer")
  T.fails(function() wb.beat_synth(a, b, th, rr) end, "n (samples per beat) must be an integer")
  T.fails(function() wb.beat_synth(wb.randn(1, 4), b, th, rr, 8) end, "amplitudes a must be (B,5) or (B,5,L)")
  T.fails(function() wb.beat_synth(a, b, th, -1, 8) end, "RR interval must be finite and > 0 s")
  T.fails(function() wb.beat_synth(a, b2, th, rr, 8) end, "widths b must be (B,5)")
  -- gradients reach every input
  local ps = { a:clone():requires_grad_(), b:clone():requires_grad_(), th:clone():requires_grad_(), wb.tensor({ rr }):requires_grad_() }
  wb.beat_synth(ps[1], ps[2], ps[3], ps[4], n):sum():backward()
  for i = 1, 4 do T.ok(ps[i].grad ~= nil, "input " .. i .. " has a gradient") end
end

------------------------------------------------------------------ fitting one beat
do
  local N, steps = 250, 800
  local a0, b0, t0, rr = wb.beat.ecgsyn(75)
  local target = wb.beat_synth(a0, b0, t0, rr, N)
  local ms = (target * target):mean():item()
  local a = (a0 * (wb.rand(1, 5) * 0.6 + 0.7)):detach():requires_grad_()
  local b = (b0 * (wb.rand(1, 5) * 0.6 + 0.7)):detach():requires_grad_()
  local th = (t0 + (wb.rand(1, 5) - 0.5) * 0.2):detach():requires_grad_()
  local opt = optim.AdamW({ a, b, th }, { lr = 3e-2, weight_decay = 0 })
  local sched = optim.warmup_cosine { warmup = 0, total = steps, base_lr = 3e-2, min_lr = 1e-4 }
  local first, last
  local t1 = wb.now()
  for step = 0, steps do
    local loss = wb.mse_loss(wb.beat_synth(a, b, th, rr, N), target)
    last = loss:item() / ms
    first = first or last
    opt:zero_grad()
    loss:backward()
    opt:set_lr(sched(step))
    opt:step()
  end
  io.stderr:write(string.format("fit: relative loss %.3g -> %.3g in %d AdamW steps (%.3f s)\n", first, last, steps, wb.now() - t1))
  T.ok(first > 0.1, string.format("the perturbed start is far from the target: %.3g", first))
  T.ok(last < 1e-3, string.format("the fit drops the relative loss below 1e-3: %.3g", last))
  -- the P and T waves, apart from the QRS, are recovered closely
  local at, bt, tt, a0t, b0t, t0t = a:totable(), b:totable(), th:totable(), a0:totable(), b0:totable(), t0:totable()
  for _, i in ipairs({ 1, 5 }) do
    T.close(at[i], a0t[i], 2e-2, "fitted a of wave " .. i)
    T.close(bt[i], b0t[i], 2e-2, "fitted b of wave " .. i)
    T.close(tt[i], t0t[i], 2e-2, "fitted theta of wave " .. i)
  end
end

T.done()
