# tierd — one entry point.
#   make            build everything into build/
#   make test       run every test suite (layers, unit, fuzz, integration, VM)
#   make layers     the include rules of docs/architecture.md
#   make sanitize   ASan+UBSan build (system allocator) running the unit tests
#   make bench      benchmarks with their baselines, ratios printed
#   make run        the main job: tierd with the bundled 24-agent example
#   make run-fleet  three tierd nodes fed by a 3-server NATS JetStream cluster
#   V=1             show commands
.DELETE_ON_ERROR:
.SUFFIXES:

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
CLANG   ?= clang
PKGCONF ?= pkg-config

DEPS_STAMP := $(BUILD)/.deps-ok

# pkg-config is evaluated lazily so a fresh machine installs packages first.
PKGS_CORE := liburing libbpf jansson libsystemd libmicrohttpd libcap zlib libnats
pkg_cflags = $(shell $(PKGCONF) --cflags $(1) 2>/dev/null)
pkg_libs   = $(shell $(PKGCONF) --libs $(1) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	    -Wno-unused-parameter -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
BASE_CFLAGS = -std=gnu11 -D_GNU_SOURCE -fno-strict-aliasing -pthread \
	      -Iinclude -I. -I$(BUILD)/bpf $(WARN) $(call pkg_cflags,$(PKGS_CORE))
LDLIBS_CORE = $(call pkg_libs,$(PKGS_CORE)) -lz -lm -pthread

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALLOC_LIBS :=
else
SANFLAGS :=
# jemalloc as the allocator of the daemons; sanitizer builds use the system one.
ALLOC_LIBS = $(call pkg_libs,jemalloc)
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(SANFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

# ---- sources -------------------------------------------------------------
SHM_SRC  := $(wildcard shm/*.c)
SUP_MAIN := supervisor/main.c
# supervisor/ and its subfolders (one per subsystem: cgroup/, config/ ...).
SUP_SRC  := $(filter-out $(SUP_MAIN),$(wildcard supervisor/*.c supervisor/*/*.c))
# What tierd, tierctl and agentd share (common/): included as "common/x.h".
COMMON_SRC := $(wildcard common/*.c)
LIBTIER_SRC := $(wildcard agentd/tier_*.c)
AGENTD_MAIN := $(wildcard agentd/main.c)
AGENTD_SRC  := $(wildcard agentd/agd_*.c)
BPF_SRC  := $(wildcard bpf/*.bpf.c)
BPF_LOADER := $(filter-out $(BPF_SRC),$(wildcard bpf/*.c))
TEST_SRC := $(wildcard tests/test_*.c)
TOOLS_SRC := $(wildcard tools/*.c)
# Hand-driven test tools of a subsystem, beside it: supervisor/*/tools/NAME.c
# is $(BUILD)/NAME (outside supervisor/*/*.c, so not in libtiersup).
SUBTOOLS_SRC := $(wildcard supervisor/*/tools/*.c)
TIERCTL_SRC := $(wildcard tools/tierctl/*.c)
EXAMPLE_SRC := $(wildcard examples/*.c)
BENCH_SRC := $(wildcard bench/*_bench.c)
BENCH_LIB_SRC := $(filter-out $(BENCH_SRC),$(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBSHM  := $(BUILD)/libtiershm.a
LIBCOMMON := $(BUILD)/libtiercommon.a
LIBTIER := $(BUILD)/libtier.a
LIBSUP  := $(BUILD)/libtiersup.a
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRC))

TIERD   := $(if $(wildcard $(SUP_MAIN)),$(BUILD)/tierd)
AGENTD  := $(if $(AGENTD_MAIN),$(BUILD)/agentd)
TOOLS   := $(patsubst tools/%.c,$(BUILD)/%,$(TOOLS_SRC)) \
	   $(foreach f,$(SUBTOOLS_SRC),$(BUILD)/$(basename $(notdir $(f)))) $(if $(TIERCTL_SRC),$(BUILD)/tierctl)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_OBJS = $(call obj,$(BENCH_LIB_SRC))

# Everything a program may need: libraries in dependency order.
PROJ_LIBS = $(LIBSUP) $(LIBTIER) $(LIBSHM) $(LIBCOMMON)

.PHONY: all deps test unit sanitize bench run fuzz vmtest integration clean install
all: $(DEPS_STAMP) $(BPF_SKELS) $(LIBSHM) $(LIBCOMMON) $(LIBTIER) $(LIBSUP) $(TIERD) $(AGENTD) \
	$(TOOLS) $(EXAMPLES) $(TESTS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/setup-deps.sh
	$(Q)mkdir -p $(@D)
	$(Q)bash scripts/setup-deps.sh
	$(Q)touch $@

# ---- compile -------------------------------------------------------------
$(BUILD)/obj/%.o: %.c $(DEPS_STAMP) $(BPF_SKELS)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBSHM): $(call obj,$(SHM_SRC))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBTIER): $(call obj,$(LIBTIER_SRC)) $(call obj,$(SHM_SRC))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(if $^,$^,)
$(LIBSUP): $(call obj,$(SUP_SRC) $(BPF_LOADER))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(if $^,$^,)

$(BUILD)/tierd: $(call obj,$(SUP_MAIN)) $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(PROJ_LIBS) $(LDLIBS_CORE) $(ALLOC_LIBS)
$(BUILD)/agentd: $(call obj,$(AGENTD_MAIN) $(AGENTD_SRC)) $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(call obj,$(AGENTD_MAIN) $(AGENTD_SRC)) $(PROJ_LIBS) $(LDLIBS_CORE) $(ALLOC_LIBS)
$(BUILD)/tierctl: $(call obj,$(TIERCTL_SRC)) $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(call obj,$(TIERCTL_SRC)) $(PROJ_LIBS) $(LDLIBS_CORE)
$(BUILD)/%: $(BUILD)/obj/tools/%.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(PROJ_LIBS) $(LDLIBS_CORE)
define subtool_rule
$(BUILD)/$(basename $(notdir $(1))): $(call obj,$(1)) $$(PROJ_LIBS)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(ALL_LDFLAGS) -o $$@ $$< $$(PROJ_LIBS) $$(LDLIBS_CORE)
endef
$(foreach f,$(SUBTOOLS_SRC),$(eval $(call subtool_rule,$(f))))
$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(PROJ_LIBS) $(LDLIBS_CORE)
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(call obj,$(AGENTD_SRC)) $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(call obj,$(AGENTD_SRC)) $(PROJ_LIBS) $(LDLIBS_CORE) \
		$(call pkg_libs,criterion)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BENCH_OBJS) $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(BENCH_OBJS) $(PROJ_LIBS) $(LDLIBS_CORE) $(call pkg_libs,libzmq)

# ---- eBPF: vmlinux.h from the build host's BTF, object, skeleton ----------
$(BUILD)/bpf/vmlinux.h: $(DEPS_STAMP)
	$(call msg,BTF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/bpf/vmlinux.h $(wildcard bpf/*.h)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Iinclude -I$(BUILD)/bpf -Ibpf \
		-c $< -o $@
	$(Q)llvm-strip -g $@
$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)bpftool gen skeleton $< > $@

# ---- fuzzing (clang + libFuzzer, sanitizers on) ---------------------------
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -Iinclude -I. -DSHM_FUZZ_LOADS \
	      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# A target may list extra sources and libraries: FUZZ_SRCS_<name>, FUZZ_LIBS_<name>.
FUZZ_SRCS_config := $(wildcard supervisor/config/*.c) common/units.c common/fdio.c
FUZZ_LIBS_config = $(call pkg_cflags,libcap) $(call pkg_libs,libcap) -lm
FUZZ_SRCS_ctl := common/ctlproto.c supervisor/ctl_args.c supervisor/ctl_roles.c
FUZZ_SRCS_ring := supervisor/agentrec.c supervisor/textesc.c
FUZZ_LIBS_ctl = $(call pkg_libs,jansson)
FUZZ_SRCS_wal := supervisor/wal/walrec.c
FUZZ_LIBS_wal := -lz
FUZZ_SRCS_handover := $(wildcard supervisor/handover/*.c)
FUZZ_LIBS_handover = $(call pkg_libs,zlib)
FUZZ_SRCS_state := $(wildcard supervisor/workflow*.c) supervisor/events.c supervisor/events_state.c \
	$(wildcard supervisor/handover/*.c) supervisor/wal/walrec.c common/b64.c
FUZZ_LIBS_state = $(call pkg_libs,jansson zlib)
FUZZ_SRCS_intake := supervisor/intake/intake_msg.c common/units.c
FUZZ_LIBS_intake := -lm
.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SHM_SRC) $(wildcard shm/*.h include/tier/*.h supervisor/*.h supervisor/*/*.h common/*.h) \
		$$(FUZZ_SRCS_$$*) $(DEPS_STAMP)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(SHM_SRC) $(FUZZ_SRCS_$*) $(FUZZ_LIBS_$*)
fuzz: $(FUZZERS)
	$(Q)for f in $(FUZZERS); do \
		n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			-error_exitcode=77 -artifact_prefix=$(BUILD)/fuzz/$$n- $(BUILD)/fuzz/corpus-$$n tests/fuzz/seeds/$$n \
			2>$(BUILD)/fuzz/$$n.log || { tail -n 40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		grep -E '^#[0-9]+.*DONE' $(BUILD)/fuzz/$$n.log | tail -n 1; \
	done

# ---- running -------------------------------------------------------------
unit: all
	$(Q)bash tests/run-unit.sh $(BUILD)

integration: all
	$(Q)if [ -x tests/integration/run.sh ]; then bash tests/integration/run.sh $(BUILD); fi

vmtest: all
	$(Q)if [ -x tests/vm/run.sh ]; then bash tests/vm/run.sh $(BUILD); fi
	$(Q)bash tests/vm/powercut.sh $(BUILD)

# The journal across a power cut alone (tests/vm/powercut.sh; part of vmtest).
.PHONY: vmtest-powercut
vmtest-powercut: all
	$(Q)bash tests/vm/powercut.sh $(BUILD)

test: all
	$(Q)bash tests/run-all.sh $(BUILD)

# The include rules of docs/architecture.md (also the first part of make test).
.PHONY: layers
layers:
	$(Q)python3 scripts/check-layers.py --strict-cycles

sanitize:
	$(Q)$(MAKE) --no-print-directory BUILD=build-san SAN=1 all
	$(Q)bash tests/run-unit.sh build-san

bench: all $(BENCHES)
	$(Q)bash bench/run.sh $(BUILD)

run: all $(BENCHES)
	$(Q)bash scripts/run-example.sh $(BUILD)

# The second main job: a 3-server JetStream cluster and 3 tierd nodes here.
.PHONY: run-fleet
run-fleet: all
	$(Q)bash scripts/run-fleet.sh $(BUILD)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Keep objects of programs (make would delete them as intermediates).
.SECONDARY:

# ==== VM suite programs (tests/vm; see tests/vm/run.sh) ======================
# Each tests/vm/NAME.c is one program run inside the VM as /vmtests/NAME.
VM_SRC   := $(wildcard tests/vm/*.c)
VM_PROGS := $(patsubst tests/vm/%.c,$(BUILD)/vm/%,$(VM_SRC))
.PHONY: vmprogs
vmprogs: $(VM_PROGS)
all: $(VM_PROGS)
vmtest: $(VM_PROGS)
$(BUILD)/vm/%: $(BUILD)/obj/tests/vm/%.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(PROJ_LIBS) $(LDLIBS_CORE)
# ==== end of VM suite programs ================================================

# ==== dispatch benchmark workers (bench/agents; see bench/dispatch_bench.c) ====
# Each bench/agents/NAME.c is a standalone program, $(BUILD)/bench/agents/NAME:
# the baselines' workers and the one binary the agentd comparison runs.
BENCH_AGENT_SRC := $(wildcard bench/agents/*.c)
BENCH_AGENTS    := $(patsubst bench/agents/%.c,$(BUILD)/bench/agents/%,$(BENCH_AGENT_SRC))
.PHONY: bench-agents
bench-agents: $(BENCH_AGENTS)
bench: $(BENCH_AGENTS)
$(BUILD)/bench/agents/%: $(BUILD)/obj/bench/agents/%.o
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(call pkg_libs,libzmq)
# ==== end of dispatch benchmark workers =======================================

# ==== supervision benchmark agent (see bench/supervise_bench.c) ================
# bench/agents/trivial-agent.c links libtier, unlike the other workers there:
# this explicit rule takes precedence over their pattern rule.
SVB_AGENT := $(BUILD)/bench/agents/trivial-agent
bench: $(SVB_AGENT)
$(SVB_AGENT): $(BUILD)/obj/bench/agents/trivial-agent.o $(LIBTIER)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBTIER) -pthread
# ==== end of supervision benchmark agent =======================================

# ==== hostile test agents (tests/agents; see test_hostile_ring.py, test_escape.py)
# Native agents that break the protocol or try to escape on purpose; each
# tests/agents/NAME.c is $(BUILD)/tests/agents/NAME, linked with libtier.
TEST_AGENT_SRC := $(wildcard tests/agents/*.c)
TEST_AGENTS    := $(patsubst tests/agents/%.c,$(BUILD)/tests/agents/%,$(TEST_AGENT_SRC))
all: $(TEST_AGENTS)
$(TEST_AGENTS): $(BUILD)/tests/agents/%: $(BUILD)/obj/tests/agents/%.o $(LIBTIER)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBTIER) -pthread
# ==== end of test agents ===============================================
# ==== two more builds of tierd for the live-upgrade tests ===================
# tierd-alt differs by its build tag; tierd-bumped also writes and reads
# another state format, so it must refuse the state and hand it back.
UPG_DIR := $(BUILD)/upgrade
UPG_BINS := $(UPG_DIR)/tierd-alt $(UPG_DIR)/tierd-bumped $(UPG_DIR)/tierd-strict
.PHONY: upgrade-bins
upgrade-bins: $(UPG_BINS)
all: $(UPG_BINS)
$(UPG_DIR)/alt-daemon_upgrade.o: supervisor/daemon_upgrade.c $(DEPS_STAMP) $(BPF_SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -DSUP_BUILD_TAG='"+alt"' -c $< -o $@
$(UPG_DIR)/bumped-daemon_upgrade.o: supervisor/daemon_upgrade.c $(DEPS_STAMP) $(BPF_SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -DSUP_BUILD_TAG='"+bumped"' -c $< -o $@
$(UPG_DIR)/bumped-%.o: supervisor/handover/%.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -DSUP_HO_FORMAT=999 -c $< -o $@
# tierd-strict takes at most one agent: the configuration in force is
# refused by the new binary, which must hand the state back.
$(UPG_DIR)/strict-config.o: supervisor/config/config.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -DSUP_CONFIG_MAX_AGENTS=1 -c $< -o $@
$(UPG_DIR)/tierd-strict: $(call obj,$(SUP_MAIN)) $(UPG_DIR)/strict-config.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(PROJ_LIBS) $(LDLIBS_CORE) $(ALLOC_LIBS)
$(UPG_DIR)/tierd-alt: $(call obj,$(SUP_MAIN)) $(UPG_DIR)/alt-daemon_upgrade.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(PROJ_LIBS) $(LDLIBS_CORE) $(ALLOC_LIBS)
$(UPG_DIR)/tierd-bumped: $(call obj,$(SUP_MAIN)) $(UPG_DIR)/bumped-daemon_upgrade.o \
		$(UPG_DIR)/bumped-handover.o $(UPG_DIR)/bumped-handover_read.o $(PROJ_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(PROJ_LIBS) $(LDLIBS_CORE) $(ALLOC_LIBS)
# ==== fleet benchmark worker (see bench/fleet_bench.c) =========================
# bench/agents/fleet-worker.c is a libnats pull consumer, the plain pool the
# fleet benchmark measures tierd's NATS intake against.
FLEET_WORKER := $(BUILD)/bench/agents/fleet-worker
bench: $(FLEET_WORKER)
all: $(FLEET_WORKER)
$(FLEET_WORKER): $(BUILD)/obj/bench/agents/fleet-worker.o
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(call pkg_libs,libnats) -pthread
# ==== end of fleet benchmark worker ============================================
