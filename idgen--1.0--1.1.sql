/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

-- Lease tables are no longer dumped by pg_dump: they are a coordinator's
-- live state and audit trail, not configuration (see idgen--1.1.sql).
-- Dropping a table from the extension removes its config-dump mark.
ALTER EXTENSION idgen DROP TABLE lease_layout;
ALTER EXTENSION idgen ADD TABLE lease_layout;
ALTER EXTENSION idgen DROP TABLE leases;
ALTER EXTENSION idgen ADD TABLE leases;
ALTER EXTENSION idgen DROP TABLE lease_history;
ALTER EXTENSION idgen ADD TABLE lease_history;
