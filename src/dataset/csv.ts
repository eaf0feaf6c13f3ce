/**
 * A small RFC 4180 CSV reader for datasplit files: quoted fields (with `""` escapes, commas and
 * newlines inside), CRLF or LF line ends, blank lines and `#` comment lines skipped, spaces
 * around fields trimmed. A malformed record is reported with its line and skipped; the rest of
 * the file is still read.
 *
 * Hand-written rather than `csv-parse` (7.0.3, tried with `skip_records_with_error`,
 * `comment_no_infix`, `trim`, `info`): after a skipped malformed record it lost the next good
 * one (`ok,1\nbad"field,2\n"q" junk,3\nok,4` gave only `ok,1`), and it reports the line a
 * record ends on, not the one it starts on. A datasplit's problem list needs both: every good
 * row kept, and each bad row named by the line the user sees.
 */

/** One parsed record with the (1-based) line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Parse result: good records plus per-line errors. */
export interface CsvResult {
  records: CsvRecord[];
  errors: { line: number; reason: string }[];
}

/** Parses CSV text (see the module comment). */
export function parseCsv(text: string): CsvResult {
  const records: CsvRecord[] = [];
  const errors: { line: number; reason: string }[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  let line = 1;

  const skipLine = (): void => {
    while (i < n && text[i] !== "\n" && text[i] !== "\r") i++;
    if (text[i] === "\r" && text[i + 1] === "\n") i++;
    if (i < n) {
      i++;
      line++;
    }
  };

  while (i < n) {
    // Record start: blank and comment lines.
    let j = i;
    while (j < n && (text[j] === " " || text[j] === "\t")) j++;
    if (j >= n || text[j] === "\n" || text[j] === "\r" || text[j] === "#") {
      i = j;
      skipLine();
      continue;
    }
    const start = line;
    const fields: string[] = [];
    let error: string | null = null;
    for (;;) {
      // One field.
      while (i < n && (text[i] === " " || text[i] === "\t")) i++;
      let value = "";
      if (text[i] === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === "\n") line++;
          value += c;
          i++;
        }
        if (!closed) {
          error = "unterminated quoted field";
          break;
        }
        while (i < n && (text[i] === " " || text[i] === "\t")) i++;
        if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
          error = `unexpected ${JSON.stringify(text[i])} after a quoted field`;
          break;
        }
      } else {
        let k = i;
        while (k < n && text[k] !== "," && text[k] !== "\n" && text[k] !== "\r") {
          if (text[k] === '"') {
            error = "quote inside an unquoted field (quote the whole field)";
            break;
          }
          k++;
        }
        if (error) break;
        value = text.slice(i, k).trim();
        i = k;
      }
      fields.push(value);
      if (i < n && text[i] === ",") {
        i++;
        continue;
      }
      break; // end of line or file
    }
    if (error) {
      errors.push({ line: start, reason: error });
      skipLine();
      continue;
    }
    skipLine();
    records.push({ line: start, fields });
  }
  return { records, errors };
}
