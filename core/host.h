/* host.h: the pieces of the ecgwb host program (core/main.c, core/repl.c). */
#ifndef ECGWB_HOST_H
#define ECGWB_HOST_H
#include <lua.h>
void host_install(lua_State *L); /* SIGINT handling; call once, on the main thread */
int host_run_string(lua_State *L, const char *code, const char *chunkname);
int host_run_file(lua_State *L, const char *path, int nargs, char **args);
int host_repl(lua_State *L);
#endif
