-- Shared by every scenario script (each one loads it with dofile).
--
-- wrk itself only reports "Non-2xx or 3xx responses" (in fact: status >= 400)
-- as one number, which cannot tell the expected 401s of the unauthenticated
-- scenario from a 500, nor notice a stray 1xx/3xx. So every response's status
-- is counted here, per wrk thread, and done() sums the threads and prints one
-- machine-readable line that bench/run.sh picks up:
--
--   BENCH_RESULT {"requests":…,"duration_us":…,"p50_us":…,"statuses":{"200":…},…}
--
-- The counting costs the load generator a little CPU per response (wrk hands
-- the body to Lua); the floor is measured with the same scripts, so both
-- sides of every ratio pay it.

local threads = {}

-- Runs in the main Lua state, once per wrk thread.
function setup(thread)
   table.insert(threads, thread)
end

-- Runs in each thread's own Lua state.
statuses = {}

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"mean_us":%.0f,'
         .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
         .. '"wrk_status_errors":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status,
      table.concat(parts, ",")))
end

-- Helpers for the scenario scripts.
bench = {}

-- An environment variable that must be set (bench/run.sh sets them).
function bench.env(name)
   local value = os.getenv(name)
   if value == nil or value == "" then
      error("bench: the environment variable " .. name .. " is not set")
   end
   return value
end

-- The todo ids of the seeded user, "1 2 3 …" in BENCH_TODO_IDS.
function bench.todo_ids()
   local ids = {}
   for id in bench.env("BENCH_TODO_IDS"):gmatch("%d+") do
      table.insert(ids, id)
   end
   return ids
end

-- application/x-www-form-urlencoded encoding of one value.
function bench.form_encode(value)
   return (value:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

-- Cycles through requests prepared once in init(): the per-request cost is
-- returning a string that already exists, not formatting one.
function bench.cycle(prepared)
   local i = 0
   local n = #prepared
   request = function()
      i = i % n + 1
      return prepared[i]
   end
end
