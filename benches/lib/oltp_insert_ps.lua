#!/usr/bin/env sysbench
-- Single-row autocommit INSERTs through a prepared statement.
--
-- Sysbench's own oltp_insert sends every INSERT with con:query(), so its
-- --db-ps-mode has no effect: it is always the text protocol. This script
-- sends the same statement, with the same values, through con:prepare():
-- with --db-ps-mode=auto that is COM_STMT_PREPARE once per connection and
-- table, then one COM_STMT_EXECUTE per event; with --db-ps-mode=disable
-- sysbench substitutes the values itself and sends COM_QUERY.
--
-- id is bound as 0, so AUTO_INCREMENT assigns it (as in oltp_insert with
-- the default --auto-inc=on) and runs never collide. Tables come from
-- `sysbench oltp_insert prepare` (same options: --tables, --table-size).

require("oltp_common")

function prepare_statements()
   -- stmt[t].inserts and param[t].inserts, one per table, from the
   -- statement definitions in oltp_common.lua:
   -- INSERT INTO sbtestN (id, k, c, pad) VALUES (?, ?, ?, ?)
   prepare_for_each_table("inserts")
end

function event()
   local t = sysbench.rand.uniform(1, sysbench.opt.tables)
   local p = param[t].inserts
   p[1]:set(0)
   p[2]:set(sysbench.rand.default(1, sysbench.opt.table_size))
   p[3]:set(get_c_value())
   p[4]:set(get_pad_value())
   stmt[t].inserts:execute()
end
