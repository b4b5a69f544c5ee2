-- Haywire's classic pipelined benchmark: wrk sends N GETs per round trip.
-- Usage: wrk -t1 -c64 -d8s -s benchmarks/pipelined_get.lua http://127.0.0.1:8000/ -- 16
-- The pipeline depth is the first argument after `--` (default 16); an optional
-- second argument is the path (default: the URL's path).

init = function(args)
   local depth = tonumber(args[1]) or 16
   local path = args[2] or wrk.path
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format("GET", path)
   end
   req = table.concat(r)
end

request = function()
   return req
end

-- Run from the repository root (as benchmarks/run.sh does), it also prints the RESULT
-- line of benchmarks/wrk/report.lua; elsewhere that is skipped.
done = function(summary, latency, requests)
   local ok = pcall(dofile, "benchmarks/wrk/report.lua")
   if ok then report(summary, latency) end
end
