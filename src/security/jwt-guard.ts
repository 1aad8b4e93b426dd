import { UnauthorizedError } from '../domain/errors.ts';

/** The only JOSE header fields Gatehouse issues; anything else (jku, x5u, jwk, x5c, crit, b64, zip…) is refused. */
const ALLOWED_HEADER_FIELDS = new Set(['alg', 'kid', 'typ']);

const refuse = (why: string) => new UnauthorizedError(why, 'invalid_token');

/**
 * Does this JSON text repeat a key within one object? JSON.parse keeps the last value
 * silently, so two parsers (ours, a log pipeline, an upstream) could disagree on a claim.
 * A single pass; string contents are skipped. The text is small (a JWT segment ≤ 8 KiB).
 */
export function hasDuplicateKeys(text: string): boolean {
  // Fast path for compact JSON as JSON.stringify writes it (every token Gatehouse issues): a
  // repeated key is dropped by the parse, so the re-serialised text can only equal the original
  // when no key repeats. Anything else (other formatting, invalid JSON) takes the full scan.
  try {
    if (JSON.stringify(JSON.parse(text)) === text) return false;
  } catch {
    /* not JSON: the scan below decides */
  }
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const raw = text.slice(start, i + 1);
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      const top = stack[stack.length - 1];
      if (text[j] === ':' && top) {
        let key: string;
        try {
          key = JSON.parse(raw) as string;
        } catch {
          return true; // not valid JSON: refuse as well
        }
        if (top.has(key)) return true;
        top.add(key);
      }
    }
  }
  return false;
}

/**
 * After the signature verified: a header holding anything but alg, kid and typ is refused even
 * when signed by our key (we never issue one). Checked after the signature so a forgery is
 * reported as a bad signature.
 */
export function assertIssuedHeader(header: unknown): void {
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw refuse('token header is not a JSON object');
  const extra = Object.keys(header).filter((k) => !ALLOWED_HEADER_FIELDS.has(k));
  if (extra.length) throw refuse(`token header field(s) ${extra.slice(0, 5).map((k) => `'${k.slice(0, 20)}'`).join(', ')} are not accepted`);
}

/** base64url alphabet value of a character code (the caller has checked the alphabet). */
function b64urlValue(c: number): number {
  if (c >= 65 && c <= 90) return c - 65; // A-Z
  if (c >= 97 && c <= 122) return c - 71; // a-z
  if (c >= 48 && c <= 57) return c + 4; // 0-9
  return c === 45 ? 62 : 63; // - _
}

/**
 * perf (issue 9): canonical base64url (no padding, no trailing bits) of `s[start, end)` without
 * decoding and re-encoding it, for text already known to use only the base64url alphabet (a
 * token that passed the JWT shape test). Same answer as decoding and re-encoding it (the check
 * this replaced; test/jwt-attacks.test.ts compares the two on random text): a
 * length of 4n+1 cannot be decoded exactly, and the last character of a 4n+2 / 4n+3 segment
 * must leave its unused low 4 / 2 bits zero.
 */
export function canonicalB64url(s: string, start: number, end: number): boolean {
  const rem = (end - start) % 4;
  if (rem === 0) return true;
  if (rem === 1) return false;
  const v = b64urlValue(s.charCodeAt(end - 1));
  return rem === 2 ? (v & 0x0f) === 0 : (v & 0x03) === 0;
}

/** Occurrences of ':' in a string. */
function colons(s: string): number {
  let n = 0;
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) n++;
  return n;
}

/** Members of every object in a parsed JSON value, plus the ':' characters in all its strings (keys and values). */
function membersAndColons(v: unknown): number {
  if (typeof v === 'string') return colons(v);
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (const x of v) n += membersAndColons(x);
    return n;
  }
  for (const k in v as Record<string, unknown>) n += 1 + colons(k) + membersAndColons((v as Record<string, unknown>)[k]);
  return n;
}

/**
 * hasDuplicateKeys() for text already parsed (`parsed` is JSON.parse(text), or undefined if that
 * threw). perf (issue 9): counting instead of re-serialising. Outside strings, a ':' appears in
 * JSON text once per object member, and nowhere else; inside strings, when the text has no
 * backslash (so no escape such as \u003a can hide one), each ':' of the text is a ':' of a parsed
 * string. So without a backslash, the text's ':' count equals members + ':' in the parsed strings
 * exactly when JSON.parse dropped no member, i.e. no key repeated (a dropped member takes its own
 * ':' and those of its strings with it). Anything else takes the full scan.
 */
export function hasDuplicateKeysIn(text: string, parsed: unknown): boolean {
  if (parsed !== undefined && text.indexOf('\\') < 0 && colons(text) === membersAndColons(parsed)) return false;
  return hasDuplicateKeys(text);
}
