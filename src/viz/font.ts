/**
 * A tiny 5x7 pixel bitmap font for the labels in preview PNGs (class names, legend).
 *
 * Why hand-written: pngjs only encodes pixels; the maintained text rasterisers for Node
 * (canvas, sharp, resvg, pureimage with a TTF) are native modules or pull in a font file and a
 * TrueType parser, far more than drawing a few lowercase words needs. This covers `a-z`, `0-9`,
 * `_ - . ( ) : / #` and space; upper case is drawn as lower case, anything else as `?`.
 */

/** Glyph width and height in font pixels (drawn with one column of spacing). */
const GLYPH_W = 5;
export const GLYPH_H = 7;

// Each glyph: 7 rows of 5 columns, "#" = ink.
const G: Record<string, string> = {
  a: ".....|.....|.###.|....#|.####|#...#|.####",
  b: "#....|#....|####.|#...#|#...#|#...#|####.",
  c: ".....|.....|.###.|#....|#....|#...#|.###.",
  d: "....#|....#|.####|#...#|#...#|#...#|.####",
  e: ".....|.....|.###.|#...#|#####|#....|.###.",
  f: "..##.|.#..#|.#...|###..|.#...|.#...|.#...",
  g: ".....|.####|#...#|#...#|.####|....#|.###.",
  h: "#....|#....|#.##.|##..#|#...#|#...#|#...#",
  i: "..#..|.....|.##..|..#..|..#..|..#..|.###.",
  j: "...#.|.....|..##.|...#.|...#.|#..#.|.##..",
  k: "#....|#....|#..#.|#.#..|##...|#.#..|#..#.",
  l: ".##..|..#..|..#..|..#..|..#..|..#..|.###.",
  m: ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#",
  n: ".....|.....|#.##.|##..#|#...#|#...#|#...#",
  o: ".....|.....|.###.|#...#|#...#|#...#|.###.",
  p: ".....|.....|####.|#...#|####.|#....|#....",
  q: ".....|.....|.####|#...#|.####|....#|....#",
  r: ".....|.....|#.##.|##..#|#....|#....|#....",
  s: ".....|.....|.####|#....|.###.|....#|####.",
  t: ".#...|.#...|###..|.#...|.#...|.#..#|..##.",
  u: ".....|.....|#...#|#...#|#...#|#..##|.##.#",
  v: ".....|.....|#...#|#...#|#...#|.#.#.|..#..",
  w: ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",
  x: ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
  y: ".....|.....|#...#|#...#|.####|....#|.###.",
  z: ".....|.....|#####|...#.|..#..|.#...|#####",
  "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
  "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
  "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
  "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
  "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
  "5": "#####|#....|####.|....#|....#|#...#|.###.",
  "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
  "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
  "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
  "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
  _: ".....|.....|.....|.....|.....|.....|#####",
  "-": ".....|.....|.....|#####|.....|.....|.....",
  ".": ".....|.....|.....|.....|.....|.##..|.##..",
  "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
  ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
  ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
  "/": ".....|....#|...#.|..#..|.#...|#....|.....",
  "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
  "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
  " ": ".....|.....|.....|.....|.....|.....|.....",
};

const BITMAPS = new Map<string, Uint8Array>(
  Object.entries(G).map(([ch, rows]) => {
    const r = rows.split("|");
    if (r.length !== GLYPH_H || r.some((x) => x.length !== GLYPH_W)) throw new Error(`bad glyph ${ch}`);
    return [ch, Uint8Array.from(r.join(""), (c) => (c === "#" ? 1 : 0))];
  }),
);

/** The 5x7 bitmap (row-major, 1 = ink) drawn for `ch`. */
export function glyph(ch: string): Uint8Array {
  return BITMAPS.get(ch.toLowerCase()) ?? BITMAPS.get("?")!;
}

/** Width in pixels of `text` at integer `scale` (glyphs plus one column of spacing between). */
export function textWidth(text: string, scale = 1): number {
  return text.length ? (text.length * (GLYPH_W + 1) - 1) * scale : 0;
}

/**
 * Draws `text` with its top-left corner at (x, y), each font pixel a `scale`x`scale` block,
 * calling `put` for every inked pixel (the caller clips).
 */
export function drawText(text: string, x: number, y: number, scale: number, put: (x: number, y: number) => void): void {
  let cx = x;
  for (const ch of text) {
    const g = glyph(ch);
    for (let gy = 0; gy < GLYPH_H; gy++) {
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (!g[gy * GLYPH_W + gx]) continue;
        for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) put(cx + gx * scale + dx, y + gy * scale + dy);
      }
    }
    cx += (GLYPH_W + 1) * scale;
  }
}

/** `text` cut to at most `maxWidth` pixels at `scale`, ending in `.` when cut. */
export function fitText(text: string, maxWidth: number, scale = 1): string {
  if (textWidth(text, scale) <= maxWidth) return text;
  const n = Math.floor((maxWidth / scale + 1) / (GLYPH_W + 1));
  return n <= 0 ? "" : n === 1 ? text[0] : `${text.slice(0, n - 1)}.`;
}
