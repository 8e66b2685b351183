/**
 * Where the first syntax error of a JSON text is, and what it is, for messages such as
 * `lapps.json:3:1: invalid JSON: expected a double-quoted key, found "}"`. JSON.parse
 * rejects the text; this scanner runs only then, to say where and why in our own words.
 *
 * Why not a library: jsonc-parser (the best kept candidate) reports errors inside a string
 * (a control character, a bad escape, an unterminated string) at the string's opening
 * quote instead of at the offending character, and one code (InvalidSymbol) for a bad
 * number, a bare word and a single quote; keeping the positions and messages users get
 * would take a second scan of the text anyway.
 */

class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/** Offset and wording of the first syntax error in `text` (which JSON.parse rejected). */
function locateJsonError(text: string): { offset: number; message: string } {
  let i = 0;
  const found = (): string => (i >= text.length ? 'end of file' : JSON.stringify(text[i]));
  const fail = (message: string): never => {
    throw new JsonSyntaxError(i, message);
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const ch = text[i]!;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch === '\\') {
        const next = text[i + 1] ?? '';
        if (next !== '' && '"\\/bfnrt'.includes(next)) i += 2;
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('invalid escape in string');
      } else if (ch < ' ') {
        fail('control character in string (use an escape such as \\n)');
      } else {
        i++;
      }
    }
  };
  const num = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      const close = ch === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (close === '}') {
          space();
          if (text[i] !== '"') fail(`expected a double-quoted key, found ${found()}`);
          str();
          space();
          if (text[i] !== ':') fail(`expected ":" after the key, found ${found()}`);
          i++;
        }
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        fail(`expected "," or "${close}", found ${found()}`);
      }
    }
    if (ch === '"') return str();
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) {
      num.lastIndex = i;
      const m = num.exec(text);
      if (!m) fail('invalid number');
      i += m![0].length;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    fail(`unexpected ${found()}`);
  };
  try {
    value();
    space();
    if (i < text.length) fail(`unexpected ${found()} after the end of the document`);
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { offset: e.offset, message: e.message };
    throw e;
  }
  return { offset: text.length, message: 'invalid JSON' };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/**
 * The 1-based line and column of the first syntax error in `text` (which JSON.parse
 * rejected) and its wording.
 */
export function jsonErrorPosition(text: string): { line: number; column: number; message: string } {
  let where: { offset: number; message: string };
  try {
    where = locateJsonError(text);
  } catch {
    // Only a pathological nesting depth gets here; report the whole file.
    where = { offset: 0, message: 'invalid JSON' };
  }
  return { ...lineColumn(text, where.offset), message: where.message };
}
