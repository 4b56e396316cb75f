// Draws the peer benchmark's pairs per second as an SVG bar chart with
// vega-lite, one panel per shape, from the results bench/peers.mjs writes.
//
// usage: node bench/peers/chart.mjs [RESULTS.json] [CHART.svg]
//   (defaults: bench/peers/results.json and bench/peers-chart.svg)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

const PEER_ORDER = ['attnscore-all', 'attnscore-1', 'numpy', 'tfjs-wasm', 'simsimd', 'js-loop'];

/** Renders the chart of `report` ({ machine, results }) to an SVG file at `path`. */
export async function writeChart(report, path) {
  const values = [];
  for (const shape of report.results) {
    for (const row of shape.rows) {
      if (row.status !== 'ok') continue;
      values.push({
        shape: `${shape.shape}: ${shape.users} x ${shape.contents} x ${shape.dim}`,
        peer: row.peer,
        pairsPerSecond: row.pairsPerSecond,
        scaled: row.users < shape.users ? 'yes' : 'no',
      });
    }
  }
  const shapeOrder = [...new Set(values.map((value) => value.shape))];
  const slowest = Math.min(...values.map((value) => value.pairsPerSecond));
  const domainMin = 10 ** Math.floor(Math.log10(slowest));
  const { machine } = report;
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: 'Pairs scored per second (cosine, top-10, CX, loyalty), higher is better',
      subtitle: [
        `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}; log scale.`,
        'No bar: the peer failed the result check or did not load; see bench/RESULTS.md.',
      ],
    },
    data: { values },
    facet: { column: { field: 'shape', type: 'nominal', sort: shapeOrder, title: 'U x C x D' } },
    spec: {
      width: 150,
      height: 260,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'peer', type: 'nominal', sort: PEER_ORDER, title: null, axis: { labelAngle: -45 } },
        // Bars stack from 0 by default, which a log scale cannot show, so they start at domainMin.
        y: {
          field: 'pairsPerSecond',
          type: 'quantitative',
          stack: null,
          scale: { type: 'log', domainMin },
          title: 'pairs per second',
        },
        color: { field: 'peer', type: 'nominal', sort: PEER_ORDER, legend: null },
        opacity: {
          field: 'scaled',
          type: 'ordinal',
          scale: { domain: ['no', 'yes'], range: [1, 0.55] },
          title: 'users subset',
        },
      },
    },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  writeFileSync(path, await view.toSVG());
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = new URL('../..', import.meta.url);
  const input = process.argv[2] ?? fileURLToPath(new URL('bench/peers/results.json', root));
  const output = process.argv[3] ?? fileURLToPath(new URL('bench/peers-chart.svg', root));
  await writeChart(JSON.parse(readFileSync(input, 'utf8')), output);
  console.log(`chart: ${output}`);
}
