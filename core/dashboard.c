/* dashboard.c: the live dashboard's HTTP server (a libuv TCP server on the
 * event loop's thread). It speaks just enough HTTP/1.1 for a read-only page:
 * one GET per connection, answered and then closed.
 *
 * Nothing here calls into Lua (the design of core/loop.c). C reads and
 * checks the request; a good GET gets a request number and queues an
 * (EWB_EVENT_HTTP, server id, status = request number) event. The Lua side
 * (lua/ecgwb/dashboard.lua) drains it in its task, reads the target with
 * ewb_dashboard_path, renders the answer and hands C the bytes with
 * ewb_dashboard_respond. So a page always shows the state of the moment it
 * is asked for, and nothing is rendered when nobody looks.
 *
 * C answers by itself what needs no Lua: 400 (malformed), 405 (not GET),
 * 414 (target too long), 431 (request over 8 KiB). A client that does not
 * finish its request within 10 s, or does not take the answer within 30 s,
 * is dropped; beyond 64 open connections new ones are closed at once.
 */
#include "internal.h"
#include "host.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { REQ_MAX = 8192, TARGET_MAX = 1024, CONN_MAX = 64 };
enum { READ_TIMEOUT_MS = 10000, WRITE_TIMEOUT_MS = 30000 };
enum { ST_READING, ST_WAITING, ST_WRITING, ST_CLOSING };

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;          /* read / write deadline */
    int open_handles;          /* freed when both handles are closed */
    int state;
    int req;                   /* request number while ST_WAITING */
    size_t len;
    char buf[REQ_MAX + 1];     /* the request as read, NUL-terminated */
    char target[TARGET_MAX + 1];
    char *resp;                /* the answer being written */
    uv_write_t wr;
    uv_shutdown_t sd;
    struct conn *prev, *next;
} conn;

static uv_tcp_t *g_server;     /* NULL when not serving */
static int64_t g_event_id;
static int g_next_req;
static conn *g_conns;
static int g_nconns;

static void conn_free_cb(uv_handle_t *h) {
    conn *c = h->data;
    if (--c->open_handles > 0) return;
    free(c->resp);
    free(c);
}

static void conn_close(conn *c) {
    if (c->state == ST_CLOSING) return;
    c->state = ST_CLOSING;
    if (c->prev) c->prev->next = c->next;
    else g_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    g_nconns--;
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_shutdown(uv_shutdown_t *sd, int status) {
    (void)status;
    conn_close(sd->data);
}

static void on_written(uv_write_t *wr, int status) {
    conn *c = wr->data;
    if (c->state == ST_CLOSING) return;
    if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_close(c);
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

/* writes the whole answer, then shuts the connection down and closes it */
static int send_response(conn *c, int status, const char *ctype, const void *body, int64_t n) {
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lld\r\n"
                      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s"
                      "Connection: close\r\n\r\n",
                      status, reason(status), ctype, (long long)n, status == 405 ? "Allow: GET\r\n" : "");
    if (hn < 0 || hn >= (int)sizeof head) { conn_close(c); return ewb_error("dashboard: response header too long"); }
    c->resp = malloc((size_t)hn + (size_t)n);
    if (!c->resp) { conn_close(c); return ewb_error("dashboard: out of memory for a %lld-byte response", (long long)n); }
    memcpy(c->resp, head, (size_t)hn);
    if (n > 0) memcpy(c->resp + hn, body, (size_t)n);
    c->state = ST_WRITING;
    uv_timer_start(&c->timer, on_timeout, WRITE_TIMEOUT_MS, 0);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)(hn + n));
    c->wr.data = c;
    c->sd.data = c;
    int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc != 0) { conn_close(c); return ewb_error("dashboard: write: %s", uv_strerror(rc)); }
    return 0;
}

static void send_error(conn *c, int status) {
    char body[128];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    send_response(c, status, "text/plain; charset=utf-8", body, n);
}

