// Secrets never leave the machine. Pure functions, applied to every event before validation and
// serialization (scrubEvent), and to its JSON once serialized (redactApiKey). CI environments are
// full of credentials: clone URLs with job tokens, signed links, parameters named *_TOKEN.
//
// Cheap on the hot path: a URL field is looked at only when it contains '@' or '?', an error
// message only when it contains '://', parameters only when there are some, and the API key is
// looked for with one `includes` on the event's JSON.
import { quote } from '../diagnostics.js';
import type { SharedFields } from './shared.js';

export const REDACTED = '[redacted]';

/** Query parameters whose value is a secret: case-insensitive substrings of their name. */
const SECRET_QUERY = /token|secret|passw|pwd|key|sig|auth|credential|session|jwt/i;

/** The default of `redactParameters`: case-insensitive substrings of a parameter's key. */
export const DEFAULT_SECRET_PARAMETER_WORDS: readonly string[] = ['TOKEN', 'SECRET', 'PASSWORD', 'PASSWD', 'KEY', 'CREDENTIAL', 'AUTH'];

/** Decides whether a parameter's value is sent as `[redacted]`. */
export type ParameterRedactor = (key: string) => boolean;

export interface ScrubConfig {
  /** Parameters to redact; undefined: none (`redactParameters: false`). */
  redactParameter: ParameterRedactor | undefined;
}

/** Substrings → one case-insensitive test (the words are escaped: they are not patterns). */
export function wordsRedactor(words: readonly string[]): ParameterRedactor | undefined {
  const list = words.filter((w) => w !== '');
  if (list.length === 0) return undefined;
  const re = new RegExp(list.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'i');
  return (key) => re.test(key);
}

/**
 * The `redactParameters` option → a redactor, or a problem to report. `undefined` → the default
 * words; `string[]` → those words instead; `RegExp` → keys it matches; `false` → none.
 */
export function resolveRedactParameters(value: unknown): { ok: true; redactor: ParameterRedactor | undefined } | { ok: false; problem: string } {
  if (value === undefined) return { ok: true, redactor: wordsRedactor(DEFAULT_SECRET_PARAMETER_WORDS) };
  if (value === false) return { ok: true, redactor: undefined };
  if (value instanceof RegExp) {
    // A global or sticky RegExp keeps lastIndex between test() calls: test a stateless copy.
    const re = new RegExp(value.source, value.flags.replace(/[gy]/g, ''));
    return { ok: true, redactor: (key) => re.test(key) };
  }
  if (Array.isArray(value) && value.every((w) => typeof w === 'string')) return { ok: true, redactor: wordsRedactor(value) };
  return {
    ok: false,
    problem: `option redactParameters must be a list of key substrings (e.g. ['TOKEN', 'SECRET']), a RegExp or false, got ${quote(value)}`,
  };
}

/**
 * Credentials out of one URL, keeping scheme, host and path:
 * - `https://user:token@host/p` and `https://token@host/p` → `https://host/p` (for http(s), any
 *   userinfo is a credential: tokens are sent as the user name too);
 * - `ssh://git:token@host/p` → `ssh://git@host/p` (other schemes keep their user, lose the password);
 * - scp-like `user:token@host:path` → `user@host:path`; the ordinary `git@host:path` is left alone;
 * - query parameters whose name looks secret (token, access_token, sig, X-Amz-Signature, …) keep
 *   their name and lose their value.
 */
