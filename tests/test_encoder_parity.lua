-- tests/test_encoder_parity.lua: the ECG encoder (lua/ecgwb/models/ecg_encoder.lua,
-- config "tiny", objective "contrastive") against the same model written in
-- plain PyTorch by tests/reference/make_encoder_fixture.py, on the committed
-- fixture tests/fixtures/encoder.h5 (layout documented in that script).
--   * the parameter names and shapes agree one to one with the fixture's;
--   * with the same weights, the same input (some leads missing) and frame
--     mask: frames, pooled, the features, and the contrastive head in eval
--     mode (the quantizer's codes exactly, q, project_q(q), final_proj(frames),
--     the quantizer's average probabilities);
--   * the gradient of loss = sum over those outputs of sum(out * R) with
--     respect to every parameter and the input.
-- Tolerance: normalised max error (tests/check.lua T.close) <= 1e-4.
local wb = require "ecgwb"
local E = require "ecgwb.models.ecg_encoder"
local T = dofile("tests/check.lua")
local TOL = 1e-4

local fx = wb.h5.load("tests/fixtures/encoder.h5")
local function group(prefix)
  local out = {}
  for k, v in pairs(fx) do
    if k:sub(1, #prefix) == prefix then out[k:sub(#prefix + 1)] = v end
  end
  return out
end
local params, want_grads = group("params/"), group("grad/params/")
local function same_shape(a, b) return table.concat(a:size(), ",") == table.concat(b:size(), ",") end
local function close(got, want, msg)
  if not T.ok(got ~= nil, msg .. ": missing") then return end
  if not T.ok(same_shape(got, want), msg .. ": shape " .. got:describe() .. " vs " .. want:describe()) then return end
  T.close(got, want, TOL, msg)
end

local enc = E.EcgEncoder("tiny")
enc:eval() -- the quantizer's deterministic (argmax) mode; tiny has dropout 0

-- names one to one, shapes equal
local named, n_named, n_fixture = {}, 0, 0
for _, np in ipairs(enc:named_parameters()) do
  named[np[1]] = np[2]
  n_named = n_named + 1
  if T.ok(params[np[1]] ~= nil, "fixture has no parameter '" .. np[1] .. "'") then
    T.ok(same_shape(np[2], params[np[1]]), "shape of " .. np[1] .. ": " .. np[2]:describe() .. " vs " .. params[np[1]]:describe())
  end
  T.ok(want_grads[np[1]] ~= nil, "fixture has no gradient for '" .. np[1] .. "'")
end
for k in pairs(params) do
  n_fixture = n_fixture + 1
  T.ok(named[k] ~= nil, "the encoder has no parameter '" .. k .. "', which the PyTorch reference has")
end
for k in pairs(want_grads) do T.ok(named[k] ~= nil, "gradient in the fixture for unknown parameter '" .. k .. "'") end
T.ok(n_named == n_fixture and n_named == 48, string.format("%d parameters in ecgwb, %d in the fixture (want 48)", n_named, n_fixture))
local count = 0
for _, p in pairs(named) do count = count + p:numel() end
T.ok(count == E.count_parameters("tiny"), "parameter count " .. count .. " = count_parameters('tiny')")

enc:load_state_dict(params)

-- forward
local x = fx.x:requires_grad_()
local out = enc(x, fx.lead_mask, { mask = fx.frame_mask })
local B, Tn = out.frames:size(1), out.frames:size(2)
local C = enc.cfg.conv_channels
close(out.features, fx["out/features"], "features")
close(out.frames, fx["out/frames"], "frames")
close(out.pooled, fx["out/pooled"], "pooled")

-- contrastive head, quantizer in eval mode
local qo = enc.quantizer(out.features:reshape(B * Tn, C))
T.ok(qo.ids:type() == "i64" and same_shape(qo.ids, fx["out/ids"]) and T.relerr(qo.ids, fx["out/ids"]) == 0,
  "quantizer codes equal PyTorch's argmax")
T.ok(fx.min_logit_gap:item() > 1e-2, "the fixture's codes are not near ties")
close(qo.q, fx["out/q"], "quantized q")
local y = enc.project_q(qo.q)
local c = enc.final_proj(out.frames)
close(y, fx["out/y"], "project_q(q)")
close(c, fx["out/c"], "final_proj(frames)")
close(qo.avg_probs, fx["out/avg_probs"], "avg_probs")

-- backward of the same scalar loss
local outs = { frames = out.frames, pooled = out.pooled, c = c, y = y, avg_probs = qo.avg_probs }
local loss
for _, k in ipairs { "frames", "pooled", "c", "y", "avg_probs" } do
  local term = (outs[k] * fx["r/" .. k]):sum()
  loss = loss and loss + term or term
end
T.close(loss:item(), fx.loss:item(), TOL, "loss")
loss:backward()
close(x.grad, fx["grad/x"], "grad x")
local n_grads = 0
for name, p in pairs(named) do
  if want_grads[name] then
    n_grads = n_grads + 1
    close(p.grad, want_grads[name], "grad " .. name)
  end
end
T.ok(n_grads == 48, n_grads .. " parameter gradients compared")

-- a test that cannot fail is a defect: a small change of one weight must show
wb.no_grad(function()
  enc.pos_conv_g:mul_(1.01)
  local o2 = enc(fx.x, fx.lead_mask, { mask = fx.frame_mask })
  T.ok(T.relerr(o2.frames, fx["out/frames"]) > TOL, "perturbing pos_conv_g by 1% changes the frames beyond the tolerance")
end)
T.done()
