-- wrk script for bench/runner.py: one request shape per run, read from the environment,
-- and a machine-readable summary line at the end.
--
--   BENCH_METHOD        GET or POST (default GET)
--   BENCH_BODY          request body (POST only)
--   BENCH_CONTENT_TYPE  Content-Type of the body (default application/json)
--   BENCH_HEADERS       more request headers, one "Name: value" per line
--
--   BENCH_COUNT_STATUSES  "1" to count responses per status code
--
-- done() prints one line, "BENCH_RESULT {json}", with requests/s, latency percentiles in
-- ms, the status counts (when counted), wrk's own count of responses with a status
-- above 399 (the quote endpoint answers 402 by design) and its socket error counters.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
end

for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name ~= nil then
    wrk.headers[name] = value
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

-- Counting statuses needs wrk's response() hook, which makes wrk parse every response
-- in Lua and measurably lowers the rate it can drive; the runner turns it on only for
-- the warm-up run, whose figures it drops anyway.
if os.getenv("BENCH_COUNT_STATUSES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen ~= nil then
      for code, n in pairs(seen) do
        counts[code] = (counts[code] or 0) + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', code, n))
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.6f,"rps":%.3f,' ..
    '"p50_ms":%.4f,"p90_ms":%.4f,"p99_ms":%.4f,"max_ms":%.4f,"mean_ms":%.4f,' ..
    '"statuses":{%s},"status_over_399":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    table.concat(parts, ","), e.status, e.connect, e.read, e.write, e.timeout))
end
