/*-------------------------------------------------------------------------
 *
 * ulid.c
 *	  ULID text form of a UUID: idgen.ulid_encode(uuid) and
 *	  idgen.ulid_decode(text).
 *
 * A ULID is 128 bits, a 48-bit millisecond time followed by 80 other bits,
 * written as 26 characters of uppercase Crockford base32 (base32.c).  A
 * UUIDv7 has the same 48-bit millisecond time in its first six bytes, so a
 * UUIDv7 written as a ULID is a ULID of the same time, and because the
 * encoding keeps the bit order, ULIDs of idgen's UUIDv7s sort (as text,
 * COLLATE "C") in the same order as the UUIDs.  The other 80 bits keep the
 * UUID's version and variant bits: decoding gives the UUID back.
 *
 * Decoding accepts either case, as the ULID spec asks, and nothing else:
 * no hyphens, no look-alike letters, no value above 128 bits (a first
 * character above '7').  Errors are 22P02.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "base32.h"

PG_FUNCTION_INFO_V1(idgen_ulid_encode);

/* idgen.ulid_encode(id uuid) RETURNS text */
Datum
idgen_ulid_encode(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(0);
	text	   *result = (text *) palloc(VARHDRSZ + IDGEN_BASE32_LEN);

	SET_VARSIZE(result, VARHDRSZ + IDGEN_BASE32_LEN);
	idgen_base32_encode(uuid->data, VARDATA(result), true);
	PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(idgen_ulid_decode);

/* idgen.ulid_decode(ulid text) RETURNS uuid */
Datum
idgen_ulid_decode(PG_FUNCTION_ARGS)
{
	text	   *input = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(input);
	int			len = VARSIZE_ANY_EXHDR(input);
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	int			bad_pos;

	bad_pos = idgen_base32_first_non_ascii(s, len);
	if (bad_pos < 0 && len != IDGEN_BASE32_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid ULID \"%s\": %d characters instead of 26",
						idgen_base32_quote_input(s, len), len)));
	switch (bad_pos >= 0 ? IDGEN_BASE32_BAD_CHAR :
			idgen_base32_decode(s, uuid->data, true, &bad_pos))
	{
		case IDGEN_BASE32_OK:
			break;
		case IDGEN_BASE32_UPPERCASE:	/* not reported when folding case */
		case IDGEN_BASE32_BAD_CHAR:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid ULID \"%s\": %s is not in the base32 alphabet",
							idgen_base32_quote_input(s, len),
							idgen_base32_describe_char(s, bad_pos)),
					 errdetail("A ULID uses only 0123456789ABCDEFGHJKMNPQRSTVWXYZ, in either case (no I, L, O, U, no hyphens).")));
			break;
		case IDGEN_BASE32_OVERFLOW:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid ULID \"%s\": value above 128 bits",
							idgen_base32_quote_input(s, len)),
					 errdetail("The largest ULID is 7ZZZZZZZZZZZZZZZZZZZZZZZZZ: the first character is at most 7.")));
			break;
	}
	PG_RETURN_UUID_P(uuid);
}
