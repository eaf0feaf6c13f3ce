/**
 * Option names in the two spellings the library accepts: the API's camelCase (`batchSize`) and
 * the Python library's snake_case (`batch_size`). Only option keys are spelt either way; user
 * names (arrays, classes, axes) are never renamed.
 */

/** `batchSize` → `batch_size`, `nChannels` → `n_channels`, `csvPath` → `csv_path`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `batch_size` → `batchSize` (names without `_` are returned as given). */
export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Whether `name` is written in snake_case style (has an underscore between letters). */
export function looksSnake(name: string): boolean {
  return /[a-z0-9]_[a-z0-9]/i.test(name);
}
