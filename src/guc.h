/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  The idgen.* settings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_GUC_H
#define IDGEN_GUC_H

/* Snowflake layout (PGC_POSTMASTER) */
extern int	idgen_worker_id;
extern char *idgen_epoch_string;
extern int64 idgen_epoch_ms;	/* idgen.epoch parsed: Unix milliseconds */
extern int	idgen_timestamp_bits;
extern int	idgen_worker_bits;
extern int	idgen_sequence_bits;
extern int	idgen_tick_ms;
extern int	idgen_timestamp_warn_years;

/* Snowflake clock handling (PGC_SIGHUP) */
extern int	idgen_max_clock_wait_ms;
extern int	idgen_time_floor_reserve_ms;
extern bool idgen_require_clock_sync;
extern int	idgen_sync_standby_timeout_ms;

/* Worker-id leases */
extern char *idgen_coordinator;
extern int	idgen_lease_ttl_s;
extern int	idgen_lease_max_per_role;

/* Background worker and segments */
extern char *idgen_database;
extern int	idgen_segment_max_tags;
extern int	idgen_segment_prefetch_at;
extern int	idgen_segment_duration_s;
extern int	idgen_segment_min_range_ms;
extern int	idgen_segment_max_step;
extern int	idgen_segment_wait_timeout_ms;
extern int	idgen_segment_burn_steps;
extern int	idgen_segment_burn_window_s;
extern int	idgen_segment_interleave_count;
extern int	idgen_segment_interleave_index;

/* Uniqueness probe */
extern int	idgen_probe_interval_s;
extern int	idgen_probe_timeout_ms;

extern void idgen_define_gucs(void);
extern bool idgen_leasing_configured(void);
extern bool idgen_parse_epoch(const char *input, int64 *unix_ms);

#endif							/* IDGEN_GUC_H */
