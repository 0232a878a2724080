--[[md
# One model, two directions: the UniECG demo

`recipes/two_stage.lua` (the main job, `make run`) trains **one** model that
reads ECGs and writes them:

- **Stage 1, interpretation.** An ECG-FM-shaped encoder turns the 12 leads
  into prefix tokens of a small GPT, which writes the report.
- **Stage 2, generation.** The stage-1 LM is frozen. A request such as
  "Generate an ECG showing atrial fibrillation at 110 bpm" is read by the LM
  followed by special `<gen>` tokens; their hidden states are mapped into the
  condition space of a latent diffusion generator with a simulator prior
  (SE-Diff), which draws the 12-lead ECG.

`uni:respond{ text = ..., ecg = ... }` decides from the request which way to
go. This notebook loads the model the main job saved and asks it both kinds
of question, then closes the loop: the model reads back the ECGs it drew.

The model comes from `runs/two_stage/model` (written by `make run`), or from
the directory in the environment variable `ECGWB_UNIECG_MODEL`.
]]
local wb = require "ecgwb"
local nb = wb.notebook
local U = require "ecgwb.models.uniecg"

local dir = os.getenv("ECGWB_UNIECG_MODEL") or "runs/two_stage/model"
local f = io.open(dir .. "/config.json", "r")
if not f then
  error("no trained UniECG model in '" .. dir .. "': run `make run` (recipes/two_stage.lua) first, "
    .. "or set ECGWB_UNIECG_MODEL to a directory written by UniECG:save", 0)
end
f:close()
local uni = U.load(dir)
local function count(m)
  local n = 0
  for _, p in pairs(m:parameters()) do n = n + p:numel() end
  return n
end
nb.table({
  { "stage-1 LM (encoder, projector, GPT; frozen in stage 2)", count(uni.lm) },
  { "everything else (alignment MLP, SE-Diff condition, VAE, U-Net)", count(uni) - count(uni.lm) },
}, { header = { "part", "parameters" } })
print(string.format("generated ECGs: 12 leads x %d samples at %g Hz; reports read at %g Hz", uni.cfg.samples,
  uni.cfg.fs_gen, uni.cfg.fs_lm))

--[[md
## Interpretation: ECG in, report out

Fresh simulated records the model never saw (simulator seed 9001), one per
condition, go through `respond{ ecg = x, fs = 500 }`. The table puts the
report next to the simulator's own, and the findings parsed out of each
(`wb.sim.parse_report`).
]]
--%% interpret
local cases = {
  { name = "normal sinus rhythm", o = { hr = 68 } },
  { name = "atrial fibrillation", o = { rhythm = "afib", hr = 105 } },
  { name = "left bundle branch block", o = { bbb = "left", hr = 72 } },
  { name = "anterior ST elevation", o = { st = "anterior", st_mv = 0.3, hr = 80 } },
}
local rows = {}
for i, c in ipairs(cases) do
  local o = { fs = 500, seconds = 10, seed = 9001, index = i }
  for k, v in pairs(c.o) do o[k] = v end
  local r = wb.sim.record(o)
  local ans = uni:respond { ecg = r.ecg, fs = 500 }
  if i <= 2 then nb.show(wb.plot.ecg(r.ecg, { fs = 500, title = c.name .. " (simulated)" }), { caption = c.name }) end
  rows[#rows + 1] = { c.name, ans.text, r.report, table.concat(wb.sim.parse_report(ans.text), " "),
    table.concat(r.labels, " ") }
end
nb.table(rows, { header = { "record", "model's report", "simulator's report", "findings (model)", "findings (truth)" } })

--[[md
## Generation: text in, 12-lead ECG out

Each request goes through `respond{ text = ... }`. The heart rate of every
generated ECG is measured with ecgwb's own R-peak detector and set against
the rate the request asked for.
]]
--%% generate
local prompts = {
  "Generate an ECG showing atrial fibrillation at 110 bpm.",
  "Create a 12-lead ECG of sinus bradycardia at 48 bpm in a 70-year-old man.",
  "Generate an ECG with left bundle branch block at 75 bpm.",
  "Produce an ECG showing anterior ST elevation at 85 bpm in a 55-year-old woman.",
}
local generated, grows = {}, {}
for i, p in ipairs(prompts) do
  local g = uni:respond { text = p, seed = i }
  generated[i] = g
  local _, hr = wb.signal.rpeaks(g.ecg, g.fs)
  local asked = wb.requests.parse(p).hr
  nb.show(wb.plot.ecg(g.ecg, { fs = g.fs, title = p }), { caption = "generated: " .. p })
  grows[#grows + 1] = { p, asked, hr == hr and string.format("%.0f", hr) or "no beats found" }
end
nb.table(grows, { header = { "request", "HR asked (bpm)", "HR measured on the generated ECG (bpm)" } })

--[[md
## Closing the loop

The same model now reads back the ECGs it generated. When generation and
interpretation agree, the report names what the request asked for.
]]
--%% read back
local back = {}
for i, g in ipairs(generated) do
  local ans = uni:respond { ecg = g.ecg, fs = g.fs }
  back[#back + 1] = { prompts[i], ans.text, table.concat(wb.sim.parse_report(ans.text), " ") }
end
nb.table(back, { header = { "request", "the model's report of its own ECG", "findings" } })

--[[md
## Guidance

Classifier-free guidance trades diversity for fidelity to the request. The
same request and seed at three guidance scales, drawn over each other
(lead II, first 5 s):
]]
--%% guidance
local req = { prompts[1] }
local series = {}
for _, s in ipairs({ 1, 2, 4 }) do
  local x = uni:generate(req, { guidance = s, seed = 7 }):select(1, 1)
  local n = math.floor(5 * uni.cfg.fs_gen)
  local lead2 = x:select(1, 2):narrow(1, 1, n)
  local _, hr = wb.signal.rpeaks(x, uni.cfg.fs_gen)
  print(string.format("guidance %g: measured HR %.0f bpm (asked 110)", s, hr))
  series[#series + 1] = { name = "guidance " .. s, y = lead2 }
end
nb.show(wb.plot.lines(series, { title = "lead II, " .. prompts[1], xlabel = "sample", ylabel = "mV" }),
  { caption = "the same request and seed at guidance 1, 2 and 4" })
