-- wrk script: replays pre-signed Slack requests (one per line: timestamp, signature, body separated
-- by tabs, written by bench/run.py), each wrk thread taking its own share so that no two requests
-- come from the same user; reports p50/p95/p99 and error counts as one JSON line.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  requests = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local ts, sig, body = line:match("([^\t]+)\t([^\t]+)\t(.*)")
      local headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }
      table.insert(requests, wrk.format("POST", "/slack/events", headers, body))
    end
    i = i + 1
  end
  next_request = 1
  bad = 0
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
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
