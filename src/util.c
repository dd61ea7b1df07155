/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Helpers every part of idgen shares (declared in idgen.h).
 *
 * Only what several modules would otherwise each write out: it depends on
 * nothing of idgen's but idgen.h, so any file may use it without making
 * two modules depend on each other.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "idgen.h"

/*
 * The one "needs shared_preload_libraries" error.  The message names the
 * feature, so that a user who has only CREATE EXTENSION sees which part of
 * idgen is unavailable (idgen.uuidv7() works without preloading).
 */
void
idgen_require_preload(const char *what, const char *detail, const char *hint_extra)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("idgen %s need idgen to be loaded via shared_preload_libraries", what),
			 errdetail("%s", detail),
			 hint_extra ?
			 errhint("Add idgen to shared_preload_libraries in postgresql.conf and restart the server. %s", hint_extra) :
			 errhint("Add idgen to shared_preload_libraries in postgresql.conf and restart the server.")));
	pg_unreachable();
}
