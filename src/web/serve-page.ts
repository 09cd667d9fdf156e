import { htmlPage } from './http.js';

/**
 * The page of `lockstep serve`. It asks /api/model what the model takes; for an image model it draws on a
 * canvas (mouse, pen or finger: pointer events), shrinks the drawing to the model's input by averaging each
 * block of canvas pixels (white ink on black, as MNIST), and posts it to /api/predict while the stroke goes
 * on; for other models it shows a form of the features. window.lockstep holds the last input sent and the
 * last answer (and busy while one is on its way), for tests and for the curious.
 */
export const SERVE_PAGE = htmlPage(
  'lockstep serve',
  '',
  `  #about { color: #666; font-size: .85em; margin-bottom: 1em; word-break: break-all; }
  main { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
  #draw { background: #000; touch-action: none; cursor: crosshair; border-radius: 6px; display: block; }
  #seen { image-rendering: pixelated; width: 84px; height: 84px; background: #000; border: 1px solid #ccc; }
  .tools { margin-top: .6em; display: flex; gap: 1em; align-items: center; }
  button { font: inherit; padding: .3em 1em; }
  table { border-collapse: collapse; }
  td { padding: 2px 6px; }
  td.name { text-align: right; font-weight: 600; }
  td.value { font-variant-numeric: tabular-nums; width: 4.5em; text-align: right; }
  .bar { height: 14px; background: #4c78a8; min-width: 1px; }
  tr.top .bar { background: #f58518; }
  #answer { font-size: 1.6em; margin: 0 0 .4em; }
  #features input { width: 5em; }
  #error { color: #b00; }
  #notice { color: #8a5a00; max-width: 32em; }
`,
  `<div id="about">loading the model…</div>
<main>
  <section id="input"></section>
  <section>
    <p id="answer">draw a digit</p>
    <table id="probabilities"></table>
    <p id="notice"></p>
    <p id="error"></p>
  </section>
</main>
<script>
"use strict";
const state = { lastInput: null, lastPrediction: null, requests: 0, busy: false };
window.lockstep = state;
const $ = (id) => document.getElementById(id);

async function main() {
  const info = await (await fetch('/api/model')).json();
  $('about').textContent = info.model + ' · layers ' + info.layers.join('-') + ' · params sha256 ' + info.paramsSha256.slice(0, 16) + '…';
  const rows = info.classNames.map((name, c) => {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td class="name"></td><td class="value" id="p-' + c + '">–</td><td><div class="bar" style="width:0"></div></td>';
    tr.querySelector('.name').textContent = name;
    $('probabilities').appendChild(tr);
    return tr;
  });

  let sending = false, pending = null;
  async function predict(input) {
    if (sending) { pending = input; return; }
    sending = state.busy = true;
    try {
      const res = await fetch('/api/predict', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error);
      state.lastInput = input; state.lastPrediction = body; state.requests++;
      $('error').textContent = '';
      $('notice').textContent = (body.notices || []).join(' ');
      $('answer').textContent = 'looks like ' + info.classNames[body.predicted];
      body.probabilities.forEach((p, c) => {
        rows[c].className = c === body.predicted ? 'top' : '';
        rows[c].querySelector('.value').textContent = p.toFixed(4);
        rows[c].querySelector('.bar').style.width = (p * 220).toFixed(1) + 'px';
      });
    } catch (err) {
      $('error').textContent = String(err.message || err);
    } finally {
      sending = false;
      if (pending) { const next = pending; pending = null; predict(next); } else state.busy = false;
    }
  }

  if (info.input.kind === 'image') imageInput(info.input.width, info.input.height, predict);
  else featureForm(info.input.count, info.input.names, info.input.means, predict);
}

function imageInput(width, height, predict) {
  const scale = Math.max(1, Math.floor(280 / Math.max(width, height)));
  $('input').innerHTML = '<canvas id="draw"></canvas><div class="tools"><button id="clear">clear</button>' +
    '<span>the model sees</span><canvas id="seen"></canvas></div>';
  const canvas = $('draw'), seen = $('seen');
  canvas.width = width * scale; canvas.height = height * scale;
  seen.width = width; seen.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  ctx.strokeStyle = '#fff'; ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.lineWidth = 2.2 * scale;

  // Each model pixel is the mean of its scale×scale block of the drawing (red channel: the ink is white).
  function shrink() {
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const input = new Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) sum += rgba[4 * ((y * scale + dy) * canvas.width + x * scale + dx)];
      input[y * width + x] = Math.round(sum / (scale * scale));
    }
    const image = seen.getContext('2d').createImageData(width, height);
    input.forEach((v, i) => { image.data.set([v, v, v, 255], 4 * i); });
    seen.getContext('2d').putImageData(image, 0, 0);
    return input;
  }

  let last = null, frame = 0;
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  const update = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; predict(shrink()); }); };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...last); ctx.stroke();
    update();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
    update();
  });
  const end = () => { last = null; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => { clear(); $('answer').textContent = 'draw a digit'; shrink(); });
}

function featureForm(count, names, means, predict) {
  $('answer').textContent = 'fill in the features';
  const form = document.createElement('form');
  form.id = 'features';
  for (let i = 0; i < count; i++) {
    const label = document.createElement('label');
    label.textContent = (names ? names[i] : 'feature ' + i) + ' ';
    const field = document.createElement('input');
    Object.assign(field, { type: 'number', step: 'any', value: means ? String(means[i]) : '', name: 'f' + i });
    label.appendChild(field);
    form.appendChild(label);
    form.appendChild(document.createElement('br'));
  }
  const go = document.createElement('button');
  go.textContent = 'predict';
  form.appendChild(go);
  const fields = () => Array.from(form.querySelectorAll('input'));
  // An empty field is not a 0: nothing is asked until every feature has a value.
  const send = () => { if (fields().every((f) => f.value !== '')) predict(fields().map((f) => Number(f.value))); };
  form.addEventListener('input', send);
  form.addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('input').appendChild(form);
  send();
}

main().catch((err) => { $('error').textContent = String(err.message || err); });
</script>
`,
);
