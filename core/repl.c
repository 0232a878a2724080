/* repl.c: running Lua chunks (tracebacks on stderr, Ctrl-C) and the REPL.
 *
 * The REPL prints the values of an expression (`1+1`, `=x`), runs statements,
 * continues an unfinished chunk on a '>> ' prompt, and prints errors with a
 * traceback. On a terminal it uses libedit (line editing, history in
 * ~/.ecgwb_history); from a pipe it reads plain lines and prints no prompts.
 *
 * Scripts and -e code run as the main task of the event loop
 * (lua/ecgwb/loop.lua), which ends when no task is left to run. While the
 * REPL waits for a line it runs the loop: stdin is a libuv poll handle
 * (libedit's callback interface on a terminal, plain reads from a pipe), so
 * background jobs (wb.run) train between keystrokes and a command is read
 * as soon as the running task yields. A chunk typed at the REPL runs in the
 * foreground, outside the loop; the loop's tasks wait until it returns (or
 * until it waits itself: wb.sleep, wb.await, job:wait).
 *
 * Ctrl-C while Lua runs: as in lua.c, the SIGINT handler sets a count hook and
 * the hook raises "interrupted". JIT-compiled code never checks hooks, so a
 * chunk typed at the REPL runs with the JIT off for itself and the functions
 * it defines (`jit.on(f, true)` compiles one again); library code stays
 * compiled and is interrupted when it returns to interpreted code. The core
 * also fails the next op that finishes (ewb_set_interrupt), so a compiled
 * training loop stops at its next op. A loop that neither leaves compiled
 * code nor calls an op cannot be interrupted: a second Ctrl-C says so, a
 * third ends the process. The error can be caught like any other (by
 * pcall, or coroutine.resume). Ctrl-C at the prompt drops the line.
 * While the scheduler runs or waits, or a background task runs, the hook is
 * not set: the Ctrl-C is only noted (ewb_loop_note_interrupt) and the
 * scheduler raises it in the foreground at its next safe point, so it never
 * lands in a background job.
 *
 * The lua_State is touched only on the main thread: a SIGINT delivered to
 * another thread (OpenMP workers) is forwarded to the main thread. */
#include "host.h"
#include "ecgwb.h"
#include <lauxlib.h>
#include <luajit.h>
#include <editline/readline.h>
#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <wchar.h>

static lua_State *hook_L;                  /* the state the SIGINT handler hooks */
static pthread_t main_thread;
static volatile sig_atomic_t running;      /* Lua code is running under docall */
static volatile sig_atomic_t sigint_seen;  /* any Ctrl-C, cleared at each prompt */
static volatile sig_atomic_t winch_seen;

static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    ewb_loop_take_interrupt();
    ewb_set_interrupt(0); /* one Ctrl-C, one error */
    luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
    static const char msg[] = "\necgwb: still running (a long C call, or a JIT-compiled "
                              "loop, which cannot be interrupted); Ctrl-C again quits\n";
    static const char bg_msg[] = "\necgwb: a background task does not yield to the loop; "
                                 "Ctrl-C again quits\n";
    if (!pthread_equal(pthread_self(), main_thread)) {
        pthread_kill(main_thread, sig);
        return;
    }
    sigint_seen = 1;
    /* counts Ctrl-Cs until the scheduler or the hook takes them; wakes the loop */
    int n = ewb_loop_note_interrupt();
    if (n == 1) {
        /* the hook stops interpreted code; the core's flag stops the next op,
           which also reaches JIT-compiled loops that call ops. Only in the
           foreground's own code: the scheduler delivers the rest. */
        if (running && ewb_loop_foreground()) {
            lua_sethook(hook_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
            ewb_set_interrupt(1);
        }
    } else if (n == 2) {
        const char *m = running ? msg : bg_msg;
        size_t len = running ? sizeof msg - 1 : sizeof bg_msg - 1;
        if (write(STDERR_FILENO, m, len) < 0) {}
    } else {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
}

static void on_sigwinch(int sig) {
    (void)sig;
    winch_seen = 1;
}

void host_install(lua_State *L) {
    struct sigaction sa;
    hook_L = L;
    main_thread = pthread_self();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART; /* reads in C code restart; the prompt polls */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* message handler: the error text (or its __tostring) plus a traceback */
static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1)) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* calls the function under the nargs arguments on the stack; on error prints
 * the traceback to stderr and returns non-zero */
