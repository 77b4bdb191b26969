import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Routes anyone may use: probes need /healthz, and the login page and the dashboard's bundle hold no data.
 * Matched on the route fastify chose, not the raw URL, so no spelling of a path (`/healthz/..`, `%2F`) slips by.
 */
const OPEN_ROUTES = new Set(['/healthz', '/login', '/assets/:name']);
const COOKIE = 'fleetlog_session';
/**
 * The dashboard's own writes (its desired-state form and command button): the session cookie is accepted for these
 * too, but only from the page itself (an Origin header naming this host) and only with a JSON body, which a
 * cross-site form cannot send and a cross-site script cannot send without a CORS preflight this server never grants.
 */
const DASHBOARD_WRITES = new Set(['PUT /api/devices/:id/desired', 'POST /api/devices/:id/commands']);
/** Long enough for any token worth using; a bigger form is refused before it is parsed. */
const LOGIN_BODY_LIMIT = 4096;

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant-time: both sides are hashed to the same length first, so not even the token's length leaks. */
function same(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

type Verdict = { ok: true } | { ok: false; message: string };

/**
 * With a token, every route but /healthz, /login and /assets/* needs it. Scripts and the CLI send
 * `Authorization: Bearer <token>`. The dashboard cannot: EventSource (/api/stream) sets no headers. So
 * /login trades the token for an HttpOnly, SameSite=Strict session cookie, which is an HMAC of the token
 * (a leaked cookie is not the token), and which is accepted for GET and HEAD, and for the dashboard's own two
 * writes under the conditions of DASHBOARD_WRITES: a forged cross-site request carries no cookie (SameSite).
 * /metrics needs the token too: it names projections and counts devices, and Prometheus can send a bearer token.
 */
export function registerApiToken(app: FastifyInstance, token: string, options: { secure: boolean }): void {
  const expected = digest(token);
  const session = createHmac('sha256', token).update('fleetlog dashboard session').digest('base64url');
  const expectedSession = digest(session);

  function check(req: FastifyRequest): Verdict {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!match?.[1]) return { ok: false, message: 'the Authorization header must be "Bearer <token>"' };
      return same(match[1], expected)
        ? { ok: true }
        : { ok: false, message: 'the bearer token is wrong: use the value of FLEETLOG_API_TOKEN' };
    }
    const cookie = cookieValue(req.headers.cookie, COOKIE);
    if (cookie !== undefined && (req.method === 'GET' || req.method === 'HEAD' || dashboardWrite(req))) {
      return same(cookie, expectedSession)
        ? { ok: true }
        : { ok: false, message: 'the session has expired (the token changed): log in again at /login' };
    }
    return {
      ok: false,
      message:
        'this API needs a token: send "Authorization: Bearer <token>" (the CLI sends FLEETLOG_API_TOKEN), or log in at /login',
    };
  }

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route !== undefined && OPEN_ROUTES.has(route)) return;
    const verdict = check(req);
    if (verdict.ok) return;
    // A browser opening the dashboard is sent to the login form; everything else gets a 401 with the reason.
    if (route === '/' && req.headers.authorization === undefined) return reply.redirect('/login', 303);
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="fleetlog"')
      .send({ error: 'Unauthorized', code: 'ERR_UNAUTHORIZED', message: verdict.message });
  });

  void app.register((scope, _opts, done) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: LOGIN_BODY_LIMIT },
      (_req, body, parsed) => parsed(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    scope.get('/login', (_req, reply) => loginPage(reply, 200, ''));
    scope.post<{ Body: Record<string, string> | undefined }>('/login', (req, reply) => {
      const given = req.body?.token ?? '';
      if (!same(given, expected)) return loginPage(reply, 401, 'That token is wrong.');
      const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(options.secure ? ['Secure'] : [])];
      return reply.header('set-cookie', `${COOKIE}=${session}; ${attributes.join('; ')}`).redirect('/', 303);
    });
    done();
  });
}

function dashboardWrite(req: FastifyRequest): boolean {
  if (!DASHBOARD_WRITES.has(`${req.method} ${req.routeOptions.url ?? ''}`)) return false;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!type.startsWith('application/') || !type.endsWith('json')) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function loginPage(reply: FastifyReply, status: number, problem: string) {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fleetlog: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>fleetlog</h1>
<p>This dashboard needs the API token (the server's <code>FLEETLOG_API_TOKEN</code>).</p>
${problem ? `<p role="alert"><strong>${problem}</strong></p>` : ''}
<form method="post" action="/login">
<label>API token <input name="token" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form></body></html>
`;
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    )
    .send(html);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Where the HTTP listener may bind: without a token the API (and MQTT over WebSocket on it) would be open to
 * anyone who can reach the port, so it binds 127.0.0.1 whatever --host says, and `restricted` says so.
 */
export function apiBindHost(
  host: string,
  apiToken: string | undefined,
): { host: string; restricted: boolean } {
  if (apiToken !== undefined || LOOPBACK.test(host)) return { host, restricted: false };
  return { host: '127.0.0.1', restricted: true };
}
