// drover's dashboard: plain JavaScript, no library. It reads the API of
// docs/api.md and stays live through server-sent events: /api/v1/events
// (a summary every sample: jobs, workers, chart point) and, for the open
// job, /api/v1/jobs/ID/events (task state changes), plus a log stream for
// the open task. The pipelines view re-reads /api/v1/pipelines at each
// summary. Instances are paged by the API (100 at a time), so a job
// of 100,000 instances costs the page what one of 100 does.
'use strict';

const PAGE = 100;
const $ = (sel) => document.querySelector(sel);
const state = {
  token: localStorage.getItem('drover-token') || '',
  route: '', job: null, group: '', taskState: '', offset: 0, total: 0,
  jobEvents: null, logStream: null, openTask: null, history: [], refreshTimer: null,
};

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : ''; }
function fmtDur(ms) {
  if (!ms) return '';
  if (ms < 1000) return ms + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + ' s';
  const m = Math.floor(s / 60);
  return m < 60 ? m + 'm ' + Math.round(s % 60) + 's' : Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
}
// The status line. What an action (a button) answered stays until the next
// action: a view re-read at the next sample clears only its own errors, so
// a refusal cannot flash by unseen.
function say(text, info, fromAction) {
  const el = $('#status');
  el.textContent = text || '';
  el.className = info ? 'info' : '';
  el.dataset.action = fromAction ? 'yes' : '';
}
function loaded() {
  if (!$('#status').dataset.action) say('');
}

function withToken(url) {
  if (!state.token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(state.token);
}

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const res = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : res.statusText;
    const err = new Error(res.status + ': ' + msg);
    err.status = res.status;
    throw err;
  }
  return body;
}

function enc(s) { return encodeURIComponent(s); }

// ---- live summary ---------------------------------------------------------

let summary = null;
function connectSummary() {
  if (summary) summary.close();
  summary = new EventSource(withToken('/api/v1/events'));
  summary.addEventListener('summary', (ev) => {
    $('#live').textContent = 'live';
    $('#live').className = 'live on';
    const data = JSON.parse(ev.data);
    if (data.point) {
      state.history.push(data.point);
      if (state.history.length > 300) state.history.shift();
      drawCharts();
    }
    if (state.route === 'jobs') renderJobs(filterJobs(data.jobs));
    if (state.route === 'workers') renderWorkers(data.workers);
    // The summary does not carry pipelines: a sample is the moment to re-read them.
    if (state.route === 'pipelines') loadPipelines();
    if (state.route === 'job' && state.job) scheduleJobRefresh();
  });
  summary.onerror = () => {
    $('#live').textContent = 'offline';
    $('#live').className = 'live off';
  };
}

async function loadHistory() {
  try {
    const h = await api('/api/v1/history');
    state.history = h.points;
    drawCharts();
  } catch (e) { say(e.message); }
}

function drawChart(svg, values) {
  const w = 300, h = 80;
  const max = Math.max(1, ...values);
  const n = Math.max(2, values.length);
  const pts = values.map((v, i) => (i * w / (n - 1)).toFixed(1) + ',' + (h - 2 - v / max * (h - 12)).toFixed(1));
  svg.innerHTML = '<polyline points="' + pts.join(' ') + '"/>' +
    '<text x="2" y="10" font-size="9" fill="#555">max ' + (Math.round(max * 10) / 10) + '</text>';
}
function drawCharts() {
  drawChart($('#chart-throughput'), state.history.map((p) => p.results_per_s));
  drawChart($('#chart-queue'), state.history.map((p) => p.ready));
  drawChart($('#chart-running'), state.history.map((p) => p.running));
}

// ---- jobs -----------------------------------------------------------------

function filterJobs(jobs) {
  const st = $('#filter-state').value, name = $('#filter-name').value;
  return jobs.filter((j) => (!st || j.state === st) && (!name || j.name.includes(name)));
}

function bar(c) {
  const t = c.total || 1;
  const s = c.succeeded / t * 100, f = c.failed / t * 100, r = c.running / t * 100;
  return '<span class="bar"><span class="s" style="left:0;width:' + s + '%"></span>' +
    '<span class="f" style="left:' + s + '%;width:' + f + '%"></span>' +
    '<span class="r" style="left:' + (s + f) + '%;width:' + r + '%"></span></span>';
}

