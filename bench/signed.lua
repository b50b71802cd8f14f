-- wrk script: sends pre-signed Slack requests written by bench/run.py, each wrk thread from a file of its
-- own (BENCH_REQUESTS.<thread>: whole HTTP requests, each an 8-digit length and its bytes) so that no two
-- requests come from the same user; reports p50/p95/p99 and error counts as one JSON line.
--
-- Nothing is loaded up front: wrk runs each thread's init in its main thread, one thread after the other
-- and before its clock starts, while the threads already started are sending. Loading thousands of
-- requests there let those threads send requests that were counted but not timed (a 300,000-line file:
-- 17 s of load on the server for a reported 8 s; bench/RESULTS.md).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  path = os.getenv("BENCH_REQUESTS") .. "." .. id
  file = assert(io.open(path, "rb"))
  bad = 0
end

function request()
  local size = file:read(8)
  if size == nil then  -- every request sent: start over (run.py writes more than a step needs)
    file:seek("set", 0)
    size = file:read(8)
  end
  return file:read(tonumber(size))
end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do bad_total = bad_total + thread:get("bad") end
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "max": %f, "errors": %d, "non200": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad_total))
end
