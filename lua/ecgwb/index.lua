--[[ ecgwb.index: an exact nearest-neighbour index over embeddings, with a
text per entry (retrieval-augmented report generation, ECG-ReGen style).

    local idx = wb.index.build(emb, reports)     -- emb (N, D) f32, reports: N strings
    local ids, scores = idx:search(q, 3)         -- q (D) or (M, D) -> Lua lists
    idx:save("runs/rag/index.h5"); idx = wb.index.load("runs/rag/index.h5")

Search is exact top-k by cosine similarity: the rows are L2-normalised once
at build time, a query batch is normalised and scored against all of them
with one matmul (M, D) @ (D, N), and each row's k best are kept (ties: the
lower id first). ids are 1-based row numbers (Lua lists, like the texts);
for one query (D) search returns flat lists ids[k], scores[k], for a batch
(M, D) lists of lists ids[m][k]. opts.exclude = { id per query } (or a
number for a single query) leaves that row out, e.g. a training record
retrieving its own report.

File: HDF5 with `emb` (N, D) f32 (the normalised rows), `texts` the
concatenated UTF-8 bytes of the texts (one i32 per byte) and `offsets`
(N + 1) i64 (text i is bytes offsets[i] .. offsets[i + 1] - 1, 0-based).
]]
local wb = require "ecgwb"

local M = {}

local Index = {}
Index.__index = Index

local function describe(x) return wb.is_tensor(x) and x:describe() or type(x) end

function M.build(emb, texts)
  if not wb.is_tensor(emb) or emb:dim() ~= 2 then
    error("index.build: embeddings must be a (N, D) tensor, got " .. describe(emb), 2)
  end
  if emb.dtype ~= "f32" then emb = emb:to("f32") end
  local N = emb:size(1)
  if N == 0 then error("index.build: no embeddings", 2) end
  if type(texts) ~= "table" or #texts ~= N then
    error(string.format("index.build: %d embeddings need %d texts, got %s", N, N,
      type(texts) == "table" and tostring(#texts) or type(texts)), 2)
  end
  for i = 1, N do
    if type(texts[i]) ~= "string" then error("index.build: text " .. i .. " is a " .. type(texts[i]) .. ", not a string", 2) end
  end
  local e = wb.no_grad(function() return wb.normalize(emb:detach():contiguous(), 2) end)
  return setmetatable({ emb = e, texts = texts, n = N, dim = emb:size(2) }, Index)
end

-- scores (M, N) of the normalised queries against every row
function Index:scores(q)
  return wb.no_grad(function()
    return wb.matmul(wb.normalize(q:detach():contiguous(), 2), self.emb:t())
  end)
end

function Index:search(q, k, o)
  o = o or {}
  if not wb.is_tensor(q) or (q:dim() ~= 1 and q:dim() ~= 2) or q:size(-1) ~= self.dim then
    error(string.format("index.search: queries must be (%d) or (M, %d), got %s", self.dim, self.dim, describe(q)), 2)
  end
  k = k or 1
  if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then error("index.search: k must be a positive integer", 2) end
  local single = q:dim() == 1
  if q.dtype ~= "f32" then q = q:to("f32") end
  if single then q = q:reshape(1, self.dim) end
  local Mq, N = q:size(1), self.n
  local excl = o.exclude
  if type(excl) == "number" then excl = { excl } end
  if excl and #excl ~= Mq then error(string.format("index.search: exclude has %d ids for %d queries", #excl, Mq), 2) end
  local kk = math.min(k, N - (excl and 1 or 0))
  local s = self:scores(q):totable() -- flat (M * N)
  local ids, scs = {}, {}
  for m = 1, Mq do
    local skip = excl and excl[m]
    local best, bs = {}, {} -- sorted descending, kk entries
    for i = 1, N do
      if i ~= skip then
        local v = s[(m - 1) * N + i]
        local n = #best
        if n < kk or v > bs[n] then
          local j = n < kk and n + 1 or n
          while j > 1 and v > bs[j - 1] do best[j], bs[j] = best[j - 1], bs[j - 1]; j = j - 1 end
          best[j], bs[j] = i, v
        end
      end
    end
    ids[m], scs[m] = best, bs
  end
  if single then return ids[1], scs[1] end
  return ids, scs
end

-- the texts of ids (a list of 1-based ids) as a list
function Index:get(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = self.texts[id] end
  return out
end

function Index:save(file)
  if type(file) ~= "string" then error("index.save: expected a file name", 2) end
  local parts, offs, pos = {}, { 0 }, 0
  for i = 1, self.n do
    parts[i] = self.texts[i]
    pos = pos + #self.texts[i]
    offs[i + 1] = pos
  end
  local blob = table.concat(parts)
  local bytes = {}
  for i = 1, #blob do bytes[i] = blob:byte(i) end
  wb.h5.save(file, { emb = self.emb, offsets = wb.tensor(offs, "i64"), texts = wb.tensor(#bytes > 0 and bytes or { 0 }, "i32") })
  return self
end

function M.load(file)
  if type(file) ~= "string" then error("index.load: expected a file name", 2) end
  local h5 = wb.h5
  local ok, emb = pcall(h5.read, file, "emb")
  if not ok then error("index.load: '" .. file .. "' has no index (" .. tostring(emb) .. ")", 2) end
  local offs = h5.read(file, "offsets"):totable()
  local bytes = h5.read(file, "texts"):totable()
  local N = emb:size(1)
  if #offs ~= N + 1 then error(string.format("index.load: '%s': %d offsets for %d rows", file, #offs, N), 2) end
  local chars = {}
  for i = 1, offs[N + 1] do chars[i] = string.char(bytes[i]) end
  local blob = table.concat(chars)
  local texts = {}
  for i = 1, N do texts[i] = blob:sub(offs[i] + 1, offs[i + 1]) end
  return setmetatable({ emb = emb, texts = texts, n = N, dim = emb:size(2) }, Index)
end

-- wb.index.draw(ids, k, random) -> k of the list ids, picked at random
-- without replacement and kept in their order in ids (ids from search:
-- nearest first). random(n) -> an integer in 1..n (default math.random).
-- Used to train on neighbours drawn from a wider pool of the nearest.
function M.draw(ids, k, random)
  if type(ids) ~= "table" then error("index.draw: ids must be a list, got " .. type(ids), 2) end
  if type(k) ~= "number" or k < 1 or k ~= math.floor(k) or k > #ids then
    error(string.format("index.draw: k must be an integer in 1..%d (the ids given), got %s", #ids, tostring(k)), 2)
  end
  random = random or math.random
  local pos = {}
  for j = 1, #ids do pos[j] = j end
  for j = 1, k do -- a partial Fisher-Yates shuffle of the positions
    local r = j - 1 + random(#ids - j + 1)
    pos[j], pos[r] = pos[r], pos[j]
  end
  local pick = { unpack(pos, 1, k) }
  table.sort(pick)
  local out = {}
  for j, p in ipairs(pick) do out[j] = ids[p] end
  return out
end

return M
