# idgen: PGXS build.
#
#   make && make install          build and install into pg_config's tree
#   make installcheck             pg_regress, isolation and TAP suites, each on
#                                 temporary servers they start themselves
#   make pgtap                    pgTAP catalog-contract tests (temporary server)
#
# The test targets run initdb, so they must run as an unprivileged user;
# scripts/test does that for you.

EXTENSION = idgen
MODULE_big = idgen
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA = idgen--1.0.sql idgen--1.1.sql idgen--1.0--1.1.sql
PGFILEDESC = "idgen - UUIDv7, Snowflake and segment ID generators"

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(shell $(PG_CONFIG) --includedir)
SHLIB_LINK_INTERNAL = -lpq
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers

# pg_regress: the SQL surface, on a temporary preloaded server.
REGRESS = uuidv7 snowflake segment segment_blocks probe monitoring typeid ulid convert convert_floor parallel privilege_escapes
REGRESS_OPTS = --temp-config=$(srcdir)/test/preload.conf \
	--temp-instance=$(CURDIR)/tmp_check_regress

# Isolation specs live in test/specs with expected output in test/expected.
ISOLATION = uuidv7_interleave snowflake_interleave segment_interleave segment_blocks
ISOLATION_OPTS = --inputdir=$(srcdir)/test \
	--temp-config=$(srcdir)/test/isolation.conf \
	--temp-instance=$(CURDIR)/tmp_check_iso

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
EXTRA_CLEAN = .deps tmp_check_regress tmp_check_iso tmp_check_pgtap output_iso $(EXTENSION)-*.zip

# Rebuild objects when a header they include changes (.deps/*.Po).
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: pgtap
pgtap:
	$(srcdir)/test/pgtap/run

# One layer at a time (scripts/test runs them all).
.PHONY: installcheck-regress installcheck-isolation installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

# PGXN release zip: git archive of the committed HEAD, named after
# META.json's version (e.g. idgen-1.1.0.zip with the prefix idgen-1.1.0/).
DIST_VERSION = $(shell perl -MJSON::PP -0777 -ne 'print decode_json($$_)->{version}' $(srcdir)/META.json)
.PHONY: dist
dist:
	git -C $(srcdir) archive --format=zip --prefix=$(EXTENSION)-$(DIST_VERSION)/ \
		-o $(CURDIR)/$(EXTENSION)-$(DIST_VERSION).zip HEAD

# Quality gates (scripts/test runs all three on PostgreSQL 15):
#   make lint           cppcheck over src/ with the server's headers; fails
#                       on any finding (suppressions, each with its reason:
#                       scripts/cppcheck-suppressions.xml, or inline)
#   make format-check   PostgreSQL's layout (pg_bsd_indent with pgindent's
#                       flags, scripts/pgindent); fails on any difference
#   make format         rewrite src/ in that layout
#   make sanitize       REGRESS and ISOLATION against idgen built with
#                       AddressSanitizer and UBSan, in a throwaway copy of
#                       the server (scripts/sanitize); fails on a failed
#                       test or any sanitizer report.  Runs initdb, so not
#                       as root.
PGINDENT_FILES = $(patsubst ./%,%,$(subst //,/,$(sort $(wildcard $(srcdir)/src/*.c $(srcdir)/src/*.h))))
CPPCHECK = cppcheck

.PHONY: lint format format-check sanitize
lint:
	$(CPPCHECK) --quiet --error-exitcode=1 --std=c99 \
		--enable=warning,style,performance,portability \
		--inline-suppr --suppress-xml=$(srcdir)/scripts/cppcheck-suppressions.xml \
		--max-configs=1 \
		-I$(srcdir)/src -I$(includedir_server) -I$(includedir) \
		$(srcdir)/src
	@echo "lint: cppcheck: no findings"
# typedef names come from the objects' debug information (scripts/pgindent)
format-check: $(OBJS)
	$(srcdir)/scripts/pgindent --check $(addprefix --object=,$(OBJS)) $(PGINDENT_FILES)
format: $(OBJS)
	$(srcdir)/scripts/pgindent $(addprefix --object=,$(OBJS)) $(PGINDENT_FILES)
sanitize:
	$(srcdir)/scripts/sanitize $(PG_CONFIG)
