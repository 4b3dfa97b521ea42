// inject-bearer.mjs is preloaded (NODE_OPTIONS=--import) into the official
// conformance suite, which never sends Authorization. It adds
// "Authorization: Bearer $MCP_BEARER" to every request for the origin of
// $MCP_URL, so that the suite's scenarios run against the protected MCP
// endpoint with a real access token.
//
// Two paths need it: globalThis.fetch (the SDK client the suite drives) and
// undici's request() (the dns-rebinding scenario, which must set Host); both
// go through undici's global dispatcher, which this module also wraps.
import { Agent, setGlobalDispatcher } from 'undici';

const token = process.env.MCP_BEARER;
const target = process.env.MCP_URL;
if (!token || !target) {
  throw new Error('inject-bearer.mjs: MCP_BEARER and MCP_URL must be set');
}
const origin = new URL(target).origin;
const header = `Bearer ${token}`;

const forTarget = (url) => {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
};

const originalFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
  if (!forTarget(url)) {
    return originalFetch(input, init);
  }
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  if (!headers.has('authorization')) {
    headers.set('authorization', header);
  }
  return originalFetch(input, { ...init, headers });
};

// hasAuthorization reports whether undici dispatch headers (an object, a flat
// array of name/value pairs, or an iterable of pairs) already carry
// Authorization.
const hasAuthorization = (headers) => {
  if (!headers) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') return true;
    }
    return false;
  }
  if (typeof headers[Symbol.iterator] === 'function') {
    for (const [k] of headers) if (String(k).toLowerCase() === 'authorization') return true;
    return false;
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === 'authorization');
};

const addAuthorization = (headers) => {
  if (!headers) return { authorization: header };
  if (Array.isArray(headers)) return [...headers, 'authorization', header];
  if (typeof headers[Symbol.iterator] === 'function') {
    const out = {};
    for (const [k, v] of headers) out[k] = v;
    out.authorization = header;
    return out;
  }
  return { ...headers, authorization: header };
};

setGlobalDispatcher(
  new Agent().compose((dispatch) => (opts, handler) => {
    if (opts.origin && String(new URL(String(opts.origin)).origin) === origin && !hasAuthorization(opts.headers)) {
      opts = { ...opts, headers: addAuthorization(opts.headers) };
    }
    return dispatch(opts, handler);
  }),
);
