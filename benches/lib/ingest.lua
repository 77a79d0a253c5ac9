#!/usr/bin/env sysbench
-- Ingestion traffic: autocommit INSERTs into a table with a UNIQUE key,
-- some of which repeat a key this thread already inserted (a sender's
-- retry), in the forms ingestion code uses.
--
--   --ingest-form=plain|ignore|upsert   INSERT (the client ignores 1062),
--                                        INSERT IGNORE, or INSERT … ON
--                                        DUPLICATE KEY UPDATE
--   --repeat-pct=N                       share of rows (percent) that
--                                        repeat a key
--   --rows-per-insert=N                  rows per statement
--
-- The table is ingest.events (created by benches/batch.sh):
--   id BIGINT AUTO_INCREMENT PRIMARY KEY, ukey BIGINT NOT NULL UNIQUE,
--   payload VARCHAR(100) NOT NULL
-- Every statement is one event, its duplicate error included (caught
-- here, so that sysbench neither restarts nor counts it as a failure).

sysbench.cmdline.options = {
   ingest_form = {"plain, ignore or upsert", "plain"},
   repeat_pct = {"percent of rows that repeat an earlier key", 1},
   rows_per_insert = {"rows per INSERT", 1},
}

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   -- Keys no other thread and no earlier run uses: the thread id, the
   -- start second, a counter (all well inside a double's exact range).
   next_key = sysbench.tid * 1e12 + (os.time() % 1000000) * 1e5
   last_key = nil
   local form = sysbench.opt.ingest_form
   if form == "plain" then
      head, tail = "INSERT INTO events (ukey, payload) VALUES ", ""
   elseif form == "ignore" then
      head, tail = "INSERT IGNORE INTO events (ukey, payload) VALUES ", ""
   elseif form == "upsert" then
      head = "INSERT INTO events (ukey, payload) VALUES "
      tail = " ON DUPLICATE KEY UPDATE payload = VALUES(payload)"
   else
      error("unknown --ingest-form: " .. form)
   end
end

local function row()
   local key
   if last_key ~= nil and sysbench.rand.uniform(1, 10000) <= sysbench.opt.repeat_pct * 100 then
      key = last_key
   else
      next_key = next_key + 1
      key = next_key
   end
   last_key = key
   return string.format("(%.0f, '%s')", key,
      sysbench.rand.string("event-###########-###########-###########-###########"))
end

function event()
   local rows = {}
   for i = 1, sysbench.opt.rows_per_insert do
      rows[i] = row()
   end
   -- A repeated key under the plain form is the client's 1062 to ignore.
   pcall(con.query, con, head .. table.concat(rows, ",") .. tail)
end

function thread_done()
   con:disconnect()
end
