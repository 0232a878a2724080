/* host.h: the pieces of the ecgwb host program (core/main.c, core/repl.c). */
#ifndef ECGWB_HOST_H
#define ECGWB_HOST_H
#include <lua.h>
#include <stdint.h>
void host_install(lua_State *L); /* SIGINT handling; call once, on the main thread */
int host_run_string(lua_State *L, const char *code, const char *chunkname);
int host_run_file(lua_State *L, const char *path, int nargs, char **args);
int host_repl(lua_State *L);
void host_keep_tasks(int flag); /* -i: scripts leave their tasks to the REPL */
struct uv_loop_s *ewb_loop_uv(void); /* core/loop.c: the loop, for the REPL's stdin */
void ewb_loop_push_event(int kind, int64_t id, int status); /* core/loop.c: queue an event from a callback on the loop thread */
#endif
