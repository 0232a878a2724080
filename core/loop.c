/* loop.c: the event loop's C side. libuv owns the loop; Lua's scheduler
 * (lua/ecgwb/loop.lua) drives it and polls what happened. Nothing here calls
 * into Lua: timers and finished work append (kind, id) events to a queue,
 * and the scheduler drains it with ewb_loop_next_event on the loop thread.
 * This keeps C -> Lua callbacks out of JIT-compiled code entirely.
 *
 * Slow C work (HDF5 reads and writes, simulation batches, C functions such
 * as a checkpoint write) runs on ONE dedicated worker thread, in submission
 * order, on C-owned buffers: not on libuv's thread pool, which is global,
 * 4 threads, shared with filesystem requests and starved by long compute;
 * and one lane, because oneDNN and the core already use every core through
 * OpenMP. The worker appends the completion event and wakes the loop with
 * uv_async_send.
 *
 * Two rules keep the scheduler from blocking forever:
 * - an event queued by a callback on the loop thread (a timer) calls uv_stop,
 *   so the uv_run that ran it does not then block in its poll. libuv 1.44's
 *   UV_RUN_ONCE runs the timers that came due while Lua ran BEFORE it polls,
 *   and computes the poll's timeout without regard to what they did: without
 *   uv_stop a timer's event would sit in the queue while epoll_wait waits for
 *   the next timer, or forever when there is none.
 * - the wake-up handle keeps the loop alive only while work is outstanding
 *   (submitted and its event not yet drained), so uv_loop_alive tells whether
 *   anything at all (a timer, work, the REPL's stdin) can still end a wait;
 *   ewb_loop_run refuses to block when nothing can.
 *
 * Ctrl-C bookkeeping also lives here (the host's SIGINT handler notes it,
 * the scheduler takes it) so that the scheduler can deliver an interrupt to
 * the foreground task at a safe point instead of inside a background task.
 */
#include "internal.h"
#include "host.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* ---- the loop and its event queue ---- */

typedef struct event_node {
    ewb_event ev;
    struct event_node *next;
} event_node;

static uv_loop_t g_loop;
static uv_async_t g_wake;
static volatile sig_atomic_t g_loop_ready;
static pthread_mutex_t g_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static event_node *g_ev_head, *g_ev_tail;
static int64_t g_ev_count;
static int64_t g_work_outstanding; /* loop thread only: work whose event is not drained yet */

static volatile sig_atomic_t g_foreground = 1; /* foreground Lua code runs (not the scheduler) */
static int g_interrupts;                       /* Ctrl-Cs noted and not yet taken (atomic) */

static void on_wake(uv_async_t *a) { (void)a; } /* only ends uv_run's wait */

static int loop_init(void) {
    if (g_loop_ready) return 0;
    int rc = uv_loop_init(&g_loop);
    if (rc != 0) return ewb_error("loop: uv_loop_init: %s", uv_strerror(rc));
    rc = uv_async_init(&g_loop, &g_wake, on_wake);
    if (rc != 0) return ewb_error("loop: uv_async_init: %s", uv_strerror(rc));
    uv_unref((uv_handle_t *)&g_wake); /* referenced while work is outstanding */
    g_loop_ready = 1;
    return 0;
}

uv_loop_t *ewb_loop_uv(void) {
    return loop_init() == 0 ? &g_loop : NULL;
}

static void push_event(int kind, int64_t id, int status) {
    event_node *e = malloc(sizeof *e);
    if (!e) return; /* out of memory: the waiter never wakes; nothing better to do */
    e->ev.kind = kind;
    e->ev.id = id;
    e->ev.status = status;
    e->next = NULL;
    pthread_mutex_lock(&g_ev_lock);
    if (g_ev_tail) g_ev_tail->next = e;
    else g_ev_head = e;
    g_ev_tail = e;
    g_ev_count++;
    pthread_mutex_unlock(&g_ev_lock);
}

/* loop thread only (e.g. the dashboard's read callback): queue an event and
   make the running uv_run return instead of waiting (see the top of the file) */
void ewb_loop_push_event(int kind, int64_t id, int status) {
    push_event(kind, id, status);
    uv_stop(&g_loop);
}

