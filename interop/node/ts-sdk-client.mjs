// ts-sdk-client.mjs drives a generated MCP server with the official
// TypeScript SDK client (@modelcontextprotocol/sdk), the way an MCP host
// does, with the person at the login page replaced by a headless login:
//
//   connect without a token (401) -> discovery (RFC 9728, RFC 8414) ->
//   dynamic registration (RFC 7591) with the given token_endpoint_auth_method ->
//   PKCE authorization request -> login through the HTML form -> code for
//   token -> initialize, tools/list, tools/call of every tool ->
//   refresh after a rejected access token, once by the transport on a 401,
//   once by calling the SDK's auth() directly.
//
// Usage (interop/interop_test.go runs it):
//
//   MCP_URL=http://127.0.0.1:PORT/mcp MCP_ISSUER=http://127.0.0.1:PORT \
//   MCP_USERNAME=alice MCP_PASSWORD=... node ts-sdk-client.mjs none|client_secret_post|client_secret_basic
//
// It prints one JSON object on stdout: {"ok":true,...} with what it saw, or
// {"ok":false,"step":"...","error":"..."} and exit status 1. Progress goes
// to stderr.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const MCP_URL = mustEnv('MCP_URL');
const ISSUER = mustEnv('MCP_ISSUER');
const USERNAME = mustEnv('MCP_USERNAME');
const PASSWORD = mustEnv('MCP_PASSWORD');
const METHOD = process.argv[2] ?? 'none';
// Nothing listens at the redirect URI: the headless login stops at the
// redirect to it and reads the code from the Location header.
const REDIRECT = 'http://127.0.0.1:53682/callback';

const sdkVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
).version;

let currentStep = 'start';
const out = { ok: false, sdkVersion, node: process.version, method: METHOD, steps: [] };

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.log(JSON.stringify({ ok: false, step: 'start', error: `${name} is not set` }));
    process.exit(1);
  }
  return v;
}

function log(...args) {
  console.error('[ts-sdk]', ...args);
}

async function step(name, fn) {
  currentStep = name;
  log(name);
  const result = await fn();
  out.steps.push(name);
  return result;
}

// Every HTTP request the SDK makes goes through this recorder, so the test
// can tell what happened on the wire: discovery, registration, which client
// authentication each token request used, which requests got 401.
const wire = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const entry = { method, path: url.pathname };
  if (url.pathname === '/token') {
    const headers = new Headers(init.headers);
    const body = new URLSearchParams(typeof init.body === 'string' ? init.body : init.body?.toString() ?? '');
    entry.grant_type = body.get('grant_type');
    entry.auth = headers.get('authorization')?.startsWith('Basic ')
      ? 'client_secret_basic'
      : body.has('client_secret')
        ? 'client_secret_post'
        : 'none';
    entry.secretInBody = body.has('client_secret');
    entry.basicHeader = headers.has('authorization');
  }
  const res = await realFetch(input, init);
  entry.status = res.status;
  wire.push(entry);
  return res;
};

