-- test_index.lua: the exact embedding index (lua/ecgwb/index.lua). Top-k
-- equals a brute-force sort of cosine similarities computed in Lua, exclude
-- leaves a row out, save/load round-trips embeddings and texts (bytes
-- included), and bad shapes raise clear errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local Index = wb.index

wb.manual_seed(4)
local N, D = 50, 8
local emb = wb.randn(N, D)
local texts = {}
for i = 1, N do texts[i] = "report " .. i .. (i % 7 == 0 and " with ° and é" or "") end
local idx = Index.build(emb, texts)

-- brute force: cosine of q against every row, sorted (ties: lower id)
local E = emb:totable()
local function brute(q, k, skip)
  local qn = 0
  for d = 1, D do qn = qn + q[d] * q[d] end
  local all = {}
  for i = 1, N do
    if i ~= skip then
      local dot, en = 0, 0
      for d = 1, D do
        local e = E[(i - 1) * D + d]
        dot, en = dot + e * q[d], en + e * e
      end
      all[#all + 1] = { i, dot / math.sqrt(qn * en) }
    end
  end
  table.sort(all, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
  local ids, sc = {}, {}
  for j = 1, k do ids[j], sc[j] = all[j][1], all[j][2] end
  return ids, sc
end

local Q = wb.randn(6, D)
local qt = Q:totable()
local ids, scores = idx:search(Q, 5)
local same = true
for m = 1, 6 do
  local q = {}
  for d = 1, D do q[d] = qt[(m - 1) * D + d] end
  local bi, bs = brute(q, 5)
  for j = 1, 5 do
    same = same and ids[m][j] == bi[j] and math.abs(scores[m][j] - bs[j]) < 1e-5
  end
end
T.ok(same, "top-5 of 6 queries = brute-force sort of cosine similarities")

-- a query equal to a row finds that row first with score 1; exclude skips it
local id1, s1 = idx:search(emb[17], 3)
T.ok(id1[1] == 17 and math.abs(s1[1] - 1) < 1e-5, "a row retrieves itself first (score 1)")
local id2 = idx:search(emb[17], 3, { exclude = 17 })
local bi = brute(emb[17]:totable(), 3, 17)
T.ok(id2[1] ~= 17 and id2[1] == bi[1] and id2[2] == bi[2] and id2[3] == bi[3], "exclude leaves the row out")
local idsb = idx:search(emb:narrow(1, 1, 4), 2, { exclude = { 1, 2, 3, 4 } })
T.ok(idsb[1][1] ~= 1 and idsb[4][1] ~= 4, "exclude per query in a batch")
T.ok(idx:get({ 3, 7 })[2] == texts[7], "get returns the texts")
local all = idx:search(emb[1], N + 5)
T.ok(#all == N, "k larger than N gives every row")

-- save / load
local file = os.tmpname()
idx:save(file)
local back = Index.load(file)
T.ok(back.n == N and back.dim == D, "loaded shape")
local ok = true
for i = 1, N do ok = ok and back.texts[i] == texts[i] end
T.ok(ok, "texts round-trip (UTF-8 bytes included)")
local idsl, scl = back:search(Q, 5)
local sameL = true
for m = 1, 6 do for j = 1, 5 do sameL = sameL and idsl[m][j] == ids[m][j] and scl[m][j] == scores[m][j] end end
T.ok(sameL, "the loaded index answers the same")
os.remove(file)

-- errors
T.fails(function() Index.build(wb.randn(N), texts) end, "must be a (N, D) tensor")
T.fails(function() Index.build(emb, { "a", "b" }) end, "50 embeddings need 50 texts, got 2")
T.fails(function() idx:search(wb.randn(3, D + 1), 2) end, "queries must be (8) or (M, 8)")
T.fails(function() idx:search(wb.randn(D), 0) end, "k must be a positive integer")
T.fails(function() idx:search(wb.randn(2, D), 1, { exclude = { 1 } }) end, "exclude has 1 ids for 2 queries")
T.fails(function() Index.load("/nonexistent/idx.h5") end, "has no index")

-- draw: k distinct ids of the list, in the list's order; all of them get drawn
math.randomseed(3)
local pool, seen, ordered, distinct, sized = { 40, 7, 12, 3, 25 }, {}, true, true, true
local rank = { [40] = 1, [7] = 2, [12] = 3, [3] = 4, [25] = 5 }
for _ = 1, 200 do
  local d = Index.draw(pool, 3)
  if #d ~= 3 then sized = false end
  local got = {}
  for j, id in ipairs(d) do
    if got[id] or not rank[id] then distinct = false end
    got[id] = true
    seen[id] = (seen[id] or 0) + 1
    if j > 1 and rank[d[j - 1]] > rank[id] then ordered = false end
  end
end
T.ok(sized and distinct and ordered, "draw: k distinct ids of the pool, nearest first")
local all = true
for _, id in ipairs(pool) do if not seen[id] or seen[id] < 60 or seen[id] > 180 then all = false end end
T.ok(all, "draw: every id is drawn about 3/5 of the time")
T.ok(table.concat(Index.draw(pool, 5), " ") == "40 7 12 3 25", "draw of all = the list")
local first = Index.draw(pool, 2, function() return 1 end)
T.ok(first[1] == 40 and first[2] == 7, "random always 1 picks the first ones")
T.fails(function() Index.draw(pool, 6) end, "k must be an integer in 1..5")
T.fails(function() Index.draw(7, 1) end, "ids must be a list")

T.done()