function renderJobs(jobs) {
  $('#jobs tbody').innerHTML = jobs.map((j) =>
    '<tr data-job="' + esc(j.id) + '"><td>' + esc(j.id) + '</td><td>' + esc(j.name) +
    '</td><td class="state ' + esc(j.state) + '">' + esc(j.state) + '</td><td>' + bar(j.counts) +
    ' ' + Math.round(j.progress * 100) + '%</td><td>' + j.counts.succeeded + ' ok, ' +
    j.counts.failed + ' failed, ' + j.counts.running + ' running, ' + j.counts.pending +
    ' pending / ' + j.counts.total + '</td><td>' + fmtTime(j.submitted_unix_ms) + '</td><td>' +
    fmtDur(j.duration_ms) + '</td></tr>').join('');
}

async function loadJobs() {
  const q = new URLSearchParams({ limit: 100 });
  if ($('#filter-state').value) q.set('state', $('#filter-state').value);
  if ($('#filter-name').value) q.set('name', $('#filter-name').value);
  try {
    const r = await api('/api/v1/jobs?' + q);
    renderJobs(r.jobs);
    loaded();
  } catch (e) { say(e.message); }
}

// ---- one job: DAG, instances, log -----------------------------------------

function nodeClass(c) {
  if (c.running) return 'running';
  if (c.failed) return 'failed';
  if (c.pending) return 'pending';
  if (c.succeeded === c.total) return 'succeeded';
  return 'other';
}

