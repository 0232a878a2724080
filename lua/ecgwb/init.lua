--[[ ecgwb: `local wb = require "ecgwb"` gives tensors, autograd and ops
(ecgwb.tensor, ecgwb.ops); submodules load on first use: wb.nn, wb.optim, ...
See README.md for a tour. ]]
local M = require "ecgwb.ops"

-- top-level functions that live in a submodule
local lazy_functions = { save_state_dict = "h5", load_state_dict = "h5", beat_synth = "beat" }
-- the event loop (lua/ecgwb/loop.lua)
for _, k in ipairs { "spawn", "sleep", "yield", "timer", "await", "run", "report" } do lazy_functions[k] = "loop" end

return setmetatable(M, {
  __index = function(t, k)
    -- any lua/ecgwb/<k>.lua is a submodule: wb.nn, wb.optim, wb.h5, wb.sim, ...
    if type(k) == "string" and k:match("^[%w_]+$") and package.searchpath("ecgwb." .. k, package.path) then
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
