-- One request at a time per persistent connection (wrk's default), reported.
done = function(summary, latency, requests)
   dofile("benchmarks/wrk/report.lua")
   report(summary, latency)
end
