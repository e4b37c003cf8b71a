/**
 * `npm run bench`: runs every benchmark, each in its own Node process (so that one bench's heap
 * and JIT state do not colour the next), and prints one results table. Arguments narrow the run:
 * `npm run bench -- l1Hit churn`. Figures and how to read them: BENCHMARKS.md.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type BenchResult,
  describeMachine,
  machineInfo,
  printResult,
  printTable,
  RESULT_MARKER,
  type Row,
} from './common.js';

const BENCHES = [
  'l1Hit',
  'invalidation',
  'churn',
  'envelope',
  'streaming',
  'auditQueries',
  'server',
  'hsm',
  'scale',
] as const;

function runBench(name: string): Promise<BenchResult> {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      env: { ...process.env, BENCH_JSON: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let result: BenchResult | undefined;
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith(RESULT_MARKER))
          result = JSON.parse(line.slice(RESULT_MARKER.length)) as BenchResult;
        else process.stdout.write(`  [${name}] ${line}\n`);
        newline = buffered.indexOf('\n');
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`bench ${name} exited with ${code}`));
    });
  });
}

const selected = process.argv.slice(2);
const names = selected.length === 0 ? BENCHES : BENCHES.filter((b) => selected.includes(b));
if (names.length === 0) {
  console.error(`no such bench; choose from: ${BENCHES.join(', ')}`);
  process.exit(1);
}

console.log(`keyledger benchmarks — ${describeMachine(machineInfo())}`);
const started = process.hrtime.bigint();
const results: BenchResult[] = [];
let failed = false;
for (const name of names) {
  console.log(`\nrunning ${name} …`);
  try {
    results.push(await runBench(name));
  } catch (error) {
    failed = true;
    console.error((error as Error).message);
  }
}

console.log('\n================ results ================');
for (const result of results) printResult(result);
const targets: Row[] = results.flatMap((r) => r.rows.filter((row) => row.target !== undefined));
printTable(targets, '== targets');
console.log(`\ntotal ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s`);
// Targets are reported, never enforced: only a bench that failed to run fails the command.
process.exit(failed ? 1 : 0);
