/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  Every SQLSTATE of idgen's own: class IG.
 *
 * One header, one form (ERRCODE_ macros for ereport(); unpack_sql_state()
 * gives the text form where a code arrives as text, from the coordinator).
 * Codes the SQL script raises (USING ERRCODE = 'IG0nn') are listed too, so
 * that this is the one list.  The SQLSTATE table in docs/reference.md
 * says what each means to a user.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_ERRCODES_H
#define IDGEN_ERRCODES_H

/* Snowflake: the clock is behind the last ID for longer than idgen.max_clock_wait */
#define ERRCODE_IDGEN_CLOCK_BEHIND			MAKE_SQLSTATE('I','G','0','0','1')
/* Snowflake: the clock is at or below the durable time floor */
#define ERRCODE_IDGEN_TIME_FLOOR			MAKE_SQLSTATE('I','G','0','0','2')
/* Snowflake: idgen.require_clock_sync and the kernel says unsynchronised */
#define ERRCODE_IDGEN_CLOCK_UNSYNCHRONISED	MAKE_SQLSTATE('I','G','0','0','3')
/* Snowflake: the timestamp bits are exhausted */
#define ERRCODE_IDGEN_TIMESTAMP_EXHAUSTED	MAKE_SQLSTATE('I','G','0','0','4')
/* Snowflake: no permission to issue (no worker id, lease expired) */
#define ERRCODE_IDGEN_NO_WORKER_ID			MAKE_SQLSTATE('I','G','0','0','5')
/* Snowflake layout differs from the data directory's or the coordinator's */
#define ERRCODE_IDGEN_LAYOUT_CHANGED		MAKE_SQLSTATE('I','G','0','0','6')
/* Coordinator (SQL): the worker id is held by another node, or the lease is lost */
#define ERRCODE_IDGEN_LEASE_CONFLICT		MAKE_SQLSTATE('I','G','0','0','7')
/* Coordinator (SQL): every worker id is leased */
#define ERRCODE_IDGEN_LEASES_EXHAUSTED		MAKE_SQLSTATE('I','G','0','0','8')
/* Synchronous standbys did not confirm within idgen.sync_standby_timeout */
#define ERRCODE_IDGEN_STANDBY_TIMEOUT		MAKE_SQLSTATE('I','G','0','0','9')
/* Coordinator (SQL): the calling role holds idgen.lease_max_per_role leases */
#define ERRCODE_IDGEN_LEASES_PER_ROLE		MAKE_SQLSTATE('I','G','0','1','0')
/* Segments: no range could be granted within idgen.segment_wait_timeout */
#define ERRCODE_IDGEN_SEGMENT_UNAVAILABLE	MAKE_SQLSTATE('I','G','0','1','1')

#endif							/* IDGEN_ERRCODES_H */
