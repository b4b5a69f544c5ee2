-- A new TCP connection per request: every request says Connection: close.
wrk.headers["Connection"] = "close"

done = function(summary, latency, requests)
   dofile("benchmarks/wrk/report.lua")
   report(summary, latency)
end
