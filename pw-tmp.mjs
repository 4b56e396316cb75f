import { readFileSync } from 'node:fs';
const t0 = performance.now();
const pw = await import('parquet-wasm/node');
const t1 = performance.now();
const bytes = readFileSync('/tmp/prof/users.parquet');
const t = pw.readParquet(bytes);
const t2 = performance.now();
const ipc = t.intoIPCStream();
const t3 = performance.now();
console.log(`import ${(t1-t0).toFixed(0)} readParquet ${(t2-t1).toFixed(0)} intoIPC ${(t3-t2).toFixed(0)} ms, ${ipc.length} bytes`);
const blob = await (await import('node:fs')).openAsBlob('/tmp/prof/users.parquet');
const t4 = performance.now();
const f = await pw.ParquetFile.fromFile(blob);
const s = await f.stream({ batchSize: 4096 });
const r = s.getReader(); let n = 0; for (;;) { const x = await r.read(); if (x.done) break; n++; }
console.log(`stream ${(performance.now()-t4).toFixed(0)} ms, ${n} batches`);
const t5 = performance.now();
const s2 = await f.stream({ batchSize: 65536 });
const r2 = s2.getReader(); n = 0; for (;;) { const x = await r2.read(); if (x.done) break; n++; }
console.log(`stream big batches ${(performance.now()-t5).toFixed(0)} ms, ${n} batches`);
