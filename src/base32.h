/*-------------------------------------------------------------------------
 *
 * base32.h
 *	  Crockford base32 of 128-bit values, shared by TypeID and ULID.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_BASE32_H
#define IDGEN_BASE32_H

/* 128 bits as 26 characters (130 bits, the first two zero). */
#define IDGEN_BASE32_LEN		26

/* What idgen_base32_decode found wrong, if anything. */
typedef enum IdgenBase32Status
{
	IDGEN_BASE32_OK,
	IDGEN_BASE32_UPPERCASE,		/* an uppercase letter where only lowercase is
								 * allowed */
	IDGEN_BASE32_BAD_CHAR,		/* a character outside the alphabet */
	IDGEN_BASE32_OVERFLOW		/* first character above '7': over 128 bits */
} IdgenBase32Status;

extern void idgen_base32_encode(const unsigned char *bytes, char *out,
								bool uppercase);
extern IdgenBase32Status idgen_base32_decode(const char *in,
											 unsigned char *bytes,
											 bool fold_case, int *bad_pos);
extern int	idgen_base32_first_non_ascii(const char *in, int len);
extern const char *idgen_base32_describe_char(const char *in, int pos);
extern char *idgen_base32_quote_input(const char *in, int len);

#endif							/* IDGEN_BASE32_H */
