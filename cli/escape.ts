// Text from the server or from agents (run ids, agent names and regions, error codes and
// messages, threshold expressions, the target) reaches a terminal through this module.
// A terminal obeys control characters wherever they come from: ESC ] 0 ; … BEL retitles
// the window, ESC [ 2 J clears it, a colour sequence or a newline can fake a green PASS
// line, and bidi controls reorder what is shown. Each one is printed as a visible escape
// (`\x1b`, `\u202e`) instead, so such a string shows as the odd string it is.

/**
 * C0 controls, DEL, C1 controls, the line and paragraph separators, the bidi embeddings,
 * overrides and isolates (U+202A–202E, U+2066–2069) and the bidi marks (U+200E/200F, U+061C).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw (it escapes C0 itself). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One field for the terminal: every control character, newlines too, made visible. */
export function visible(value: unknown): string {
  return String(value).replace(UNSAFE, escape);
}

/**
 * Text the CLI composed itself, whose newlines are meant: the last guard on stdout and
 * stderr (print, note, the progress line), for a field a caller forgot to pass through
 * visible(). It cannot tell a field's newline from the CLI's own; visible() can.
 */
export function visibleLines(text: string): string {
  return text.replace(UNSAFE_BUT_NEWLINE, escape);
}

/**
 * JSON for a terminal, still the same JSON: in JSON text these characters can only stand
 * inside strings, where `\uXXXX` means the same character.
 */
export function terminalJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
