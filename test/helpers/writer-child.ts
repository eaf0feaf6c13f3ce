/**
 * Child process of the writer kill test: `node --import tsx test/helpers/writer-child.ts <dir>`.
 * Writes the job's tiles, printing `tile <id>` after each, and is killed with SIGKILL mid-run.
 */
import { runJob } from "./writer-job.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: writer-child.ts <dir>");
await runJob(dir, { onTile: (id) => process.stdout.write(`tile ${id}\n`) });
process.stdout.write("done\n");
