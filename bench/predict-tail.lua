-- wrk script: bench/predict.lua plus the far tail of the latency distribution (a stall
-- that holds every connection shows in p99.99 before it reaches p99).
dofile("bench/predict.lua")
done = function(summary, latency, requests)
  io.write(string.format("tail: p99.9 %.2fms p99.99 %.2fms max %.2fms requests %d\n",
    latency:percentile(99.9) / 1000, latency:percentile(99.99) / 1000, latency.max / 1000,
    summary.requests))
end
