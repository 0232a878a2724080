-- test_conv_lua.lua: the Lua wrappers of the conv, norm and softmax ops
-- (lua/ecgwb/ops.lua): options reach the right C arguments (checked on
-- values worked out by hand), dims count from 1, bias and weights may be
-- omitted, gradients come back, and C errors surface as Lua errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local x = wb.tensor { { { 1, 2, 3, 4, 5 } } }           -- (1, 1, 5)
local w = wb.tensor { { { 1, -1 } } }:requires_grad_()  -- (1, 1, 2)

-- dilation 2: y[o] = x[o] - x[o+2]; with dy = 1, dw = {x0+x1+x2, x2+x3+x4}
local y = wb.conv1d(x, w, nil, { dilation = 2 })
T.close(y, wb.tensor { { { -2, -2, -2 } } }, 1e-6, "conv1d dilation")
y:backward(wb.ones(1, 1, 3))
T.close(w.grad, wb.tensor { { { 6, 12 } } }, 1e-6, "conv1d weight gradient")
-- stride 2, padding 1, bias, options as the 3rd argument when there is no bias
T.close(wb.conv1d(x, wb.tensor { { { 1, 1 } } }, wb.tensor { 10 }, { stride = 2, padding = 1 }),
  wb.tensor { { { 11, 15, 19 } } }, 1e-6, "conv1d stride, padding, bias")
T.close(wb.conv1d(x, wb.tensor { { { 1, 1 } } }, { stride = 2, padding = 1 }),
  wb.tensor { { { 1, 5, 9 } } }, 1e-6, "conv1d opts without bias")
-- groups 2: each output channel sees its own input channel
local x2 = wb.tensor { { { 1, 2 }, { 3, 4 } } }        -- (1, 2, 2)
T.close(wb.conv1d(x2, wb.tensor { { { 10 } }, { { 100 } } }, nil, { groups = 2 }),
  wb.tensor { { { 10, 20 }, { 300, 400 } } }, 1e-6, "conv1d groups")

-- transposed: x = [1, 2], w = [1, 10, 100], stride 2, output_padding 1, bias 0.5
local yt = wb.conv_transpose1d(wb.tensor { { { 1, 2 } } }, wb.tensor { { { 1, 10, 100 } } }, wb.tensor { 0.5 },
  { stride = 2, output_padding = 1 })
T.close(yt, wb.tensor { { { 1.5, 10.5, 102.5, 20.5, 200.5, 0.5 } } }, 1e-6, "conv_transpose1d")
T.ok(yt:size(3) == 6, "conv_transpose1d output length")

-- errors from C and from the wrapper
T.fails(function() wb.conv1d(wb.randn(2, 3, 10), wb.randn(4, 2, 3)) end, "expects 2", "wrong channel count")
T.fails(function() wb.conv1d(wb.randn(2, 3, 10), wb.randn(4, 1, 3), nil, { groups = 2 }) end, "does not divide",
  "groups")
T.fails(function() wb.conv1d(wb.randn(2, 3, 2), wb.randn(4, 3, 5)) end, "too short", "short input")
T.fails(function() wb.conv1d(x, w, nil, { strides = 2 }) end, "unknown option 'strides'", "misspelt option")
T.fails(function() wb.conv1d(x, w, nil, { stride = 1.5 }) end, "must be an integer", "fractional option")
T.fails(function() wb.conv_transpose1d(x, w, nil, { stride = 2, output_padding = 2 }) end, "output_padding",
  "output_padding too large")

-- normalisation
local r = 1 / math.sqrt(2 / 3 + 1e-5)
T.close(wb.layer_norm(wb.tensor { { 1, 2, 3 } }), wb.tensor { { -r, 0, r } }, 1e-5, "layer_norm")
T.close(wb.layer_norm(wb.tensor { { 1, 2, 3 } }, wb.tensor { 2, 2, 2 }, wb.tensor { 1, 1, 1 }),
  wb.tensor { { 1 - 2 * r, 1, 1 + 2 * r } }, 1e-5, "layer_norm weight, bias")
local s = 1 / math.sqrt(12.5)
T.close(wb.rms_norm(wb.tensor { 3, 4 }, nil, 0), wb.tensor { 3 * s, 4 * s }, 1e-6, "rms_norm")
T.close(wb.rms_norm(wb.tensor { 3, 4 }, wb.tensor { 1, 2 }, 0), wb.tensor { 3 * s, 8 * s }, 1e-6, "rms_norm weight")
local g = 1 / math.sqrt(1 + 1e-5)
T.close(wb.group_norm(wb.tensor { { { 1, 3 }, { 10, 20 } } }, 2), wb.tensor { { { -g, g }, { -g, g } } }, 1e-5,
  "group_norm")
T.fails(function() wb.group_norm(wb.randn(2, 6, 4), 4) end, "does not divide", "group_norm groups")
T.fails(function() wb.layer_norm(wb.randn(2, 5), wb.randn(4)) end, "does not match", "layer_norm weight")

-- softmax: dims count from 1, default last
local a = wb.tensor { { 0, math.log(3) }, { 0, 0 } }
T.close(a:softmax(), wb.tensor { { 0.25, 0.75 }, { 0.5, 0.5 } }, 1e-6, "softmax last dim")
T.close(wb.softmax(a, 1), wb.tensor { { 0.5, 0.75 }, { 0.5, 0.25 } }, 1e-6, "softmax dim 1")
T.close(a:log_softmax(-1), wb.tensor { { math.log(0.25), math.log(0.75) }, { math.log(0.5), math.log(0.5) } }, 1e-5,
  "log_softmax")
local sa = a:clone():requires_grad_()
local p = wb.softmax(sa, 2)
p:backward(wb.tensor { { 1, 0 }, { 1, 0 } })
-- d p1 / d a = p1 (e1 - p): row 1 {0.25*0.75, -0.25*0.75}, row 2 {0.25, -0.25}
T.close(sa.grad, wb.tensor { { 0.1875, -0.1875 }, { 0.25, -0.25 } }, 1e-5, "softmax gradient")
T.fails(function() a:softmax(3) end, "out of range", "softmax dim")
T.fails(function() a:softmax(0) end, "count from 1", "softmax dim 0")

T.done()
