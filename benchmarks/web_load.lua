-- wrk script for benchmarks/concurrency.py: cycles through the request bodies in $WRK_BODIES
-- (one "PATH<TAB>JSON" per line) and prints latency percentiles and errors as one JSON line.
local requests = {}
local counter = 0

function init(args)
  local file = assert(io.open(os.getenv("WRK_BODIES"), "r"))
  for line in file:lines() do
    local path, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
  end
  file:close()
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format('{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, errors))
end