// The SDK is imported after fetch is wrapped, so it can only use the wrapper.
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { auth, UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');

// HeadlessProvider is an OAuthClientProvider whose "browser" is
// headlessLogin. It stores what the SDK hands it unchanged.
class HeadlessProvider {
  constructor(method) {
    this.method = method;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.authorizationCode = undefined;
    this.savedTokens = 0;
  }

  get redirectUrl() {
    return REDIRECT;
  }

  get clientMetadata() {
    return {
      client_name: `interop ts-sdk ${this.method}`,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: this.method,
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.savedTokens++;
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    return this._verifier;
  }

  async redirectToAuthorization(url) {
    const q = url.searchParams;
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
      throw new Error(`authorization URL without a PKCE S256 challenge: ${url}`);
    }
    if (!this._state || q.get('state') !== this._state) {
      throw new Error(`authorization URL carries state ${q.get('state')}, want ${this._state}`);
    }
    const params = await headlessLogin(url, USERNAME, PASSWORD);
    // The SDK checks neither state nor iss (RFC 9207): we do.
    if (params.get('error')) {
      throw new Error(`authorization error ${params.get('error')}: ${params.get('error_description')}`);
    }
    if (params.get('state') !== this._state) {
      throw new Error(`redirect carries state ${params.get('state')}, want ${this._state}`);
    }
    if (params.get('iss') !== ISSUER) {
      throw new Error(`redirect carries iss ${params.get('iss')}, want the issuer ${ISSUER}`);
    }
    if (!params.get('code')) {
      throw new Error('redirect carries no code');
    }
    this.authorizationCode = params.get('code');
  }
}

// headlessLogin does what a person does in a browser: open the
// authorization URL (keeping cookies), fill in the login form (keeping its
// hidden inputs), press the sign-in button, follow redirects until the
// client's redirect URI, and return its query parameters.
async function headlessLogin(authorizationUrl, username, password) {
  const cookies = new Map();
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const keepCookies = (res) => {
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      if (i > 0) cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  };

  let pageUrl = new URL(authorizationUrl);
  let res = await realFetch(pageUrl, { redirect: 'manual', headers: { accept: 'text/html' } });
  keepCookies(res);
  let html = await res.text();
  if (res.status !== 200) {
    throw new Error(`login page: HTTP ${res.status}: ${text(html).slice(0, 300)}`);
  }
  const form = parseLoginForm(html);
  const body = new URLSearchParams(form.fields);
  body.set('username', username);
  body.set('password', password);
  if (form.approve?.name) body.set(form.approve.name, form.approve.value);

  const action = new URL(form.action || pageUrl.href, pageUrl);
  res = await realFetch(action, {
    method: form.method,
    redirect: 'manual',
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookieHeader(),
      origin: pageUrl.origin,
      'sec-fetch-site': 'same-origin',
    },
  });
  keepCookies(res);
  for (let hops = 0; hops < 5; hops++) {
    if (![301, 302, 303, 307, 308].includes(res.status)) break;
    const next = new URL(res.headers.get('location'), action);
    if (next.href.startsWith(REDIRECT + '?')) {
      if (res.status !== 303 && res.status !== 302) {
        throw new Error(`login: redirect to the client with HTTP ${res.status}, want 303`);
      }
      return next.searchParams;
    }
    res = await realFetch(next, { redirect: 'manual', headers: { cookie: cookieHeader() } });
    keepCookies(res);
  }
  html = await res.text();
  throw new Error(`login: no redirect to the client; HTTP ${res.status}: ${text(html).slice(0, 300)}`);
}

// parseLoginForm returns the form that has a password input: its action,
// method, fields (hidden inputs and other named inputs with their values)
// and the submit button that signs in (the first that does not refuse).
function parseLoginForm(html) {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi)];
  const match = forms.find((m) => /<input\b[^>]*\bname\s*=\s*["']?password\b/i.test(m[2]));
  if (!match) {
    throw new Error(`login page: no form with an input named password: ${text(html).slice(0, 300)}`);
  }
  const fattrs = attrs(match[1]);
  const inner = match[2];
  const fields = [];
  for (const [, a] of inner.matchAll(/<input\b([^>]*)>/gi)) {
    const at = attrs(a);
    const type = (at.type ?? 'text').toLowerCase();
    if (!at.name || 'disabled' in at || ['submit', 'image', 'button', 'reset', 'file'].includes(type)) continue;
    if ((type === 'checkbox' || type === 'radio') && !('checked' in at)) continue;
    fields.push([at.name, at.value ?? (type === 'checkbox' ? 'on' : '')]);
  }
  if (!fields.some(([n]) => n === 'username')) {
    throw new Error('login page: no input named username');
  }
  const submits = [];
  for (const [, a, label] of inner.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button\s*>/gi)) {
    const at = attrs(a);
    if ((at.type ?? 'submit').toLowerCase() === 'submit') {
      submits.push({ name: at.name, value: at.value ?? '', label: text(label) });
    }
  }
  for (const [, a] of inner.matchAll(/<input\b([^>]*)>/gi)) {
    const at = attrs(a);
    if ((at.type ?? '').toLowerCase() === 'submit') submits.push({ name: at.name, value: at.value ?? '', label: at.value ?? '' });
  }
  const refuses = (s) => /deny|refuse|reject|decline|cancel/i.test(`${s.name} ${s.value} ${s.label}`);
  return {
    action: fattrs.action ?? '',
    method: (fattrs.method ?? 'GET').toUpperCase(),
    fields,
    approve: submits.find((s) => !refuses(s)),
  };
}

