-- scripts/catalog-snapshot.sql: the catalog of extension idgen in one
-- database, one line per fact, sorted and free of OIDs, so that two
-- databases (a fresh install and an updated one, or the same install
-- before and after a change to the scripts) compare with diff:
--
--   psql -X -d DB -f scripts/catalog-snapshot.sql > DB.snapshot
--
-- (scripts/catalog-snapshot runs it on a throwaway server.)  It covers
-- every member of the extension; each function's full definition, owner,
-- ACL, cost, rows and comment; each relation's kind, owner, ACL, options,
-- comment, view definition, index definitions, sequence parameters,
-- columns (type, NOT NULL, default, identity, collation, ACL, comment),
-- constraints, triggers and rules; the types; the initial privileges
-- (pg_init_privs) that pg_dump compares ACLs against; the config-dump
-- tables in their order; every dependency of the extension's objects and
-- on its schema; the schema's owner and ACL.  ACLs are compared as stored,
-- so the order of their entries counts.
\pset format unaligned
\pset tuples_only on
\pset pager off
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'idgen'),
members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
facts(line) AS (
    SELECT format('member: %s', pg_describe_object(classid, objid, objsubid)) FROM members
UNION ALL
    SELECT format('extension: version=%s relocatable=%s schema=%s owner=%s',
                  e.extversion, e.extrelocatable, e.extnamespace::regnamespace, pg_get_userbyid(e.extowner))
      FROM pg_extension e WHERE e.extname = 'idgen'
UNION ALL
    SELECT format('config dump #%s: %s where %L', u.n, u.cfg::regclass, u.cond)
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) WITH ORDINALITY AS u(cfg, cond, n)
     WHERE e.extname = 'idgen'
UNION ALL
    SELECT format('schema: %s owner=%s acl=%s comment=%s', n.nspname, pg_get_userbyid(n.nspowner),
                  n.nspacl, obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n, ext WHERE n.oid = ext.extnamespace
UNION ALL
    SELECT format('function: %s owner=%s acl=%s comment=%s cost=%s rows=%s%s%s',
                  p.oid::regprocedure, pg_get_userbyid(p.proowner), p.proacl,
                  obj_description(p.oid, 'pg_proc'), p.procost, p.prorows,
                  chr(10), pg_get_functiondef(p.oid))
      FROM pg_proc p, ext WHERE p.pronamespace = ext.extnamespace
UNION ALL
    SELECT format('relation: %s kind=%s persistence=%s owner=%s acl=%s options=%s comment=%s rowtype=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
                  c.relacl, c.reloptions, obj_description(c.oid, 'pg_class'),
                  c.reltype::regtype)
      FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace
UNION ALL
    SELECT format('view: %s%s%s', c.oid::regclass, chr(10), pg_get_viewdef(c.oid))
      FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace AND c.relkind IN ('v', 'm')
UNION ALL
    SELECT format('index: %s %s', c.oid::regclass, pg_get_indexdef(c.oid))
      FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace AND c.relkind IN ('i', 'I')
UNION ALL
    SELECT format('sequence: %s type=%s start=%s inc=%s max=%s min=%s cache=%s cycle=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement,
                  s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
      FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid, ext
     WHERE c.relnamespace = ext.extnamespace
UNION ALL
    SELECT format('column: %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s collation=%s acl=%s options=%s comment=%s',
                  a.attrelid::regclass, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                  a.attcollation::regcollation, a.attacl,
                  -- some server builds record a per-install column version
                  -- in attoptions (pg_attver=...): not part of the design
                  (SELECT array_agg(o) FROM unnest(a.attoptions) o WHERE o NOT LIKE $$pg_attver=%$$), col_description(a.attrelid, a.attnum))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum, ext
     WHERE c.relnamespace = ext.extnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
    SELECT format('constraint: %s on %s type=%s deferrable=%s %s comment=%s',
                  co.conname, co.conrelid::regclass, co.contype, co.condeferrable,
                  pg_get_constraintdef(co.oid), obj_description(co.oid, 'pg_constraint'))
      FROM pg_constraint co, ext WHERE co.connamespace = ext.extnamespace
UNION ALL
    SELECT format('type: %s type=%s owner=%s acl=%s comment=%s', t.oid::regtype, t.typtype,
                  pg_get_userbyid(t.typowner), t.typacl, obj_description(t.oid, 'pg_type'))
      FROM pg_type t, ext WHERE t.typnamespace = ext.extnamespace
UNION ALL
    SELECT format('trigger: %s', pg_get_triggerdef(tg.oid))
      FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid, ext
     WHERE c.relnamespace = ext.extnamespace
UNION ALL
    SELECT format('rule: %s on %s', r.rulename, r.ev_class::regclass)
      FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class, ext
     WHERE c.relnamespace = ext.extnamespace
UNION ALL
    SELECT format('description: %s = %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
      FROM pg_description d
     WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM members
                                      UNION SELECT 'pg_namespace'::regclass, extnamespace FROM ext
                                      UNION SELECT 'pg_constraint'::regclass, co.oid FROM pg_constraint co, ext WHERE co.connamespace = ext.extnamespace
                                      UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace)
UNION ALL
    SELECT format('init privs: %s %s type=%s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid),
                  i.objsubid, i.privtype, i.initprivs)
      FROM pg_init_privs i
     WHERE (i.classoid, i.objoid) IN (SELECT classid, objid FROM members
                                      UNION SELECT 'pg_namespace'::regclass, extnamespace FROM ext
                                      UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace)
UNION ALL
    SELECT format('depend: %s -> %s type=%s',
                  pg_describe_object(d.classid, d.objid, d.objsubid),
                  pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype)
      FROM pg_depend d, ext
     WHERE (d.classid, d.objid) IN (SELECT classid, objid FROM members
                                    UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace
                                    UNION SELECT 'pg_type'::regclass, t.oid FROM pg_type t, ext WHERE t.typnamespace = ext.extnamespace
                                    UNION SELECT 'pg_constraint'::regclass, co.oid FROM pg_constraint co, ext WHERE co.connamespace = ext.extnamespace
                                    UNION SELECT 'pg_attrdef'::regclass, ad.oid FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid, ext WHERE c.relnamespace = ext.extnamespace
                                    UNION SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class, ext WHERE c.relnamespace = ext.extnamespace)
        OR (d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid)
        OR (d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ext.extnamespace)
UNION ALL
    SELECT format('shdepend: %s -> %s type=%s', pg_describe_object(s.classid, s.objid, s.objsubid),
                  pg_describe_object(s.refclassid, s.refobjid, 0), s.deptype)
      FROM pg_shdepend s, ext
     WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND (s.classid, s.objid) IN (SELECT classid, objid FROM members
                                    UNION SELECT 'pg_namespace'::regclass, extnamespace FROM ext
                                    UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace)
)
SELECT line FROM facts ORDER BY line COLLATE "C";