static int docall(lua_State *L, int nargs, int nres) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    ewb_loop_take_interrupt();
    ewb_loop_set_foreground(1);
    running = 1;
    int rc = lua_pcall(L, nargs, nres, base);
    running = 0;
    lua_sethook(L, NULL, 0, 0); /* a Ctrl-C that came too late to be seen */
    ewb_set_interrupt(0);
    ewb_loop_take_interrupt();
    ewb_loop_set_foreground(1);
    lua_remove(L, base);
    fflush(stdout);
    if (rc != 0) {
        if (sigint_seen && isatty(STDERR_FILENO)) fputc('\n', stderr); /* after the ^C echo */
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        fflush(stderr);
    }
    return rc;
}

static int keep_tasks; /* the REPL follows: scripts leave their tasks running */

void host_keep_tasks(int flag) { keep_tasks = flag; }

/* runs the function under the nargs arguments on the stack as the main task
 * of the event loop (ecgwb.loop._main), which also runs the tasks it starts
 * until none is left (unless the REPL follows). Returns 0 or 1. Without the
 * Lua library (not found), the function is called directly. */
static int run_main(lua_State *L, int nargs) {
    int fn = lua_gettop(L) - nargs;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ecgwb.loop");
    if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
        lua_pop(L, 1);
        return docall(L, nargs, 0) ? 1 : 0;
    }
    lua_getfield(L, -1, "_main");
    lua_remove(L, -2);
    lua_insert(L, fn);                 /* _main, fn, args */
    lua_pushboolean(L, !keep_tasks);
    lua_insert(L, fn + 1);             /* _main, wait_all, fn, args */
    if (docall(L, nargs + 2, 1) != 0) return 1;
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return ok ? 0 : 1;
}

int host_run_string(lua_State *L, const char *code, const char *chunkname) {
    if (luaL_loadbuffer(L, code, strlen(code), chunkname) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    return run_main(L, 0);
}

/* runs a script (path "-" is stdin); `arg` is already set, args go to `...` */
int host_run_file(lua_State *L, const char *path, int nargs, char **args) {
    if (luaL_loadfile(L, strcmp(path, "-") ? path : NULL) != 0) {
        fprintf(stderr, "ecgwb: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
    return run_main(L, nargs);
}

/* ---- reading lines ---- */

static int tty;                 /* stdin is a terminal: libedit, prompts, history */
static int input_eof;           /* stdin ended */
static char history_path[4096];

static void save_history(void) {
    if (history_path[0]) write_history(history_path); /* failures are ignored */
}

/* libedit's character source: like its own, but waits in poll(), which
 * SIGINT interrupts even with SA_RESTART. A Ctrl-C ends the line ('\n'),
 * and the REPL then drops it. Returns a wide character, or -1 at the end. */
static int tty_getc(FILE *f) {
    char buf[MB_LEN_MAX];
    size_t n = 0;
    (void)f;
    for (;;) {
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        if (winch_seen) { winch_seen = 0; rl_resize_terminal(); }
        if (sigint_seen) return '\n';
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { input_eof = 1; return -1; }
        if (buf[n] == 0) buf[n] = 4; /* a ^D typed while code ran, which the
                                        terminal turned into a NUL: still ^D */
        n++;
        wchar_t wc;
        mbstate_t st;
        memset(&st, 0, sizeof st);
        size_t k = mbrtowc(&wc, buf, n, &st);
        if (k == (size_t)-2 && n < sizeof buf) continue; /* more bytes to come */
        if (k == (size_t)-1 || k == (size_t)-2) { n = 0; continue; } /* invalid: drop */
        return (int)wc;
    }
}

static void tty_setup(void) {
    struct sigaction sa;
    const char *home = getenv("HOME");
    setlocale(LC_CTYPE, ""); /* multibyte input; numbers keep the C locale */
    rl_getc_function = tty_getc;
    rl_catch_signals = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigwinch;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    using_history();
    stifle_history(2000);
    if (home && *home) {
        snprintf(history_path, sizeof history_path, "%s/.ecgwb_history", home);
        read_history(history_path);
        atexit(save_history); /* also on os.exit */
    }
}

/* one line without its newline (malloc'd), or NULL at the end of input,
 * read without the loop (stdin cannot be polled: a regular file) */
static char *read_line_blocking(const char *prompt) {
    if (tty) {
        char *line = readline(prompt);
        if (line && *line && !sigint_seen) add_history(line);
        return line;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) { free(line); return NULL; }
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = 0;
    return line;
}

/* reading through the loop: a libuv poll on stdin; on a terminal each
 * readable byte goes to libedit (rl_callback_read_char), from a pipe bytes
 * are split into lines here */
static lua_State *repl_L;
static uv_poll_t stdin_poll;
static int poll_ok;             /* stdin_poll works (stdin is a tty, pipe or socket) */
static char *got_line;          /* the line read, once have_line */
static int have_line;
static char *inbuf;             /* pipe: bytes read, not yet a whole line */
static size_t inlen, incap;

static void on_tty_line(char *line) {  /* libedit: a whole line, or NULL at ^D */
    rl_callback_handler_remove();
    if (line && *line && !sigint_seen) add_history(line);
    got_line = line;
    have_line = 1;
    if (!line) input_eof = 1;
}

/* a whole line from inbuf, if there is one (or the rest at the end of input) */
static int take_pipe_line(void) {
    char *nl = inlen ? memchr(inbuf, '\n', inlen) : NULL;
    if (!nl && !(input_eof && inlen)) return 0;
    size_t n = nl ? (size_t)(nl - inbuf) : inlen;
    got_line = malloc(n + 1);
    if (!got_line) { fprintf(stderr, "ecgwb: out of memory\n"); exit(1); }
    memcpy(got_line, inbuf, n);
    got_line[n] = 0;
    size_t used = nl ? n + 1 : n;
    memmove(inbuf, inbuf + used, inlen - used);
    inlen -= used;
    have_line = 1;
    return 1;
}

static void on_stdin(uv_poll_t *h, int status, int events) {
    (void)h;
    if (tty) {
        if (status < 0 || !(events & UV_READABLE)) { input_eof = 1; return; }
        /* libedit takes one character per call: take all that have come,
           so that a typed line does not wait one task step per character */
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        do rl_callback_read_char();
        while (!have_line && !input_eof && poll(&p, 1, 0) > 0 && (p.revents & POLLIN));
        return;
    }
    if (status < 0) { input_eof = 1; return; }
    if (incap - inlen < 4096) {
        size_t cap = incap ? 2 * incap : 8192;
        char *b = realloc(inbuf, cap);
        if (!b) { fprintf(stderr, "ecgwb: out of memory\n"); exit(1); }
        inbuf = b;
        incap = cap;
    }
    ssize_t r = read(STDIN_FILENO, inbuf + inlen, incap - inlen);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (r <= 0) input_eof = 1;
    else inlen += (size_t)r;
}

/* one round of the loop while the prompt waits: ecgwb.loop's scheduler when
 * it is loaded (its tasks run), else libuv alone */
static void idle_tick(lua_State *L) {
    int top = lua_gettop(L);
    lua_getglobal(L, "package");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "loaded");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "ecgwb.loop");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "_tick");
    if (lua_isfunction(L, -1)) {
        lua_pushcfunction(L, traceback);
        lua_insert(L, -2);
        lua_pushboolean(L, 1);
        if (lua_pcall(L, 1, 0, -3) != 0) {
            fprintf(stderr, "ecgwb: the event loop failed: %s\n", lua_tostring(L, -1));
            fflush(stderr);
        }
    } else {
        ewb_loop_run(1);
    }
    lua_settop(L, top);
    ewb_loop_take_interrupt(); /* at the prompt a Ctrl-C only drops the line */
    ewb_loop_set_foreground(1);
}

