--[[ ecgwb: `local wb = require "ecgwb"` gives tensors, autograd and ops
(ecgwb.tensor, ecgwb.ops); submodules load on first use: wb.nn, wb.optim, ...
See README.md for a tour. ]]
local M = require "ecgwb.ops"

local submodules = { nn = true, optim = true, data = true, loop = true, rag = true, metrics = true,
  plot = true, notebook = true, models = true, h5 = true, sim = true }

return setmetatable(M, {
  __index = function(t, k)
    if submodules[k] then
      local mod = require("ecgwb." .. k)
      rawset(t, k, mod)
      return mod
    end
    error("ecgwb has no field '" .. tostring(k) .. "'", 2)
  end,
})
