/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

-- ---------------------------------------------------------------------------
-- Lease functions (issue 9 items 2, 6, 12; issue 11 item 5): SECURITY
-- DEFINER, node roles need EXECUTE only and a holding is bound to the role
-- that took it; the coordinator's locks live in a lock space no SQL outside
-- them reaches; a node taking back its own id after a crash starts above
-- its own durable floor; renewals are O(1) in the number of holders.
-- ---------------------------------------------------------------------------

ALTER TABLE leases ADD COLUMN holder_role name,
    ADD COLUMN start_floor_ms bigint NOT NULL DEFAULT 0;
-- holdings taken under 1.0 started above an unknown floor: assume the
-- highest one recorded, so that they never take the faster path
UPDATE leases SET start_floor_ms = time_floor_ms;

-- The coordinator's lease locks (src/lease_locks.c): lock tags no SQL
-- outside these functions can take, so that no role able to connect can
-- block leasing.  Only the lease functions below call them.
CREATE FUNCTION _lease_lock(worker_id integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'idgen_lease_lock'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_lock(integer) IS
'Internal: take this session''s lock on a leased worker id without waiting';

CREATE FUNCTION _lease_unlock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_unlock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_unlock() IS
'Internal: release this session''s worker-id lock';

CREATE FUNCTION _lease_acquisition_lock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_acquisition_lock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_acquisition_lock() IS
'Internal: serialise worker-id acquisitions, waiting at most lock_timeout';

REVOKE EXECUTE ON FUNCTION _lease_lock(integer), _lease_unlock(), _lease_acquisition_lock()
    FROM PUBLIC;

-- Take the lock on a worker id for a holding the caller has just shown to
-- be its own (holder identity and role, under the row's lock).  Another
-- session of the same role holding it can only be this node's own earlier
-- session, cut off by a partition or left by a crash, that the
-- coordinator has not ended yet: end it (waiting up to 1 s) rather than
-- make the node give up its id.  The pg_locks scan runs only then.
CREATE FUNCTION _lease_take_lock(p_worker_id integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stale integer;
BEGIN
    IF idgen._lease_lock(p_worker_id) THEN
        RETURN true;
    END IF;
    SELECT l.pid INTO stale
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND l.classid = 7534 AND l.objid = p_worker_id AND l.objsubid = 7534
       AND a.usename = session_user AND l.pid <> pg_backend_pid();
    RETURN stale IS NOT NULL AND pg_terminate_backend(stale, 1000)
           AND idgen._lease_lock(p_worker_id);
END;
$$;

COMMENT ON FUNCTION _lease_take_lock(integer) IS
'Internal: take the lock on the caller''s own leased worker id, ending its own stale session';

REVOKE EXECUTE ON FUNCTION _lease_take_lock(integer) FROM PUBLIC;

-- The lease functions are SECURITY DEFINER: nodes' roles get EXECUTE on
-- them and nothing else.  A holding belongs to the holder identity (the
-- node's system identifier/host:port) AND the role that took it
-- (session_user): only that role can renew or release it, or take the id
-- back without waiting for its quarantine.  Every argument is the
-- caller's; what a caller can do with them is limited to its own holding.
--
-- p_local_floor_ms: the node's durable time floor (WAL-replayed after a
-- crash): no Snowflake ID it ever issued carries a later time.  A node
-- that takes back the id whose latest holding was its own starts above
--   greatest(that holding's start_floor_ms, p_local_floor_ms)
-- instead of the id's time_floor_ms (the last horizon, up to a TTL
-- ahead).  Why that is safe: every ID ever issued under the id belongs
-- either to an earlier holding, and lies at or below the floor the latest
-- holding started above (start_floor_ms, which covered every earlier
-- holding when it was taken), or to the latest holding, which was this
-- data directory's and so lies at or below its durable floor (raised and
-- made durable before each ID left snowflake_next()).  time_floor_ms is
-- not lowered: any other node still starts above the horizon.  This rests
-- on the holder identity and role naming one data directory with its
-- whole WAL (see the README on cloned or restored data directories).
CREATE FUNCTION lease_acquire(p_holder text, p_pid integer,
                              p_timestamp_bits integer, p_worker_bits integer,
                              p_sequence_bits integer, p_tick_ms integer,
                              p_epoch_ms bigint,
                              p_ttl_s integer, p_margin_s integer,
                              p_static_id integer, p_prefer_id integer,
                              p_local_floor_ms bigint,
                              OUT worker_id integer, OUT generation bigint,
                              OUT expires_at timestamptz,
                              OUT previous_floor_ms bigint,
                              OUT in_use integer, OUT capacity integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lay      idgen.lease_layout;
    cap      integer;
    cand     integer;
    cur      idgen.leases;
    known    boolean;
    own      boolean;
    blockers text;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 OR p_margin_s NOT BETWEEN 0 AND 3600
       OR p_worker_bits NOT BETWEEN 0 AND 30 THEN
        RAISE EXCEPTION 'invalid lease parameters'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('TTL %s s, margin %s s, %s worker bits.', p_ttl_s, p_margin_s, p_worker_bits);
    END IF;
    cap := 1 << p_worker_bits;

    -- a fresh holding: let go of the lock an earlier holding left in this session
    PERFORM idgen._lease_unlock();

    -- Simultaneous first boots: one acquisition at a time.  The wait is
    -- bounded by lock_timeout (the lease worker sets it; 5 s otherwise),
    -- and a blocked acquisition names who blocks it.
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', true);
    END IF;
    BEGIN
        PERFORM idgen._lease_acquisition_lock();
    EXCEPTION WHEN lock_not_available THEN
        SELECT string_agg(format('pid %s (role %s)', l.pid, coalesce(a.usename::text, 'unknown')),
                          ', ' ORDER BY l.pid)
          INTO blockers
          FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
           AND l.classid = 7535 AND l.objid = 0 AND l.objsubid = 7534;
        RAISE EXCEPTION 'worker id acquisition is blocked on the coordinator'
            USING ERRCODE = 'lock_not_available',
                  DETAIL = format('Another session held idgen''s acquisition lock for longer than lock_timeout (%s): %s.',
                                  current_setting('lock_timeout'), coalesce(blockers, 'it has let go since')),
                  HINT = 'Only idgen''s lease functions take this lock, for the length of one call; end a stuck session with pg_terminate_backend().';
    END;

    SELECT * INTO lay FROM idgen.lease_layout FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO idgen.lease_layout (timestamp_bits, worker_bits, sequence_bits, tick_ms, epoch_ms)
        VALUES (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms);
    ELSIF (lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms)
          IS DISTINCT FROM (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms) THEN
        RAISE EXCEPTION 'Snowflake layout differs from the coordinator''s'
            USING ERRCODE = 'IG006',
                  DETAIL = format('The coordinator''s nodes use %s/%s/%s bits, tick %s ms, epoch %s ms; this node uses %s/%s/%s bits, tick %s ms, epoch %s ms.',
                                  lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms,
                                  p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms),
                  HINT = 'Every node leasing from one coordinator must use the same idgen.epoch, idgen.tick and bit settings.';
    END IF;

    -- Candidates in order: the static id; else the id this node held last,
    -- then every id without a live (or quarantined) lease of another holder.
    -- Streamed, never materialised: the id space can be 2^30.
    FOR cand IN
        SELECT p_static_id WHERE p_static_id >= 0
        UNION ALL
        SELECT p_prefer_id WHERE p_static_id < 0 AND p_prefer_id >= 0 AND p_prefer_id < cap
        UNION ALL
        SELECT g FROM generate_series(0, cap - 1) g
         WHERE p_static_id < 0 AND g IS DISTINCT FROM p_prefer_id
           AND NOT EXISTS (SELECT 1 FROM idgen.leases l
                            WHERE l.worker_id = g
                              AND (l.holder <> p_holder OR l.holder_role IS DISTINCT FROM session_user)
                              AND l.expires_at + make_interval(secs => p_margin_s) > now())
    LOOP
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = cand FOR UPDATE;
        known := FOUND;
        own := known AND cur.holder = p_holder AND cur.holder_role IS NOT DISTINCT FROM session_user;
        IF known AND NOT own
           AND cur.expires_at + make_interval(secs => p_margin_s) > now() THEN
            CONTINUE;           -- live, or within the quarantine after expiry
        END IF;
        IF NOT (CASE WHEN own THEN idgen._lease_take_lock(cand)
                     ELSE idgen._lease_lock(cand) END) THEN
            CONTINUE;           -- a live session still holds it
        END IF;

        worker_id := cand;
        IF own THEN
            previous_floor_ms := greatest(cur.start_floor_ms, p_local_floor_ms);
        ELSE
            previous_floor_ms := coalesce(cur.time_floor_ms, 0);
        END IF;
        expires_at := now() + make_interval(secs => p_ttl_s);
        IF known THEN
            generation := cur.generation + 1;
            UPDATE idgen.leases l
               SET holder = p_holder, holder_pid = p_pid, generation = lease_acquire.generation,
                   acquired_at = now(), renewed_at = now(),
                   expires_at = lease_acquire.expires_at, released_at = NULL,
                   time_floor_ms = greatest(l.time_floor_ms, lease_acquire.previous_floor_ms),
                   holder_role = session_user, start_floor_ms = lease_acquire.previous_floor_ms
             WHERE l.worker_id = cand;
        ELSE
            generation := 1;
            INSERT INTO idgen.leases (worker_id, holder, holder_pid, generation,
                                      acquired_at, renewed_at, expires_at,
                                      holder_role, start_floor_ms)
            VALUES (cand, p_holder, p_pid, 1, now(), now(), lease_acquire.expires_at,
                    session_user, 0);
        END IF;
        INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at)
        VALUES (cand, lease_acquire.generation, p_holder, now(), now(), lease_acquire.expires_at);

        -- counted here only: renewals stay O(1) in the number of holders
        SELECT count(*) INTO in_use FROM idgen.leases l
         WHERE l.released_at IS NULL AND l.expires_at > now();
        capacity := cap;
        RETURN;
    END LOOP;

    IF p_static_id >= 0 THEN
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = p_static_id;
        RAISE EXCEPTION 'worker id % is held by another node', p_static_id
            USING ERRCODE = 'IG007',
                  DETAIL = format('The lease of %s runs until %s (plus a %s s margin).',
                                  coalesce(cur.holder, 'an unknown session'), coalesce(cur.expires_at::text, 'its session ends'), p_margin_s),
                  HINT = 'Give every node its own idgen.worker_id, or set idgen.worker_id = -1 to lease a free one.';
    END IF;
    RAISE EXCEPTION 'no free worker id: all % ids are leased', cap
        USING ERRCODE = 'IG008',
              DETAIL = 'Every worker id is held by a live lease or is in its quarantine after expiry.',
              HINT = 'Raise idgen.worker_bits (all nodes and the coordinator must agree), or retire nodes.';
END;
$$;

COMMENT ON FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                                  integer, integer, integer, integer, bigint) IS
'Coordinator side, called by nodes'' lease workers: lease a free (or the static) worker id';

-- O(1) in the number of holders: two updates by primary key and a lookup
-- in this session's own lock table.
CREATE OR REPLACE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
                            p_ttl_s integer, p_time_floor_ms bigint,
                            OUT expires_at timestamptz, OUT in_use integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_expiry timestamptz;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'invalid lease TTL: % s', p_ttl_s
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    new_expiry := now() + make_interval(secs => p_ttl_s);
    -- The holding must be the caller's (holder identity and role; a holding
    -- taken before 1.1 recorded no role, and records the renewing one).
    -- Checked before the lock is taken, so a caller can never take the lock
    -- of a holding that is not its own.
    UPDATE idgen.leases l
       SET renewed_at = now(), expires_at = new_expiry,
           time_floor_ms = greatest(l.time_floor_ms, p_time_floor_ms),
           holder_role = session_user
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation
       AND l.holder = p_holder AND l.released_at IS NULL
       AND (l.holder_role = session_user OR l.holder_role IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    -- after a reconnect (or a coordinator failover) this session may not
    -- hold the id's lock yet; the error rolls the renewal back
    IF NOT idgen._lease_take_lock(p_worker_id) THEN
        RAISE EXCEPTION 'worker id % is locked by another session', p_worker_id
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.lease_history h SET renewed_at = now(), expires_at = new_expiry
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    expires_at := new_expiry;
    in_use := NULL;             -- counted at acquisition only
END;
$$;

COMMENT ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) IS
'Coordinator side: extend a lease and record its time horizon';

