-- wrk script: POSTs the JSON bodies of $BODIES (one per line) in order, each once per pass,
-- to $TARGET_PATH, with an optional bearer token ($AUTH) and an optional pause after each
-- answer of DELAY_MS milliseconds on average per connection (to pace the total rate). The pause
-- is drawn uniformly from [0, 2 x DELAY_MS]: with a fixed pause, connections that started
-- together stay in step and the server sees one burst of every connection's request each
-- period instead of independent arrivals (a webhook sender's notifications are independent).
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("AUTH")
  if auth and auth ~= "" then wrk.headers["Authorization"] = "Bearer " .. auth end
end
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  math.randomseed(os.time() + os.clock() * 1e6)
  function delay() return math.random(0, 2 * delay_ms) end
end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, os.getenv("TARGET_PATH") or "/", nil, bodies[i])
end
-- Per-thread counts by status (each thread has its own Lua state; done() sums them).
codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do io.write(string.format("status %d: %d\n", code, n)) end
  io.write(string.format("requests %d p50_us %d p99_us %d\n", summary.requests, latency:percentile(50),
                         latency:percentile(99)))
end