/* the request is complete in c->buf: check its request line and queue it */
static void handle_request(conn *c) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    char *eol = strpbrk(c->buf, "\r\n");
    if (eol) *eol = 0;
    char *sp1 = strchr(c->buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == c->buf || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || strchr(sp2 + 1, ' ')) {
        send_error(c, 400);
        return;
    }
    *sp1 = *sp2 = 0;
    const char *method = c->buf, *target = sp1 + 1;
    if (strcmp(method, "GET") != 0) { send_error(c, 405); return; }
    size_t tn = strlen(target);
    if (tn > TARGET_MAX) { send_error(c, 414); return; }
    if (target[0] != '/') { send_error(c, 400); return; }
    memcpy(c->target, target, tn + 1);
    c->state = ST_WAITING;
    c->req = ++g_next_req;
    if (g_next_req == 2147483647) g_next_req = 0;
    ewb_loop_push_event(EWB_EVENT_HTTP, g_event_id, c->req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    conn *c = h->data;
    /* one byte more than the limit may arrive: that is how an oversized request shows */
    b->base = c->buf + c->len;
    b->len = REQ_MAX + 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    conn *c = s->data;
    if (c->state != ST_READING) return;
    if (nread < 0) { conn_close(c); return; } /* EOF or error before a whole request */
    if (nread == 0) return;
    c->len += (size_t)nread;
    if (c->len > REQ_MAX) { c->buf[REQ_MAX] = 0; uv_read_stop(s); send_error(c, 431); return; }
    c->buf[c->len] = 0;
    if (memchr(c->buf, 0, c->len)) { uv_read_stop(s); send_error(c, 400); return; }
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) handle_request(c);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status != 0) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_loop_t *loop = server->loop;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->state = ST_READING;
    c->next = g_conns;
    if (g_conns) g_conns->prev = c;
    g_conns = c;
    g_nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || g_nconns > CONN_MAX) { conn_close(c); return; }
    uv_timer_start(&c->timer, on_timeout, READ_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

static void server_free_cb(uv_handle_t *h) { free(h); }

int ewb_dashboard_start(const char *host, int port, int64_t id, int *bound_port) {
    if (bound_port) *bound_port = 0;
    if (g_server) return ewb_error("dashboard: already serving (stop it first)");
    if (!host || !*host) host = "127.0.0.1";
    if (port < 0 || port > 65535) return ewb_error("dashboard: port must be in 0..65535, got %d", port);
    uv_loop_t *loop = ewb_loop_uv();
    if (!loop) return -1;
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) return ewb_error("dashboard: '%s' is not an IP address", host);
    uv_tcp_t *s = calloc(1, sizeof *s);
    if (!s) return ewb_error("dashboard: out of memory");
    uv_tcp_init(loop, s);
    rc = uv_tcp_bind(s, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)s, 16, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)s, server_free_cb);
        return ewb_error("dashboard: cannot listen on %s port %d: %s", host, port, uv_strerror(rc));
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    if (bound_port && uv_tcp_getsockname(s, (struct sockaddr *)&got, &len) == 0)
        *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                      : ((struct sockaddr_in *)&got)->sin_port);
    /* a client that hangs up while we write must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    g_server = s;
    g_event_id = id;
    return 0;
}

void ewb_dashboard_stop(void) {
    if (!g_server) return;
    uv_close((uv_handle_t *)g_server, server_free_cb);
    g_server = NULL;
    while (g_conns) conn_close(g_conns);
}

static conn *waiting(int req) {
    for (conn *c = g_conns; c; c = c->next)
        if (c->state == ST_WAITING && c->req == req) return c;
    return NULL;
}

const char *ewb_dashboard_path(int req) {
    conn *c = waiting(req);
    return c ? c->target : NULL;
}

int ewb_dashboard_respond(int req, int status, const char *content_type, const void *body, int64_t n) {
    conn *c = waiting(req);
    if (!c) return 0; /* the client left, or the server stopped */
    if (status < 100 || status > 599) { send_error(c, 500); return ewb_error("dashboard: bad status %d", status); }
    if (n < 0 || n > ((int64_t)1 << 30)) { send_error(c, 500); return ewb_error("dashboard: bad body size %lld", (long long)n); }
    if (!content_type || strpbrk(content_type, "\r\n")) content_type = "application/octet-stream";
    return send_response(c, status, content_type, body, n) == 0 ? 1 : -1;
}
