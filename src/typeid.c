/*-------------------------------------------------------------------------
 *
 * typeid.c
 *	  TypeID (spec 0.3.0): idgen.typeid(prefix), idgen.typeid_encode(prefix,
 *	  uuid) and idgen.typeid_decode(typeid).
 *
 * A TypeID is a type prefix, an underscore and a UUID in 26 characters of
 * lowercase Crockford base32 (base32.c): user_01h455vb4pex5vsknk084sn02q.
 * The prefix matches ^([a-z]([a-z_]*[a-z])?)?$ and has at most 63
 * characters; when it is empty the underscore is left out too.  Since the
 * prefix may itself contain underscores, the suffix is what follows the
 * last one.
 *
 * Anything the specification calls invalid raises
 * ERRCODE_INVALID_TEXT_REPRESENTATION (22P02) with the rule that was broken
 * in the message, in encode as in decode, so that an application sees one
 * SQLSTATE for "not a TypeID" wherever the bad prefix comes from.
 *
 * idgen.typeid() generates on idgen.uuidv7() (the spec requires a UUIDv7
 * for new TypeIDs); encode and decode accept any UUID, as the spec allows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "base32.h"
#include "uuidv7.h"

#define TYPEID_PREFIX_MAX		63
#define TYPEID_ALPHABET			"0123456789abcdefghjkmnpqrstvwxyz"

/*
 * Raise 22P02 for the input shown, naming the rule broken.  what (a
 * typeid_what() call) is evaluated only when the error is raised, so the
 * valid path builds no message.
 */
#define typeid_invalid(what, rule, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), \
			 errmsg("invalid TypeID %s: %s", (what), (rule)), \
			 __VA_ARGS__))

/*
 * How messages show the input: the TypeID in quotes, or the word prefix
 * and the prefix in quotes when a prefix alone was given (typeid(),
 * typeid_encode()).
 */
static const char *
typeid_what(const char *input, int len, bool prefix_only)
{
	return psprintf(prefix_only ? "prefix \"%s\"" : "\"%s\"",
					idgen_base32_quote_input(input, len));
}

#define TYPEID_PREFIX_RULE \
	"A prefix has at most 63 characters, only the letters a-z and underscores, and starts and ends with a letter: ^([a-z]([a-z_]*[a-z])?)?$."