function attrs(s) {
  const out = {};
  for (const [, name, dq, sq, bare] of s.matchAll(/([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g)) {
    out[name.toLowerCase()] = decode(dq ?? sq ?? bare ?? '');
  }
  return out;
}

function decode(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (m, e) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return named[e.toLowerCase()] ?? m;
  });
}

function text(html) {
  return decode(html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();
}

// argsFor builds arguments from a tool's input schema: marker for strings,
// 2 for numbers, true for booleans.
function argsFor(schema, marker) {
  const args = {};
  let hasString = false;
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    if (prop.type === 'string') {
      args[name] = marker;
      hasString = true;
    } else if (prop.type === 'number' || prop.type === 'integer') {
      args[name] = 2;
    } else if (prop.type === 'boolean') {
      args[name] = true;
    }
  }
  return { args, hasString };
}

function resultText(res) {
  return (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

// tokenRequestsSince returns the /token requests recorded from index i on,
// checking that each authenticated the client with METHOD.
function tokenRequestsSince(i) {
  const reqs = wire.slice(i).filter((e) => e.path === '/token');
  for (const r of reqs) {
    if (r.auth !== METHOD) {
      throw new Error(`token request (${r.grant_type}) authenticated with ${r.auth}, want ${METHOD}`);
    }
    if (METHOD === 'client_secret_basic' && r.secretInBody) {
      throw new Error('client_secret_basic token request also sent client_secret in the body');
    }
  }
  return reqs;
}

function newTransport(provider) {
  return new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
}

function newClient() {
  return new Client({ name: `interop-ts-sdk-${METHOD}`, version: '0.1.0' });
}

async function main() {
  const provider = new HeadlessProvider(METHOD);
  let transport = newTransport(provider);
  let client = newClient();

  await step('connect without a token: 401, discovery, registration, PKCE, login', async () => {
    try {
      await client.connect(transport);
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    if (!provider.authorizationCode) {
      throw new Error('the SDK never sent the user to the authorization endpoint (no 401 challenge?)');
    }
    const first401 = wire.find((e) => e.path === new URL(MCP_URL).pathname && e.status === 401);
    if (!first401) throw new Error('no 401 from the MCP endpoint before authorization');
    const prm = wire.find((e) => e.path.startsWith('/.well-known/oauth-protected-resource') && e.status === 200);
    const asm = wire.find((e) => e.path.startsWith('/.well-known/oauth-authorization-server') && e.status === 200);
    const reg = wire.find((e) => e.path === '/register');
    if (!prm) throw new Error('no protected-resource metadata fetched (RFC 9728)');
    if (!asm) throw new Error('no authorization-server metadata fetched (RFC 8414)');
    if (!reg || reg.status !== 201) throw new Error(`dynamic registration answered ${reg?.status}, want 201`);
    const info = provider.clientInformation();
    out.registered = {
      token_endpoint_auth_method: info.token_endpoint_auth_method,
      client_secret: Boolean(info.client_secret),
    };
    if (info.token_endpoint_auth_method !== METHOD) {
      throw new Error(`registered token_endpoint_auth_method ${info.token_endpoint_auth_method}, want ${METHOD}`);
    }
    if ((METHOD === 'none') === Boolean(info.client_secret)) {
      throw new Error(`registration with ${METHOD} returned client_secret: ${Boolean(info.client_secret)}`);
    }
    out.discovery = [prm.path, asm.path];
  });

  await step('token (authorization_code)', async () => {
    const i = wire.length;
    await transport.finishAuth(provider.authorizationCode);
    const reqs = tokenRequestsSince(i);
    if (!reqs.some((r) => r.grant_type === 'authorization_code' && r.status === 200)) {
      throw new Error(`no successful authorization_code grant: ${JSON.stringify(reqs)}`);
    }
    const t = provider.tokens();
    if (!t?.access_token || !t?.refresh_token) throw new Error('token response without access_token or refresh_token');
  });

  await step('connect with the token (initialize)', async () => {
    transport = newTransport(provider);
    client = newClient();
    await client.connect(transport);
    out.protocolVersion = transport.protocolVersion;
    out.server = client.getServerVersion();
  });

  await step('tools/list and tools/call', async () => {
    const { tools } = await client.listTools();
    out.tools = tools.map((t) => t.name);
    out.calls = [];
    for (const tool of tools) {
      const marker = `hello from ts-sdk ${METHOD} to ${tool.name}`;
      const { args, hasString } = argsFor(tool.inputSchema, marker);
      const res = await client.callTool({ name: tool.name, arguments: args });
      const txt = resultText(res);
      if (res.isError) throw new Error(`tools/call ${tool.name}: tool error: ${txt}`);
      if (hasString && !txt.includes(marker)) throw new Error(`tools/call ${tool.name}: result ${JSON.stringify(txt)} lacks ${JSON.stringify(marker)}`);
      out.calls.push({ tool: tool.name, text: txt });
    }
  });

  await step('refresh by the transport after a 401 (corrupted access token)', async () => {
    const before = provider.tokens();
    provider._tokens = { ...before, access_token: `interop-corrupted-${randomBytes(8).toString('hex')}` };
    const i = wire.length;
    const { tools } = await client.listTools();
    const mcp401 = wire.slice(i).some((e) => e.path === new URL(MCP_URL).pathname && e.status === 401);
    const reqs = tokenRequestsSince(i);
    const after = provider.tokens();
    if (!mcp401) throw new Error('the corrupted access token was not refused with 401');
    if (!reqs.some((r) => r.grant_type === 'refresh_token' && r.status === 200)) {
      throw new Error(`no successful refresh_token grant after the 401: ${JSON.stringify(reqs)}`);
    }
    if (after.access_token === before.access_token || after.refresh_token === before.refresh_token) {
      throw new Error('the refresh did not return a new access token and a rotated refresh token');
    }
    out.refreshOn401 = { tools: tools.length, tokenRequests: reqs };
  });

  await step("refresh by calling the SDK's auth() directly", async () => {
    const before = provider.tokens();
    const i = wire.length;
    const result = await auth(provider, { serverUrl: MCP_URL });
    const reqs = tokenRequestsSince(i);
    const after = provider.tokens();
    if (result !== 'AUTHORIZED') throw new Error(`auth() returned ${result}, want AUTHORIZED (a refresh)`);
    if (!reqs.some((r) => r.grant_type === 'refresh_token' && r.status === 200)) {
      throw new Error(`auth() made no successful refresh_token grant: ${JSON.stringify(reqs)}`);
    }
    if (after.access_token === before.access_token) throw new Error('auth() kept the old access token');
    const marker = `after auth() refresh ${METHOD}`;
    const echo = (await client.listTools()).tools.find((t) => t.name === 'echo');
    if (echo) {
      const { args } = argsFor(echo.inputSchema, marker);
      const res = await client.callTool({ name: 'echo', arguments: args });
      if (res.isError || !resultText(res).includes(marker)) throw new Error(`tools/call echo with the refreshed token: ${resultText(res)}`);
    }
    out.refreshViaAuth = { result, tokenRequests: reqs };
  });

  await step('close', async () => {
    await client.close();
  });

  out.ok = true;
  out.tokenRequests = wire.filter((e) => e.path === '/token');
  console.log(JSON.stringify(out));
}

try {
  await main();
  process.exit(0);
} catch (e) {
  out.step = currentStep;
  out.error = e?.stack ?? String(e);
  out.wire = wire;
  console.log(JSON.stringify(out));
  process.exit(1);
}
