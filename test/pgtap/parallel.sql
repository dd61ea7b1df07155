-- idgen's volatility and parallel labels: what each function does decides
-- them, and a wrong label is a bug a user only meets in a parallel plan
-- (force_parallel_mode, or a large scan) or a folded constant.  One row per
-- function, with the reason; sql/parallel.sql runs the PARALLEL SAFE ones
-- in parallel mode.
--
--   v/s/i  VOLATILE (a new value per call, or reads state that changes
--          within a statement) / STABLE (fixed within a statement: layout
--          settings, now(), table reads) / IMMUTABLE (a pure function)
--   s      PARALLEL SAFE: runs in a parallel worker; its state is in
--          shared memory or per process by design (random bits), and it
--          neither writes tables nor starts subtransactions
--   r      PARALLEL RESTRICTED: reads backend-local state (a cached slot,
--          counters not flushed yet) or signals the idgen worker and waits
--          for it; runs in the leader only
--   u      PARALLEL UNSAFE: writes tables, takes advisory locks, changes
--          shared state, starts subtransactions (exception blocks) or sets
--          GUCs (switching to a table's owner)

BEGIN;
SELECT plan(2);

SELECT results_eq(
    $$SELECT p.oid::regprocedure::text, p.provolatile::text, p.proparallel::text
        FROM pg_proc p
       WHERE p.pronamespace = 'idgen'::regnamespace
       ORDER BY p.oid::regprocedure::text COLLATE "C"$$,
    $$VALUES
      -- column conversion: DDL, locks and table writes
      ('idgen._convert_finish(regclass,name,regclass,"char",text)', 'v', 'u'),
      ('idgen._convert_prepare(regclass,name,text)', 'v', 'u'),
      -- timeline of the WAL being written (shared memory)
      ('idgen._current_timeline()', 'v', 's'),
      -- session-level lease locks (the coordinator's lock table)
      ('idgen._lease_acquisition_lock()', 'v', 'u'),
      ('idgen._lease_acquisition_unlock()', 'v', 'u'),
      -- reads the security context; called only by the lease functions
      ('idgen._lease_check_caller()', 's', 'u'),
      -- compares with now(); sets search_path (a GUC)
      ('idgen._lease_check_floor(bigint,bigint,text)', 's', 'u'),
      -- session-level lease locks
      ('idgen._lease_lock(integer)', 'v', 'u'),
      ('idgen._lease_take_lock(integer)', 'v', 'u'),
      ('idgen._lease_unlock()', 'v', 'u'),
      -- an exception block (subtransaction)
      ('idgen._probe_lower_bound(idgen.probes)', 's', 'u'),
      -- table writes (probe_register/probe_unregister for their caller)
      ('idgen._probe_register(regrole,regclass,name,interval)', 'v', 'u'),
      -- switches user and search_path (GUC) to the table's owner
      ('idgen._probe_scan(regclass,name,text,regrole,text,int8range[])', 'v', 'u'),
      ('idgen._probe_unregister(regrole,regclass,name)', 'v', 'u'),
      -- a table read
      ('idgen._segment_exists(text)', 's', 's'),
      -- changes the shared segment buffers
      ('idgen._segment_forget(text)', 'v', 'u'),
      -- table reads
      ('idgen.audit_leases()', 's', 's'),
      ('idgen.audit_segments()', 's', 's'),
      -- reads the shared lease state
      ('idgen.bit_budget()', 'v', 's'),
      -- column conversion: DDL, locks and table writes
      ('idgen.convert_to_segment(regclass,name,text)', 'v', 'u'),
      ('idgen.convert_to_snowflake(regclass,name)', 'v', 'u'),
      -- table writes and advisory locks
      ('idgen.lease_acquire(text,integer,integer,integer,integer,integer,bigint,integer,integer,integer,integer,bigint)', 'v', 'u'),
      ('idgen.lease_release(integer,bigint,text,bigint)', 'v', 'u'),
      ('idgen.lease_renew(integer,bigint,text,integer,bigint)', 'v', 'u'),
      -- table writes
      ('idgen.probe_register(regclass,name,interval)', 'v', 'u'),
      ('idgen.probe_run()', 'v', 'u'),
      ('idgen.probe_unregister(regclass,name)', 'v', 'u'),
      -- the shared segment slots, read under the segment locks the leader
      -- may hold (monitoring: nothing gains from a worker)
      ('idgen.segment_buffers()', 'v', 'r'),
      -- table writes
      ('idgen.segment_create(text,bigint,integer)', 'v', 'u'),
      ('idgen.segment_drop(text)', 'v', 'u'),
      -- this backend's cached slot; signals the idgen worker and waits
      ('idgen.segment_next(text)', 'v', 'r'),
      ('idgen.segment_next(text,integer)', 'v', 'r'),
      -- depend on the layout settings only
      ('idgen.snowflake_decode(bigint)', 's', 's'),
      ('idgen.snowflake_min(timestamp with time zone)', 's', 's'),
      -- shared generator state; the time floor is WAL-logged, not a table write
      ('idgen.snowflake_next()', 'v', 's'),
      -- counters this backend has not flushed yet (without preload, all
      -- of them are this backend's own)
      ('idgen.stats()', 'v', 'r'),
      -- without preload, this backend's own generator state
      ('idgen.status()', 'v', 'r'),
      -- a new UUIDv7 (shared generator state), then pure text encoding
      ('idgen.typeid(text)', 'v', 's'),
      -- pure functions of the arguments
      ('idgen.typeid_decode(text)', 'i', 's'),
      ('idgen.typeid_encode(text,uuid)', 'i', 's'),
      ('idgen.ulid_decode(text)', 'i', 's'),
      ('idgen.ulid_encode(uuid)', 'i', 's'),
      -- shared generator state; random bits from a per-process buffer
      ('idgen.uuidv7()', 'v', 's'),
      ('idgen.uuidv7(timestamp with time zone)', 'v', 's'),
      -- pure functions of the argument
      ('idgen.uuidv7_min(timestamp with time zone)', 'i', 's'),
      ('idgen.uuidv7_time(uuid)', 'i', 's')$$,
    'volatility and parallel label of every idgen function');

-- No function with an exception block is PARALLEL SAFE or RESTRICTED (the
-- subtransaction fails with 25000 in parallel mode).
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'idgen'::regnamespace
         AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
         AND p.prosrc ~* '\mEXCEPTION\s+WHEN\M'
         AND p.proparallel <> 'u'$$,
    'no PL/pgSQL function with an exception block is PARALLEL SAFE or RESTRICTED');

SELECT * FROM finish();
ROLLBACK;