CREATE OR REPLACE FUNCTION lease_release(p_worker_id integer, p_generation bigint, p_holder text,
                              p_time_floor_ms bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- p_time_floor_ms is what the node actually reached, which may be below
    -- the horizon it reported; never below the floor the holding started
    -- above, which covers every earlier holding
    UPDATE idgen.leases l
       SET released_at = now(), expires_at = least(l.expires_at, now()),
           time_floor_ms = greatest(p_time_floor_ms, l.start_floor_ms)
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation AND l.holder = p_holder
       AND l.released_at IS NULL
       AND (l.holder_role = session_user OR l.holder_role IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.lease_history h SET released_at = now(), expires_at = least(h.expires_at, now())
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    PERFORM idgen._lease_unlock();
END;
$$;

COMMENT ON FUNCTION lease_release(integer, bigint, text, bigint) IS
'Coordinator side: give a lease back at clean shutdown with the floor actually reached';

-- lease_acquire has a new signature: roles that could call the 1.0 one
-- can call the new one; the 1.0 one goes.  (Roles given DML on the lease
-- tables for 1.0 keep it until the DBA revokes it; 1.1 needs none.)
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT a.grantee::regrole AS grantee
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = '@extschema@.lease_acquire(text, integer, integer, integer, integer, integer, bigint, integer, integer, integer, integer)'::pg_catalog.regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.lease_acquire(text, integer, integer, integer, integer, integer, bigint, integer, integer, integer, integer, bigint) TO %s',
                                  r.grantee);
    END LOOP;
END $$;
DROP FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                            integer, integer, integer, integer);

-- Only the roles nodes connect as: superusers, or roles the DBA grants
-- EXECUTE on these three functions (and nothing on the tables).
REVOKE EXECUTE ON FUNCTION
    lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                  integer, integer, integer, integer, bigint),
    lease_renew(integer, bigint, text, integer, bigint),
    lease_release(integer, bigint, text, bigint) FROM PUBLIC;
