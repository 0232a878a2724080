/* repl.c: running chunks with tracebacks, and the interactive REPL
 * (libedit for line editing and history). */
#include "host.h"
#include <lauxlib.h>
#include <lualib.h>
#include <editline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = "(error object is not a string)";
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int docall(lua_State *L, int nargs, int nres) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (rc != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return rc;
}

void host_install(lua_State *L) { (void)L; }
void host_shutdown(lua_State *L) { (void)L; }

int host_run_string(lua_State *L, const char *code, const char *chunkname) {
    if (luaL_loadbuffer(L, code, strlen(code), chunkname) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    return docall(L, 0, 0) ? 1 : 0;
}

int host_run_file(lua_State *L, const char *path, int nargs, char **args, const char *script_name) {
    lua_createtable(L, nargs, 1);
    lua_pushstring(L, script_name);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < nargs; i++) {
        lua_pushstring(L, args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    if (luaL_loadfile(L, path) != 0) {
        fprintf(stderr, "ecgwb: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
    return docall(L, nargs, 0) ? 1 : 0;
}

int host_repl(lua_State *L) {
    char *line;
    while ((line = readline("> ")) != NULL) {
        if (*line) add_history(line);
        host_run_string(L, line, "=stdin");
        free(line);
    }
    return 0;
}
