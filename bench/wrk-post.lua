-- POSTs the JSON body in $WRK_BODY_FILE on every request (and reports like wrk-report.lua).
local f = assert(io.open(os.getenv('WRK_BODY_FILE'), 'rb'))
wrk.method = 'POST'
wrk.body = f:read('*a')
f:close()
wrk.headers['Content-Type'] = 'application/json'

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
