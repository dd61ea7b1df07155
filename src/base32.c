/*-------------------------------------------------------------------------
 *
 * base32.c
 *	  Crockford base32 of 128-bit values, the one codec behind TypeID
 *	  (typeid.c) and ULID (ulid.c).
 *
 * Both formats write the 16 bytes of a UUID, big-endian, as 26 characters
 * of 5 bits: 130 bits whose two leading bits are zero, so the first
 * character is at most '7'.  The alphabet is Crockford's,
 * 0123456789abcdefghjkmnpqrstvwxyz (no i, l, o, u).  Decoding is strict:
 * no hyphens and no mapping of look-alike letters (i, l to 1; o to 0),
 * which both specifications rule out.  TypeID is lowercase only; ULID is
 * written in uppercase and read in either case (fold_case).
 *
 * The value is held as two 64-bit halves and shifted 5 bits per
 * character; 26 shifts of two words cost less than the palloc of the
 * result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "base32.h"

static const char base32_lower[] = "0123456789abcdefghjkmnpqrstvwxyz";
static const char base32_upper[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/*
 * Value of each lowercase alphabet character, -1 for everything else.
 * Built from base32_lower so that the two can never disagree.
 */
static int8 base32_value[256];
static bool base32_value_ready = false;

static void
base32_init_values(void)
{
	memset(base32_value, -1, sizeof(base32_value));
	for (int i = 0; i < 32; i++)
		base32_value[(unsigned char) base32_lower[i]] = (int8) i;
	base32_value_ready = true;
}

/*
 * Write the 16 bytes at bytes as 26 characters at out (not terminated).
 */
void
idgen_base32_encode(const unsigned char *bytes, char *out, bool uppercase)
{
	const char *alphabet = uppercase ? base32_upper : base32_lower;
	uint64		hi = 0;
	uint64		lo = 0;

	for (int i = 0; i < 8; i++)
	{
		hi = (hi << 8) | bytes[i];
		lo = (lo << 8) | bytes[i + 8];
	}
	for (int i = IDGEN_BASE32_LEN - 1; i >= 0; i--)
	{
		out[i] = alphabet[lo & 31];
		lo = (lo >> 5) | (hi << 59);
		hi >>= 5;
	}
}

/*
 * Read the 26 characters at in (the caller has checked the length) into 16
 * bytes.  Returns what is wrong, if anything, with *bad_pos the offending
 * character's index.  Uppercase letters are read as lowercase when
 * fold_case, and reported as IDGEN_BASE32_UPPERCASE otherwise.
 */
IdgenBase32Status
idgen_base32_decode(const char *in, unsigned char *bytes, bool fold_case,
					int *bad_pos)
{
	uint64		hi = 0;
	uint64		lo = 0;
	int			first = 0;

	if (unlikely(!base32_value_ready))
		base32_init_values();

	for (int i = 0; i < IDGEN_BASE32_LEN; i++)
	{
		unsigned char c = (unsigned char) in[i];
		int			v;

		if (c >= 'A' && c <= 'Z')
		{
			if (!fold_case)
			{
				*bad_pos = i;
				return IDGEN_BASE32_UPPERCASE;
			}
			c += 'a' - 'A';
		}
		v = base32_value[c];
		if (v < 0)
		{
			*bad_pos = i;
			return IDGEN_BASE32_BAD_CHAR;
		}
		if (i == 0)
			first = v;
		hi = (hi << 5) | (lo >> 59);
		lo = (lo << 5) | (uint64) v;
	}

	/* 130 bits were read: the two above the 128 must be zero */
	if (first > 7)
	{
		*bad_pos = 0;
		return IDGEN_BASE32_OVERFLOW;
	}

	for (int i = 7; i >= 0; i--)
	{
		bytes[i] = (unsigned char) (hi & 0xFF);
		bytes[i + 8] = (unsigned char) (lo & 0xFF);
		hi >>= 8;
		lo >>= 8;
	}
	return IDGEN_BASE32_OK;
}

/*
 * Index of the first byte of in[0..len) that is not ASCII, or -1.  Callers
 * report such a character as outside the alphabet before checking the
 * length, which counts bytes.
 */
int
idgen_base32_first_non_ascii(const char *in, int len)
{
	for (int i = 0; i < len; i++)
		if (IS_HIGHBIT_SET(in[i]))
			return i;
	return -1;
}

/*
 * The character at in[pos] for an error message: itself, quoted, when it is
 * printable ASCII, else a description (the byte may start a multibyte
 * character).
 */
const char *
idgen_base32_describe_char(const char *in, int pos)
{
	unsigned char c = (unsigned char) in[pos];

	if (c == ' ')
		return "a space";
	if (c > ' ' && c < 0x7F)
		return psprintf("\"%c\"", c);
	return "a character that is not printable ASCII";
}

/*
 * The input an error message quotes: at most IDGEN_QUOTE_MAX bytes of it
 * (cut at a character boundary), then "...".  The longest valid TypeID has
 * 90 characters; quoting all of a long input would let any role write
 * that much to the server log with each call.
 */
#define IDGEN_QUOTE_MAX		100

char *
idgen_base32_quote_input(const char *in, int len)
{
	int			cut;

	if (len <= IDGEN_QUOTE_MAX)
		return pnstrdup(in, len);
	cut = pg_mbcliplen(in, len, IDGEN_QUOTE_MAX);
	return psprintf("%s...", pnstrdup(in, cut));
}
