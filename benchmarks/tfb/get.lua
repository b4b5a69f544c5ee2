-- TechEmpower load: one GET of the URL's path (with its query) at a time per keep-alive
-- connection, with the headers TFB's wrk runs send; with a depth after `--`
-- (`-- 16`), that many requests are pipelined per round trip, as in TFB's plaintext test.
-- Prints the RESULT line of benchmarks/wrk/report.lua (run from the repository root).
init = function(args)
   local depth = tonumber(args[1]) or 1
   local headers = {
      ["Accept"] = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7",
      ["Connection"] = "keep-alive",
   }
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format("GET", wrk.path, headers)
   end
   req = table.concat(r)
end

request = function()
   return req
end

done = function(summary, latency, requests)
   dofile("benchmarks/wrk/report.lua")
   report(summary, latency)
end
