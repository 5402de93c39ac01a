-- POSTs the JSON body in $WRK_BODY_FILE on every request (and reports like wrk-report.lua).
local f = assert(io.open(os.getenv('WRK_BODY_FILE'), 'rb'))
wrk.method = 'POST'
wrk.body = f:read('*a')
f:close()
wrk.headers['Content-Type'] = 'application/json'

-- WRK_UNIQUE=1: every '@N@' in the body becomes a number of this run, new on each request, so
-- that no request repeats those strings (what a sidecar's per-string caches see at worst).
if os.getenv('WRK_UNIQUE') == '1' then
  math.randomseed(os.time())
  local run = tostring(math.random(1, 1e9))
  local n = 0
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, (wrk.body:gsub('@N@', run .. '-' .. n)))
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
