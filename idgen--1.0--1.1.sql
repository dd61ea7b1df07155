/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

-- Segments (issue 9, items 7 and 8): the fence up to which a primary may
-- grant once its standbys have it, and segment_create() forgetting buffers
-- left by a row deleted by hand.  Rows granted before the update keep a NULL
-- fence until their next grant.
ALTER TABLE segment_alloc
    ADD COLUMN fence bigint,
    ADD CONSTRAINT segment_alloc_fence_check CHECK (fence >= next_value);

CREATE OR REPLACE FUNCTION segment_create(tag text, start bigint DEFAULT 1, step integer DEFAULT 1000)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tag IS NULL THEN
        RAISE EXCEPTION 'segment tag must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF tag = '' THEN
        RAISE EXCEPTION 'segment tag must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(tag) > 63 THEN
        RAISE EXCEPTION 'segment tag is too long'
            USING ERRCODE = 'name_too_long',
                  DETAIL = format('A tag has at most 63 bytes; this one has %s.', octet_length(tag));
    END IF;
    IF step IS NULL OR step <= 0 THEN
        RAISE EXCEPTION 'segment step must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The step given was %s.', coalesce(step::text, 'NULL')),
                  HINT = 'The step is how many numbers one grant reserves; 1000 is a good start.';
    END IF;
    IF start IS NULL OR start < 0 OR start > 9223372036854775807 - step THEN
        RAISE EXCEPTION 'segment start % is out of range', coalesce(start::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range',
                  DETAIL = 'The start must be at least 0 and leave room for one step below the largest bigint.';
    END IF;
    BEGIN
        INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step, last_timeline, fence)
        VALUES (tag, start, start, step, step, idgen._current_timeline(), start);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segment tag "%" already exists', tag
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use the existing tag, or drop it first with idgen.segment_drop().';
    END;
    -- Buffers left by a row deleted by hand must not serve the new tag.
    PERFORM idgen._segment_forget(tag);
    INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
    VALUES (tag, 'create', start, start, 'sql', idgen._current_timeline());
END;
$$;
