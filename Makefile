# ecgwb: build, deps, test, bench, run.
#   make            build build/ecgwb (host) and build/libecgwb.{a,so}
#   make deps       apt-get what is missing
#   make test       every C and Lua test        (SAN=1: under ASan + UBSan)
#   make bench      kernels and training step, side by side with PyTorch
#   make run        the main job on the default simulated data
#   make fixtures   regenerate tests/fixtures/*.h5 with PyTorch (tests/reference/make_fixtures.py, make_encoder_fixture.py)
#   make install PREFIX=/usr/local
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS =
endif
PREFIX ?= /usr/local
CC ?= cc
PKGS = luajit hdf5-serial libuv libedit cairo zlib libdeflate
DEPS_APT = libdnnl-dev libluajit-5.1-dev luajit libhdf5-dev libuv1-dev libedit-dev libcairo2-dev zlib1g-dev libdeflate-dev pkg-config python3-h5py chromium
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS += -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fopenmp -fPIC $(SANFLAGS) $(PKG_CFLAGS)
LDLIBS = -ldnnl $(PKG_LIBS) -lm -fopenmp $(SANFLAGS)

LIB_SRC = $(filter-out core/main.c core/repl.c,$(wildcard core/*.c)) $(wildcard kernels/*.c)
LIB_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(BUILD)/core/api_header.o
HOST_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(wildcard core/main.c core/repl.c))
C_TESTS = $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
LUA_TESTS = $(wildcard tests/test_*.lua)
SH_TESTS = $(wildcard tests/test_*.sh)

all: $(BUILD)/ecgwb $(BUILD)/libecgwb.a $(BUILD)/libecgwb.so

$(BUILD)/%.o: %.c $(wildcard core/*.h) $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the public header, embedded so the Lua side can ffi.cdef it wherever it is installed
$(BUILD)/core/api_header.c: core/ecgwb.h
	@mkdir -p $(dir $@)
	{ echo 'const char *ewb_api_header(void) { return'; sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo '; }'; } > $@
$(BUILD)/core/api_header.o: $(BUILD)/core/api_header.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libecgwb.a: $(LIB_OBJ)
	ar rcs $@ $^
$(BUILD)/libecgwb.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)
# -rdynamic: LuaJIT's ffi.C resolves the ewb_* symbols in the host itself
$(BUILD)/ecgwb: $(HOST_OBJ) $(LIB_OBJ)
	$(CC) -rdynamic -o $@ $^ $(LDLIBS)
$(BUILD)/tests/%: tests/%.c tests/check.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

deps:
	@missing=""; for p in $(DEPS_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# the PyTorch reference (optional: only for make bench and for regenerating fixtures)
deps-reference:
	@missing=""; for p in python3-torch python3-h5py libopenblas0-pthread; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# the committed PyTorch reference values that tests/test_parity.lua and test_encoder_parity.lua check against
fixtures: deps-reference
	/usr/bin/python3 tests/reference/make_fixtures.py
	/usr/bin/python3 tests/reference/make_encoder_fixture.py

build-only: all
test: deps
	$(MAKE) all $(C_TESTS)
	@BUILD=$(BUILD) SAN=$(SAN) sh tests/run.sh $(C_TESTS) -- $(LUA_TESTS) $(SH_TESTS)

bench: deps deps-reference all
	@BUILD=$(BUILD) sh tests/bench/run.sh

# the main job: UniECG's two stages on the default simulated corpus. OpenMP
# threads sleep rather than spin when idle (on a shared machine spinning made
# recipes several times slower), unless the caller chose otherwise.
MAIN_RECIPE ?= recipes/two_stage.lua
run: deps all
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive} $(BUILD)/ecgwb $(MAIN_RECIPE)

install: all
	install -d $(PREFIX)/bin $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/share/ecgwb/lua
	install -m 755 $(BUILD)/ecgwb $(PREFIX)/bin/ecgwb
	install -m 644 $(BUILD)/libecgwb.a $(BUILD)/libecgwb.so $(PREFIX)/lib/
	install -m 644 core/ecgwb.h $(PREFIX)/include/ecgwb.h
	cp -r lua/ecgwb $(PREFIX)/share/ecgwb/lua/

clean:
	rm -rf build build-san

.PHONY: all deps deps-reference test bench run install clean build-only fixtures