/* The rule a prefix of len bytes breaks, or NULL if the spec allows it. */
static const char *
typeid_prefix_problem(const char *prefix, int len)
{
	if (idgen_base32_first_non_ascii(prefix, len) >= 0)
		return "prefix contains a character that is not ASCII";
	if (len > TYPEID_PREFIX_MAX)
		return psprintf("prefix has %d characters, more than 63", len);
	for (int i = 0; i < len; i++)
	{
		char		c = prefix[i];

		if (c >= 'a' && c <= 'z')
			continue;
		if (c == '_')
		{
			if (i == 0)
				return "prefix starts with an underscore";
			if (i == len - 1)
				return "prefix ends with an underscore";
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			return "prefix contains an uppercase letter";
		return psprintf("prefix contains %s",
						idgen_base32_describe_char(prefix, i));
	}
	return NULL;
}

/* Raise 22P02 unless the prefix argument of typeid()/typeid_encode() is valid. */
static void
typeid_check_prefix_arg(const char *prefix, int len)
{
	const char *problem = typeid_prefix_problem(prefix, len);

	if (problem)
		typeid_invalid(typeid_what(prefix, len, true), problem,
					   errdetail(TYPEID_PREFIX_RULE));
}

/* The TypeID text of a checked prefix and a UUID. */
static text *
typeid_build(const char *prefix, int prefix_len, const pg_uuid_t *uuid)
{
	int			len = prefix_len + (prefix_len > 0 ? 1 : 0) + IDGEN_BASE32_LEN;
	text	   *result = (text *) palloc(VARHDRSZ + len);
	char	   *p = VARDATA(result);

	SET_VARSIZE(result, VARHDRSZ + len);
	if (prefix_len > 0)
	{
		memcpy(p, prefix, prefix_len);
		p[prefix_len] = '_';
		p += prefix_len + 1;
	}
	idgen_base32_encode(uuid->data, p, false);
	return result;
}

PG_FUNCTION_INFO_V1(idgen_typeid);

/* idgen.typeid(prefix text) RETURNS text: a new TypeID on a UUIDv7 */
Datum
idgen_typeid(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(prefix);
	pg_uuid_t	uuid;

	typeid_check_prefix_arg(VARDATA_ANY(prefix), len);
	idgen_uuidv7_generate(&uuid);
	PG_RETURN_TEXT_P(typeid_build(VARDATA_ANY(prefix), len, &uuid));
}

PG_FUNCTION_INFO_V1(idgen_typeid_encode);

/* idgen.typeid_encode(prefix text, id uuid) RETURNS text */
Datum
idgen_typeid_encode(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(1);
	int			len = VARSIZE_ANY_EXHDR(prefix);

	typeid_check_prefix_arg(VARDATA_ANY(prefix), len);
	PG_RETURN_TEXT_P(typeid_build(VARDATA_ANY(prefix), len, uuid));
}

PG_FUNCTION_INFO_V1(idgen_typeid_decode);

/*
 * idgen.typeid_decode(typeid text, OUT prefix text, OUT id uuid)
 */
Datum
idgen_typeid_decode(PG_FUNCTION_ARGS)
{
	text	   *input = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(input);
	int			len = VARSIZE_ANY_EXHDR(input);
	const char *sep = NULL;
	const char *suffix;
	int			prefix_len;
	int			suffix_len;
	int			bad_pos;
	const char *problem;
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/* the suffix has no underscore: it is what follows the last one */
	for (int i = len - 1; i >= 0; i--)
		if (s[i] == '_')
		{
			sep = s + i;
			break;
		}
	if (sep == NULL)
	{
		prefix_len = 0;
		suffix = s;
	}
	else
	{
		prefix_len = sep - s;
		suffix = sep + 1;
		if (prefix_len == 0)
			typeid_invalid(typeid_what(s, len, false), "separator \"_\" with an empty prefix",
						   errdetail("A TypeID with an empty prefix is the suffix alone, without the underscore."));
	}
	suffix_len = len - (suffix - s);

	problem = typeid_prefix_problem(s, prefix_len);
	if (problem)
		typeid_invalid(typeid_what(s, len, false), problem,
					   errdetail(TYPEID_PREFIX_RULE));

	if (idgen_base32_first_non_ascii(suffix, suffix_len) >= 0)
		typeid_invalid(typeid_what(s, len, false), "suffix contains a character that is not ASCII",
					   errdetail("The suffix uses only " TYPEID_ALPHABET " (no i, l, o, u, no hyphens)."));
	if (suffix_len != IDGEN_BASE32_LEN)
		typeid_invalid(typeid_what(s, len, false),
					   psprintf("suffix has %d characters instead of 26", suffix_len),
					   errdetail("The suffix is the UUID in 26 characters of base32."));
	switch (idgen_base32_decode(suffix, uuid->data, false, &bad_pos))
	{
		case IDGEN_BASE32_OK:
			break;
		case IDGEN_BASE32_UPPERCASE:
			typeid_invalid(typeid_what(s, len, false), "suffix contains an uppercase letter",
						   errdetail("The suffix is lowercase base32: " TYPEID_ALPHABET "."));
			break;
		case IDGEN_BASE32_BAD_CHAR:
			typeid_invalid(typeid_what(s, len, false),
						   psprintf("suffix contains %s, which is not in the base32 alphabet",
									idgen_base32_describe_char(suffix, bad_pos)),
						   errdetail("The suffix uses only " TYPEID_ALPHABET " (no i, l, o, u, no hyphens)."));
			break;
		case IDGEN_BASE32_OVERFLOW:
			typeid_invalid(typeid_what(s, len, false), "suffix is above 7zzzzzzzzzzzzzzzzzzzzzzzzz",
						   errdetail("The suffix encodes 128 bits, so its first character is at most 7."));
			break;
	}

	values[0] = PointerGetDatum(cstring_to_text_with_len(s, prefix_len));
	values[1] = UUIDPGetDatum(uuid);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
