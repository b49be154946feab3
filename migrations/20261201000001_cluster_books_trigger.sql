-- The books rule, stated once: a cluster's allocated resources are the sum of what runs on it.
-- Every statement that changes deployments adjusts the books of the clusters it touched by what
-- runs after it minus what ran before, in one UPDATE per statement (not one per row), so a pass
-- starting 10,000 deployments still writes each cluster once. The CHECK constraints on clusters
-- still refuse any statement that would over-commit one.

CREATE FUNCTION deployments_keep_cluster_books() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE clusters c
        SET alloc_cpu_millis = c.alloc_cpu_millis + t.cpu,
            alloc_ram_mgib = c.alloc_ram_mgib + t.ram,
            alloc_gpu = c.alloc_gpu + t.gpu
        FROM (SELECT cluster_id, sum(cpu_millis) AS cpu, sum(ram_mgib) AS ram, sum(gpu) AS gpu
              FROM new_rows WHERE status = 'running' GROUP BY cluster_id) t
        WHERE c.id = t.cluster_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE clusters c
        SET alloc_cpu_millis = c.alloc_cpu_millis - t.cpu,
            alloc_ram_mgib = c.alloc_ram_mgib - t.ram,
            alloc_gpu = c.alloc_gpu - t.gpu
        FROM (SELECT cluster_id, sum(cpu_millis) AS cpu, sum(ram_mgib) AS ram, sum(gpu) AS gpu
              FROM old_rows WHERE status = 'running' GROUP BY cluster_id) t
        WHERE c.id = t.cluster_id;
    ELSE
        UPDATE clusters c
        SET alloc_cpu_millis = c.alloc_cpu_millis + t.cpu,
            alloc_ram_mgib = c.alloc_ram_mgib + t.ram,
            alloc_gpu = c.alloc_gpu + t.gpu
        FROM (SELECT cluster_id, sum(cpu) AS cpu, sum(ram) AS ram, sum(gpu) AS gpu
              FROM (SELECT cluster_id, cpu_millis AS cpu, ram_mgib AS ram, gpu
                    FROM new_rows WHERE status = 'running'
                    UNION ALL
                    SELECT cluster_id, -cpu_millis, -ram_mgib, -gpu
                    FROM old_rows WHERE status = 'running') moved
              GROUP BY cluster_id) t
        WHERE c.id = t.cluster_id AND (t.cpu, t.ram, t.gpu) <> (0, 0, 0);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deployments_books_on_insert AFTER INSERT ON deployments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deployments_keep_cluster_books();
CREATE TRIGGER deployments_books_on_update AFTER UPDATE ON deployments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deployments_keep_cluster_books();
CREATE TRIGGER deployments_books_on_delete AFTER DELETE ON deployments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deployments_keep_cluster_books();
