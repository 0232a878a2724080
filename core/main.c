/* main.c: the ecgwb host program. Starts LuaJIT with lua/ on its path
 * (found relative to the binary, in the build tree and once installed),
 * then runs a script, a -e chunk, or the REPL (core/repl.c).
 *   ecgwb                   REPL
 *   ecgwb FILE.lua [args]   run a script with its arguments in `arg`
 *   ecgwb -e CODE           run CODE
 *   ecgwb -i FILE.lua       the REPL after the script
 *   ecgwb --serve PORT ...  the live dashboard on 127.0.0.1:PORT while the rest runs
 *   ecgwb notebook run FILE.lua [--out F.html]   a notebook to HTML (lua/ecgwb/notebook.lua)
 * Exit status: 0, 1 if a chunk fails, 2 for bad options. */
#include "host.h"
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <libgen.h>
#include "ecgwb.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ecgwb [options] [FILE.lua [args...]]\n"
            "  (no arguments)   interactive REPL\n"
            "  FILE.lua args    run a script; its arguments are in the table `arg`\n"
            "  -e CODE          run CODE (may be repeated)\n"
            "  -                read the script from stdin\n"
            "  --               stop handling options\n"
            "  -i               enter the REPL after running the script or -e code\n"
            "  --serve PORT     serve the live dashboard on http://127.0.0.1:PORT/ while\n"
            "                   the script or REPL runs (lua/ecgwb/dashboard.lua)\n"
            "  --help           this text\n"
            "  --version        print the version\n"
            "In the REPL an expression prints its values, Ctrl-C interrupts running\n"
            "code and Ctrl-D exits. Code typed there runs with the JIT off, so that\n"
            "Ctrl-C can stop its loops; jit.on(f, true) compiles a function again.\n");
}

/* package.path: <exe>/../lua (build tree) and <exe>/../share/ecgwb/lua (installed) */
static void set_paths(lua_State *L) {
    char exe[PATH_MAX], dir[PATH_MAX], buf[4 * PATH_MAX + 256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    snprintf(dir, sizeof dir, "%s", dirname(exe));
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    snprintf(buf, sizeof buf, "%s/../lua/?.lua;%s/../lua/?/init.lua;%s/../share/ecgwb/lua/?.lua;%s/../share/ecgwb/lua/?/init.lua;%s",
             dir, dir, dir, dir, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

/* wb.dashboard(port), called plainly (not as a main task, which would stop
   the server's task when it ends): the server then runs with the script or
   the REPL. Returns 0 or 1. */
static int start_dashboard(lua_State *L, const char *port) {
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) {
        fprintf(stderr, "ecgwb: --serve needs a port number in 0..65535, got '%s'\n", port);
        return 2;
    }
    const char *code = "local port = ...; local d = require('ecgwb').dashboard(port)\n"
                       "io.stderr:write('ecgwb: dashboard at ', d.url, '\\n')";
    if (luaL_loadstring(L, code) != 0 || (lua_pushinteger(L, p), lua_pcall(L, 1, 0, 0)) != 0) {
        fprintf(stderr, "ecgwb: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

/* arg[0] = the script, arg[1..] = its arguments, arg[-1..] = what came before */
static void set_arg(lua_State *L, int argc, char **argv, int script) {
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

int main(int argc, char **argv) {
    int interactive = 0, script = 0, nexec = 0, rc = 0, i;
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) { /* up to the script */
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "--serve")) { i++; continue; } /* skip its argument */
        else if (!strcmp(argv[i], "-i")) interactive = 1;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--version")) { printf("ecgwb %s (%s)\n", ewb_version(), LUAJIT_VERSION); return 0; }
    }
    lua_State *L = luaL_newstate();
    if (!L) { fprintf(stderr, "ecgwb: cannot create a Lua state\n"); return 1; }
    luaL_openlibs(L);
    set_paths(L);
    host_install(L);
    host_keep_tasks(interactive);
    if (argc > 1 && !strcmp(argv[1], "notebook")) { /* ecgwb notebook run FILE.lua: lua/ecgwb/notebook.lua */
        set_arg(L, argc, argv, 1);
        rc = host_run_string(L, "os.exit(require('ecgwb.notebook').main(arg), true)", "=notebook");
        lua_close(L);
        return rc;
    }
    for (i = 1; i < argc && rc == 0; i++) {
        if (!strcmp(argv[i], "-i")) interactive = 1;
        else if (!strcmp(argv[i], "-e")) {
            if (i + 1 >= argc) { fprintf(stderr, "ecgwb: -e needs an argument\n"); usage(stderr); rc = 2; break; }
            rc = host_run_string(L, argv[++i], "=(command line)");
            nexec++;
        } else if (!strcmp(argv[i], "--serve")) {
            if (i + 1 >= argc) { fprintf(stderr, "ecgwb: --serve needs a port\n"); usage(stderr); rc = 2; break; }
            rc = start_dashboard(L, argv[++i]);
        } else if (!strcmp(argv[i], "--")) {
            if (i + 1 < argc) script = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ecgwb: unknown option '%s'\n", argv[i]);
            usage(stderr);
            rc = 2;
        } else {
            script = i;
            break;
        }
    }
    if (rc == 0 && script) {
        set_arg(L, argc, argv, script);
        rc = host_run_file(L, argv[script], argc - script - 1, argv + script + 1);
    }
    if (rc == 0 && (interactive || (!script && !nexec))) rc = host_repl(L);
    lua_close(L);
    return rc;
}
