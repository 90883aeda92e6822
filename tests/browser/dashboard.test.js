// The dashboard in a real browser (ctest label `browser`): headless
// Chromium driven by playwright-core against a real `drover coordinator
// --http` and `drover worker`, a job submitted with the CLI. It loads the
// page, watches a task turn from running to succeeded, opens its log (and
// another's outputs), cancels a task from the page, checks that requests
// without the right token are refused, starts a scheduled pipeline from
// the Pipelines view (the coordinator has --pipelines), and saves
// screenshots of the main views.
//
// Run by tests/browser/run_dashboard_test, which installs what it needs.
// Every wait is on a page state or a process event, with a deadline.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const DROVER = process.env.DROVER_BIN;
const CHROMIUM = process.env.CHROMIUM_BIN;
const SHOTS = process.env.SCREENSHOT_DIR;
const DEADLINE = 30000;
const READ = 'read-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';

const children = [];
function start(args, env) {
  const child = spawn(DROVER, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => { child.out += d; child.emit('text'); });
  child.stderr.on('data', (d) => { child.err += d; });
  children.push(child);
  return child;
}
function waitForOutput(child, re, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ' + what + ' within ' + DEADLINE + ' ms:\n' + child.err)), DEADLINE);
    const look = () => {
      const m = child.out.match(re);
      if (m) { clearTimeout(timer); child.off('text', look); resolve(m); }
    };
    child.on('text', look);
    child.on('exit', (code) => reject(new Error(what + ': drover exited ' + code + '\n' + child.err)));
    look();
  });
}
function run(args, env) {
  return new Promise((resolve, reject) => {
    const child = start(args, env);
    const timer = setTimeout(() => reject(new Error('drover ' + args.join(' ') + ' did not finish')), DEADLINE);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out: child.out, err: child.err }); });
  });
}
function check(cond, message) { if (!cond) throw new Error(message); }

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'drover-browser-'));
  const state = path.join(work, 'state');
  fs.writeFileSync(path.join(work, 'tokens'), 'read ' + READ + '\nadmin ' + ADMIN + '\n');
  const pipelines = path.join(work, 'pipelines');
  fs.mkdirSync(pipelines);
  fs.writeFileSync(path.join(pipelines, 'nightly.yaml'), `version: 1
name: nightly
schedule: "30 2 * * *"
timezone: Europe/Berlin
tasks:
  hello: {run: echo nightly}
`);
  const coordinator = start(['coordinator', '--listen', 'tcp://127.0.0.1:0', '--state-dir', state,
    '--heartbeat', '200ms', '--http', '127.0.0.1:0', '--http-token', path.join(work, 'tokens'),
    '--pipelines', pipelines]);
  const endpoint = (await waitForOutput(coordinator, /^(tcp:\/\/\S+)\n/, 'coordinator endpoint'))[1];
  const url = (await waitForOutput(coordinator, /\n(http:\/\/127\.0\.0\.1:\d+)\n/, 'dashboard URL'))[1];
  start(['worker', '--connect', endpoint, '--name', 'w1', '--slots', 'spawn=4', '--heartbeat', '200ms']);

  // Unauthorized requests: refused, and nothing changes.
  let r = await fetch(url + '/api/v1/jobs');
  check(r.status === 401, 'GET without a token: ' + r.status);
  check((await r.json()).error.status === 401, 'the 401 has a JSON error body');
  r = await fetch(url + '/api/v1/jobs', { headers: { Authorization: 'Bearer wrong-token-0123456789' } });
  check(r.status === 401, 'GET with a wrong token: ' + r.status);

  const release = path.join(work, 'release');
  fs.writeFileSync(path.join(work, 'job.yaml'), `version: 1
name: browser-demo
tasks:
  prep: {run: 'echo prepared; echo greeting=hello >> "$DROVER_OUTPUT"'}
  work:
    needs: [prep]
    run: 'echo started; while [ ! -f ${release} ]; do echo waiting; sleep 0.2; done; echo finished'
  shard:
    needs: [prep]
    matrix: {i: [1, 2, 3, 4, 5, 6]}
    run: echo shard \${matrix.i}
  nap: {needs: [prep], run: sleep 120}
  report: {needs: [work, shard], run: echo report}
`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(DEADLINE);
    await page.goto(url + '/');
    // The page without a token: its API calls are refused and it says so.
    await page.waitForSelector('#status:has-text("401")');
    await page.fill('#token', ADMIN);
    await page.click('#save-token');
    await page.waitForSelector('#live.on');

    const submitted = await run(['submit', path.join(work, 'job.yaml')], { DROVER_COORDINATOR: endpoint });
    check(submitted.code === 0, 'drover submit: ' + submitted.err);
    const job = submitted.out.trim().split('\n')[0];

    // The job appears in the list (from the live summary); open it.
    await page.click(`#jobs tr[data-job="${job}"]`);
    await page.waitForSelector('#job-title:has-text("browser-demo")');
    // The DAG: `work` runs, the matrix task is one node of 6.
    await page.waitForSelector('#dag .node[data-group="work"][data-state="running"]');
    await page.waitForSelector('#dag .node[data-group="shard"]:has-text("shard ×6")');
    await page.waitForSelector('#tasks tr[data-task="work"] td.state.running');
    // Its log, followed live while it runs (chunks from the moment the
    // stream opens; the whole output when the attempt ends).
    await page.click('#tasks tr[data-task="work"] td:first-child');
    await page.waitForSelector('#log-stdout:has-text("waiting")');
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'dashboard-job.png'), fullPage: true });

    // Let it finish: the page shows it succeeded, and the rest of its log.
    fs.writeFileSync(release, '');
    await page.waitForSelector('#tasks tr[data-task="work"] td.state.succeeded');
    await page.waitForSelector('#dag .node[data-group="work"][data-state="succeeded"]');
    await page.waitForSelector('#log-stdout:has-text("started")');
    await page.waitForSelector('#log-stdout:has-text("finished")');
    // An instance's outputs, under its attempts.
    await page.click('#tasks tr[data-task="prep"] td:first-child');
    await page.waitForSelector('#log-outputs tr[data-output="greeting"]:has-text("hello")');

    // Cancel `nap` from the page (admin token).
    await page.waitForSelector('#tasks tr[data-task="nap"] td.state.running');
    await page.click('#tasks tr[data-task="nap"] .cancel-btn');
    await page.waitForSelector('#tasks tr[data-task="nap"] td.state.cancelled');
    await page.waitForSelector('#job-state.failed');

    // A read token may look but not act: the page reports the refusal.
    r = await fetch(url + '/api/v1/jobs/' + job + '/retry', { method: 'POST', headers: { Authorization: 'Bearer ' + READ } });
    check(r.status === 403, 'retry with a read token: ' + r.status);
    const jobs = await (await fetch(url + '/api/v1/jobs', { headers: { Authorization: 'Bearer ' + READ } })).json();
    check(jobs.jobs.length === 1, 'the refused retry made no job: ' + JSON.stringify(jobs));
    await page.fill('#token', READ);
    await page.click('#save-token');
    await page.waitForSelector('#retry-job:not([disabled])');
    await page.click('#retry-job');
    await page.waitForSelector('#status:has-text("403")');

    if (SHOTS) {
      await page.fill('#token', ADMIN);
      await page.click('#save-token');
      await page.goto(url + '/#/');
      await page.waitForSelector(`#jobs tr[data-job="${job}"] td.state.failed`);
      await page.screenshot({ path: path.join(SHOTS, 'dashboard-jobs.png'), fullPage: true });
      await page.goto(url + '/#/workers');
      await page.waitForSelector('#workers tr[data-worker="w1"]');
      await page.screenshot({ path: path.join(SHOTS, 'dashboard-workers.png'), fullPage: true });
    }
    // The Pipelines view: the schedule and its next runs; "Run now" starts
    // a run (admin token), shown as the last run, manual, until it succeeds.
    await page.fill('#token', ADMIN);
    await page.click('#save-token');
    await page.goto(url + '/#/pipelines');
    const row = '#pipelines tr[data-pipeline="nightly"]';
    await page.waitForSelector(row + ':has-text("30 2 * * *")');
    await page.waitForSelector(row + ' td.last-run:has-text("none")');
    await page.click(row + ' .run-btn');
    await page.waitForSelector(row + ' td.last-run:has-text("manual")');
    await page.waitForSelector(row + ' td.last-run .state.succeeded');
    const listed = await (await fetch(url + '/api/v1/pipelines', { headers: { Authorization: 'Bearer ' + READ } })).json();
    const runJob = listed.pipelines[0].last_run.job_id;
    await page.waitForSelector(row + ` td.last-run a[href="#/jobs/${runJob}"]`);
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'dashboard-pipelines.png'), fullPage: true });
    // A read token may not start one: refused (403), and no run is added.
    // Saving the token reads the table again: the click waits for that,
    // since a row replaced between the button's mousedown and mouseup gets
    // no click at all.
    const shown = await page.$(row);
    await page.fill('#token', READ);
    await page.click('#save-token');
    await page.waitForFunction((el) => !el.isConnected, shown);
    await page.waitForSelector(row + ' td.last-run:has-text("manual")');
    await page.click(row + ' .run-btn');
    await page.waitForSelector('#status:has-text("403")');
    const after = await (await fetch(url + '/api/v1/pipelines', { headers: { Authorization: 'Bearer ' + READ } })).json();
    check(after.pipelines[0].last_run.job_id === runJob, 'the refused run started nothing: ' + JSON.stringify(after));
    console.log('dashboard test: passed');
  } finally {
    await browser.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  process.exit(0);
}, (e) => {
  console.error('dashboard test: FAILED: ' + e.stack);
  for (const c of children) {
    if (c.err) console.error('--- ' + c.spawnargs.slice(1, 2) + ' stderr (tail):\n' + c.err.slice(-3000));
    if (c.exitCode === null) c.kill('SIGKILL');
  }
  process.exit(1);
});