/* one line without its newline (malloc'd), or NULL at the end of input;
 * the loop runs while it waits */
static char *read_line(const char *prompt) {
    if (!poll_ok) {
        char *line = read_line_blocking(prompt);
        ewb_loop_take_interrupt();
        return line;
    }
    if (!have_line && !(tty ? input_eof : input_eof && !inlen) && !(!tty && take_pipe_line())) {
        if (tty) rl_callback_handler_install(prompt, on_tty_line);
        uv_poll_start(&stdin_poll, UV_READABLE | UV_DISCONNECT, on_stdin);
        while (!have_line && !input_eof) {
            idle_tick(repl_L);
            if (!tty && take_pipe_line()) break;
            if (tty && sigint_seen && !have_line) {
                /* Ctrl-C at the prompt: end the line (tty_getc gives '\n'
                   while sigint_seen is set) so the REPL drops it */
                rl_callback_read_char();
            }
        }
        uv_poll_stop(&stdin_poll);
        if (tty && !have_line) rl_callback_handler_remove();
        if (!tty && !have_line) take_pipe_line(); /* the last line without '\n' */
    }
    if (!have_line) return NULL;
    char *line = got_line;
    got_line = NULL;
    have_line = 0;
    return line;
}

/* ---- evaluating ---- */

/* 1 if a syntax error message says the chunk ended too early */
static int incomplete(lua_State *L) {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return n >= 7 && strcmp(msg + n - 7, "'<eof>'") == 0;
}

/* loads a+b+c+d as "stdin": the function, or the error message, on the stack */
static int load(lua_State *L, const char *a, const char *b, const char *c, const char *d) {
    size_t n;
    lua_pushstring(L, a);
    lua_pushstring(L, b);
    lua_pushstring(L, c);
    lua_pushstring(L, d);
    lua_concat(L, 4);
    const char *s = lua_tolstring(L, -1, &n);
    int rc = luaL_loadbuffer(L, s, n, "=stdin");
    lua_remove(L, -2);
    return rc;
}

