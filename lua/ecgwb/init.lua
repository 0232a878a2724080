--[[ ecgwb: `local wb = require "ecgwb"` gives tensors, autograd and ops
(ecgwb.tensor, ecgwb.ops); submodules load on first use: wb.nn, wb.optim, ...
See README.md for a tour. ]]
local M = require "ecgwb.ops"

local submodules = { nn = true, optim = true, h5 = true, sim = true }
-- top-level functions that live in a submodule
local lazy_functions = { save_state_dict = "h5", load_state_dict = "h5" }

return setmetatable(M, {
  __index = function(t, k)
    if submodules[k] then
      local mod = require("ecgwb." .. k)
      rawset(t, k, mod)
      return mod
    end
    if lazy_functions[k] then
      local f = t[lazy_functions[k]][k]
      rawset(t, k, f)
      return f
    end
    error("ecgwb has no field '" .. tostring(k) .. "'", 2)
  end,
})
