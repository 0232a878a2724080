--[[ ecgwb.beat: the differentiable beat synthesiser (kernels/beat.c) from Lua.

  local a, b, theta = wb.beat.ecgsyn(75)                 -- ECGSYN's P Q R S T at 75 bpm, each (1,5)
  local z = wb.beat_synth(a, b, theta, 0.8, 256)         -- (1,256): one beat, phases −π + 2πk/256
  local z12 = wb.beat_synth(a12, b, theta, rr, 256)      -- a12 (B,5,12) -> (B,12,256)

z = (RR/2π) Σ_i a_i b_i² exp(−Δθ_i²/2b_i²), ECGSYN's z for a constant RR in
closed form; differentiable in a, b, theta and rr. rr is a (B) tensor of RR
intervals in s, or one number for every row. wb.beat_synth is wb.beat.synth.
]]
local wb = require "ecgwb"
local C = wb.C
local I = wb._internal

local M = {}

function M.synth(a, b, theta, rr, n)
  if type(n) ~= "number" or n ~= math.floor(n) then
    error("beat_synth: n (samples per beat) must be an integer, got " .. tostring(n), 2)
  end
  if type(rr) == "number" then
    if not wb.is_tensor(a) then error("beat_synth: a must be a tensor", 2) end
    rr = wb.full({ a:size(1) }, rr)
  end
  return I.op1(C.ewb_beat_synth, a, b, theta, rr, n)
end
M.beat_synth = M.synth

-- ECGSYN's morphology (McSharry 2003; NeuroKit2's defaults) at heart rate hr
-- (bpm, default 60), with its heart-rate scaling h = √(hr/60): b ← h·b,
-- θ ← (√h, h, 1, h, √h)·θ. Returns a, b, theta (1,5) and the RR interval (s).
function M.ecgsyn(hr)
  hr = hr or 60
  local h = math.sqrt(hr / 60)
  local sh = math.sqrt(h)
  local deg = { -70, -15, 0, 15, 100 }
  local ts = { sh, h, 1, h, sh }
  local a, b, th = { 1.2, -5, 30, -7.5, 0.75 }, {}, {}
  local b0 = { 0.25, 0.1, 0.1, 0.1, 0.4 }
  for i = 1, 5 do
    b[i] = b0[i] * h
    th[i] = deg[i] * math.pi / 180 * ts[i]
  end
  return wb.tensor({ a }), wb.tensor({ b }), wb.tensor({ th }), 60 / hr
end

return M