/* loads `<statements> return <expr>`; expr is passed through an identity
 * function so that a call in it is not a tail call (which would drop the
 * chunk's line from error messages and tracebacks) */
static int load_return(lua_State *L, const char *statements, const char *expr) {
    if (load(L, statements, " return (function(...) return ... end)(", expr, "\n)") == 0) return 0;
    lua_pop(L, 1);
    return load(L, statements, " return ", expr, "");
}

/* `t = wb.zeros(2, 3); t`: the statements up to the last ';', then the value
 * of what follows it, if both parse on their own (and the ';' is not after a
 * comment) */
static int load_last_expr(lua_State *L, const char *chunk) {
    const char *semi = strrchr(chunk, ';'), *line = chunk;
    for (const char *p = chunk; semi && p < semi; p++)
        if (*p == '\n') line = p + 1;
    if (!semi || !semi[1] || (line < semi && strstr(line, "--") && strstr(line, "--") < semi)) {
        lua_pushliteral(L, "no last expression");
        return LUA_ERRSYNTAX;
    }
    lua_pushlstring(L, chunk, semi - chunk + 1);
    const char *statements = lua_tostring(L, -1);
    int rc = load(L, statements, "", "", "");
    if (rc == 0) {
        lua_pop(L, 1);
        rc = load_return(L, statements, semi + 1);
    }
    lua_remove(L, -2);
    return rc;
}

/* compiles a REPL chunk as an expression list, whose values are printed,
 * else as statements with a last expression, else as statements. Returns 0
 * with the function on the stack, 1 if the chunk is unfinished (in either
 * reading), 2 after printing the syntax error. */
static int load_chunk(lua_State *L, const char *chunk) {
    int rc = load_return(L, "", chunk);
    int more = rc == LUA_ERRSYNTAX && incomplete(L);
    if (rc != 0) { lua_pop(L, 1); rc = load_last_expr(L, chunk); }
    if (rc != 0) { lua_pop(L, 1); rc = load(L, chunk, "", "", ""); }
    if (rc == 0) {
        /* interpreted, so that Ctrl-C reaches loops typed at the prompt */
        luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
        return 0;
    }
    if (rc == LUA_ERRSYNTAX && (more || incomplete(L))) { lua_pop(L, 1); return 1; }
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 2;
}

/* runs the function on the stack and prints what it returns with print() */
static void eval_print(lua_State *L) {
    int base = lua_gettop(L);
    if (docall(L, 0, LUA_MULTRET) != 0) return;
    int n = lua_gettop(L) - base + 1;
    if (n > 0) {
        lua_getglobal(L, "print");
        lua_insert(L, base);
        docall(L, n, 0);
    }
}

static char *append(char *chunk, const char *line) {
    size_t a = chunk ? strlen(chunk) : 0, b = strlen(line);
    char *s = realloc(chunk, a + b + 2);
    if (!s) { fprintf(stderr, "ecgwb: out of memory\n"); exit(1); }
    if (a) s[a++] = '\n';
    memcpy(s + a, line, b + 1);
    return s;
}

int host_repl(lua_State *L) {
    char *line, *chunk = NULL;
    uv_loop_t *loop = ewb_loop_uv();
    tty = isatty(STDIN_FILENO);
    repl_L = L;
    poll_ok = loop && uv_poll_init(loop, &stdin_poll, STDIN_FILENO) == 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* what a chunk prints shows up at once */
    if (tty) {
        tty_setup();
        printf("ecgwb %s (%s). Ctrl-D exits, Ctrl-C interrupts.\n", ewb_version(), LUAJIT_VERSION);
    }
    for (;;) {
        sigint_seen = 0;
        if (!(line = read_line(chunk ? ">> " : "> "))) break;
        if (sigint_seen) { /* Ctrl-C at the prompt: drop the line and the chunk */
            free(line);
            free(chunk);
            chunk = NULL;
            continue;
        }
        if (!chunk && line[0] == '=') line[0] = ' '; /* `=expr` as in Lua 5.1 */
        chunk = append(chunk, line);
        free(line);
        int rc = load_chunk(L, chunk);
        if (rc == 1) continue;
        if (rc == 0) eval_print(L);
        free(chunk);
        chunk = NULL;
    }
    free(chunk);
    free(inbuf);
    inbuf = NULL;
    if (poll_ok) {
        uv_close((uv_handle_t *)&stdin_poll, NULL);
        ewb_loop_run(0);
        poll_ok = 0;
    }
    if (tty) putchar('\n');
    fflush(stdout);
    return 0;
}
