/*-------------------------------------------------------------------------
 *
 * statefile.c
 *	  Durable state files in the data directory: the one writer and the one
 *	  reader idgen uses for them.
 *
 * A file is written whole to "<name>.tmp", fsynced, closed and renamed
 * over the old one with durable_rename() (which fsyncs the file and the
 * directory), so that after a crash the name holds either the old record
 * or the new one, never a torn mix.  The record carries a magic number, a
 * format version and a CRC-32C of everything before the CRC, and the
 * reader accepts nothing else: a damaged file is reported as such, and
 * the caller decides what that means (the Snowflake floor refuses to
 * issue, the UUIDv7 position is ignored).
 *
 * elevel says how failures are reported.  ERROR for state that protects
 * uniqueness (the floor): nothing that depends on it may go out.  Below
 * ERROR (LOG) for best-effort state written where an ERROR cannot be
 * handled, such as a shmem-exit callback in the postmaster: the failure is
 * logged, the temporary file removed, and false returned.  A failed fsync
 * is then not escalated to PANIC (data_sync_elevel() would): PANIC guards
 * against retrying an fsync whose dirty pages the kernel may have dropped,
 * and a best-effort write is abandoned rather than retried, so the old
 * file (or none) stays in place.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "port/pg_crc32c.h"
#include "storage/fd.h"

#include "statefile.h"

/* CRC-32C of every byte of rec before its last four (the CRC field). */
static uint32
statefile_crc(const void *rec, size_t size)
{
	pg_crc32c	crc;

	Assert(size > sizeof(IdgenStateHeader) + sizeof(uint32));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, rec, size - sizeof(uint32));
	FIN_CRC32C(crc);
	return crc;
}

/* Fill in rec's magic, version and CRC. */
void
idgen_statefile_seal(void *rec, size_t size, uint32 magic, uint32 version)
{
	IdgenStateHeader *header = (IdgenStateHeader *) rec;
	uint32		crc;

	header->magic = magic;
	header->version = version;
	crc = statefile_crc(rec, size);
	memcpy((char *) rec + size - sizeof(uint32), &crc, sizeof(crc));
}

/* Whether rec carries magic, version and a matching CRC. */
bool
idgen_statefile_valid(const void *rec, size_t size, uint32 magic, uint32 version)
{
	const IdgenStateHeader *header = (const IdgenStateHeader *) rec;
	uint32		crc;

	memcpy(&crc, (const char *) rec + size - sizeof(uint32), sizeof(crc));
	return header->magic == magic && header->version == version &&
		crc == statefile_crc(rec, size);
}

/*
 * Seal rec and write it durably to path (relative to the data directory).
 * Returns true once it is there; on failure reports at elevel and, below
 * ERROR, returns false leaving the previous file (if any) in place.
 */
bool
idgen_statefile_write(const char *path, void *rec, size_t size,
					  uint32 magic, uint32 version, int elevel)
{
	char		temp[MAXPGPATH];
	int			fd;
	int			save_errno;

	idgen_statefile_seal(rec, size, magic, version);
	snprintf(temp, sizeof(temp), "%s.tmp", path);

	fd = OpenTransientFile(temp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", temp)));
		return false;
	}
	errno = 0;
	if (write(fd, rec, size) != size)
	{
		if (errno == 0)
			errno = ENOSPC;
		save_errno = errno;
		CloseTransientFile(fd);
		unlink(temp);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", temp)));
		return false;
	}
	if (pg_fsync(fd) != 0)
	{
		save_errno = errno;
		CloseTransientFile(fd);
		unlink(temp);
		errno = save_errno;
		ereport(elevel >= ERROR ? data_sync_elevel(elevel) : elevel,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", temp)));
		return false;
	}
	if (CloseTransientFile(fd) != 0)
	{
		save_errno = errno;
		unlink(temp);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", temp)));
		return false;
	}
	return durable_rename(temp, path, elevel) == 0;
}

/*
 * Read the record in path into rec (size bytes) and check it.  *got, if
 * not NULL, is set to the number of bytes read (for a caller that also
 * accepts an older format of another size).  A file that cannot be opened
 * or read, other than one that does not exist, is reported at elevel and,
 * below ERROR, counts as corrupt.
 */
IdgenStateRead
idgen_statefile_read(const char *path, void *rec, size_t size,
					 uint32 magic, uint32 version, int elevel, size_t *got)
{
	int			fd;
	ssize_t		nread;

	if (got)
		*got = 0;
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return IDGEN_STATE_ABSENT;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
		return IDGEN_STATE_CORRUPT;
	}
	nread = read(fd, rec, size);
	if (nread < 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
		return IDGEN_STATE_CORRUPT;
	}
	CloseTransientFile(fd);
	if (got)
		*got = (size_t) nread;

	if (nread != size || !idgen_statefile_valid(rec, size, magic, version))
		return IDGEN_STATE_CORRUPT;
	return IDGEN_STATE_OK;
}
