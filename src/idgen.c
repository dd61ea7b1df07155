/*-------------------------------------------------------------------------
 *
 * idgen.c
 *	  Module entry point: _PG_init.
 *
 * Order, as in PostgreSQL's contrib modules: what works without preloading
 * first (the statistics callback that idgen.uuidv7() counts through); then,
 * only when loaded through shared_preload_libraries, the settings (all of
 * them are tied to shared state), the layout checks, the WAL resource
 * manager, the shared-memory hooks and the background workers (bgw.c's
 * registration table).  Without preload, idgen.uuidv7() works per backend
 * and the functions that need shared memory refuse with
 * ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE and a hint naming the setting
 * (idgen_require_preload()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "bgw.h"
#include "floor.h"
#include "guc.h"
#include "idgen.h"
#include "segment.h"
#include "shmem.h"
#include "snowflake.h"
#include "stats.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	idgen_stats_init_backend();

	if (!process_shared_preload_libraries_in_progress)
		return;

	idgen_define_gucs();
	MarkGUCPrefixReserved("idgen");

	idgen_snowflake_check_layout();
	idgen_floor_register_rmgr();
	idgen_shmem_install_hooks();
	idgen_segment_install_hooks();

	/*
	 * No background workers in pg_upgrade's binary-upgrade mode (as core's
	 * logical replication launcher): they would connect to idgen.database,
	 * which pg_upgrade drops and re-creates.
	 */
	if (IsBinaryUpgrade)
		return;
	idgen_bgw_register_static();
}