// Layered layout: a node's column is the length of the longest path of
// needs leading to it; rows in spec order within a column.
function drawDag(nodes) {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const depth = new Map();
  const visit = (n, seen) => {
    if (depth.has(n.name)) return depth.get(n.name);
    if (seen.has(n.name)) return 0;
    seen.add(n.name);
    let d = 0;
    for (const m of n.needs) if (byName.has(m)) d = Math.max(d, visit(byName.get(m), seen) + 1);
    depth.set(n.name, d);
    return d;
  };
  nodes.forEach((n) => visit(n, new Set()));
  const cols = [];
  nodes.forEach((n) => { const d = depth.get(n.name); (cols[d] = cols[d] || []).push(n); });
  const W = 170, H = 46, GX = 60, GY = 16;
  const pos = new Map();
  cols.forEach((col, x) => col.forEach((n, y) => pos.set(n.name, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + cols.length * (W + GX);
  const height = 20 + Math.max(1, ...cols.map((c) => c.length)) * (H + GY);
  let svg = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" ' +
    'markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#999"/></marker></defs>';
  for (const n of nodes) {
    const b = pos.get(n.name);
    for (const m of n.needs) {
      const a = pos.get(m);
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      svg += '<path class="edge" d="M' + x1 + ',' + y1 + ' C' + (x1 + GX / 2) + ',' + y1 + ' ' +
        (x2 - GX / 2) + ',' + y2 + ' ' + x2 + ',' + y2 + '"/>';
    }
  }
  for (const n of nodes) {
    const p = pos.get(n.name), c = n.counts;
    const sel = n.name === state.group ? ' selected' : '';
    const label = n.matrix ? n.name + ' ×' + n.instances : n.name;
    svg += '<g class="node ' + nodeClass(c) + sel + '" data-group="' + esc(n.name) + '" data-state="' +
      nodeClass(c) + '" transform="translate(' + p.x + ',' + p.y + ')"><rect width="' + W +
      '" height="' + H + '"/><text x="8" y="17">' + esc(label) + '</text><text class="counts" x="8" y="35">' +
      c.succeeded + ' ok · ' + c.running + ' run · ' + c.failed + ' fail · ' + c.pending + ' wait</text></g>';
  }
  const el = $('#dag');
  el.setAttribute('width', width);
  el.setAttribute('height', height);
  el.innerHTML = svg;
}

function scheduleJobRefresh() {
  // Events come in bursts (a 100,000-instance job); redraw at most 4 times a second.
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => { state.refreshTimer = null; refreshJob(); }, 250);
}

async function refreshJob() {
  if (!state.job) return;
  try {
    const job = await api('/api/v1/jobs/' + enc(state.job));
    $('#job-title').textContent = job.name + ' — ' + job.id;
    $('#job-meta').innerHTML = '<span class="state ' + esc(job.state) + '" id="job-state">' +
      esc(job.state) + '</span> · ' + bar(job.counts) + ' ' + job.counts.succeeded + '/' +
      job.counts.total + ' succeeded · started ' + fmtTime(job.submitted_unix_ms) + ' · ' +
      fmtDur(job.duration_ms);
    $('#cancel-job').disabled = job.state !== 'running';
    $('#retry-job').disabled = job.state === 'running';
    drawDag(job.graph.nodes);
    await loadTasks();
  } catch (e) { say(e.message); }
}

async function loadTasks() {
  const q = new URLSearchParams({ offset: state.offset, limit: PAGE });
  if (state.group) q.set('group', state.group);
  if (state.taskState) q.set('state', state.taskState);
  const r = await api('/api/v1/jobs/' + enc(state.job) + '/tasks?' + q);
  state.total = r.total;
  $('#tasks-title').textContent = 'Instances' + (state.group ? ' of ' + state.group : '') +
    ' (' + r.total + ')';
  $('#task-page').textContent = r.total ? (state.offset + 1) + '–' +
    Math.min(r.total, state.offset + PAGE) + ' of ' + r.total : 'none';
  $('#tasks tbody').innerHTML = r.tasks.map((t) => {
    const live = !['succeeded', 'cached', 'failed', 'blocked', 'skipped', 'cancelled'].includes(t.state);
    const why = t.pending_reason ||
      (t.waiting_in_worker ? 'waiting for a free ' + t.backend + ' slot on ' + t.worker : '') ||
      t.detail || '';
    return '<tr data-task="' + esc(t.name) + '"><td>' + esc(t.name) + '</td><td class="state ' +
      esc(t.state) + '">' + esc(t.state) + '</td><td>' + t.attempts + '</td><td>' + esc(t.worker) +
      '</td><td>' + esc(why) + '</td><td>' + fmtDur(t.wall_ms) + '</td><td>' +
      '<button class="log-btn">log</button> ' +
      (live ? '<button class="cancel-btn danger">cancel</button>' : '') + '</td></tr>';
  }).join('');
}

function openJob(id) {
  if (state.jobEvents) state.jobEvents.close();
  closeLog();
  state.job = id; state.group = ''; state.offset = 0;
  state.jobEvents = new EventSource(withToken('/api/v1/jobs/' + enc(id) + '/events'));
  state.jobEvents.addEventListener('task', scheduleJobRefresh);
  state.jobEvents.addEventListener('job', () => { state.jobEvents.close(); scheduleJobRefresh(); });
  state.jobEvents.addEventListener('error', (ev) => {
    if (ev.data) say(JSON.parse(ev.data).error.message);
    state.jobEvents.close();
  });
  refreshJob();
}

function closeLog() {
  if (state.logStream) state.logStream.close();
  state.logStream = null;
  state.openTask = null;
  $('#log').hidden = true;
}

async function openLog(task) {
  closeLog();
  state.openTask = task;
  $('#log').hidden = false;
  $('#log-title').textContent = 'Log of ' + task;
  $('#log-stdout').textContent = '';
  $('#log-stderr').textContent = '';
  $('#log-outputs').innerHTML = '';
  try {
    const t = await api('/api/v1/jobs/' + enc(state.job) + '/tasks/' + enc(task));
    $('#log-attempts').innerHTML = t.finished_attempts.map((a) => 'attempt ' + a.attempt + ': ' +
      esc(a.reason) + (a.detail ? ' (' + esc(a.detail) + ')' : '') + (a.worker ? ' on ' + esc(a.worker) : '')).join('<br>') ||
      (t.pending_reason ? 'pending: ' + esc(t.pending_reason) : esc(t.state));
    const outputs = Object.entries(t.outputs || {});
    $('#log-outputs').innerHTML = outputs.length ? '<table><thead><tr><th>Output</th><th>Value</th></tr></thead><tbody>' +
      outputs.map(([k, v]) => '<tr data-output="' + esc(k) + '"><td>' + esc(k) + '</td><td><code>' + esc(v) +
      '</code></td></tr>').join('') + '</tbody></table>' : '';
  } catch (e) { say(e.message); }
  // The stream sends the kept output first, then chunks while it runs.
  const es = new EventSource(withToken('/api/v1/jobs/' + enc(state.job) + '/tasks/' + enc(task) + '/log/stream'));
  state.logStream = es;
  es.addEventListener('logs', (ev) => {
    const d = JSON.parse(ev.data);
    if (d.stdout || d.done) $('#log-stdout').textContent = d.stdout;
    if (d.stderr || d.done) $('#log-stderr').textContent = d.stderr;
    if (d.done) es.close();
  });
  es.addEventListener('output', (ev) => {
    const d = JSON.parse(ev.data);
    $(d.stream === 'stderr' ? '#log-stderr' : '#log-stdout').textContent += d.data;
  });
  es.addEventListener('error', (ev) => {
    if (ev.data) say(JSON.parse(ev.data).error.message);
    es.close();
  });
}

async function act(path, what) {
  try {
    const r = await api(path, { method: 'POST' });
    say(r.message || (what + ': job ' + r.job), true, true);
    return r;
  } catch (e) { say(what + ' refused: ' + e.message, false, true); return null; }
}

// ---- workers --------------------------------------------------------------

function renderWorkers(workers) {
  $('#workers tbody').innerHTML = workers.map((w) => {
    const slots = Object.entries(w.slots).map(([b, s]) => esc(b) + ' ' + s.used + '/' + s.total).join(', ');
    const labels = Object.entries(w.labels).map(([k, v]) => esc(k) + '=' + esc(v)).join(', ');
    const offers = w.services.concat(w.pools).map(esc).join(', ');
    return '<tr data-worker="' + esc(w.name) + '"><td>' + esc(w.name) + '</td><td class="state ' +
      esc(w.state) + '">' + esc(w.state) + '</td><td>' + esc(w.hostname) + ' (' + w.pid + ')</td><td>' +
      labels + '</td><td>' + slots + '</td><td>' + w.running + '</td><td>' + offers + '</td><td>' +
      fmtDur(w.heartbeat_age_ms) + ' ago</td></tr>';
  }).join('');
}

async function loadWorkers() {
  try { renderWorkers((await api('/api/v1/workers')).workers); loaded(); } catch (e) { say(e.message); }
}

// ---- pipelines ------------------------------------------------------------

// In the pipeline's zone, as `drover pipelines` shows it: a schedule's
// times read wrong in the browser's zone.
function fmtDateTime(ms, zone) {
  if (!ms) return '';
  try {
    return new Date(ms).toLocaleString(undefined, { timeZone: zone || undefined, timeZoneName: 'short' });
  } catch (e) {
    return new Date(ms).toLocaleString();  // a zone this browser does not know
  }
}

function renderPipelines(doc) {
  $('#pipelines-dir').textContent = doc.dir ? 'From ' + doc.dir :
    'This coordinator runs no pipelines (start it with --pipelines DIR).';
  $('#pipelines tbody').innerHTML = doc.pipelines.map((p) => {
    const r = p.last_run;
    const last = r ? (r.job_id ? '<a href="#/jobs/' + enc(r.job_id) + '">' + esc(r.job_id) + '</a> ' : '') +
      '<span class="state ' + esc(r.state) + '">' + esc(r.state) + '</span> · ' + esc(r.trigger) +
      ' · ' + fmtDateTime(r.started_unix_ms || r.due_unix_ms, p.timezone) : 'none';
    const queued = p.queued ? '<br>a run waits (due ' + fmtDateTime(p.queued.due_unix_ms, p.timezone) + ')' : '';
    const error = p.error ? '<div class="error">' + esc(p.error) + '</div>' : '';
    return '<tr data-pipeline="' + esc(p.name) + '"><td>' + esc(p.name) + error + '</td><td>' +
      esc(p.schedule) + ' <span class="muted">' + esc(p.timezone) + '</span></td><td>' +
      esc(p.concurrency) + (p.catchup ? ', catchup' : '') + '</td><td class="last-run">' + last + queued +
      '</td><td>' + p.next_runs_unix_ms.map((t) => fmtDateTime(t, p.timezone)).join('<br>') + '</td><td>' + p.skipped +
      '</td><td><button class="run-btn">Run now</button></td></tr>';
  }).join('');
}

async function loadPipelines() {
  try { renderPipelines(await api('/api/v1/pipelines')); loaded(); } catch (e) { say(e.message); }
}

// ---- routing --------------------------------------------------------------

function route() {
  const h = location.hash || '#/';
  const m = h.match(/^#\/jobs\/([^/]+)$/);
  state.route = m ? 'job' : h === '#/workers' ? 'workers' : h === '#/pipelines' ? 'pipelines' : 'jobs';
  $('#view-jobs').hidden = state.route !== 'jobs';
  $('#view-job').hidden = state.route !== 'job';
  $('#view-workers').hidden = state.route !== 'workers';
  $('#view-pipelines').hidden = state.route !== 'pipelines';
  $('#nav-jobs').classList.toggle('active', state.route === 'jobs' || state.route === 'job');
  $('#nav-workers').classList.toggle('active', state.route === 'workers');
  $('#nav-pipelines').classList.toggle('active', state.route === 'pipelines');
  if (state.route !== 'job' && state.jobEvents) { state.jobEvents.close(); state.jobEvents = null; closeLog(); state.job = null; }
  if (state.route === 'jobs') loadJobs();
  if (state.route === 'workers') loadWorkers();
  if (state.route === 'pipelines') loadPipelines();
  if (state.route === 'job') openJob(decodeURIComponent(m[1]));
}

document.addEventListener('DOMContentLoaded', () => {
  $('#token').value = state.token;
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('#token').value.trim();
    localStorage.setItem('drover-token', state.token);
    connectSummary(); loadHistory(); route();
  });
  $('#jobs tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (tr) location.hash = '#/jobs/' + enc(tr.dataset.job);
  });
  $('#job-filter').addEventListener('input', loadJobs);
  $('#job-filter').addEventListener('submit', (e) => { e.preventDefault(); loadJobs(); });
  $('#dag').addEventListener('click', (e) => {
    const g = e.target.closest('.node');
    if (!g) return;
    state.group = g.dataset.group === state.group ? '' : g.dataset.group;
    state.offset = 0;
    refreshJob();
  });
  $('#task-all').addEventListener('click', () => { state.group = ''; state.offset = 0; refreshJob(); });
  $('#task-state').addEventListener('change', () => { state.taskState = $('#task-state').value; state.offset = 0; loadTasks(); });
  $('#task-prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); loadTasks(); });
  $('#task-next').addEventListener('click', () => { if (state.offset + PAGE < state.total) { state.offset += PAGE; loadTasks(); } });
  $('#tasks tbody').addEventListener('click', async (e) => {
    const tr = e.target.closest('tr');
    if (!tr) return;
    const task = tr.dataset.task;
    if (e.target.classList.contains('cancel-btn')) {
      if (await act('/api/v1/jobs/' + enc(state.job) + '/tasks/' + enc(task) + '/cancel', 'cancel')) scheduleJobRefresh();
    } else {
      openLog(task);
    }
  });
  $('#cancel-job').addEventListener('click', async () => {
    if (await act('/api/v1/jobs/' + enc(state.job) + '/cancel', 'cancel')) scheduleJobRefresh();
  });
  $('#retry-job').addEventListener('click', async () => {
    const r = await act('/api/v1/jobs/' + enc(state.job) + '/retry', 'retry');
    if (r && r.job) location.hash = '#/jobs/' + enc(r.job);
  });
  $('#pipelines tbody').addEventListener('click', async (e) => {
    const tr = e.target.closest('tr');
    if (!tr || !e.target.classList.contains('run-btn')) return;
    const name = tr.dataset.pipeline;
    if (await act('/api/v1/pipelines/' + enc(name) + '/runs', 'run ' + name)) loadPipelines();
  });
  window.addEventListener('hashchange', route);
  connectSummary();
  loadHistory();
  route();
});
