import { htmlPage } from './http.js';

/**
 * The page of `train --dashboard`: it listens to /events (server-sent events: a snapshot on connecting, then
 * each epoch, the progress twice a second, and the end) and draws loss and accuracy per epoch with vega-lite
 * (compiled in the page, drawn by vega as SVG), the progress line and the run's config.
 */
export const DASHBOARD_PAGE = htmlPage(
  'lockstep train',
  `
<script src="/vendor/vega.min.js"></script>
<script src="/vendor/vega-lite.min.js"></script>`,
  `  #status { font-size: 1.1em; margin-bottom: .8em; font-variant-numeric: tabular-nums; }
  #status.done { color: #176117; }
  #status.failed { color: #b00; }
  main { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #e4e4e4; }
  th { font-weight: 600; }
  #config td:first-child { text-align: left; color: #555; }
  #config td:last-child { text-align: left; }
`,
  `<div id="status">connecting…</div>
<main>
  <div id="charts"></div>
  <section>
    <table id="epochs"><tr><th>epoch</th><th>steps</th><th>loss</th><th>test loss</th><th>train acc</th><th>test acc</th><th>seconds</th></tr></table>
    <h2 style="font-size:1em">config</h2>
    <table id="config"></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const state = { epochs: [], progress: null, outcome: null };
window.lockstep = state;

const spec = {
  data: { name: 'epochs' },
  hconcat: [
    { title: 'loss per epoch', transform: [{ fold: ['train loss', 'test loss'], as: ['series', 'value'] }], ...line('mean cross-entropy') },
    { title: 'accuracy per epoch', transform: [{ fold: ['train acc', 'test acc'], as: ['series', 'value'] }], ...line('accuracy') },
  ],
  // The size is laid out again as epochs arrive (vega's default measures the empty chart once).
  autosize: { type: 'pad', resize: true },
  config: { view: { stroke: null }, font: 'system-ui, sans-serif' },
};
function line(title) {
  return {
    width: 300, height: 200,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', legend: { orient: 'bottom', title: null } },
    },
  };
}
const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'svg', container: '#charts', hover: true });
view.runAsync();

const fixed = (v, n) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(n) : '–');
function duration(s) {
  if (s === null || !Number.isFinite(s)) return '–';
  s = Math.round(s);
  return s >= 60 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : s + ' s';
}

function addEpoch(r) {
  state.epochs.push(r);
  const tr = document.createElement('tr');
  tr.id = 'epoch-' + r.epoch;
  for (const v of [r.epoch, r.steps, fixed(r.trainLoss, 4), fixed(r.testLoss, 4), fixed(r.trainAccuracy, 4), fixed(r.testAccuracy, 4), fixed(r.trainSeconds + r.evalSeconds, 2)]) {
    const td = document.createElement('td');
    td.textContent = v;
    tr.appendChild(td);
  }
  $('epochs').appendChild(tr);
  drawCharts();
}

// Every epoch so far each time: vega keeps only the last of the inserts made before it runs (a late page's snapshot makes several).
function drawCharts() {
  view.data('epochs', state.epochs.map((r) => ({ epoch: r.epoch, 'train loss': r.trainLoss, 'test loss': r.testLoss, 'train acc': r.trainAccuracy, 'test acc': r.testAccuracy }))).runAsync();
}

function showProgress(p) {
  state.progress = p;
  if (!p || state.outcome) return;
  if (p.stepInEpoch === p.stepsPerEpoch && p.stepsPerSecond === 0) {
    $('status').textContent = 'epoch ' + p.epoch + ' of ' + p.epochs + ': evaluating · ETA ' + duration(p.etaSeconds) + ' · ' + duration(p.seconds) + ' so far';
    return;
  }
  $('status').textContent = 'epoch ' + p.epoch + ' of ' + p.epochs + ', step ' + p.stepInEpoch + ' of ' + p.stepsPerEpoch +
    ' (' + p.steps + ' in all) · ' + Math.round(p.stepsPerSecond) + ' steps/s · ETA ' + duration(p.etaSeconds) + ' · ' + duration(p.seconds) + ' so far';
}

function showOutcome(o) {
  state.outcome = o;
  if (o.error) {
    $('status').className = 'failed';
    $('status').textContent = 'stopped: ' + o.error;
  } else {
    $('status').className = 'done';
    $('status').textContent = (o.interrupted ? 'stopped' : 'done') + ': ' + o.epochs + ' epochs, ' + o.steps + ' steps, test acc ' + fixed(o.testAccuracy, 4) +
      ', ' + duration(o.seconds) + ', params sha256 ' + String(o.paramsSha256).slice(0, 16) + '…';
  }
}

function showConfig(config) {
  $('config').replaceChildren();
  for (const [k, v] of Object.entries(config)) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td>';
    tr.children[0].textContent = k;
    tr.children[1].textContent = Array.isArray(v) ? v.join(',') : String(v);
    $('config').appendChild(tr);
  }
}

const events = new EventSource('/events');
events.addEventListener('snapshot', (e) => {
  const s = JSON.parse(e.data);
  showConfig(s.config);
  $('status').textContent = 'starting…';
  for (const r of s.epochs) if (!state.epochs.some((x) => x.epoch === r.epoch)) addEpoch(r);
  showProgress(s.progress);
  if (s.outcome) { showOutcome(s.outcome); events.close(); }
});
events.addEventListener('config', (e) => showConfig(JSON.parse(e.data)));
events.addEventListener('epoch', (e) => addEpoch(JSON.parse(e.data)));
events.addEventListener('progress', (e) => showProgress(JSON.parse(e.data)));
events.addEventListener('done', (e) => { showOutcome(JSON.parse(e.data)); events.close(); });
events.onerror = () => { if (!state.outcome) $('status').textContent = 'the run is not answering (finished, or stopped)'; };
</script>
`,
);
