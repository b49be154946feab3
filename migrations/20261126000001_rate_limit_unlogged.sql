-- Rate-limit buckets are taken on every authenticated request. Unlogged, a take commits without
-- waiting for a WAL flush; after a crash the buckets start full again, which only forgives.
ALTER TABLE rate_limit_buckets SET UNLOGGED;