export function scrubUrl(url: string): string {
  if (!url.includes('@') && !url.includes('?')) return url;
  let out = url;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(out);
  if (scheme) {
    const start = scheme[0].length;
    let end = out.length;
    for (const c of ['/', '?', '#']) {
      const i = out.indexOf(c, start);
      if (i !== -1 && i < end) end = i;
    }
    const at = out.lastIndexOf('@', end - 1);
    if (at >= start) {
      const userinfo = out.slice(start, at);
      const http = /^https?$/i.test(scheme[1]!);
      const colon = userinfo.indexOf(':');
      const kept = http ? '' : colon === -1 ? `${userinfo}@` : `${userinfo.slice(0, colon)}@`;
      out = out.slice(0, start) + kept + out.slice(at + 1);
    }
  } else {
    // scp-like syntax: [user[:password]@]host:path. Only a password is a secret here.
    const scp = /^([^@/:\s]+):([^@/\s]+)@([^@/:\s]+):/.exec(out);
    if (scp) out = `${scp[1]}@${scp[3]}:${out.slice(scp[0].length)}`;
  }
  const q = out.indexOf('?');
  if (q !== -1) {
    const hash = out.indexOf('#', q);
    const query = out.slice(q + 1, hash === -1 ? undefined : hash);
    const scrubbed = query
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        if (eq === -1) return pair;
        const name = pair.slice(0, eq);
        return SECRET_QUERY.test(safeDecode(name)) && eq < pair.length - 1 ? `${name}=${REDACTED}` : pair;
      })
      .join('&');
    if (scrubbed !== query) out = out.slice(0, q + 1) + scrubbed + (hash === -1 ? '' : out.slice(hash));
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `scheme://userinfo@` in free text; the user info may hold quotes (RFC 3986 allows them). */
const USERINFO_IN_TEXT = /\b([a-z][a-z0-9+.-]*):\/\/((?:[^\s/?#@]*@)+)/gi;
/** A URL in free text: up to whitespace or a quote (messages quote URLs: 'https://…'). */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

/** Every URL inside free text (an error message) scrubbed as scrubUrl does. */
export function scrubText(text: string): string {
  if (!text.includes('://')) return text;
  let out = text;
  if (out.includes('@')) {
    out = out.replace(USERINFO_IN_TEXT, (_m, scheme: string, userinfo: string) => {
      if (/^https?$/i.test(scheme)) return `${scheme}://`;
      const colon = userinfo.indexOf(':');
      return `${scheme}://${colon === -1 ? userinfo : `${userinfo.slice(0, colon)}@`}`;
    });
  }
  return out.includes('?') ? out.replace(URL_IN_TEXT, (url) => scrubUrl(url)) : out;
}

/** scrubUrl on `o[key]` when it is a string that may carry a secret; in place. */
function scrubField(o: Record<string, unknown> | undefined, key: string): void {
  if (o === undefined) return;
  const value = o[key];
  if (typeof value !== 'string' || (!value.includes('@') && !value.includes('?'))) return;
  const clean = scrubUrl(value);
  if (clean !== value) o[key] = clean;
}

/**
 * Removes credentials from an event's resource (its own fields, and the git it shares with its
 * siblings), in place, before validation and serialization. Idempotent, and a no-op on clean
 * values, so a shared object scrubbed by its first event is never changed after it was serialized.
 */
export function scrubEvent(r: Record<string, unknown>, shared: SharedFields | undefined, config: ScrubConfig): void {
  scrubField(r, 'url');
  scrubField(r.git as Record<string, unknown> | undefined, 'repository_url');
  scrubField(shared?.git, 'repository_url');
  if (r.parent_pipeline !== undefined) scrubField(r.parent_pipeline as Record<string, unknown>, 'url');
  if (r.previous_attempt !== undefined) scrubField(r.previous_attempt as Record<string, unknown>, 'url');
  const error = r.error as Record<string, unknown> | undefined;
  if (error !== undefined) {
    for (const k of ['message', 'stack'] as const) {
      if (typeof error[k] === 'string') error[k] = scrubText(error[k]);
    }
  }
  const parameters = r.parameters as Record<string, string> | undefined;
  if (parameters !== undefined) {
    for (const key in parameters) {
      if (config.redactParameter?.(key)) parameters[key] = REDACTED;
      else if (typeof parameters[key] === 'string') parameters[key] = scrubText(parameters[key]);
    }
  }
}

/**
 * The API key's text in a JSON-escaped form, to look for in events: undefined when it is too
 * short to look for without mangling ordinary text (Datadog API keys are 32 characters).
 */
export function apiKeyNeedle(apiKey: string | undefined): string | undefined {
  if (apiKey === undefined || apiKey.length < 8) return undefined;
  return JSON.stringify(apiKey).slice(1, -1);
}

/** The event's JSON with every occurrence of the API key replaced by `[redacted]`. */
export function redactApiKey(json: string, needle: string | undefined): string {
  if (needle === undefined || !json.includes(needle)) return json;
  return json.split(needle).join(REDACTED);
}