/* loop thread: work was submitted (+1), or it ended: its event was drained
   or it was cancelled before it ran (-1) */
static void work_outstanding(int delta) {
    g_work_outstanding += delta;
    if (delta > 0 && g_work_outstanding == 1) uv_ref((uv_handle_t *)&g_wake);
    if (delta < 0 && g_work_outstanding == 0) uv_unref((uv_handle_t *)&g_wake);
}

int ewb_loop_next_event(ewb_event *ev) {
    pthread_mutex_lock(&g_ev_lock);
    event_node *e = g_ev_head;
    if (e) {
        g_ev_head = e->next;
        if (!g_ev_head) g_ev_tail = NULL;
        g_ev_count--;
    }
    pthread_mutex_unlock(&g_ev_lock);
    if (!e) return 0;
    *ev = e->ev;
    free(e);
    if (ev->kind == EWB_EVENT_WORK) work_outstanding(-1);
    return 1;
}

static int64_t queued_events(void) {
    pthread_mutex_lock(&g_ev_lock);
    int64_t n = g_ev_count;
    pthread_mutex_unlock(&g_ev_lock);
    return n;
}

int ewb_loop_run(int wait) {
    if (loop_init() != 0) return -1;
    /* never block with events already queued (a worker may have finished
       before we got here; its uv_async_send then also ends the wait) */
    if (wait && queued_events() > 0) wait = 0;
    /* nothing active could end the wait: say so instead of returning at once
       (uv_run does not poll a loop that is not alive) as if something came */
    if (wait && !uv_loop_alive(&g_loop)) return 1;
    uv_run(&g_loop, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    return 0;
}

void ewb_loop_wakeup(void) {
    if (g_loop_ready) uv_async_send(&g_wake); /* async-signal-safe */
}

void ewb_loop_set_foreground(int flag) { g_foreground = flag ? 1 : 0; }
int ewb_loop_foreground(void) { return g_foreground; }

/* atomic (lock-free, so async-signal-safe): a Ctrl-C noted between the read
   and the reset of a plain take would be lost */
int ewb_loop_note_interrupt(void) {
    int n = __atomic_add_fetch(&g_interrupts, 1, __ATOMIC_SEQ_CST);
    ewb_loop_wakeup();
    return n;
}

int ewb_loop_take_interrupt(void) {
    return __atomic_exchange_n(&g_interrupts, 0, __ATOMIC_SEQ_CST) > 0;
}

/* ---- timers ---- */

struct ewb_timer {
    uv_timer_t h;
    int64_t id;
};

static void on_timer(uv_timer_t *h) {
    ewb_timer *t = h->data;
    push_event(EWB_EVENT_TIMER, t->id, 0);
    uv_stop(&g_loop); /* this uv_run must not block now: see the top of the file */
}

static void free_handle(uv_handle_t *h) { free(h->data); }

int ewb_timer_start(ewb_timer **out, int64_t id, double ms, double repeat_ms) {
    *out = NULL;
    if (!(ms >= 0) || !(repeat_ms >= 0))
        return ewb_error("timer: times must be >= 0 ms, got %g and %g", ms, repeat_ms);
    if (loop_init() != 0) return -1;
    ewb_timer *t = calloc(1, sizeof *t);
    if (!t) return ewb_error("timer: out of memory");
    t->id = id;
    t->h.data = t;
    uv_timer_init(&g_loop, &t->h);
    /* libuv's clock counts whole milliseconds, truncated: round up and add
       one so that a timer never fires early by wall-clock time */
    uint64_t first = ms > 0 ? (uint64_t)ceil(ms) + 1 : 0, rep = (uint64_t)ceil(repeat_ms);
    uv_update_time(&g_loop); /* measure from now, not from the last loop iteration */
    int rc = uv_timer_start(&t->h, on_timer, first, rep);
    if (rc != 0) {
        uv_close((uv_handle_t *)&t->h, free_handle);
        return ewb_error("timer: %s", uv_strerror(rc));
    }
    *out = t;
    return 0;
}

void ewb_timer_free(ewb_timer *t) {
    if (!t) return;
    uv_timer_stop(&t->h);
    uv_close((uv_handle_t *)&t->h, free_handle); /* freed on the next loop iteration */
}

/* ---- work on the worker thread ---- */

struct ewb_work {
    int refs;                 /* the caller's and, until it is done, the worker's */
    int state;                /* EWB_WORK_QUEUED, _RUNNING, _DONE */
    int cancelled;
    int64_t id;
    ewb_work_params p;        /* file, name copied; tensor retained */
    int status;
    char error[1024];
    ewb_tensor *result;
    struct ewb_work *next;
};

static pthread_mutex_t g_work_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work_cond = PTHREAD_COND_INITIALIZER;
static ewb_work *g_work_head, *g_work_tail;
static int g_worker_started;

static void work_release_locked(ewb_work *w) {
    if (--w->refs > 0) return;
    free((char *)w->p.file);
    free((char *)w->p.name);
    ewb_tensor_free(w->p.tensor);
    ewb_tensor_free(w->result);
    free(w);
}

/* (count, 12, L) records index .. index+count-1 */
static int sim_batch(const ewb_work_params *p, ewb_tensor **out) {
    if (p->count < 1 || p->count > (1 << 20))
        return ewb_error("work sim_batch: count must be in 1..2^20, got %lld", (long long)p->count);
    ewb_tensor **recs = calloc((size_t)p->count, sizeof *recs);
    if (!recs) return ewb_error("work sim_batch: out of memory");
    int rc = 0;
    for (int64_t i = 0; i < p->count && rc == 0; i++) {
        ewb_sim_config cfg = p->sim;
        cfg.index = p->sim.index + (uint64_t)i;
        rc = ewb_sim_ecg(&cfg, &recs[i], NULL);
    }
    if (rc == 0) rc = ewb_stack((int)p->count, recs, 0, out);
    for (int64_t i = 0; i < p->count; i++) ewb_tensor_free(recs[i]);
    free(recs);
    return rc;
}

static int work_run(ewb_work *w) {
    const ewb_work_params *p = &w->p;
    switch (p->kind) {
    case EWB_WORK_SLEEP: {
        struct timespec ts = { (time_t)(p->ms / 1000), (long)(fmod(p->ms, 1000) * 1e6) };
        while (nanosleep(&ts, &ts) != 0) {}
        return 0;
    }
    case EWB_WORK_H5_READ: return ewb_h5_read(p->file, p->name, &w->result);
    case EWB_WORK_H5_WRITE: return ewb_h5_write(p->file, p->name, p->tensor, p->truncate);
    case EWB_WORK_SIM_BATCH: return sim_batch(p, &w->result);
    case EWB_WORK_CALL: return p->fn(p->arg);
    }
    return ewb_error("work: unknown kind %d", p->kind);
}

static void *worker_main(void *arg) {
    (void)arg;
    sigset_t all; /* Ctrl-C goes to the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    ewb_set_grad_enabled(0); /* work never records autograd graphs */
    pthread_mutex_lock(&g_work_lock);
    for (;;) {
        while (!g_work_head) pthread_cond_wait(&g_work_cond, &g_work_lock);
        ewb_work *w = g_work_head;
        g_work_head = w->next;
        if (!g_work_head) g_work_tail = NULL;
        w->state = EWB_WORK_RUNNING;
        pthread_mutex_unlock(&g_work_lock);

        ewb_clear_error();
        int status = work_run(w);

        pthread_mutex_lock(&g_work_lock);
        w->status = status;
        if (status != 0) snprintf(w->error, sizeof w->error, "%s", ewb_last_error());
        w->state = EWB_WORK_DONE;
        int64_t id = w->id;
        work_release_locked(w); /* the worker's reference */
        pthread_mutex_unlock(&g_work_lock);
        push_event(EWB_EVENT_WORK, id, status);
        ewb_loop_wakeup();
        pthread_mutex_lock(&g_work_lock);
    }
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int ewb_work_submit(ewb_work **out, const ewb_work_params *p, int64_t id) {
    *out = NULL;
    switch (p->kind) {
    case EWB_WORK_SLEEP:
        if (!(p->ms >= 0 && p->ms < 1e9)) return ewb_error("work sleep: ms must be in [0, 1e9), got %g", p->ms);
        break;
    case EWB_WORK_H5_READ:
        if (!p->file || !p->name) return ewb_error("work h5_read: needs a file and a dataset name");
        break;
    case EWB_WORK_H5_WRITE:
        if (!p->file || !p->name || !p->tensor) return ewb_error("work h5_write: needs a file, a dataset name and a tensor");
        break;
    case EWB_WORK_SIM_BATCH:
        if (p->count < 1) return ewb_error("work sim_batch: count must be >= 1, got %lld", (long long)p->count);
        break;
    case EWB_WORK_CALL:
        if (!p->fn) return ewb_error("work call: no function");
        break;
    default:
        return ewb_error("work: unknown kind %d", p->kind);
    }
    if (loop_init() != 0) return -1;
    ewb_work *w = calloc(1, sizeof *w);
    if (!w) return ewb_error("work: out of memory");
    w->p = *p;
    w->p.file = dup_or_null(p->file);
    w->p.name = dup_or_null(p->name);
    if ((p->file && !w->p.file) || (p->name && !w->p.name)) {
        free((char *)w->p.file);
        free((char *)w->p.name);
        free(w);
        return ewb_error("work: out of memory");
    }
    if (w->p.tensor) ewb_tensor_retain(w->p.tensor);
    w->id = id;
    w->refs = 2;
    w->state = EWB_WORK_QUEUED;
    pthread_mutex_lock(&g_work_lock);
    if (!g_worker_started) {
        int rc = ewb_thread_detached(worker_main, NULL);
        if (rc != 0) {
            w->refs = 1;
            work_release_locked(w);
            pthread_mutex_unlock(&g_work_lock);
            return ewb_error("work: cannot start the worker thread (%s)", strerror(rc));
        }
        g_worker_started = 1;
    }
    if (g_work_tail) g_work_tail->next = w;
    else g_work_head = w;
    g_work_tail = w;
    pthread_cond_signal(&g_work_cond);
    pthread_mutex_unlock(&g_work_lock);
    work_outstanding(+1);
    *out = w;
    return 0;
}

int ewb_work_state(ewb_work *w) {
    pthread_mutex_lock(&g_work_lock);
    int s = w->state;
    pthread_mutex_unlock(&g_work_lock);
    return s;
}

int ewb_work_result(ewb_work *w, ewb_tensor **out) {
    *out = NULL;
    pthread_mutex_lock(&g_work_lock);
    int state = w->state, status = w->status, cancelled = w->cancelled;
    char msg[sizeof w->error];
    memcpy(msg, w->error, sizeof msg);
    if (state == EWB_WORK_DONE && status == 0) {
        *out = w->result;
        w->result = NULL;
    }
    pthread_mutex_unlock(&g_work_lock);
    if (cancelled) return ewb_error("work: cancelled");
    if (state != EWB_WORK_DONE) return ewb_error("work: not finished yet");
    if (status != 0) return ewb_error("%s", msg);
    return 0;
}

int ewb_work_cancel(ewb_work *w) {
    int done = 0;
    pthread_mutex_lock(&g_work_lock);
    if (w->state == EWB_WORK_QUEUED) {
        ewb_work **pp = &g_work_head, *prev = NULL;
        while (*pp && *pp != w) { prev = *pp; pp = &(*pp)->next; }
        if (*pp) {
            *pp = w->next;
            if (g_work_tail == w) g_work_tail = prev;
            w->next = NULL;
            w->state = EWB_WORK_DONE;
            w->status = -1;
            w->cancelled = 1;
            work_release_locked(w); /* the worker's reference */
            done = 1;
        }
    }
    pthread_mutex_unlock(&g_work_lock);
    if (done) work_outstanding(-1); /* no event comes */
    return done;
}

void ewb_work_free(ewb_work *w) {
    if (!w) return;
    ewb_work_cancel(w);
    pthread_mutex_lock(&g_work_lock);
    work_release_locked(w);
    pthread_mutex_unlock(&g_work_lock);
}
