-- pgbench: one single-row insert per transaction (the ingest comparison).
INSERT INTO pgb_insert (k, body) VALUES (md5(random()::text), decode(md5(random()::text), 'hex'));
