-- wrk script: each thread sends its share of the pre-signed deliveries in $PATCHBAY_INGEST_REQUESTS
-- (written by sign.py), each once, and counts answers other than 204.
local counter = 1
local threads = {}
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
end
function init(args)
  reqs = {}
  local i = 0
  for line in io.lines(os.getenv("PATCHBAY_INGEST_REQUESTS")) do
    if i % 2 == (tid - 1) then
      local id, ts, sig, body = line:match("(%S+) (%S+) (%S+) (.*)")
      reqs[#reqs + 1] = wrk.format("POST", nil, {["webhook-id"]=id, ["webhook-timestamp"]=ts, ["webhook-signature"]=sig, ["content-type"]="application/json"}, body)
    end
    i = i + 1
  end
  idx = 0
  bad = 0
end
function request()
  idx = idx + 1
  return reqs[idx]
end
function response(status, headers, body)
  if status ~= 204 then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("non2xx_total=%d\n", summary.errors.status))
end
