-- keygate bench: each request carries "Authorization: Bearer <token>" with a
-- token picked at random from the file named by the first script argument;
-- done() prints one machine-readable line that loadgen parses.
local threads = 0
local keys = {}

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  local path = args[1]
  if path and path ~= "" then
    for line in io.lines(path) do
      if #line > 0 then keys[#keys + 1] = "Bearer " .. line end
    end
  end
  math.randomseed(os.time() * 7919 + (tid or 0) * 104729)
  if #keys == 0 then
    local req = wrk.format(nil, nil, nil)
    request = function() return req end
  end
end

function request()
  return wrk.format(nil, nil, { ["Authorization"] = keys[math.random(#keys)] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "KGBENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
