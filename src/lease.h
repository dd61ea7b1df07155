/*-------------------------------------------------------------------------
 *
 * lease.h
 *	  Worker-id leases: the state the lease worker shares with
 *	  snowflake_next() and idgen.status.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_LEASE_H
#define IDGEN_LEASE_H

#include "datatype/timestamp.h"

typedef enum LeaseState
{
	LEASE_STATIC,				/* static worker id, no coordinator */
	LEASE_ACQUIRING,			/* no lease yet */
	LEASE_HELD,					/* lease held and renewed */
	LEASE_FAIL_STATIC,			/* renewal failing; issuing until the deadline */
	LEASE_EXPIRED,				/* deadline passed; refusing */
	LEASE_CONFLICT				/* static id held elsewhere, lease lost, or layout refused */
} LeaseState;

/* SQLSTATEs raised by the coordinator's lease functions */
#define IDGEN_SQLSTATE_LAYOUT		"IG006"
#define IDGEN_SQLSTATE_CONFLICT		"IG007"
#define IDGEN_SQLSTATE_EXHAUSTED	"IG008"

/* True when this server leases its worker id (decided at start-up). */
extern bool idgen_lease_mode(void);

extern Size lease_shmem_size(void);
extern void lease_shmem_init(void);

/* For snowflake_next(): may an ID whose tick starts at start_ms go out? */
extern void lease_check_issuable(int64 start_ms);

/* For idgen.status and idgen.bit_budget() */
typedef struct LeaseSnapshot
{
	LeaseState	state;
	int32		worker_id;
	int64		generation;
	TimestampTz expires_at;		/* coordinator's expiry, or 0 */
	int64		deadline_in_ms; /* until this node stops issuing; <0 passed */
	int32		in_use;
	int32		capacity;
	char		last_error[256];
} LeaseSnapshot;

extern void lease_snapshot(LeaseSnapshot *snap);
extern void lease_snapshot_effective(LeaseSnapshot *snap);
extern const char *lease_state_name(LeaseState state);

/* Updates from the lease worker */
extern void lease_publish_held(int32 worker_id, int64 generation,
							   TimestampTz expires_at, int64 deadline_ns,
							   int64 horizon_ms, int32 in_use, int32 capacity);
extern void lease_set_state(LeaseState state, const char *error);
extern void lease_withdraw(LeaseState state, const char *error);

/* lease_worker.c */
extern void idgen_register_lease_worker(void);
extern PGDLLEXPORT void idgen_lease_worker_main(Datum main_arg);

#endif							/* IDGEN_LEASE_H */
